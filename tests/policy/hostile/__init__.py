"""The hostile bundle corpus, generated at test time from a temporary key.

``valid_bundle`` makes a good signed bundle; ``corpus`` makes one hostile variant per way a
bundle can be wrong (signature, key, version, expiry, integrity, archive shape, compression
bombs), each with a fragment of the reason it must be refused with. Nothing binary is
committed: every archive is built here, from the key the test passes in.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatewayd.policy.archive import build_bundle, read_archive, write_archive
from gatewayd.policy.bundle import MANIFEST_NAME, SIGNATURE_NAME, format_timestamp
from gatewayd.policy.bundle import BundleLimits as Limits
from gatewayd.policy.signing import sign_bundle, sign_manifest

DAY = 86400
GIB = 1 << 30
MIB = 1 << 20
# Wide enough to read anything the corpus builds; the code under test uses its own limits.
_READ_LIMITS = Limits(max_bundle_bytes=64 * MIB, max_unpacked_bytes=64 * MIB)

POLICY = """\
apiVersion: clawgress.io/v1
kind: Policy
metadata: {id: %(id)s}
spec:
  rules:
    - id: openai
      action: allow
      destination: {hosts: [api.openai.com], ports: [443]}
"""


def documents(pid: str = "base") -> dict[str, bytes]:
    return {
        "policies/ai.yaml": (POLICY % {"id": pid}).encode(),
        "policies/more.yml": (POLICY % {"id": pid + "-more"}).encode(),
    }


def valid_bundle(
    key: Ed25519PrivateKey | None,
    *,
    version: int,
    now: float,
    lifetime: float = 30 * DAY,
    docs: Mapping[str, bytes] | None = None,
) -> bytes:
    """A bundle that passes every check at ``now`` (signed by ``key`` unless ``None``)."""
    data = build_bundle(
        docs if docs is not None else documents(),
        version=version,
        created_at=now - 60,
        expires_at=now - 60 + lifetime,
    )
    return data if key is None else sign_bundle(data, key, limits=_READ_LIMITS, now=now)


def members(data: bytes) -> dict[str, bytes]:
    return dict(read_archive(data, _READ_LIMITS).files)


def repack(files: Mapping[str, bytes]) -> bytes:
    return write_archive(files, mtime=0)


def resign(files: dict[str, bytes], key: Ed25519PrivateKey) -> dict[str, bytes]:
    """``files`` with a fresh signature over its (possibly edited) manifest."""
    out = dict(files)
    out[SIGNATURE_NAME] = sign_manifest(files[MANIFEST_NAME], key).encode()
    return out


def edit_json(raw: bytes, change: Callable[[dict[str, object]], None]) -> bytes:
    value = json.loads(raw)
    change(value)
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Member:
    """A raw tar member, as hostile as needed."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""


def raw_tar_gz(items: list[Member]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in items:
            info = tarfile.TarInfo(m.name)
            info.type = m.type
            info.linkname = m.linkname
            info.size = len(m.data) if m.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.data) if m.type == tarfile.REGTYPE else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def with_member(valid: bytes, extra: Member) -> bytes:
    """The members of ``valid`` (manifest and signature intact) plus a raw ``extra``."""
    files = members(valid)
    return raw_tar_gz([*(Member(n, d) for n, d in files.items()), extra])


# --- compression bombs: gzip members concatenated, so a GiB costs a few MB to build ---------


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def bomb_many_members(total: int = GIB, member_size: int = MIB) -> bytes:
    """A tar of ``total`` bytes of zeros in many members each well under any limit."""
    zeros = _gz(bytes(member_size))
    parts = []
    for i in range(total // member_size):
        parts.append(_gz(_tar_header(f"policies/p{i:05d}.yaml", member_size)))
        parts.append(zeros)
    parts.append(_gz(bytes(1024)))
    return b"".join(parts)


def bomb_one_member(total: int = GIB, chunk: int = 16 * MIB) -> bytes:
    """One member that declares (and holds) ``total`` bytes of zeros."""
    zeros = _gz(bytes(chunk))
    return _gz(_tar_header("policies/huge.yaml", total)) + zeros * (total // chunk) + _gz(
        bytes(1024)
    )


def bomb_extension_header(kind: bytes, total: int = GIB, chunk: int = 16 * MIB) -> bytes:
    """A pax (``x``) or GNU long-name (``L``) header that declares ``total`` bytes: the tar
    reader loads such headers whole, so only the decompressed byte count can stop it."""
    zeros = _gz(bytes(chunk))
    return _gz(_tar_header("././@Header", total, kind)) + zeros * (total // chunk)


def bomb_zeros(total: int = GIB, chunk: int = 16 * MIB) -> bytes:
    """``total`` bytes of zeros, gzip'd: an "archive" that is all end-of-archive padding."""
    return _gz(bytes(chunk)) * (total // chunk)


# --- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    reason: str


def corpus(
    key: Ed25519PrivateKey,
    *,
    active_version: int,
    now: float,
    untrusted: Ed25519PrivateKey | None = None,
) -> list[Case]:
    """One hostile bundle per way of being wrong, against a store where ``active_version``
    (signed by ``key``) is active and ``key``'s public half is the only trusted key."""
    other = untrusted or Ed25519PrivateKey.generate()
    newer = active_version + 1
    good = valid_bundle(key, version=newer, now=now)
    files = members(good)
    manifest = files[MANIFEST_NAME]
    signature = files[SIGNATURE_NAME]
    doc = "policies/ai.yaml"
    cases: list[Case] = []

    def add(name: str, data: bytes, reason: str) -> None:
        cases.append(Case(name, data, reason))

    def edited(**changes: bytes | None) -> bytes:
        out = dict(files)
        for member_name, content in changes.items():
            real = {"manifest": MANIFEST_NAME, "signature": SIGNATURE_NAME}.get(
                member_name, member_name)
            if content is None:
                del out[real]
            else:
                out[real] = content
        return repack(out)

    # Signatures and keys.
    block = json.loads(signature)
    flipped = bytearray(base64.b64decode(block["signature"]))
    flipped[0] ^= 0x01
    add("bad-signature",
        edited(signature=edit_json(signature, lambda b: b.update(
            signature=base64.b64encode(bytes(flipped)).decode()))),
        "signature does not verify with key")
    add("manifest-altered-after-signing",
        edited(manifest=edit_json(manifest, lambda m: m.update(version=newer + 1000))),
        "signature does not verify with key")
    add("stripped-signature", edited(signature=None), "bundle is not signed")
    add("unknown-key", valid_bundle(other, version=newer, now=now), "which is not a trusted key")
    for field in ("algorithm", "key_id", "signed", "signature"):
        add(f"signature-missing-{field}",
            edited(signature=edit_json(signature, lambda b, f=field: b.pop(f))),
            f"missing field {field}")
    add("signature-extra-field",
        edited(signature=edit_json(signature, lambda b: b.update(comment="trust me"))),
        "unknown field comment")
    add("signature-unknown-algorithm",
        edited(signature=edit_json(signature, lambda b: b.update(algorithm="none"))),
        "algorithm 'none' is not supported")
    add("signature-not-json", edited(signature=b"\xff\xfe"), "signature.json: not valid JSON")

    # Versions and expiry (validly signed).
    add("older-version", valid_bundle(key, version=active_version - 1, now=now),
        f"bundle version {active_version - 1} is not newer than the active version"
        f" {active_version} (rollback refused)")
    add("same-version", valid_bundle(key, version=active_version, now=now),
        "(rollback refused)")
    expired = build_bundle(documents(), version=newer, created_at=now - 10 * DAY,
                           expires_at=now - DAY)
    expired_files = members(expired)
    add("expired", repack(resign(expired_files, key)),
        f"bundle expired at {format_timestamp(now - DAY)}")

    # Manifest fields: missing ones are refused even when the manifest is validly signed.
    for field in ("format", "version", "created_at", "expires_at", "documents"):
        changed = dict(files)
        changed[MANIFEST_NAME] = edit_json(manifest, lambda m, f=field: m.pop(f))
        add(f"manifest-missing-{field}", repack(resign(changed, key)),
            f"missing field {field}")
    changed = dict(files)
    changed[MANIFEST_NAME] = edit_json(manifest, lambda m: m.update(format=2))
    add("manifest-unknown-format", repack(resign(changed, key)), "format 2 is not supported")

    # Integrity: documents against the (validly signed) manifest.
    add("hash-mismatch", edited(**{doc: files[doc] + b"\n# changed\n"}),
        f"{doc}: sha256 mismatch")
    add("unlisted-file", edited(**{"extra.yaml": b"kind: Policy\n"}), "unlisted file extra.yaml")
    add("listed-file-missing", edited(**{doc: None}), f"{doc}: listed but missing")
    changed = dict(files)
    changed[MANIFEST_NAME] = edit_json(manifest, lambda m: m.update(documents=[]))
    add("no-documents", repack(resign(changed, key)), "documents: empty")
    bad_yaml = {"policies/ai.yaml": b"apiVersion: clawgress.io/v1\nkind: Policy\n"}
    add("documents-invalid", valid_bundle(key, version=newer, now=now, docs=bad_yaml),
        "policy documents are invalid")

    # Archive shape.
    add("truncated", good[: len(good) // 2], "corrupt or truncated archive")
    add("truncated-tail", good[:-4], "corrupt or truncated archive")
    add("not-gzip", b"PK\x03\x04 this is a zip, not a bundle", "not gzip-compressed")
    add("gzip-garbage", b"\x1f\x8b" + bytes(range(256)) * 4, "corrupt or truncated archive")
    add("gzip-not-tar", _gz(b"hello, this is not a tar archive" * 64), "corrupt")
    add("empty-archive", raw_tar_gz([]), "no manifest.json")
    add("symlink-member",
        with_member(good, Member("policies/link.yaml", type=tarfile.SYMTYPE,
                                 linkname="/etc/shadow")),
        "symbolic link")
    add("hardlink-member",
        with_member(good, Member("policies/hard.yaml", type=tarfile.LNKTYPE,
                                 linkname=doc)),
        "hard link")
    add("device-member",
        with_member(good, Member("policies/dev.yaml", type=tarfile.CHRTYPE)), "device")
    add("fifo-member", with_member(good, Member("policies/fifo.yaml", type=tarfile.FIFOTYPE)),
        "FIFO")
    add("dotdot-path", with_member(good, Member("../evil.yaml", b"x")), "'..' in path")
    add("dotdot-inner-path", with_member(good, Member("policies/../../evil.yaml", b"x")),
        "'..' in path")
    add("absolute-path", with_member(good, Member("/etc/evil.yaml", b"x")), "absolute path")
    add("duplicate-member", with_member(good, Member(doc, files[doc])), "appears twice")
    padded = gzip.decompress(good) + b"PAYLOAD" + bytes(505)
    add("data-after-archive", _gz(padded), "data after the end of the archive")

    # Compression bombs: about 1 GiB decompressed from about a megabyte.
    add("bomb-many-members", bomb_many_members(), "archive expands past")
    add("bomb-one-member", bomb_one_member(), "archive expands past")
    add("bomb-zeros", bomb_zeros(), "archive expands past")
    add("bomb-pax-header", bomb_extension_header(tarfile.XHDTYPE), "archive expands past")
    add("bomb-gnu-longname", bomb_extension_header(tarfile.GNUTYPE_LONGNAME),
        "archive expands past")
    return cases
