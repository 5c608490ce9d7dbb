from __future__ import annotations

import os
import stat
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatewayd.config import Config, PolicySection
from gatewayd.errors import BundleVerificationError
from gatewayd.identity import Identity
from gatewayd.policy import Action, Request
from gatewayd.policy.activation import (
    LKG_MODE,
    active_record,
    bundle_history,
    check_newer,
    load_active,
    publish,
)
from gatewayd.policy.signing import key_id, public_key_pem
from gatewayd.store import Store, open_store

from .hostile import DAY, MIB, Case, corpus, documents, valid_bundle

NOW = 1_800_000_000.0
BASE = 100
AGENT = Identity("agent-1", "research", "alpha", "prod", "")
OPENAI = Request(identity=AGENT, host="api.openai.com", port=443)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def hostile(key: Ed25519PrivateKey) -> dict[str, Case]:
    return {c.name: c for c in corpus(key, active_version=BASE, now=NOW)}


def make_config(tmp_path: Path, key: Ed25519PrivateKey | None, **policy: Any) -> Config:
    keys = []
    if key is not None:
        pub = tmp_path / "keys" / f"{key_id(key.public_key())}.pub"
        pub.parent.mkdir(exist_ok=True)
        pub.write_bytes(public_key_pem(key.public_key()))
        keys.append(pub)
    settings: dict[str, Any] = {
        "trusted_keys": keys,
        "last_known_good": tmp_path / "state" / "policy" / "lkg.bundle",
        **policy,
    }
    return Config(policy=PolicySection(**settings))


@pytest.fixture
def config(tmp_path: Path, key: Ed25519PrivateKey) -> Config:
    return make_config(tmp_path, key)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "store.db") as opened:
        yield opened


@dataclass(frozen=True)
class Snapshot:
    active: object
    history: object
    generation: int
    lkg: bytes
    lkg_stat: tuple[int, int, int]
    lkg_dir: list[str]


def snapshot(db: Store, config: Config) -> Snapshot:
    lkg = config.policy.last_known_good
    st = lkg.stat()
    return Snapshot(active_record(db), bundle_history(db), db.generation("policy"),
                    lkg.read_bytes(), (st.st_ino, st.st_mtime_ns, st.st_mode),
                    sorted(os.listdir(lkg.parent)))


# --- publishing -----------------------------------------------------------------------------


def test_publish_activates_and_writes_last_known_good(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    data = valid_bundle(key, version=BASE, now=NOW)
    record = publish(db, data, config, NOW)
    assert record.version == BASE
    assert record.key_id == key_id(key.public_key())
    assert active_record(db) == record
    assert db.generation("policy") == 1
    lkg = config.policy.last_known_good
    assert lkg.read_bytes() == data
    assert stat.S_IMODE(lkg.stat().st_mode) == LKG_MODE
    assert os.listdir(lkg.parent) == [lkg.name]

    newer = valid_bundle(key, version=BASE + 5, now=NOW)
    publish(db, newer, config, NOW + 1)
    assert lkg.read_bytes() == newer
    assert [(r.version, r.active) for r in bundle_history(db)] == [(BASE + 5, True),
                                                                   (BASE, False)]
    assert db.generation("policy") == 2
    active = load_active(db, config, NOW + 2)
    assert (active.version, active.source, active.problems) == (BASE + 5, "store", [])


def test_unsigned_publish_when_signatures_are_off(db: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, None, require_signature=False)
    record = publish(db, valid_bundle(None, version=3, now=NOW), config, NOW)
    assert record.key_id is None
    assert load_active(db, config, NOW).version == 3
    on = make_config(tmp_path, Ed25519PrivateKey.generate())
    with pytest.raises(BundleVerificationError, match="bundle is not signed"):
        publish(db, valid_bundle(None, version=4, now=NOW), on, NOW)


def test_publish_without_trusted_keys_says_so(db: Store, tmp_path: Path,
                                              key: Ed25519PrivateKey) -> None:
    with pytest.raises(BundleVerificationError, match="no trusted keys configured"):
        publish(db, valid_bundle(key, version=1, now=NOW), make_config(tmp_path, None), NOW)


def test_check_newer() -> None:
    check_newer(5, active=None, highest=None)
    check_newer(5, active=4, highest=4)
    with pytest.raises(BundleVerificationError,
                       match="bundle version 7 is not newer than the active version 9"):
        check_newer(7, active=9, highest=9)
    with pytest.raises(BundleVerificationError, match="version 9 is not newer than the active"):
        check_newer(9, active=9, highest=9)
    with pytest.raises(BundleVerificationError, match="not newer than version 12, published"):
        check_newer(10, active=9, highest=12)


# --- the hostile corpus: each refused, nothing changes ---------------------------------------

CASE_NAMES = [c.name for c in corpus(Ed25519PrivateKey.generate(), active_version=BASE, now=NOW)]
BOMBS = tuple(n for n in CASE_NAMES if n.startswith("bomb-"))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_bundle_is_refused_and_changes_nothing(
    name: str, hostile: dict[str, Case], db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    case = hostile[name]
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    before = snapshot(db, config)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(BundleVerificationError) as err:
            publish(db, case.data, config, NOW + 1)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert case.reason in str(err.value)
    assert snapshot(db, config) == before
    active = load_active(db, config, NOW + 1)
    assert (active.version, active.source, active.problems) == (BASE, "store", [])
    if name in BOMBS:
        # About 1 GiB of zeros: refused within the 64 MiB budget, without expanding it all.
        assert elapsed < 10, elapsed
        assert peak < 100 * MIB, peak


def test_no_temporary_files_are_left_behind(db: Store, config: Config,
                                            key: Ed25519PrivateKey) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    with pytest.raises(BundleVerificationError):
        publish(db, valid_bundle(key, version=BASE - 1, now=NOW), config, NOW)
    lkg = config.policy.last_known_good
    assert os.listdir(lkg.parent) == [lkg.name]


# --- what a gateway enforces ----------------------------------------------------------------


def test_nothing_published_denies_all(db: Store, config: Config) -> None:
    active = load_active(db, config, NOW)
    assert (active.version, active.source) == (None, "none")
    reason = active.plan.deny_all_reason
    assert reason is not None
    assert reason.startswith("no valid policy bundle: no bundle has been published")
    assert "no last-known-good file" in reason
    assert active.plan.evaluate(OPENAI, NOW).action is Action.DENY


def test_active_bundle_is_enforced(db: Store, config: Config, key: Ed25519PrivateKey) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    active = load_active(db, config, NOW)
    assert active.plan.deny_all_reason is None
    assert active.plan.bundle_version == BASE
    assert active.key_id == key_id(key.public_key())
    assert active.documents == tuple(sorted(documents()))
    decision = active.plan.evaluate(OPENAI, NOW)
    assert decision.action is Action.ALLOW


def test_corrupted_store_bundle_falls_back_to_last_known_good(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    with db.write():
        db.conn.execute("UPDATE policy_bundles SET blob = ? WHERE version = ?",
                        (b"\x1f\x8bgarbage", BASE))
    active = load_active(db, config, NOW)
    assert (active.version, active.source) == (BASE, "last-known-good")
    assert active.plan.deny_all_reason is None
    assert len(active.problems) == 1
    assert active.problems[0].startswith(f"active bundle version {BASE} in the store refused:")


def test_store_bundle_swapped_for_another_valid_one_is_refused(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    other = valid_bundle(key, version=BASE + 1, now=NOW)
    with db.write():
        db.conn.execute("UPDATE policy_bundles SET blob = ?", (other,))
    active = load_active(db, config, NOW)
    assert active.source == "last-known-good"
    assert "does not match its record" in active.problems[0]


def test_bundle_stored_as_text_falls_back_to_last_known_good(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    with db.write():
        db.conn.execute("UPDATE policy_bundles SET blob = 'text'")
    active = load_active(db, config, NOW)
    assert (active.version, active.source) == (BASE, "last-known-good")
    assert "not stored as bytes" in active.problems[0]


def test_unreadable_store_falls_back_to_last_known_good(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    db.conn.execute("DROP TABLE policy_active")
    active = load_active(db, config, NOW)
    assert (active.version, active.source) == (BASE, "last-known-good")
    assert "cannot read the active bundle" in active.problems[0]


def test_store_and_last_known_good_both_bad_denies_all(
    db: Store, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    with db.write():
        db.conn.execute("UPDATE policy_bundles SET blob = ?", (b"not a bundle",))
    config.policy.last_known_good.write_bytes(b"\x1f\x8b truncated")
    active = load_active(db, config, NOW)
    assert active.source == "none"
    reason = active.plan.deny_all_reason or ""
    assert "in the store refused: not a bundle: not gzip-compressed" in reason
    assert "last-known-good" in reason
    assert "corrupt or truncated archive" in reason


def test_trusted_key_removed_after_publish_denies_all(
    db: Store, tmp_path: Path, config: Config, key: Ed25519PrivateKey
) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW), config, NOW)
    rotated = make_config(tmp_path, Ed25519PrivateKey.generate())
    active = load_active(db, rotated, NOW)
    assert active.source == "none"
    assert active.problems[0].endswith("which is not a trusted key")
    # The key files themselves going missing is also a refusal, not a crash.
    missing = Config(policy=PolicySection(trusted_keys=[tmp_path / "gone.pub"],
                                          last_known_good=config.policy.last_known_good))
    active = load_active(db, missing, NOW)
    assert active.source == "none"
    assert "cannot read" in active.problems[0]


def test_last_known_good_is_not_checked_for_rollback(
    db: Store, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    config = make_config(tmp_path, key)
    lkg = config.policy.last_known_good
    lkg.parent.mkdir(parents=True)
    lkg.write_bytes(valid_bundle(key, version=5, now=NOW))
    active = load_active(db, config, NOW)
    assert (active.version, active.source) == (5, "last-known-good")
    assert active.problems == ["no bundle has been published to the store"]


@pytest.mark.parametrize("source", ["store", "last-known-good"])
def test_expired_bundle_with_on_expired_deny_all(
    source: str, db: Store, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    config = make_config(tmp_path, key, on_expired="deny-all")
    publish(db, valid_bundle(key, version=BASE, now=NOW, lifetime=DAY), config, NOW)
    if source == "last-known-good":
        with db.write():
            db.conn.execute("UPDATE policy_bundles SET blob = ?", (b"x",))
    later = NOW + 2 * DAY
    active = load_active(db, config, later)
    assert (active.version, active.source, active.expired) == (BASE, source, True)
    reason = active.plan.deny_all_reason
    assert reason is not None
    assert f"policy bundle version {BASE} expired at" in reason
    assert "on_expired: deny-all" in reason
    assert active.plan.evaluate(OPENAI, later).action is Action.DENY
    assert active.plan.evaluate(OPENAI, later).reason == reason


def test_expired_bundle_with_on_expired_keep(db: Store, tmp_path: Path,
                                             key: Ed25519PrivateKey) -> None:
    config = make_config(tmp_path, key, on_expired="keep")
    publish(db, valid_bundle(key, version=BASE, now=NOW, lifetime=DAY), config, NOW)
    later = NOW + 2 * DAY
    active = load_active(db, config, later)
    assert (active.version, active.source, active.expired) == (BASE, "store", True)
    assert active.plan.deny_all_reason is None
    assert active.plan.evaluate(OPENAI, later).action is Action.ALLOW
    assert len(active.problems) == 1
    assert "expired at" in active.problems[0]
    assert "still enforced (policy.on_expired: keep)" in active.problems[0]


def test_expiry_is_exclusive_of_the_instant(db: Store, config: Config,
                                            key: Ed25519PrivateKey) -> None:
    publish(db, valid_bundle(key, version=BASE, now=NOW, lifetime=DAY), config, NOW)
    expires = NOW - 60 + DAY
    assert not load_active(db, config, expires - 1).expired
    assert load_active(db, config, expires).expired
