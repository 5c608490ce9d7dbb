"""``clawgress run``: the verdict engine, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from gatewayd.cli.context import CliContext


@click.command("run")
@click.option("--no-rules", is_flag=True,
              help="Do not apply or watch the ruleset (someone else manages it).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.pass_obj
def run(obj: CliContext, no_rules: bool, log_level: str) -> None:
    """Run the verdict engine: apply the ruleset, bind the NFQUEUEs, decide every new flow
    from the workload interfaces, and follow the store for lease and policy changes.

    Needs root (or CAP_NET_ADMIN). Stops on SIGTERM or SIGINT; the ruleset stays in place,
    so each environment's fail mode applies while the engine is down.
    """
    from gatewayd.verdict.engine import VerdictEngine  # noqa: PLC0415 - needs root-only libs

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = VerdictEngine(obj.config, manage_rules=not no_rules)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await engine.run(stop)

    try:
        import uvloop  # noqa: PLC0415 - optional speed-up; the standard loop works too
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
