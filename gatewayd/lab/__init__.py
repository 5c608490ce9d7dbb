"""The lab: a self-contained network-namespace network for the gateway, on one host.

A gateway namespace routes between agent namespaces (behind the ``wl0`` bridge) and an
upstream namespace that serves the lab names over HTTP and HTTPS and answers them in DNS;
the real ruleset and verdict engine run in the gateway namespace. Used by the demo, the
netns tests and the data-plane benchmark; ``docs/lab.md`` describes it.

The IO boundary: ``lab``, ``topology`` and ``processes`` touch the kernel (netlink,
namespaces, processes, ``/proc``) and the state directory; ``upstream`` is the server
process. The plan, the configuration text, the command lines, the certificates and the
upstream's request handling are pure.
"""

from __future__ import annotations

from gatewayd.lab.errors import LabError
from gatewayd.lab.lab import Lab
from gatewayd.lab.plan import (
    CDN_NAME,
    DEFAULT_AGENTS,
    DEFAULT_DNS_TTL,
    DEFAULT_PREFIX,
    DEFAULT_STATE_DIR,
    DNS_SERVER,
    DOH_NAMES,
    GATEWAY_NAME,
    GATEWAY_UPLINK,
    GATEWAY_WORKLOAD,
    LAB_NAMES,
    LOOPBACK,
    METADATA,
    METADATA_NAME,
    PRIVATE,
    PRIVATE_NAME,
    REBIND_NAME,
    SMALL_TXT_NAME,
    TUNNEL_NAME,
    TXT_RECORDS,
    UPSTREAM,
    Endpoint,
    LabPlan,
)

__all__ = [
    "CDN_NAME",
    "DEFAULT_AGENTS",
    "DEFAULT_DNS_TTL",
    "DEFAULT_PREFIX",
    "DEFAULT_STATE_DIR",
    "DNS_SERVER",
    "DOH_NAMES",
    "GATEWAY_NAME",
    "GATEWAY_UPLINK",
    "GATEWAY_WORKLOAD",
    "LAB_NAMES",
    "LOOPBACK",
    "METADATA",
    "METADATA_NAME",
    "PRIVATE",
    "PRIVATE_NAME",
    "REBIND_NAME",
    "SMALL_TXT_NAME",
    "TUNNEL_NAME",
    "TXT_RECORDS",
    "UPSTREAM",
    "Endpoint",
    "Lab",
    "LabError",
    "LabPlan",
]
