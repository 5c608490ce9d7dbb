"""Quota documents: the YAML an operator writes to bound what agents may use.

A quota is one document of kind ``Quota`` beside the ``Policy`` documents of a bundle::

    apiVersion: clawgress.io/v1
    kind: Quota
    metadata: {id: research-tokens, description: daily token budget per team}
    spec:
      scope: team                  # agent, team, project, environment or credential
      selector: {team: [research, ml], environment: prod}
      metric: total-tokens         # requests, input-/output-/total-tokens, cost-usd,
                                   # bytes-out, new-connections
      window: calendar-day         # rolling-minute/-hour/-day, calendar-day/-month (UTC)
      limit: 2000000               # cost-usd: USD with up to 6 decimals
      mode: hard-stop              # hard-stop, soft-stop, throttle, alert-only
      throttle: {burst: 100, max_delay: 2s}   # mode throttle only
      enforcement_mode: enforce    # or report: record what would happen, let it through

``scope`` says what one counter is kept for: each team the selector admits gets its own
budget of ``limit``. ``selector`` says which requests the quota applies to. The meaning of
every field is in ``docs/quota.md``. Pure: parsing takes decoded YAML or text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gatewayd.duration import parse_duration
from gatewayd.errors import PolicyError
from gatewayd.quota.windows import Window
from gatewayd.selector_values import check_values
from gatewayd.validation import describe
from gatewayd.yaml_documents import document_where, load_documents

API_VERSION = "clawgress.io/v1"
KIND = "Quota"

# The identity names' pattern (gatewayd.identity.names); kept here so that this package
# imports nothing that imports the configuration or the store.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
_NAME = re.compile(NAME_PATTERN[1:-1])

# Bounds that keep one document's effect on memory and arithmetic predictable.
MAX_SELECTOR_VALUES = 10_000
MAX_LIMIT = Decimal(10) ** 15
MAX_THROTTLE_DELAY_S = 60.0


class QuotaModel(BaseModel):
    """A part of a quota document: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(StrEnum):
    """What one counter is kept for."""

    AGENT = "agent"
    TEAM = "team"
    PROJECT = "project"
    ENVIRONMENT = "environment"
    CREDENTIAL = "credential"


class Metric(StrEnum):
    """What a quota counts. Token and cost metrics count AI calls only."""

    REQUESTS = "requests"
    INPUT_TOKENS = "input-tokens"
    OUTPUT_TOKENS = "output-tokens"
    TOTAL_TOKENS = "total-tokens"
    COST_USD = "cost-usd"
    BYTES_OUT = "bytes-out"
    NEW_CONNECTIONS = "new-connections"

    @property
    def ai_only(self) -> bool:
        return self in _AI_METRICS

    @property
    def unit(self) -> str:
        return _UNITS[self]


_AI_METRICS = frozenset(
    {Metric.INPUT_TOKENS, Metric.OUTPUT_TOKENS, Metric.TOTAL_TOKENS, Metric.COST_USD}
)
_UNITS = {
    Metric.REQUESTS: "requests",
    Metric.INPUT_TOKENS: "tokens",
    Metric.OUTPUT_TOKENS: "tokens",
    Metric.TOTAL_TOKENS: "tokens",
    Metric.COST_USD: "USD",
    Metric.BYTES_OUT: "bytes",
    Metric.NEW_CONNECTIONS: "connections",
}


class Mode(StrEnum):
    """What happens to a request the quota has no room for."""

    HARD_STOP = "hard-stop"  # refused: 429 with a body naming the quota
    SOFT_STOP = "soft-stop"  # let through; alert, and flag the agent
    THROTTLE = "throttle"  # token bucket: 429 with Retry-After, or a bounded delay
    ALERT_ONLY = "alert-only"  # let through; alert


class EnforcementMode(StrEnum):
    ENFORCE = "enforce"
    REPORT = "report"


Values = Literal["*"] | Name | list[Name]


class QuotaSelector(QuotaModel):
    """Which requests a quota applies to. Each field is ``*`` (any), a value, or a list."""

    agent: Values = "*"
    team: Values = "*"
    project: Values = "*"
    environment: Values = "*"
    # The credential a request was made with (an upstream API key's id as the L7 engine
    # names it); a request without one never matches a list here.
    credential: Values = "*"

    @field_validator("agent", "team", "project", "environment", "credential", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        check_values(value, MAX_SELECTOR_VALUES)
        if value == "*":
            return value
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str) or _NAME.fullmatch(item) is None:
                raise ValueError(
                    f"{item!r} is not a name: 1 to 128 letters, digits, '.', '_', ':' or '-',"
                    " starting with a letter or digit")
        return value

    def values(self, field: str) -> frozenset[str] | None:
        """The accepted values of ``field``, or ``None`` for any."""
        value = getattr(self, field)
        if value == "*":
            return None
        return frozenset((value,) if isinstance(value, str) else value)


def _seconds(value: Any) -> float:
    """A delay: a number of seconds (0 allowed) or a duration such as ``2s``."""
    if isinstance(value, bool):
        raise ValueError("expected seconds or a duration such as 2s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        seconds = 0.0 if text in {"0", "0s"} else float(parse_duration(text))
    else:
        raise ValueError("expected seconds or a duration such as 2s")
    if not 0 <= seconds <= MAX_THROTTLE_DELAY_S:
        raise ValueError(f"must be between 0 and {MAX_THROTTLE_DELAY_S:g} seconds")
    return seconds


class ThrottleSpec(QuotaModel):
    """The token bucket of a ``throttle`` quota: it refills at ``limit`` per window.

    ``burst`` is its capacity (default: the limit). A request the bucket is short for by
    at most ``max_delay`` of refill waits that long in the gateway; otherwise it gets 429
    with ``Retry-After``. ``max_delay: 0`` (the default) never delays.
    """

    burst: Decimal | None = Field(default=None, gt=0, le=MAX_LIMIT)
    max_delay: float = 0.0

    @field_validator("max_delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> float:
        return _seconds(value)


class QuotaSpec(QuotaModel):
    scope: Scope
    selector: QuotaSelector = QuotaSelector()
    metric: Metric
    window: Window
    limit: Decimal = Field(gt=0, le=MAX_LIMIT)
    mode: Mode = Mode.HARD_STOP
    throttle: ThrottleSpec | None = None
    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCE

    @field_validator("limit", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        return value

    @field_validator("limit")
    @classmethod
    def _limit_units(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        metric = info.data.get("metric")
        if isinstance(metric, Metric):
            _whole_or_micro(None, value, metric)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> QuotaSpec:
        if self.throttle is not None:
            if self.mode is not Mode.THROTTLE:
                raise ValueError(f"throttle: is for mode throttle (this quota is {self.mode})")
            if self.throttle.burst is not None:
                _whole_or_micro("throttle.burst", self.throttle.burst, self.metric)
        if self.mode is Mode.THROTTLE and not self.window.rolling:
            raise ValueError(
                "mode throttle needs a rolling window (rolling-minute, rolling-hour,"
                " rolling-day): its token bucket refills at limit per window"
            )
        return self


def _whole_or_micro(field: str | None, value: Decimal, metric: Metric) -> None:
    where = f"{field}: " if field else ""
    if metric is Metric.COST_USD:
        if value != value.quantize(Decimal("0.000001")):
            raise ValueError(f"{where}USD amounts have at most 6 decimals")
    elif value != value.to_integral_value():
        raise ValueError(f"{where}{metric} are counted in whole {metric.unit}")


class QuotaMetadata(QuotaModel):
    id: Name
    description: str = ""
    labels: dict[str, str] = Field(default={})


class QuotaDocument(QuotaModel):
    api_version: Literal["clawgress.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Quota"]
    metadata: QuotaMetadata
    spec: QuotaSpec

    @property
    def id(self) -> str:
        return self.metadata.id


def _where(source: str, index: int, raw: Any) -> str:
    return document_where(source, index, raw, "quota")


def parse_quota_document(raw: Any, source: str, index: int) -> QuotaDocument:
    """Validate one decoded YAML document of kind ``Quota``; errors name the file, the
    document, the quota and the field, one per line (``PolicyError``)."""
    where = _where(source, index, raw)
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    try:
        return QuotaDocument.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError("\n".join(f"{where}: {line}" for line in describe(exc))) from None


def parse_quota_file(text: str | bytes, source: str) -> list[QuotaDocument]:
    """The ``Quota`` documents of one YAML file; documents of other kinds are left to
    their own parsers (a bundle mixes ``Policy`` and ``Quota``)."""
    raws = load_documents(text, source)
    out: list[QuotaDocument] = []
    errors: list[str] = []
    for i, raw in enumerate(raws):
        if not (isinstance(raw, dict) and raw.get("kind") == KIND):
            continue
        try:
            out.append(parse_quota_document(raw, source, i))
        except PolicyError as exc:
            errors.append(str(exc))
    if errors:
        raise PolicyError("\n".join(errors))
    return out
