"""DLP rules are data: the shipped ``rules.yaml`` and the operator's own files, validated here.

A rules file lists rules (a dotted class, Hyperscan patterns, a confidence, an optional
validator and context cues) and may ``disable`` rules by id. The shipped file comes first;
an operator's file adds classes and patterns and turns off shipped rules that do not fit the
site. Files are read and validated with pydantic; a pattern's syntax, and whether the
linear-time engine accepts it, is checked when the rules are compiled (``engine``), so that
every refusal names the file, the rule and the reason. Refusals raise ``RuleError``, a
``ConfigError``: the operator can act on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gatewayd.dlp.validators import VALIDATORS
from gatewayd.errors import ConfigError

SHIPPED_RULES = Path(__file__).with_name("rules.yaml")

_CLASS = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_RULE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class RuleError(ConfigError):
    """A rules file is unreadable or invalid, or a pattern was refused by the engine."""


class Context(BaseModel):
    """Cue words near a candidate: required to confirm it, or (``required: false``) a boost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cues: tuple[str, ...] = Field(min_length=1, max_length=256)
    before: int = Field(default=64, ge=0, le=4096)
    after: int = Field(default=0, ge=0, le=4096)
    required: bool = True
    confidence: float | None = Field(default=None, gt=0, le=1)

    @field_validator("cues")
    @classmethod
    def _cues(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cue in value:
            if not cue.strip() or len(cue) > 64:
                raise ValueError(f"{cue!r}: a cue is 1 to 64 characters of words")
        return value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str
    dlp_class: str = Field(alias="class")
    description: str = ""
    patterns: tuple[str, ...] = Field(min_length=1, max_length=64)
    confidence: float = Field(gt=0, le=1)
    validator: str | None = None
    context: Context | None = None
    tier: Literal["specific", "fallback"] = "specific"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _RULE_ID.fullmatch(value):
            raise ValueError(f"{value!r}: a rule id is lower-case letters, digits, '-', '_', '.'")
        return value

    @field_validator("dlp_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if not _CLASS.fullmatch(value):
            raise ValueError(f"{value!r}: expected a dotted class such as secrets.acme.token")
        return value

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for p in value:
            if not p or len(p) > 4096:
                raise ValueError("a pattern is 1 to 4096 characters")
        return value

    @field_validator("validator")
    @classmethod
    def _validator(cls, value: str | None) -> str | None:
        if value is not None and value not in VALIDATORS:
            raise ValueError(f"{value!r}: no such validator (one of {', '.join(VALIDATORS)})")
        return value


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    rules: tuple[Rule, ...] = ()
    disable: tuple[str, ...] = ()


class SourcedRule(BaseModel):
    """A rule and the file it came from (for messages)."""

    model_config = ConfigDict(frozen=True)

    rule: Rule
    source: str


def _describe(err: ValidationError, doc: object) -> str:
    first = err.errors()[0]
    loc = first["loc"]
    where = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(doc, dict):
        rules = doc.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            where = f"rule {rules[loc[1]].get('id', loc[1])!r}: "
        loc = loc[2:]
    field = ".".join(str(p) for p in loc)
    return f"{where}{field + ': ' if field else ''}{first['msg']}"


def parse_rules(text: str, source: str) -> RulesFile:
    """Read one rules file's text; ``RuleError`` names the file, the rule and the reason."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RuleError(f"{source}: not valid YAML ({err})") from None
    try:
        return RulesFile.model_validate(doc)
    except ValidationError as err:
        raise RuleError(f"{source}: {_describe(err, doc)}") from None


def read_rules(path: Path) -> RulesFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RuleError(f"{path}: cannot read rules ({err.__class__.__name__}: {err})") from None
    return parse_rules(text, str(path))


def merge_rules(files: Sequence[tuple[RulesFile, str]]) -> tuple[SourcedRule, ...]:
    """Rules of all files in order, less the disabled ones; ids are unique across files."""
    rules: dict[str, SourcedRule] = {}
    disabled: list[tuple[str, str]] = []
    for parsed, source in files:
        for rule in parsed.rules:
            if rule.id in rules:
                raise RuleError(f"{source}: rule {rule.id!r} is already defined in "
                                f"{rules[rule.id].source} (disable it and use a new id)")
            rules[rule.id] = SourcedRule(rule=rule, source=source)
        disabled.extend((rule_id, source) for rule_id in parsed.disable)
    for rule_id, source in disabled:
        if rules.pop(rule_id, None) is None:
            raise RuleError(f"{source}: disable: no rule {rule_id!r}")
    if not rules:
        raise RuleError("no DLP rules left to scan with")
    return tuple(rules.values())


def load_rules(extra: Iterable[Path] = (), *, shipped: bool = True) -> tuple[SourcedRule, ...]:
    """The shipped rules (unless ``shipped`` is false) followed by the operator's files."""
    files = [(read_rules(SHIPPED_RULES), "shipped rules")] if shipped else []
    files.extend((read_rules(Path(p)), str(p)) for p in extra)
    return merge_rules(files)
