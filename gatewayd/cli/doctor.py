"""``clawgress doctor``: is the kernel side of this gateway in order?

Exit code 0 when nothing is wrong, 1 when problems were found (each listed), 2 for a
user error such as an invalid configuration.
"""

from __future__ import annotations

import sys

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_json
from gatewayd.netfilter import TABLE, Health, check_health

UNHEALTHY_EXIT = 1


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def doctor(obj: CliContext, as_json: bool) -> None:
    """Check the queue backend, the ruleset, fail modes, forwarding, queues, the L7
    engine's divert (tproxy, policy routing, bridge netfilter) and tools."""
    health = check_health(obj.config)
    if as_json:
        emit_json(health.to_json())
    else:
        _print(health)
    if health.problems:
        sys.exit(UNHEALTHY_EXIT)


def _print(h: Health) -> None:
    out = click.echo
    if h.backend:
        out(f"queue backend: {h.backend.backend} (configured {h.backend.requested})")
        out(f"  why: {h.backend.reason}")
    else:
        out("queue backend: none")
    for name, cap in (("native", h.capabilities.native), ("xtables", h.capabilities.xtables)):
        out(f"  {name}: {'yes' if cap.available else 'no'} - {cap.detail}")
    t = h.table
    if not t.present:
        out(f"table {TABLE}: not loaded")
    else:
        verdict = "matches the render" if t.matches else "DIFFERS from the render"
        out(f"table {TABLE}: loaded, {verdict} (digest {t.live_digest}, render {t.render_digest})")
        for diff in t.differences or ():
            out(f"  {diff}")
        if t.note:
            out(f"  {t.note}")
    if h.xtables_expected or h.xtables_stray:
        present = len(h.xtables_expected) - len(h.xtables_missing)
        out(f"xtables rules: {present} of {len(h.xtables_expected)} present")
        for rule in h.xtables_missing:
            out(f"  missing: {rule}")
        for rule in h.xtables_stray:
            out(f"  stray: {rule}")
    out("workload interfaces:" if h.interfaces else "workload interfaces: none configured")
    for i in h.interfaces:
        out(f"  {i.name}: environment {i.environment}, {i.fail_mode}")
    fwd = ", ".join(f"{k}={v if v is not None else '?'}" for k, v in h.forwarding.items())
    out(f"forwarding: {fwd}")
    out("queues:")
    for q in h.queues:
        s = q.stats
        if s is None or s.peer_portid == 0:
            out(f"  {q.role} queue {q.number}: no listener")
            continue
        out(
            f"  {q.role} queue {q.number}: listener {s.peer_portid}, waiting {s.queue_total},"
            f" dropped {s.queue_dropped} (queue full) + {s.user_dropped} (listener),"
            f" packets {s.id_sequence}"
        )
    if h.tproxy is not None:
        out(f"L7 divert: tproxy {'yes' if h.tproxy.available else 'no'} - {h.tproxy.detail}")
    if h.divert_routes is not None:
        out(f"  policy routing: {'in place' if h.divert_routes else 'MISSING'}")
    if h.bridge_problem:
        out(f"  {h.bridge_problem}")
    tools = ", ".join(f"{k} {'ok' if v else 'missing'}" for k, v in h.tools.items())
    out(f"tools: {tools}")
    mods = ", ".join(f"{k} {v}" for k, v in h.modules.items())
    out(f"python modules: {mods}")
    if h.problems:
        out(f"problems ({len(h.problems)}):")
        for p in h.problems:
            out(f"  - {p}")
    else:
        out("no problems found")
