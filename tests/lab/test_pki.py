from __future__ import annotations

import datetime as dt
import ssl
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gatewayd.lab.pki import LabPki, issue_lab_pki

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
NAMES = ["api.openai.com", "example.com"]
ADDRESSES: list[IPv4Address | IPv6Address] = [ip_address("10.78.0.10"), ip_address("fd78::10")]


@pytest.fixture(scope="module")
def pki() -> LabPki:
    return issue_lab_pki("t1", NAMES, ADDRESSES, NOW)


@pytest.fixture(scope="module")
def live_pki() -> LabPki:
    """Certificates valid today, for real handshakes."""
    return issue_lab_pki("t1", NAMES, ADDRESSES, dt.datetime.now(dt.UTC))


def test_the_ca_is_a_ca(pki: LabPki) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert ca.subject == ca.issuer
    assert "t1" in ca.subject.rfc4514_string()


def test_the_server_certificate_names_every_name_and_address(pki: LabPki) -> None:
    cert = x509.load_pem_x509_certificate(pki.server_cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == NAMES
    assert san.get_values_for_type(x509.IPAddress) == ADDRESSES
    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc


def test_keys_match_their_certificates(pki: LabPki) -> None:
    for cert_pem, key_pem in ((pki.ca_cert_pem, pki.ca_key_pem),
                              (pki.server_cert_pem, pki.server_key_pem)):
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = load_pem_private_key(key_pem, None)
        assert key.public_key() == cert.public_key()


def _handshake(pki: LabPki, tmp_path: Path, server_name: str) -> None:
    """A TLS handshake in memory: a client trusting only the lab CA, with ``server_name``."""
    (tmp_path / "cert.pem").write_bytes(pki.server_cert_pem)
    (tmp_path / "key.pem").write_bytes(pki.server_key_pem)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("server_name", ["api.openai.com", "example.com", "10.78.0.10"])
def test_a_client_trusting_the_ca_verifies_the_server(
    live_pki: LabPki, tmp_path: Path, server_name: str
) -> None:
    _handshake(live_pki, tmp_path, server_name)


def test_a_name_not_in_the_certificate_is_refused(live_pki: LabPki, tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(live_pki, tmp_path, "pastebin.com")


def test_every_lab_gets_its_own_ca() -> None:
    a = issue_lab_pki("t1", NAMES, [], NOW)
    b = issue_lab_pki("t1", NAMES, [], NOW)
    assert a.ca_key_pem != b.ca_key_pem


def test_a_server_certificate_needs_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        issue_lab_pki("t1", [], ADDRESSES, NOW)
