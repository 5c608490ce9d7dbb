"""The gateway configuration a lab writes to ``<state>/gateway.yaml``.

The workload interface is the lab's ``wl0`` bridge in one environment (``lab``) whose fail
mode is the lab's; every path points into the state directory, so ``clawgress --config
<state>/gateway.yaml`` works from the host for the commands that only touch the store.
"""

from __future__ import annotations

from typing import Any

import yaml

from gatewayd.config import FailMode
from gatewayd.lab.plan import (
    DNS_SERVER,
    ENVIRONMENT,
    GATEWAY_UPLINK,
    GATEWAY_WORKLOAD,
    WORKLOAD_IFACE,
    WORKLOAD_V4,
    WORKLOAD_V6,
    LabPlan,
)
from gatewayd.lab.state import StatePaths


def gateway_config_data(plan: LabPlan, paths: StatePaths, fail_mode: FailMode) -> dict[str, Any]:
    return {
        "gateway": {
            "name": plan.gateway_ns,
            "addresses": [
                str(GATEWAY_WORKLOAD.v4),
                str(GATEWAY_WORKLOAD.v6),
                str(GATEWAY_UPLINK.v4),
                str(GATEWAY_UPLINK.v6),
            ],
        },
        "workload": {
            "interfaces": [
                {
                    "name": WORKLOAD_IFACE,
                    "subnets": [str(WORKLOAD_V4), str(WORKLOAD_V6)],
                    "environment": ENVIRONMENT,
                }
            ]
        },
        "environments": {ENVIRONMENT: {"fail_mode": fail_mode}},
        "store": {"path": str(paths.store)},
        "audit": {"path": str(paths.audit)},
        "policy": {
            "require_signature": True,
            "trusted_keys": [str(paths.signing_pub)],
            "last_known_good": str(paths.last_known_good),
        },
        # The defaults, written out so the file shows which queues the lab's engine binds.
        "dataplane": {"queue": 0, "reset_queue": 1, "queue_backend": "auto"},
        "names": {"resolvers": [str(DNS_SERVER.v4), str(DNS_SERVER.v6)]},
        # The gateway CA in the state folder; the lab's own servers are signed by the lab
        # CA, which the L7 engine trusts for them.
        "l7": {"ca_dir": str(paths.gateway_ca_dir), "extra_upstream_cas": [str(paths.ca_bundle)]},
        "dlp": {"key_file": str(paths.dlp_key)},
    }


def gateway_config(plan: LabPlan, paths: StatePaths, fail_mode: FailMode) -> str:
    head = (
        f"# The gateway of the Clawgress lab {plan.prefix!r} (namespace {plan.gateway_ns}),\n"
        "# written by `clawgress lab up` and removed by `clawgress lab down`.\n"
        f"# Policy bundles are signed with {paths.signing_key}.\n"
    )
    body = yaml.safe_dump(
        gateway_config_data(plan, paths, fail_mode), sort_keys=False, default_flow_style=False
    )
    return head + body
