"""DLP actions: policy says what to do per class; this applies it to what a scan found.

``enforce(findings, actions, key=...)`` takes a map of dotted classes to actions — the most
specific entry wins, so ``{"secrets": "block", "secrets.jwt": "alert"}`` blocks an AWS key
and only alerts on a JWT — and returns an ``Outcome``:

* ``block``: the request is to be refused; ``Outcome.blocked`` names the classes (never a
  value) and ``Outcome.reason`` is the one line to give the client and the audit log.
* ``redact``: each span is replaced with ``[REDACTED:<class>]`` and ``Outcome.body`` is the
  new body (JSON stays valid); the caller forwards it and fixes ``Content-Length``. When
  anything is blocked, nothing is redacted: the request does not go on.
* ``alert``: recorded and flagged in ``Outcome.alerted``; the request goes on.
* ``hash-log``: recorded with an HMAC-SHA-256 of the value under the gateway key.

Every match with an action gets an audit record (``Outcome.records``: class, rule,
confidence, JSON pointer, span, length, action, and ``hmac`` for hash-log). Classes with no
action are left alone. An incomplete scan (a bound reached) is ``Outcome.complete`` false:
the caller's failure policy decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from gatewayd.dlp.findings import Findings

Action = Literal["block", "redact", "alert", "hash-log"]
ACTIONS: tuple[Action, ...] = get_args(Action)


def action_for(dlp_class: str, actions: Mapping[str, Action]) -> Action | None:
    """The action of the most specific entry of ``actions`` that covers ``dlp_class``."""
    name = dlp_class
    while True:
        found = actions.get(name)
        if found is not None:
            return found
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Outcome:
    blocked: tuple[str, ...] = ()
    redacted: tuple[str, ...] = ()
    alerted: tuple[str, ...] = ()
    hashed: tuple[str, ...] = ()
    body: bytes | None = None  # the body to forward instead, when something was redacted
    records: tuple[dict[str, Any], ...] = ()
    complete: bool = True

    @property
    def reason(self) -> str:
        """One line naming what was blocked (classes only), or empty."""
        return f"dlp: {', '.join(self.blocked)}" if self.blocked else ""


def enforce(findings: Findings, actions: Mapping[str, Action], *,
            key: bytes | None = None) -> Outcome:
    """Apply ``actions`` to ``findings``; ``key`` (the gateway's) is needed for hash-log."""
    for name, wanted in actions.items():
        if wanted not in ACTIONS:
            raise ValueError(f"{name}: unknown DLP action {wanted!r}")
    by_action: dict[str, set[str]] = {a: set() for a in ACTIONS}
    records = []
    for match in findings.matches:
        action = action_for(match.dlp_class, actions)
        if action is None:
            continue
        by_action[action].add(match.dlp_class)
        if action == "hash-log":
            if key is None:
                raise ValueError("hash-log needs the gateway key")
            record = findings.records([match], key=key)[0]
        else:
            record = findings.records([match])[0]
        record["action"] = action
        records.append(record)
    redact = by_action["redact"]
    body = None
    if redact and not by_action["block"]:
        body = findings.redact(sorted(redact))
    return Outcome(
        blocked=tuple(sorted(by_action["block"])), redacted=tuple(sorted(redact)),
        alerted=tuple(sorted(by_action["alert"])), hashed=tuple(sorted(by_action["hash-log"])),
        body=body, records=tuple(records), complete=findings.complete)
