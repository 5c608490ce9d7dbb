from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from gatewayd.config import FailMode, parse_config
from gatewayd.lab.gateway_config import gateway_config
from gatewayd.lab.plan import ENVIRONMENT, WORKLOAD_IFACE, LabPlan
from gatewayd.lab.state import StatePaths


@pytest.mark.parametrize("fail_mode", ["fail-closed", "fail-open"])
def test_the_config_is_valid_and_names_the_lab(tmp_path: Path, fail_mode: FailMode) -> None:
    plan = LabPlan("cg-lab", 3)
    paths = StatePaths(tmp_path / "state")
    config = parse_config(gateway_config(plan, paths, fail_mode), "lab")
    assert config.gateway.name == "cg-lab-gw"
    assert {str(a) for a in config.gateway.addresses} == {
        "10.77.0.1", "fd77::1", "10.78.0.1", "fd78::1"
    }
    [iface] = config.workload.interfaces
    assert iface.name == WORKLOAD_IFACE
    assert iface.environment == ENVIRONMENT
    assert set(iface.subnets) == {ip_network("10.77.0.0/24"), ip_network("fd77::/64")}
    assert config.fail_mode_for(ENVIRONMENT) == fail_mode


def test_every_agent_address_is_on_the_workload_interface(tmp_path: Path) -> None:
    plan = LabPlan("cg-lab", 5)
    config = parse_config(gateway_config(plan, StatePaths(tmp_path), "fail-closed"), "lab")
    for i in plan.agent_indexes:
        address = plan.agent_address(i)
        assert config.interface_for(address.v4) == WORKLOAD_IFACE
        assert config.interface_for(address.v6) == WORKLOAD_IFACE
    assert config.interface_for(ip_address("10.78.0.10")) is None


def test_every_path_is_in_the_state_dir(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path / "state")
    config = parse_config(gateway_config(LabPlan(), paths, "fail-closed"), "lab")
    assert config.store.path == paths.store
    assert config.audit.path == paths.audit
    assert config.policy.last_known_good == paths.last_known_good
    assert config.policy.trusted_keys == [paths.signing_pub]
    assert config.policy.require_signature is True
    assert config.dataplane.queue != config.dataplane.reset_queue


def test_the_config_says_where_it_comes_from(tmp_path: Path) -> None:
    text = gateway_config(LabPlan("p1"), StatePaths(tmp_path), "fail-open")
    assert text.startswith("# ")
    assert "clawgress lab up" in text.splitlines()[1]
