"""``clawgress quota show|reset``: usage against limits, and forgetting counters.

The quotas are those of the policy bundle the gateway enforces (its last-known-good file,
verified as at load), or of the YAML files given with ``--file``. Counters are read from
the configured backend (``quota.backend``). The work is done by ``gatewayd.quota.status``;
these commands only print what it returns.
"""

from __future__ import annotations

from pathlib import Path

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_json, emit_table
from gatewayd.config import Config
from gatewayd.errors import ClawgressError
from gatewayd.identity import Registry
from gatewayd.policy.activation import Trust
from gatewayd.policy.bundle_files import read_bundle_file
from gatewayd.policy.signing import verify_bundle
from gatewayd.quota.backends import open_ledger
from gatewayd.quota.documents import QuotaDocument, Scope, parse_quota_file
from gatewayd.quota.plan import QuotaPlan, compile_quotas
from gatewayd.quota.settings import QuotaSettings
from gatewayd.quota.status import TABLE_COLUMNS, ResetSelection, reset_counters, usage_rows

_SUFFIXES = (".yaml", ".yml")


def quota_settings(config: Config) -> QuotaSettings:
    """The configuration's ``quota:`` section."""
    return config.quota


def read_quota_files(paths: tuple[str, ...]) -> list[QuotaDocument]:
    """The ``Quota`` documents of files, and of ``*.yaml``/``*.yml`` files in folders."""
    docs: list[QuotaDocument] = []
    for name in paths:
        path = Path(name)
        files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES) if path.is_dir() \
            else [path]
        for f in files:
            try:
                text = f.read_bytes()
            except OSError as exc:
                raise ClawgressError(f"{f}: cannot read: {exc.strerror or exc}") from None
            docs.extend(parse_quota_file(text, str(f)))
    return docs


def active_quota_documents(config: Config, now: float) -> list[QuotaDocument]:
    """The ``Quota`` documents of the bundle a gateway enforces (its last-known-good file),
    verified with the configured trust."""
    policy = config.policy
    path = policy.last_known_good
    if not path.exists():
        raise ClawgressError(f"no policy bundle at {path} (policy.last_known_good): publish one,"
                             " or name quota documents with --file")
    trust = Trust.from_config(policy)
    bundle = verify_bundle(read_bundle_file(path, trust.limits), keys=trust.keys,
                           limits=trust.limits, now=now,
                           require_signature=trust.require_signature, allow_expired=True)
    docs: list[QuotaDocument] = []
    for name in sorted(bundle.documents):
        docs.extend(parse_quota_file(bundle.documents[name], name))
    return docs


def load_plan(obj: CliContext, files: tuple[str, ...]) -> QuotaPlan:
    docs = read_quota_files(files) if files else active_quota_documents(obj.config, obj.now())
    return compile_quotas(docs)


_FILE = click.option(
    "--file", "-f", "files", multiple=True, type=click.Path(exists=True),
    help="Quota documents to use instead of the active bundle's (files or folders; repeat).",
)


@click.group("quota")
def quota() -> None:
    """Show usage against quotas and budgets; reset counters."""


@quota.command("show")
@click.option("--agent", "agent_id", help="Every quota that applies to this registered agent.")
@click.option("--team", help="The team-scoped quotas of this team.")
@click.option("--project", help="The project-scoped quotas of this project.")
@_FILE
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def show(obj: CliContext, agent_id: str | None, team: str | None, project: str | None,
         files: tuple[str, ...], as_json: bool) -> None:
    """Usage against each quota's limit: per quota and subject, in its current window,
    with what is left and when the window gives room again.

    Without a selection: every counter the backend holds, and every subject a quota's
    selector names.
    """
    if sum(x is not None for x in (agent_id, team, project)) > 1:
        raise ClawgressError("choose one of --agent, --team and --project")
    plan = load_plan(obj, files)
    who = Registry(obj.store()).get_agent(agent_id).identity if agent_id else None
    ledger = open_ledger(quota_settings(obj.config), obj.config.store.path)
    try:
        rows = usage_rows(plan, ledger, obj.now(), who=who, team=team, project=project)
    finally:
        ledger.close()
    if as_json:
        emit_json([row.as_dict() for row in rows])
    elif not rows:
        click.echo("no quota applies" if agent_id or team or project else "no quota counters")
    else:
        emit_table([row.table_row() for row in rows], TABLE_COLUMNS)


@quota.command("reset")
@click.option("--quota", "quota_id", help="Only this quota's counters.")
@click.option("--agent", help="The counters of this agent (agent-scoped quotas).")
@click.option("--team", help="The counters of this team (team-scoped quotas).")
@click.option("--project", help="The counters of this project (project-scoped quotas).")
@click.option("--environment", help="The counters of this environment.")
@click.option("--credential", help="The counters of this credential.")
@click.option("--all", "everything", is_flag=True, help="Every counter of every quota.")
@click.option("--yes", "confirm", is_flag=True,
              help="Reset; without it the counters are only listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def reset(obj: CliContext, quota_id: str | None, agent: str | None, team: str | None,
          project: str | None, environment: str | None, credential: str | None,
          everything: bool, confirm: bool, as_json: bool) -> None:
    """Forget usage, holds and buckets of the selected counters (their budget starts
    afresh). Say what: --quota, a subject (--agent, --team...), both, or --all; and
    confirm with --yes."""
    subjects = [(Scope(s), v) for s, v in (("agent", agent), ("team", team),
                                           ("project", project), ("environment", environment),
                                           ("credential", credential)) if v is not None]
    if len(subjects) > 1:
        raise ClawgressError("name one subject: --agent, --team, --project, --environment"
                             " or --credential")
    scope, subject = subjects[0] if subjects else (None, None)
    selection = ResetSelection(quota_id, scope, subject, everything)
    ledger = open_ledger(quota_settings(obj.config), obj.config.store.path)
    try:
        result = reset_counters(ledger, selection, confirm=confirm)
    finally:
        ledger.close()
    if as_json:
        emit_json(result.as_dict())
    elif not result.counters:
        click.echo(f"no counters of {selection.describe()}")
    else:
        for counter in result.counters:
            click.echo(counter)
        if result.done:
            click.echo(f"reset {result.reset} counters of {selection.describe()}")
    if result.counters and not result.done:
        raise ClawgressError(f"nothing reset: {len(result.counters)} counters of"
                             f" {selection.describe()} listed; add --yes to reset them")
