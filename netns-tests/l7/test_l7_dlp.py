"""DLP through the lab gateway, and the canary: known fake secrets are sent through the
gateway in requests that are blocked, redacted, malformed, sent to a server that is not
there and cut short; then every file the gateway wrote (audit log, store, engine log with
its stderr, state) and what it answered are searched, and none of the values is found in
plain text."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from l7_support import L7Gateway

# Format-correct, obviously fake values of several classes.
CANARIES = {
    "secrets.aws.access_key_id": "AKIAQYLPMN5HHHFPZAM2",
    "secrets.github.token": "",  # filled below: a token with a valid checksum
    "pii.email": "canary.person@example.org",
    "phi.medical_record_number": "73194402",
}
URL = "https://api.openai.com/v1/chat/completions"


def _github_token() -> str:
    import zlib  # noqa: PLC0415

    body = "CanaryCanaryCanaryCanaryCanary"
    crc = zlib.crc32(body.encode())
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digits = ""
    for _ in range(6):
        crc, r = divmod(crc, 62)
        digits = alphabet[r] + digits
    return f"ghp_{body}{digits}"


CANARIES["secrets.github.token"] = _github_token()


def _chat(text: str) -> str:
    return json.dumps({"model": "lab-model", "messages": [{"role": "user", "content": text}]})


def _post(gateway: L7Gateway, body: str, url: str = URL) -> tuple[int, str]:
    got = gateway.curl("a1", url, "-X", "POST", "-H", "Content-Type: application/json",
                       "--data-binary", body)
    return got.status, got.body


def test_dlp_blocks_redacts_and_leaves_no_canary_behind(gateway: L7Gateway) -> None:
    cursor = gateway.cursor()
    aws, ghp, email, mrn = (CANARIES[k] for k in (
        "secrets.aws.access_key_id", "secrets.github.token", "pii.email",
        "phi.medical_record_number"))
    answers = []
    # Blocked: a secret, named by class in the refusal.
    status, body = _post(gateway, _chat(f"deploy with {aws} and {ghp}"))
    answers.append(body)
    assert status == 403 and "secrets.aws.access_key_id" in body
    # Redacted: the e-mail address never reaches the server; the MRN is hashed in the log.
    status, body = _post(gateway, _chat(f"write to {email} about MRN {mrn}"))
    answers.append(body)
    assert status == 200 and "[REDACTED:pii.email]" in body and email not in body
    # Malformed JSON carrying a secret: refused, not echoed.
    status, body = _post(gateway, '{"messages": [{"content": "' + aws + '"')
    answers.append(body)
    assert status == 403
    # Escaped inside JSON: still found.
    escaped = aws.replace("A", "\\u0041", 1)
    status, body = _post(gateway, '{"model": "m", "messages": [{"role": "user", '
                                  f'"content": "{escaped}"}}]}}')
    answers.append(body)
    assert status == 403
    # A request cut short: the connection ends, nothing is logged of its body.
    with gateway.diverted(80) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                     + _chat(f"key {aws}").encode())
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(15)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    records = cursor.settled("http.request", 4, path="/v1/chat/completions")
    assert [r["status"] for r in records[:4]] == [403, 200, 403, 403]
    assert records[0]["dlp"]["blocked"] == sorted(["secrets.aws.access_key_id",
                                                   "secrets.github.token"])
    assert records[1]["dlp"]["redacted"] == ["pii.email"]
    assert any(m.get("hmac") for m in records[1]["dlp"]["matches"])
    assert "inspection-failed" in records[2]["flags"]
    time.sleep(1.0)  # let the engine write what it writes
    _assert_no_canary(gateway.lab.paths.root, answers)


def _assert_no_canary(root: Path, answers: list[str]) -> None:
    """No canary value, as bytes, in any file under ``root``; none of those that are
    blocked or redacted in what the clients got (the MRN is forwarded: hash-log)."""
    values = [v.encode() for v in CANARIES.values()]
    kept_out = [v for k, v in CANARIES.items() if not k.startswith("phi.")]
    found = []
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") or "audit" in p.name for p in files), files
    for path in files:
        data = path.read_bytes()
        found += [f"{path}: {v.decode()[:6]}..." for v in values if v in data]
    for i, text in enumerate(answers):
        found += [f"answer {i}: {v[:6]}..." for v in kept_out if v in text]
    assert not found, found

