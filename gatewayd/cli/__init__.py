"""The ``clawgress`` command line.

User errors (``ClawgressError``) print one ``error: ...`` line to stderr and exit with
code 2; a traceback means a bug. Each command group lives in its own module and is
registered here.
"""

from __future__ import annotations

from gatewayd.cli import (
    agent,
    ca,
    config_cmd,
    credential,
    doctor,
    keys,
    lab,
    lease,
    policy,
    quota,
    rules,
)
from gatewayd.cli.root import cli
from gatewayd.cli.run import run

cli.add_command(config_cmd.group)
cli.add_command(agent.group)
cli.add_command(lease.group)
cli.add_command(keys.group)
cli.add_command(policy.group)
cli.add_command(ca.group)
cli.add_command(lab.group)
cli.add_command(run)
cli.add_command(rules.group)
cli.add_command(doctor.doctor)
cli.add_command(quota.quota)
cli.add_command(credential.group)


def main() -> None:
    cli(prog_name="clawgress")


__all__ = ["cli", "main"]
