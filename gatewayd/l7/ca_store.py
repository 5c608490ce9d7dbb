"""The gateway CA on disk, in ``l7.ca_dir``: creating, loading and rotating it.

Files (the folder is kept 0700):

* ``ca.key``: the CA private key, PKCS8 PEM, 0600.
* ``ca.crt``: the CA certificate, PEM, 0644.
* ``ca.prev.crt``: after ``rotate_ca``, the certificate it replaced, so agents can trust
  both while the new one is rolled out.

``init_ca`` and ``rotate_ca`` stage every file they write before putting any in place
(``gatewayd.files``): a failure leaves the CA as it was. ``load_ca`` reads the key and
certificate and checks they belong together; ``load_ca_certificate`` reads the
certificate alone. Errors name the file, never quote the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gatewayd.errors import ClawgressError
from gatewayd.files import (
    discard_file,
    ensure_private_dir,
    install_file,
    read_file,
    remove_file,
    stage_file,
)
from gatewayd.l7.ca import (
    DEFAULT_LEAF_CACHE_SIZE,
    DEFAULT_LEAF_TTL,
    GatewayCA,
    issue_ca,
)
from gatewayd.l7.certs import private_key_pem

KEY_FILE = "ca.key"
CERT_FILE = "ca.crt"
PREVIOUS_CERT_FILE = "ca.prev.crt"
KEY_MODE = 0o600
CERT_MODE = 0o644


@dataclass(frozen=True)
class CaPaths:
    """Where a gateway CA's files are."""

    directory: Path

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def cert(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def previous(self) -> Path:
        return self.directory / PREVIOUS_CERT_FILE


def parse_ca_key(data: bytes, source: Path) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PKCS8 EC P-256 key; errors name ``source``, never the key."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ClawgressError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ClawgressError(f"{source}: not an EC P-256 key")
    return key


def parse_ca_certificate(data: bytes, source: Path) -> x509.Certificate:
    """A PEM CA certificate (CA:true); errors name ``source``."""
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ClawgressError(f"{source}: not a PEM certificate") from None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except (x509.ExtensionNotFound, ValueError):
        raise ClawgressError(f"{source}: not a gateway CA certificate") from None
    if not constraints.ca:
        raise ClawgressError(f"{source}: not a CA certificate")
    return cert


def _missing(paths: CaPaths) -> ClawgressError:
    return ClawgressError(
        f"no gateway CA in {paths.directory} ({paths.cert.name} missing); create one with"
        " `clawgress ca init`"
    )


def load_ca_certificate(paths: CaPaths) -> x509.Certificate:
    """The CA certificate alone (no need to read the key)."""
    data = read_file(paths.cert)
    if data is None:
        raise _missing(paths)
    return parse_ca_certificate(data, paths.cert)


def load_previous_certificate(paths: CaPaths) -> x509.Certificate | None:
    """The certificate the last rotation replaced, if any."""
    data = read_file(paths.previous)
    return None if data is None else parse_ca_certificate(data, paths.previous)


def load_ca(
    paths: CaPaths,
    *,
    leaf_ttl: int = DEFAULT_LEAF_TTL,
    leaf_cache_size: int = DEFAULT_LEAF_CACHE_SIZE,
) -> GatewayCA:
    """The CA in ``paths``: key and certificate, checked to belong together."""
    cert = load_ca_certificate(paths)
    data = read_file(paths.key)
    if data is None:
        raise ClawgressError(
            f"{paths.key}: missing although {paths.cert.name} exists; restore it or create a"
            " new CA (`clawgress ca init --force`)"
        )
    key = parse_ca_key(data, paths.key)
    try:
        return GatewayCA(key, cert, leaf_ttl=leaf_ttl, leaf_cache_size=leaf_cache_size)
    except ClawgressError as exc:
        raise ClawgressError(f"{paths.directory}: {exc}") from None


def _install_all(staged: list[tuple[Path, Path]], *, replace: bool) -> None:
    """Install staged files in order; if one fails, the rest are discarded."""
    for i, (tmp, path) in enumerate(staged):
        try:
            install_file(tmp, path, replace=replace)
        except ClawgressError:
            for rest, _ in staged[i + 1 :]:
                discard_file(rest)
            raise


def _stage_all(files: list[tuple[Path, bytes, int]]) -> list[tuple[Path, Path]]:
    """Stage every file, or none: a failure discards those already staged."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in files:
            staged.append((stage_file(path, data, mode=mode), path))
    except ClawgressError:
        for tmp, _ in staged:
            discard_file(tmp)
        raise
    return staged


def init_ca(
    paths: CaPaths, gateway_name: str, now: float, ttl: int, *, force: bool = False
) -> x509.Certificate:
    """Create a CA in ``paths``; returns its certificate.

    Refuses when a key or certificate is there already, unless ``force``: then they are
    replaced and a previous certificate (from a rotation) is removed.
    """
    if not force:
        for path in (paths.key, paths.cert):
            if path.exists() or path.is_symlink():
                raise ClawgressError(
                    f"a gateway CA already exists in {paths.directory} ({path.name});"
                    " not overwriting it (`clawgress ca rotate` replaces it and keeps the old"
                    " certificate; --force discards it)"
                )
    key, cert = issue_ca(gateway_name, now, ttl)
    ensure_private_dir(paths.directory)
    staged = _stage_all([
        (paths.key, private_key_pem(key), KEY_MODE),
        (paths.cert, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE),
    ])
    if force:
        _install_all(staged, replace=True)
        remove_file(paths.previous)
        return cert
    (key_tmp, _), (cert_tmp, _) = staged
    try:
        install_file(key_tmp, paths.key, replace=False)
    except ClawgressError:
        discard_file(cert_tmp)
        raise
    try:
        install_file(cert_tmp, paths.cert, replace=False)
    except ClawgressError:
        # A certificate appeared meanwhile: take our key back out, leave no half-made CA.
        remove_file(paths.key)
        raise
    return cert


def rotate_ca(
    paths: CaPaths, gateway_name: str, now: float, ttl: int
) -> tuple[x509.Certificate, x509.Certificate]:
    """Replace the CA in ``paths`` with a new one; the old certificate becomes
    ``ca.prev.crt`` (replacing any older one). Returns the new and the old certificate."""
    old = load_ca_certificate(paths)
    key, cert = issue_ca(gateway_name, now, ttl)
    ensure_private_dir(paths.directory)
    staged = _stage_all([
        (paths.previous, old.public_bytes(serialization.Encoding.PEM), CERT_MODE),
        (paths.key, private_key_pem(key), KEY_MODE),
        (paths.cert, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE),
    ])
    _install_all(staged, replace=True)
    return cert, old
