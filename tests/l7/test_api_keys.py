from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.l7.api_keys import (
    KEY_ID_BYTES,
    SECRET_BYTES,
    hash_api_key,
    key_id_of,
    new_api_key,
    verify_api_key,
)

T0 = 1_700_000_000.0


def counting_bytes() -> Callable[[int], bytes]:
    """A randomness source that gives 0x00, 0x01, ... (a fixed, known key)."""
    counter = itertools.count()
    return lambda n: bytes(next(counter) % 256 for _ in range(n))


def test_form_of_a_new_key() -> None:
    issued = new_api_key("a1", now=T0, label="ci runner")
    prefix, key_id, secret = issued.token.split("_", 2)
    assert prefix == "cgk"
    assert key_id == issued.key_id == issued.record.key_id
    assert len(key_id) == 2 * KEY_ID_BYTES
    assert int(key_id, 16) >= 0
    assert len(base64.urlsafe_b64decode(secret + "=")) == SECRET_BYTES
    assert ":" not in issued.token
    assert key_id_of(issued.token) == key_id
    record = issued.record
    assert (record.agent_id, record.created_at, record.revoked_at, record.label) == (
        "a1",
        T0,
        None,
        "ci runner",
    )
    assert not record.revoked


def test_the_record_holds_the_hash_never_the_key() -> None:
    issued = new_api_key("a1", now=T0)
    assert issued.record.hash == "sha256:" + hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in repr(issued)
    assert issued.token not in repr(issued.record)
    secret = issued.token.split("_", 2)[2]  # cgk_<key id>_<secret>; "_" may be in the secret
    assert secret not in repr(issued)


def test_fixed_randomness_gives_a_fixed_key() -> None:
    one = new_api_key("a1", now=T0, token_bytes=counting_bytes())
    two = new_api_key("a1", now=T0, token_bytes=counting_bytes())
    assert one.token == two.token
    assert one.key_id == "0001020304050607"


def test_keys_differ() -> None:
    tokens = {new_api_key("a1", now=T0).token for _ in range(50)}
    assert len(tokens) == 50


def test_verify() -> None:
    issued = new_api_key("a1", now=T0)
    assert verify_api_key(issued.token, issued.record.hash)
    other = new_api_key("a1", now=T0)
    assert not verify_api_key(other.token, issued.record.hash)
    assert not verify_api_key(issued.token, "")
    assert not verify_api_key(issued.token, "md5:" + issued.record.hash[7:])
    assert not verify_api_key(issued.token, "sha256:é")


def test_bad_label_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid label"):
        new_api_key("a1", now=T0, label="tab\there")
    with pytest.raises(ValueError, match="invalid label"):
        new_api_key("a1", now=T0, label="x" * 129)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cgk_",
        "cgk_0001020304050607_",
        "cgk_0001020304050607_" + "A" * 42,
        "cgk_0001020304050607_" + "A" * 44,
        "cgk_000102030405060_" + "A" * 43,
        "cgk_000102030405060G_" + "A" * 43,
        "cgk_0001020304050607_" + "A" * 42 + "=",
        "CGK_0001020304050607_" + "A" * 43,
        "cgk_0001020304050607_" + "A" * 43 + "\n",
        "xyz_0001020304050607_" + "A" * 43,
    ],
)
def test_not_a_key(text: str) -> None:
    assert key_id_of(text) is None


@given(st.text())
def test_hash_and_verify_take_any_text(text: str) -> None:
    assert hash_api_key(text).startswith("sha256:")
    assert verify_api_key(text, hash_api_key(text))
    assert isinstance(verify_api_key(text, text), bool)
    key_id_of(text)
