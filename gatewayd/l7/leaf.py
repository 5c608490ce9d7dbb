"""Leaf certificates the gateway CA mints per server name, and the cache that keeps them.

``server_name`` decides whether a client's SNI (or the address it connected to) can be put
in a certificate, and gives its canonical form: a lower-case host name without a trailing
dot, or an IPv4/IPv6 address in its compressed form. ``mint_leaf`` signs a certificate for
one such name: subjectAltName DNS (or IP for an address), serverAuth, valid from an hour
before ``now`` for ``ttl`` seconds but never past the CA. ``LeafCache`` holds leaves by
name, least recently used first out, and hands out only leaves that are not due for
renewal (three quarters of their lifetime). Pure apart from the signature's randomness:
the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewayd.l7.certs import server_certificate
from gatewayd.policy.selectors import normalize_host

# Leaves start this long before they are minted: clients with a clock a little behind
# the gateway's still accept them.
BACKDATE = 3600
# A cached leaf is re-minted once this fraction of its lifetime has passed.
RENEW_AFTER = 0.75
MAX_HOST_NAME = 253
# RFC 5280 upper bound on a common name; longer names go in the subjectAltName only.
MAX_COMMON_NAME = 64
ORGANIZATION = "Clawgress"

# Labels of letters, digits, '-' and '_' (seen in real SNIs), not starting or ending with
# '-': the policy language's host-name label (gatewayd.policy.selectors).
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def server_name(sni: str) -> str:
    """``sni`` in canonical form, if a certificate can name it; else ``ValueError``."""
    shown = repr(sni[:80] + ("..." if len(sni) > 80 else ""))
    name = normalize_host(sni)
    if not name:
        raise ValueError(f"server name {shown}: empty")
    address = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            raise ValueError(f"server name {shown}: an address with a zone cannot be certified")
        return ip.compressed
    if not name.isascii():
        raise ValueError(
            f"server name {shown}: not ASCII (internationalized names go in their xn-- form)"
        )
    if len(name) > MAX_HOST_NAME:
        raise ValueError(f"server name {shown}: longer than {MAX_HOST_NAME} characters")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"server name {shown}: {label[:63]!r} is not a host name label")
    if labels[-1].isdigit():
        raise ValueError(f"server name {shown}: neither a host name nor an IP address")
    return name


def _subject_alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class Leaf:
    """A leaf certificate for ``server_name`` and its key, PEM, for a TLS server context.

    ``key_pem`` is the CA's one leaf key (shared by every leaf it mints); it is left out
    of ``repr`` so a leaf can be logged. Times are POSIX seconds.
    """

    server_name: str
    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    not_before: float
    not_after: float
    renew_at: float

    def usable(self, now: float) -> bool:
        """Valid at ``now`` and not yet due for renewal."""
        return self.not_before <= now < min(self.renew_at, self.not_after)


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def mint_leaf(
    name: str,
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    leaf_key: ec.EllipticCurvePrivateKey,
    leaf_key_pem: bytes,
    now: float,
    ttl: int,
) -> Leaf:
    """A leaf for ``name`` (canonical, from ``server_name``) signed by the CA.

    Valid from ``BACKDATE`` before ``now`` (not before the CA) for ``ttl`` seconds, cut at
    the CA's expiry. The caller checks that the CA is valid at ``now``.
    """
    start = int(now)
    not_before = max(start - BACKDATE, int(ca_cert.not_valid_before_utc.timestamp()))
    not_after = min(start + ttl, int(ca_cert.not_valid_after_utc.timestamp()))
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if len(name) <= MAX_COMMON_NAME:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    cert = server_certificate(
        leaf_key, x509.Name(attributes), [_subject_alt_name(name)], ca_key=ca_key,
        ca_cert=ca_cert, not_before=_utc(not_before), not_after=_utc(not_after),
    )
    return Leaf(
        server_name=name,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=leaf_key_pem,
        not_before=float(not_before),
        not_after=float(not_after),
        renew_at=start + RENEW_AFTER * ttl,
    )


class LeafCache:
    """Leaves by server name, at most ``max_size``, least recently used evicted first.

    ``get`` gives a cached leaf only while it is ``usable``; a stale one is dropped (and
    counted in ``renewals``) so the caller mints a new one.
    """

    def __init__(self, max_size: int) -> None:
        if max_size <= 0:
            raise ValueError("leaf cache size must be greater than zero")
        self.max_size = max_size
        self._leaves: OrderedDict[str, Leaf] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.renewals = 0

    def __len__(self) -> int:
        return len(self._leaves)

    def __contains__(self, name: object) -> bool:
        return name in self._leaves

    def get(self, name: str, now: float) -> Leaf | None:
        leaf = self._leaves.get(name)
        if leaf is not None and leaf.usable(now):
            self._leaves.move_to_end(name)
            self.hits += 1
            return leaf
        if leaf is not None:
            del self._leaves[name]
            self.renewals += 1
        self.misses += 1
        return None

    def put(self, leaf: Leaf) -> None:
        self._leaves[leaf.server_name] = leaf
        self._leaves.move_to_end(leaf.server_name)
        while len(self._leaves) > self.max_size:
            self._leaves.popitem(last=False)
            self.evictions += 1
