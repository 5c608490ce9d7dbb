from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatewayd.lab import LabError
from gatewayd.lab.state import (
    LabRecord,
    ProcessRecord,
    StatePaths,
    load_record,
    parse_record,
    save_record,
)

RECORD = LabRecord("cg-lab", 3, "fail-open", 60, 1700000000.5)
DNS = ProcessRecord("dns", "cg-lab-up", 4242, 9001)
ENGINE = ProcessRecord("engine", "cg-lab-gw", 4343, 9002)


def test_a_record_round_trips() -> None:
    record = RECORD.with_process(DNS).with_process(ENGINE)
    assert parse_record(record.to_json(), "x") == record


def test_processes_are_added_and_removed_by_name() -> None:
    record = RECORD.with_process(DNS).with_process(ENGINE)
    assert list(record.processes) == ["dns", "engine"]
    assert list(record.without_process("dns").processes) == ["engine"]
    assert record.without_process("nope") == record
    assert RECORD.processes == {}  # records are values


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        json.dumps({"version": 99}),
        RECORD.to_json().replace("fail-open", "fail-sideways"),
        RECORD.with_process(ProcessRecord("x", "ns", 1, 0)).to_json(),
        RECORD.to_json().replace('"agents": 3', '"agents": "three"'),
    ],
)
def test_anything_else_is_not_a_record(text: str) -> None:
    with pytest.raises(LabError, match="not a lab record"):
        parse_record(text, "lab.json")


def test_save_and_load(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    assert load_record(paths) is None
    record = RECORD.with_process(DNS)
    save_record(paths, record)
    assert load_record(paths) == record
    save_record(paths, record.with_process(ENGINE))
    assert load_record(paths) == record.with_process(ENGINE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.json"]


def test_save_into_a_missing_dir_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot write"):
        save_record(StatePaths(tmp_path / "missing"), RECORD)


def test_paths_stay_in_the_state_dir(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    for path in (paths.record, paths.config, paths.ca_bundle, paths.ca_key, paths.upstream_cert,
                 paths.upstream_key, paths.signing_key, paths.signing_pub, paths.store,
                 paths.audit, paths.last_known_good, paths.log("engine")):
        assert path.is_relative_to(tmp_path)
    assert paths.log("engine").name == "engine.log"
