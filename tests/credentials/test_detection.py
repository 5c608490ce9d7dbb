from __future__ import annotations

import pytest

from gatewayd.credentials import Headers, Sighting, key_class, new_placeholder, sight
from gatewayd.credentials.carriers import carried, query_keys, without_query_keys

from .conftest import ANTHROPIC_KEY, AZURE_KEY, GEMINI_KEY, OPENAI_KEY, T0


@pytest.mark.parametrize(("token", "carrier", "klass"), [
    (OPENAI_KEY, "header:authorization", "secrets.openai.api_key"),
    ("sk-" + "a1B2" * 12, "header:authorization", "secrets.openai.api_key"),
    ("sk-svcacct-" + "x" * 40, "header:x-api-key", "secrets.openai.api_key"),
    (ANTHROPIC_KEY, "header:x-api-key", "secrets.anthropic.api_key"),
    (ANTHROPIC_KEY, "header:authorization", "secrets.anthropic.api_key"),
    ("sk-or-v1-" + "0f" * 32, "header:authorization", "secrets.openrouter.api_key"),
    (GEMINI_KEY, "header:x-goog-api-key", "secrets.gcp.api_key"),
    (GEMINI_KEY, "query:key", "secrets.gcp.api_key"),
    ("gsk_" + "Ab1" * 18, "header:authorization", "secrets.groq.api_key"),
    ("xai-" + "Zz9" * 25, "header:authorization", "secrets.xai.api_key"),
    ("pplx-" + "q7" * 24, "header:authorization", "secrets.perplexity.api_key"),
    (AZURE_KEY, "header:api-key", "secrets.azure.api_key"),
    ("A" * 84, "header:api-key", "secrets.azure.api_key"),
])
def test_provider_keys_are_named(token: str, carrier: str, klass: str) -> None:
    assert key_class(token, carrier) == klass


@pytest.mark.parametrize(("token", "carrier"), [
    ("sk-test", "header:authorization"),  # too short to be a key
    ("Bearer", "header:authorization"),
    (AZURE_KEY, "header:authorization"),  # no prefix: only the api-key header tells
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "header:authorization"),
    ("sk_live_" + "a" * 30, "header:authorization"),  # Stripe's, not an AI provider's
    (GEMINI_KEY + "x", "header:x-goog-api-key"),
    ("AIza" + "!" * 35, "header:x-goog-api-key"),
    ("sk-" + "a" * 40 + "/", "header:authorization"),
    ("A" * 129, "header:api-key"),
])
def test_other_tokens_are_not(token: str, carrier: str) -> None:
    assert key_class(token, carrier) is None


def hs(*pairs: tuple[str, str]) -> Headers:
    return [(n.encode(), v.encode()) for n, v in pairs]


def test_sight_reads_every_carrier() -> None:
    placeholder = new_placeholder("c", "a1", now=T0)
    headers = hs(("Authorization", f"Bearer {OPENAI_KEY}"), ("x-api-key", ANTHROPIC_KEY),
                 ("api-key", AZURE_KEY), ("x-goog-api-key", placeholder.token),
                 ("x-other", OPENAI_KEY), ("content-type", "application/json"))
    seen = sight(headers, f"/v1/models?alt=sse&key={GEMINI_KEY}")
    assert seen.keys == (
        Sighting("secrets.openai.api_key", "header:authorization", len(OPENAI_KEY)),
        Sighting("secrets.anthropic.api_key", "header:x-api-key", len(ANTHROPIC_KEY)),
        Sighting("secrets.azure.api_key", "header:api-key", len(AZURE_KEY)),
        Sighting("secrets.gcp.api_key", "query:key", len(GEMINI_KEY)),
    )
    assert seen.dlp_classes == ("secrets.openai.api_key", "secrets.anthropic.api_key",
                                "secrets.azure.api_key", "secrets.gcp.api_key")
    assert seen.placeholders == (placeholder.placeholder_id,)
    assert seen.malformed_placeholders == 0
    assert OPENAI_KEY not in repr(seen)
    assert seen.keys[0].as_dict() == {"class": "secrets.openai.api_key",
                                      "carrier": "header:authorization",
                                      "length": len(OPENAI_KEY)}


def test_sight_of_nothing() -> None:
    seen = sight(hs(("authorization", "Basic dXNlcjpwYXNz")), "/")
    assert not seen
    assert sight(hs(("authorization", "Bearer cg-ph-oops")), "/").malformed_placeholders == 1


def test_extra_carriers() -> None:
    headers = hs(("x-llm-token", f"Token {OPENAI_KEY}"))
    assert not sight(headers, "/")
    assert sight(headers, "/", {"x-llm-token"}).dlp_classes == ("secrets.openai.api_key",)


def test_carried_tokens_leave_their_text_out_of_repr() -> None:
    found = carried(hs(("authorization", f"Bearer {OPENAI_KEY}")), "/")
    assert [c.carrier for c in found] == ["header:authorization"] * 2
    assert OPENAI_KEY not in repr(found)


def test_query_keys() -> None:
    assert query_keys("/a") == []
    assert query_keys("/a?key=1&key=2&keys=3&x=key") == ["1", "2"]
    assert query_keys("/a?k%65y=A%49za") == ["AIza"]
    assert without_query_keys("/a?x=1&key=2&y=3", lambda v: v == "2") == "/a?x=1&y=3"
    assert without_query_keys("/a?key=2", lambda v: True) == "/a"
    assert without_query_keys("/a", lambda v: True) == "/a"
    assert without_query_keys("/a?key=2", lambda v: False) == "/a?key=2"
