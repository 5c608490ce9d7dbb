from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewayd.errors import ClawgressError
from gatewayd.l7 import GatewayCA, Leaf, LeafCache, issue_ca, server_name

from .conftest import DAY, NOW, CaPair

# --- server names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sni", "canonical"),
    [
        ("api.openai.com", "api.openai.com"),
        ("API.OpenAI.com.", "api.openai.com"),
        ("_dmarc.example.org", "_dmarc.example.org"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
        ("10.78.0.10", "10.78.0.10"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("[fd78::10]", "fd78::10"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_server_names_accepted_in_canonical_form(sni: str, canonical: str) -> None:
    assert server_name(sni) == canonical


@pytest.mark.parametrize(
    ("sni", "why"),
    [
        ("", "empty"),
        (".", "empty"),
        ("*.example.com", "not a host name label"),
        ("a..example", "not a host name label"),
        ("-lead.example", "not a host name label"),
        ("trail-.example", "not a host name label"),
        ("a b.example", "not a host name label"),
        ("evil.example/path", "not a host name label"),
        ("a" * 64 + ".example", "not a host name label"),
        (".".join(["abcdefghi"] * 26), "longer than 253"),
        ("bücher.example", "not ASCII"),
        ("1.2.3", "neither a host name nor an IP address"),
        ("10.0.0.256", "neither a host name nor an IP address"),
        ("fe80::1%eth0", "zone"),
        ("[::1", "not a host name label"),
    ],
)
def test_bad_server_names_are_refused(sni: str, why: str) -> None:
    with pytest.raises(ValueError, match="server name") as err:
        server_name(sni)
    assert why in str(err.value)


def test_bad_sni_mints_nothing(ca: GatewayCA) -> None:
    with pytest.raises(ValueError, match="not a host name label"):
        ca.leaf_for("*.example.com", NOW)
    assert len(ca.cache) == 0


def test_long_bad_sni_is_cut_in_the_message() -> None:
    with pytest.raises(ValueError, match="server name") as err:
        server_name("x" * 5000)
    assert len(str(err.value)) < 300


# --- what a leaf contains -------------------------------------------------------------------


def _cert(leaf: Leaf) -> x509.Certificate:
    return x509.load_pem_x509_certificate(leaf.cert_pem)


def test_leaf_for_a_name(ca: GatewayCA, ca_pair: CaPair) -> None:
    leaf = ca.leaf_for("API.example.com.", NOW)
    cert = _cert(leaf)
    assert leaf.server_name == "api.example.com"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == []
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca_pair[1].subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "api.example.com"
    assert cert.not_valid_before_utc.timestamp() == NOW - 3600
    assert cert.not_valid_after_utc.timestamp() == NOW + 7 * DAY
    assert (leaf.not_before, leaf.not_after) == (NOW - 3600, NOW + 7 * DAY)
    cert.verify_directly_issued_by(ca_pair[1])


@pytest.mark.parametrize("address", ["10.78.0.10", "fd78::10"])
def test_leaf_for_an_address_has_an_ip_san(ca: GatewayCA, address: str) -> None:
    cert = _cert(ca.leaf_for(address, NOW))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(address)]
    assert san.get_values_for_type(x509.DNSName) == []


def test_long_name_goes_in_the_san_only(ca: GatewayCA) -> None:
    name = "a" * 60 + ".example.com"
    cert = _cert(ca.leaf_for(name, NOW))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]


def test_one_leaf_key_for_every_leaf_and_never_in_repr(ca: GatewayCA) -> None:
    a, b = ca.leaf_for("a.example", NOW), ca.leaf_for("b.example", NOW)
    assert a.key_pem == b.key_pem
    assert _cert(a).public_key() == _cert(b).public_key()
    assert b"PRIVATE KEY" in a.key_pem
    assert "PRIVATE" not in repr(a)
    body = a.key_pem.splitlines()[1].decode()
    assert body not in repr(a)
    assert body not in repr(ca)


def test_leaves_never_outlive_the_ca() -> None:
    key, cert = issue_ca("short", NOW, 2 * DAY)
    ca = GatewayCA(key, cert, leaf_ttl=7 * DAY)
    leaf = ca.leaf_for("a.example", NOW)
    assert leaf.not_after == cert.not_valid_after_utc.timestamp() == NOW + 2 * DAY
    assert _cert(leaf).not_valid_after_utc == cert.not_valid_after_utc
    # Past the CA's expiry nothing is minted; before its start either.
    with pytest.raises(ClawgressError, match=r"expired .*`clawgress ca rotate`"):
        ca.leaf_for("b.example", NOW + 2 * DAY)
    with pytest.raises(ClawgressError, match="not valid before"):
        ca.leaf_for("b.example", NOW - 2 * 3600)


# --- verification with cryptography's verifier (any clock) ----------------------------------


def _verify(ca_cert: x509.Certificate, leaf: Leaf, subject: x509.verification.Subject,
            at: float) -> None:
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca_cert]))
        .time(dt.datetime.fromtimestamp(at, tz=dt.UTC))
        .build_server_verifier(subject)
    )
    verifier.verify(_cert(leaf), [])


def test_leaves_verify_against_the_ca(ca: GatewayCA, ca_pair: CaPair) -> None:
    _verify(ca_pair[1], ca.leaf_for("api.example.com", NOW), x509.DNSName("api.example.com"),
            NOW)
    _verify(ca_pair[1], ca.leaf_for("10.78.0.10", NOW),
            x509.IPAddress(ipaddress.ip_address("10.78.0.10")), NOW + 6 * DAY)
    leaf = ca.leaf_for("api.example.com", NOW)
    with pytest.raises(verification.VerificationError):
        _verify(ca_pair[1], leaf, x509.DNSName("other.example.com"), NOW)
    with pytest.raises(verification.VerificationError):
        _verify(ca_pair[1], leaf, x509.DNSName("api.example.com"), NOW + 8 * DAY)
    other = issue_ca("other", NOW, DAY)[1]
    with pytest.raises(verification.VerificationError):
        _verify(other, leaf, x509.DNSName("api.example.com"), NOW)


# --- the cache ------------------------------------------------------------------------------


def test_cache_hit_returns_the_same_leaf(ca: GatewayCA) -> None:
    first = ca.leaf_for("a.example", NOW)
    assert ca.leaf_for("A.example.", NOW + 60) is first
    assert (ca.cache.hits, ca.cache.misses) == (1, 1)


def test_cache_evicts_least_recently_used(ca_pair: CaPair) -> None:
    ca = GatewayCA(*ca_pair, leaf_cache_size=2)
    a = ca.leaf_for("a.example", NOW)
    ca.leaf_for("b.example", NOW)
    assert ca.leaf_for("a.example", NOW) is a  # a is now the most recently used
    ca.leaf_for("c.example", NOW)
    assert len(ca.cache) == 2
    assert "b.example" not in ca.cache
    assert "a.example" in ca.cache
    assert ca.cache.evictions == 1
    assert ca.leaf_for("a.example", NOW) is a


def test_leaf_is_reminted_when_near_expiry(ca: GatewayCA) -> None:
    first = ca.leaf_for("a.example", NOW)
    assert first.renew_at == NOW + 0.75 * 7 * DAY
    assert ca.leaf_for("a.example", first.renew_at - 1) is first
    second = ca.leaf_for("a.example", first.renew_at)
    assert second is not first
    assert second.not_after == first.renew_at + 7 * DAY
    assert ca.cache.renewals == 1
    # A clock set back before a leaf's start gets a new leaf too.
    third = ca.leaf_for("a.example", second.not_before - 10)
    assert third is not second
    assert third.not_before <= second.not_before - 10


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        LeafCache(0)


# --- real TLS: an ssl server with the leaf, a client trusting only the CA -------------------


def _server_context(leaf: Leaf, folder: Path) -> ssl.SSLContext:
    cert, key = folder / f"{leaf.server_name}.crt", folder / f"{leaf.server_name}.key"
    cert.write_bytes(leaf.cert_pem)
    key.write_bytes(leaf.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def _client_context(*trusted: x509.Certificate) -> ssl.SSLContext:
    pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in trusted)
    ctx = ssl.create_default_context(cadata=pem)  # trusts these alone, not the system store
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default; strict clients too
    return ctx


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake over a socket pair; raises the client's error if it fails."""
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)

    def serve() -> None:
        try:
            with server.wrap_socket(right, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass  # the client refused us: its error is what the test checks

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(left, server_hostname=hostname) as tls:
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
            tls.sendall(b"x")
    finally:
        left.close()
        thread.join(10)
        right.close()


@pytest.fixture
def live_ca() -> GatewayCA:
    """A CA valid now: the ssl module checks certificates against the real clock."""
    return GatewayCA(*issue_ca("gw-live", time.time(), 30 * DAY))


@pytest.mark.parametrize("name", ["api.example.com", "10.78.0.10", "fd78::10", "localhost"])
def test_real_tls_client_accepts_the_leaf(live_ca: GatewayCA, tmp_path: Path, name: str) -> None:
    leaf = live_ca.leaf_for(name, time.time())
    _handshake(_server_context(leaf, tmp_path), _client_context(live_ca.certificate), name)


def test_real_tls_client_refuses_wrong_name_and_unknown_ca(live_ca: GatewayCA,
                                                           tmp_path: Path) -> None:
    server = _server_context(live_ca.leaf_for("api.example.com", time.time()), tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(server, _client_context(live_ca.certificate), "other.example.com")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(server, _client_context(live_ca.certificate), "10.78.0.10")
    stranger = issue_ca("gw-live", time.time(), DAY)[1]  # same subject, another key
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(server, _client_context(stranger), "api.example.com")


def test_rollout_client_trusting_old_and_new_accepts_new_leaves(tmp_path: Path) -> None:
    now = time.time()
    old = GatewayCA(*issue_ca("gw-live", now, 30 * DAY))
    new = GatewayCA(*issue_ca("gw-live", now, 30 * DAY))  # a rotation: same subject
    both = _client_context(old.certificate, new.certificate)
    for ca, folder in ((old, "old"), (new, "new")):
        (tmp_path / folder).mkdir()
        server = _server_context(ca.leaf_for("api.example.com", now), tmp_path / folder)
        _handshake(server, both, "api.example.com")
    server = _server_context(new.leaf_for("api.example.com", now), tmp_path / "new")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, _client_context(old.certificate), "api.example.com")
