"""``clawgress agent add|list|show|remove|quarantine|release``: the agents leases and
policies refer to."""

from __future__ import annotations

from typing import Any

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.lease import iso_time, lease_json, open_registry
from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.duration import format_duration
from gatewayd.identity import Agent

_NAMES = (
    "AGENT_ID, --team, --project and --env: 1 to 128 letters, digits, '.', '_', ':' or '-',"
    " starting with a letter or digit."
)


def agent_json(agent: Agent) -> dict[str, Any]:
    """An agent for ``--json``: its identity and when it was added."""
    return {
        **agent.identity.as_dict(),
        "created_at": iso_time(agent.created_at),
        "created_at_unix": agent.created_at,
    }


@click.group("agent")
def group() -> None:
    """Register, list, show and remove agents (the identities leases bind addresses to)."""


@group.command("add", epilog=_NAMES)
@click.argument("agent_id")
@click.option("--team", "team_id", required=True, help="Team that owns the agent.")
@click.option("--project", "project_id", required=True, help="Project the agent works for.")
@click.option("--env", "environment", required=True, help="Environment (e.g. dev, prod).")
@click.option(
    "--fingerprint",
    default="",
    help="Workload fingerprint, e.g. an image digest (printable ASCII, no spaces).",
)
@click.pass_obj
def add(
    obj: CliContext,
    *,
    agent_id: str,
    team_id: str,
    project_id: str,
    environment: str,
    fingerprint: str,
) -> None:
    """Register agent AGENT_ID with its canonical identity."""
    agent = open_registry(obj).add_agent(
        agent_id,
        team_id=team_id,
        project_id=project_id,
        environment=environment,
        workload_fingerprint=fingerprint,
        now=obj.now(),
    )
    click.echo(
        f"added agent {agent.agent_id} (team {agent.team_id}, project {agent.project_id},"
        f" environment {agent.environment})"
    )


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of agents.")
@click.pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """List registered agents and the addresses they hold now."""
    now = obj.now()
    registry = open_registry(obj)
    held: dict[str, list[str]] = {}
    for lease in registry.list_leases(now):
        held.setdefault(lease.agent_id, []).append(lease.ip)
    agents = registry.list_agents()
    if as_json:
        emit_json([{**agent_json(a), "active_leases": held.get(a.agent_id, [])} for a in agents])
        return
    rows = [
        {
            "agent": a.agent_id,
            "team": a.team_id,
            "project": a.project_id,
            "environment": a.environment,
            "fingerprint": a.workload_fingerprint,
            "leases": held.get(a.agent_id, []),
            "created": iso_time(a.created_at),
        }
        for a in agents
    ]
    emit_table(
        rows, ("agent", "team", "project", "environment", "fingerprint", "leases", "created")
    )


@group.command("show")
@click.argument("agent_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with the active leases.")
@click.pass_obj
def show(obj: CliContext, agent_id: str, as_json: bool) -> None:
    """Show an agent's identity and its active leases."""
    now = obj.now()
    registry = open_registry(obj)
    agent = registry.get_agent(agent_id)
    leases = registry.list_leases(now, agent_id=agent_id)
    held = registry.quarantine_of(agent_id)
    quarantine = None if held is None else {
        "since": iso_time(held.since), "since_unix": held.since, "reason": held.reason}
    if as_json:
        emit_json({**agent_json(agent), "leases": [lease_json(x, now) for x in leases],
                   "quarantine": quarantine})
        return
    emit_fields(
        {
            "agent": agent.agent_id,
            "quarantined": None if held is None else f"since {iso_time(held.since)}:"
            f" {held.reason}",
            "team": agent.team_id,
            "project": agent.project_id,
            "environment": agent.environment,
            "fingerprint": agent.workload_fingerprint,
            "created": iso_time(agent.created_at),
            "leases": [
                f"{x.ip} on {x.iface} until {iso_time(x.expires_at)}"
                f" ({format_duration(x.remaining(now))})"
                for x in leases
            ],
        }
    )


@group.command("remove")
@click.argument("agent_id")
@click.option(
    "--force",
    is_flag=True,
    help="Revoke the agent's active leases too (without it, removal is refused while it"
    " holds any).",
)
@click.pass_obj
def remove(obj: CliContext, agent_id: str, force: bool) -> None:
    """Remove an agent and its lease history.

    Refused while the agent holds active leases, unless --force, which revokes them first
    (reason "agent removed"); their addresses then have no identity.
    """
    ended = open_registry(obj).remove_agent(agent_id, force=force, now=obj.now())
    for lease in ended:
        click.echo(f"revoked lease of {lease.ip} on {lease.iface} ({lease.revoke_reason})")
    click.echo(f"removed agent {agent_id}")


@group.command("quarantine")
@click.argument("agent_id")
@click.option("--reason", required=True, help="Why (recorded, shown, audited).")
@click.pass_obj
def quarantine(obj: CliContext, agent_id: str, reason: str) -> None:
    """Quarantine an agent: every flow it opens is denied, and the verdict engine ends its
    established flows within a second. Its identity and leases are kept.

    Lifted with `clawgress agent release`.
    """
    held = open_registry(obj).quarantine_agent(agent_id, reason=reason, now=obj.now())
    click.echo(f"agent {agent_id} is quarantined since {iso_time(held.since)}: {held.reason}")


@group.command("release")
@click.argument("agent_id")
@click.pass_obj
def release(obj: CliContext, agent_id: str) -> None:
    """Lift an agent's quarantine: its new flows are decided by policy again."""
    open_registry(obj).release_agent(agent_id, now=obj.now())
    click.echo(f"agent {agent_id} is released")
