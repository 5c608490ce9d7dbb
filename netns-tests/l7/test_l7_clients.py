"""Real clients through the L7 engine: the official OpenAI SDK (JSON and streaming),
httpx and requests, transparent (TLS intercepted) and through the explicit proxy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from l7_support import PROXY, L7Gateway

PROBE = Path(__file__).with_name("l7_sdk_probe.py")


def _probe(gateway: L7Gateway, agent: str, *args: str) -> dict[str, Any]:
    done = gateway.lab.exec(agent, [sys.executable, str(PROBE), *args],
                            capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "error" not in result, result
    return dict(result)


@pytest.mark.parametrize("proxy", [None, PROXY[4]], ids=["transparent", "proxy"])
def test_the_openai_sdk_through_the_gateway(gateway: L7Gateway, proxy: str | None) -> None:
    cursor = gateway.cursor()
    args = ["openai", "https://api.openai.com/v1"] + (["--proxy", proxy] if proxy else [])
    got = _probe(gateway, "a1", *args)
    assert got["content"].startswith("lab reply to: say hello")
    assert got["streamed"] == got["content"]
    assert got["stream_usage"] == got["usage"] and got["usage"] > 0
    # Streamed, not buffered: the events arrived over the upstream's pacing (50 ms each).
    assert got["stream_events"] > 5 and got["stream_spread_s"] > 0.15
    assert got["denied"]["status"] == 403
    assert got["denied"]["body"]["rule_id"] == "openai-admin"
    # The model is read from the body and decided by: outside the allowlist → 403.
    assert got["model_denied"]["status"] == 403
    assert got["model_denied"]["body"]["rule_id"] == "openai-models"
    via = "proxy" if proxy else "transparent"
    posts = cursor.settled("http.request", 3, via=via, path="/v1/chat/completions")
    served = [p for p in posts if p["status"] == 200]
    assert len(served) == 2
    assert all(p["tls"] == "intercepted" for p in posts)
    assert all(p["bytes_out"] > 0 and p["bytes_in"] > 0 for p in served)
    # Each record says what the request asked of the model and what the answer cost, as
    # the provider reported it (JSON and streamed alike).
    for p in served:
        assert (p["ai"]["provider"], p["ai"]["model"]) == ("openai", "lab-model")
        assert p["ai"]["prompt_tokens_estimate"] > 0
        assert p["ai_usage"]["status"] == "complete"
        assert p["ai_usage"]["usage"]["total_tokens"] == got["usage"]
    assert [p["ai"]["stream"] for p in served] == [False, True]
    refused = next(p for p in posts if p["status"] == 403)
    assert refused["ai"]["model"] == "forbidden-model" and refused["rule_id"] == "openai-models"


@pytest.mark.parametrize("proxy", [None, PROXY[4]], ids=["transparent", "proxy"])
def test_httpx_and_requests_keep_alive_and_bodies(gateway: L7Gateway,
                                                   proxy: str | None) -> None:
    extra = ["--proxy", proxy] if proxy else []
    got = _probe(gateway, "a1", "httpx", "https://api.openai.com/", *extra)
    assert got["status"] == [200, 200] and got["body"]["received"] == 5000
    assert all(got["request_ids"]) and got["request_ids"][0] != got["request_ids"][1]
    got = _probe(gateway, "a1", "requests", "http://api.openai.com/", *extra)
    assert got["status"] == [200, 200] and json.loads(got["body"])["received"] == 2000
