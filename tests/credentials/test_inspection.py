from __future__ import annotations

from gatewayd.credentials import new_placeholder
from gatewayd.credentials.inspection import KeyInspection
from gatewayd.l7.inspection import NOTHING, Inspection, look
from gatewayd.l7.target import Target

from .conftest import GEMINI_KEY, OPENAI_KEY, T0

TARGET = Target("api.openai.com", 443, "/v1/chat/completions", "/v1/chat/completions")


def test_a_provider_key_is_a_finding() -> None:
    inspection: Inspection = KeyInspection()
    found = look([inspection], "POST", TARGET,
                 [(b"authorization", f"Bearer {OPENAI_KEY}".encode())], b"{}", True)
    assert found.dlp_classes == ("secrets.openai.api_key",)
    assert found.record == {"credentials": {"provider_keys": [
        {"class": "secrets.openai.api_key", "carrier": "header:authorization",
         "length": len(OPENAI_KEY)}]}}
    assert OPENAI_KEY not in repr(found)


def test_a_key_in_the_query() -> None:
    target = Target("generativelanguage.googleapis.com", 443, "/v1/models",
                    f"/v1/models?key={GEMINI_KEY}")
    found = KeyInspection().look("GET", target, [], b"", True)
    assert found.dlp_classes == ("secrets.gcp.api_key",)


def test_placeholders_are_recorded_by_id() -> None:
    issued = new_placeholder("c", "a1", now=T0)
    headers = [(b"x-api-key", issued.token.encode()), (b"authorization", b"Bearer cg-ph-x")]
    found = KeyInspection().look("POST", TARGET, headers, b"", True)
    assert found.dlp_classes == ()
    assert found.record == {"credentials": {"placeholders": [issued.record.shown],
                                            "malformed_placeholders": 1}}
    assert issued.token not in repr(found)


def test_nothing_found() -> None:
    assert KeyInspection().look("GET", TARGET, [(b"accept", b"*/*")], b"", True) is NOTHING


def test_extra_carriers() -> None:
    headers = [(b"x-llm-token", f"Token {OPENAI_KEY}".encode())]
    assert KeyInspection().look("GET", TARGET, headers, b"", True) is NOTHING
    found = KeyInspection({"x-llm-token"}).look("GET", TARGET, headers, b"", True)
    assert found.dlp_classes == ("secrets.openai.api_key",)
