"""``clawgress policy validate`` and ``policy test``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policy"

POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: base}
spec:
  rules:
    - {id: openai, action: allow, identity: {team: research},
       destination: {hosts: [api.openai.com], ports: [443]}}
    - {id: pastes, action: deny, destination: {hosts: [pastebin.com]}}
    - {id: push, action: deny, destination: {hosts: [git.example]},
       l7: {methods: [POST], paths: ["/*/git-receive-pack"]}}
    - {id: git, action: allow, destination: {hosts: [git.example]}}
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def agent(run_cli: RunCli) -> str:
    result = run_cli("agent", "add", "bot", "--team", "research", "--project", "p", "--env",
                     "prod")
    assert result.exit_code == 0, result.output
    return "bot"


def test_validate_examples(run_cli: RunCli) -> None:
    result = run_cli("policy", "validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 4 policies, ")


def test_validate_reports_file_document_rule_and_field(
    run_cli: RunCli, expect_error: ExpectError, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("ports: [443]", "ports: [99999]"))
    result = run_cli("policy", "validate", str(bad))
    assert result.exit_code == 2
    assert f"{bad}: document 1 (policy base): rule openai (spec.rules[0])" in result.stderr
    assert "destination.ports" in result.stderr


def test_validate_reports_bad_condition(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("action: deny, destination: {hosts: [pastebin.com]}",
                                  "action: deny, when: 'request.modle == \"x\"'"))
    result = run_cli("policy", "validate", str(bad))
    assert result.exit_code == 2
    assert "policy base rule pastes: when:" in result.stderr
    assert "request has no field modle" in result.stderr


def test_validate_missing_path(run_cli: RunCli, expect_error: ExpectError) -> None:
    expect_error(run_cli("policy", "validate", "/nonexistent.yaml"), "no such file or folder")


def test_test_explains_allow(run_cli: RunCli, agent: str, policy_file: Path) -> None:
    result = run_cli("policy", "test", "--agent", agent, "--dest", "api.openai.com:443",
                     "--policy", str(policy_file))
    assert result.exit_code == 0, result.output
    assert "decision  allow" in result.output
    assert "base/openai (enforce)" in result.output
    assert "other rules cannot match" in result.output


def test_test_json_and_l4_l7(run_cli: RunCli, agent: str, policy_file: Path) -> None:
    def decide(*extra: str) -> dict[str, object]:
        result = run_cli("policy", "test", "--agent", agent, "--policy", str(policy_file),
                         "--json", *extra)
        assert result.exit_code == 0, result.output
        data: dict[str, object] = json.loads(result.output)["decision"]
        return data

    assert decide("--dest", "git.example:443")["action"] == "inspect"
    push = decide("--dest", "git.example:443", "--method", "post", "--path",
                  "/org/repo/git-receive-pack")
    assert (push["action"], push["rule_id"]) == ("deny", "push")
    assert decide("--dest", "git.example", "--method", "GET", "--path", "/x")["action"] == "allow"
    assert decide("--dest", "pastebin.com")["rule_id"] == "pastes"
    meta = decide("--dest", "api.openai.com:443", "--ip", "169.254.169.254")
    assert meta["action"] == "deny"
    assert meta["flags"] == ["guarded:metadata"]
    assert decide("--dest", "[2001:db8::1]:443")["reason"] == "no rule matched; default deny"


def test_test_all_lists_every_rule(run_cli: RunCli, agent: str, policy_file: Path) -> None:
    result = run_cli("policy", "test", "--agent", agent, "--dest", "pastebin.com", "--policy",
                     str(policy_file), "--all")
    assert result.exit_code == 0, result.output
    assert "base/git: destination or port does not match" in result.output


def test_test_uses_active_bundle_or_denies_without_one(run_cli: RunCli, agent: str) -> None:
    result = run_cli("policy", "test", "--agent", agent, "--dest", "api.openai.com:443",
                     "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"]["action"] == "deny"
    assert data["decision"]["reason"].startswith("no valid policy bundle")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dest", "a.com:99999"], "port must be 1-65535"),
        (["--dest", "[zz]:1"], "not an IPv6 address"),
        (["--dest", "a.com", "--ip", "nope"], "not an IP address"),
        (["--dest", "10.0.0.1", "--ip", "10.0.0.2"], "--ip is for a destination given by name"),
        (["--dest", "a.com", "--layer", "l4", "--method", "GET"], "need --layer l7"),
    ],
)
def test_test_bad_input(run_cli: RunCli, expect_error: ExpectError, agent: str,
                        policy_file: Path, args: list[str], fragment: str) -> None:
    expect_error(run_cli("policy", "test", "--agent", agent, "--policy", str(policy_file),
                         *args), fragment)


def test_test_unknown_agent(run_cli: RunCli, expect_error: ExpectError,
                            policy_file: Path) -> None:
    expect_error(run_cli("policy", "test", "--agent", "ghost", "--dest", "a.com",
                         "--policy", str(policy_file)), "ghost")
