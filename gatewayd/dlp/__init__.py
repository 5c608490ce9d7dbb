"""DLP: finds secrets, personal data and health data in request bodies, and applies actions.

``Scanner`` compiles the rules (``rules``: the shipped ``rules.yaml`` plus the operator's
files, validated with pydantic; ``RuleError`` names a bad rule and why) into one Hyperscan
database (``engine``) and scans a body in one linear-time pass: JSON bodies as their decoded
strings (``segments``), one level of base64, hex and URL encoding decoded and scanned again
(``carriers``). Validators (``validators``: checksums, ranges, entropy) and context cues turn
candidates into matches with a dotted class (``secrets.aws.access_key_id``, ``pii.email``,
``phi.npi``), a confidence and a span. ``Findings`` holds the ``Match`` es — which never carry
the matched value — and the mechanics actions need: ``redact`` (a new body, valid JSON),
``fingerprint`` (HMAC-SHA-256 under the gateway key) and audit ``records``. ``enforce``
applies policy's per-class actions (``block``, ``redact``, ``alert``, ``hash-log``) and
returns an ``Outcome``.

IO boundary: reading rules files (``load_rules``, ``Scanner.from_files``) at start-up.
Scanning is pure: bytes in, values out, no logging; the L7 engine calls it per request.

The scanning modules run compiled (mypyc) when ``tools/native.py`` built them from the
sources as they are (``gatewayd.compiled``); otherwise as Python.
"""

from gatewayd.compiled import use_compiled

use_compiled(__name__, __path__)  # before the modules it may replace are imported

from gatewayd.dlp.actions import ACTIONS, Action, Outcome, action_for, enforce
from gatewayd.dlp.findings import Findings, class_under, redaction_marker
from gatewayd.dlp.match import MASKED_KEY, Match
from gatewayd.dlp.rules import (
    SHIPPED_RULES,
    Context,
    Rule,
    RuleError,
    RulesFile,
    SourcedRule,
    load_rules,
    merge_rules,
    parse_rules,
)
from gatewayd.dlp.scanner import (
    DEFAULT_MAX_CARRIERS,
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_HITS,
    DEFAULT_MIN_CONFIDENCE,
    Scanner,
)
from gatewayd.dlp.segments import JsonPath

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_CARRIERS",
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_HITS",
    "DEFAULT_MIN_CONFIDENCE",
    "MASKED_KEY",
    "SHIPPED_RULES",
    "Action",
    "Context",
    "Findings",
    "JsonPath",
    "Match",
    "Outcome",
    "Rule",
    "RuleError",
    "RulesFile",
    "Scanner",
    "SourcedRule",
    "action_for",
    "class_under",
    "enforce",
    "load_rules",
    "merge_rules",
    "parse_rules",
    "redaction_marker",
]
