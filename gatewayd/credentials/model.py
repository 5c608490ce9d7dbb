"""What the store keeps: ``Credential`` (a provider key, sealed, and where it may go) and
``Placeholder`` (what an agent holds instead), with the checks on their fields. Pure.

A credential is named by an operator's id (``openai-prod``): the same pattern as agent
ids, so quota selectors (``credential: openai-prod``) can name it. Its hosts are exact
names or ``*.suffix`` wildcards, matched as policy matches destinations: ``*.example.com``
covers ``a.example.com`` and ``a.b.example.com``, not ``example.com``. Its key is stored
sealed (``gatewayd.credentials.sealing``); a ``Credential`` never holds the key's text.

Errors are ``ValueError`` naming the field; none of them quotes a key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gatewayd.credentials.providers import PROVIDERS, Injection, injection_for
from gatewayd.credentials.sealing import DataKey
from gatewayd.credentials.secret import Secret

MAX_HOSTS = 64
MAX_KEY = 4096
MAX_LABEL = 128
PLACEHOLDER_PREFIX = "cg-ph-"

# Agent ids and credential ids: the identity names' pattern (gatewayd.identity.names),
# which quota selectors accept. Restated here: importing gatewayd.identity pulls in the
# store, whose migrations import this package.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_LABEL = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class Credential:
    """A provider key as stored: sealed under the data key ``data_key_id``, for ``hosts``,
    sent as ``injection`` says. ``allow_cleartext``: the key may also go to its hosts
    over plain HTTP (a self-hosted API on a trusted network); otherwise only inside TLS."""

    credential_id: str
    provider: str
    hosts: tuple[str, ...]
    injection: Injection
    sealed: bytes = field(repr=False)
    data_key_id: str
    created_at: float
    allow_cleartext: bool = False
    rotated_at: float | None = None
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def admits(self, host: str) -> bool:
        """Whether the key may be sent to ``host``."""
        return host_admitted(self.hosts, host)


@dataclass(frozen=True)
class Placeholder:
    """A placeholder as stored: whose it is, for which credential, and the hash of its
    text (``sha256:<hex>``), never the text."""

    placeholder_id: str
    credential_id: str
    agent_id: str
    hash: str
    created_at: float
    revoked_at: float | None = None
    label: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def shown(self) -> str:
        """How messages and listings name it: the prefix and id, not the secret part."""
        return shown(self.placeholder_id)


def shown(placeholder_id: str) -> str:
    return f"{PLACEHOLDER_PREFIX}{placeholder_id}"


def new_credential(
    credential_id: str,
    provider: str,
    key: Secret,
    data_key: DataKey,
    *,
    hosts: Iterable[str] = (),
    header: str | None = None,
    template: str | None = None,
    allow_cleartext: bool = False,
    now: float,
) -> Credential:
    """A new credential holding ``key`` sealed under ``data_key``. ``hosts``, ``header``
    and ``template`` default by ``provider`` (``gatewayd.credentials.providers``); a custom
    provider must give hosts and a header. ``ValueError`` names the field at fault."""
    listed, injection = credential_shape(credential_id, provider, hosts=hosts, header=header,
                                         template=template)
    return Credential(credential_id, provider, listed, injection,
                      data_key.seal(key, credential_id), data_key.key_id, now,
                      allow_cleartext)


def credential_shape(
    credential_id: str,
    provider: str,
    *,
    hosts: Iterable[str] = (),
    header: str | None = None,
    template: str | None = None,
) -> tuple[tuple[str, ...], Injection]:
    """The hosts and injection a new credential gets (``new_credential`` says how they
    default); ``ValueError`` names the field at fault. Checks a credential before any key
    is read or sealed for it."""
    check_name("credential id", credential_id)
    check_provider(provider)
    listed = tuple(hosts)
    if not listed:
        defaults = PROVIDERS.get(provider)
        if defaults is None:
            raise ValueError(f"provider {provider!r} has no default hosts: name them")
        listed = defaults.hosts
    return check_hosts(listed), injection_for(provider, header, template)


def check_name(what: str, value: str) -> str:
    """``value`` if it is a valid ``what`` (``"credential id"``, ``"agent id"``)."""
    if _NAME.fullmatch(value) is None:
        raise ValueError(f"invalid {what} {value[:64]!r}: expected 1 to 128 letters, digits,"
                         " '.', '_', ':' or '-', starting with a letter or digit")
    return value


def check_provider(provider: str) -> str:
    if _PROVIDER.fullmatch(provider) is None:
        known = ", ".join(PROVIDERS)
        raise ValueError(f"invalid provider {provider[:64]!r}: expected 1 to 64 lower-case"
                         f" letters, digits, '.', '_' or '-' (known: {known})")
    return provider


def check_label(label: str) -> str:
    if len(label) > MAX_LABEL or _LABEL.fullmatch(label) is None:
        raise ValueError(f"invalid label {label[:40]!r}: expected up to {MAX_LABEL} printable"
                         " ASCII characters")
    return label


def check_host(pattern: str) -> str:
    """A host pattern in canonical form: a name (lower case, no trailing dot), an address,
    or ``*.`` and a name of at least two labels."""
    text = pattern.strip().lower().rstrip(".")
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if not wildcard:
        try:
            return ipaddress.ip_address(name.strip("[]")).compressed
        except ValueError:
            pass
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
        raise ValueError(f"host {pattern[:80]!r}: expected a host name, an address, or"
                         " *.name")
    if wildcard and len(labels) < 2:
        raise ValueError(f"host {pattern[:80]!r}: a wildcard covers a name of at least two"
                         " labels (*.example.com)")
    return text


def check_hosts(patterns: Iterable[str]) -> tuple[str, ...]:
    hosts = tuple(dict.fromkeys(check_host(p) for p in patterns))
    if not hosts:
        raise ValueError("a credential needs at least one host")
    if len(hosts) > MAX_HOSTS:
        raise ValueError(f"{len(hosts)} hosts: at most {MAX_HOSTS}")
    return hosts


def host_admitted(patterns: Iterable[str], host: str) -> bool:
    """Whether ``host`` is one of ``patterns`` (exact, or under a ``*.`` wildcard)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def check_key(text: str) -> Secret:
    """The provider key in ``text`` (surrounding white space dropped) as a ``Secret``.

    Refused unless it is 1 to 4096 printable ASCII characters without spaces, which is
    what a header can carry; the message never quotes it.
    """
    text = text.strip(" \t\r\n")
    if not text:
        raise ValueError("the key is empty")
    if len(text) > MAX_KEY:
        raise ValueError(f"the key is longer than {MAX_KEY} characters")
    if not all("\x21" <= ch <= "\x7e" for ch in text):
        raise ValueError("the key holds spaces, control or non-ASCII characters, which a"
                         " header cannot carry")
    if text.startswith(PLACEHOLDER_PREFIX):
        raise ValueError("that is a Clawgress placeholder, not a provider key")
    return Secret(text)
