"""The values the identity registry deals in: ``Identity``, ``Agent`` and ``Lease``.

Plain frozen values, no IO. ``Identity`` checks its own fields, so one that exists is
well-formed wherever it came from (a lease, a client certificate, a JWT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gatewayd.identity.names import check_fingerprint, check_name

LeaseState = Literal["active", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent a packet or a request: the canonical identity every decision is made on."""

    agent_id: str
    team_id: str
    project_id: str
    environment: str
    workload_fingerprint: str = ""

    def __post_init__(self) -> None:
        check_name("agent id", self.agent_id)
        check_name("team id", self.team_id)
        check_name("project id", self.project_id)
        check_name("environment", self.environment)
        check_fingerprint(self.workload_fingerprint)

    def as_dict(self) -> dict[str, str]:
        return {
            "agent_id": self.agent_id,
            "team_id": self.team_id,
            "project_id": self.project_id,
            "environment": self.environment,
            "workload_fingerprint": self.workload_fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Agent:
    """A registered agent: its identity and when it was added (unix seconds)."""

    agent_id: str
    team_id: str
    project_id: str
    environment: str
    workload_fingerprint: str
    created_at: float

    @property
    def identity(self) -> Identity:
        return Identity(
            self.agent_id,
            self.team_id,
            self.project_id,
            self.environment,
            self.workload_fingerprint,
        )

    def as_dict(self) -> dict[str, str | float]:
        return {**self.identity.as_dict(), "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class Lease:
    """A source address bound to an agent on one interface until ``expires_at``.

    ``ip`` is normalised text (``ipaddress``); times are unix seconds. A lease is active
    from its grant until it expires or is revoked, whichever comes first.
    """

    id: int
    ip: str
    iface: str
    agent_id: str
    granted_at: float
    expires_at: float
    revoked_at: float | None = None
    revoke_reason: str | None = None

    def state(self, now: float) -> LeaseState:
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "active"

    def remaining(self, now: float) -> float:
        """Seconds left while active; 0 once expired or revoked."""
        if self.state(now) != "active":
            return 0.0
        return self.expires_at - now

    def as_dict(self) -> dict[str, str | float | int | None]:
        return {
            "id": self.id,
            "ip": self.ip,
            "iface": self.iface,
            "agent_id": self.agent_id,
            "granted_at": self.granted_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoke_reason": self.revoke_reason,
        }


@dataclass(frozen=True, slots=True)
class Quarantine:
    """An agent flagged as quarantined: all its flows are denied until it is released."""

    agent_id: str
    since: float
    reason: str
