"""The answers the L7 engine gives in place of the upstream's: refusals and errors.

Every one is JSON: ``{"error": <kind>, "reason", "policy_id", "rule_id", "request_id"}``
(``policy_id`` and ``rule_id`` are null when no rule decided). The request id is also in
the ``X-Clawgress-Request-Id`` header, which every response the engine passes on carries
too. Pure: values in, an ``Answer`` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

REQUEST_ID_HEADER = b"x-clawgress-request-id"

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    421: "Misdirected Request",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# The error kind each status names in the body.
KINDS = {
    403: "denied",
    407: "identity-required",
    413: "body-too-large",
    421: "misdirected",
    429: "throttled",
    502: "upstream-failed",
    503: "unavailable",
    504: "upstream-timeout",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response: status, headers (lower-case names) and body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    @property
    def reason(self) -> bytes:
        return REASONS.get(self.status, "Error").encode()


def answer(status: int, reason: str, request_id: str, *, policy_id: str | None = None,
           rule_id: str | None = None, kind: str | None = None,
           headers: tuple[tuple[bytes, bytes], ...] = (), close: bool = False) -> Answer:
    """A JSON refusal or error."""
    body = orjson.dumps({
        "error": kind or KINDS.get(status, "bad-request" if status < 500 else "gateway-error"),
        "reason": reason,
        "policy_id": policy_id,
        "rule_id": rule_id,
        "request_id": request_id,
    }) + b"\n"
    out = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (REQUEST_ID_HEADER, request_id.encode()),
        *headers,
    ]
    if close:
        out.append((b"connection", b"close"))
    return Answer(status, tuple(out), body)
