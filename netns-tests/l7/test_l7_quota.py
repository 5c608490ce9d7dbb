"""Budgets through the L7 engine: the official OpenAI and Anthropic SDKs spend a token
budget, JSON and streamed; each call holds its estimate, is booked at the usage the answer
reported, and the call that no longer fits is refused with 429 before it goes upstream."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from l7_support import L7Gateway

PROBE = Path(__file__).with_name("l7_sdk_probe.py")


def _show(gateway: L7Gateway) -> dict[str, dict[str, Any]]:
    rows = json.loads(gateway.clawgress("quota", "show", "--agent", "researcher", "--json"))
    return {r["quota_id"]: r for r in rows}


@pytest.mark.parametrize(("client", "url", "path"), [
    ("budget", "https://api.openai.com/v1", "/v1/chat/completions"),
    ("budget-anthropic", "https://api.anthropic.com", "/v1/messages"),
], ids=["openai", "anthropic"])
def test_a_token_budget_is_spent_by_reported_usage_and_then_refuses(
        gateway: L7Gateway, client: str, url: str, path: str) -> None:
    gateway.publish("l7.yaml", "quota-tokens.yaml")
    time.sleep(1.5)  # the engine loads the bundle
    gateway.clawgress("quota", "reset", "--agent", "researcher", "--yes")
    cursor = gateway.cursor()
    done = gateway.lab.exec("a1", [sys.executable, str(PROBE), client, url],
                            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert "error" not in got, got
    used, refused = got["used"], got["refused"]
    assert len(used) >= 2 and refused is not None, got
    assert refused["status"] == 429 and refused["body"]["error"] == "quota-exceeded"
    assert "researcher-tokens" in refused["body"]["reason"]
    assert refused["retry_after"] is not None
    # The refused call needed more than was left: what was booked is what the answers
    # reported (not the estimates), and it stays within the limit.
    time.sleep(0.5)  # usage waiting to be booked is flushed
    rows = _show(gateway)
    assert rows["researcher-tokens"]["used"] == sum(used) <= 200
    assert rows["researcher-tokens"]["held"] == 0
    assert rows["researcher-requests"]["used"] == len(used)
    records = cursor.settled("http.request", len(used) + 1, path=path)
    assert [r["status"] for r in records] == [200] * len(used) + [429]
    assert records[-1]["quota"]["quota_id"] == "researcher-tokens"
    assert [r["ai_usage"]["usage"]["total_tokens"] for r in records[:-1]] == used
