"""Who sent a proxy request: API keys (Basic), JWTs (Bearer) and client certificates
(mTLS on the proxy's own TLS listener), checked against the source's lease, and the
assertion never sent upstream.

This module's lab runs the proxy with TLS (``l7.proxy_tls``), a JWT issuer and a client
CA, configured before the engine restarts."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from l7_support import L7Gateway, json_body
from verdict_support import RELOAD_S

PROXY_TLS = "https://10.77.0.1:3128"
ISSUER = "https://issuer.lab"
AUDIENCE = "clawgress"
TRUST_DOMAIN = "lab.test"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer_key:
                 ec.EllipticCurvePrivateKey, issuer: str, *, ca: bool,
                 uri: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if uri is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Material:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.jwt_key = ec.generate_private_key(ec.SECP256R1())
        self.jwt_pub = folder / "issuer.pub.pem"
        self.jwt_pub.write_bytes(self.jwt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("lab client CA", ca_key, ca_key, "lab client CA", ca=True)
        self.client_ca = folder / "client-ca.pem"
        self.client_ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.client: dict[str, tuple[Path, Path]] = {}
        for agent in ("analyst", "researcher"):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _certificate(agent, key, ca_key, "lab client CA", ca=False,
                                uri=f"spiffe://{TRUST_DOMAIN}/agent/{agent}")
            cert_path, key_path = folder / f"{agent}.pem", folder / f"{agent}.key"
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_path.write_bytes(_pem_key(key))
            self.client[agent] = (cert_path, key_path)

    def token(self, agent: str, *, expires_in: float = 300, audience: str = AUDIENCE) -> str:
        now = int(time.time())
        return jwt.encode({"sub": agent, "iss": ISSUER, "aud": audience, "iat": now,
                           "exp": now + int(expires_in)}, self.jwt_key, algorithm="ES256")


@pytest.fixture(scope="module")
def material(l7_gateway: L7Gateway) -> Material:
    """Reconfigure the module's lab (proxy TLS, a JWT issuer, a client CA) and restart its
    engine; the lab is this module's own."""
    found = Material(l7_gateway.work / "identity")
    l7_gateway.restart_with_l7(proxy_tls=True, identity={
        "jwt_issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
                         "key_files": [str(found.jwt_pub)]}],
        "spiffe_trust_domains": [TRUST_DOMAIN],
        "client_ca_files": [str(found.client_ca)],
    })
    return found


def _proxy_args(gateway: L7Gateway, *extra: str) -> list[str]:
    return ["-x", PROXY_TLS, "--proxy-cacert", str(gateway.lab.paths.trust_bundle), *extra]


def test_an_api_key_names_an_agent_without_a_lease(gateway: L7Gateway,
                                                   material: Material) -> None:
    key = json.loads(gateway.clawgress("agent", "key", "create", "analyst", "--json"))["api_key"]
    time.sleep(3 * RELOAD_S)  # the engine picks new keys up at its next reload
    cursor = gateway.cursor()
    got = gateway.curl("a3", "http://api.openai.com/headers",
                       *_proxy_args(gateway, "--proxy-user", f"analyst:{key}"))
    assert got.status == 200, got
    names = [name for name, _ in json_body(got)["headers"]]
    assert "proxy-authorization" not in names  # stripped before it went upstream
    event = cursor.wait("http.request", path="/headers")
    assert event["agent_id"] == "analyst" and "asserted:basic" in event["flags"]
    assert key not in json.dumps(event)
    wrong = gateway.curl("a3", "http://api.openai.com/",
                         *_proxy_args(gateway, "--proxy-user", f"analyst:{key}x"))
    assert wrong.status == 407, wrong
    # An assertion that disagrees with the source's lease: a1 is leased to researcher.
    mismatch = gateway.curl("a1", "http://api.openai.com/",
                            *_proxy_args(gateway, "--proxy-user", f"analyst:{key}"))
    assert mismatch.status == 403 and json_body(mismatch)["error"] == "denied", mismatch
    assert "researcher" in json_body(mismatch)["reason"]


def test_a_bearer_jwt_names_an_agent(gateway: L7Gateway, material: Material) -> None:
    ok = gateway.curl("a3", "http://api.openai.com/", *_proxy_args(
        gateway, "--proxy-header", f"Proxy-Authorization: Bearer {material.token('analyst')}"))
    assert ok.status == 200, ok
    expired = gateway.curl("a3", "http://api.openai.com/", *_proxy_args(
        gateway, "--proxy-header",
        f"Proxy-Authorization: Bearer {material.token('analyst', expires_in=-120)}"))
    assert expired.status == 407 and "expired" in expired.body, expired
    other = gateway.curl("a3", "http://api.openai.com/", *_proxy_args(
        gateway, "--proxy-header",
        f"Proxy-Authorization: Bearer {material.token('analyst', audience='other')}"))
    assert other.status == 407, other


def test_a_client_certificate_names_an_agent(gateway: L7Gateway, material: Material) -> None:
    cert, key = material.client["analyst"]
    cursor = gateway.cursor()
    got = gateway.curl("a3", "http://api.openai.com/v1/models", *_proxy_args(
        gateway, "--proxy-cert", str(cert), "--proxy-key", str(key)))
    assert got.status == 200, got
    event = cursor.wait("http.request", via="proxy", agent_id="analyst", path="/v1/models")
    assert "asserted:certificate" in event["flags"]
    # researcher's certificate from a3, no lease: researcher is who it names.
    cert, key = material.client["researcher"]
    tunnel = gateway.curl("a3", "https://api.openai.com/v1/models", *_proxy_args(
        gateway, "--proxy-cert", str(cert), "--proxy-key", str(key)))
    assert tunnel.status == 200, tunnel
    # No certificate, no credentials, no lease: asked to authenticate.
    anonymous = gateway.curl("a3", "http://api.openai.com/", *_proxy_args(gateway))
    assert anonymous.status == 407, anonymous
