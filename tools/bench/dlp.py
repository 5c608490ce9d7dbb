"""DLP: scan speed against the engines people reach for, worst cases, and measured accuracy.

The same text — what agents send: bodies of the labelled corpus in ``tests/dlp/corpus.py``
with a sensitive value in them, prose, code and hard negatives, about one sensitive value
per KiB — is cut to 4 KiB and 64 KiB and scanned, in interleaved rounds
(A B C D E A B C D E ...), by:

A. Clawgress's scanner, three ways: the engine's primary pass alone over the bytes
   (``scan only``: one Hyperscan pass of the rule patterns and cue words, its hits collected
   as a list; not the secondary pass around cues, nor anything after); the whole scan of the
   text (pass, validators, overlaps, carriers); the whole scan of the text sent as an OpenAI
   chat-completions JSON body (parsing, decoded strings, then the same);
B. a sequential Python ``re`` loop over the same patterns (every rule pattern and cue,
   ``finditer`` each, spans collected: no validation, so it is the cheaper side);
C. RE2 (``google-re2``): one ``re2.Set`` pass says which patterns matched, then those are
   located with ``finditer`` — the alternative engine, measured to justify Hyperscan;
D. detect-secrets (``scan_line`` over each line, its default plugins);
E. Presidio's pattern recognizers: ``AnalyzerEngine`` with the predefined English
   recognizers that are ``PatternRecognizer`` s (regular expressions, their validators and
   context words) and an NLP engine that does nothing, so no spaCy model is loaded.

It reports medians of the rounds' per-call p50 (µs) with their spread, MB/s at the p50,
and the speed-ups computed within each round. Then the worst case: 1 MiB bodies built to
make a scanner slow (a candidate every few bytes, long almost-matches, carriers), with the
shipped rules and with operator rules that are classic catastrophic-backtracking patterns.
Last, precision and recall per class on the corpus, each held to 0.95.

Run: ``python -m tools.bench.dlp`` (``--quick`` for a smoke run). Needs, besides the
project: faker, detect-secrets, presidio-analyzer, google-re2 (bench-only dependencies).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faker import Faker

from gatewayd import compiled
from gatewayd.dlp import Scanner
from gatewayd.dlp.engine import cue_pattern
from gatewayd.dlp.rules import load_rules
from tests.dlp.corpus import CODE, SEED, Sample, build_corpus, score
from tools.bench.report import Report, median, percentile

SIZES = {"4k": 4 * 1024, "64k": 64 * 1024}
MIB = 1 << 20
FLOOR = 0.95

ADVERSARIAL = (
    b"a@b.co ", b"4111 1111 1111 1111 ", b"1.2.3.4 ", b"AKIA" * 5 + b" ",
    b"passport 123456789 ", b"dob 1984-03-05 ", b"=" * 64, b"%41" * 20, b"9" * 64 + b" ",
    b"-----BEGIN PRIVATE KEY-----", b'{"a":' * 10, b"a" * 1024, b"x@", b"aaaa:",
    b"token=" + b"Ab1" * 30 + b" ", b"ghp_" + b"A" * 36 + b" ",
)
REDOS_RULES = """\
version: 1
rules:
  - {id: nested, class: test.nested, patterns: ['(a+)+$'], confidence: 0.9}
  - {id: alternation, class: test.alt, patterns: ['(a|aa)+b'], confidence: 0.9}
  - {id: overlap, class: test.overlap, patterns: ['(x+x+)+y'], confidence: 0.9}
  - id: email-redos
    class: test.mail
    patterns: ['^([a-zA-Z0-9])(([-.]|[_]+)?([a-zA-Z0-9]+))*(@)']
    confidence: 0.9
"""
REDOS_INPUTS = (b"a" * MIB + b"!", b"x" * MIB, b"aaaaaaaaaaaa-" * (MIB // 13))


# ---- the text ---------------------------------------------------------------------------


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def corpus_text(size: int) -> str:
    """What agents send, end to end, cut to ``size``: in each block, a corpus body with a
    labelled value, three paragraphs of prose, a code snippet and a hard-negative body
    (ids, hashes, blobs, versions, invoice numbers, numbers, look-alikes) — about one
    sensitive value per kilobyte. Texts are as the agent wrote them (decoded)."""
    corpus = build_corpus(per_class=12, negatives_count=400)
    negatives = [s for s in corpus if not s.labels]
    positives = [s for s in corpus if s.labels][::7]  # every class, spread out
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    parts: list[str] = []
    total = 0
    for i, positive in enumerate(positives):
        block = [_text(positive), " ".join(fake.paragraphs(3)), CODE[i % len(CODE)],
                 _text(negatives[i % len(negatives)])]
        parts.extend(block)
        total += sum(len(b.encode()) for b in block)
        if total > size * 2:
            break
    return "\n\n".join(parts).encode()[:size].decode("utf-8", "ignore")


def _text(sample: Sample) -> str:
    if sample.content_type == "text/plain":
        return sample.body.decode()
    return "\n".join(s for s in _strings(json.loads(sample.body))
                     if len(s) > 40 and not s.startswith("{"))


def chat_body(text: str, size: int) -> bytes:
    """The start of ``text`` as an OpenAI chat-completions body of at most ``size`` bytes."""
    cut = len(text)
    while True:
        part = text[:cut]
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": part[i:i + 1500]}
                    for i in range(0, len(part), 1500)]
        body = json.dumps({"model": "gpt-4o", "messages": messages, "temperature": 0.2}).encode()
        if len(body) <= size:
            return body
        cut -= max(1, (len(body) - size) // 2)


# ---- the references -----------------------------------------------------------------------


def same_patterns() -> tuple[list[bytes], list[int]]:
    """Every rule pattern and cue of the shipped rules, with Hyperscan-equivalent flags."""
    import hyperscan  # noqa: PLC0415 - the flag values only

    patterns, caseless = [], []
    cues: set[str] = set()
    for sourced in load_rules():
        rule = sourced.rule
        patterns.extend(p.encode() for p in rule.patterns)
        caseless.extend(0 for _ in rule.patterns)
        if rule.context:
            cues.update(c.lower() for c in rule.context.cues)
    for cue in sorted(cues):
        patterns.append(cue_pattern(cue))
        caseless.append(hyperscan.HS_FLAG_CASELESS)
    return patterns, caseless


def re_loop() -> Callable[[bytes], object]:
    import re  # noqa: PLC0415 - the reference, not the engine

    patterns, caseless = same_patterns()
    compiled = [re.compile(p, re.IGNORECASE if c else 0)
                for p, c in zip(patterns, caseless, strict=True)]

    def run(data: bytes) -> object:
        return [(i, m.span()) for i, rx in enumerate(compiled) for m in rx.finditer(data)]

    return run


def re2_set() -> tuple[Callable[[bytes], object], int]:
    import re2  # noqa: PLC0415 - bench-only dependency

    patterns, caseless = same_patterns()
    options = re2.Options()
    options.max_mem = 256 << 20
    options.log_errors = False
    search = re2.Set.SearchSet(options)
    located = []
    for p, c in zip(patterns, caseless, strict=True):
        try:
            rx = re2.compile(b"(?i)" + p if c and not p.startswith(b"(?i)") else p, options)
        except re2.error:
            continue
        if search.Add(rx.pattern) < 0:
            continue
        located.append(rx)
    search.Compile()

    def run(data: bytes) -> object:
        hit = search.Match(data) or []
        return [(i, m.span()) for i in hit for m in located[i].finditer(data)]

    return run, len(located)


def detect_secrets() -> Callable[[bytes], object]:
    from detect_secrets.core.scan import scan_line  # noqa: PLC0415 - bench-only
    from detect_secrets.settings import default_settings  # noqa: PLC0415

    context = default_settings()
    context.__enter__()  # the default plugins stay configured while ``run`` lives

    def run(data: bytes, context: object = context) -> object:
        return [s for line in data.decode("utf-8", "replace").splitlines()
                for s in scan_line(line)]

    return run


def presidio() -> tuple[Callable[[bytes], object], int]:
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import (  # noqa: PLC0415 - bench-only
        AnalyzerEngine,
        PatternRecognizer,
        RecognizerRegistry,
    )
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine  # noqa: PLC0415

    class NoNlp(NlpEngine):  # type: ignore[misc]
        """An NLP engine that finds nothing: the analyzer runs its pattern recognizers only."""

        def load(self) -> None:
            pass

        def is_loaded(self) -> bool:
            return True

        def process_text(self, text: str, language: str) -> Any:
            return NlpArtifacts(entities=[], tokens=[], tokens_indices=[], lemmas=[],
                                nlp_engine=self, language=language)

        def process_batch(self, texts: Any, language: str, batch_size: int = 1,
                          n_process: int = 1, **kwargs: Any) -> Any:
            for text in texts:
                yield text, self.process_text(text, language)

        def is_stopword(self, word: str, language: str) -> bool:
            return False

        def is_punct(self, word: str, language: str) -> bool:
            return False

        def get_supported_entities(self) -> list[str]:
            return []

        def get_supported_languages(self) -> list[str]:
            return ["en"]

    nlp = NoNlp()
    everything = RecognizerRegistry(supported_languages=["en"])
    everything.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    patterns = [r for r in everything.recognizers if isinstance(r, PatternRecognizer)]
    registry = RecognizerRegistry(recognizers=patterns, supported_languages=["en"])
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])

    def run(data: bytes) -> object:
        return engine.analyze(text=data.decode("utf-8", "replace"), language="en")

    return run, len(patterns)


# ---- timing -------------------------------------------------------------------------------


def per_call_us(fn: Callable[[bytes], object], data: bytes, calls: int) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(calls):
        t0 = clock()
        fn(data)
        out.append((clock() - t0) / 1000)
    return out


def worst_cases(scanner: Scanner, redos: Scanner, repeats: int) -> tuple[dict[str, float],
                                                                          dict[str, float]]:
    shipped, classic = {}, {}
    for unit in ADVERSARIAL:
        body = unit * (MIB // len(unit))
        best = min(_ms(lambda b=body: scanner.scan(b, content_type="text/plain"))
                   for _ in range(repeats))
        shipped[repr(unit[:16])] = best
    for body in REDOS_INPUTS:
        best = min(_ms(lambda b=body: redos.scan(b, content_type="text/plain"))
                   for _ in range(repeats))
        classic[repr(body[:8]) + f"x{len(body)}"] = best
    return shipped, classic


def _ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few rounds and calls (smoke run)")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else 7
    report = Report("dlp")
    scanner = Scanner.from_files()
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "redos.yaml"
        rules.write_text(REDOS_RULES)
        redos = Scanner.from_files([rules], shipped=False)
    loop = re_loop()
    re2_run, re2_patterns = re2_set()
    ds = detect_secrets()
    pr, pr_recognizers = presidio()
    text = corpus_text(SIZES["64k"])
    spin = time.perf_counter() + 1.0  # let the CPU reach its working clock before timing
    while time.perf_counter() < spin:
        scanner.scan(text.encode()[:4096], content_type="text/plain")

    for label, size in SIZES.items():
        data = text.encode()[:size]
        body = chat_body(text, size)
        buf = b"\x00" + data + b"\x00"
        big = size > 8 * 1024
        ours_calls = 300 if big else 3000
        ref_calls = 2 if big else 20
        if args.quick:
            ours_calls, ref_calls = ours_calls // 10, max(2, ref_calls // 4)

        def only(d: bytes, buf: bytes = buf) -> object:
            return scanner.engine.scan_primary(buf, 1 << 30)

        def full(d: bytes) -> object:
            return scanner.scan(d, content_type="text/plain")

        def full_json(d: bytes, body: bytes = body) -> object:
            return scanner.scan(body, content_type="application/json")

        engines: dict[str, tuple[Callable[[bytes], object], int]] = {
            "scan_only": (only, ours_calls), "text": (full, ours_calls),
            "json": (full_json, ours_calls), "re": (loop, ref_calls),
            "re2": (re2_run, ours_calls // 3), "detect_secrets": (ds, max(2, ref_calls // 2)),
            "presidio": (pr, ref_calls),
        }
        for fn, calls in engines.values():  # warm-up
            per_call_us(fn, data, max(1, calls // 10))
        p50: dict[str, list[float]] = {k: [] for k in engines}
        ratios: dict[str, list[float]] = {k: [] for k in ("re", "re2", "detect_secrets",
                                                          "presidio")}
        for _ in range(rounds):
            this = {name: percentile(per_call_us(fn, data, calls), 50)
                    for name, (fn, calls) in engines.items()}
            for name, value in this.items():
                p50[name].append(value)
            for name, values in ratios.items():
                values.append(this[name] / this["text"])

        def add(name: str, values: list[float], unit: str, goal: str | None = None) -> None:
            report.add(name, median(values), unit, goal, (min(values), max(values)))

        goals = {"scan_only": "<= 20", "json": "<= 60"} if label == "4k" else {}
        for name in engines:
            add(f"{name}_p50_us_{label}", p50[name], "us", goals.get(name))
            report.add(f"{name}_mb_per_s_{label}", size / median(p50[name]), "MB/s")
        add(f"text_speedup_vs_re_{label}", ratios["re"], "x", ">= 50")
        add(f"text_speedup_vs_detect_secrets_{label}", ratios["detect_secrets"], "x", ">= 100")
        add(f"text_speedup_vs_presidio_{label}", ratios["presidio"], "x")
        add(f"text_speedup_vs_re2_set_{label}", ratios["re2"], "x")

    shipped, classic = worst_cases(scanner, redos, 2 if args.quick else 3)
    report.add("adversarial_1mib_worst_ms", max(shipped.values()), "ms", "<= 50")
    report.add("adversarial_1mib_redos_rules_worst_ms", max(classic.values()), "ms", "<= 50")
    worst = max(shipped, key=lambda k: shipped[k])
    report.notes.append(f"worst shipped-rules input: {worst} ({shipped[worst]:.1f} ms); "
                        f"bodies stopped by max_hits={scanner.max_hits} report incomplete")

    corpus = build_corpus()
    scores = score(scanner, corpus).scores
    for cls, s in sorted(scores.items()):
        key = cls.replace(".", "_")
        report.add(f"precision_{key}", s.precision, "", f">= {FLOOR}")
        report.add(f"recall_{key}", s.recall, "", f">= {FLOOR}")
    labels = sum(len(s.labels) for s in corpus)
    negatives = sum(1 for s in corpus if not s.labels)
    report.notes.append(
        f"{rounds} interleaved rounds; per-call perf_counter_ns timing; same text for every "
        f"engine (corpus bodies with labelled values, prose, code and hard negatives, about "
        f"one sensitive value per KiB, cut to 4 KiB / 64 KiB); 'scan_only' is the "
        f"engine's primary pass over the bytes, 'text' the whole scan, 'json' the whole "
        f"scan of the text as a chat-completions body; speed-ups are reference p50 / "
        f"'text' p50")
    report.notes.append(f"re loop and RE2: the {re2_patterns} patterns and cues of the shipped "
                        f"rules that RE2 accepts (the re loop runs all of them); Presidio: "
                        f"{pr_recognizers} predefined English PatternRecognizers, no NLP model")
    report.notes.append(f"scanner modules: {compiled.STATUS.get('gatewayd.dlp', '?')}"
                        " (mypyc, and the C twins of runs, hits and entropy: gatewayd/compiled.py;"
                        " tools/native.py builds them)")
    report.notes.append(f"corpus: {len(corpus)} bodies, {labels} labelled values, "
                        f"{negatives} hard-negative bodies")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
