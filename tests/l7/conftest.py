"""A gateway CA issued once per module (key generation is the slow part), on a fixed clock."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gatewayd.l7 import GatewayCA, issue_ca

# The clock of the pure tests: 2027-01-15T08:00:00Z.
NOW = 1_800_000_000.0
DAY = 86400

CaPair = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def ca_pair() -> CaPair:
    return issue_ca("gw-test", NOW, 3650 * DAY)


@pytest.fixture
def ca(ca_pair: CaPair) -> GatewayCA:
    key, cert = ca_pair
    return GatewayCA(key, cert, leaf_ttl=7 * DAY, leaf_cache_size=8)
