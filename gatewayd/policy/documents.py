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

The meaning of every field, and how rules are ranked, is in ``docs/policy.md``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gatewayd.errors import PolicyError
from gatewayd.validation import describe

API_VERSION = "clawgress.io/v1"

# Bounds on what one bundle may declare; they keep compile time and memory predictable.
MAX_RULES_PER_POLICY = 100_000
MAX_ENTRIES_PER_FIELD = 10_000
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


class EnforcementMode(StrEnum):
    ENFORCE = "enforce"
    REPORT = "report"


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    ANY = "any"


_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Name = Annotated[str, Field(pattern=_NAME)]
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")
_GLOB_OK = re.compile(r"^[\x21-\x7e]{1,1024}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalize_host(host: str) -> str:
    """Lower-case, without a trailing dot: the form hosts are compared in."""
    return host.strip().rstrip(".").lower()


def check_host_pattern(pattern: str) -> str:
    """Validate one ``hosts`` entry: an exact name or ``*.suffix``; returns it normalized."""
    host = normalize_host(pattern)
    if not host:
        raise ValueError("empty host name")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError(f"{pattern!r} is an address: put addresses under cidrs (e.g. {host}/32)")
    if host == "*":
        raise ValueError("'*' alone is not a host pattern: omit destination to match any")
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise ValueError(f"{pattern!r}: a wildcard needs a suffix, such as *.example.com")
    if len(host) > 253:
        raise ValueError(f"{pattern!r}: longer than 253 characters")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(
                f"{pattern!r}: {label!r} is not a valid DNS label (use '*.' only as the first"
                " label; internationalized names in their xn-- form)"
            )
    return host


class IdentitySelector(_Model):
    """Which agents a rule is for. Each field is ``*`` (any), a value, or a list of values."""

    agent: Literal["*"] | Name | list[Name] = "*"
    team: Literal["*"] | Name | list[Name] = "*"
    project: Literal["*"] | Name | list[Name] = "*"
    environment: Literal["*"] | Name | list[Name] = "*"

    @field_validator("agent", "team", "project", "environment", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if value == "*":
            return value
        if isinstance(value, str) and "*" in value:
            raise ValueError("only '*' alone is a wildcard; list the values instead")
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty list matches nothing; use '*' for any")
            if "*" in value:
                raise ValueError("'*' cannot be part of a list; use '*' alone for any")
            if len(value) > MAX_ENTRIES_PER_FIELD:
                raise ValueError(f"more than {MAX_ENTRIES_PER_FIELD} values")
        return value

    def values(self, field: str) -> tuple[str, ...] | None:
        """The accepted values of ``field``, or ``None`` for any."""
        value = getattr(self, field)
        if value == "*":
            return None
        return (value,) if isinstance(value, str) else tuple(dict.fromkeys(value))


IDENTITY_FIELDS = ("agent", "team", "project", "environment")


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def parse_port(value: Any) -> PortRange:
    """``443`` or ``"8000-8100"`` → ``PortRange``; raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("expected a port number or a range like 8000-8100")
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,5}(-\d{1,5})?", value.strip()):
        a, _, b = value.strip().partition("-")
        low, high = int(a), int(b or a)
    else:
        raise ValueError(f"{value!r}: expected a port number or a range like 8000-8100")
    if not (1 <= low <= high <= 65535):
        raise ValueError(f"{value!r}: ports are 1-65535, low end first")
    return PortRange(low, high)


class Destination(_Model):
    """Where a rule applies. Hosts and CIDRs are alternatives: either may match."""

    hosts: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default=[], max_length=MAX_ENTRIES_PER_FIELD
    )
    ports: list[int | str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    protocol: Protocol = Protocol.ANY

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_host_pattern(h) for h in value))

    @field_validator("cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"{item!r}: expected a network such as 10.0.0.0/8")
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=True))
            except ValueError as exc:
                raise ValueError(f"{item!r}: {exc}") from None
        return list(dict.fromkeys(out))

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int | str]) -> list[int | str]:
        seen: dict[PortRange, int | str] = {}
        for item in value:
            seen.setdefault(parse_port(item), item)
        return list(seen.values())

    def port_ranges(self) -> tuple[PortRange, ...]:
        return tuple(parse_port(p) for p in self.ports)

    @property
    def any_destination(self) -> bool:
        return not self.hosts and not self.cidrs


class TokenBounds(_Model):
    """Inclusive bounds on the request's prompt token estimate."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _order(self) -> TokenBounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _globs(value: list[str]) -> list[str]:
    for item in value:
        if not _GLOB_OK.match(item):
            raise ValueError(f"{item!r}: patterns are 1-1024 printable characters, no spaces")
    return value


class L7Conditions(_Model):
    """Conditions only the L7 engine can answer. At L4 a rule with any of these can only
    be decided by inspecting the flow, so it turns the L4 decision into ``inspect``."""

    methods: list[str] = Field(default=[], max_length=64)
    paths: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    providers: list[Name] = Field(default=[], max_length=256)
    models: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    tools: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    dlp_classes: list[str] = Field(default=[], max_length=1024)
    token_estimate: TokenBounds | None = None

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        out = []
        for m in value:
            if not _METHOD.match(m.upper()):
                raise ValueError(f"{m!r}: expected an HTTP method such as GET or POST")
            out.append(m.upper())
        return out

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for p in _globs(value):
            if not p.startswith("/") and p != "*":
                raise ValueError(f"{p!r}: a path pattern starts with '/'")
        return value

    @field_validator("models", "tools")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _globs(value)

    @field_validator("dlp_classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        for c in value:
            if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", c):
                raise ValueError(f"{c!r}: expected a dotted class such as secrets or pii.email")
        return value

    def fields(self) -> tuple[str, ...]:
        """Names of the conditions that are set."""
        return tuple(
            name
            for name in ("methods", "paths", "providers", "models", "tools", "dlp_classes",
                         "token_estimate")
            if getattr(self, name)
        )


class Rule(_Model):
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


class PolicySpec(_Model):
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


class Metadata(_Model):
    id: Name
    description: str = ""
    labels: dict[str, str] = {}


class PolicyDocument(_Model):
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


KNOWN_KINDS = ("Policy",)
MAX_DOCUMENTS_PER_FILE = 1000


def _where(source: str, index: int, raw: Any) -> str:
    pid = None
    if isinstance(raw, dict):
        meta = raw.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("id"), str):
            pid = meta["id"]
    return f"{source}: document {index + 1}" + (f" (policy {pid})" if pid else "")


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
    try:
        raws = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"{source}:{where} not valid YAML: {problem}") from None
    if len(raws) > MAX_DOCUMENTS_PER_FILE:
        raise PolicyError(f"{source}: more than {MAX_DOCUMENTS_PER_FILE} documents")
    out = []
    errors = []
    for i, raw in enumerate(raws):
        if raw is None:
            continue
        try:
            out.append(SourcedDocument(parse_document(raw, source, i), source, i))
        except PolicyError as exc:
            errors.append(str(exc))
    if errors:
        raise PolicyError("\n".join(errors))
    return out


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
