"""``Registry``: agents, their leases and quarantines in the store. The identity IO.

Every write runs in one store transaction (all or nothing: a refused operation leaves the
store as it was) and bumps the ``identity`` generation, which the data plane watches to
rebuild its ``LeaseTable``. Time is always the caller's ``now`` (unix seconds).

An address has at most one active lease. Granting it again to the same agent on the same
interface renews it (``expires_at = now + ttl``, the grant time is kept); while it is
active, granting it to another agent or on another interface is refused. Expired and
revoked leases stay as history until their agent is removed: removing an agent deletes its
agent row and all its lease rows in one transaction (``leases.agent_id`` references
``agents``), after revoking any active leases when forced. The leases it ended are returned
(reason ``agent removed``) so the caller can audit them and end their flows.

A quarantined agent keeps its identity and leases, but every flow it opens is denied and
its established flows are ended, until it is released.

An agent's API keys (``ApiKey``: the hash of the key, never the key; made by
``gatewayd.l7.api_keys.new_api_key``) stay as history once revoked, and go with their
agent when it is removed. The engine reads them all with ``api_keys_by_id``, revoked ones
too, so that a revoked key is refused as revoked rather than as unknown.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from gatewayd.config import Config
from gatewayd.duration import format_duration
from gatewayd.errors import NotFound, StoreError
from gatewayd.identity.address import AddressLike, IPAddress, leasable, to_address
from gatewayd.identity.model import Agent, Identity, Lease, Quarantine
from gatewayd.identity.names import check_reason
from gatewayd.identity.rules import LeaseRules
from gatewayd.identity.table import LeaseTable
from gatewayd.store import Store

IDENTITY_DOMAIN = "identity"
AGENT_REMOVED = "agent removed"
MAX_LABEL = 128

# Whole statements, no string building. "Active at now" is
# ``revoked_at IS NULL AND expires_at > now``; the ``revoked_at IS NULL`` term lets SQLite
# use the partial indexes on ``leases(ip)`` and ``leases(agent_id)``.
_AGENT_BY_ID = (
    "SELECT agent_id, team_id, project_id, environment, workload_fingerprint, created_at"
    " FROM agents WHERE agent_id = ?"
)
_AGENTS = (
    "SELECT agent_id, team_id, project_id, environment, workload_fingerprint, created_at"
    " FROM agents ORDER BY agent_id"
)
_ACTIVE_BY_IP = (
    "SELECT id, ip, iface, agent_id, granted_at, expires_at, revoked_at, revoke_reason"
    " FROM leases WHERE ip = ? AND revoked_at IS NULL AND expires_at > ?"
    " ORDER BY id DESC LIMIT 1"
)
_LATEST_BY_IP = (
    "SELECT id, ip, iface, agent_id, granted_at, expires_at, revoked_at, revoke_reason"
    " FROM leases WHERE ip = ? ORDER BY granted_at DESC, id DESC LIMIT 1"
)
_ACTIVE_BY_AGENT = (
    "SELECT id, ip, iface, agent_id, granted_at, expires_at, revoked_at, revoke_reason"
    " FROM leases WHERE agent_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY id"
)
# ?1: include inactive leases; ?2: now; ?3: only this agent (NULL: every agent).
_LEASES = (
    "SELECT id, ip, iface, agent_id, granted_at, expires_at, revoked_at, revoke_reason"
    " FROM leases WHERE (?1 OR (revoked_at IS NULL AND expires_at > ?2))"
    " AND (?3 IS NULL OR agent_id = ?3)"
)
_IDENTITY_FOR = (
    "SELECT a.agent_id, a.team_id, a.project_id, a.environment, a.workload_fingerprint"
    " FROM leases l JOIN agents a ON a.agent_id = l.agent_id"
    " WHERE l.ip = ? AND l.iface = ? AND l.revoked_at IS NULL AND l.expires_at > ? LIMIT 1"
)
_ACTIVE_WITH_AGENTS = (
    "SELECT l.id, l.ip, l.iface, l.agent_id, l.granted_at, l.expires_at, l.revoked_at,"
    " l.revoke_reason, a.agent_id, a.team_id, a.project_id, a.environment,"
    " a.workload_fingerprint"
    " FROM leases l JOIN agents a ON a.agent_id = l.agent_id"
    " WHERE l.revoked_at IS NULL AND l.expires_at > ?"
)
_API_KEYS = "SELECT key_id, agent_id, hash, created_at, revoked_at, label FROM api_keys"
_API_KEY_BY_ID = (
    "SELECT key_id, agent_id, hash, created_at, revoked_at, label FROM api_keys"
    " WHERE key_id = ?"
)
_API_KEYS_OF_AGENT = (
    "SELECT key_id, agent_id, hash, created_at, revoked_at, label FROM api_keys"
    " WHERE agent_id = ? ORDER BY created_at, key_id"
)
_API_KEY_ID = re.compile(r"[0-9a-f]{16}")
_LABEL = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class ApiKey:
    """A stored API key: whose it is and the hash of its text, never the text itself."""

    key_id: str
    agent_id: str
    hash: str
    created_at: float
    revoked_at: float | None = None
    label: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def check_label(label: str) -> str:
    """An API key's label: up to 128 printable ASCII characters (spaces allowed), maybe empty."""
    if len(label) > MAX_LABEL or _LABEL.fullmatch(label) is None:
        raise ValueError(
            f"invalid label {label[:40]!r}: expected up to {MAX_LABEL} printable ASCII"
            " characters"
        )
    return label


class Registry:
    """Agents and leases in ``store``, checked against ``rules`` (config defaults if omitted)."""

    def __init__(self, store: Store, rules: LeaseRules | None = None) -> None:
        self.store = store
        self.rules = rules if rules is not None else LeaseRules.from_config(Config())

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.store.conn

    def generation(self) -> int:
        """The store's ``identity`` generation: it moves on every registry write."""
        return self.store.generation(IDENTITY_DOMAIN)

    # -- agents -------------------------------------------------------------------------

    def add_agent(
        self,
        agent_id: str,
        *,
        team_id: str,
        project_id: str,
        environment: str,
        workload_fingerprint: str = "",
        now: float,
    ) -> Agent:
        """Register an agent; ``StoreError`` if a field is malformed or the id is taken."""
        try:
            ident = Identity(agent_id, team_id, project_id, environment, workload_fingerprint)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        agent = Agent(**ident.as_dict(), created_at=now)
        with self.store.write():
            if self._agent(agent_id) is not None:
                raise StoreError(f"agent {agent_id!r} already exists")
            self._conn.execute(
                "INSERT INTO agents(agent_id, team_id, project_id, environment,"
                " workload_fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (agent_id, team_id, project_id, environment, workload_fingerprint, now),
            )
            self.store.bump(IDENTITY_DOMAIN)
        return agent

    def get_agent(self, agent_id: str) -> Agent:
        agent = self._agent(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}")
        return agent

    def list_agents(self) -> list[Agent]:
        return [Agent(*row) for row in self._conn.execute(_AGENTS)]

    def remove_agent(self, agent_id: str, *, force: bool = False, now: float) -> list[Lease]:
        """Remove an agent, its lease history and its API keys; the active leases it ended,
        if forced.

        Refused (``StoreError``) while the agent holds active leases unless ``force``.
        """
        with self.store.write():
            self.get_agent(agent_id)
            active = self._leases(_ACTIVE_BY_AGENT, (agent_id, now))
            if active and not force:
                ips = ", ".join(lease.ip for lease in active)
                raise StoreError(
                    f"agent {agent_id!r} holds {len(active)} active lease(s) ({ips}):"
                    " revoke them first, or force the removal (--force) to revoke them"
                )
            self._conn.execute("DELETE FROM leases WHERE agent_id = ?", (agent_id,))
            self._conn.execute("DELETE FROM agents WHERE agent_id = ?", (agent_id,))
            self.store.bump(IDENTITY_DOMAIN)
        return [replace(lease, revoked_at=now, revoke_reason=AGENT_REMOVED) for lease in active]

    # -- leases -------------------------------------------------------------------------

    def grant_lease(
        self,
        ip: AddressLike,
        agent_id: str,
        *,
        iface: str | None = None,
        ttl_s: int | None = None,
        now: float,
    ) -> Lease:
        """Lease ``ip`` to ``agent_id`` on ``iface`` for ``ttl_s`` seconds, or renew it.

        ``iface`` and ``ttl_s`` default by the rules (the interface whose subnets hold
        ``ip``; the default TTL). ``StoreError`` if the address, interface or TTL is not
        allowed or the address is actively leased to another agent or interface;
        ``NotFound`` if the agent is not registered.
        """
        addr = _address(ip, lease=True)
        try:
            iface = self.rules.interface(addr, iface)
            ttl = self.rules.ttl(ttl_s)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        text = str(addr)
        expires_at = now + ttl
        with self.store.write():
            if self._agent(agent_id) is None:
                raise NotFound(f"no agent {agent_id!r}: add it before leasing it an address")
            held = self._active(text, now)
            if held is not None:
                if held.agent_id != agent_id or held.iface != iface:
                    left = format_duration(held.expires_at - now)
                    raise StoreError(
                        f"{text} is leased to agent {held.agent_id!r} on {held.iface} for"
                        f" another {left}: revoke that lease first"
                    )
                self._conn.execute(
                    "UPDATE leases SET expires_at = ? WHERE id = ?", (expires_at, held.id)
                )
                self.store.bump(IDENTITY_DOMAIN)
                return replace(held, expires_at=expires_at)
            cur = self._conn.execute(
                "INSERT INTO leases(ip, iface, agent_id, granted_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (text, iface, agent_id, now, expires_at),
            )
            self.store.bump(IDENTITY_DOMAIN)
        assert cur.lastrowid is not None
        return Lease(cur.lastrowid, text, iface, agent_id, now, expires_at)

    def revoke_lease(self, ip: AddressLike, *, now: float, reason: str = "revoked") -> Lease:
        """End the active lease of ``ip``; ``NotFound`` if there is none."""
        text = str(_address(ip))
        try:
            check_reason(reason)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        with self.store.write():
            held = self._active(text, now)
            if held is None:
                raise NotFound(f"no active lease for {text}")
            self._conn.execute(
                "UPDATE leases SET revoked_at = ?, revoke_reason = ? WHERE id = ?",
                (now, reason, held.id),
            )
            self.store.bump(IDENTITY_DOMAIN)
        return replace(held, revoked_at=now, revoke_reason=reason)

    def get_lease(self, ip: AddressLike, now: float, *, include_inactive: bool = False) -> Lease:
        """The active lease of ``ip``, or with ``include_inactive`` its latest lease.

        ``NotFound`` if there is none.
        """
        text = str(_address(ip))
        found = self._leases(
            _LATEST_BY_IP if include_inactive else _ACTIVE_BY_IP,
            (text,) if include_inactive else (text, now),
        )
        lease = found[0] if found else None
        if lease is None:
            what = "lease" if include_inactive else "active lease"
            raise NotFound(f"no {what} for {text}")
        return lease

    def list_leases(
        self, now: float, include_inactive: bool = False, *, agent_id: str | None = None
    ) -> list[Lease]:
        """Active leases (all of them with ``include_inactive``), by address then grant time."""
        found = self._leases(_LEASES, (include_inactive, now, agent_id))
        return sorted(found, key=_lease_order)

    # -- quarantine -----------------------------------------------------------------------

    def quarantine_agent(self, agent_id: str, *, reason: str, now: float) -> Quarantine:
        """Flag ``agent_id`` as quarantined (kept as it was if it already is)."""
        try:
            check_reason(reason)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        with self.store.write():
            self.get_agent(agent_id)
            held = self._quarantine(agent_id)
            if held is not None:
                return held
            self._conn.execute(
                "INSERT INTO quarantines(agent_id, since, reason) VALUES (?, ?, ?)",
                (agent_id, now, reason),
            )
            self.store.bump(IDENTITY_DOMAIN)
        return Quarantine(agent_id, now, reason)

    def release_agent(self, agent_id: str, *, now: float) -> Quarantine:
        """Lift the quarantine of ``agent_id``; ``NotFound`` if it is not quarantined."""
        del now  # releases are audited by the caller; kept for a uniform signature
        with self.store.write():
            self.get_agent(agent_id)
            held = self._quarantine(agent_id)
            if held is None:
                raise NotFound(f"agent {agent_id!r} is not quarantined")
            self._conn.execute("DELETE FROM quarantines WHERE agent_id = ?", (agent_id,))
            self.store.bump(IDENTITY_DOMAIN)
        return held

    def quarantine_of(self, agent_id: str) -> Quarantine | None:
        return self._quarantine(agent_id)

    def quarantines(self) -> dict[str, Quarantine]:
        """Every quarantined agent, by id."""
        rows = self._conn.execute("SELECT agent_id, since, reason FROM quarantines")
        return {row[0]: Quarantine(*row) for row in rows}

    # -- API keys -----------------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> ApiKey:
        """Store ``key`` (from ``new_api_key``) for its agent.

        ``NotFound`` if the agent is not registered; ``StoreError`` if the key id is
        malformed or taken, the label is invalid, or the key is already revoked.
        """
        if _API_KEY_ID.fullmatch(key.key_id) is None:
            raise StoreError(f"invalid API key id {key.key_id[:40]!r}: expected 16 hex digits")
        if key.revoked:
            raise StoreError("a new API key cannot be revoked already")
        try:
            check_label(key.label)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        with self.store.write():
            if self._agent(key.agent_id) is None:
                raise NotFound(f"no agent {key.agent_id!r}: add it before giving it a key")
            if self._api_key(key.key_id) is not None:
                raise StoreError(f"API key id {key.key_id} is taken")
            self._conn.execute(
                "INSERT INTO api_keys(key_id, agent_id, hash, created_at, label)"
                " VALUES (?, ?, ?, ?, ?)",
                (key.key_id, key.agent_id, key.hash, key.created_at, key.label),
            )
            self.store.bump(IDENTITY_DOMAIN)
        return key

    def list_api_keys(self, agent_id: str) -> list[ApiKey]:
        """``agent_id``'s keys, revoked ones too, oldest first; ``NotFound`` for no agent."""
        self.get_agent(agent_id)
        rows = self._conn.execute(_API_KEYS_OF_AGENT, (agent_id,))
        return [ApiKey(*row) for row in rows]

    def get_api_key(self, key_id: str) -> ApiKey:
        key = self._api_key(key_id)
        if key is None:
            raise NotFound(f"no API key {key_id!r}")
        return key

    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        """Revoke a key from ``now`` on; ``NotFound`` if there is no such key,
        ``StoreError`` if it is revoked already."""
        with self.store.write():
            key = self.get_api_key(key_id)
            if key.revoked:
                raise StoreError(f"API key {key_id} is revoked already")
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (now, key_id)
            )
            self.store.bump(IDENTITY_DOMAIN)
        return replace(key, revoked_at=now)

    def api_keys_by_id(self) -> dict[str, ApiKey]:
        """Every key by id, revoked ones included, for the engine's per-request check.

        Read ``generation()`` first and reload when it moves, as with ``lease_table``.
        """
        return {row[0]: ApiKey(*row) for row in self._conn.execute(_API_KEYS)}

    # -- resolution ---------------------------------------------------------------------

    def identity_for(self, ip: AddressLike, iface: str, now: float) -> Identity | None:
        """Who holds ``ip`` on ``iface`` at ``now``; ``None`` if nobody does."""
        text = str(_address(ip))
        row = self._conn.execute(_IDENTITY_FOR, (text, iface, now)).fetchone()
        return Identity(*row) if row else None

    def lease_table(self, now: float) -> LeaseTable:
        """A snapshot of the leases active at ``now`` for the data plane.

        The generation is read before the leases, so the table is never older than the
        generation it carries: a write in between only causes one extra rebuild.
        """
        generation = self.generation()
        rows = self._conn.execute(_ACTIVE_WITH_AGENTS, (now,)).fetchall()
        pairs = [(Lease(*row[:8]), Identity(*row[8:])) for row in rows]
        return LeaseTable.build(pairs, generation=generation, now=now)

    # -- rows ---------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent | None:
        row = self._conn.execute(_AGENT_BY_ID, (agent_id,)).fetchone()
        return Agent(*row) if row else None

    def _quarantine(self, agent_id: str) -> Quarantine | None:
        row = self._conn.execute(
            "SELECT agent_id, since, reason FROM quarantines WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        return Quarantine(*row) if row else None

    def _api_key(self, key_id: str) -> ApiKey | None:
        row = self._conn.execute(_API_KEY_BY_ID, (key_id,)).fetchone()
        return ApiKey(*row) if row else None

    def _active(self, ip: str, now: float) -> Lease | None:
        found = self._leases(_ACTIVE_BY_IP, (ip, now))
        return found[0] if found else None

    def _leases(self, query: str, params: Sequence[Any]) -> list[Lease]:
        return [Lease(*row) for row in self._conn.execute(query, tuple(params))]


def _address(ip: AddressLike, *, lease: bool = False) -> IPAddress:
    try:
        return leasable(ip) if lease else to_address(ip)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def _lease_order(lease: Lease) -> tuple[int, bytes, float, int]:
    addr = to_address(lease.ip)
    return (addr.version, addr.packed, lease.granted_at, lease.id)
