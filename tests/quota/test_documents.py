from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayd.errors import PolicyError
from gatewayd.quota import Metric, Mode, Scope, Window, parse_quota_file
from gatewayd.quota.documents import parse_quota_document

GOOD = """\
apiVersion: clawgress.io/v1
kind: Quota
metadata: {id: research-tokens, description: daily tokens per team}
spec:
  scope: team
  selector: {team: [research, ml], environment: prod}
  metric: total-tokens
  window: calendar-day
  limit: 2000000
  mode: hard-stop
---
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: not-a-quota}
spec: {rules: []}
---
apiVersion: clawgress.io/v1
kind: Quota
metadata: {id: agent-rate}
spec:
  scope: agent
  metric: requests
  window: rolling-minute
  limit: 60
  mode: throttle
  throttle: {burst: 10, max_delay: 2s}
"""


def raw(**spec: object) -> dict[str, object]:
    body = {"scope": "agent", "metric": "requests", "window": "rolling-hour", "limit": 5, **spec}
    return {"apiVersion": "clawgress.io/v1", "kind": "Quota", "metadata": {"id": "q1"},
            "spec": body}


def test_a_file_gives_its_quota_documents_and_leaves_other_kinds() -> None:
    docs = parse_quota_file(GOOD, "quotas.yaml")
    assert [d.id for d in docs] == ["research-tokens", "agent-rate"]
    first, second = docs
    assert first.spec.scope is Scope.TEAM and first.spec.metric is Metric.TOTAL_TOKENS
    assert first.spec.window is Window.CALENDAR_DAY
    assert first.spec.selector.values("team") == frozenset({"research", "ml"})
    assert first.spec.selector.values("agent") is None
    assert second.spec.mode is Mode.THROTTLE
    assert second.spec.throttle is not None and second.spec.throttle.max_delay == 2.0


def test_cost_limits_take_micro_dollars() -> None:
    doc = parse_quota_document(raw(metric="cost-usd", limit="12.345678"), "f", 0)
    assert doc.spec.limit == Decimal("12.345678")


@pytest.mark.parametrize(("spec", "message"), [
    ({"limit": 0}, "spec.limit: Input should be greater than 0"),
    ({"limit": 2.5}, "spec.limit: requests are counted in whole requests"),
    ({"metric": "cost-usd", "limit": "0.0000001"}, "USD amounts have at most 6 decimals"),
    ({"limit": True}, "spec.limit: expected a number"),
    ({"metric": "tokens"}, "spec.metric: Input should be 'requests', 'input-tokens'"),
    ({"window": "rolling-week"}, "spec.window: Input should be 'rolling-minute'"),
    ({"mode": "hard"}, "spec.mode: Input should be 'hard-stop'"),
    ({"scope": "user"}, "spec.scope: Input should be 'agent'"),
    ({"mode": "throttle", "window": "calendar-day"}, "spec: mode throttle needs a rolling window"),
    ({"throttle": {"burst": 3}}, "spec: throttle: is for mode throttle"),
    ({"mode": "throttle", "throttle": {"max_delay": "2h"}}, "between 0 and 60 seconds"),
    ({"mode": "throttle", "throttle": {"burst": 1.5}},
     "spec: throttle.burst: requests are counted"),
    ({"selector": {"team": "res*"}}, "only '*' alone is a wildcard"),
    ({"selector": {"team": []}}, "an empty list matches nothing"),
    ({"selector": {"team": ["ok", 3]}}, "spec.selector.team: 3 is not a name"),
    ({"selector": {"user": "x"}}, "spec.selector.user: Extra inputs are not permitted"),
    ({"selector": {"agent": "bad name"}}, "spec.selector.agent: 'bad name' is not a name"),
])
def test_invalid_specs_say_where_and_what(spec: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_quota_document(raw(**spec), "quotas.yaml", 2)
    text = str(err.value)
    assert text.startswith("quotas.yaml: document 3 (quota q1): ")
    assert message in text


def test_every_invalid_document_of_a_file_is_reported() -> None:
    text = GOOD.replace("limit: 2000000", "limit: -1").replace("limit: 60", "limit: x")
    with pytest.raises(PolicyError) as err:
        parse_quota_file(text, "q.yaml")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("q.yaml: document 1 (quota research-tokens): spec.limit")
    assert lines[1].startswith("q.yaml: document 3 (quota agent-rate): spec.limit")


def test_yaml_errors_name_the_line() -> None:
    with pytest.raises(PolicyError, match=r"q.yaml: line 3, column 1: not valid YAML"):
        parse_quota_file("kind: Quota\nspec: [\n", "q.yaml")


def test_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="expected a mapping, got list"):
        parse_quota_document([], "q.yaml", 0)
