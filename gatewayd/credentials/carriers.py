"""Where a key rides in a request, and taking it out. Pure.

SDKs put an API key in one of a few places: ``Authorization: Bearer <key>`` (OpenAI and
the APIs shaped like it), ``x-api-key`` (Anthropic), ``api-key`` (Azure OpenAI),
``x-goog-api-key`` (Gemini), or ``key=<key>`` in the query (Gemini's REST examples).
Those are the *carriers*; a credential whose injection names another header adds that
one. ``carried`` reads every token in them: a header value split at white space (so
``Bearer`` is a token of its own), a query parameter percent-decoded. Values that are not
ASCII carry no key and are skipped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import unquote

Headers = list[tuple[bytes, bytes]]

AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
QUERY_KEY = "key"
QUERY_CARRIER = f"query:{QUERY_KEY}"


@dataclass(frozen=True, slots=True)
class Carried:
    """One token in a carrier: ``carrier`` is ``header:<name>`` or ``query:key``."""

    carrier: str
    token: str = field(repr=False)


def carried(headers: Headers, upstream: str,
            names: Collection[str] = AUTH_HEADERS) -> list[Carried]:
    """Every token in the carriers of a request (headers ``names``, lower case, and the
    query's ``key``); ``upstream`` is the request's origin-form target."""
    found: list[Carried] = []
    wanted = _names_as_bytes(frozenset(names))
    for raw_name, raw_value in headers:
        lowered = raw_name.lower()
        if lowered not in wanted:
            continue  # most headers: compared as bytes, never decoded
        name = lowered.decode("latin-1")
        try:
            text = raw_value.decode("ascii")
        except UnicodeDecodeError:
            continue
        found.extend(Carried(f"header:{name}", token) for token in text.split())
    if "?" in upstream:
        found.extend(Carried(QUERY_CARRIER, token) for token in query_keys(upstream))
    return found


@functools.lru_cache(maxsize=64)
def _names_as_bytes(names: frozenset[str]) -> frozenset[bytes]:
    return frozenset(n.lower().encode("latin-1") for n in names)


def query_keys(upstream: str) -> list[str]:
    """The values of ``key`` in ``upstream``'s query, percent-decoded."""
    _, sep, query = upstream.partition("?")
    if not sep:
        return []
    values = []
    for param in query.split("&"):
        name, eq, value = param.partition("=")
        if eq and unquote(name) == QUERY_KEY:
            values.append(unquote(value))
    return values


def without_headers(headers: Headers, names: Collection[str]) -> Headers:
    """``headers`` without those named ``names`` (lower case)."""
    return [(n, v) for n, v in headers if n.decode("latin-1").lower() not in names]


def without_query_keys(upstream: str, drop: Callable[[str], bool]) -> str:
    """``upstream`` without the query's ``key`` parameters whose value ``drop`` says to
    drop; the other parameters are kept as they were written."""
    path, sep, query = upstream.partition("?")
    if not sep:
        return upstream
    kept = []
    for param in query.split("&"):
        name, eq, value = param.partition("=")
        if eq and unquote(name) == QUERY_KEY and drop(unquote(value)):
            continue
        kept.append(param)
    return f"{path}?{'&'.join(kept)}" if kept else path
