"""Credential injection: agents hold placeholders, the gateway holds the provider keys.

An operator adds a provider key once (``clawgress credential add``); it is sealed with
AES-256-GCM under a data key kept in a file of its own (``sealing``, ``key_file``) and
stored with the hosts it may be sent to and how it is sent (``providers``: ``Bearer`` for
OpenAI-style APIs, ``x-api-key`` for Anthropic, ``api-key`` for Azure, ``x-goog-api-key``
for Gemini). Each agent is issued a placeholder (``placeholders``: ``cg-ph-<id>-<secret>``,
shown once, stored hashed) bound to it and to one credential, and puts it where its SDK
takes an API key. On an intercepted request the ``Injector`` finds the placeholder in the
auth headers or the query (``carriers``), checks it is the requesting agent's, live, and
for that host, and swaps it for the key; anything else is refused (``CredentialRefused``).
A real provider key sent by an agent is reported by DLP class (``detection``; the L7
inspection that does it is ``gatewayd.credentials.inspection``).

Keys never appear as text outside the header that carries them upstream: ``Secret`` keeps
them out of ``repr``, ``str`` and pickles; rows, records and errors hold ids, classes and
lengths.

IO boundary: ``Vault`` (the store's tables, ``schema``) and ``open_data_key`` (the data
key's file). Everything else is pure. ``inspection`` is not imported here: it pulls in the
L7 engine, which pulls in the store, whose migrations import ``schema`` from this package.
"""

from gatewayd.credentials.carriers import AUTH_HEADERS, QUERY_KEY, Carried, Headers, carried
from gatewayd.credentials.detection import Sighting, Sightings, key_class, sight
from gatewayd.credentials.errors import CredentialRefused, SealError
from gatewayd.credentials.injector import Claim, Injected, Injector, Keyring
from gatewayd.credentials.key_file import DATA_KEY_FILE, DATA_KEY_MODE, open_data_key
from gatewayd.credentials.model import (
    PLACEHOLDER_PREFIX,
    Credential,
    Placeholder,
    check_host,
    check_key,
    credential_shape,
    host_admitted,
    new_credential,
)
from gatewayd.credentials.placeholders import (
    IssuedPlaceholder,
    hash_placeholder,
    new_placeholder,
    placeholder_id_of,
    verify_placeholder,
)
from gatewayd.credentials.providers import BEARER, PROVIDERS, Injection, ProviderDefaults
from gatewayd.credentials.schema import create_tables
from gatewayd.credentials.sealing import DataKey
from gatewayd.credentials.secret import Secret
from gatewayd.credentials.vault import CREDENTIALS_DOMAIN, Vault

__all__ = [
    "AUTH_HEADERS",
    "BEARER",
    "CREDENTIALS_DOMAIN",
    "DATA_KEY_FILE",
    "DATA_KEY_MODE",
    "PLACEHOLDER_PREFIX",
    "PROVIDERS",
    "QUERY_KEY",
    "Carried",
    "Claim",
    "Credential",
    "CredentialRefused",
    "DataKey",
    "Headers",
    "Injected",
    "Injection",
    "Injector",
    "IssuedPlaceholder",
    "Keyring",
    "Placeholder",
    "ProviderDefaults",
    "SealError",
    "Secret",
    "Sighting",
    "Sightings",
    "Vault",
    "carried",
    "check_host",
    "check_key",
    "create_tables",
    "credential_shape",
    "hash_placeholder",
    "host_admitted",
    "key_class",
    "new_credential",
    "new_placeholder",
    "open_data_key",
    "placeholder_id_of",
    "sight",
    "verify_placeholder",
]
