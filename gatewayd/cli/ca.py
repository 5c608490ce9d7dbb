"""``clawgress ca init|show|export|rotate``: the gateway CA that TLS interception signs with.

The CA lives in ``l7.ca_dir``: ``ca.key`` (0600; never printed), ``ca.crt``, and after a
rotation ``ca.prev.crt``. Agents trust ``ca.crt`` (``clawgress ca export``) so that the
leaf certificates the gateway presents on inspected TLS flows verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gatewayd.cli.context import CliContext
from gatewayd.cli.output import emit_fields, emit_json
from gatewayd.errors import ClawgressError
from gatewayd.files import write_file
from gatewayd.l7 import (
    CaPaths,
    describe_certificate,
    fingerprint,
    init_ca,
    load_ca_certificate,
    load_previous_certificate,
    rotate_ca,
)


def _paths(obj: CliContext) -> CaPaths:
    return CaPaths(obj.config.l7.ca_dir)


@click.group("ca")
def group() -> None:
    """Create, show, export and rotate the gateway CA (for TLS interception).

    Where policy says inspect on a TLS flow, the gateway presents a certificate for the
    server name the agent asked for, signed by this CA; agents must trust its certificate.
    Files are in l7.ca_dir (default /var/lib/clawgress/ca).
    """


@group.command("init")
@click.option("--force", is_flag=True,
              help="Replace an existing CA; its key and certificates are discarded (rotate"
                   " keeps the old certificate).")
@click.pass_obj
def init(obj: CliContext, force: bool) -> None:
    """Create the gateway CA (ca.key, ca.crt) in l7.ca_dir.

    The key is EC P-256, written 0600 in a 0700 folder, and never printed. Refuses if a
    CA is there already, unless --force. The certificate is valid for l7.ca_ttl; its
    subject names gateway.name.
    """
    paths = _paths(obj)
    cfg = obj.config
    cert = init_ca(paths, cfg.gateway.name, obj.now(), cfg.l7.ca_ttl, force=force)
    info = describe_certificate(cert)
    click.echo(f"created the gateway CA in {paths.directory}")
    click.echo(f"certificate: {paths.cert}")
    click.echo(f"fingerprint (SHA-256): {info['fingerprint_sha256']}")
    click.echo(f"valid until: {info['not_after']}")
    click.echo("agents must trust this certificate: `clawgress ca export -o FILE`")


@group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: CliContext, as_json: bool) -> None:
    """Show the CA certificate: subject, fingerprint, validity.

    The fingerprint is the SHA-256 of the DER, as `openssl x509 -fingerprint -sha256`
    prints it. Also shows the previous certificate when a rotation has kept one. Reads
    the certificates only, never the key.
    """
    paths = _paths(obj)
    cert = load_ca_certificate(paths)
    previous = load_previous_certificate(paths)
    out: dict[str, Any] = {
        **describe_certificate(cert),
        "certificate": str(paths.cert),
        "key": str(paths.key),
        "previous": None,
    }
    if previous is not None:
        out["previous"] = {**describe_certificate(previous), "certificate": str(paths.previous)}
    if as_json:
        emit_json(out)
        return
    emit_fields({
        "subject": out["subject"],
        "fingerprint": out["fingerprint_sha256"],
        "not before": out["not_before"],
        "not after": out["not_after"],
        "certificate": out["certificate"],
        "key": out["key"],
        "previous": (
            f"{previous.subject.rfc4514_string()}, {fingerprint(previous)}, until"
            f" {out['previous']['not_after']} ({paths.previous})"
        ) if previous is not None else None,
    })


@group.command("export")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE (0644, replaced atomically) instead of standard output.")
@click.option("--with-previous", is_flag=True,
              help="Also the certificate the last rotation replaced (PEM only): a trust bundle"
                   " for agents during a rollout.")
@click.pass_obj
def export(obj: CliContext, der: bool, output: Path | None, with_previous: bool) -> None:
    """Print the CA certificate for agents' trust stores.

    The certificate only, never the key; PEM by default. Install it where the agent's
    TLS clients look (for example /usr/local/share/ca-certificates/ and
    update-ca-certificates, or SSL_CERT_FILE).
    """
    paths = _paths(obj)
    certs = [load_ca_certificate(paths)]
    if with_previous:
        if der:
            raise ClawgressError("--with-previous needs PEM: DER holds one certificate")
        previous = load_previous_certificate(paths)
        if previous is None:
            raise ClawgressError(
                f"no previous certificate ({paths.previous} missing): the CA has not been rotated"
            )
        certs.append(previous)
    data = _encode(certs, der=der)
    if output is None:
        click.echo(data, nl=False)
        return
    write_file(output, data, mode=0o644)
    what = "certificates" if len(certs) > 1 else "certificate"
    click.echo(f"wrote {output}: the gateway CA {what} ({'DER' if der else 'PEM'}),"
               f" fingerprint {fingerprint(certs[0])}")


def _encode(certs: list[x509.Certificate], *, der: bool) -> bytes:
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return b"".join(c.public_bytes(encoding) for c in certs)


@group.command("rotate")
@click.pass_obj
def rotate(obj: CliContext) -> None:
    """Replace the CA, keeping the old certificate as ca.prev.crt.

    A new key and certificate replace ca.key and ca.crt; the old certificate becomes
    ca.prev.crt (replacing an older one) so agents can trust both while the new one is
    rolled out. Leaves are signed with the new CA once the gateway loads it. Distribute
    the new certificate (`clawgress ca export`, or `--with-previous` for a bundle of
    both).
    """
    paths = _paths(obj)
    cfg = obj.config
    new, old = rotate_ca(paths, cfg.gateway.name, obj.now(), cfg.l7.ca_ttl)
    click.echo(f"rotated the gateway CA in {paths.directory}")
    click.echo(f"new certificate: {paths.cert}")
    click.echo(f"  fingerprint (SHA-256): {fingerprint(new)}")
    click.echo(f"previous certificate kept as {paths.previous}")
    click.echo(f"  fingerprint (SHA-256): {fingerprint(old)}")
    click.echo("agents can trust both during the rollout (`clawgress ca export --with-previous`);"
               " leaves are signed by the new CA once the gateway loads it")
