"""Scanning bodies: JSON as decoded strings, encoded carriers, spans, paths and bounds."""

from __future__ import annotations

import base64
import bisect
import dataclasses
import json
import random
from urllib.parse import quote

import pytest

from gatewayd.dlp import MASKED_KEY, Scanner
from gatewayd.dlp.findings import Findings
from gatewayd.dlp.runs import encoded_runs
from gatewayd.dlp.segments import count_at_most, count_below
from gatewayd.errors import ParseError

from .conftest import AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, STRIPE_KEY


def chat(content: str) -> bytes:
    return json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": content}]}).encode()


def classes(scanner: Scanner, body: bytes, content_type: str | None = None) -> list[str]:
    return [m.dlp_class for m in scanner.scan(body, content_type=content_type).matches]


def test_match_in_a_chat_message(scanner: Scanner) -> None:
    body = chat(f"my key is {AWS_KEY_ID}, mail ana@example.org")
    found = scanner.scan(body)
    assert found.classes == ("pii.email", "secrets.aws.access_key_id")
    key = found.of(["secrets"])[0]
    assert key.path == ("messages", 0, "content")
    content = json.loads(body)["messages"][0]["content"]
    assert content[key.span[0]:key.span[1]] == AWS_KEY_ID
    assert found.value(key) == AWS_KEY_ID == key.value(body)
    assert key.pointer() == "/messages/0/content"


def test_json_escapes_cannot_hide_a_match(scanner: Scanner) -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in AWS_KEY_ID)
    body = ('{"messages": [{"role": "user", "content": "key ' + escaped + '"}]}').encode()
    found = scanner.scan(body)
    assert found.classes == ("secrets.aws.access_key_id",)
    assert found.matches[0].span == (4, 24)  # in the decoded string


def test_tool_call_arguments_are_read_as_json(scanner: Scanner) -> None:
    args = json.dumps({"note": "token:\n" + GITHUB_TOKEN.replace("g", "\\u0067", 1)})
    args = args.replace("\\\\u0067", "\\u0067")
    body = json.dumps({"messages": [{"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "save", "arguments": args}}]}]}).encode()
    found = scanner.scan(body)
    assert found.classes == ("secrets.github.token",)
    match = found.matches[0]
    assert match.path == ("messages", 0, "tool_calls", 0, "function", "arguments", "note")
    assert found.value(match) == GITHUB_TOKEN


def test_span_counts_code_points_in_text_bodies(scanner: Scanner) -> None:
    text = f"héllo wörld → {AWS_KEY_ID}"
    found = scanner.scan(text.encode(), content_type="text/plain")
    match = found.matches[0]
    assert match.path is None
    assert text[match.span[0]:match.span[1]] == AWS_KEY_ID


def test_key_value_member_reads_like_text(scanner: Scanner) -> None:
    body = json.dumps({"config": {"client_secret": "Zx81kQ0pLm2NvB7tR5wYq"}}).encode()
    found = scanner.scan(body)
    assert [(m.dlp_class, m.path) for m in found.matches] == [
        ("secrets.generic", ("config", "client_secret"))]


def test_a_secret_used_as_a_key_is_masked_in_paths(scanner: Scanner) -> None:
    body = json.dumps({"tokens": {AWS_KEY_ID: {"owner": "ana@example.org"}}}).encode()
    found = scanner.scan(body)
    paths = {m.dlp_class: m for m in found.matches}
    key = paths["secrets.aws.access_key_id"]
    assert key.in_key and key.path == ("tokens", MASKED_KEY)
    assert paths["pii.email"].path == ("tokens", MASKED_KEY, "owner")
    assert AWS_KEY_ID not in repr(found.matches)


def test_large_integers_are_scanned(scanner: Scanner) -> None:
    assert classes(scanner, b'{"card": 4539578763621486}') == ["pii.payment_card"]


def test_one_level_of_base64_hex_and_url_encoding(scanner: Scanner) -> None:
    hidden = f"aws_secret_access_key = {AWS_SECRET} for {AWS_KEY_ID}"
    for encoded, encoding in (
        (base64.b64encode(hidden.encode()).decode(), "base64"),
        (base64.urlsafe_b64encode(hidden.encode()).decode(), "base64"),
        (hidden.encode().hex(), "hex"),
    ):
        found = scanner.scan(chat(f"please decode {encoded} thanks"))
        assert set(found.classes) == {"secrets.aws.access_key_id",
                                      "secrets.aws.secret_access_key"}, encoding
        assert {m.encoding for m in found.matches} == {encoding}
        assert {found.value(m) for m in found.matches} == {AWS_KEY_ID, AWS_SECRET}
    url = f"https://fake.example/cb?to={quote('ana.lopez@example.org')}&x=1"
    found = scanner.scan(chat(url))
    assert [(m.dlp_class, m.encoding) for m in found.matches] == [("pii.email", "url")]
    assert found.value(found.matches[0]) == "ana.lopez@example.org"


def test_only_one_level_is_decoded(scanner: Scanner) -> None:
    twice = base64.b64encode(base64.b64encode(f"key {AWS_KEY_ID}".encode())).decode()
    assert scanner.scan(chat(twice)).matches == ()


def test_context_cues(scanner: Scanner) -> None:
    assert classes(scanner, chat("passport number X1234567")) == ["pii.passport"]
    assert classes(scanner, chat("order number X1234567")) == []
    assert classes(scanner, chat("the patientMRN is 00482913")) == [
        "phi.medical_record_number"]
    assert classes(scanner, chat("DOB: 1984-03-05")) == ["pii.date_of_birth"]
    assert classes(scanner, chat("invoice date 1984-03-05")) == []


def test_cue_in_the_key_of_a_member(scanner: Scanner) -> None:
    assert classes(scanner, b'{"passport_number": "X1234567"}') == ["pii.passport"]


def test_fallback_gives_way_to_a_specific_class(scanner: Scanner) -> None:
    found = scanner.scan(chat(f'api_key = "{STRIPE_KEY}"'))
    assert found.classes == ("secrets.stripe.key",)


@pytest.mark.parametrize(("text", "specific"), [
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} for {AWS_KEY_ID}", "secrets.aws.secret_access_key"),
    (f"token: {GITHUB_TOKEN}", "secrets.github.token"),
    (f"secret={STRIPE_KEY}", "secrets.stripe.key"),
])
def test_a_fallback_covered_by_a_specific_match_is_not_reported_and_others_are(
        scanner: Scanner, text: str, specific: str) -> None:
    # The value a specific class confirmed is never also reported as a generic secret...
    found = scanner.scan(chat(text))
    assert specific in found.classes and "secrets.generic" not in found.classes
    # ...while a generic secret elsewhere in the same body still is.
    other = "password = Qw7Zr2Lp9Xv4Tn6Bs8Kd3Mf5Hj1Gc0Ya"
    both = scanner.scan(chat(f"{text}\n{other}"))
    assert specific in both.classes and "secrets.generic" in both.classes


def test_contained_match_belongs_to_the_larger_one(scanner: Scanner) -> None:
    url = "postgres://app:Zx81kQ0pLm2NvB7t@10.2.3.4:5432/app"
    assert classes(scanner, chat(f"DATABASE_URL={url}")) == ["secrets.database_url"]


def test_min_confidence() -> None:
    strict = Scanner.from_files(min_confidence=0.7)
    assert strict.scan(b"from 10.1.2.3", content_type="text/plain").matches == ()
    lax = Scanner.from_files(min_confidence=0.5)
    assert lax.scan(b"from 10.1.2.3", content_type="text/plain").classes == ("pii.ip.v4",)


def test_content_type_decides_json(scanner: Scanner) -> None:
    with pytest.raises(ParseError):
        scanner.scan(b'{"messages": [', content_type="application/json")
    found = scanner.scan(b'{"not json ' + AWS_KEY_ID.encode())  # sniffed, not JSON: text
    assert found.classes == ("secrets.aws.access_key_id",) and found.matches[0].path is None
    body = chat(AWS_KEY_ID)
    assert scanner.scan(body, content_type="text/plain").matches[0].path is None
    assert scanner.scan(body, content_type="application/vnd.api+json").matches[0].path


def test_json_the_standard_library_reads(scanner: Scanner) -> None:
    big = b'{"n": 123456789012345678901234567890, "s": "\\ud800 ' + AWS_KEY_ID.encode() + b'"}'
    found = scanner.scan(big, content_type="application/json")
    assert found.classes == ("secrets.aws.access_key_id",)
    start, end = found.matches[0].span  # a lone surrogate is one code point
    assert json.loads(big)["s"][start:end] == AWS_KEY_ID == found.value(found.matches[0])


def test_json_spans_count_code_points(scanner: Scanner) -> None:
    doc = {"clé → key": f"wörld ✓ {AWS_KEY_ID}", f"naïve {GITHUB_TOKEN}": 1}
    found = scanner.scan(json.dumps(doc, ensure_ascii=False).encode(),
                         content_type="application/json")
    by_class = {m.dlp_class: m for m in found.matches}
    aws, github = by_class["secrets.aws.access_key_id"], by_class["secrets.github.token"]
    assert doc["clé → key"][aws.span[0]:aws.span[1]] == AWS_KEY_ID
    assert github.in_key and f"naïve {GITHUB_TOKEN}"[github.span[0]:github.span[1]] == GITHUB_TOKEN


def test_hit_bound_makes_the_result_incomplete() -> None:
    small = Scanner.from_files(max_hits=10)
    found = small.scan(b"ana@example.org " * 100, content_type="text/plain")
    assert not found.complete and found.limit == "hits"
    assert found.matches  # what was found before the bound is kept


def test_carrier_bounds() -> None:
    blobs = " ".join(base64.b64encode(f"note {i} ana@example.org".encode()).decode()
                     for i in range(10))
    few = Scanner.from_files(max_carriers=3)
    found = few.scan(blobs.encode(), content_type="text/plain")
    assert found.limit == "carriers" and len(found.matches) == 3
    tight = Scanner.from_files(max_decoded_bytes=40)
    assert tight.scan(blobs.encode(), content_type="text/plain").limit == "decoded"


def test_adversarial_megabyte_finishes(scanner: Scanner) -> None:
    """Shapes that make naive engines slow or emit a candidate every few bytes.

    (A functional bound: the scan finishes, complete or stopped by its bound; the time it
    takes is measured in tools/bench/dlp.py.)
    """
    mib = 1 << 20
    for unit in (b"a@b.co ", b"4111 1111 1111 1111 ", b"1.2.3.4 ", b"AKIA" * 5 + b" ",
                 b"passport 123456789 ", b"=" * 64, b"%41" * 20, b"9" * 64 + b" ",
                 b"-----BEGIN PRIVATE KEY-----", b'{"a":' * 10):
        body = unit * (mib // len(unit))
        found = scanner.scan(body, content_type="text/plain")
        assert found.complete or found.limit is not None


def test_encoded_runs_over_a_match_count_toward_the_bound_but_are_not_decoded() -> None:
    first = base64.b64encode(b"first run of text").decode()
    second = base64.b64encode(b"second run of text").decode()
    buf = f"\x00{first} and {second}\x00".encode()
    runs, whole = encoded_runs(buf, limit=8)
    assert whole
    assert [(s, e) for s, e, _ in runs] == [(1, 1 + len(first)),
                                           (6 + len(first), 6 + len(first) + len(second))]
    over_first = encoded_runs(buf, limit=8, covered=lambda s, e: s < 10)
    assert over_first == (runs[1:], True)
    # The bound reached with a run left over: said, not skipped in silence.
    assert encoded_runs(buf, limit=1, covered=lambda s, e: s < 10) == ([], False)
    assert encoded_runs(buf, limit=2) == (runs, True)


def test_encoded_runs_bound_counts_escapes_too() -> None:
    run = base64.b64encode(b"first run of text").decode()
    assert encoded_runs(f"{run} a%41b".encode(), limit=1) == ([(0, len(run), "base64")],
                                                              False)
    assert encoded_runs(f"{run} a%41b".encode(), limit=2)[1]


def test_runs_padding_cannot_hide_a_carrier() -> None:
    """Runs that decode to no text (random ids) ahead of a base64 secret: past the bound on
    runs the scan says it is incomplete, rather than complete and empty."""
    rng = random.Random(7)
    padding = " ".join(base64.b64encode(rng.randbytes(24)).decode() for _ in range(13))
    secret = base64.b64encode(f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}".encode()).decode()
    body = f"{padding} {secret}".encode()
    few = Scanner.from_files(max_carriers=3)  # 12 runs looked at
    found = few.scan(body, content_type="text/plain")
    assert not found.complete and found.limit == "carriers"
    assert not found.matches
    enough = Scanner.from_files(max_carriers=4)  # 16 runs: the secret's is reached
    found = enough.scan(body, content_type="text/plain")
    assert found.complete
    assert found.classes == ("secrets.aws.access_key_id",)
    assert found.matches[0].encoding == "base64"


def test_count_below_and_at_most_are_bisect() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        values = sorted(rng.randrange(-5, 40) for _ in range(rng.randrange(0, 12)))
        x = rng.randrange(-8, 44)
        assert count_below(values, x) == bisect.bisect_left(values, x), (values, x)
        assert count_at_most(values, x) == bisect.bisect_right(values, x), (values, x)


def test_a_scan_gives_findings_as_the_dataclass_would(scanner: Scanner) -> None:
    body = json.dumps({"messages": [{"content": f"key {AWS_KEY_ID}"}]}).encode()
    found = scanner.scan(body, content_type="application/json")
    made = Findings(found.matches, found.complete, found.limit, found.body, found.layout,
                    found.placed)
    assert found.matches and found == made and repr(found) == repr(made)
    assert hash(found) == hash(made)
    assert found.body == body and found.placed == made.placed
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.complete = False  # type: ignore[misc]
