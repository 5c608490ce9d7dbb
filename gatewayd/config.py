"""The gateway's configuration: pydantic models read from one YAML file.

Where the file comes from: ``--config PATH``, else ``$CLAWGRESS_CONFIG``, else
``/etc/clawgress/gateway.yaml``; when none of these is given and the default file does not
exist, the built-in defaults apply. Relative paths inside the file are relative to the file.
Every invalid file fails with a ``ConfigError`` naming the file, the field path and what was
expected. ``examples/gateway.yaml`` is the annotated reference.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from gatewayd.duration import duration_setting
from gatewayd.errors import ConfigError
from gatewayd.quota.settings import QuotaSettings
from gatewayd.validation import describe

DEFAULT_CONFIG_PATH = Path("/etc/clawgress/gateway.yaml")
CONFIG_ENV = "CLAWGRESS_CONFIG"

FailMode = Literal["fail-open", "fail-closed"]
IfaceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,15}$")]
EnvName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Model):
    """The gateway host itself."""

    name: str = "clawgress"
    # The gateway's own addresses. They join the policy guard class: a rule must name
    # them explicitly for an agent to reach them.
    addresses: list[IPvAnyAddress] = []


class WorkloadInterface(_Model):
    """An interface agents sit behind, the subnets expected on it, and their environment."""

    name: IfaceName
    subnets: list[IPvAnyNetwork] = Field(min_length=1)
    environment: EnvName = "default"


class WorkloadSection(_Model):
    interfaces: list[WorkloadInterface] = []

    @model_validator(mode="after")
    def _distinct(self) -> WorkloadSection:
        seen: dict[str, int] = {}
        for i, iface in enumerate(self.interfaces):
            if iface.name in seen:
                raise ValueError(
                    f"interface {iface.name!r} is listed twice (interfaces[{seen[iface.name]}]"
                    f" and interfaces[{i}])"
                )
            seen[iface.name] = i
        nets = [(n, i.name) for i in self.interfaces for n in i.subnets]
        for a, (net_a, name_a) in enumerate(nets):
            for net_b, name_b in nets[a + 1 :]:
                if net_a.version == net_b.version and net_a.overlaps(net_b):
                    raise ValueError(
                        f"subnet {net_a} on {name_a} overlaps {net_b} on {name_b}: a source"
                        " address must belong to exactly one workload interface"
                    )
        return self


class EnvironmentSection(_Model):
    """Per-environment behaviour; ``fail_mode`` is what happens when the engine is down."""

    fail_mode: FailMode = "fail-closed"


class StoreSection(_Model):
    path: Path = Path("/var/lib/clawgress/clawgress.db")


class AuditSection(_Model):
    path: Path = Path("/var/log/clawgress/audit.log")


PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                  "fc00::/7")


class GuardSection(_Model):
    """Destinations added to the built-in guard class (loopback, link-local, metadata...)."""

    extra_cidrs: list[IPvAnyNetwork] = []
    extra_hosts: list[str] = []
    # Private ranges a DNS answer may point into only when a rule's CIDR names the address
    # (DNS rebinding toward internal services). Not guarded for flows by address.
    private_cidrs: list[IPvAnyNetwork] = [ipaddress.ip_network(n) for n in PRIVATE_RANGES]


class PolicySection(_Model):
    # Verification of bundles. With require_signature true (the default) only bundles
    # signed by one of trusted_keys are published or loaded.
    require_signature: bool = True
    trusted_keys: list[Path] = []
    # The last bundle that verified and loaded, kept on disk as the fallback.
    last_known_good: Path = Path("/var/lib/clawgress/policy/last-known-good.bundle")
    # Bounds on a bundle archive, checked before reading past them.
    max_bundle_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_unpacked_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_documents: int = Field(default=1000, gt=0)
    # What a gateway does when the active bundle has expired: deny all traffic, or keep
    # enforcing it (reported by `clawgress policy active` as a problem).
    on_expired: Literal["deny-all", "keep"] = "deny-all"
    guard: GuardSection = GuardSection()


class DataplaneSection(_Model):
    """The kernel side: queues, marks, flood limits, and the engine's timers."""

    # NFQUEUE number for the first packet of each new flow from a workload interface.
    queue: int = Field(default=0, ge=0, le=65535)
    # NFQUEUE number for reply packets of ended TCP flows: the engine turns each into a TCP
    # reset toward the agent, so an agent's download ends at once instead of hanging.
    reset_queue: int = Field(default=1, ge=0, le=65535)
    # How packets are queued: native nft `queue` (kernels with nft_queue), the xtables
    # NFQUEUE target through iptables-nft, or auto: probe and use native when it works.
    queue_backend: Literal["auto", "native", "xtables"] = "auto"
    # Clawgress keeps its state in 7 bits of the packet and conntrack marks, starting at
    # this bit; pick a shift whose bits nothing else on the host uses.
    mark_shift: int = Field(default=20, ge=0, le=25)
    # Per-source limit on packets of undecided flows before they reach the queue, so one
    # agent cannot starve the others' verdicts; above it packets are dropped.
    new_flow_rate: int = Field(default=200, gt=0)
    new_flow_burst: int = Field(default=400, gt=0)
    # Sources without a lease on their interface (unknown agents, addresses an agent added
    # on its own) share this one budget: they are denied and audited, but cannot flood.
    unleased_flow_rate: int = Field(default=20, gt=0)
    unleased_flow_burst: int = Field(default=40, gt=0)
    # Kernel queue length: packets waiting for a verdict beyond it are dropped (and
    # counted); a dropped first packet is retransmitted by the client, never let through.
    queue_max_len: int = Field(default=4096, gt=0, le=1_048_576)
    # How often the engine looks for changes in the store (leases, policy), and checks
    # that its rules are still in place.
    reload_interval_ms: int = Field(default=250, gt=0)
    drift_check_interval_ms: int = Field(default=2000, gt=0)
    # Where the engine writes its counters (queue depth, kernel queue drops, verdicts) in
    # the Prometheus text format, for node_exporter's textfile collector; by default next
    # to the store.
    metrics_path: Path | None = None

    @model_validator(mode="after")
    def _queues_differ(self) -> DataplaneSection:
        if self.queue == self.reset_queue:
            raise ValueError("dataplane.queue and dataplane.reset_queue must differ")
        return self


class NamesSection(_Model):
    """How the engine learns destination names (DNS answers, TLS SNI) and decides by them."""

    # A name an agent resolved stays bound to its addresses for the answer's TTL, held
    # within these bounds (clients cache past a zero TTL; a day at most).
    min_ttl_s: int = Field(default=60, ge=0)
    max_ttl_s: int = Field(default=86400, gt=0)
    # Memory bound: addresses remembered per agent; the least recently resolved go first.
    max_addresses_per_agent: int = Field(default=4096, gt=0)
    # The resolvers agents use. Only their answers teach the engine names: a DNS server an
    # agent controls (any destination policy opens on port 53) could otherwise bind an
    # allowed name to any address. Empty: every server policy allows on port 53 teaches
    # names, and the engine warns at start.
    resolvers: list[IPvAnyAddress] = []
    # A query for a name that a deny rule names: answered NXDOMAIN or REFUSED by the
    # gateway (the query never leaves), or dropped.
    denied_query: Literal["nxdomain", "refused", "drop"] = "nxdomain"
    # A DNS answer whose TXT records carry more bytes than this counts as a tunnelling
    # signal for the agent (audited, counted in the metrics).
    txt_signal_bytes: int = Field(default=512, gt=0)
    # TCP ports whose flows are decided by the TLS ClientHello's server name when the
    # policy names hosts: the flow is admitted pending and its first payload read.
    tls_ports: list[Annotated[int, Field(ge=1, le=65535)]] = [443]
    # An SNI that is not a name the agent resolved to the flow's address (domain fronting,
    # a hard-coded address): deny the flow, or decide it by the SNI and flag it.
    sni_mismatch: Literal["deny", "flag"] = "deny"
    # A ClientHello with an encrypted_client_hello extension: only its outer name can be
    # read. Browsers send the extension as GREASE on every connection, indistinguishable
    # from real ECH, so by default the outer name decides, like any SNI (and must be a name
    # the agent resolved to the address); deny refuses every such ClientHello.
    ech: Literal["deny", "outer-name"] = "outer-name"
    # Bound on the bytes of a ClientHello read before deciding (split across segments and
    # records); a larger one is denied.
    max_client_hello: int = Field(default=16384, ge=512, le=65536)
    # UDP ports where QUIC (HTTP/3) runs. deny: every UDP flow to them is refused (ICMP),
    # so clients fall back to TCP, where the SNI is read. sni: the client's first Initial
    # packet is decrypted (its keys derive from the connection id, RFC 9001) and the
    # ClientHello in it decides, as for TLS over TCP; one that does not fit in the first
    # datagram is refused (the client falls back to TCP).
    quic: Literal["deny", "sni"] = "deny"
    quic_ports: list[Annotated[int, Field(ge=1, le=65535)]] = [443]

    @model_validator(mode="after")
    def _ttl_bounds(self) -> NamesSection:
        if self.min_ttl_s > self.max_ttl_s:
            raise ValueError("names.min_ttl_s must not exceed names.max_ttl_s")
        return self


class LeaseSection(_Model):
    default_ttl: Annotated[int, Field(gt=0)] = 3600
    max_ttl: Annotated[int, Field(gt=0)] = 30 * 86400

    @field_validator("default_ttl", "max_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int:
        return duration_setting(value)


# Leaf certificates longer-lived than this are refused by some TLS clients (Apple: 825
# days for any server certificate, 398 for publicly trusted ones); stay under both.
MAX_LEAF_TTL = 397 * 86400


# What JWT issuers may sign with: public-key algorithms only. Never `none`, and never HS*:
# with an HMAC algorithm a verifier holding a public key can be fooled into using that
# key, which anyone can read, as the shared secret (algorithm confusion).
JwtAlgorithm = Literal[
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"
]
# A SPIFFE trust domain: lowercase letters, digits, '.', '-', '_'.
TrustDomain = Annotated[str, Field(pattern=r"^[a-z0-9._-]{1,255}$")]


class JwtIssuer(_Model):
    """One issuer whose JWTs agents may present as ``Proxy-Authorization: Bearer``."""

    # The tokens' `iss`, exactly.
    issuer: str = Field(min_length=1)
    # A token's `aud` must name one of these; at least one, so that a token minted for
    # another service is not accepted here.
    audiences: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    # The algorithms its tokens may use; a token's `alg` outside the list is refused.
    algorithms: list[JwtAlgorithm] = Field(default=["ES256", "RS256", "EdDSA"], min_length=1)
    # Its public keys: PEM files of public keys or certificates, and/or a JWKS file (JSON,
    # read from disk; nothing is fetched). A token's `kid` picks among the JWKS keys.
    key_files: list[Path] = []
    jwks_file: Path | None = None
    # The claim that names the agent, and a prefix to strip from it (e.g. `agent:`): a
    # token whose claim lacks the prefix is refused.
    agent_claim: str = Field(default="sub", min_length=1)
    agent_prefix: str = ""
    # Clock skew allowed on `exp`, `nbf` and `iat` (a duration; 0 for none).
    leeway: int = Field(default=30, ge=0, le=600)

    @field_validator("leeway", mode="before")
    @classmethod
    def _leeway(cls, value: Any) -> int:
        if (type(value) is int and value == 0) or (
            isinstance(value, str) and value.strip() in {"0", "0s"}
        ):
            return 0
        return duration_setting(value)

    @model_validator(mode="after")
    def _has_keys(self) -> JwtIssuer:
        if not self.key_files and self.jwks_file is None:
            raise ValueError(f"issuer {self.issuer!r} needs key_files or a jwks_file")
        return self


class ProxyIdentitySection(_Model):
    """Who sent a request on the explicit proxy, asserted per request: an API key
    (Basic), a JWT (Bearer) or a client certificate (``docs/l7.md``)."""

    # `Proxy-Authorization: Basic base64(agent_id:api_key)` with keys from
    # `clawgress agent key create`.
    allow_basic: bool = True
    # `Proxy-Authorization: Bearer <JWT>` from these issuers; none: Bearer is refused.
    jwt_issuers: list[JwtIssuer] = []
    # Client certificates: the proxy listener asks for one when client_ca_files is set
    # (PEM CA certificates that sign them), and a URI SAN
    # spiffe://<trust domain>/agent/<agent id> in one of spiffe_trust_domains names the
    # agent. Set both or neither.
    spiffe_trust_domains: list[TrustDomain] = []
    client_ca_files: list[Path] = []

    @model_validator(mode="after")
    def _consistent(self) -> ProxyIdentitySection:
        issuers = [i.issuer for i in self.jwt_issuers]
        for issuer in issuers:
            if issuers.count(issuer) > 1:
                raise ValueError(f"jwt issuer {issuer!r} is configured twice")
        if bool(self.spiffe_trust_domains) != bool(self.client_ca_files):
            raise ValueError(
                "spiffe_trust_domains and client_ca_files go together: client certificates"
                " are asked for only with client_ca_files, and name agents only in"
                " spiffe_trust_domains"
            )
        return self


class L7Section(_Model):
    """The L7 engine: its listeners, their limits and timeouts, and the gateway CA that TLS
    interception signs leaves with (``docs/l7.md``)."""

    # Flows policy sends to `inspect` are diverted (TPROXY) to this local port; the
    # ruleset and the policy routing that make it work are set up by `clawgress run`.
    transparent_port: int = Field(default=15001, ge=1, le=65535)
    # The explicit proxy (HTTP_PROXY / HTTPS_PROXY, CONNECT) on the gateway's addresses,
    # reachable from the workload interfaces only; null turns it off.
    proxy_port: int | None = Field(default=3128, ge=1, le=65535)
    # TLS on the explicit proxy itself (an https:// proxy URL), with a leaf of the gateway
    # CA; clients may then present certificates (l7.identity.client_ca_files).
    proxy_tls: bool = False
    # The policy routing table and rule priority that deliver diverted flows locally.
    route_table: int = Field(default=215, ge=1, le=0xFFFFFFFE)
    route_priority: int = Field(default=215, ge=1, le=32765)
    # Per connection: the whole request head must arrive within header_timeout; a
    # keep-alive connection idle longer than idle_timeout is closed; an upstream must
    # accept within connect_timeout and send something at least every upstream_timeout.
    header_timeout: Annotated[int, Field(gt=0)] = 10
    idle_timeout: Annotated[int, Field(gt=0)] = 60
    connect_timeout: Annotated[int, Field(gt=0)] = 10
    upstream_timeout: Annotated[int, Field(gt=0)] = 120
    # Request heads larger than this (request line and headers) get 431.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    # The engine reads a request body up to this many bytes before deciding on it; above
    # it, `body_over_limit` says what happens: `deny` (413) or `forward` uninspected
    # (flagged `body-uninspected` in the audit record).
    inspect_body_bytes: int = Field(default=1024 * 1024, ge=0, le=64 * 1024 * 1024)
    body_over_limit: Literal["deny", "forward"] = "deny"
    # Connections held at once, both listeners together; above it new ones are closed.
    max_connections: int = Field(default=10000, gt=0, le=1_000_000)
    # The Retry-After a `throttle` decision answers with (429).
    throttle_retry_after: Annotated[int, Field(gt=0)] = 1

    # Where the gateway CA lives: ca.key (0600), ca.crt, ca.prev.crt after a rotation.
    # The folder is kept 0700.
    ca_dir: Path = Path("/var/lib/clawgress/ca")
    # Lifetime of a new gateway CA (`clawgress ca init|rotate`).
    ca_ttl: Annotated[int, Field(gt=0)] = 3650 * 86400
    # Lifetime of a leaf certificate minted per server name (never past the CA's expiry),
    # and how many are kept, least recently used first out.
    leaf_ttl: Annotated[int, Field(gt=0)] = 7 * 86400
    leaf_cache_size: int = Field(default=4096, gt=0, le=1_000_000)
    # CA certificates (PEM) trusted for upstream servers in addition to the system trust
    # store: for labs and private services, not for skipping verification.
    extra_upstream_cas: list[Path] = []
    # Identity asserted per request on the explicit proxy (API keys, JWTs, client
    # certificates).
    identity: ProxyIdentitySection = ProxyIdentitySection()

    @field_validator("ca_ttl", "leaf_ttl", "header_timeout", "idle_timeout",
                     "connect_timeout", "upstream_timeout", "throttle_retry_after",
                     mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int:
        return duration_setting(value)

    @model_validator(mode="after")
    def _leaf_within_ca(self) -> L7Section:
        if self.proxy_port == self.transparent_port:
            raise ValueError("l7.proxy_port and l7.transparent_port must differ")
        if self.identity.client_ca_files and not self.proxy_tls:
            raise ValueError("l7.identity.client_ca_files asks for client certificates, which"
                             " need TLS on the proxy: set l7.proxy_tls: true")
        if self.leaf_ttl > MAX_LEAF_TTL:
            raise ValueError(
                f"l7.leaf_ttl is longer than {MAX_LEAF_TTL // 86400}d: TLS clients refuse"
                " server certificates that live longer"
            )
        if self.leaf_ttl > self.ca_ttl:
            raise ValueError("l7.leaf_ttl is longer than l7.ca_ttl")
        return self


class AiSection(_Model):
    """The AI protocol analyzer in the L7 engine (``docs/ai.md``)."""

    # Requests the L7 engine reads are analyzed: provider, model, tools, token estimate
    # (for policy, quotas and the record), and the usage their answers report. Off, rules
    # on those fields never hold.
    enabled: bool = True


class DlpSection(_Model):
    """DLP in the L7 engine (``docs/dlp.md``)."""

    # Request bodies the L7 engine reads are scanned for secrets, personal and health data;
    # the classes found are what policy's dlp_classes read, and rules' dlp: act on them.
    enabled: bool = True
    # The operator's rules files (YAML), added to the shipped rules.
    rules_files: list[Path] = []
    # Matches below this confidence are dropped.
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    # The key of hash-log (HMAC-SHA-256), made on first use, 0600.
    key_file: Path = Path("/var/lib/clawgress/dlp.key")
    # A body DLP cannot read (JSON that does not parse, more candidates than it scans):
    # refuse (403, inspection-failed) or forward it flagged.
    on_error: Literal["refuse", "forward"] = "refuse"


class CredentialsSection(_Model):
    """Provider credentials the gateway injects for agents (``docs/credentials.md``)."""

    # The data key that seals provider keys in the store (AES-256-GCM), made when the
    # first credential is added, 0600; null: credentials.key beside the store.
    key_file: Path | None = None


class Config(_Model):
    """The whole gateway configuration (see ``examples/gateway.yaml``)."""

    gateway: GatewaySection = GatewaySection()
    workload: WorkloadSection = WorkloadSection()
    environments: dict[EnvName, EnvironmentSection] = {"default": EnvironmentSection()}
    store: StoreSection = StoreSection()
    audit: AuditSection = AuditSection()
    policy: PolicySection = PolicySection()
    leases: LeaseSection = LeaseSection()
    dataplane: DataplaneSection = DataplaneSection()
    names: NamesSection = NamesSection()
    l7: L7Section = L7Section()
    ai: AiSection = AiSection()
    dlp: DlpSection = DlpSection()
    credentials: CredentialsSection = CredentialsSection()
    quota: QuotaSettings = QuotaSettings()

    @model_validator(mode="after")
    def _environments_declared(self) -> Config:
        for i, iface in enumerate(self.workload.interfaces):
            if iface.environment not in self.environments:
                declared = ", ".join(sorted(self.environments)) or "none"
                raise ValueError(
                    f"workload.interfaces[{i}] ({iface.name}) names environment"
                    f" {iface.environment!r}, which is not under environments: (declared:"
                    f" {declared})"
                )
        if self.leases.default_ttl > self.leases.max_ttl:
            raise ValueError("leases.default_ttl is longer than leases.max_ttl")
        return self

    @property
    def credentials_key_path(self) -> Path:
        return self.credentials.key_file or self.store.path.parent / "credentials.key"

    @property
    def metrics_path(self) -> Path:
        return self.dataplane.metrics_path or self.store.path.parent / "dataplane.prom"

    def fail_mode_for(self, environment: str) -> FailMode:
        """The fail mode of ``environment``; undeclared environments fail closed."""
        env = self.environments.get(environment)
        return env.fail_mode if env else "fail-closed"

    def interface(self, name: str) -> WorkloadInterface | None:
        for iface in self.workload.interfaces:
            if iface.name == name:
                return iface
        return None

    def interface_for(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """The workload interface whose subnets contain ``ip``, if any."""
        for iface in self.workload.interfaces:
            for net in iface.subnets:
                if ip.version == net.version and ip in net:
                    return iface.name
        return None


_PATH_FIELDS = (
    ("store", "path"),
    ("audit", "path"),
    ("policy", "last_known_good"),
    ("dataplane", "metrics_path"),
    ("l7", "ca_dir"),
    ("quota", "sqlite_path"),
    ("dlp", "key_file"),
    ("credentials", "key_file"),
)
_PATH_LIST_FIELDS = (
    ("policy", "trusted_keys"),
    ("dlp", "rules_files"),
    ("l7", "extra_upstream_cas"),
)
# Paths deeper down: keys from the top, "*" for every item of a list; the last key names a
# path or a list of paths.
_NESTED_PATH_FIELDS = (
    ("l7", "identity", "client_ca_files"),
    ("l7", "identity", "jwt_issuers", "*", "key_files"),
    ("l7", "identity", "jwt_issuers", "*", "jwks_file"),
)


def _resolve_relative(data: dict[str, Any], base: Path) -> None:
    """Make relative paths in raw config data relative to the config file's folder."""
    for section, key in _PATH_FIELDS:
        sec = data.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            p = Path(sec[key])
            if not p.is_absolute():
                sec[key] = str(base / p)
    for section, key in _PATH_LIST_FIELDS:
        sec = data.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), list):
            sec[key] = [
                str(base / k) if isinstance(k, str) and not Path(k).is_absolute() else k
                for k in sec[key]
            ]
    for keys in _NESTED_PATH_FIELDS:
        _resolve_nested(data, keys, base)


def _resolve_nested(node: Any, keys: tuple[str, ...], base: Path) -> None:
    head, rest = keys[0], keys[1:]
    if head == "*":
        for item in node if isinstance(node, list) else ():
            _resolve_nested(item, rest, base)
        return
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _resolve_nested(node[head], rest, base)
        return
    value = node[head]
    if isinstance(value, str) and not Path(value).is_absolute():
        node[head] = str(base / value)
    elif isinstance(value, list):
        node[head] = [
            str(base / k) if isinstance(k, str) and not Path(k).is_absolute() else k
            for k in value
        ]


def parse_config(text: str, source: str, base: Path | None = None) -> Config:
    """Parse YAML ``text`` (named ``source`` in errors) into a ``Config``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config {source}:{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source}: expected a mapping of sections at the top level,"
            f" got {type(data).__name__}"
        )
    if base is not None:
        _resolve_relative(data, base)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = describe(exc)
        head = f"config {source}: {lines[0]}"
        more = "".join(f"\n  config {source}: {line}" for line in lines[1:])
        raise ConfigError(head + more) from None


def config_path(explicit: str | Path | None) -> tuple[Path, bool]:
    """Which file to read, and whether it was asked for (so must exist)."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env), True
    return DEFAULT_CONFIG_PATH, False


def load_config(explicit: str | Path | None = None) -> tuple[Config, Path | None]:
    """The configuration and the file it came from (``None``: built-in defaults)."""
    path, required = config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config {path}: no such file") from None
        return Config(), None
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not UTF-8 text") from None
    return parse_config(text, str(path), base=path.parent.resolve()), path


_IFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")


def valid_interface_name(name: str) -> bool:
    """Linux interface names: 1 to 15 characters, no slash, no whitespace."""
    return bool(_IFACE.match(name))
