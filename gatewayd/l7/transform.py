"""The body-rewrite stage that ``transform`` decisions run on a request before it goes on.

A ``Stage`` looks at a whole request (method, target, headers, body) and returns what to
send instead, or ``None`` to leave it as it is. DLP redaction and credential injection
are stages; ``rewrite`` runs them in order and reframes the result (``Content-Length`` set,
``Transfer-Encoding`` dropped). A stage that fails is a refusal, never a silent pass:
``StageError`` carries why. Pure: bytes and headers in, bytes and headers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gatewayd.errors import ClawgressError
from gatewayd.l7.target import Target

Headers = list[tuple[bytes, bytes]]


class StageError(ClawgressError):
    """A stage could not rewrite a request it had to (the request is refused)."""


@dataclass(frozen=True, slots=True)
class Rewritten:
    headers: Headers
    body: bytes
    note: str  # what the stage did, for the record (never the data itself)


class Stage(Protocol):
    name: str

    def rewrite(self, method: str, target: Target, headers: Headers,
                body: bytes) -> Rewritten | None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    headers: Headers
    body: bytes
    applied: tuple[str, ...]  # "<stage>: <note>" for each stage that changed something


def rewrite(stages: Sequence[Stage], method: str, target: Target, headers: Headers,
            body: bytes) -> Outcome:
    """Run ``stages`` in order; the request as it is to be sent."""
    applied: list[str] = []
    for stage in stages:
        done = stage.rewrite(method, target, headers, body)
        if done is None:
            continue
        headers, body = done.headers, done.body
        applied.append(f"{stage.name}: {done.note}")
    if applied:
        headers = [(n, v) for n, v in headers
                   if n not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
    return Outcome(headers, body, tuple(applied))
