"""No matched value leaves the engine as text: not in reprs, not in exceptions, not in records.

And the fuzz invariant of a parser at an enforcement point: whatever the bytes, ``scan``
returns findings, or (for a body declared JSON) raises ``ParseError`` — nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.dlp import Scanner, enforce
from gatewayd.errors import ParseError

from .conftest import AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, STRIPE_KEY

SECRETS = (AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, STRIPE_KEY, "ana.lopez@example.org",
           "4539578763621486", "1234567893")
KEY = b"gateway-hash-log-key-0123456789"


def text_with_everything() -> str:
    return (f"aws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
            f"token {GITHUB_TOKEN} stripe {STRIPE_KEY} mail ana.lopez@example.org "
            f"card 4539578763621486 NPI 1234567893")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_reprs_and_records_carry_no_value(scanner: Scanner) -> None:
    content = text_with_everything()
    blob = base64.b64encode(content.encode()).decode()
    for body in (content.encode(),
                 json.dumps({"messages": [{"role": "user", "content": content}]}).encode(),
                 json.dumps({"note": blob, AWS_KEY_ID: 1}).encode()):
        found = scanner.scan(body)
        assert len(found.matches) >= 6
        assert_clean(repr(found))
        assert_clean(str(found))
        for m in found.matches:
            assert_clean(repr(m))
            assert_clean(str(m))
        assert_clean(json.dumps(found.records(key=KEY)))
        outcome = enforce(found, {"secrets": "block", "pii": "hash-log", "phi": "alert"},
                          key=KEY)
        assert_clean(repr(outcome))
        assert_clean(outcome.reason)


@pytest.mark.parametrize("broken", [
    lambda c: '{"messages": [{"content": "' + c + '"',  # cut short
    lambda c: '{"messages": [{"content": "' + c + '"}]}}',  # trailing garbage
    lambda c: '{"content": "' + c + '\x01"}',  # a control character in a string
    lambda c: "[" * 5000 + '"' + c + '"' + "]" * 5000,  # nested too deeply
    lambda c: '{"content": "' + c + '", "n": 1' + "0" * 5000 + "}",  # a number too long
])
def test_exceptions_on_malformed_json_carry_no_value(scanner: Scanner, broken: object) -> None:
    assert callable(broken)
    body = broken(text_with_everything().replace("\n", " ")).encode()
    with pytest.raises(ParseError) as err:
        scanner.scan(body, content_type="application/json")
    assert_clean(str(err.value))
    assert_clean(repr(err.value))
    assert err.value.__cause__ is None and err.value.__context__ is None  # no chained doc
    found = scanner.scan(body)  # sniffed, not JSON: scanned as text
    assert found.matches


def test_bad_utf8_in_json(scanner: Scanner) -> None:
    body = b'{"content": "' + AWS_KEY_ID.encode() + b'\xff"}'
    with pytest.raises(ParseError) as err:
        scanner.scan(body, content_type="application/json")
    assert_clean(str(err.value))
    assert scanner.scan(body, content_type="text/plain").classes == (
        "secrets.aws.access_key_id",)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048))
def test_any_bytes_scan(scanner: Scanner, data: bytes) -> None:
    found = scanner.scan(data, content_type="text/plain")
    for m in found.matches:
        assert 0 <= m.span[0] < m.span[1]
    with contextlib.suppress(ParseError):
        scanner.scan(data, content_type="application/json")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=JSON_VALUES, secret=st.sampled_from((AWS_KEY_ID, GITHUB_TOKEN, STRIPE_KEY)))
def test_any_json_scans_and_redacts_to_json(scanner: Scanner, doc: object, secret: str) -> None:
    body = json.dumps({"doc": doc, "note": f"x {secret} y"}).encode()
    found = scanner.scan(body, content_type="application/json")
    assert found.of(["secrets"])
    out = json.loads(found.redact())
    assert secret not in json.dumps(out)
