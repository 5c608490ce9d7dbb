"""The two ways credential injection fails.

``CredentialRefused`` is the L7 engine's: a request carries a placeholder it may not use
(unknown, malformed, another agent's, toward a host its credential is not for, revoked,
or on a connection that would carry the key in clear text). The engine answers with
``status`` (403, or 500 when the gateway itself cannot open the key) and records ``kind``.
``SealError`` is the data key's: a sealed key does not open with it (another data key,
or a damaged row).

Messages name placeholders by their id (``cg-ph-<id>``, which is not secret) and
credentials by theirs, never a key or a placeholder's secret part.
"""

from __future__ import annotations

from gatewayd.errors import ClawgressError


class CredentialRefused(ClawgressError):
    """A request's placeholder cannot be swapped for its key; the request is refused."""

    def __init__(self, message: str, kind: str, status: int = 403,
                 placeholder_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.placeholder_id = placeholder_id


class SealError(ClawgressError):
    """A sealed provider key cannot be opened with the data key at hand."""
