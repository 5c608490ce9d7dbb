"""Actions: block names classes, redact keeps JSON valid, hash-log is a keyed HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from gatewayd.dlp import Scanner, action_for, enforce, redaction_marker

from .conftest import AWS_KEY_ID, GITHUB_TOKEN

KEY = b"gateway-hash-log-key-0123456789"


def chat(*contents: str) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": c} for c in contents]}).encode()


def test_action_for_takes_the_most_specific_entry() -> None:
    actions = {"secrets": "block", "secrets.jwt": "alert", "pii": "redact"}
    assert action_for("secrets.aws.access_key_id", actions) == "block"
    assert action_for("secrets.jwt", actions) == "alert"
    assert action_for("pii.ip.v4", actions) == "redact"
    assert action_for("phi.npi", actions) is None


def test_redact_json_keeps_it_valid(scanner: Scanner) -> None:
    body = chat(f'key "{AWS_KEY_ID}" and ana@example.org', "nothing here \u00e9")
    found = scanner.scan(body)
    out = found.redact()
    doc = json.loads(out)
    assert doc["messages"][0]["content"] == (
        'key "[REDACTED:secrets.aws.access_key_id]" and [REDACTED:pii.email]')
    assert doc["messages"][1]["content"] == "nothing here \u00e9"
    assert len(out) != len(body)  # the caller sets Content-Length from the new body


def test_redact_only_chosen_classes(scanner: Scanner) -> None:
    found = scanner.scan(chat(f"{AWS_KEY_ID} ana@example.org"))
    doc = json.loads(found.redact(["pii"]))
    assert doc["messages"][0]["content"] == f"{AWS_KEY_ID} [REDACTED:pii.email]"
    assert found.redact(["phi"]) == found.body


def test_redact_text_body(scanner: Scanner) -> None:
    text = f"héllo {AWS_KEY_ID}\nmail ana@example.org!".encode()
    found = scanner.scan(text, content_type="text/plain")
    assert found.redact() == ("héllo [REDACTED:secrets.aws.access_key_id]\n"
                              "mail [REDACTED:pii.email]!").encode()


def test_redact_inside_tool_arguments_and_keys(scanner: Scanner) -> None:
    args = json.dumps({"note": f"use {GITHUB_TOKEN}", "n": 1})
    body = json.dumps({"messages": [{"role": "assistant", "tool_calls": [
        {"function": {"name": "x", "arguments": args}}]}], "meta": {AWS_KEY_ID: True}}).encode()
    out = json.loads(scanner.scan(body).redact())
    inner = json.loads(out["messages"][0]["tool_calls"][0]["function"]["arguments"])
    assert inner == {"note": "use [REDACTED:secrets.github.token]", "n": 1}
    assert out["meta"] == {"[REDACTED:secrets.aws.access_key_id]": True}


def test_redact_encoded_run_as_a_whole(scanner: Scanner) -> None:
    blob = base64.b64encode(f"key {AWS_KEY_ID}".encode()).decode()
    out = json.loads(scanner.scan(chat(f"decode {blob} please")).redact())
    assert out["messages"][0]["content"] == "decode [REDACTED:secrets.aws.access_key_id] please"


def test_redact_a_number(scanner: Scanner) -> None:
    out = scanner.scan(b'{"card": 4539578763621486, "qty": 2}').redact()
    assert json.loads(out) == {"card": "[REDACTED:pii.payment_card]", "qty": 2}


def test_fingerprint_is_hmac_sha256_of_the_value(scanner: Scanner) -> None:
    found = scanner.scan(chat(AWS_KEY_ID))
    match = found.matches[0]
    want = hmac.new(KEY, AWS_KEY_ID.encode(), hashlib.sha256).hexdigest()
    assert found.fingerprint(match, KEY) == want
    with pytest.raises(ValueError, match="at least 16 bytes"):
        found.fingerprint(match, b"short")


def test_enforce(scanner: Scanner) -> None:
    body = chat(f"{AWS_KEY_ID} ana@example.org 10.1.2.3 NPI 1234567893")
    found = scanner.scan(body)
    actions = {"secrets": "hash-log", "pii.email": "redact", "pii.ip": "alert"}
    outcome = enforce(found, actions, key=KEY)
    assert outcome.blocked == () and outcome.alerted == ("pii.ip.v4",)
    assert outcome.redacted == ("pii.email",) and outcome.hashed == ("secrets.aws.access_key_id",)
    assert outcome.body is not None and b"[REDACTED:pii.email]" in outcome.body
    assert AWS_KEY_ID.encode() in outcome.body  # hash-log does not change the body
    by_class = {r["class"]: r for r in outcome.records}
    assert set(by_class) == {"secrets.aws.access_key_id", "pii.email", "pii.ip.v4"}
    assert by_class["secrets.aws.access_key_id"]["hmac"] == hmac.new(
        KEY, AWS_KEY_ID.encode(), hashlib.sha256).hexdigest()
    assert "hmac" not in by_class["pii.email"]
    assert by_class["pii.email"]["path"] == "/messages/0/content"


def test_block_names_classes_and_skips_redaction(scanner: Scanner) -> None:
    found = scanner.scan(chat(f"{AWS_KEY_ID} ana@example.org"))
    outcome = enforce(found, {"secrets": "block", "pii": "redact"})
    assert outcome.blocked == ("secrets.aws.access_key_id",)
    assert outcome.reason == "dlp: secrets.aws.access_key_id"
    assert outcome.body is None
    assert AWS_KEY_ID not in repr(outcome)


def test_enforce_refuses_bad_input(scanner: Scanner) -> None:
    found = scanner.scan(chat(AWS_KEY_ID))
    with pytest.raises(ValueError, match="unknown DLP action"):
        enforce(found, {"secrets": "shred"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="gateway key"):
        enforce(found, {"secrets": "hash-log"})


def test_marker() -> None:
    assert redaction_marker("pii.email") == b"[REDACTED:pii.email]"
