from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gatewayd.identity import Identity
from gatewayd.policy import Guard, Plan, Request, compile_plan, parse_documents

RESEARCH = Identity("agent-1", "research", "alpha", "prod", "")
OTHER = Identity("agent-2", "ops", "beta", "dev", "")


def compile_yaml(text: str, *, version: int | None = 7, guard: Guard | None = None) -> Plan:
    docs = parse_documents({"p.yaml": text})
    return compile_plan(docs, bundle_version=version, guard=guard or Guard.builtin())


def req(
    host: str | None = None,
    ip: str | None = None,
    port: int | None = 443,
    identity: Identity | None = RESEARCH,
    **kw: Any,
) -> Request:
    return Request(
        identity=identity,
        host=host,
        dest_ip=ipaddress.ip_address(ip) if ip else None,
        port=port,
        **kw,
    )


def policy(rules: str, *, pid: str = "p", extra: str = "") -> str:
    """A one-policy document with the given (indented) rules YAML."""
    return (
        f"apiVersion: clawgress.io/v1\nkind: Policy\nmetadata: {{id: {pid}}}\n"
        f"spec:\n{extra}  rules:\n{rules}"
    )


@pytest.fixture
def research() -> Identity:
    return RESEARCH
