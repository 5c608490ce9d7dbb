"""``clawgress policy bundle|sign|verify|publish|active|history``: the bundle lifecycle.

Author documents, ``bundle`` them into an archive, ``sign`` it with a key kept off the
gateway, ``verify`` it against the gateway's trusted keys, ``publish`` it (verify, compile,
refuse rollbacks, activate, write the last-known-good file). ``active`` shows what the
gateway enforces and why; ``history`` lists every published version.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_fields, emit_json, emit_table
from gatewayd.duration import parse_duration
from gatewayd.errors import ClawgressError, PolicyError
from gatewayd.policy.activation import (
    Trust,
    active_record,
    bundle_history,
    load_active,
    prepare_bundle,
    publish,
)
from gatewayd.policy.archive import build_bundle
from gatewayd.policy.bundle import DOCUMENT_SUFFIXES, BundleLimits, format_timestamp, size_text
from gatewayd.policy.bundle_files import read_bundle_file, write_bundle_file
from gatewayd.policy.compile import compile_plan
from gatewayd.policy.documents import parse_documents, parse_quotas
from gatewayd.policy.guard import Guard
from gatewayd.policy.signing import (
    key_id,
    load_private_key,
    read_key_file,
    sign_bundle,
    verify_bundle,
)

DEFAULT_EXPIRES_IN = "90d"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def collect_documents(directory: Path, limits: BundleLimits) -> dict[str, bytes]:
    """Every ``*.yaml``/``*.yml`` regular file under ``directory`` by relative POSIX path.

    Symbolic links are not followed: a bundle holds what the folder itself contains.
    """
    if not directory.is_dir():
        raise PolicyError(f"{directory}: not a folder")
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in names:
            path = Path(root) / name
            if not name.endswith(DOCUMENT_SUFFIXES) or path.is_symlink() or not path.is_file():
                continue
            found.append((path.relative_to(directory).as_posix(), path))
    if not found:
        raise PolicyError(f"{directory}: no *.yaml or *.yml files in this folder")
    if len(found) > limits.max_documents:
        raise PolicyError(
            f"{directory}: {len(found)} documents, more than {limits.max_documents}"
            " (policy.max_documents)"
        )
    files: dict[str, bytes] = {}
    total = 0
    for rel, path in sorted(found):
        try:
            with path.open("rb") as f:
                data = f.read(limits.max_unpacked_bytes - total + 1)
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
        total += len(data)
        if total > limits.max_unpacked_bytes:
            raise PolicyError(
                f"{directory}: documents add up to more than"
                f" {size_text(limits.max_unpacked_bytes)} (policy.max_unpacked_bytes)"
            )
        files[rel] = data
    return files


@click.command("bundle")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Bundle file to write.")
@click.option("--version", "version", type=click.IntRange(min=1),
              help="Bundle version [default: the current time in seconds since the epoch].")
@click.option("--expires-in", default=DEFAULT_EXPIRES_IN, show_default=True,
              help="How long the bundle stays valid (e.g. 30d, 12h).")
@click.pass_obj
def bundle(
    obj: CliContext, directory: Path, output: Path, version: int | None, expires_in: str
) -> None:
    """Validate and compile the policy documents under DIRECTORY and write an unsigned bundle.

    A bundle whose documents would not load is never written.
    """
    try:
        lifetime = parse_duration(expires_in)
    except ValueError as exc:
        raise ClawgressError(f"--expires-in: {exc}") from None
    policy = obj.config.policy
    limits = BundleLimits.from_config(policy)
    now = obj.now()
    chosen = version if version is not None else int(now)
    files = collect_documents(directory, limits)
    docs = parse_documents(files)
    compile_plan(docs, bundle_version=chosen, guard=Guard.from_config(obj.config),
                 quotas=parse_quotas(files))
    data = build_bundle(files, version=chosen, created_at=now, expires_at=now + lifetime)
    verified = verify_bundle(data, keys={}, limits=limits, now=now, require_signature=False)
    write_bundle_file(output, data)
    click.echo(
        f"wrote {output}: version {chosen}, {_count(len(files), 'document')}, expires"
        f" {verified.manifest.expires_at} (unsigned: sign it with"
        f" `clawgress policy sign {output} --key KEY`)"
    )


@click.command("sign")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Ed25519 private key (PEM) from `clawgress keys generate`.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Signed bundle to write [default: replace FILE].")
@click.pass_obj
def sign(obj: CliContext, file: Path, key_path: Path, output: Path | None) -> None:
    """Sign bundle FILE (replacing any signature it has)."""
    key = load_private_key(read_key_file(key_path), f"key {key_path}")
    limits = BundleLimits.from_config(obj.config.policy)
    data = sign_bundle(read_bundle_file(file, limits), key, limits=limits, now=obj.now())
    target = output or file
    write_bundle_file(target, data)
    click.echo(f"signed {target} with key {key_id(key.public_key())}")


@click.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def verify(obj: CliContext, file: Path, as_json: bool) -> None:
    """Verify bundle FILE as the gateway would load it: signature, integrity, expiry, compile.

    Exit code 2, with the reason, if it would be refused.
    """
    config = obj.config
    trust = Trust.from_config(config.policy)
    data = read_bundle_file(file, trust.limits)
    compiled = prepare_bundle(data, trust=trust, guard=Guard.from_config(config), now=obj.now())
    b = compiled.bundle
    m = b.manifest
    if as_json:
        emit_json({
            "file": str(file),
            "version": b.version,
            "key_id": b.key_id,
            "signature_checked": trust.require_signature,
            "created_at": m.created_at,
            "expires_at": m.expires_at,
            "sha256": b.sha256,
            "rules": len(compiled.plan),
            "documents": [{"path": d.path, "sha256": d.sha256} for d in m.documents],
        })
        return
    click.echo(f"ok: {file}")
    emit_fields({
        "version": b.version,
        "key id": b.key_id if trust.require_signature else
        "not checked (policy.require_signature: false)",
        "created": m.created_at,
        "expires": m.expires_at,
        "rules": len(compiled.plan),
        "sha256": b.sha256,
    })
    click.echo("")
    emit_table([{"document": d.path, "sha256": d.sha256} for d in m.documents],
               ["document", "sha256"])


@click.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def publish_command(obj: CliContext, file: Path) -> None:
    """Verify bundle FILE, refuse it unless newer than every published version, activate it.

    The bundle is also written to the last-known-good file (policy.last_known_good). A
    refused bundle changes nothing.
    """
    config = obj.config
    data = read_bundle_file(file, BundleLimits.from_config(config.policy))
    record = publish(obj.store(), data, config, obj.now())
    signer = f"key {record.key_id}" if record.key_id else "unsigned"
    click.echo(
        f"published version {record.version} ({signer}, expires {record.expires_at});"
        f" active. last-known-good: {config.policy.last_known_good}"
    )


@click.command("active")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def active(obj: CliContext, as_json: bool) -> None:
    """Show the policy the gateway enforces: version, source, signer, expiry, problems."""
    store = obj.store()
    current = load_active(store, obj.config, obj.now())
    record = active_record(store)
    published = (format_timestamp(record.published_at)
                 if record is not None and record.version == current.version else None)
    if as_json:
        emit_json({**current.as_dict(), "published_at": published})
        return
    emit_fields({
        "version": current.version,
        "source": current.source,
        "published": published,
        "key id": current.key_id,
        "created": current.created_at,
        "expires": current.expires_at + (" (expired)" if current.expired else "")
        if current.expires_at else None,
        "enforcing": "deny all: " + current.plan.deny_all_reason
        if current.plan.deny_all_reason else _count(len(current.plan), "rule"),
        "documents": list(current.documents),
    })
    for problem in current.problems:
        click.echo(f"problem: {problem}", err=True)


@click.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def history(obj: CliContext, as_json: bool) -> None:
    """List every published bundle, newest first."""
    records = bundle_history(obj.store())
    if as_json:
        emit_json([r.as_dict() for r in records])
        return
    emit_table(
        [{**r.as_dict(), "active": "*" if r.active else "", "sha256": r.sha256[:16]}
         for r in records],
        ["version", "active", "published_at", "created_at", "expires_at", "key_id", "sha256"],
    )


COMMANDS: list[click.Command] = [bundle, sign, verify, publish_command, active, history]
