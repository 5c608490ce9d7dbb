"""Usage normalization: one meaning of each figure whatever the provider's own."""

from __future__ import annotations

from gatewayd.ai import Usage
from gatewayd.ai.usage import (
    from_anthropic,
    from_bedrock,
    from_bedrock_headers,
    from_gemini,
    from_openai_chat,
    from_openai_responses,
)


def test_openai_prompt_tokens_include_cached() -> None:
    u = from_openai_chat({"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                          "prompt_tokens_details": {"cached_tokens": 80},
                          "completion_tokens_details": {"reasoning_tokens": 30}})
    assert u == Usage(100, 50, 80, None, 30)
    assert u.total_tokens == 150


def test_responses_usage() -> None:
    assert from_openai_responses({"input_tokens": 10, "output_tokens": 5,
                                  "input_tokens_details": {"cached_tokens": 0,
                                                           "cache_write_tokens": 4},
                                  "output_tokens_details": {"reasoning_tokens": 2}}) == \
        Usage(10, 5, 0, 4, 2)


def test_anthropic_input_excludes_cache_so_it_is_added_back() -> None:
    u = from_anthropic({"input_tokens": 20, "cache_read_input_tokens": 1000,
                        "cache_creation_input_tokens": 300, "output_tokens": 40,
                        "output_tokens_details": {"thinking_tokens": 25}})
    assert u == Usage(1320, 40, 1000, 300, 25)


def test_gemini_thoughts_are_output() -> None:
    u = from_gemini({"promptTokenCount": 10, "candidatesTokenCount": 5,
                     "thoughtsTokenCount": 7, "toolUsePromptTokenCount": 3,
                     "cachedContentTokenCount": 4, "totalTokenCount": 25})
    assert u == Usage(13, 12, 4, None, 7)
    assert u.total_tokens == 25


def test_bedrock_usage_and_headers() -> None:
    assert from_bedrock({"inputTokens": 4, "outputTokens": 64, "totalTokens": 2116,
                         "cacheReadInputTokens": 0, "cacheWriteInputTokens": 2048}) == \
        Usage(2052, 64, 0, 2048)
    assert from_bedrock_headers({"x-amzn-bedrock-input-token-count": "12",
                                 "x-amzn-bedrock-output-token-count": "x"}) == Usage(12, 0)


def test_not_usage() -> None:
    values: tuple[object, ...] = (None, [], "12", {"prompt_tokens": -1},
                                  {"prompt_tokens": True}, {"prompt_tokens": 1.5})
    for value in values:
        assert from_openai_chat(value) is None
    assert from_anthropic({}) is None
    assert from_gemini({"totalTokenCount": 3}) is None
