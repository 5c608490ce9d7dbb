from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.errors import BundleVerificationError, PolicyError
from gatewayd.policy.archive import build_bundle, read_archive
from gatewayd.policy.bundle import (
    FORMAT,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Archive,
    BundleLimits,
    check_member_name,
    format_timestamp,
    parse_timestamp,
    size_text,
)
from gatewayd.policy.bundle_files import (
    discard_file,
    read_bundle_file,
    stage_file,
    write_bundle_file,
)
from gatewayd.policy.manifest import build_manifest, check_integrity, parse_manifest

from .hostile import Member, documents, raw_tar_gz, repack

T0 = 1_800_000_000.0
DAY = 86400
LIMITS = BundleLimits()


def bundle(**kw: float) -> bytes:
    return build_bundle(
        documents(),
        version=int(kw.get("version", 42)),
        created_at=kw.get("created_at", T0),
        expires_at=kw.get("expires_at", T0 + 30 * DAY),
    )


def manifest_json(**changes: object) -> bytes:
    raw = json.loads(build_manifest(documents(), version=42, created_at=T0,
                                    expires_at=T0 + DAY).encode())
    for key, value in changes.items():
        if value is KeyError:
            del raw[key]
        else:
            raw[key] = value
    return json.dumps(raw).encode()


# --- building -------------------------------------------------------------------------------


def test_bundle_is_deterministic_for_the_same_inputs_and_times() -> None:
    assert bundle() == bundle()
    assert bundle() != bundle(created_at=T0 + 1)
    assert bundle() != bundle(version=43)


def test_manifest_lists_documents_sorted_with_their_sha256() -> None:
    files = read_archive(bundle(), LIMITS).files
    manifest = json.loads(files[MANIFEST_NAME])
    assert manifest == {
        "format": FORMAT,
        "version": 42,
        "created_at": format_timestamp(T0),
        "expires_at": format_timestamp(T0 + 30 * DAY),
        "documents": [
            {"path": p, "sha256": hashlib.sha256(d).hexdigest()}
            for p, d in sorted(documents().items())
        ],
    }
    assert manifest["created_at"] == "2027-01-15T08:00:00Z"
    assert {k: v for k, v in files.items() if k != MANIFEST_NAME} == documents()


def test_archive_members_have_fixed_metadata_and_gzip_time_zero() -> None:
    data = bundle()
    assert data[4:8] == b"\0\0\0\0"  # gzip MTIME
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == [MANIFEST_NAME, "policies/ai.yaml", "policies/more.yml"]
    for info in infos:
        assert info.isreg()
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.mode == 0o644
        assert info.mtime == int(T0)


def test_build_refuses_bad_inputs() -> None:
    with pytest.raises(BundleVerificationError, match="at least one"):
        build_manifest({}, version=1, created_at=T0, expires_at=T0 + 1)
    with pytest.raises(BundleVerificationError, match="expire after"):
        build_manifest(documents(), version=1, created_at=T0, expires_at=T0)
    with pytest.raises(BundleVerificationError, match="positive"):
        build_manifest(documents(), version=0, created_at=T0, expires_at=T0 + 1)
    with pytest.raises(BundleVerificationError, match=re.escape("'..' in path")):
        build_manifest({"../a.yaml": b""}, version=1, created_at=T0, expires_at=T0 + 1)
    with pytest.raises(BundleVerificationError, match=re.escape("not a *.yaml")):
        build_manifest({"a.json": b""}, version=1, created_at=T0, expires_at=T0 + 1)


def test_timestamps_round_trip_and_are_strict() -> None:
    assert parse_timestamp(format_timestamp(T0)) == T0
    for bad in ("2027-01-15 08:00:00Z", "2027-01-15T08:00:00+00:00", "2027-13-01T00:00:00Z",
                "2027-01-15T08:00:00.5Z", ""):
        with pytest.raises(ValueError, match=r"ISO-8601|does not match|out of range"):
            parse_timestamp(bad)


def test_size_text() -> None:
    assert size_text(64 << 20) == "64 MiB"
    assert size_text(1 << 30) == "1 GiB"
    assert size_text(2048) == "2 KiB"
    assert size_text(1000) == "1000 bytes"


# --- reading within bounds ------------------------------------------------------------------


def test_read_round_trips() -> None:
    archive = read_archive(bundle(), LIMITS)
    assert archive.signature_bytes is None
    assert archive.documents == documents()


def test_compressed_size_is_checked_before_anything_else() -> None:
    data = bundle()
    with pytest.raises(BundleVerificationError, match="max_bundle_bytes"):
        read_archive(data, BundleLimits(max_bundle_bytes=len(data) - 1))
    # Garbage over the limit is refused for its size, not parsed.
    with pytest.raises(BundleVerificationError, match="more than the 1 KiB limit"):
        read_archive(b"\x1f\x8b" + bytes(2000), BundleLimits(max_bundle_bytes=1024))


def test_unpacked_size_is_counted_while_streaming() -> None:
    big = {"a.yaml": b"# " + b"x" * 40_000 + b"\n", "b.yaml": b"# " + b"y" * 40_000 + b"\n"}
    data = build_bundle(big, version=1, created_at=T0, expires_at=T0 + DAY)
    assert len(data) < 4096
    with pytest.raises(BundleVerificationError, match="archive expands past 64 KiB"):
        read_archive(data, BundleLimits(max_unpacked_bytes=64 * 1024))
    read_archive(data, BundleLimits(max_unpacked_bytes=128 * 1024))


def test_member_count_is_bounded() -> None:
    many = {f"p{i}.yaml": b"" for i in range(6)}
    data = build_bundle(many, version=1, created_at=T0, expires_at=T0 + DAY)
    with pytest.raises(BundleVerificationError, match="more than 5 documents"):
        read_archive(data, BundleLimits(max_documents=5))
    read_archive(data, BundleLimits(max_documents=6))


def test_directory_members_are_skipped() -> None:
    data = raw_tar_gz([Member("policies", type=tarfile.DIRTYPE), Member("policies/a.yaml", b"x")])
    assert read_archive(data, LIMITS).files == {"policies/a.yaml": b"x"}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a.yaml", None),
        ("policies/team/a.yml", None),
        ("", "empty name"),
        ("/etc/passwd", "absolute path"),
        ("../a.yaml", "'..' in path"),
        ("a/../../b.yaml", "'..' in path"),
        ("a/./b.yaml", "normal form"),
        ("a//b.yaml", "normal form"),
        ("a/", "normal form"),
        ("a\\b.yaml", "backslash"),
        ("a\nb.yaml", "control character"),
        ("a\udcffb.yaml", "not UTF-8"),
        ("x" * 2000, "longer than"),
    ],
)
def test_member_names(name: str, problem: str | None) -> None:
    found = check_member_name(name)
    assert (found is None) if problem is None else (problem in (found or "")), found


# --- the manifest ---------------------------------------------------------------------------


def test_parse_manifest_round_trips() -> None:
    m = build_manifest(documents(), version=42, created_at=T0, expires_at=T0 + DAY)
    assert parse_manifest(m.encode()) == m
    assert m.expired(T0 + DAY)
    assert not m.expired(T0 + DAY - 1)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"format": KeyError}, "missing field format"),
        ({"version": KeyError}, "missing field version"),
        ({"created_at": KeyError}, "missing field created_at"),
        ({"expires_at": KeyError}, "missing field expires_at"),
        ({"documents": KeyError}, "missing field documents"),
        ({"signature": "x"}, "unknown field signature"),
        ({"format": 2}, "format 2 is not supported"),
        ({"format": True}, "format: expected an integer"),
        ({"version": "7"}, "version: expected an integer"),
        ({"version": True}, "version: expected an integer"),
        ({"version": 0}, "version must be positive"),
        ({"version": 7.5}, "version: expected an integer"),
        ({"created_at": 1800000000}, "created_at: expected an ISO-8601"),
        ({"expires_at": "tomorrow"}, "expires_at: 'tomorrow' is not an ISO-8601"),
        ({"expires_at": "2027-01-15T08:00:00Z"}, "expires_at is not after created_at"),
        ({"documents": {}}, "documents: expected a list"),
        ({"documents": []}, "documents: empty"),
        ({"documents": ["a.yaml"]}, "expected exactly path and sha256"),
        ({"documents": [{"path": "a.yaml", "sha256": "0" * 64, "x": 1}]}, "exactly path"),
        ({"documents": [{"path": "a.yaml", "sha256": "0" * 63}]}, "64 lower-case hex"),
        ({"documents": [{"path": "a.yaml", "sha256": "A" * 64}]}, "64 lower-case hex"),
        ({"documents": [{"path": 1, "sha256": "0" * 64}]}, "path: expected a string"),
        ({"documents": [{"path": "../a.yaml", "sha256": "0" * 64}]}, "'..' in path"),
        ({"documents": [{"path": "manifest.json", "sha256": "0" * 64}]}, "not a *.yaml"),
        ({"documents": [{"path": "a.yaml", "sha256": "0" * 64}] * 2}, "listed twice"),
    ],
)
def test_parse_manifest_refuses(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(BundleVerificationError) as err:
        parse_manifest(manifest_json(**changes))
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[]", "expected a JSON object"),
        (b"\xff", "not valid JSON"),
        (b'{"version": 1, "version": 2}', "appears twice"),
        (b'{"version": NaN}', "NaN is not allowed"),
        (b"{" * 100_000, "not valid JSON"),
        (b" " * (5 << 20), "larger than 4 MiB"),
    ],
)
def test_parse_manifest_refuses_bad_json(data: bytes, reason: str) -> None:
    with pytest.raises(BundleVerificationError, match=re.escape("manifest.json")) as err:
        parse_manifest(data)
    assert reason in str(err.value)


def test_integrity_ties_documents_to_the_manifest() -> None:
    files = dict(read_archive(bundle(), LIMITS).files)
    manifest = parse_manifest(files[MANIFEST_NAME])
    assert check_integrity(Archive(files), manifest) == documents()
    # A signature member is neither a document nor unlisted.
    assert check_integrity(Archive({**files, SIGNATURE_NAME: b"{}"}), manifest) == documents()
    with pytest.raises(BundleVerificationError, match=re.escape("unlisted file x.yaml")):
        check_integrity(Archive({**files, "x.yaml": b""}), manifest)
    with pytest.raises(BundleVerificationError, match="sha256 mismatch"):
        check_integrity(Archive({**files, "policies/ai.yaml": b"changed"}), manifest)
    del files["policies/more.yml"]
    with pytest.raises(BundleVerificationError, match=r"more\.yml: listed but missing"):
        check_integrity(Archive(files), manifest)


# --- the fuzz invariant: accepted, or refused with BundleVerificationError, nothing else ----


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_read_or_refused(data: bytes) -> None:
    with contextlib.suppress(BundleVerificationError):
        read_archive(data, LIMITS)
    with contextlib.suppress(BundleVerificationError):
        read_archive(b"\x1f\x8b\x08\x00" + data, LIMITS)


_VALID = bundle()
_RAW_TAR = gzip.decompress(_VALID)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(0, len(_VALID)))
def test_mutated_bundles_are_read_or_refused(pos: int, xor: int, cut: int) -> None:
    flipped = bytearray(_VALID)
    flipped[pos] ^= xor
    for data in (bytes(flipped), _VALID[:cut]):
        with contextlib.suppress(BundleVerificationError):
            read_archive(data, LIMITS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(0, len(_RAW_TAR) - 1), st.integers(1, 255))
def test_mutated_tar_headers_are_read_or_refused(pos: int, xor: int) -> None:
    # Mutate the tar itself (under a valid gzip layer) so the tar reader sees the damage.
    raw = bytearray(_RAW_TAR)
    raw[pos] ^= xor
    try:
        archive = read_archive(gzip.compress(bytes(raw), mtime=0), LIMITS)
    except BundleVerificationError:
        return
    with contextlib.suppress(BundleVerificationError):
        check_integrity(archive, parse_manifest(archive.files.get(MANIFEST_NAME, b"")))


def test_repacking_keeps_members() -> None:
    files = read_archive(_VALID, LIMITS).files
    assert read_archive(repack(files), LIMITS).files == files


# --- files ----------------------------------------------------------------------------------


def test_write_bundle_file_is_atomic_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "bundle.tgz"
    write_bundle_file(target, b"one", mode=0o640)
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    write_bundle_file(target, b"two", mode=0o640)
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["bundle.tgz"]


def test_staged_file_is_invisible_until_installed_and_can_be_discarded(tmp_path: Path) -> None:
    target = tmp_path / "lkg.bundle"
    target.write_bytes(b"old")
    staged = stage_file(target, b"new", mode=0o640)
    assert target.read_bytes() == b"old"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o640
    discard_file(staged)
    assert sorted(os.listdir(tmp_path)) == ["lkg.bundle"]


def test_write_failure_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(PolicyError, match="cannot write"):
        write_bundle_file(blocker / "sub" / "x.tgz", b"data")


def test_read_bundle_file_checks_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.tgz"
    with path.open("wb") as f:
        f.truncate(1 << 40)  # sparse: reading it would take a while
    with pytest.raises(BundleVerificationError, match="more than the 16 MiB limit"):
        read_bundle_file(path, LIMITS)
    with pytest.raises(PolicyError, match="cannot read"):
        read_bundle_file(tmp_path / "missing.tgz", LIMITS)
    small = tmp_path / "small.tgz"
    small.write_bytes(_VALID)
    assert read_bundle_file(small, LIMITS) == _VALID


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=6),
    max_leaves=30,
)
_FIELD_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "format": _JSON | st.just(1),
        "version": _JSON | st.integers(1, 10),
        "created_at": _JSON | st.just("2027-01-15T08:00:00Z"),
        "expires_at": _JSON | st.just("2027-02-15T08:00:00Z"),
        "documents": _JSON | st.just([{"path": "a.yaml", "sha256": "0" * 64}]),
    },
)


@settings(max_examples=300, deadline=None)
@given(_JSON | _FIELD_VALUES)
def test_arbitrary_manifests_are_parsed_or_refused(value: object) -> None:
    with contextlib.suppress(BundleVerificationError):
        parse_manifest(json.dumps(value).encode())
