from __future__ import annotations

import pytest

from gatewayd.errors import PolicyError
from gatewayd.policy import Guard, compile_plan
from gatewayd.policy.documents import Action, EnforcementMode, parse_documents
from gatewayd.policy.selectors import check_host_pattern, parse_port

from .conftest import policy


def one(text: str):  # type: ignore[no-untyped-def]
    (doc,) = parse_documents({"f.yaml": text})
    return doc.document


def test_minimal_policy_defaults() -> None:
    doc = one(policy("    - {id: r1, action: allow}\n"))
    assert doc.id == "p"
    assert doc.spec.priority == 1000
    assert doc.spec.enforcement_mode is EnforcementMode.ENFORCE
    rule = doc.spec.rules[0]
    assert rule.action is Action.ALLOW
    assert rule.identity.values("agent") is None
    assert rule.destination.any_destination


def test_several_documents_in_one_file_and_empty_ones_skipped() -> None:
    text = (
        policy("    - {id: r, action: allow}\n", pid="a")
        + "\n---\n---\n"
        + policy("    - {id: r, action: deny}\n", pid="b")
    )
    docs = parse_documents({"f.yaml": text})
    assert [d.document.id for d in docs] == ["a", "b"]
    assert [d.index for d in docs] == [0, 2]


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ("    - {id: r, action: permit}\n", "rule r (spec.rules[0]).action"),
        (
            "    - {id: r, action: allow, destination: {cidrs: [10.0.0.1/8]}}\n",
            "rule r (spec.rules[0]).destination.cidrs",
        ),
        ("    - {id: r, action: allow, destination: {ports: [70000]}}\n", "ports are 1-65535"),
        ("    - {id: r, action: allow, destination: {ports: ['90-80']}}\n", "low end first"),
        ("    - {id: r, action: allow, destination: {hosts: ['*']}}\n", "omit destination"),
        ("    - {id: r, action: allow, destination: {hosts: ['a.*.com']}}\n", "not a valid DNS"),
        ("    - {id: r, action: allow, destination: {hosts: ['10.0.0.1']}}\n", "under cidrs"),
        ("    - {id: r, action: allow, identity: {team: 'res*'}}\n", "only '*' alone"),
        ("    - {id: r, action: allow, identity: {team: []}}\n", "matches nothing"),
        ("    - {id: r, action: allow, identity: {team: [a, '*']}}\n", "cannot be part"),
        ("    - {id: r, action: allow, l7: {methods: ['GE T']}}\n", "HTTP method"),
        ("    - {id: r, action: allow, l7: {paths: ['v1/*']}}\n", "starts with '/'"),
        ("    - {id: r, action: allow, l7: {token_estimate: {min: 9, max: 1}}}\n", "greater than"),
        ("    - {id: r, action: allow, l7: {dlp_classes: ['Secrets!']}}\n", "dotted class"),
        ("    - {id: r, action: allow, colour: red}\n", "colour: Extra inputs"),
        ("    - {id: r, action: allow}\n    - {id: r, action: deny}\n", "used twice"),
        ("    - {id: r, action: allow, priority: -1}\n", "priority"),
    ],
)
def test_invalid_rules_name_file_document_rule_and_field(rules: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as err:
        one(policy(rules))
    msg = str(err.value)
    assert msg.startswith("f.yaml: document 1 (policy p): ")
    assert fragment in msg


def test_unknown_kind_and_missing_kind() -> None:
    with pytest.raises(PolicyError, match=r"kind 'Quota!' is not one of Policy"):
        one("apiVersion: clawgress.io/v1\nkind: Quota!\nmetadata: {id: q}\nspec: {}\n")
    with pytest.raises(PolicyError, match="kind: missing"):
        one("apiVersion: clawgress.io/v1\nmetadata: {id: q}\n")


def test_bad_yaml_names_line() -> None:
    with pytest.raises(PolicyError, match=r"f.yaml: line 2, column \d+: not valid YAML"):
        one("a: b\n  c: [\n")


def test_all_errors_across_files_reported_together() -> None:
    bad = policy("    - {id: r, action: nope}\n")
    with pytest.raises(PolicyError) as err:
        parse_documents({"a.yaml": bad, "b.yaml": bad.replace("id: p", "id: q")})
    lines = str(err.value).splitlines()
    assert lines[0].startswith("a.yaml:") and lines[1].startswith("b.yaml:")


def test_duplicate_policy_ids_across_files() -> None:
    text = policy("    - {id: r, action: allow}\n")
    with pytest.raises(
        PolicyError,
        match=r"b.yaml: document 1: policy id 'p' is already used by"
        r" a.yaml document 1",
    ):
        parse_documents({"a.yaml": text, "b.yaml": text})


def test_host_patterns_normalized() -> None:
    assert check_host_pattern("API.OpenAI.com.") == "api.openai.com"
    assert check_host_pattern("*.Example.COM") == "*.example.com"
    with pytest.raises(ValueError, match="alone is not a host pattern"):
        check_host_pattern("*.")


def test_ports() -> None:
    assert str(parse_port(443)) == "443"
    assert str(parse_port("8000-8100")) == "8000-8100"
    assert 8050 in parse_port("8000-8100")
    for bad in (0, True, "x", "1-2-3", 65536):
        with pytest.raises(ValueError, match=r"port|range"):
            parse_port(bad)


def test_identity_list_deduplicated() -> None:
    doc = one(policy("    - {id: r, action: allow, identity: {team: [a, b, a]}}\n"))
    assert doc.spec.rules[0].identity.values("team") == ("a", "b")


def test_explicit_wildcard_selector() -> None:
    doc = one(policy("    - {id: r, action: allow, identity: {agent: '*', team: t}}\n"))
    assert doc.spec.rules[0].identity.values("agent") is None
    assert doc.spec.rules[0].identity.values("team") == ("t",)


def test_a_rule_names_dlp_actions_per_class() -> None:
    text = policy(
        "    - id: ai\n      action: inspect\n"
        "      dlp: {secrets: block, pii: redact, pii.ip: alert, phi: hash-log}\n"
        "    - id: rest\n      action: allow\n")
    plan = compile_plan(parse_documents({"p.yaml": text}), bundle_version=1,
                        guard=Guard.builtin())
    assert plan.dlp == {("p", "ai"): {"secrets": "block", "pii": "redact",
                                      "pii.ip": "alert", "phi": "hash-log"}}


@pytest.mark.parametrize(("dlp", "action", "error"), [
    ("{secrets: shred}", "inspect", "block"),
    ("{Secrets: block}", "inspect", "dotted lower-case"),
    ("{secrets: block}", "allow", "action inspect"),
])
def test_bad_dlp_actions_are_refused(dlp: str, action: str, error: str) -> None:
    text = policy(f"    - id: ai\n      action: {action}\n      dlp: {dlp}\n")
    with pytest.raises(PolicyError, match=error):
        parse_documents({"p.yaml": text})
