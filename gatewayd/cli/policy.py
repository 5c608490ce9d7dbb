"""``clawgress policy ...``: validate documents, test decisions, and (in ``policy_bundle``)
build, sign, verify and publish bundles."""

from __future__ import annotations

import ipaddress
import re

import click

from gatewayd.cli import policy_bundle
from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.errors import ClawgressError, PolicyError
from gatewayd.identity import Identity, Registry
from gatewayd.policy import Guard, Plan, Request, compile_plan, explain, parse_documents
from gatewayd.policy.activation import load_active
from gatewayd.policy.decision import IPAddress
from gatewayd.policy.documents import parse_quotas
from gatewayd.policy.sources import read_policy_files


@click.group("policy")
def group() -> None:
    """Author, check, test and publish policy."""


for _command in policy_bundle.COMMANDS:
    group.add_command(_command)


@group.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.pass_obj
def validate(obj: CliContext, paths: tuple[str, ...]) -> None:
    """Validate and compile policy documents (files, or folders of *.yaml): policies and
    quotas.

    Every problem is reported with its file, document, rule id and field; exit code 2
    if there is any.
    """
    files = read_policy_files(paths)
    docs = parse_documents(files)
    plan = compile_plan(docs, bundle_version=None, guard=Guard.from_config(obj.config),
                        quotas=parse_quotas(files))
    quotas = f", {len(plan.quotas)} quotas" if len(plan.quotas) else ""
    click.echo(f"ok: {len(docs)} policies, {len(plan)} rules{quotas}")


_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")


def parse_destination(text: str) -> tuple[str | None, IPAddress | None, int | None]:
    """``HOST``, ``HOST:PORT``, ``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
    try:
        return None, ipaddress.ip_address(text), None
    except ValueError:
        pass
    m = _HOST_PORT.match(text.strip())
    if not m:
        raise ClawgressError(f"--dest {text!r}: expected HOST[:PORT], IP[:PORT] or [IPv6]:PORT")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise ClawgressError(f"--dest {text!r}: port must be 1-65535")
    if m.group("v6"):
        try:
            return None, ipaddress.IPv6Address(m.group("v6")), port
        except ValueError:
            raise ClawgressError(f"--dest {text!r}: not an IPv6 address") from None
    host = m.group("host")
    try:
        return None, ipaddress.ip_address(host), port
    except ValueError:
        return host.lower().rstrip("."), None, port


def _plan(obj: CliContext, policy_paths: tuple[str, ...]) -> tuple[Plan, str]:
    if policy_paths:
        docs = parse_documents(read_policy_files(policy_paths))
        plan = compile_plan(docs, bundle_version=None, guard=Guard.from_config(obj.config))
        return plan, "documents " + ", ".join(policy_paths)
    active = load_active(obj.store(), obj.config, obj.now())
    where = f"version {active.version} ({active.source})" if active.version is not None else (
        active.source)
    for problem in active.problems:
        click.echo(f"warning: {problem}", err=True)
    return active.plan, f"active bundle, {where}"


@group.command("test")
@click.option("--agent", "agent_id", required=True, help="Agent to decide for (from the store).")
@click.option("--dest", required=True, help="Destination: HOST[:PORT], IP[:PORT] or [IPv6]:PORT.")
@click.option("--ip", "ip_text", help="Address HOST resolved to (for CIDR and guard checks).")
@click.option("--proto", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True)
@click.option("--sni", help="TLS server name seen on the flow.")
@click.option("--method", help="HTTP method (makes this an L7 request).")
@click.option("--path", "req_path", help="HTTP path (makes this an L7 request).")
@click.option("--provider", help="AI provider, e.g. openai (makes this an L7 request).")
@click.option("--model", help="AI model name (makes this an L7 request).")
@click.option("--tool", "tools", multiple=True, help="Tool name called (repeatable; L7).")
@click.option("--dlp-class", "dlp_classes", multiple=True, help="DLP class found (repeatable; L7).")
@click.option("--tokens", type=click.IntRange(min=0), help="Prompt token estimate (L7).")
@click.option("--layer", type=click.Choice(["l4", "l7"]),
              help="Decide as the L4 engine or the L7 engine [default: l7 if any L7 field given].")
@click.option("--policy", "policy_paths", multiple=True, type=click.Path(),
              help="Test these documents (file or folder; repeatable), not the active bundle.")
@click.option("--all", "all_rules", is_flag=True,
              help="Also explain every rule the indexes skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def test(
    obj: CliContext,
    agent_id: str,
    dest: str,
    ip_text: str | None,
    proto: str,
    sni: str | None,
    method: str | None,
    req_path: str | None,
    provider: str | None,
    model: str | None,
    tools: tuple[str, ...],
    dlp_classes: tuple[str, ...],
    tokens: int | None,
    layer: str | None,
    policy_paths: tuple[str, ...],
    all_rules: bool,
    as_json: bool,
) -> None:
    """Decide a hypothetical request and explain the decision.

    Prints the decision, the rule that made it, and every rule that was considered and
    why it did not decide. Uses the active bundle unless --policy is given.
    """
    agent = Registry(obj.store()).get_agent(agent_id)
    identity = Identity(agent.agent_id, agent.team_id, agent.project_id, agent.environment,
                        agent.workload_fingerprint)
    host, ip, port = parse_destination(dest)
    if ip_text:
        if ip is not None:
            raise ClawgressError("--ip is for a destination given by name; --dest is an address")
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            raise ClawgressError(f"--ip {ip_text!r}: not an IP address") from None
    if host is None and sni:
        host = sni.lower().rstrip(".")
    l7_given = any(v is not None for v in (method, req_path, provider, model, tokens)) or bool(
        tools or dlp_classes)
    chosen = layer or ("l7" if l7_given else "l4")
    if chosen == "l4" and l7_given:
        raise PolicyError("L7 fields (--method, --path, ...) need --layer l7")
    request = Request(
        identity=identity,
        dest_ip=ip,
        host=host,
        port=port,
        protocol="udp" if proto == "udp" else "tcp",
        layer="l7" if chosen == "l7" else "l4",
        sni=sni,
        method=method.upper() if method else None,
        path=req_path,
        provider=provider,
        model=model,
        tools=tools,
        dlp_classes=dlp_classes,
        token_estimate=tokens,
    )
    plan, source = _plan(obj, policy_paths)
    result = explain(plan, request, obj.now(), all_rules=all_rules)
    if as_json:
        out = result.as_dict()
        out["policy_source"] = source
        emit_json(out)
        return
    d = result.decision
    emit_fields({
        "decision": str(d.action),
        "rule": f"{d.policy_id}/{d.rule_id} ({d.enforcement_mode})" if d.rule_id else None,
        "reason": d.reason,
        "shadow": (f"{d.shadow.action} by {d.shadow.policy_id}/{d.shadow.rule_id} (report mode,"
                   " not enforced)") if d.shadow and d.shadow.rule_id else (
                       d.shadow.reason if d.shadow else None),
        "guarded": result.guarded,
        "flags": list(d.flags),
        "policy": source,
    })
    if result.considered:
        click.echo("\nconsidered, in rank order:")
        emit_table(
            [
                {"#": i, "rule": f"{c.policy_id}/{c.rule_id}", "action": c.action, "mode": c.mode,
                 "priority": c.priority, "matched on": c.via, "outcome": c.outcome, "why": c.why}
                for i, c in enumerate(result.considered, 1)
            ],
            ["#", "rule", "action", "mode", "priority", "matched on", "outcome", "why"],
        )
    if result.not_candidate_count:
        click.echo(f"\n{result.not_candidate_count} other rules cannot match (identity,"
                   " destination or port)" + ("" if all_rules else "; --all lists them"))
        for rule, why in result.not_candidates:
            click.echo(f"  {rule}: {why}")
