from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gatewayd.errors import BundleVerificationError, PolicyError
from gatewayd.policy.archive import read_archive
from gatewayd.policy.bundle import MANIFEST_NAME, SIGNATURE_NAME, BundleLimits
from gatewayd.policy.signing import (
    ALGORITHM,
    SignatureBlock,
    key_id,
    load_private_key,
    parse_signature_block,
    private_key_pem,
    public_key_pem,
    read_trusted_keys,
    sign_bundle,
    sign_manifest,
    trusted_keys,
    verify_bundle,
)

from .hostile import DAY, corpus, documents, members, repack, valid_bundle

NOW = 1_800_000_000.0
LIMITS = BundleLimits()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def verify(data: bytes, key: Ed25519PrivateKey) -> None:
    verify_bundle(data, keys=trusted_keys([key.public_key()]), limits=LIMITS, now=NOW)


def test_key_id_is_sha256_of_the_raw_public_key(key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    assert key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_signed_bundle_verifies(key: Ed25519PrivateKey) -> None:
    data = valid_bundle(key, version=7, now=NOW)
    verified = verify_bundle(data, keys=trusted_keys([key.public_key()]), limits=LIMITS, now=NOW)
    assert verified.version == 7
    assert verified.key_id == key_id(key.public_key())
    assert verified.documents == documents()
    assert verified.sha256 == hashlib.sha256(data).hexdigest()
    block = json.loads(read_archive(data, LIMITS).files[SIGNATURE_NAME])
    assert set(block) == {"algorithm", "key_id", "signed", "signature"}
    assert block["algorithm"] == ALGORITHM
    assert block["signed"] == MANIFEST_NAME


def test_signature_covers_the_exact_manifest_bytes(key: Ed25519PrivateKey) -> None:
    files = members(valid_bundle(key, version=7, now=NOW))
    block = parse_signature_block(files[SIGNATURE_NAME])
    key.public_key().verify(block.signature, files[MANIFEST_NAME])
    # Same JSON, different bytes (whitespace): no longer the signed manifest.
    files[MANIFEST_NAME] = json.dumps(json.loads(files[MANIFEST_NAME])).encode()
    with pytest.raises(BundleVerificationError, match="signature does not verify with key"):
        verify(repack(files), key)


def test_resigning_replaces_the_signature(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    first = valid_bundle(key, version=7, now=NOW)
    second = sign_bundle(first, other, limits=LIMITS, now=NOW)
    assert list(read_archive(second, LIMITS).files).count(SIGNATURE_NAME) == 1
    with pytest.raises(BundleVerificationError, match="not a trusted key"):
        verify(second, key)
    assert verify_bundle(second, keys=trusted_keys([other.public_key()]), limits=LIMITS,
                         now=NOW).key_id == key_id(other.public_key())
    # Signing is deterministic (Ed25519) and so is the archive.
    assert sign_bundle(second, key, limits=LIMITS, now=NOW) == first


def test_sign_refuses_a_damaged_or_expired_bundle(key: Ed25519PrivateKey) -> None:
    files = members(valid_bundle(None, version=7, now=NOW))
    files["policies/ai.yaml"] += b"# changed\n"
    with pytest.raises(BundleVerificationError, match="sha256 mismatch"):
        sign_bundle(repack(files), key, limits=LIMITS, now=NOW)
    with pytest.raises(BundleVerificationError, match="bundle expired at"):
        sign_bundle(valid_bundle(None, version=7, now=NOW), key, limits=LIMITS, now=NOW + 60 * DAY)


def test_no_trusted_keys_is_a_clear_refusal(key: Ed25519PrivateKey) -> None:
    data = valid_bundle(key, version=7, now=NOW)
    with pytest.raises(BundleVerificationError, match="no trusted keys configured"):
        verify_bundle(data, keys={}, limits=LIMITS, now=NOW)


def test_without_required_signatures_integrity_still_applies(key: Ed25519PrivateKey) -> None:
    unsigned = valid_bundle(None, version=7, now=NOW)
    verified = verify_bundle(unsigned, keys={}, limits=LIMITS, now=NOW, require_signature=False)
    assert verified.key_id is None
    # A bad signature is not looked at, but everything else is.
    for case in corpus(key, active_version=6, now=NOW):
        if case.name.startswith(("signature-", "bad-signature", "unknown-key", "stripped",
                                 "manifest-altered", "older-", "same-", "documents-invalid")):
            continue
        with pytest.raises(BundleVerificationError) as err:
            verify_bundle(case.data, keys={}, limits=LIMITS, now=NOW, require_signature=False)
        assert case.reason in str(err.value), case.name


def test_expiry_can_be_left_to_the_caller(key: Ed25519PrivateKey) -> None:
    data = valid_bundle(key, version=7, now=NOW)
    later = NOW + 31 * DAY
    with pytest.raises(BundleVerificationError, match="bundle expired at"):
        verify_bundle(data, keys=trusted_keys([key.public_key()]), limits=LIMITS, now=later)
    verified = verify_bundle(data, keys=trusted_keys([key.public_key()]), limits=LIMITS,
                             now=later, allow_expired=True)
    assert verified.expired(later)


def test_every_hostile_bundle_is_refused_by_verification(key: Ed25519PrivateKey) -> None:
    keys = trusted_keys([key.public_key()])
    for case in corpus(key, active_version=6, now=NOW):
        if case.name in ("older-version", "same-version", "documents-invalid"):
            # Verification alone accepts these: publish refuses them (see test_activation).
            verify_bundle(case.data, keys=keys, limits=LIMITS, now=NOW)
            continue
        with pytest.raises(BundleVerificationError) as err:
            verify_bundle(case.data, keys=keys, limits=LIMITS, now=NOW)
        assert case.reason in str(err.value), (case.name, str(err.value))


# --- signature blocks -----------------------------------------------------------------------


def block_json(key: Ed25519PrivateKey, **changes: object) -> bytes:
    raw = json.loads(sign_manifest(b"{}", key).encode())
    raw.update(changes)
    return json.dumps(raw).encode()


def test_signature_block_round_trips(key: Ed25519PrivateKey) -> None:
    block = sign_manifest(b"manifest bytes", key)
    assert parse_signature_block(block.encode()) == block
    assert block == SignatureBlock(ALGORITHM, key_id(key.public_key()), MANIFEST_NAME,
                                   key.sign(b"manifest bytes"))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"algorithm": 1}, "algorithm: expected a string"),
        ({"algorithm": "ED25519"}, "not supported"),
        ({"signed": "documents"}, "signed: must be manifest.json"),
        ({"key_id": "ABCDEF0123456789"}, "key_id: expected 16 lower-case hex"),
        ({"key_id": "abc"}, "key_id: expected 16 lower-case hex"),
        ({"signature": "not base64!"}, "signature: not base64"),
        ({"signature": base64.b64encode(b"short").decode()}, "not an Ed25519 signature"),
        ({"signature": None}, "signature: expected a string"),
    ],
)
def test_signature_block_is_strict(key: Ed25519PrivateKey, changes: dict[str, object],
                                   reason: str) -> None:
    with pytest.raises(BundleVerificationError, match=re.escape("signature.json")) as err:
        parse_signature_block(block_json(key, **changes))
    assert reason in str(err.value)


def test_oversized_signature_block_is_refused() -> None:
    with pytest.raises(BundleVerificationError, match="too large"):
        parse_signature_block(b" " * 10_000)


# --- key files ------------------------------------------------------------------------------


def test_read_trusted_keys(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_key_pem(key.public_key()))
    assert list(read_trusted_keys([pub])) == [key_id(key.public_key())]
    assert read_trusted_keys([]) == {}


def test_read_trusted_keys_refuses_bad_files(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    with pytest.raises(BundleVerificationError, match="cannot read"):
        read_trusted_keys([tmp_path / "missing.pub"])
    private = tmp_path / "k.key"
    private.write_bytes(private_key_pem(key))
    with pytest.raises(BundleVerificationError, match="not a PEM public key"):
        read_trusted_keys([private])
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(BundleVerificationError, match="not an Ed25519 public key"):
        read_trusted_keys([ec_pub])
    big = tmp_path / "big.pub"
    big.write_bytes(b"x" * 100_000)
    with pytest.raises(BundleVerificationError, match="too large"):
        read_trusted_keys([big])


def test_private_key_errors_never_quote_the_key(key: Ed25519PrivateKey) -> None:
    pem = private_key_pem(key)
    assert load_private_key(pem, "k").public_key() == key.public_key()
    damaged = pem.replace(b"MC4C", b"MC5C")
    with pytest.raises(PolicyError) as err:
        load_private_key(damaged, "key k.key")
    assert str(err.value) == "key k.key: not an unencrypted PEM private key"
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(PolicyError, match="not an unencrypted PEM private key"):
        load_private_key(encrypted, "k")
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(PolicyError, match="not an Ed25519 key"):
        load_private_key(ec_key, "k")


_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=90) | st.lists(
    st.integers(), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["algorithm", "key_id", "signed", "signature", "x"]),
                       _VALUES | st.sampled_from(["ed25519", "manifest.json", "0" * 16,
                                                  base64.b64encode(bytes(64)).decode()])))
def test_arbitrary_signature_blocks_are_parsed_or_refused(value: dict[str, object]) -> None:
    with contextlib.suppress(BundleVerificationError):
        parse_signature_block(json.dumps(value).encode())
