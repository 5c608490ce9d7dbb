"""Render the ruleset from the gateway configuration: a pure function of its inputs.

``render_ruleset(config, backend)`` fills ``nft/clawgress.nft.in`` and returns a ``Ruleset``:
the nft text of table ``inet clawgress``, the iptables/ip6tables rules the xtables backend
adds outside the table (as argument lists), and a digest of both. The digest is also the
table's comment, so a live table says which render it came from.

The template is read as package data (``gatewayd/netfilter/clawgress.nft.in``). In the
source tree that file is a symlink to ``nft/clawgress.nft.in``, the one copy to edit; a
built wheel carries the file itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shlex
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from gatewayd.config import Config, WorkloadInterface
from gatewayd.netfilter.errors import NetfilterError
from gatewayd.netfilter.marks import FULL_MASK, Marks, State

Backend = Literal["native", "xtables"]
BACKENDS: tuple[Backend, ...] = ("native", "xtables")
XtablesFamily = Literal["ipv4", "ipv6"]

TABLE_FAMILY = "inet"
TABLE_NAME = "clawgress"
TABLE = f"{TABLE_FAMILY} {TABLE_NAME}"
TEMPLATE_NAME = "clawgress.nft.in"
# The comment on every iptables/ip6tables rule Clawgress adds: how flush and drift find them.
XTABLES_TAG = "clawgress"
XTABLES_TOOLS: Mapping[XtablesFamily, str] = {"ipv4": "iptables-nft", "ipv6": "ip6tables-nft"}
# Where the xtables backend hooks in: (table, chain) per queue.
VERDICT_CHAIN = ("mangle", "PREROUTING")
RESET_CHAIN = ("filter", "FORWARD")
XTABLES_CHAINS = (VERDICT_CHAIN, RESET_CHAIN)
DIGEST_CHARS = 16

# Always allowed from a workload interface with IPv6 subnets: link-local and the unspecified
# address (neighbour discovery, duplicate address detection).
IPV6_ALWAYS = (ipaddress.IPv6Network("fe80::/10"), ipaddress.IPv6Network("::/128"))

_LINE_PLACEHOLDER = re.compile(r"^\s*\$\{(\w+)\}\s*$")

XtablesOp = Literal["-I", "-C", "-D"]


@dataclass(frozen=True)
class XtablesRule:
    """One rule the xtables backend adds: ``spec`` is exactly as ``iptables -S`` prints it."""

    family: XtablesFamily
    table: str
    chain: str
    spec: tuple[str, ...]

    @property
    def tool(self) -> str:
        return XTABLES_TOOLS[self.family]

    def argv(self, op: XtablesOp) -> list[str]:
        """The command that inserts (at the top of the chain), checks or deletes this rule."""
        position = ["1"] if op == "-I" else []
        return [self.tool, "-w", "-t", self.table, op, self.chain, *position, *self.spec]

    def __str__(self) -> str:
        return shlex.join(self.argv("-I"))


@dataclass(frozen=True)
class Ruleset:
    """A rendered ruleset: what ``apply`` loads, and what drift is measured against."""

    backend: Backend
    nft: str
    xtables: tuple[XtablesRule, ...]
    digest: str

    def as_file(self) -> str:
        """The nft text, then the xtables rules as comments: still loads with ``nft -f``."""
        if not self.xtables:
            return self.nft
        lines = [f"# {rule}" for rule in self.xtables]
        return (
            f"{self.nft}# xtables NFQUEUE rules, added outside the table:\n"
            + "\n".join(lines)
            + "\n"
        )


def load_template() -> str:
    """The ruleset template shipped with the package."""
    try:
        return resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise NetfilterError(
            f"ruleset template {TEMPLATE_NAME} is missing from package {__package__}"
            " (a broken installation)"
        ) from None


def render_ruleset(config: Config, backend: Backend, template: str | None = None) -> Ruleset:
    """The ruleset for ``config`` queued through ``backend``; same inputs, same text."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown queue backend {backend!r}")
    marks = Marks.from_config(config)
    text = load_template() if template is None else template
    xtables = xtables_rules(config, marks) if backend == "xtables" else ()
    values = _values(config, marks, backend)
    body = _fill(text, {**values, "digest": ""})
    digest = _digest(backend, body, xtables)
    return Ruleset(backend, _fill(text, {**values, "digest": digest}), xtables, digest)


def xtables_rules(config: Config, marks: Marks) -> tuple[XtablesRule, ...]:
    """The NFQUEUE rules of the xtables backend, IPv4 then IPv6, verdict queue first."""
    dp = config.dataplane
    wanted = (
        (VERDICT_CHAIN, marks.queued_bit, dp.queue),
        (RESET_CHAIN, marks.reset_bit, dp.reset_queue),
    )
    rules: list[XtablesRule] = []
    for family in ("ipv4", "ipv6"):
        for (table, chain), bit, queue in wanted:
            spec = (
                "-m", "mark", "--mark", f"{bit:#x}/{bit | marks.stamp_bit:#x}",
                "-m", "comment", "--comment", XTABLES_TAG,
                "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass",
            )  # fmt: skip
            rules.append(XtablesRule(family, table, chain, spec))
    return tuple(rules)


def antispoof_rules(interfaces: Sequence[WorkloadInterface]) -> list[str]:
    """Per interface: drop sources outside its subnets, one rule per IP version."""
    lines: list[str] = []
    for iface in interfaces:
        name = _quoted(iface.name)
        v4 = [n for n in iface.subnets if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in iface.subnets if isinstance(n, ipaddress.IPv6Network)]
        if v4:
            nets = _set_of(ipaddress.collapse_addresses(v4))
            lines.append(f'iifname {name} ip saddr != {nets} counter drop comment "spoofed source"')
        else:
            lines.append(f'iifname {name} meta nfproto ipv4 counter drop comment "no ipv4 subnet"')
        if v6:
            nets = _set_of(ipaddress.collapse_addresses([*v6, *IPV6_ALWAYS]))
            lines.append(
                f'iifname {name} ip6 saddr != {nets} counter drop comment "spoofed source"'
            )
        else:
            lines.append(f'iifname {name} meta nfproto ipv6 counter drop comment "no ipv6 subnet"')
    return lines


def proxy_classify(config: Config) -> list[str]:
    """New connections to the explicit proxy skip the verdict queue."""
    port = config.l7.proxy_port
    if port is None:
        return []
    return [f"tcp dport {port} fib daddr type local return"]


def l7_input(config: Config) -> list[str]:
    """Who may connect to the L7 engine's listeners directly."""
    l7 = config.l7
    lines = []
    if l7.proxy_port is not None:
        lines.append(f'tcp dport {l7.proxy_port} iifname != @workload_ifaces iifname != "lo"'
                     ' counter drop comment "explicit proxy: workload interfaces only"')
    lines.append(f'tcp dport {l7.transparent_port} iifname != "lo" counter drop comment'
                 ' "the transparent listener takes diverted flows only"')
    return lines


def _indent(lines: list[str]) -> str:
    return "\n".join(f"\t\t{line}" for line in lines)


def fail_closed_interfaces(config: Config) -> list[str]:
    """Workload interfaces whose environment fails closed."""
    return [
        i.name
        for i in config.workload.interfaces
        if config.fail_mode_for(i.environment) == "fail-closed"
    ]


_DOFFS = range(5, 16)


def _values(config: Config, marks: Marks, backend: Backend) -> dict[str, str]:
    dp = config.dataplane
    ifaces = config.workload.interfaces
    native = backend == "native"
    stamp = marks.stamp_bit
    return {
        "workload_elements": _elements([i.name for i in ifaces]),
        "fail_closed_elements": _elements(fail_closed_interfaces(config)),
        "antispoof_rules": "\n".join(f"\t\t{line}" for line in antispoof_rules(ifaces)),
        "rate": str(dp.new_flow_rate),
        "burst": str(dp.new_flow_burst),
        "unleased_rate": str(dp.unleased_flow_rate),
        "unleased_burst": str(dp.unleased_flow_burst),
        "queue_statement": f"\t\tqueue num {dp.queue} bypass" if native else "",
        "reset_statement": f"\t\tqueue num {dp.reset_queue} bypass" if native else "",
        "state_mask": _hex(marks.state_mask),
        "keep_mask": _hex(FULL_MASK & ~marks.state_mask),
        "clear_mask": _hex(marks.others),
        "stamp": _hex(stamp),
        "queue_bit": _hex(marks.queued_bit),
        "reset_bit": _hex(marks.reset_bit),
        "stamp_state": _hex(stamp | marks.state_mask),
        "queue_stamp": _hex(marks.queued_bit | stamp),
        "reset_stamp": _hex(marks.reset_bit | stamp),
        "engine_sent": _hex(marks.engine_sent),
        "queue_pending": _hex(marks.queued_bit | marks.value(State.PENDING)),
        "queue_allow": _hex(marks.queued_bit | marks.value(State.ALLOW)),
        # A TCP segment without payload, by its data offset: IPv4 with a 20-byte header,
        # IPv6 (payload length) without extension headers.
        "transparent_port": str(config.l7.transparent_port),
        "route_table": str(config.l7.route_table),
        "proxy_classify": _indent(proxy_classify(config)),
        "l7_input": _indent(l7_input(config)),
        "bare_ack4": "\n".join(f"\t\ttcp doff {d} ip length {20 + 4 * d} accept" for d in _DOFFS),
        "bare_ack6": "\n".join(f"\t\ttcp doff {d} ip6 length {4 * d} accept" for d in _DOFFS),
        **{s.name.lower(): _hex(marks.value(s)) for s in State if s is not State.UNDECIDED},
        **{
            f"stamped_{s.name.lower()}": _hex(stamp | marks.value(s))
            for s in State
            if s is not State.UNDECIDED
        },
    }


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Drop comment lines; a line holding only an empty placeholder goes too."""
    out: list[str] = []
    for line in template.splitlines():
        if line.lstrip().startswith("#"):
            continue
        whole = _LINE_PLACEHOLDER.match(line)
        if whole and not values.get(whole.group(1), "x"):
            continue
        out.append(line)
    try:
        return string.Template("\n".join(out) + "\n").substitute(values)
    except (KeyError, ValueError) as exc:
        raise NetfilterError(f"ruleset template: bad or unknown placeholder {exc}") from None


def _digest(backend: Backend, body: str, xtables: Sequence[XtablesRule]) -> str:
    h = hashlib.sha256()
    h.update(f"{backend}\n{body}".encode())
    for rule in xtables:
        h.update(f"{rule}\n".encode())
    return h.hexdigest()[:DIGEST_CHARS]


def _elements(names: Sequence[str]) -> str:
    if not names:
        return ""
    return "\t\telements = { " + ", ".join(_quoted(n) for n in names) + " }"


def _set_of(nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    return "{ " + ", ".join(str(n) for n in nets) + " }"


def _quoted(name: str) -> str:
    # Interface names are validated by the configuration ([A-Za-z0-9_.@-]{1,15}).
    return f'"{name}"'


def _hex(value: int) -> str:
    return f"0x{value:08x}"
