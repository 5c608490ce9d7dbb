"""The lab's state directory: where each file lives, and the record of what was started.

``lab.json`` is written first thing by ``up`` and updated after every process it starts,
so ``down`` can find the prefix and the pids even after ``up`` was killed half-way. The
record and the paths are plain values; ``load_record``/``save_record`` are the only IO.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewayd.config import FailMode
from gatewayd.lab.errors import LabError

RECORD_NAME = "lab.json"
RECORD_VERSION = 1


@dataclass(frozen=True)
class StatePaths:
    """The files of one lab under its state directory."""

    root: Path

    @property
    def record(self) -> Path:
        return self.root / RECORD_NAME

    @property
    def config(self) -> Path:
        """The gateway configuration (``clawgress --config`` this)."""
        return self.root / "gateway.yaml"

    @property
    def ca_bundle(self) -> Path:
        """The lab CA certificate, which agents trust."""
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def dlp_key(self) -> Path:
        """The gateway's DLP key (``dlp.key_file``, hash-log), made on first use."""
        return self.root / "dlp.key"

    @property
    def gateway_ca_dir(self) -> Path:
        """The gateway CA (``l7.ca_dir``) that signs the leaves of intercepted TLS."""
        return self.root / "gateway-ca"

    @property
    def trust_bundle(self) -> Path:
        """What agents trust: the lab CA (its servers) and the gateway CA (interception)."""
        return self.root / "trust.pem"

    @property
    def upstream_cert(self) -> Path:
        return self.root / "upstream.pem"

    @property
    def upstream_key(self) -> Path:
        return self.root / "upstream.key"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def signing_key(self) -> Path:
        """The private Ed25519 key that signs the lab's policy bundles."""
        return self.keys_dir / "lab-policy.key"

    @property
    def signing_pub(self) -> Path:
        return self.keys_dir / "lab-policy.pub"

    @property
    def store(self) -> Path:
        return self.root / "clawgress.db"

    @property
    def audit(self) -> Path:
        return self.root / "audit.log"

    @property
    def last_known_good(self) -> Path:
        return self.root / "last-known-good.bundle"

    def log(self, process: str) -> Path:
        return self.root / f"{process}.log"


@dataclass(frozen=True)
class ProcessRecord:
    """A process the lab started: its pid and its start time (clock ticks after boot, from
    ``/proc/PID/stat``), so a pid reused by someone else is never mistaken for it."""

    name: str
    namespace: str
    pid: int
    start_time: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "pid": self.pid,
            "start_time": self.start_time,
        }


@dataclass(frozen=True)
class LabRecord:
    prefix: str
    agents: int
    fail_mode: FailMode
    dns_ttl: int
    created: float
    processes: dict[str, ProcessRecord] = field(default_factory=dict)

    def with_process(self, process: ProcessRecord) -> LabRecord:
        return LabRecord(
            self.prefix, self.agents, self.fail_mode, self.dns_ttl, self.created,
            {**self.processes, process.name: process},
        )

    def without_process(self, name: str) -> LabRecord:
        rest = {k: v for k, v in self.processes.items() if k != name}
        return LabRecord(
            self.prefix, self.agents, self.fail_mode, self.dns_ttl, self.created, rest
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": RECORD_VERSION,
                "prefix": self.prefix,
                "agents": self.agents,
                "fail_mode": self.fail_mode,
                "dns_ttl": self.dns_ttl,
                "created": self.created,
                "processes": [p.as_dict() for p in self.processes.values()],
            },
            indent=2,
        ) + "\n"


def parse_record(text: str, source: str) -> LabRecord:
    """The record in ``text``; ``LabError`` naming ``source`` if it is not one."""
    try:
        data = json.loads(text)
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        fail_mode = data["fail_mode"]
        if fail_mode not in ("fail-open", "fail-closed"):
            raise ValueError(f"unknown fail mode {fail_mode!r}")
        processes = {}
        for p in data["processes"]:
            rec = ProcessRecord(str(p["name"]), str(p["namespace"]), int(p["pid"]),
                                int(p["start_time"]))
            if rec.pid <= 1:
                raise ValueError(f"pid {rec.pid}")
            processes[rec.name] = rec
        return LabRecord(
            prefix=str(data["prefix"]),
            agents=int(data["agents"]),
            fail_mode=fail_mode,
            dns_ttl=int(data["dns_ttl"]),
            created=float(data["created"]),
            processes=processes,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabError(f"{source}: not a lab record ({exc}); remove it by hand") from None


def load_record(paths: StatePaths) -> LabRecord | None:
    try:
        text = paths.record.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"{paths.record}: cannot read: {exc.strerror or exc}") from None
    return parse_record(text, str(paths.record))


def save_record(paths: StatePaths, record: LabRecord) -> None:
    """Replace the record atomically (write a temporary file, then rename it)."""
    tmp = paths.record.with_name(f".{RECORD_NAME}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(record.to_json())
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(paths.record)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise LabError(f"{paths.record}: cannot write: {exc.strerror or exc}") from None
