"""How each provider's API takes its key, and where it is served: the defaults a credential
starts from.

An ``Injection`` is a header name and the value written in it, a template with one
``{key}``: ``authorization: Bearer {key}`` for OpenAI and the many APIs shaped like it,
``x-api-key: {key}`` for Anthropic, ``api-key: {key}`` for Azure OpenAI,
``x-goog-api-key: {key}`` for Gemini. Provider names are the AI analyzer's
(``gatewayd.ai.Provider``), so a credential and the traffic it is used on say the same
name. A provider not listed here is a custom one: its credentials name their hosts and
header themselves. Pure data and checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gatewayd.credentials.secret import Secret

KEY_FIELD = "{key}"
MAX_TEMPLATE = 256

# Header names are RFC 9110 tokens; we keep them lower case, as HTTP/1.1 parsers hand them.
_HEADER = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,64}")
# Printable ASCII, spaces included: what a header value may hold around the key.
_TEMPLATE = re.compile(r"[\x20-\x7e]+")
# Headers the gateway frames, routes or authenticates by: a key never goes in one.
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
    "trailer", "upgrade", "proxy-authorization", "proxy-connection", "expect",
})


@dataclass(frozen=True, slots=True)
class Injection:
    """Where a provider key goes in a request: ``header``, valued ``template`` with the key
    in place of ``{key}``."""

    header: str
    template: str = KEY_FIELD

    def value(self, key: Secret) -> bytes:
        """The header's value carrying ``key``."""
        return self.template.replace(KEY_FIELD, key.reveal()).encode("ascii")

    def describe(self) -> str:
        return f"{self.header}: {self.template}"


BEARER = Injection("authorization", "Bearer {key}")


@dataclass(frozen=True, slots=True)
class ProviderDefaults:
    hosts: tuple[str, ...]
    injection: Injection


PROVIDERS: Mapping[str, ProviderDefaults] = {
    "openai": ProviderDefaults(("api.openai.com",), BEARER),
    "azure-openai": ProviderDefaults(
        ("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com"),
        Injection("api-key")),
    "anthropic": ProviderDefaults(("api.anthropic.com",), Injection("x-api-key")),
    "gemini": ProviderDefaults(("generativelanguage.googleapis.com",),
                               Injection("x-goog-api-key")),
    "openrouter": ProviderDefaults(("openrouter.ai",), BEARER),
    "mistral": ProviderDefaults(("api.mistral.ai",), BEARER),
    "groq": ProviderDefaults(("api.groq.com",), BEARER),
    "together": ProviderDefaults(("api.together.xyz", "api.together.ai"), BEARER),
    "deepseek": ProviderDefaults(("api.deepseek.com",), BEARER),
    "xai": ProviderDefaults(("api.x.ai",), BEARER),
    "fireworks": ProviderDefaults(("api.fireworks.ai",), BEARER),
    "perplexity": ProviderDefaults(("api.perplexity.ai",), BEARER),
}


def check_header(name: str) -> str:
    """``name`` in lower case if a key may go in that header; ``ValueError`` otherwise."""
    lowered = name.strip().lower()
    if _HEADER.fullmatch(lowered) is None:
        raise ValueError(f"header {name[:64]!r}: not a header name")
    if lowered in RESERVED_HEADERS:
        raise ValueError(f"header {lowered!r}: the gateway frames or authenticates requests"
                         " with it; a key cannot go there")
    return lowered


def check_template(template: str) -> str:
    """``template`` if it is a header value with exactly one ``{key}``."""
    if len(template) > MAX_TEMPLATE or _TEMPLATE.fullmatch(template) is None:
        raise ValueError(f"format {template[:64]!r}: expected up to {MAX_TEMPLATE} printable"
                         " ASCII characters")
    if template.count(KEY_FIELD) != 1:
        raise ValueError(f"format {template[:64]!r}: must hold {KEY_FIELD} exactly once")
    if template != template.strip():
        raise ValueError(f"format {template[:64]!r}: starts or ends with a space")
    return template


def injection_for(provider: str, header: str | None, template: str | None) -> Injection:
    """The injection of a credential of ``provider``: its defaults, overridden by ``header``
    and ``template``. A custom provider must name the header; its template defaults to the
    key alone. ``ValueError`` for an invalid header or template."""
    defaults = PROVIDERS.get(provider)
    if header is None:
        if defaults is None:
            raise ValueError(f"provider {provider!r} has no default header: name one")
        name = defaults.injection.header
        default_template = defaults.injection.template
    else:
        name = check_header(header)
        default_template = (defaults.injection.template
                            if defaults is not None and defaults.injection.header == name
                            else KEY_FIELD)
    return Injection(name, check_template(template if template is not None
                                          else default_template))
