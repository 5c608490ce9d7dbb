"""``clawgress config check|show``: validate and display the gateway configuration."""

from __future__ import annotations

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_json


@click.group("config")
def group() -> None:
    """Validate and show the gateway configuration."""


@group.command("check")
@click.pass_obj
def check(obj: CliContext) -> None:
    """Validate the configuration file; exit 2 with the field at fault if it is invalid."""
    cfg = obj.config
    source = obj.config_source
    where = str(source) if source else "built-in defaults (no configuration file)"
    click.echo(f"ok: {where}")
    for iface in cfg.workload.interfaces:
        nets = ", ".join(str(n) for n in iface.subnets)
        mode = cfg.fail_mode_for(iface.environment)
        click.echo(f"  interface {iface.name}: {nets} (environment {iface.environment}, {mode})")


@group.command("show")
@click.pass_obj
def show(obj: CliContext) -> None:
    """Print the effective configuration (defaults filled in) as JSON."""
    emit_json(obj.config.model_dump(mode="json"))
