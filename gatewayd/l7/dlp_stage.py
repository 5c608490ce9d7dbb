"""DLP in the L7 pipeline: what a request body carries, for the policy, the action and the
record (``docs/dlp.md``).

``DlpStage.look`` is an inspection: it scans the request body with ``gatewayd.dlp.Scanner``
(one Hyperscan pass; JSON scanned as its decoded strings) and returns the classes found —
what the policy's ``dlp_classes`` conditions read — and the scan itself for later. Nothing
it returns or raises holds a matched value: the record keeps classes, JSON paths, spans and
lengths. A body the scanner cannot read (JSON that does not parse) or did not read whole
(more hits than its bound) is refused as ``inspection-failed`` unless ``dlp.on_error`` is
``forward``: nothing leaves unexamined by default.

Once the policy admits the request, ``act`` applies the deciding rule's ``dlp:`` actions
per class (``gatewayd.dlp.enforce``): ``block`` refuses it (403, naming the classes),
``redact`` gives the body to send instead (each value replaced with
``[REDACTED:<class>]``, JSON kept valid), ``alert`` flags the record, ``hash-log`` records
a keyed hash (HMAC-SHA-256 under the gateway's DLP key) of each value so that the same
secret can be recognized across records without being stored.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayd import compiled
from gatewayd.config import Config
from gatewayd.dlp import Findings as Scan
from gatewayd.dlp import Scanner, enforce
from gatewayd.errors import ClawgressError, ConfigError, ParseError
from gatewayd.files import ensure_private_dir, read_file, write_file
from gatewayd.l7.inspection import NOTHING, Findings, Headers, InspectionError
from gatewayd.l7.target import Target

log = logging.getLogger("clawgress.dlp")

KEY_BYTES = 32


def load_key(path: Path) -> bytes:
    """The gateway's DLP key (hash-log), made on first use: 32 random bytes, 0600."""
    try:
        key = read_file(path)
        if key is None:
            ensure_private_dir(path.parent)
            write_file(path, secrets.token_bytes(KEY_BYTES), mode=0o600)
            key = read_file(path)
    except OSError as exc:
        raise ConfigError(f"dlp.key_file {path}: {exc.strerror or exc}") from None
    except ClawgressError as exc:  # its message names the path
        raise ConfigError(f"dlp.key_file: {exc}") from None
    if key is None or len(key) < 16:
        raise ConfigError(f"dlp.key_file {path}: not a key (expected {KEY_BYTES} bytes)")
    return key


@dataclass(frozen=True, slots=True)
class Acted:
    """What the deciding rule's DLP actions did to one request."""

    blocked: tuple[str, ...]
    body: bytes | None  # the body to send instead (redacted), if any
    flags: tuple[str, ...]
    record: Mapping[str, Any]
    # A class to redact was found in a body not read whole: what was not read cannot be
    # redacted, so the request cannot go on.
    unredactable: bool = False


class DlpStage:
    """The inspection that scans request bodies (``dlp.enabled``)."""

    name = "dlp"

    def __init__(self, scanner: Scanner, key: bytes, *, forward_unreadable: bool = False
                 ) -> None:
        self.scanner = scanner
        self.key = key
        self.forward_unreadable = forward_unreadable

    @classmethod
    def configured(cls, rules_files: list[Path], min_confidence: float, key_file: Path,
                   on_error: str) -> DlpStage:
        """The stage as the configuration says; ``ConfigError`` for a bad rules file."""
        scanner = Scanner.from_files(rules_files, min_confidence=min_confidence)
        compiled.report(log, "DLP scanner", "gatewayd.dlp")
        return cls(scanner, load_key(key_file), forward_unreadable=on_error == "forward")

    def look(self, method: str, target: Target, headers: Headers, body: bytes,
             whole: bool) -> Findings:
        if not body:
            return NOTHING
        content_type = next((v.decode("latin-1") for n, v in headers
                             if n == b"content-type"), None)
        try:
            scan = self.scanner.scan(body, content_type=content_type)
        except ParseError as exc:
            if self.forward_unreadable:
                return Findings(record={"dlp": {"status": "unreadable"}})
            # The parser's message names the position, never the data.
            raise InspectionError(f"DLP cannot read the body: {exc}") from None
        if not scan.complete and not self.forward_unreadable:
            raise InspectionError("DLP could not scan the whole body (too many candidates)")
        if not scan.matches:
            return NOTHING
        return Findings(
            dlp_classes=tuple(scan.classes),
            record={"dlp": {"status": "complete" if scan.complete else "partial",
                            "classes": list(scan.classes),
                            "matches": list(scan.records())}},
            details={"dlp": scan},
        )

    def act(self, found: Findings, actions: Mapping[str, str], whole: bool) -> Acted | None:
        """The deciding rule's DLP ``actions`` applied to what was found (``None``: nothing
        to do)."""
        scan = found.details.get("dlp")
        if not isinstance(scan, Scan) or not actions:
            return None
        outcome = enforce(scan, actions, key=self.key)  # type: ignore[arg-type]
        flags = []
        if outcome.alerted:
            flags.append("alert")
        if outcome.redacted:
            flags.append("dlp-redacted")
        if outcome.hashed:
            flags.append("dlp-hashed")
        record = {"status": "complete" if scan.complete else "partial",
                  "classes": list(scan.classes),
                  "blocked": list(outcome.blocked), "redacted": list(outcome.redacted),
                  "alerted": list(outcome.alerted), "hashed": list(outcome.hashed),
                  "matches": list(outcome.records)}
        body = outcome.body if outcome.body is not None and not outcome.blocked else None
        if body is not None and not whole:
            # Only a body read whole can be rewritten; what was not read cannot be redacted.
            return Acted(outcome.blocked, None, tuple(flags), record, unredactable=True)
        return Acted(outcome.blocked, body, tuple(flags), record)


def dlp_stage(config: Config) -> DlpStage | None:
    """The DLP stage for the configuration's ``dlp:`` section (``None`` when off)."""
    section = config.dlp
    if not section.enabled:
        return None
    try:
        return DlpStage.configured(list(section.rules_files), section.min_confidence,
                                   section.key_file, section.on_error)
    except ClawgressError:
        raise
    except OSError as exc:
        raise ConfigError(f"dlp: {exc}") from None

