"""The one error type of the kernel side."""

from __future__ import annotations

from gatewayd.errors import ClawgressError


class NetfilterError(ClawgressError):
    """The kernel, nft or iptables refused an operation; the message says which and why."""
