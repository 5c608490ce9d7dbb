"""``clawgress lease grant|list|show|revoke``: bind source addresses to agents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.duration import format_duration, parse_duration
from gatewayd.errors import ClawgressError
from gatewayd.identity import Lease, LeaseRules, Registry

_COLUMNS = ("ip", "iface", "agent", "state", "granted", "expires", "remaining")


def open_registry(obj: CliContext) -> Registry:
    """The registry on the configured store, with the configured lease rules."""
    return Registry(obj.store(), LeaseRules.from_config(obj.config))


def iso_time(ts: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC to the second (``2025-01-31T12:00:00Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease_json(lease: Lease, now: float) -> dict[str, Any]:
    """A lease for ``--json``: fixed keys, times as ISO-8601 UTC and raw unix seconds."""
    return {
        "id": lease.id,
        "ip": lease.ip,
        "iface": lease.iface,
        "agent_id": lease.agent_id,
        "state": lease.state(now),
        "granted_at": iso_time(lease.granted_at),
        "granted_at_unix": lease.granted_at,
        "expires_at": iso_time(lease.expires_at),
        "expires_at_unix": lease.expires_at,
        "remaining_s": int(lease.remaining(now)),
        "revoked_at": iso_time(lease.revoked_at),
        "revoked_at_unix": lease.revoked_at,
        "revoke_reason": lease.revoke_reason,
    }


def lease_row(lease: Lease, now: float) -> dict[str, Any]:
    """A lease as one table row for people."""
    state = lease.state(now)
    return {
        "ip": lease.ip,
        "iface": lease.iface,
        "agent": lease.agent_id,
        "state": state,
        "granted": iso_time(lease.granted_at),
        "expires": iso_time(lease.expires_at),
        "remaining": format_duration(lease.remaining(now)) if state == "active" else None,
        "reason": lease.revoke_reason,
    }


@click.group("lease")
def group() -> None:
    """Grant, list, show and revoke leases (source address → agent, with a TTL).

    A lease binds an address to an agent only on the workload interface it was issued
    for; packets from that address on any other interface have no identity and are denied.
    """


@group.command("grant")
@click.argument("ip")
@click.option("--agent", "agent_id", required=True, help="Registered agent the address is for.")
@click.option(
    "--iface",
    help="Workload interface the lease binds to [default: the interface whose subnets"
    " contain IP]. Must be declared in the configuration and contain IP; required when"
    " the configuration declares no workload interfaces.",
)
@click.option(
    "--ttl",
    help="How long the lease lasts: 90s, 15m, 1h, 7d... [default: leases.default_ttl];"
    " at most leases.max_ttl.",
)
@click.pass_obj
def grant(obj: CliContext, ip: str, agent_id: str, iface: str | None, ttl: str | None) -> None:
    """Lease IP (IPv4 or IPv6) to an agent, or renew its lease.

    Granting an address again to the same agent on the same interface renews it: it then
    expires TTL from now. An address actively leased to another agent, or on another
    interface, is refused until that lease is revoked or expires.
    """
    ttl_s = None
    if ttl is not None:
        try:
            ttl_s = parse_duration(ttl)
        except ValueError as exc:
            raise ClawgressError(f"--ttl: {exc}") from None
    if iface is None and not obj.config.workload.interfaces:
        raise ClawgressError(
            "--iface is required: the configuration declares no workload interfaces"
        )
    now = obj.now()
    lease = open_registry(obj).grant_lease(ip, agent_id, iface=iface, ttl_s=ttl_s, now=now)
    click.echo(
        f"leased {lease.ip} on {lease.iface} to agent {lease.agent_id} until"
        f" {iso_time(lease.expires_at)} ({format_duration(lease.remaining(now))})"
    )


@group.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include expired and revoked leases.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of leases.")
@click.pass_obj
def list_(obj: CliContext, include_inactive: bool, as_json: bool) -> None:
    """List active leases (with --all, also expired and revoked ones), by address."""
    now = obj.now()
    leases = open_registry(obj).list_leases(now, include_inactive)
    if as_json:
        emit_json([lease_json(lease, now) for lease in leases])
        return
    columns = (*_COLUMNS, "reason") if include_inactive else _COLUMNS
    emit_table([lease_row(lease, now) for lease in leases], columns)


@group.command("show")
@click.argument("ip")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with the agent's identity.")
@click.pass_obj
def show(obj: CliContext, ip: str, as_json: bool) -> None:
    """Show IP's lease (its latest one if none is active) and who it resolves to."""
    now = obj.now()
    registry = open_registry(obj)
    lease = registry.get_lease(ip, now, include_inactive=True)
    identity = registry.get_agent(lease.agent_id).identity
    if as_json:
        emit_json({**lease_json(lease, now), "identity": identity.as_dict()})
        return
    row = lease_row(lease, now)
    emit_fields(
        {
            "ip": lease.ip,
            "iface": lease.iface,
            "state": row["state"],
            "agent": identity.agent_id,
            "team": identity.team_id,
            "project": identity.project_id,
            "environment": identity.environment,
            "fingerprint": identity.workload_fingerprint,
            "granted": row["granted"],
            "expires": row["expires"],
            "remaining": row["remaining"],
            "revoked": iso_time(lease.revoked_at),
            "reason": lease.revoke_reason,
        }
    )


@group.command("revoke")
@click.argument("ip")
@click.option(
    "--reason",
    default="revoked by operator",
    show_default=True,
    help="Why, recorded with the lease.",
)
@click.pass_obj
def revoke(obj: CliContext, ip: str, reason: str) -> None:
    """End IP's active lease now; the address then has no identity."""
    lease = open_registry(obj).revoke_lease(ip, now=obj.now(), reason=reason)
    click.echo(f"revoked lease of {lease.ip} on {lease.iface} (agent {lease.agent_id})")
