from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

RunCli = Callable[..., Result]
ExpectError = Callable[..., str]


@pytest.fixture
def ca_config(tmp_path: Path) -> Path:
    """A configuration whose CA folder is ``tmp_path/ca`` (relative to the file)."""
    path = tmp_path / "ca-gateway.yaml"
    path.write_text("gateway: {name: gw-test}\nl7: {ca_dir: ca}\n", encoding="utf-8")
    return path


def _fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def _key_lines(path: Path) -> list[str]:
    """The base64 lines of a PEM key: none may appear in any output."""
    return path.read_text().splitlines()[1:-1]


def _assert_no_key(result: Result, *keys: Path) -> None:
    text = result.stdout + result.stderr
    assert "PRIVATE KEY" not in text
    for key in keys:
        for line in _key_lines(key):
            assert line not in text


def test_init_prints_fingerprint_and_path(run_cli: RunCli, ca_config: Path, tmp_path: Path) -> None:
    result = run_cli("ca", "init", config=ca_config)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "ca"
    cert = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert f"certificate: {folder / 'ca.crt'}" in result.stdout
    assert f"fingerprint (SHA-256): {_fingerprint(der)}" in result.stdout
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    _assert_no_key(result, folder / "ca.key")


def test_init_refuses_to_overwrite_unless_forced(
    run_cli: RunCli, ca_config: Path, tmp_path: Path, expect_error: ExpectError
) -> None:
    assert run_cli("ca", "init", config=ca_config).exit_code == 0
    key = tmp_path / "ca" / "ca.key"
    before = key.read_bytes()
    line = expect_error(run_cli("ca", "init", config=ca_config), "already exists",
                        "not overwriting", "--force")
    assert key.read_bytes() == before
    assert "PRIVATE" not in line
    forced = run_cli("ca", "init", "--force", config=ca_config)
    assert forced.exit_code == 0, forced.output
    assert key.read_bytes() != before
    _assert_no_key(forced, key)


def test_show_text_and_json(run_cli: RunCli, ca_config: Path, tmp_path: Path) -> None:
    init = run_cli("ca", "init", config=ca_config)
    shown = run_cli("ca", "show", "--json", config=ca_config)
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["subject"] == "CN=Clawgress CA gw-test,O=Clawgress"
    assert f"fingerprint (SHA-256): {info['fingerprint_sha256']}" in init.stdout
    assert info["certificate"] == str(tmp_path / "ca" / "ca.crt")
    assert info["key"] == str(tmp_path / "ca" / "ca.key")
    assert info["not_before"] < info["not_after"]
    assert info["not_after"].endswith("Z")
    assert info["previous"] is None
    text = run_cli("ca", "show", config=ca_config)
    assert text.exit_code == 0, text.output
    assert info["fingerprint_sha256"] in text.stdout
    assert "previous     -" in text.stdout
    _assert_no_key(shown, tmp_path / "ca" / "ca.key")
    _assert_no_key(text, tmp_path / "ca" / "ca.key")


def test_export_pem_and_der_round_trip(run_cli: RunCli, ca_config: Path, tmp_path: Path) -> None:
    assert run_cli("ca", "init", config=ca_config).exit_code == 0
    crt = tmp_path / "ca" / "ca.crt"
    pem = run_cli("ca", "export", config=ca_config)
    assert pem.exit_code == 0, pem.output
    assert pem.stdout_bytes == crt.read_bytes()
    der = run_cli("ca", "export", "--der", config=ca_config)
    assert der.exit_code == 0
    assert x509.load_der_x509_certificate(der.stdout_bytes) == x509.load_pem_x509_certificate(
        crt.read_bytes())
    out = tmp_path / "exported.der"
    written = run_cli("ca", "export", "--der", "-o", str(out), config=ca_config)
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == der.stdout_bytes
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert _fingerprint(der.stdout_bytes) in written.stdout
    for result in (pem, der, written):
        _assert_no_key(result, tmp_path / "ca" / "ca.key")


def test_rotate_keeps_the_previous_certificate(
    run_cli: RunCli, ca_config: Path, tmp_path: Path, expect_error: ExpectError
) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", config=ca_config).exit_code == 0
    old_pem, old_key = (folder / "ca.crt").read_bytes(), folder / "ca.key"
    old_lines = _key_lines(old_key)
    expect_error(run_cli("ca", "export", "--with-previous", config=ca_config),
                 "no previous certificate", "not been rotated")
    rotated = run_cli("ca", "rotate", config=ca_config)
    assert rotated.exit_code == 0, rotated.output
    assert (folder / "ca.prev.crt").read_bytes() == old_pem
    assert (folder / "ca.crt").read_bytes() != old_pem
    assert f"previous certificate kept as {folder / 'ca.prev.crt'}" in rotated.stdout
    assert "trust both" in rotated.stdout
    old_der = x509.load_pem_x509_certificate(old_pem).public_bytes(serialization.Encoding.DER)
    assert _fingerprint(old_der) in rotated.stdout
    bundle = run_cli("ca", "export", "--with-previous", config=ca_config)
    assert bundle.exit_code == 0
    certs = x509.load_pem_x509_certificates(bundle.stdout_bytes)
    assert [c.public_bytes(serialization.Encoding.PEM) for c in certs] == [
        (folder / "ca.crt").read_bytes(), old_pem]
    info = json.loads(run_cli("ca", "show", "--json", config=ca_config).stdout)
    assert info["previous"]["fingerprint_sha256"] == _fingerprint(old_der)
    expect_error(run_cli("ca", "export", "--with-previous", "--der", config=ca_config),
                 "--with-previous needs PEM")
    for result in (rotated, bundle):
        _assert_no_key(result, folder / "ca.key")
        assert not any(line in result.stdout for line in old_lines)


def test_commands_without_a_ca_fail_with_one_line(
    run_cli: RunCli, ca_config: Path, expect_error: ExpectError
) -> None:
    for command in (["show"], ["show", "--json"], ["export"], ["rotate"]):
        expect_error(run_cli("ca", *command, config=ca_config), "no gateway CA",
                     "clawgress ca init")


def test_broken_files_fail_with_one_line_and_never_quote_the_key(
    run_cli: RunCli, ca_config: Path, tmp_path: Path, expect_error: ExpectError
) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", config=ca_config).exit_code == 0
    (folder / "ca.crt").write_bytes((folder / "ca.key").read_bytes())  # the key as a cert
    for command in (["show"], ["export"], ["rotate"]):
        line = expect_error(run_cli("ca", *command, config=ca_config), "ca.crt",
                            "not a PEM certificate")
        assert not any(key_line in line for key_line in _key_lines(folder / "ca.key"))


def test_export_to_an_unwritable_place(
    run_cli: RunCli, ca_config: Path, tmp_path: Path, expect_error: ExpectError
) -> None:
    assert run_cli("ca", "init", config=ca_config).exit_code == 0
    expect_error(run_cli("ca", "export", "-o", str(tmp_path / "missing" / "ca.pem"),
                         config=ca_config), "cannot write")


def test_gateway_name_too_long_for_the_subject(
    run_cli: RunCli, tmp_path: Path, expect_error: ExpectError
) -> None:
    cfg = tmp_path / "long.yaml"
    cfg.write_text(f"gateway: {{name: {'g' * 60}}}\nl7: {{ca_dir: ca}}\n", encoding="utf-8")
    expect_error(run_cli("ca", "init", config=cfg), "gateway.name", "1 to 51 characters")
    assert not (tmp_path / "ca").exists()


def test_l7_configuration(run_cli: RunCli, tmp_path: Path, expect_error: ExpectError) -> None:
    cfg = tmp_path / "l7.yaml"
    cfg.write_text("l7: {ca_dir: state/ca, leaf_ttl: 1d, ca_ttl: 365d,"
                   " extra_upstream_cas: [lab-ca.pem, /etc/ssl/other.pem]}\n", encoding="utf-8")
    shown = json.loads(run_cli("config", "show", config=cfg).stdout)["l7"]
    assert {k: shown[k] for k in ("ca_dir", "ca_ttl", "leaf_ttl", "leaf_cache_size",
                                  "extra_upstream_cas")} == {
        "ca_dir": str(tmp_path / "state" / "ca"),
        "ca_ttl": 365 * 86400,
        "leaf_ttl": 86400,
        "leaf_cache_size": 4096,
        "extra_upstream_cas": [str(tmp_path / "lab-ca.pem"), "/etc/ssl/other.pem"],
    }
    assert (shown["transparent_port"], shown["proxy_port"], shown["header_timeout"]) == (
        15001, 3128, 10)
    defaults = tmp_path / "empty.yaml"
    defaults.write_text("{}\n", encoding="utf-8")
    l7 = json.loads(run_cli("config", "show", config=defaults).stdout)["l7"]
    assert l7["ca_dir"] == "/var/lib/clawgress/ca"
    assert (l7["leaf_ttl"], l7["ca_ttl"]) == (7 * 86400, 3650 * 86400)
    for bad, fragment in (("l7: {leaf_ttl: 400d}", "longer than 397d"),
                          ("l7: {leaf_ttl: 30d, ca_ttl: 7d}", "longer than l7.ca_ttl"),
                          ("l7: {leaf_cache_size: 0}", "l7.leaf_cache_size"),
                          ("l7: {leaf_ttl: soon}", "l7.leaf_ttl"),
                          ("l7: {proxy_port: 15001}", "must differ"),
                          ("l7: {identity: {client_ca_files: [ca.pem],"
                           " spiffe_trust_domains: [lab.test]}}", "l7.proxy_tls: true"),
                          ("l7: {body_over_limit: drop}", "l7.body_over_limit"),
                          ("l7: {header_timeout: 0}", "l7.header_timeout")):
        cfg.write_text(bad + "\n", encoding="utf-8")
        expect_error(run_cli("config", "check", config=cfg), fragment)


def test_every_command_has_help(run_cli: RunCli) -> None:
    for command in ([], ["init"], ["show"], ["export"], ["rotate"]):
        result = run_cli("ca", *command, "--help", config=None)
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) > 3
    top = run_cli("--help", config=None)
    assert "ca " in top.stdout
