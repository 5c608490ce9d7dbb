"""Policy documents: the YAML an operator writes, validated by pydantic.

A file holds one or more YAML documents (``---``). Each is::

    apiVersion: clawgress.io/v1
    kind: Policy
    metadata: {id: ai-providers, description: ...}
    spec:
      enforcement_mode: enforce      # or report (shadow mode) for every rule in it
      priority: 1000                 # default priority of its rules (lower goes first)
      rules:
        - id: openai
          action: allow
          identity: {team: research}                     # agent/team/project/environment
          destination: {hosts: [api.openai.com], ports: [443], protocol: tcp}
          l7: {methods: [POST], paths: ["/v1/*"], models: ["gpt-4o*"]}
          when: 'identity.environment != "prod" || request.token_estimate < 8000'

A bundle may also carry ``kind: Quota`` documents (budgets: ``gatewayd.quota``, and
``docs/quota.md``), read by ``parse_quotas``. This module holds the document, policy and
rule models, the actions, and the parsing entry points (``parse_documents``,
``parse_quotas``, ``parse_file``, ``parse_document``). What a rule matches on is
in ``selectors`` (identity, destination) and ``l7_conditions``. The meaning of every field,
and how rules are ranked, is in ``docs/policy.md``. Pure: reading files is ``sources``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gatewayd.errors import PolicyError
from gatewayd.policy.l7_conditions import L7Conditions
from gatewayd.policy.selectors import Destination, IdentitySelector, Name, PolicyModel
from gatewayd.quota.documents import KIND as QUOTA_KIND
from gatewayd.quota.documents import QuotaDocument, parse_quota_file
from gatewayd.validation import describe
from gatewayd.yaml_documents import document_where, load_documents

API_VERSION = "clawgress.io/v1"

# Bounds on what one bundle may declare; they keep compile time and memory predictable.
MAX_RULES_PER_POLICY = 100_000
MAX_PRIORITY = 1_000_000
DEFAULT_PRIORITY = 1000


class Action(StrEnum):
    """What a decision tells the data plane to do with a flow or request."""

    ALLOW = "allow"
    DENY = "deny"
    INSPECT = "inspect"
    THROTTLE = "throttle"
    QUARANTINE = "quarantine"
    TRANSFORM = "transform"
    ALERT = "alert"
    LOG_ONLY = "log-only"


# How restrictive an action is; used to break ties between equally ranked rules
# (deny-overrides). Higher wins.
RESTRICTIVENESS: dict[Action, int] = {
    Action.QUARANTINE: 7,
    Action.DENY: 6,
    Action.THROTTLE: 5,
    Action.TRANSFORM: 4,
    Action.INSPECT: 3,
    Action.ALERT: 2,
    Action.LOG_ONLY: 1,
    Action.ALLOW: 0,
}

# Actions that let traffic reach a destination; only these are held back by the guard class.
ADMITTING = frozenset(
    {Action.ALLOW, Action.INSPECT, Action.THROTTLE, Action.TRANSFORM, Action.ALERT,
     Action.LOG_ONLY}
)


class DlpAction(StrEnum):
    BLOCK = "block"
    REDACT = "redact"
    ALERT = "alert"
    HASH_LOG = "hash-log"


_DLP_CLASS = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


class EnforcementMode(StrEnum):
    ENFORCE = "enforce"
    REPORT = "report"


class Rule(PolicyModel):
    id: Name
    description: str = ""
    action: Action
    priority: int | None = Field(default=None, ge=0, le=MAX_PRIORITY)
    enforcement_mode: EnforcementMode | None = None
    reason: str = Field(default="", max_length=512)
    identity: IdentitySelector = IdentitySelector()
    destination: Destination = Destination()
    l7: L7Conditions = L7Conditions()
    when: str | None = Field(default=None, min_length=1, max_length=4096)
    # What DLP does, per class, to a request this rule decides (and admits): block,
    # redact, alert or hash-log; the most specific class prefix wins.
    dlp: dict[str, DlpAction] = Field(default={}, max_length=256)

    @field_validator("dlp")
    @classmethod
    def _dlp_classes(cls, value: dict[str, DlpAction]) -> dict[str, DlpAction]:
        for name in value:
            if not _DLP_CLASS.match(name):
                raise ValueError(f"{name!r}: a DLP class is dotted lower-case words, such as"
                                 " secrets or pii.email")
        return value

    @model_validator(mode="after")
    def _dlp_needs_l7(self) -> Rule:
        if self.dlp and self.action not in (Action.INSPECT, Action.TRANSFORM) \
                and not self.l7.fields():
            raise ValueError(f"dlp: acts on requests, which only the L7 engine reads: give"
                             f" this rule action inspect (not {self.action.value}) or l7:"
                             " conditions")
        return self


class PolicySpec(PolicyModel):
    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCE
    priority: int = Field(default=DEFAULT_PRIORITY, ge=0, le=MAX_PRIORITY)
    rules: list[Rule] = Field(max_length=MAX_RULES_PER_POLICY)

    @model_validator(mode="after")
    def _unique_rules(self) -> PolicySpec:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice in this policy")
            seen.add(rule.id)
        return self


class Metadata(PolicyModel):
    id: Name
    description: str = ""
    labels: dict[str, str] = Field(default={})


class PolicyDocument(PolicyModel):
    api_version: Literal["clawgress.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Policy"]
    metadata: Metadata
    spec: PolicySpec

    @property
    def id(self) -> str:
        return self.metadata.id


@dataclass(frozen=True)
class SourcedDocument:
    """A validated document and where it came from (for error messages and explain)."""

    document: PolicyDocument
    source: str
    index: int


KNOWN_KINDS = ("Policy", "Quota")
def _where(source: str, index: int, raw: Any) -> str:
    return document_where(source, index, raw, "policy")


def _rule_label(raw: Any, line: str) -> str:
    """Name the rule in ``spec.rules[N]...`` error lines by its id when it has one."""
    m = re.match(r"spec\.rules\[(\d+)\](.*)", line)
    if not m or not isinstance(raw, dict):
        return line
    rules = raw.get("spec", {}).get("rules") if isinstance(raw.get("spec"), dict) else None
    idx = int(m.group(1))
    if isinstance(rules, list) and idx < len(rules) and isinstance(rules[idx], dict):
        rid = rules[idx].get("id")
        if isinstance(rid, str):
            return f"rule {rid} (spec.rules[{idx}]){m.group(2)}"
    return line


def parse_document(raw: Any, source: str, index: int) -> PolicyDocument:
    """Validate one decoded YAML document; errors name the file, document, rule and field."""
    where = _where(source, index, raw)
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    kind = raw.get("kind")
    if kind not in KNOWN_KINDS:
        raise PolicyError(
            f"{where}: kind {kind!r} is not one of {', '.join(KNOWN_KINDS)}"
            if kind is not None
            else f"{where}: kind: missing (expected one of {', '.join(KNOWN_KINDS)})"
        )
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{where}: {_rule_label(raw, line)}" for line in describe(exc)]
        raise PolicyError("\n".join(lines)) from None


def parse_file(text: str | bytes, source: str) -> list[SourcedDocument]:
    """All documents of one YAML file. Empty documents (a stray ``---``) are skipped."""
    raws = load_documents(text, source)
    out = []
    errors = []
    for i, raw in enumerate(raws):
        if raw is None or (isinstance(raw, dict) and raw.get("kind") == QUOTA_KIND):
            continue  # Quota documents are read by parse_quotas
        try:
            out.append(SourcedDocument(parse_document(raw, source, i), source, i))
        except PolicyError as exc:
            errors.append(str(exc))
    if errors:
        raise PolicyError("\n".join(errors))
    return out


def parse_quotas(files: Mapping[str, str | bytes]) -> list[QuotaDocument]:
    """Every ``Quota`` document of every file (in name order); a bundle carries its
    quotas beside its policies (``gatewayd.quota``)."""
    docs: list[QuotaDocument] = []
    errors: list[str] = []
    for name in sorted(files):
        try:
            docs.extend(parse_quota_file(files[name], name))
        except PolicyError as exc:
            errors.append(str(exc))
    if errors:
        raise PolicyError("\n".join(errors))
    return docs


def parse_documents(files: Mapping[str, str | bytes]) -> list[SourcedDocument]:
    """Validate every document of every file (in name order); policy ids must be unique.

    All problems are reported together, one per line.
    """
    docs: list[SourcedDocument] = []
    errors: list[str] = []
    for name in sorted(files):
        try:
            docs.extend(parse_file(files[name], name))
        except PolicyError as exc:
            errors.append(str(exc))
    seen: dict[str, SourcedDocument] = {}
    for d in docs:
        first = seen.get(d.document.id)
        if first is not None:
            errors.append(
                f"{d.source}: document {d.index + 1}: policy id {d.document.id!r} is already"
                f" used by {first.source} document {first.index + 1}"
            )
        else:
            seen[d.document.id] = d
    if errors:
        raise PolicyError("\n".join(errors))
    return docs
