"""Rules files: the shipped rules load, operators extend them, bad rules are named and refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.dlp import RuleError, Scanner, load_rules, parse_rules
from gatewayd.errors import ClawgressError, ConfigError

EXTRA = """\
version: 1
rules:
  - id: acme-token
    class: secrets.acme.token
    patterns: ['\\bacme_[a-z0-9]{24}\\b']
    confidence: 0.9
    validator: high_entropy
disable: [ipv4]
"""


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_rules_cover_the_taxonomy() -> None:
    classes = {r.rule.dlp_class for r in load_rules()}
    for expected in ("secrets.aws.access_key_id", "secrets.private_key", "pii.email",
                     "pii.payment_card", "pii.iban", "pii.us_ssn", "pii.ip.v6",
                     "phi.npi", "phi.dea", "phi.icd10", "phi.health_plan_id"):
        assert expected in classes


def test_operator_rules_add_classes_and_disable_shipped_ones(tmp_path: Path) -> None:
    scanner = Scanner.from_files([write(tmp_path, EXTRA)])
    assert "secrets.acme.token" in scanner.classes
    assert "pii.ip.v4" not in scanner.classes
    token = "acme_" + "k3j9x0q7m2p5w8r1t4y6u0z3"
    found = scanner.scan(f"deploy with {token} from 10.1.2.3".encode())
    assert [m.dlp_class for m in found.matches] == ["secrets.acme.token"]


def test_operator_rules_alone(tmp_path: Path) -> None:
    scanner = Scanner.from_files([write(tmp_path, EXTRA.replace("disable: [ipv4]\n", ""))],
                                 shipped=False)
    assert scanner.classes == ("secrets.acme.token",)


@pytest.mark.parametrize(("rule", "reason"), [
    ("{id: x, class: a.b, patterns: ['(a+'], confidence: 0.5}", "rule 'x' pattern 1"),
    ("{id: x, class: a.b, patterns: ['(a)\\1'], confidence: 0.5}", "Back-references"),
    ("{id: x, class: a.b, patterns: ['(?<=a)b'], confidence: 0.5}", "Zero-width assertions"),
    ("{id: x, class: a.b, patterns: ['a*'], confidence: 0.5}", "empty buffer"),
    ("{id: x, class: a.b, patterns: ['(.*a){20}'], confidence: 0.5}", "too large"),
    ("{id: x, class: 'Not A Class', patterns: [a], confidence: 0.5}", "dotted class"),
    ("{id: x, class: a.b, patterns: [a], confidence: 2}", "confidence"),
    ("{id: x, class: a.b, patterns: [a], confidence: 0.5, validator: nope}", "no such validator"),
    ("{id: x, class: a.b, patterns: [], confidence: 0.5}", "patterns"),
    ("{id: x, class: a.b, patterns: [a], confidence: 0.5, colour: red}", "colour"),
])
def test_bad_rules_are_refused_with_name_and_reason(tmp_path: Path, rule: str,
                                                    reason: str) -> None:
    path = write(tmp_path, f"version: 1\nrules:\n  - {rule}\n")
    with pytest.raises(RuleError) as err:
        Scanner.from_files([path])
    assert str(path) in str(err.value)
    assert reason in str(err.value)
    assert "'x'" in str(err.value)


def test_duplicate_and_unknown_ids(tmp_path: Path) -> None:
    dup = write(tmp_path, "version: 1\nrules:\n  - {id: email, class: pii.email, "
                          "patterns: ['@x'], confidence: 0.5}\n")
    with pytest.raises(RuleError, match="'email' is already defined"):
        load_rules([dup])
    unknown = write(tmp_path, "version: 1\ndisable: [no-such-rule]\n", "b.yaml")
    with pytest.raises(RuleError, match="disable: no rule 'no-such-rule'"):
        load_rules([unknown])


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read rules"):
        load_rules([tmp_path / "missing.yaml"])
    with pytest.raises(RuleError, match="not valid YAML"):
        parse_rules("version: [1\n", "x.yaml")
    with pytest.raises(RuleError, match="version"):
        parse_rules("version: 2\n", "x.yaml")


def test_rule_error_is_a_user_error() -> None:
    assert issubclass(RuleError, ConfigError)
    assert issubclass(RuleError, ClawgressError)


def test_catastrophic_backtracking_patterns_scan_in_linear_time(tmp_path: Path) -> None:
    """Classic ReDoS patterns compile and finish on 1 MiB of the input that kills ``re``.

    (A functional bound: that the scan finishes. Its time is in tools/bench/dlp.py.)
    """
    path = write(tmp_path, """\
version: 1
rules:
  - {id: nested, class: test.nested, patterns: ['(a+)+$'], confidence: 0.9}
  - {id: alternation, class: test.alt, patterns: ['(a|aa)+b'], confidence: 0.9}
  - {id: overlap, class: test.overlap, patterns: ['(x+x+)+y'], confidence: 0.9}
  - id: email-redos
    class: test.mail
    patterns: ['^([a-zA-Z0-9])(([-.]|[_]+)?([a-zA-Z0-9]+))*(@)']
    confidence: 0.9
""")
    scanner = Scanner.from_files([path], shipped=False, max_hits=100)
    for attack in (b"a" * (1 << 20) + b"!", b"x" * (1 << 20), b"aaaaaaaaaaaa-" * 80_000):
        findings = scanner.scan(attack, content_type="text/plain")
        assert findings.limit in (None, "hits")
