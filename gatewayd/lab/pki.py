"""The lab's certificates: a throwaway CA and the upstream's server certificate.

``issue_lab_pki`` is pure apart from fresh key material: it takes the names, addresses and
``now`` and returns PEM bytes. A new CA per ``lab up``; nothing outside the lab trusts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatewayd.l7.certs import ca_certificate, private_key_pem, server_certificate

VALIDITY = dt.timedelta(days=30)
# Clocks of the namespaces are the host's; the margin only covers coarse clients.
BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class LabPki:
    ca_cert_pem: bytes
    ca_key_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes


def issue_lab_pki(
    label: str,
    names: Sequence[str],
    addresses: Sequence[IPv4Address | IPv6Address],
    now: dt.datetime,
) -> LabPki:
    """A CA named after ``label`` and a server certificate it signed for every name in
    ``names`` and every address in ``addresses`` (subject alternative names)."""
    if not names:
        raise ValueError("a server certificate needs at least one name")
    not_before, not_after = now - BACKDATE, now + VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Clawgress lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Clawgress lab CA {label}"),
    ])
    ca_cert = ca_certificate(ca_key, ca_name, not_before, not_after)
    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(a) for a in addresses]
    server_cert = server_certificate(
        server_key,
        x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Clawgress lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]),
        sans, ca_key=ca_key, ca_cert=ca_cert, not_before=not_before, not_after=not_after,
    )
    return LabPki(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key_pem=private_key_pem(ca_key),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=private_key_pem(server_key),
    )
