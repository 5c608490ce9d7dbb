"""What a request's body says: the stage between reading a request and deciding it.

An ``Inspection`` looks at one request whose body the engine has read (up to
``l7.inspect_body_bytes``; ``whole`` says whether that is all of it) and returns
``Findings``: the fields the policy's body conditions read (provider, model, tools, token
estimate, DLP classes), what the request's record keeps (never the data itself), and what
later stages of the same request need (``details``, by inspection name: the parsed AI
request, the DLP matches a redaction replaces) and what follows its response as it
streams back (``watches``: the usage a model's answer reports is counted from it).

``look`` runs the inspections in order and merges what they found. An inspection that
cannot do its work raises ``InspectionError``; the engine refuses the request rather than
let it go on unexamined. Pure: bytes in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatewayd.errors import ClawgressError
from gatewayd.l7.target import Target

Headers = list[tuple[bytes, bytes]]


class InspectionError(ClawgressError):
    """An inspection failed on a request it had to examine (the request is refused). The
    message must not quote the request's data."""


@dataclass(frozen=True, slots=True)
class Findings:
    """What the inspections found in one request."""

    provider: str | None = None
    model: str | None = None
    tools: tuple[str, ...] = ()
    token_estimate: int | None = None
    dlp_classes: tuple[str, ...] = ()
    # Audit fields, by inspection name ("ai": {...}, "dlp": {...}).
    record: Mapping[str, Any] = field(default_factory=dict)
    # What later stages of the same request need, by inspection name.
    details: Mapping[str, Any] = field(default_factory=dict)
    # What follows the request's response as it streams back (usage counted from it).
    watches: tuple[ResponseWatch, ...] = ()

    def merged(self, other: Findings) -> Findings:
        """These findings with ``other``'s added (``other`` wins where both say a value)."""
        return Findings(
            provider=other.provider if other.provider is not None else self.provider,
            model=other.model if other.model is not None else self.model,
            tools=tuple(dict.fromkeys((*self.tools, *other.tools))),
            token_estimate=(other.token_estimate if other.token_estimate is not None
                            else self.token_estimate),
            dlp_classes=tuple(dict.fromkeys((*self.dlp_classes, *other.dlp_classes))),
            record={**self.record, **other.record},
            details={**self.details, **other.details},
            watches=(*self.watches, *other.watches),
        )


NOTHING = Findings()


class ResponseWatch(Protocol):
    """Follows one response as the engine streams it to the client: its head, then each
    piece of its body as it passes (never holding the stream back), then its end.
    ``end`` returns fields for the request's record and is called exactly once, also when
    the response broke off (``complete`` is then ``False``) or never came (``status`` is
    then ``None``). A watch must not raise; it is the engine's accounting, not a gate."""

    def head(self, status: int, headers: Headers) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def end(self, status: int | None, complete: bool) -> Mapping[str, Any]: ...


class Inspection(Protocol):
    name: str

    def look(self, method: str, target: Target, headers: Headers, body: bytes,
             whole: bool) -> Findings: ...


def look(inspections: Sequence[Inspection], method: str, target: Target, headers: Headers,
         body: bytes, whole: bool) -> Findings:
    """Every inspection's findings on one request, merged in order."""
    found = NOTHING
    for inspection in inspections:
        seen = inspection.look(method, target, headers, body, whole)
        if seen is not NOTHING:  # nothing found adds nothing (the common case)
            found = found.merged(seen)
    return found
