"""``clawgress rules render|apply|show|flush``: the kernel ruleset, table ``inet clawgress``."""

from __future__ import annotations

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_json
from gatewayd.netfilter import (
    TABLE,
    Backend,
    NetfilterError,
    apply,
    flush,
    render_ruleset,
    select_backend,
    show,
    tagged_xtables_rules,
)
from gatewayd.netfilter.divert import ensure_divert_routes


@click.group("rules")
def group() -> None:
    """Render, apply, show and remove the Clawgress ruleset.

    The ruleset is one nftables table, inet clawgress, replaced atomically; with the
    xtables queue backend also one NFQUEUE rule per family in mangle PREROUTING and in
    filter FORWARD, tagged with the comment "clawgress". Nothing else is touched.
    """


@group.command("render")
@click.option(
    "--backend",
    type=click.Choice(["native", "xtables"]),
    help="Queue backend to render for [default: dataplane.queue_backend; auto probes].",
)
@click.pass_obj
def render(obj: CliContext, backend: Backend | None) -> None:
    """Print the ruleset for the configuration, without loading it.

    The output loads with `nft -f`; for the xtables backend the iptables rules follow as
    comments.
    """
    ruleset = render_ruleset(obj.config, backend or _configured_backend(obj))
    click.echo(ruleset.as_file(), nl=False)


@group.command("apply")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def apply_cmd(obj: CliContext, as_json: bool) -> None:
    """Probe the queue backend, render and load the ruleset in one transaction, and add
    the policy routing that delivers flows to inspect to the L7 engine (if missing)."""
    choice = select_backend(obj.config)
    ruleset = render_ruleset(obj.config, choice.backend)
    apply(ruleset)
    routes = ensure_divert_routes(obj.config)
    if as_json:
        emit_json(
            {
                "table": TABLE,
                "backend": choice.backend,
                "reason": choice.reason,
                "digest": ruleset.digest,
                "xtables_rules": [str(r) for r in ruleset.xtables],
                "routes_added": routes,
            }
        )
        return
    click.echo(f"applied table {TABLE}: backend {choice.backend}, digest {ruleset.digest}")
    click.echo(f"  backend: {choice.reason}")
    for rule in ruleset.xtables:
        click.echo(f"  {rule}")
    for route in routes:
        click.echo(f"  added {route}")


@group.command("show")
@click.pass_obj
def show_cmd(obj: CliContext) -> None:
    """Print the live table and our tagged xtables rules."""
    text = show()
    if text is None:
        raise NetfilterError(f"table {TABLE} is not loaded (clawgress rules apply loads it)")
    click.echo(text, nl=False)
    live = tagged_xtables_rules()
    if live:
        click.echo("# xtables NFQUEUE rules, live, tagged clawgress:")
        for rule in live:
            click.echo(f"# {rule}")


@group.command("flush")
@click.pass_obj
def flush_cmd(obj: CliContext) -> None:
    """Remove table inet clawgress and our tagged xtables rules, nothing else."""
    had_table, removed = flush()
    table = f"removed table {TABLE}" if had_table else f"table {TABLE} was not loaded"
    click.echo(f"{table}; removed {removed} xtables rule(s)")


def _configured_backend(obj: CliContext) -> Backend:
    requested = obj.config.dataplane.queue_backend
    if requested != "auto":
        return requested
    return select_backend(obj.config).backend
