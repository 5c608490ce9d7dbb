"""Identity: who is behind a source address, and the registry that says so.

The canonical ``Identity`` (agent, team, project, environment, workload fingerprint) is what
every decision is made on. Agents are registered once; a ``Lease`` binds one source address
to an agent, on the one workload interface it was issued for (anti-spoofing), until its TTL
runs out or it is revoked. ``LeaseRules`` (from the configuration) bound TTLs and pick or
check the interface; ``LeaseTable`` is the immutable in-memory snapshot the data plane
resolves packets with in one dict lookup.

IO boundary: ``Registry`` alone reads and writes the store (``gatewayd.store``); the rest is
pure and takes time as an argument (``now``, unix seconds). Unknown sources resolve to
``None`` and the caller denies.
"""

from gatewayd.identity.address import (
    AddressLike,
    IPAddress,
    address_key,
    leasable,
    normalize,
    to_address,
)
from gatewayd.identity.model import Agent, Identity, Lease, LeaseState, Quarantine
from gatewayd.identity.names import NAME_PATTERN, check_fingerprint, check_name
from gatewayd.identity.registry import AGENT_REMOVED, IDENTITY_DOMAIN, Registry
from gatewayd.identity.rules import LeaseRules, WorkloadSubnets
from gatewayd.identity.table import LeaseTable

__all__ = [
    "AGENT_REMOVED",
    "IDENTITY_DOMAIN",
    "NAME_PATTERN",
    "AddressLike",
    "Agent",
    "IPAddress",
    "Identity",
    "Lease",
    "LeaseRules",
    "LeaseState",
    "LeaseTable",
    "Quarantine",
    "Registry",
    "WorkloadSubnets",
    "address_key",
    "check_fingerprint",
    "check_name",
    "leasable",
    "normalize",
    "to_address",
]
