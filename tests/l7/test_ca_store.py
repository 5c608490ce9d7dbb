from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatewayd import files as ca_files
from gatewayd.errors import ClawgressError
from gatewayd.l7 import (
    CaPaths,
    GatewayCA,
    init_ca,
    issue_ca,
    load_ca,
    load_ca_certificate,
    load_previous_certificate,
    rotate_ca,
)

from .conftest import DAY, NOW, CaPair

TTL = 3650 * DAY


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _key_body(path: Path) -> str:
    """The base64 body of a PEM key file: what must never be printed."""
    return "".join(path.read_text().splitlines()[1:-1])


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def paths(tmp_path: Path) -> CaPaths:
    return CaPaths(tmp_path / "state" / "ca")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0: modes must come from the code, not from a kind umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- init -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
def test_init_writes_key_0600_cert_0644_in_a_0700_folder(paths: CaPaths) -> None:
    cert = init_ca(paths, "gw-test", NOW, TTL)
    assert _listing(paths.directory) == ["ca.crt", "ca.key"]
    assert _mode(paths.directory) == 0o700
    assert _mode(paths.key) == 0o600
    assert _mode(paths.cert) == 0o644
    assert paths.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS8
    assert load_ca_certificate(paths) == cert
    loaded = load_ca(paths, leaf_ttl=DAY, leaf_cache_size=3)
    assert loaded.certificate == cert
    assert loaded.leaf_ttl == DAY
    assert loaded.cache.max_size == 3


def test_init_tightens_an_existing_folder(paths: CaPaths) -> None:
    paths.directory.mkdir(parents=True, mode=0o755)
    paths.directory.chmod(0o755)
    init_ca(paths, "gw-test", NOW, TTL)
    assert _mode(paths.directory) == 0o700


def test_init_refuses_to_overwrite(paths: CaPaths) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    key, cert = paths.key.read_bytes(), paths.cert.read_bytes()
    with pytest.raises(ClawgressError, match=r"already exists .*not overwriting"):
        init_ca(paths, "gw-test", NOW, TTL)
    assert (paths.key.read_bytes(), paths.cert.read_bytes()) == (key, cert)
    assert _listing(paths.directory) == ["ca.crt", "ca.key"]


def test_init_refuses_when_only_a_certificate_is_there(paths: CaPaths) -> None:
    paths.directory.mkdir(parents=True)
    paths.cert.write_bytes(b"mine")
    with pytest.raises(ClawgressError, match=r"already exists .*\(ca\.crt\)"):
        init_ca(paths, "gw-test", NOW, TTL)
    assert _listing(paths.directory) == ["ca.crt"]
    assert paths.cert.read_bytes() == b"mine"


def test_init_force_replaces_and_drops_the_previous(paths: CaPaths) -> None:
    first = init_ca(paths, "gw-test", NOW, TTL)
    rotate_ca(paths, "gw-test", NOW, TTL)
    assert paths.previous.exists()
    fresh = init_ca(paths, "gw-test", NOW, TTL, force=True)
    assert fresh != first
    assert load_ca(paths).certificate == fresh
    assert _listing(paths.directory) == ["ca.crt", "ca.key"]
    assert _mode(paths.key) == 0o600


def test_a_failed_write_leaves_nothing_behind(paths: CaPaths,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def disk_full(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 2:  # the key went through; the certificate dies half-way
            os.write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        os.write(fd, data)

    monkeypatch.setattr(ca_files, "_write_all", disk_full)
    with pytest.raises(ClawgressError, match=r"ca\.crt: cannot write: No space left") as err:
        init_ca(paths, "gw-test", NOW, TTL)
    assert "PRIVATE" not in str(err.value)
    assert _listing(paths.directory) == []  # neither the key nor a temporary file


def test_a_failed_rotation_changes_nothing(paths: CaPaths,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    before = {p: p.read_bytes() for p in (paths.key, paths.cert)}
    real = ca_files._write_all
    calls = []

    def failing(fd: int, data: bytes) -> None:
        calls.append(1)
        if len(calls) == 3:  # previous and key staged, the new certificate fails
            raise OSError(5, "Input/output error")
        real(fd, data)

    monkeypatch.setattr(ca_files, "_write_all", failing)
    with pytest.raises(ClawgressError, match="cannot write"):
        rotate_ca(paths, "gw-test", NOW, TTL)
    assert _listing(paths.directory) == ["ca.crt", "ca.key"]
    assert {p: p.read_bytes() for p in before} == before


# --- rotate ---------------------------------------------------------------------------------


def test_rotate_keeps_the_previous_certificate(paths: CaPaths) -> None:
    first = init_ca(paths, "gw-test", NOW, TTL)
    first_key = paths.key.read_bytes()
    second, old = rotate_ca(paths, "gw-test", NOW + DAY, TTL)
    assert old == first
    assert second != first
    assert paths.key.read_bytes() != first_key
    assert load_previous_certificate(paths) == first
    assert load_ca(paths).certificate == second
    assert _mode(paths.key) == 0o600
    assert _mode(paths.previous) == 0o644
    assert _listing(paths.directory) == ["ca.crt", "ca.key", "ca.prev.crt"]
    # A second rotation keeps only the one just replaced.
    third, old = rotate_ca(paths, "gw-test", NOW + 2 * DAY, TTL)
    assert old == second
    assert load_previous_certificate(paths) == second
    assert load_ca(paths).certificate == third


def test_rotate_needs_a_ca(paths: CaPaths) -> None:
    with pytest.raises(ClawgressError, match=r"no gateway CA .*clawgress ca init"):
        rotate_ca(paths, "gw-test", NOW, TTL)
    assert not paths.directory.exists()


# --- loading --------------------------------------------------------------------------------


def test_load_without_a_ca(paths: CaPaths) -> None:
    with pytest.raises(ClawgressError, match=r"no gateway CA .*`clawgress ca init`"):
        load_ca(paths)
    assert load_previous_certificate(paths) is None


def test_load_without_the_key(paths: CaPaths) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    paths.key.unlink()
    with pytest.raises(ClawgressError, match=r"ca\.key: missing"):
        load_ca(paths)


def test_load_refuses_bad_keys_without_quoting_them(paths: CaPaths) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    real = paths.key.read_bytes()
    body = _key_body(paths.key)
    cases = [
        (real.replace(body[10:20].encode(), b"AAAAAAAAAA"), "not an unencrypted PEM"),
        (real[:-30], "not an unencrypted PEM"),
        (Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "not an EC P-256 key"),
        (ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "not an EC P-256 key"),
        (issue_ca("gw-test", NOW, DAY)[0].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), "does not match the CA key"),
    ]
    for data, why in cases:
        paths.key.write_bytes(data)
        with pytest.raises(ClawgressError, match=why) as err:
            load_ca(paths)
        message = str(err.value)
        assert str(paths.key) in message or str(paths.directory) in message
        for line in data.decode().splitlines()[1:-1]:
            assert line not in message
        assert body[:16] not in message


def test_load_refuses_a_symlinked_key(paths: CaPaths, tmp_path: Path) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    elsewhere = tmp_path / "elsewhere.key"
    paths.key.rename(elsewhere)
    paths.key.symlink_to(elsewhere)
    with pytest.raises(ClawgressError, match=r"ca\.key: cannot read"):
        load_ca(paths)


def test_load_refuses_a_bad_certificate(paths: CaPaths, ca_pair: CaPair) -> None:
    init_ca(paths, "gw-test", NOW, TTL)
    paths.cert.write_bytes(b"not a certificate")
    with pytest.raises(ClawgressError, match=r"ca\.crt: not a PEM certificate"):
        load_ca(paths)
    leaf = GatewayCA(*ca_pair).leaf_for("a.example", NOW)
    paths.cert.write_bytes(leaf.cert_pem)
    with pytest.raises(ClawgressError, match=r"ca\.crt: not a CA certificate"):
        load_ca(paths)
    paths.cert.write_bytes(b"x" * (ca_files.MAX_FILE_BYTES + 1))
    with pytest.raises(ClawgressError, match="larger than"):
        load_ca(paths)


def test_a_loaded_ca_mints_leaves(paths: CaPaths) -> None:
    cert = init_ca(paths, "gw-test", NOW, TTL)
    leaf = load_ca(paths).leaf_for("api.example.com", NOW)
    x509.load_pem_x509_certificate(leaf.cert_pem).verify_directly_issued_by(cert)
