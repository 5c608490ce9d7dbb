"""Provider keys an agent sends itself: recognized in the carriers, reported by class. Pure.

An agent that is given placeholders should never hold a real key; one that sends one has
been handed it some other way, and the operator wants to know. ``sight`` reads the
carriers of a request (``gatewayd.credentials.carriers``) and names what it finds with the
DLP taxonomy's classes, so the same policy conditions apply (``l7: {dlp_classes:
[secrets.openai.api_key]}`` to deny, an alert rule to report):

* ``secrets.openai.api_key``: ``sk-`` keys (user, ``sk-proj-``, ``sk-svcacct-``,
  ``sk-admin-``; DeepSeek's and other OpenAI-compatible services' ``sk-`` keys read the
  same and are reported under this class);
* ``secrets.anthropic.api_key``: ``sk-ant-``; ``secrets.openrouter.api_key``: ``sk-or-``;
* ``secrets.gcp.api_key``: Google API keys (``AIza`` and 35 characters: Gemini's);
* ``secrets.groq.api_key`` (``gsk_``), ``secrets.xai.api_key`` (``xai-``),
  ``secrets.perplexity.api_key`` (``pplx-``);
* ``secrets.azure.api_key``: 32 to 128 letters and digits in an ``api-key`` header
  (Azure's keys have no prefix, so only that header tells).

A token alone in a header needs no context cue, so these shapes are looser than the body
rules of ``gatewayd/dlp/rules.yaml``: a prefix, a length, URL-safe characters. Sightings
carry the class, the carrier and the length, never the key. No regular expressions: this
runs on every inspected request.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gatewayd.credentials.carriers import AUTH_HEADERS, Headers, carried
from gatewayd.credentials.placeholders import is_placeholder_like, placeholder_id_of

MIN_KEY = 32
MAX_KEY = 512
GOOGLE_KEY = 39
_TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# Longest prefix first: sk-ant- and sk-or- are not OpenAI's.
_PREFIXES = (
    ("sk-ant-", "secrets.anthropic.api_key"),
    ("sk-or-", "secrets.openrouter.api_key"),
    ("sk-", "secrets.openai.api_key"),
    ("gsk_", "secrets.groq.api_key"),
    ("xai-", "secrets.xai.api_key"),
    ("pplx-", "secrets.perplexity.api_key"),
)
AZURE_CLASS = "secrets.azure.api_key"
GOOGLE_CLASS = "secrets.gcp.api_key"


def key_class(token: str, carrier: str) -> str | None:
    """The DLP class of the provider key ``token`` is, if it looks like one."""
    if token.startswith("AIza"):
        return GOOGLE_CLASS if len(token) == GOOGLE_KEY and _TOKEN.issuperset(token) else None
    if not MIN_KEY <= len(token) <= MAX_KEY or not _TOKEN.issuperset(token):
        return None
    for prefix, klass in _PREFIXES:
        if token.startswith(prefix):
            return klass
    if carrier == "header:api-key" and len(token) <= 128 and _ALNUM.issuperset(token):
        return AZURE_CLASS
    return None


@dataclass(frozen=True, slots=True)
class Sighting:
    """A provider key seen in a request: its class, where, how long. Never the key."""

    dlp_class: str
    carrier: str
    length: int

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.dlp_class, "carrier": self.carrier, "length": self.length}


@dataclass(frozen=True, slots=True)
class Sightings:
    keys: tuple[Sighting, ...] = ()
    placeholders: tuple[str, ...] = ()  # ids of the well-formed placeholders seen
    malformed_placeholders: int = 0

    @property
    def dlp_classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.dlp_class for s in self.keys))

    def __bool__(self) -> bool:
        return bool(self.keys or self.placeholders or self.malformed_placeholders)


NO_SIGHTINGS = Sightings()


def sight(headers: Headers, upstream: str,
          names: Collection[str] = AUTH_HEADERS) -> Sightings:
    """The provider keys and placeholders in a request's carriers."""
    tokens = carried(headers, upstream, names)
    if not tokens:
        return NO_SIGHTINGS  # no carrier in the request (most requests)
    keys: list[Sighting] = []
    placeholders: list[str] = []
    malformed = 0
    for c in tokens:
        if is_placeholder_like(c.token):
            pid = placeholder_id_of(c.token)
            if pid is None:
                malformed += 1
            elif pid not in placeholders:
                placeholders.append(pid)
            continue
        klass = key_class(c.token, c.carrier)
        if klass is not None:
            keys.append(Sighting(klass, c.carrier, len(c.token)))
    return Sightings(tuple(keys), tuple(placeholders), malformed)
