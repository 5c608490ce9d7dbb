"""The lab's one error type."""

from __future__ import annotations

from gatewayd.errors import ClawgressError


class LabError(ClawgressError):
    """The lab cannot be built, found or used; ``str(err)`` says why and what to do."""
