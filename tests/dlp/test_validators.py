"""The checks behind the matches: checksums, ranges and span adjustments, on bytes."""

from __future__ import annotations

import random

import pytest

from gatewayd.dlp import validators as v

from .corpus import card, dea, github_token, npi


def check(fn: v.Validator, text: str, start: int = 0, end: int | None = None) -> str | None:
    """Run a validator on ``text`` (padded with NULs as the scanner does); the confirmed text."""
    buf = b"\x00" + text.encode() + b"\x00"
    result = fn(buf, start + 1, (len(text) if end is None else end) + 1)
    return None if result is None else buf[result[0]:result[1]].decode()


def test_luhn() -> None:
    assert v.luhn(b"79927398713")
    assert not v.luhn(b"79927398710")


@pytest.mark.parametrize("seed", range(20))
def test_generated_cards_pass_and_a_changed_digit_fails(seed: int) -> None:
    number = card(random.Random(seed))
    assert check(v.payment_card, number) == number
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert check(v.payment_card, broken) is None


@pytest.mark.parametrize("number", [
    "4111-1111 1111-1111",  # mixed separators
    "41111 11111 11111 1",  # not a card grouping
    "9111111111111111",  # no issuer starts with 9
    "4222222222222",  # 13-digit Visa: no longer issued
])
def test_card_shapes_refused(number: str) -> None:
    assert check(v.payment_card, number) is None


def test_iban_mod97_and_length() -> None:
    assert v.iban_checksum("GB82WEST12345698765432")
    assert check(v.iban, "GB82 WEST 1234 5698 7654 32") == "GB82 WEST 1234 5698 7654 32"
    assert check(v.iban, "GB83WEST12345698765432") is None  # check digits
    assert check(v.iban, "GB82WEST1234569876543") is None  # length for GB
    assert check(v.iban, "GB82 WEST 12 345698765432") is None  # grouping


@pytest.mark.parametrize(("ssn", "ok"), [
    ("123-45-6780", True), ("000-12-3456", False), ("666-12-3456", False),
    ("900-12-3456", False), ("123-00-4567", False), ("123-45-0000", False),
    ("078-05-1120", False),
])
def test_ssn_ranges(ssn: str, ok: bool) -> None:
    assert (check(v.us_ssn, ssn) is not None) is ok


@pytest.mark.parametrize("seed", range(10))
def test_npi_and_dea_check_digits(seed: int) -> None:
    rng = random.Random(seed)
    good_npi, good_dea = npi(rng), dea(rng)
    assert check(v.npi, good_npi) == good_npi
    assert check(v.npi, good_npi[:-1] + str((int(good_npi[-1]) + 1) % 10)) is None
    assert check(v.dea, good_dea) == good_dea
    assert check(v.dea, good_dea[:-1] + str((int(good_dea[-1]) + 1) % 10)) is None


def test_npi_known_value() -> None:
    assert check(v.npi, "1234567893") == "1234567893"  # the CMS example


def test_github_crc32() -> None:
    token = github_token(random.Random(1))
    assert check(v.github_token, token) == token
    assert check(v.github_token, token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_email_reads_the_local_part_back() -> None:
    text = "mail ana.lopez+x@example.org now"
    at = text.index("@")
    assert check(v.email, text, at, text.index(" now")) == "ana.lopez+x@example.org"
    creds = "redis://user:pass@cache.internal"
    assert check(v.email, creds, creds.index("@"), len(creds)) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("8.8.8.8", "8.8.8.8"), ("10.0.0.1", "10.0.0.1"), ("256.1.1.1", None),
    ("01.2.3.4", None),
])
def test_ipv4(text: str, expected: str | None) -> None:
    assert check(v.ipv4, text) == expected


def test_ipv4_confidence_lower_for_private() -> None:
    buf = b"\x0010.1.2.3\x00"
    result = v.ipv4(buf, 1, 9)
    assert result is not None and result[2] < 1.0
    assert v.ipv4(b"\x00version 1.2.3.4\x00", 9, 16) is None


def test_ipv6_needs_a_real_address() -> None:
    assert check(v.ipv6, "2001:db8::1 ", 0, 12) == "2001:db8::1"
    assert check(v.ipv6, "12:30:45 ", 0, 9) is None  # a time
    assert check(v.ipv6, "0a:1b:2c:3d:4e:5f ", 0, 18) is None  # a MAC address


@pytest.mark.parametrize(("date", "ok"), [
    ("1984-03-05", True), ("03/05/1984", True), ("March 5, 1984", True),
    ("5 March 1984", True), ("1984-02-30", False), ("1850-01-01", False),
])
def test_birth_dates(date: str, ok: bool) -> None:
    assert (check(v.birth_date, date) is not None) is ok


def test_has_digit_agrees_with_only_digits() -> None:
    rng = random.Random(7)
    samples = [b"", b" ", b"0", b"abc", b"\t\n9", bytes(range(256))]
    samples += [rng.randbytes(rng.randrange(1, 40)) for _ in range(2000)]
    for data in samples:
        assert v.has_digit(data) is bool(v.only_digits(data)), data


def test_generic_secret_refuses_paths_and_urls() -> None:
    for value in ("/usr/local/bin/k8sTool42x", "~/keys/Zx81kQ0pLm2NvB7", "./Zx81kQ0pLm2NvB7tR5",
                  "https://Zx81kQ0pLm2NvB7.example"):
        text = f'api_key = "{value}" '
        assert check(v.generic_secret, text, 0, len(text) - 1) is None, value
    text = 'api_key = "Zx81kQ0p/Lm2NvB7tR5wY" '  # a slash inside is still a value
    assert check(v.generic_secret, text, 0, len(text) - 1) == "Zx81kQ0p/Lm2NvB7tR5wY"


def test_generic_secret_finds_the_value() -> None:
    text = 'api_key = "Zx81kQ0pLm2NvB7tR5wY" '
    assert check(v.generic_secret, text, 0, len(text) - 1) == "Zx81kQ0pLm2NvB7tR5wY"
    weak = 'password = "get_password_from_env" '
    assert check(v.generic_secret, weak, 0, len(weak) - 1) is None
    placeholder = "api_key: <your-api-key-1234> "
    assert check(v.generic_secret, placeholder, 0, len(placeholder) - 1) is None


def test_database_url_placeholder_is_not_confident() -> None:
    buf = b"\x00postgres://user:password@localhost\x00"
    result = v.database_url(buf, 1, len(buf) - 1)
    assert result is not None and result[2] < 0.5


@pytest.mark.parametrize("password", ["Zxxxx81kQ0", "a****b12", "MyChangeMe9", "xPlaceholder1",
                                      "ReDacted77", "Your_Pw42", "your-pw42"])
def test_database_url_password_with_a_placeholder_word(password: str) -> None:
    buf = f"\x00postgres://user:{password}@db.internal\x00".encode()
    result = v.database_url(buf, 1, len(buf) - 1)
    assert result is not None and result[2] < 0.5
    real = b"\x00postgres://user:Zx81kQ0pLm2N@db.internal\x00"
    confirmed = v.database_url(real, 1, len(real) - 1)
    assert confirmed is not None and confirmed[2] == 1.0


def test_private_key_runs_to_the_end_line() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----"
    text = pem + "\ntrailing words"
    assert check(v.private_key, text, 0, len("-----BEGIN PRIVATE KEY-----")) == pem


GROQ = "gsk_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xY1a"
OPENROUTER = "sk-or-v1-" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("fn", "text", "expected"), [
    (v.groq_key, GROQ, GROQ),
    (v.groq_key, GROQ + " and more", GROQ),  # the span ends where the key does
    (v.groq_key, GROQ[:-1], None),  # one short
    (v.groq_key, GROQ + "b", None),  # one long
    (v.groq_key, GROQ + "_v2", None),  # joined to more of a token
    (v.groq_key, "gsk_" + "a" * 52, None),  # letters only
    (v.groq_key, "gsk_" + "7" * 52, None),  # digits only
    (v.openrouter_key, OPENROUTER, OPENROUTER),
    (v.openrouter_key, OPENROUTER.upper().replace("SK-OR-V1-", "sk-or-v1-"), None),
    (v.xai_key, "xai-" + GROQ[4:] + GROQ[4:32], "xai-" + GROQ[4:] + GROQ[4:32]),
    (v.xai_key, "xai-" + GROQ[4:], None),
    (v.perplexity_key, "pplx-" + GROQ[4:52], "pplx-" + GROQ[4:52]),
    (v.perplexity_key, "pplx-" + GROQ[4:52] + "-", None),
])
def test_provider_keys_have_their_exact_shape(fn: v.Validator, text: str,
                                              expected: str | None) -> None:
    assert check(fn, text, end=20) == expected


def test_every_validator_is_registered_under_its_name() -> None:
    assert all(fn.__name__ == name for name, fn in v.VALIDATORS.items())
