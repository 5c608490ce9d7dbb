"""``Lab``: bring the lab up, use it, and take it down again, whatever state it is in.

A thin IO shell over the plan (``gatewayd.lab.plan``), the file renderers and the command
lines. ``up`` records what it makes in ``<state>/lab.json`` as it goes; ``down`` removes
everything a lab with the prefix could have made, record or not, so it also cleans up
after a crash or a half-done ``up``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import serialization

from gatewayd.config import FailMode, load_config
from gatewayd.errors import ClawgressError
from gatewayd.l7.ca_store import CaPaths, init_ca
from gatewayd.lab import processes, topology
from gatewayd.lab.commands import (
    DNS_PORT,
    UDP_ECHO_PORTS,
    UPSTREAM_TCP_PORTS,
    clawgress_argv,
    dns_server_argv,
    in_namespace,
    upstream_argv,
)
from gatewayd.lab.errors import LabError
from gatewayd.lab.gateway_config import gateway_config
from gatewayd.lab.pki import issue_lab_pki
from gatewayd.lab.plan import (
    DEFAULT_AGENTS,
    DEFAULT_DNS_TTL,
    DEFAULT_PREFIX,
    DEFAULT_STATE_DIR,
    Endpoint,
    LabPlan,
)
from gatewayd.lab.state import LabRecord, ProcessRecord, StatePaths, load_record, save_record
from gatewayd.policy.signing import generate_key, private_key_pem, public_key_pem

DNS = "dns"
UPSTREAM_PROCESS = "upstream"
ENGINE = "engine"
READY_TIMEOUT = 10.0
ENGINE_READY_TIMEOUT = 15.0
# Proxy settings of the host mean nothing inside the lab's own network.
_PROXY_VARIABLES = frozenset(
    {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}
)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)


class Lab:
    """The lab with ``prefix`` whose state lives in ``state_dir``.

    ``with Lab(...).up() as lab:`` always takes it down at the end. Agents are named
    ``1``, ``"a1"`` or ``"<prefix>-a1"``; ``"gw"`` and ``"up"`` name the gateway and
    upstream namespaces wherever an agent is expected.
    """

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        agents: int = DEFAULT_AGENTS,
        fail_mode: FailMode = "fail-closed",
        dns_ttl: int = DEFAULT_DNS_TTL,
        python: str | None = None,
    ) -> None:
        if fail_mode not in ("fail-open", "fail-closed"):
            raise LabError(f"fail mode {fail_mode!r}: fail-open or fail-closed")
        if dns_ttl < 0:
            raise LabError("the DNS TTL is zero or more seconds")
        self.plan = LabPlan(prefix, agents)
        self.paths = StatePaths(Path(state_dir).absolute())
        self.fail_mode: FailMode = fail_mode
        self.dns_ttl = dns_ttl
        self.python = python or sys.executable

    @classmethod
    def attach(cls, state_dir: str | Path = DEFAULT_STATE_DIR, prefix: str | None = None) -> Lab:
        """The lab recorded in ``state_dir``; without a record, a default-sized lab with
        ``prefix`` (so ``down`` and ``status`` still find what is left of it)."""
        paths = StatePaths(Path(state_dir))
        record = load_record(paths)
        if record is None:
            return cls(prefix or DEFAULT_PREFIX, state_dir)
        if prefix is not None and prefix != record.prefix:
            raise LabError(
                f"{paths.record} is the lab {record.prefix!r}, not {prefix!r}"
            )
        return cls(record.prefix, state_dir, record.agents, record.fail_mode, record.dns_ttl)

    # --- what the lab is ----------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.plan.prefix

    @property
    def state_dir(self) -> Path:
        return self.paths.root

    @property
    def config_path(self) -> Path:
        """The lab gateway's configuration: ``clawgress --config`` this."""
        return self.paths.config

    @property
    def ca_bundle(self) -> Path:
        """The lab CA certificate (PEM) that agents trust."""
        return self.paths.ca_bundle

    @property
    def signing_key(self) -> Path:
        """The private key that signs policy bundles the lab gateway trusts."""
        return self.paths.signing_key

    @property
    def names(self) -> tuple[str, ...]:
        """The lab names the upstream serves (``metadata.lab`` is in ``addresses`` only)."""
        return tuple(self.plan.services)

    @property
    def addresses(self) -> dict[str, Endpoint]:
        """Every name the lab DNS answers with an address → its IPv4 and IPv6 address."""
        return self.plan.dns_names

    @property
    def txt_records(self) -> dict[str, tuple[str, ...]]:
        """The lab DNS's TXT-only names → their character strings."""
        return self.plan.txt_records

    def agent_address(self, index: int) -> Endpoint:
        return self.plan.agent_address(index)

    def namespace(self, target: str | int) -> str:
        """The namespace of an agent (``1``, ``"a1"``, ``"<prefix>-a1"``), or of the
        gateway (``"gw"``) or the upstream (``"up"``)."""
        roles = {"gw": self.plan.gateway_ns, "gateway": self.plan.gateway_ns,
                 "up": self.plan.upstream_ns, "upstream": self.plan.upstream_ns}
        if isinstance(target, str) and target in roles:
            return roles[target]
        if isinstance(target, str) and target in roles.values():
            return target
        return self.plan.agent_ns(self.plan.agent_index(target))

    def require_namespace(self, target: str | int) -> str:
        """``target``'s namespace; ``LabError`` if it does not exist (the lab is not up)."""
        name = self.namespace(target)
        if name not in topology.list_namespaces():
            raise LabError(
                f"namespace {name} does not exist: the lab {self.prefix} is not up"
                f" (state {self.state_dir})"
            )
        return name

    # --- up -----------------------------------------------------------------------------

    def up(self, engine: bool = True, replace: bool = False) -> Lab:
        """Build the lab; with ``engine``, apply the gateway ruleset and start the verdict
        engine in it. Anything ``up`` made is removed again if it fails."""
        _require_root()
        tools = {name: processes.tool(name) for name in ("ip", "sysctl", "dnsmasq")}
        left = self.leftovers()
        if left:
            if not replace:
                raise LabError(
                    f"a lab is already up here ({'; '.join(left)}): `clawgress lab down"
                    f" --state {self.state_dir}` first, or pass --replace"
                )
            self.down()
        try:
            self._build(tools)
            if engine:
                self.apply_rules()
                self.start_engine()
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise
        return self

    def _build(self, tools: Mapping[str, str]) -> None:
        try:
            self.paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise LabError(f"{self.state_dir}: cannot create: {exc.strerror or exc}") from None
        save_record(self.paths, LabRecord(
            self.prefix, self.plan.agents, self.fail_mode, self.dns_ttl, time.time(),
        ))
        self._write_files()
        topology.create_namespaces(self.plan, tools["ip"], tools["sysctl"])
        topology.build_links(self.plan)
        # Agents resolve through the lab resolver; so does the gateway, whose explicit
        # proxy looks up the hosts agents name.
        for name in (*self.plan.agent_namespaces, self.plan.gateway_ns):
            topology.write_resolv_conf(name)
        dns = self._start(DNS, self.plan.upstream_ns,
                          dns_server_argv(self.plan, self.dns_ttl, tools["dnsmasq"]))
        upstream = self._start(UPSTREAM_PROCESS, self.plan.upstream_ns,
                               upstream_argv(self.python, self.plan, self.paths))
        self._wait_ready(DNS, dns.pid, dns.start_time,
                         lambda: processes.namespace_listens(dns.pid, DNS_PORT, udp=True)
                         and processes.namespace_listens(dns.pid, DNS_PORT))
        self._wait_ready(
            UPSTREAM_PROCESS, upstream.pid, upstream.start_time,
            lambda: all(processes.namespace_listens(upstream.pid, port)
                        for port in UPSTREAM_TCP_PORTS)
            and all(processes.namespace_listens(upstream.pid, port, udp=True)
                    for port in UDP_ECHO_PORTS),
        )

    def _write_files(self) -> None:
        pki = issue_lab_pki(
            self.prefix,
            self.plan.certificate_names,
            self.plan.certificate_addresses,
            dt.datetime.now(dt.UTC),
        )
        key = generate_key()
        self.paths.keys_dir.mkdir(mode=0o700, exist_ok=True)
        files = [
            (self.paths.ca_bundle, pki.ca_cert_pem, 0o644),
            (self.paths.ca_key, pki.ca_key_pem, 0o600),
            (self.paths.upstream_cert, pki.server_cert_pem, 0o644),
            (self.paths.upstream_key, pki.server_key_pem, 0o600),
            (self.paths.signing_key, private_key_pem(key), 0o600),
            (self.paths.signing_pub, public_key_pem(key.public_key()), 0o644),
            (self.paths.config,
             gateway_config(self.plan, self.paths, self.fail_mode).encode(), 0o644),
        ]
        for path, data, mode in files:
            try:
                _write_file(path, data, mode)
            except OSError as exc:
                raise LabError(f"{path}: cannot write: {exc.strerror or exc}") from None
        # The gateway CA that intercepted TLS is signed with, and what agents trust: the
        # lab CA (the lab's servers) and the gateway CA.
        try:
            gateway_ca = init_ca(CaPaths(self.paths.gateway_ca_dir), self.plan.gateway_ns,
                                 time.time(), 30 * 86400)
            _write_file(self.paths.trust_bundle, pki.ca_cert_pem
                        + gateway_ca.public_bytes(serialization.Encoding.PEM), 0o644)
        except (OSError, ClawgressError) as exc:
            raise LabError(f"cannot create the lab's gateway CA: {exc}") from None

    def _start(self, name: str, namespace: str, argv: Sequence[str]) -> ProcessRecord:
        ip = processes.tool("ip")
        process = processes.spawn(
            name, in_namespace(ip, namespace, argv), namespace, self.paths.log(name),
            self._env(),
        )
        record = self._record()
        save_record(self.paths, record.with_process(process))
        return process

    def _wait_ready(
        self, name: str, pid: int, start_time: int, ready: Callable[[], bool]
    ) -> None:
        def done() -> bool:
            return ready() or not processes.alive(pid, start_time)

        processes.wait_until(done, READY_TIMEOUT if name != ENGINE else ENGINE_READY_TIMEOUT)
        if not processes.alive(pid, start_time):
            last = processes.log_tail(self.paths.log(name), lines=1) or "no output"
            raise LabError(f"the lab {name} exited at start: {last} (see {self.paths.log(name)})")
        if not ready():
            raise LabError(f"the lab {name} did not become ready (see {self.paths.log(name)})")

    def _record(self) -> LabRecord:
        record = load_record(self.paths)
        if record is None:
            raise LabError(f"no lab is up at {self.state_dir} ({self.paths.record} is missing)")
        return record

    # --- the engine ---------------------------------------------------------------------

    def apply_rules(self) -> None:
        """``clawgress rules apply`` in the gateway namespace."""
        ip = processes.tool("ip")
        processes.run(
            in_namespace(ip, self.plan.gateway_ns,
                         clawgress_argv(self.python, self.paths, "rules", "apply")),
            f"clawgress rules apply in {self.plan.gateway_ns}",
        )

    def start_engine(self) -> int:
        """Start ``clawgress run`` in the gateway namespace (log: ``<state>/engine.log``)
        and wait until it has bound its queues. Returns its pid."""
        if self.engine_alive():
            raise LabError(f"the lab engine is already running (pid {self.engine_pid()})")
        config, _ = load_config(self.config_path)
        queues = {config.dataplane.queue, config.dataplane.reset_queue}
        engine = self._start(ENGINE, self.plan.gateway_ns,
                             clawgress_argv(self.python, self.paths, "run"))
        try:
            self._wait_ready(
                ENGINE, engine.pid, engine.start_time,
                lambda: queues <= processes.namespace_queues(engine.pid),
            )
        except LabError:
            self.stop_engine(signal.SIGKILL)
            raise
        return engine.pid

    def stop_engine(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> bool:
        """Send ``sig`` to the engine and wait for it to end (SIGKILL after ``timeout``).
        Returns whether it was running. The ruleset stays: the fail mode takes over."""
        record = load_record(self.paths)
        engine = record.processes.get(ENGINE) if record else None
        if record is None or engine is None:
            return False
        was_alive = processes.alive(engine.pid, engine.start_time)
        left = processes.terminate([(engine.pid, engine.start_time)], sig, timeout)
        if left:
            raise LabError(f"the lab engine (pid {engine.pid}) did not end")
        save_record(self.paths, record.without_process(ENGINE))
        self._wait_unbound(timeout)
        return was_alive

    def _wait_unbound(self, timeout: float) -> None:
        """Wait until the kernel has let go of the engine's queues: a process can be gone
        a few milliseconds before its sockets are."""
        config, _ = load_config(self.config_path)
        queues = {config.dataplane.queue, config.dataplane.reset_queue}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run(  # noqa: S603 - an argument list of fixed tools
                in_namespace(processes.tool("ip"), self.plan.gateway_ns,
                             ["cat", "/proc/net/netfilter/nfnetlink_queue"]),
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0 or not queues & processes.bound_queues(proc.stdout):
                return
            time.sleep(0.005)

    def engine_pid(self) -> int | None:
        record = load_record(self.paths)
        engine = record.processes.get(ENGINE) if record else None
        return engine.pid if engine else None

    def engine_alive(self) -> bool:
        record = load_record(self.paths)
        engine = record.processes.get(ENGINE) if record else None
        return engine is not None and processes.alive(engine.pid, engine.start_time)

    # --- using it -----------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of commands in the lab: the host's without proxy settings, the
        lab CA and the gateway CA trusted (``SSL_CERT_FILE``, ``CURL_CA_BUNDLE``,
        ``REQUESTS_CA_BUNDLE``), then ``extra``."""
        env = self._env()
        ca = str(self.paths.trust_bundle if self.paths.trust_bundle.exists()
                 else self.ca_bundle)
        env.update({"SSL_CERT_FILE": ca, "CURL_CA_BUNDLE": ca, "REQUESTS_CA_BUNDLE": ca})
        env.update(extra or {})
        return env

    @staticmethod
    def _env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}

    def command(self, target: str | int, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in ``target``'s namespace."""
        if not argv:
            raise LabError("no command given")
        return in_namespace(processes.tool("ip"), self.namespace(target), argv)

    def exec(
        self,
        target: str | int,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` in ``target``'s namespace (``subprocess.run`` keywords pass
        through; ``env`` adds to ``self.env()``)."""
        command = self.command(target, argv)
        return subprocess.run(  # noqa: S603, PLW1510 - an argument list; check is the caller's
            command, env=self.env(env), **kwargs
        )

    def popen(
        self,
        target: str | int,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` in ``target``'s namespace; the caller waits for it."""
        command = self.command(target, argv)
        return subprocess.Popen(command, env=self.env(env), **kwargs)  # noqa: S603

    # --- down and status ----------------------------------------------------------------

    def _plans(self) -> list[LabPlan]:
        """This lab's plan, and the recorded one if the state dir names another prefix."""
        plans = [self.plan]
        with contextlib.suppress(LabError):
            record = load_record(self.paths)
            if record is not None and record.prefix != self.prefix:
                plans.append(LabPlan(record.prefix, record.agents))
        return plans

    def _owned_namespaces(self) -> list[str]:
        plans = self._plans()
        return [n for n in topology.list_namespaces() if any(p.owns_namespace(n) for p in plans)]

    def leftovers(self) -> list[str]:
        """What of a lab with this prefix or state dir exists now (empty: nothing)."""
        found = []
        if self.paths.record.exists():
            found.append(f"state {self.paths.record}")
        owned = self._owned_namespaces()
        if owned:
            found.append(f"namespaces {', '.join(owned)}")
        etc = [e for p in self._plans() for e in topology.etc_netns_entries(p)]
        if etc:
            found.append(f"{topology.ETC_NETNS}/{{{','.join(etc)}}}")
        return found

    def down(self) -> None:
        """Remove every process, namespace, ``/etc/netns`` entry and state file of the lab.
        Safe to call in any state, and again."""
        _require_root()
        problems = []
        targets: list[tuple[int, int | None]] = []
        with contextlib.suppress(LabError):
            record = load_record(self.paths)
            if record is not None:
                targets += [(p.pid, p.start_time) for p in record.processes.values()]
        owned = self._owned_namespaces()
        for pids in processes.pids_in_namespaces(owned).values():
            for pid in pids:
                found = processes.stat(pid)
                if found is not None:
                    targets.append((pid, found[1]))
        left = processes.terminate(targets)
        if left:
            problems.append(f"processes {', '.join(map(str, left))} did not end")
        problems += topology.remove_namespaces(owned)
        for plan in self._plans():
            topology.remove_etc_netns(plan)
        problems += self._remove_state_dir()
        if problems:
            raise LabError(f"lab {self.prefix}: could not remove: {'; '.join(problems)}")

    def _remove_state_dir(self) -> list[str]:
        root = self.paths.root
        if not root.exists():
            return []
        if self.paths.record.exists():
            try:
                shutil.rmtree(root)
            except OSError as exc:
                return [f"{root} ({exc.strerror or exc})"]
            return []
        # No record: remove only what a lab writes, then the folder if that empties it.
        with contextlib.suppress(OSError):
            shutil.rmtree(self.paths.gateway_ca_dir)
        known = [self.paths.config, self.paths.ca_bundle, self.paths.ca_key,
                 self.paths.trust_bundle,
                 self.paths.upstream_cert, self.paths.upstream_key, self.paths.signing_key,
                 self.paths.signing_pub, *(self.paths.log(n) for n in (DNS, UPSTREAM_PROCESS,
                                                                        ENGINE))]
        for path in known:
            with contextlib.suppress(OSError):
                path.unlink()
        for directory in (self.paths.keys_dir, root):
            with contextlib.suppress(OSError):
                directory.rmdir()
        return []

    def status(self) -> dict[str, Any]:
        """What exists of the lab now, as JSON-ready data."""
        present = set(topology.list_namespaces())
        roles = {self.plan.gateway_ns: "gateway", self.plan.upstream_ns: "upstream"}
        namespaces = []
        for name in self.plan.namespaces:
            entry: dict[str, Any] = {
                "name": name, "role": roles.get(name, "agent"), "present": name in present,
            }
            if name in present:
                try:
                    entry["addresses"] = topology.namespace_addresses(name)
                except Exception as exc:  # status reports what it finds; it does not fail
                    entry["error"] = str(exc)
            namespaces.append(entry)
        try:
            record = load_record(self.paths)
            record_error = None
        except LabError as exc:
            record, record_error = None, str(exc)
        procs = [
            {**p.as_dict(), "alive": processes.alive(p.pid, p.start_time)}
            for p in (record.processes.values() if record else [])
        ]
        alive = {p["name"] for p in procs if p["alive"]}
        engine = next((p for p in procs if p["name"] == ENGINE), None)
        up = (record is not None and all(n["present"] for n in namespaces)
              and {DNS, UPSTREAM_PROCESS} <= alive)
        return {
            "prefix": self.prefix,
            "state_dir": str(self.state_dir),
            "record": str(self.paths.record) if record else record_error,
            "up": up,
            "agents": self.plan.agents,
            "fail_mode": self.fail_mode if record else None,
            "config": str(self.config_path) if record else None,
            "ca_bundle": str(self.ca_bundle) if record else None,
            "namespaces": namespaces,
            "processes": procs,
            "engine": {
                "alive": bool(engine and engine["alive"]),
                "pid": engine["pid"] if engine else None,
                "queues": sorted(processes.namespace_queues(engine["pid"]))
                if engine and engine["alive"] else [],
            },
            "leftovers": self.leftovers() if not up else [],
        }

    # --- context manager ----------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates network namespaces); run it as root")
