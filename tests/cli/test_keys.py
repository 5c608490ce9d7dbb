from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gatewayd.policy.signing import key_id

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


def test_generate_writes_a_private_and_a_public_key(run_cli: RunCli, tmp_path: Path) -> None:
    folder = tmp_path / "keys" / "new"
    result = run_cli("keys", "generate", "publisher", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    private, public = folder / "publisher.key", folder / "publisher.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
    priv = serialization.load_pem_private_key(private.read_bytes(), password=None)
    pub = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(priv, Ed25519PrivateKey)
    assert isinstance(pub, Ed25519PublicKey)
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert priv.public_key() == pub
    kid = key_id(pub)
    assert result.stdout.splitlines()[0] == f"key id {kid}"
    # The private key never appears in the output.
    body = b"".join(private.read_bytes().splitlines()[1:-1]).decode()
    assert body not in result.output
    assert "PRIVATE KEY-----" not in result.output


def test_generate_refuses_to_overwrite(
    run_cli: RunCli, tmp_path: Path, expect_error: ExpectError
) -> None:
    assert run_cli("keys", "generate", "k", "--dir", str(tmp_path)).exit_code == 0
    before = (tmp_path / "k.key").read_bytes()
    expect_error(run_cli("keys", "generate", "k", "--dir", str(tmp_path)), "already exists")
    assert (tmp_path / "k.key").read_bytes() == before
    # A lone public key of that name is not overwritten either, nor a private key made.
    (tmp_path / "j.pub").write_bytes(b"mine")
    expect_error(run_cli("keys", "generate", "j", "--dir", str(tmp_path)), "j.pub already exists")
    assert not (tmp_path / "j.key").exists()
    assert (tmp_path / "j.pub").read_bytes() == b"mine"


def test_generate_refuses_bad_names(run_cli: RunCli, tmp_path: Path,
                                    expect_error: ExpectError) -> None:
    for name in ("../escape", ".hidden", "a/b", ""):
        expect_error(run_cli("keys", "generate", name, "--dir", str(tmp_path)), "key name")


def test_id_of_public_and_private_key(run_cli: RunCli, tmp_path: Path,
                                      expect_error: ExpectError) -> None:
    assert run_cli("keys", "generate", "k", "--dir", str(tmp_path)).exit_code == 0
    pub = run_cli("keys", "id", str(tmp_path / "k.pub"))
    priv = run_cli("keys", "id", str(tmp_path / "k.key"))
    assert pub.exit_code == priv.exit_code == 0
    assert pub.stdout == priv.stdout
    assert len(pub.stdout.strip()) == 16
    (tmp_path / "junk.pub").write_bytes(b"junk")
    expect_error(run_cli("keys", "id", str(tmp_path / "junk.pub")), "not a PEM public key")


def test_trusted_lists_configured_keys(run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("keys", "generate", "k", "--dir", str(tmp_path)).exit_code == 0
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("policy: {trusted_keys: [k.pub, missing.pub]}\n", encoding="utf-8")
    result = run_cli("keys", "trusted", "--json", config=cfg)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    expected = run_cli("keys", "id", str(tmp_path / "k.pub")).stdout.strip()
    assert rows[0]["key_id"] == expected
    assert rows[0]["problem"] is None
    assert rows[1]["key_id"] is None
    assert "cannot read" in rows[1]["problem"]
    table = run_cli("keys", "trusted", config=cfg)
    assert expected in table.stdout
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n", encoding="utf-8")
    assert "no trusted keys configured" in run_cli("keys", "trusted", config=empty).stdout
