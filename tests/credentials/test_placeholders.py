from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.credentials import (
    hash_placeholder,
    new_placeholder,
    placeholder_id_of,
    verify_placeholder,
)
from gatewayd.credentials.placeholders import (
    ID_BYTES,
    PLACEHOLDER_LENGTH,
    SECRET_BYTES,
    is_placeholder_like,
)

from .conftest import T0, counting_bytes


def test_form_of_a_new_placeholder() -> None:
    issued = new_placeholder("openai-prod", "a1", now=T0, label="ci")
    token = issued.token
    assert token.startswith("cg-ph-")
    assert len(token) == PLACEHOLDER_LENGTH == 66
    placeholder_id, secret = token[len("cg-ph-"):].split("-", 1)
    assert placeholder_id == issued.placeholder_id
    assert len(placeholder_id) == 2 * ID_BYTES
    assert len(base64.urlsafe_b64decode(secret + "=")) == SECRET_BYTES
    assert placeholder_id_of(token) == placeholder_id
    record = issued.record
    assert (record.credential_id, record.agent_id, record.created_at, record.label) == (
        "openai-prod", "a1", T0, "ci")
    assert record.revoked_at is None
    assert record.shown == f"cg-ph-{placeholder_id}"
    assert record.hash == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(issued)
    assert token not in repr(record)


def test_fixed_randomness_gives_a_known_placeholder() -> None:
    issued = new_placeholder("c", "a1", now=T0, token_bytes=counting_bytes())
    assert issued.placeholder_id == "0001020304050607"
    assert issued.token.startswith("cg-ph-0001020304050607-CAkKCw")


def test_placeholders_differ() -> None:
    tokens = {new_placeholder("c", "a1", now=T0).token for _ in range(50)}
    assert len(tokens) == 50


def test_invalid_label() -> None:
    with pytest.raises(ValueError, match="invalid label"):
        new_placeholder("c", "a1", now=T0, label="tab\there")


def test_verify() -> None:
    issued = new_placeholder("c", "a1", now=T0)
    other = new_placeholder("c", "a1", now=T0)
    assert verify_placeholder(issued.token, issued.record.hash)
    assert not verify_placeholder(other.token, issued.record.hash)
    assert not verify_placeholder(issued.token, "sha256:00")
    assert hash_placeholder(issued.token) == issued.record.hash


@pytest.mark.parametrize("token", [
    "",
    "cg-ph-",
    "cg-ph-0001020304050607",
    "cg-ph-0001020304050607-" + "A" * 42,  # one short
    "cg-ph-0001020304050607-" + "A" * 44,  # one long
    "cg-ph-0001020304050607_" + "A" * 43,  # wrong separator
    "cg-ph-000102030405060G-" + "A" * 43,  # not hex
    "cg-ph-0001020304O50607-" + "A" * 43,
    "cg-ph-0001020304050607-" + "A" * 42 + "=",  # padding
    "cg-ph-0001020304050607-" + "A" * 42 + "\u00e9",
    "CG-PH-0001020304050607-" + "A" * 43,
    " cg-ph-0001020304050607-" + "A" * 42,
])
def test_malformed_placeholders_have_no_id(token: str) -> None:
    assert placeholder_id_of(token) is None


def test_the_prefix_marks_an_intended_placeholder() -> None:
    assert is_placeholder_like("cg-ph-whatever")
    assert not is_placeholder_like("sk-cg-ph-")


@given(st.text(max_size=80))
def test_id_of_any_text_is_an_id_or_none(text: str) -> None:
    pid = placeholder_id_of(text)
    assert pid is None or (len(pid) == 16 and text == f"cg-ph-{pid}-{text[23:]}")
