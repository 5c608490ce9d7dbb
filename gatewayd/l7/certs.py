"""The two certificates Clawgress signs: a CA that signs leaves only, and a TLS server leaf.

``ca_certificate`` is self-signed: CA:true with path length 0, keyCertSign and cRLSign, a
subject key identifier. ``server_certificate`` is signed by such a CA: CA:false,
digitalSignature, serverAuth, the subjectAltNames given, subject and authority key
identifiers (the authority's from the CA's own identifier, or from its key when the CA
has none). EC keys, SHA-256. The gateway CA (``gatewayd.l7.ca``, ``gatewayd.l7.leaf``) and
the lab's throwaway CA (``gatewayd.lab.pki``) both sign with these. Pure apart from the
signature's randomness and the serial numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """``key`` as unencrypted PKCS8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=signs_certificates, crl_sign=signs_certificates, encipher_only=False,
        decipher_only=False,
    )


def ca_certificate(
    key: ec.EllipticCurvePrivateKey, subject: x509.Name, not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A self-signed CA certificate for ``key`` that may sign leaf certificates only."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def server_certificate(
    key: ec.EllipticCurvePrivateKey, subject: x509.Name,
    names: Sequence[x509.GeneralName], *, ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate, not_before: dt.datetime, not_after: dt.datetime,
) -> x509.Certificate:
    """A TLS server certificate for ``key`` and the subjectAltNames ``names``, signed by
    the CA."""
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        authority = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(authority, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
