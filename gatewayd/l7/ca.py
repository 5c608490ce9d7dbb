"""The gateway CA: the certificate authority TLS interception signs its leaves with.

Agents trust the CA's certificate (``clawgress ca export``); for a flow that policy sends
to ``inspect``, the L7 engine will present a leaf certificate for the server name the agent
asked for, signed by this CA (``GatewayCA.leaf_for``). The CA key is EC P-256; so is the
one leaf key a ``GatewayCA`` generates in memory and puts in every leaf it mints.

``issue_ca`` makes a CA key and its self-signed certificate: CA:true with path length 0,
keyCertSign and cRLSign, the subject naming the gateway. ``GatewayCA`` holds a key and
certificate that belong together and mints and caches leaves. Pure apart from fresh key
material and signatures: the clock is an argument. ``ca_store`` keeps a CA on disk.

The key is never logged, printed or quoted in an error; ``repr(GatewayCA)`` names the
certificate only.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewayd.errors import ClawgressError
from gatewayd.l7.certs import ca_certificate, private_key_pem
from gatewayd.l7.leaf import BACKDATE, ORGANIZATION, Leaf, LeafCache, mint_leaf, server_name

DEFAULT_LEAF_TTL = 7 * 86400
DEFAULT_LEAF_CACHE_SIZE = 4096
_CN_PREFIX = "Clawgress CA "
_MAX_NAME = 64 - len(_CN_PREFIX)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, as ``AB:CD:...`` (what ``openssl x509 -fingerprint
    -sha256`` prints)."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_certificate(cert: x509.Certificate) -> dict[str, str]:
    """Subject, SHA-256 fingerprint and validity, for display."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "fingerprint_sha256": fingerprint(cert),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
    }


def ca_subject(gateway_name: str) -> x509.Name:
    """``CN=Clawgress CA <gateway name>, O=Clawgress``."""
    name = gateway_name.strip()
    if not name or len(name) > _MAX_NAME:
        raise ClawgressError(
            f"gateway.name {gateway_name[:80]!r}: the CA certificate's subject needs 1 to"
            f" {_MAX_NAME} characters"
        )
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, _CN_PREFIX + name),
    ])


def issue_ca(
    gateway_name: str, now: float, ttl: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA key and its self-signed certificate, valid from an hour before ``now`` for
    ``ttl`` seconds: CA:true with path length 0 (it signs leaves only), keyCertSign and
    cRLSign."""
    subject = ca_subject(gateway_name)
    key = ec.generate_private_key(ec.SECP256R1())
    start = int(now)
    cert = ca_certificate(key, subject, dt.datetime.fromtimestamp(start - BACKDATE, tz=dt.UTC),
                          dt.datetime.fromtimestamp(start + ttl, tz=dt.UTC))
    return key, cert


def _public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class GatewayCA:
    """A CA key and certificate, and the leaves minted with them.

    A fresh leaf key is generated with each ``GatewayCA`` (held in memory only) unless one
    is given. Leaves are cached by server name (``leaf_cache_size``, LRU) and re-minted
    when three quarters of their ``leaf_ttl`` has passed.
    """

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        *,
        leaf_ttl: int = DEFAULT_LEAF_TTL,
        leaf_cache_size: int = DEFAULT_LEAF_CACHE_SIZE,
        leaf_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        if leaf_ttl <= 0:
            raise ValueError("leaf_ttl must be greater than zero")
        if _public_der(key.public_key()) != _public_der(_ec_public_key(cert)):
            raise ClawgressError("the CA certificate does not match the CA key")
        self._key = key
        self.certificate = cert
        self.leaf_ttl = leaf_ttl
        self._leaf_key = leaf_key or ec.generate_private_key(ec.SECP256R1())
        self._leaf_key_pem = private_key_pem(self._leaf_key)
        self.cache = LeafCache(leaf_cache_size)

    def __repr__(self) -> str:
        return f"GatewayCA({self.certificate.subject.rfc4514_string()}, {self.fingerprint})"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def leaf_for(self, sni: str, now: float) -> Leaf:
        """The leaf for ``sni`` at ``now``: from the cache, or minted (and cached).

        ``ValueError`` if ``sni`` is not a host name or address; ``ClawgressError`` if the
        CA is not valid at ``now``.
        """
        name = server_name(sni)
        leaf = self.cache.get(name, now)
        if leaf is not None:
            return leaf
        starts = self.certificate.not_valid_before_utc.timestamp()
        ends = self.certificate.not_valid_after_utc.timestamp()
        if now >= ends:
            raise ClawgressError(
                f"the gateway CA expired at {_iso(self.certificate.not_valid_after_utc)};"
                " rotate it (`clawgress ca rotate`)"
            )
        if now < starts:
            raise ClawgressError(
                f"the gateway CA is not valid before"
                f" {_iso(self.certificate.not_valid_before_utc)}; check the clock"
            )
        leaf = mint_leaf(
            name,
            ca_key=self._key,
            ca_cert=self.certificate,
            leaf_key=self._leaf_key,
            leaf_key_pem=self._leaf_key_pem,
            now=now,
            ttl=self.leaf_ttl,
        )
        self.cache.put(leaf)
        return leaf


def _ec_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ClawgressError("the CA certificate's key is not an EC key")
    return key
