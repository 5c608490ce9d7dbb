from __future__ import annotations

import pytest

from gatewayd.errors import PolicyError
from gatewayd.identity import Identity
from gatewayd.quota.plan import CounterKey, compile_quotas
from tests.quota.conftest import AGENT, OTHER, plan_of, quota


def test_each_scope_counts_for_its_subject() -> None:
    plan = plan_of(*(quota(f"q-{s}", scope=s) for s in
                     ("agent", "team", "project", "environment", "credential")))
    got = {a.quota.id: a.subject for a in plan.applicable(AGENT, "key-7")}
    assert got == {"q-agent": "agent-1", "q-team": "research", "q-project": "atlas",
                   "q-environment": "prod", "q-credential": "key-7"}
    # without a credential, a credential-scoped quota has nothing to count for
    assert "q-credential" not in {a.quota.id for a in plan.applicable(AGENT)}


def test_selector_narrows_who_a_quota_applies_to() -> None:
    plan = plan_of(
        quota("prod-only", selector={"environment": "prod"}),
        quota("two-teams", selector={"team": ["ml", "research"]}),
        quota("other-team", selector={"team": "ml"}),
        quota("with-key", selector={"credential": ["key-1"]}),
    )
    assert [a.quota.id for a in plan.applicable(AGENT)] == ["prod-only", "two-teams"]
    assert [a.quota.id for a in plan.applicable(OTHER)] == ["two-teams"]
    assert [a.quota.id for a in plan.applicable(OTHER, "key-1")] == ["two-teams", "with-key"]


def test_answers_are_memoized_per_identity_and_credential() -> None:
    plan = plan_of(quota("q", scope="credential"))
    assert plan.applicable(AGENT, "a") is plan.applicable(AGENT, "a")
    assert plan.applicable(AGENT, "a")[0].subject == "a"
    assert plan.applicable(AGENT, "b")[0].subject == "b"
    assert plan.applicable(Identity("agent-1", "research", "atlas", "prod"), "a")[0].subject == "a"


def test_counter_names_carry_the_shape() -> None:
    a, = plan_of(quota("q", metric="cost-usd", limit="1.5")).applicable(AGENT)
    assert a.counter == "q|team/cost-usd/rolling-minute|research"
    assert a.quota.limit == 1_500_000  # micro-dollars
    key = CounterKey.parse(a.counter)
    assert key == CounterKey("q", "team/cost-usd/rolling-minute", "research")
    assert CounterKey.parse("no-bars") is None
    t, = plan_of(quota("t", mode="throttle", limit=60)).applicable(AGENT)
    assert t.counter == "t|team/requests/rolling-minute/bucket|research"
    assert t.quota.bucket is not None and t.quota.bucket.rate == 1.0


def test_quota_ids_are_unique() -> None:
    with pytest.raises(PolicyError, match="quota id 'q' is used twice"):
        compile_quotas([quota("q"), quota("q", limit=3)])
