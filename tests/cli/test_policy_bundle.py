from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from policy.hostile import DAY, POLICY, Case, corpus, valid_bundle

from gatewayd.cli.context import CliContext
from gatewayd.policy.archive import read_archive
from gatewayd.policy.bundle import MANIFEST_NAME, SIGNATURE_NAME, BundleLimits
from gatewayd.policy.signing import key_id, private_key_pem, public_key_pem

NOW = 1_800_000_000.0
BASE = 100

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def hostile(key: Ed25519PrivateKey) -> dict[str, Case]:
    return {c.name: c for c in corpus(key, active_version=BASE, now=NOW)}


@pytest.fixture
def key_files(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[Path, Path]:
    private = tmp_path / "signing.key"
    private.write_bytes(private_key_pem(key))
    private.chmod(0o600)
    public = tmp_path / "signing.pub"
    public.write_bytes(public_key_pem(key.public_key()))
    return private, public


@pytest.fixture
def config_file(tmp_path: Path, key_files: tuple[Path, Path]) -> Path:
    """The gateway configuration for these tests (overrides the suite's ``config_file``)."""
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "store: {path: clawgress.db}\n"
        "policy:\n"
        f"  trusted_keys: [{key_files[1].name}]\n"
        "  last_known_good: state/policy/last-known-good.bundle\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CliContext, "now", lambda self: NOW)


@pytest.fixture(autouse=True)
def policy_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """``clawgress policy`` with the bundle commands, whether or not it is registered yet."""
    from gatewayd.cli import cli  # noqa: PLC0415
    from gatewayd.cli.policy_bundle import COMMANDS  # noqa: PLC0415

    if "policy" in cli.commands:
        return
    group = click.Group("policy")
    for command in COMMANDS:
        group.add_command(command)
    monkeypatch.setitem(cli.commands, "policy", group)


@pytest.fixture
def lkg(tmp_path: Path) -> Path:
    return tmp_path / "state" / "policy" / "last-known-good.bundle"


def policy_dir(tmp_path: Path, pid: str = "base") -> Path:
    root = tmp_path / "policies"
    (root / "team").mkdir(parents=True, exist_ok=True)
    (root / "ai.yaml").write_text(POLICY % {"id": pid}, encoding="utf-8")
    (root / "team" / "more.yml").write_text(POLICY % {"id": pid + "-more"}, encoding="utf-8")
    (root / "README.md").write_text("not a policy", encoding="utf-8")
    return root


def active_json(run_cli: RunCli) -> dict[str, object]:
    result = run_cli("policy", "active", "--json")
    assert result.exit_code == 0, result.output
    value: dict[str, object] = json.loads(result.stdout)
    return value


# --- the lifecycle --------------------------------------------------------------------------


def test_bundle_sign_verify_publish_active_history(
    run_cli: RunCli, tmp_path: Path, key_files: tuple[Path, Path], key: Ed25519PrivateKey,
    lkg: Path,
) -> None:
    out = tmp_path / "out" / "bundle.tgz"
    result = run_cli("policy", "bundle", str(policy_dir(tmp_path)), "-o", str(out),
                     "--version", "7", "--expires-in", "30d")
    assert result.exit_code == 0, result.output
    assert "version 7, 2 documents" in result.stdout
    files = read_archive(out.read_bytes(), BundleLimits()).files
    assert sorted(files) == sorted([MANIFEST_NAME, "ai.yaml", "team/more.yml"])
    manifest = json.loads(files[MANIFEST_NAME])
    assert manifest["version"] == 7
    assert manifest["expires_at"] == "2027-02-14T08:00:00Z"

    kid = key_id(key.public_key())
    result = run_cli("policy", "sign", str(out), "--key", str(key_files[0]))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"signed {out} with key {kid}"
    assert SIGNATURE_NAME in read_archive(out.read_bytes(), BundleLimits()).files

    result = run_cli("policy", "verify", str(out))
    assert result.exit_code == 0, result.output
    assert f"ok: {out}" in result.stdout
    assert kid in result.stdout
    assert "team/more.yml" in result.stdout
    verified = json.loads(run_cli("policy", "verify", str(out), "--json").stdout)
    assert verified["version"] == 7
    assert verified["key_id"] == kid
    assert verified["rules"] == 2
    assert [d["path"] for d in verified["documents"]] == ["ai.yaml", "team/more.yml"]

    result = run_cli("policy", "publish", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"published version 7 (key {kid}, expires")
    assert lkg.read_bytes() == out.read_bytes()
    assert stat.S_IMODE(lkg.stat().st_mode) == 0o640

    active = active_json(run_cli)
    assert active["version"] == 7
    assert active["source"] == "store"
    assert active["key_id"] == kid
    assert active["deny_all"] is None
    assert active["published_at"] == "2027-01-15T08:00:00Z"
    assert active["problems"] == []
    result = run_cli("policy", "active")
    assert "store" in result.stdout
    assert "2 rules" in result.stdout

    history = json.loads(run_cli("policy", "history", "--json").stdout)
    assert [(h["version"], h["active"]) for h in history] == [(7, True)]
    result = run_cli("policy", "history")
    assert result.exit_code == 0
    assert "VERSION" in result.stdout


def test_bundle_is_deterministic_and_versioned_by_time_by_default(
    run_cli: RunCli, tmp_path: Path
) -> None:
    src = policy_dir(tmp_path)
    a, b = tmp_path / "a.tgz", tmp_path / "b.tgz"
    assert run_cli("policy", "bundle", str(src), "-o", str(a)).exit_code == 0
    assert run_cli("policy", "bundle", str(src), "-o", str(b)).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    manifest = json.loads(read_archive(a.read_bytes(), BundleLimits()).files[MANIFEST_NAME])
    assert manifest["version"] == int(NOW)
    assert manifest["expires_at"] == "2027-04-15T08:00:00Z"  # 90 days


def test_bundle_refuses_documents_that_would_not_load(
    run_cli: RunCli, tmp_path: Path, expect_error: ExpectError
) -> None:
    src = policy_dir(tmp_path)
    (src / "bad.yaml").write_text(
        "apiVersion: clawgress.io/v1\nkind: Policy\nmetadata: {id: bad}\n"
        "spec: {rules: [{id: r, action: allow, when: 'request.nope == 1'}]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "b.tgz"
    result = run_cli("policy", "bundle", str(src), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "bad" in result.stderr
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    expect_error(run_cli("policy", "bundle", str(empty), "-o", str(out)), "no *.yaml")
    expect_error(run_cli("policy", "bundle", str(src), "-o", str(out), "--expires-in", "soon"),
                 "--expires-in")


def test_bundle_skips_symlinks(run_cli: RunCli, tmp_path: Path) -> None:
    src = policy_dir(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text(POLICY % {"id": "outside"}, encoding="utf-8")
    (src / "link.yaml").symlink_to(outside)
    out = tmp_path / "b.tgz"
    assert run_cli("policy", "bundle", str(src), "-o", str(out)).exit_code == 0
    assert "link.yaml" not in read_archive(out.read_bytes(), BundleLimits()).files


def test_sign_to_another_file_and_resign(
    run_cli: RunCli, tmp_path: Path, key_files: tuple[Path, Path], key: Ed25519PrivateKey
) -> None:
    unsigned = tmp_path / "u.tgz"
    unsigned.write_bytes(valid_bundle(None, version=3, now=NOW))
    signed = tmp_path / "s.tgz"
    result = run_cli("policy", "sign", str(unsigned), "--key", str(key_files[0]), "-o",
                     str(signed))
    assert result.exit_code == 0, result.output
    assert unsigned.read_bytes() == valid_bundle(None, version=3, now=NOW)
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(Ed25519PrivateKey.generate()))
    assert run_cli("policy", "sign", str(signed), "--key", str(other)).exit_code == 0
    assert run_cli("policy", "verify", str(signed)).exit_code == 2
    assert run_cli("policy", "sign", str(signed), "--key", str(key_files[0])).exit_code == 0
    assert signed.read_bytes() == valid_bundle(key, version=3, now=NOW)


def test_sign_refuses_bad_keys_without_showing_them(
    run_cli: RunCli, tmp_path: Path, key_files: tuple[Path, Path], expect_error: ExpectError
) -> None:
    bundle = tmp_path / "u.tgz"
    bundle.write_bytes(valid_bundle(None, version=3, now=NOW))
    line = expect_error(run_cli("policy", "sign", str(bundle), "--key", str(key_files[1])),
                        "not an unencrypted PEM private key")
    assert "BEGIN" not in line
    expect_error(run_cli("policy", "sign", str(bundle), "--key", str(tmp_path / "none.key")),
                 "cannot read")


def test_verify_refuses_with_one_line(
    run_cli: RunCli, tmp_path: Path, expect_error: ExpectError
) -> None:
    bundle = tmp_path / "u.tgz"
    bundle.write_bytes(valid_bundle(None, version=3, now=NOW))
    expect_error(run_cli("policy", "verify", str(bundle)), "bundle is not signed")
    expect_error(run_cli("policy", "verify", str(tmp_path / "missing.tgz")), "cannot read")


def test_verify_without_trusted_keys_says_so(
    run_cli: RunCli, tmp_path: Path, key: Ed25519PrivateKey, expect_error: ExpectError
) -> None:
    cfg = tmp_path / "nokeys.yaml"
    cfg.write_text("store: {path: x.db}\n", encoding="utf-8")
    bundle = tmp_path / "s.tgz"
    bundle.write_bytes(valid_bundle(key, version=3, now=NOW))
    expect_error(run_cli("policy", "verify", str(bundle), config=cfg),
                 "no trusted keys configured (policy.trusted_keys)")
    cfg.write_text("store: {path: x.db}\npolicy: {require_signature: false}\n", encoding="utf-8")
    result = run_cli("policy", "verify", str(bundle), config=cfg)
    assert result.exit_code == 0, result.output
    assert "not checked (policy.require_signature: false)" in result.stdout


def test_active_with_nothing_published(run_cli: RunCli) -> None:
    active = active_json(run_cli)
    assert active["source"] == "none"
    assert active["version"] is None
    assert str(active["deny_all"]).startswith("no valid policy bundle:")
    result = run_cli("policy", "active")
    assert result.exit_code == 0
    assert "deny all" in result.stdout
    assert "problem: no bundle has been published" in result.stderr


def test_active_reports_the_last_known_good_fallback(
    run_cli: RunCli, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    bundle = tmp_path / "s.tgz"
    bundle.write_bytes(valid_bundle(key, version=BASE, now=NOW))
    assert run_cli("policy", "publish", str(bundle)).exit_code == 0
    from gatewayd.store import open_store  # noqa: PLC0415

    with open_store(tmp_path / "clawgress.db") as db, db.write():
        db.conn.execute("UPDATE policy_bundles SET blob = x'00'")
    active = active_json(run_cli)
    assert (active["version"], active["source"]) == (BASE, "last-known-good")
    assert "in the store refused" in str(active["problems"])


# --- the hostile corpus through the command line ---------------------------------------------

CASE_NAMES = [c.name for c in corpus(Ed25519PrivateKey.generate(), active_version=BASE, now=NOW)]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_publish_refuses_hostile_bundle(
    name: str, hostile: dict[str, Case], run_cli: RunCli, tmp_path: Path,
    key: Ed25519PrivateKey, lkg: Path,
) -> None:
    good = tmp_path / "good.tgz"
    good.write_bytes(valid_bundle(key, version=BASE, now=NOW))
    assert run_cli("policy", "publish", str(good)).exit_code == 0
    before = (lkg.read_bytes(), lkg.stat().st_mtime_ns, sorted(os.listdir(lkg.parent)))
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(hostile[name].data)

    result = run_cli("policy", "publish", str(bad))

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stderr.startswith("error: ")
    assert hostile[name].reason in result.stderr
    assert "Traceback" not in result.output
    assert (lkg.read_bytes(), lkg.stat().st_mtime_ns, sorted(os.listdir(lkg.parent))) == before
    active = active_json(run_cli)
    assert (active["version"], active["source"], active["problems"]) == (BASE, "store", [])
    history = json.loads(run_cli("policy", "history", "--json").stdout)
    assert [h["version"] for h in history] == [BASE]


def test_verify_refuses_an_expired_bundle_by_its_expiry(
    run_cli: RunCli, tmp_path: Path, key: Ed25519PrivateKey, expect_error: ExpectError
) -> None:
    bundle = tmp_path / "s.tgz"
    bundle.write_bytes(valid_bundle(key, version=3, now=NOW - 40 * DAY))
    expect_error(run_cli("policy", "verify", str(bundle)), "bundle expired at 2027-01-05T07:59:00Z")
