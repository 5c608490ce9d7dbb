from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewayd.errors import ClawgressError
from gatewayd.l7 import GatewayCA, fingerprint, issue_ca

from .conftest import DAY, NOW, CaPair

TTL = 3650 * DAY


# --- the CA certificate ---------------------------------------------------------------------


def test_ca_certificate_extensions_and_subject(ca_pair: CaPair) -> None:
    key, cert = ca_pair
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "Clawgress CA gw-test"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.not_valid_before_utc.timestamp() == NOW - 3600
    assert cert.not_valid_after_utc.timestamp() == NOW + TTL


@pytest.mark.parametrize("name", ["", "   ", "x" * 52])
def test_gateway_name_must_fit_the_subject(name: str) -> None:
    with pytest.raises(ClawgressError, match=r"gateway\.name"):
        issue_ca(name, NOW, DAY)


def test_fingerprint_is_sha256_of_der(ca_pair: CaPair) -> None:
    der = ca_pair[1].public_bytes(serialization.Encoding.DER)
    assert fingerprint(ca_pair[1]).replace(":", "").lower() == hashlib.sha256(der).hexdigest()


def test_certificate_and_key_must_match(ca_pair: CaPair) -> None:
    other_key, _ = issue_ca("other", NOW, DAY)
    with pytest.raises(ClawgressError, match="does not match"):
        GatewayCA(other_key, ca_pair[1])


def test_repr_names_the_certificate_not_the_key(ca: GatewayCA) -> None:
    text = repr(ca)
    assert "Clawgress CA gw-test" in text
    assert ca.fingerprint in text
    assert "PRIVATE" not in text
