"""``clawgress keys generate|id|trusted``: the Ed25519 keys that sign policy bundles.

The private key signs bundles and belongs on the machine that publishes policy, not on
gateways; gateways list the public key under ``policy.trusted_keys``. A key's id (16 hex
characters) is what signatures and error messages name. Private key material is never
printed.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_json, emit_table
from gatewayd.errors import ClawgressError, PolicyError
from gatewayd.policy.signing import (
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    read_key_file,
)

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (O_EXCL: an existing file is never overwritten)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise ClawgressError(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        raise ClawgressError(f"{path}: cannot create: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise ClawgressError(f"{path}: cannot write: {exc.strerror or exc}") from None


def generate_key_pair(name: str, directory: Path) -> tuple[Path, Path, str]:
    """Write ``NAME.key`` (0600) and ``NAME.pub`` (0644) in ``directory``; returns them and
    the key id. Refuses if either file exists."""
    if not _KEY_NAME.match(name):
        raise ClawgressError(
            f"key name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a"
            " letter or digit"
        )
    private_path = directory / f"{name}{PRIVATE_SUFFIX}"
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise ClawgressError(f"{path} already exists; not overwriting it")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ClawgressError(f"{directory}: cannot create: {exc.strerror or exc}") from None
    key = generate_key()
    write_new_file(private_path, private_key_pem(key), 0o600)
    try:
        write_new_file(public_path, public_key_pem(key.public_key()), 0o644)
    except ClawgressError:
        private_path.unlink()
        raise
    return private_path, public_path, key_id(key.public_key())


@click.group("keys")
def group() -> None:
    """Generate and inspect the Ed25519 keys that sign policy bundles."""


@group.command("generate")
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write NAME.key and NAME.pub in.")
def generate(name: str, directory: Path) -> None:
    """Create an Ed25519 key pair: NAME.key (private, 0600) and NAME.pub (public).

    Keep NAME.key off the gateways; list NAME.pub under policy.trusted_keys.
    """
    private_path, public_path, kid = generate_key_pair(name, directory)
    click.echo(f"key id {kid}")
    click.echo(f"private key: {private_path} (keep it secret; signs bundles)")
    click.echo(f"public key:  {public_path} (add to policy.trusted_keys on gateways)")


@group.command("id")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def show_id(path: Path) -> None:
    """Print the key id of a public or private key file."""
    data = read_key_file(path)
    source = f"key {path}"
    if b"PRIVATE KEY" in data:
        click.echo(key_id(load_private_key(data, source).public_key()))
    else:
        click.echo(key_id(load_public_key(data, source)))


@group.command("trusted")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def trusted(obj: CliContext, as_json: bool) -> None:
    """List the keys this gateway trusts (policy.trusted_keys) with their ids."""
    rows = []
    for path in obj.config.policy.trusted_keys:
        try:
            kid: str | None = key_id(load_public_key(read_key_file(path), f"key {path}"))
            problem = None
        except PolicyError as exc:
            kid, problem = None, str(exc)
        rows.append({"key_id": kid, "path": str(path), "problem": problem})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no trusted keys configured (policy.trusted_keys)")
        return
    emit_table(rows, ["key_id", "path", "problem"])
