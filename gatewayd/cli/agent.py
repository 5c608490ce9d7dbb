"""``clawgress agent add|list|show|remove|quarantine|release``: the agents leases and
policies refer to; ``clawgress agent key create|list|revoke``: their API keys."""

from __future__ import annotations

from typing import Any

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.lease import iso_time, lease_json, open_registry
from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.duration import format_duration
from gatewayd.errors import StoreError
from gatewayd.identity import Agent
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.api_keys import new_api_key

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


def api_key_json(key: ApiKey) -> dict[str, Any]:
    """An API key for ``--json``: never its text or its hash."""
    return {
        "key_id": key.key_id,
        "agent_id": key.agent_id,
        "label": key.label,
        "state": "revoked" if key.revoked else "active",
        "created_at": iso_time(key.created_at),
        "created_at_unix": key.created_at,
        "revoked_at": iso_time(key.revoked_at),
        "revoked_at_unix": key.revoked_at,
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


@group.group("key")
def key_group() -> None:
    """Create, list and revoke agents' API keys.

    An agent on the explicit proxy names itself with one in each request:

    \b
        Proxy-Authorization: Basic base64(AGENT_ID:KEY)

    Only a hash of each key is stored; the key is shown once, when it is created.
    """


_SHOWN_ONCE = (
    "This key will not be shown again: store it now (only its hash is kept). Agents send"
    " it as Proxy-Authorization: Basic base64(AGENT_ID:KEY)."
)


@key_group.command("create")
@click.argument("agent_id")
@click.option("--label", default="", help="What the key is for (up to 128 printable ASCII).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with the key.")
@click.pass_obj
def key_create(obj: CliContext, agent_id: str, label: str, as_json: bool) -> None:
    """Create an API key for AGENT_ID and print it, once."""
    registry = open_registry(obj)
    registry.get_agent(agent_id)
    try:
        issued = new_api_key(agent_id, now=obj.now(), label=label)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    registry.add_api_key(issued.record)
    if as_json:
        emit_json({**api_key_json(issued.record), "api_key": issued.token})
        click.echo(_SHOWN_ONCE, err=True)
        return
    click.echo(f"created API key {issued.key_id} for agent {agent_id}")
    click.echo(issued.token)
    click.echo(_SHOWN_ONCE)


@key_group.command("list")
@click.argument("agent_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of keys.")
@click.pass_obj
def key_list(obj: CliContext, agent_id: str, as_json: bool) -> None:
    """List AGENT_ID's API keys, revoked ones too.

    Shows ids, labels and dates: never the keys, which are not stored.
    """
    keys = open_registry(obj).list_api_keys(agent_id)
    if as_json:
        emit_json([api_key_json(k) for k in keys])
        return
    rows = [
        {
            "key_id": k.key_id,
            "label": k.label,
            "state": "revoked" if k.revoked else "active",
            "created": iso_time(k.created_at),
            "revoked": iso_time(k.revoked_at),
        }
        for k in keys
    ]
    emit_table(rows, ("key_id", "label", "state", "created", "revoked"))


@key_group.command("revoke")
@click.argument("key_id")
@click.pass_obj
def key_revoke(obj: CliContext, key_id: str) -> None:
    """Revoke API key KEY_ID: the gateway refuses it from then on."""
    key = open_registry(obj).revoke_api_key(key_id, now=obj.now())
    click.echo(f"revoked API key {key.key_id} of agent {key.agent_id}")
