"""The root ``clawgress`` group and its error handling."""

from __future__ import annotations

import sys
from typing import Any

import click

from gatewayd import __version__
from gatewayd.cli.context import CliContext
from gatewayd.errors import ClawgressError


class _Root(click.Group):
    """The root group: maps Clawgress errors to one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClawgressError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CLAWGRESS_CONFIG",
    help="Gateway configuration file [env CLAWGRESS_CONFIG; default /etc/clawgress/gateway.yaml].",
)
@click.version_option(__version__, prog_name="clawgress")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Clawgress: egress governance for autonomous AI workloads."""
    ctx.obj = CliContext(config_path)
    ctx.call_on_close(ctx.obj.close)
