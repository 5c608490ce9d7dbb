"""``clawgress lab up|down|status|exec``: the network-namespace lab (``docs/lab.md``).

The lab is found by its state directory (``--state``, default ``/run/clawgress-lab``),
whose ``lab.json`` names its prefix; ``--prefix`` names it when that record is gone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.lab import DEFAULT_AGENTS, DEFAULT_DNS_TTL, DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from gatewayd.lab.plan import MAX_AGENTS

_state_option = click.option(
    "--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR, show_default=True, envvar="CLAWGRESS_LAB_STATE",
    help="The lab's state directory [env CLAWGRESS_LAB_STATE].",
)


_FC = TypeVar("_FC", bound=Callable[..., Any])


def _prefix_option(help_text: str) -> Callable[[_FC], _FC]:
    return click.option("--prefix", default=None, metavar="PREFIX", help=help_text)


@click.group("lab")
def group() -> None:
    """A gateway, agents and an upstream in network namespaces, on this host (needs root)."""


@group.command("up")
@_state_option
@_prefix_option(f"Prefix of every namespace name [default: {DEFAULT_PREFIX}].")
@click.option("--agents", type=click.IntRange(1, MAX_AGENTS), default=DEFAULT_AGENTS,
              show_default=True, help="How many agent namespaces.")
@click.option("--fail-mode", type=click.Choice(["fail-closed", "fail-open"]),
              default="fail-closed", show_default=True,
              help="What the lab gateway does with new flows while the engine is down.")
@click.option("--dns-ttl", type=click.IntRange(0, 86400), default=DEFAULT_DNS_TTL,
              show_default=True, help="TTL of the lab DNS answers, in seconds.")
@click.option("--no-engine", is_flag=True,
              help="Build the network only: no Clawgress ruleset, no verdict engine.")
@click.option("--replace", is_flag=True, help="Take down a lab already up here first.")
def up(state_dir: Path, prefix: str | None, agents: int, fail_mode: str, dns_ttl: int,
       no_engine: bool, replace: bool) -> None:
    """Build the lab and, unless --no-engine, start the gateway's ruleset and engine."""
    lab = Lab(prefix or DEFAULT_PREFIX, state_dir, agents,
              "fail-open" if fail_mode == "fail-open" else "fail-closed", dns_ttl)
    lab.up(engine=not no_engine, replace=replace)
    emit_fields({
        "lab": f"{lab.prefix} is up",
        "gateway": f"{lab.plan.gateway_ns} (wl0 10.77.0.1, up0 10.78.0.1; {fail_mode})",
        "engine": f"pid {lab.engine_pid()}" if lab.engine_alive() else "not running",
        "agents": ", ".join(
            f"a{i} {lab.agent_address(i).v4}" for i in lab.plan.agent_indexes
        ),
        "names": ", ".join(lab.names),
        "config": lab.config_path,
        "ca bundle": lab.ca_bundle,
        "signing key": lab.signing_key,
    })
    click.echo(f"try: clawgress lab exec a1 -- curl -s https://{lab.names[0]}/")


@group.command("down")
@_state_option
@_prefix_option("The lab's prefix when its state directory is gone [default: from the"
                f" state directory, else {DEFAULT_PREFIX}].")
def down(state_dir: Path, prefix: str | None) -> None:
    """Remove everything of the lab: processes, namespaces, /etc/netns entries, state."""
    lab = Lab.attach(state_dir, prefix)
    lab.down()
    click.echo(f"lab {lab.prefix} is down")


@group.command("status")
@_state_option
@_prefix_option(f"The lab's prefix [default: from the state directory, else {DEFAULT_PREFIX}].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(state_dir: Path, prefix: str | None, as_json: bool) -> None:
    """Namespaces and their addresses, processes, the engine, the state directory."""
    report = Lab.attach(state_dir, prefix).status()
    if as_json:
        emit_json(report)
        return
    emit_fields({
        "lab": f"{report['prefix']} ({'up' if report['up'] else 'not up'})",
        "state": report["state_dir"],
        "config": report["config"],
        "engine": (f"running, pid {report['engine']['pid']}, queues"
                   f" {report['engine']['queues']}" if report["engine"]["alive"]
                   else "not running"),
    })
    click.echo()
    emit_table([
        {"namespace": n["name"], "role": n["role"], "present": "yes" if n["present"] else "no",
         "addresses": [a for addrs in n.get("addresses", {}).values() for a in addrs
                       if not a.startswith(("127.", "::1/"))]}
        for n in report["namespaces"]
    ], ["namespace", "role", "present", "addresses"])
    if report["processes"]:
        click.echo()
        emit_table([{**p, "alive": "yes" if p["alive"] else "no"} for p in report["processes"]],
                   ["name", "namespace", "pid", "alive"])
    for item in report["leftovers"]:
        click.echo(f"left over: {item}")


@group.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@_state_option
@_prefix_option(f"The lab's prefix [default: from the state directory, else {DEFAULT_PREFIX}].")
@click.argument("agent")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(state_dir: Path, prefix: str | None, agent: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in AGENT's namespace (a1 or PREFIX-a1; also gw, up), the lab CA trusted
    (SSL_CERT_FILE, CURL_CA_BUNDLE). Exits with COMMAND's exit code.

        clawgress lab exec a1 -- curl -s https://api.openai.com/
    """
    argv = list(command[1:] if command[:1] == ("--",) else command)
    if not argv:
        raise click.UsageError("no command given after AGENT --")
    lab = Lab.attach(state_dir, prefix)
    lab.require_namespace(agent)
    done = lab.exec(agent, argv, check=False)
    code = done.returncode
    sys.exit(code if code >= 0 else 128 - code)
