"""Validators: the checks that turn a pattern's candidate into a confident match.

A pattern finds text of the right shape; most shapes are common (nine digits, forty base64
characters), so a rule names a validator that knows the format: a checksum (Luhn, mod-97,
the NPI and DEA check digits, GitHub's CRC-32), a range (SSN areas, IP octets, calendar
dates, card issuers), entropy, or a structure (a JWT's header, a PEM's END line). A validator
may also move the span to the value itself: read an e-mail's local part back from the ``@``
the pattern anchors on, extend a token over the characters a bounded pattern could not
repeat, or drop the delimiters a pattern matched to find a token's edges.

Every validator has the signature ``(buf, start, end) -> (start, end, factor) | None``:
``buf`` is the scanned bytes, ``[start, end)`` the candidate, and the result the confirmed
span with a factor applied to the rule's confidence, or ``None`` to drop the candidate.
Validators see only bytes and return only offsets: no value leaves them.
"""

from __future__ import annotations

import binascii
import datetime
import ipaddress
from collections.abc import Callable, Mapping
from typing import Final

import orjson

from gatewayd.dlp.entropy import shannon

Confirmed = tuple[int, int, float]
Validator = Callable[[bytes, int, int], Confirmed | None]

DIGITS: Final = frozenset(b"0123456789")
UPPER: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LOWER: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz")
ALNUM: Final = DIGITS | UPPER | LOWER
TOKEN: Final = ALNUM | frozenset(b"_-")
BASE64: Final = ALNUM | frozenset(b"+/")
HEX: Final = DIGITS | frozenset(b"abcdefABCDEF")
EMAIL_LOCAL: Final = ALNUM | frozenset(b"._%+-")
URL_TAIL: Final = ALNUM | frozenset(b"._~:/?#@!$&*+,;=%-")
CONNECTION_STRING: Final = ALNUM | frozenset(b"+/=;:._-")
PEM_BODY: Final = BASE64 | frozenset(b"=\r\n\t :-,\\")

MAX_EXTENT: Final = 4096  # how far a validator extends a span over a token's characters
MAX_PEM: Final = 16 * 1024  # how far a private key's END line is looked for


def extend_right(buf: bytes, end: int, chars: frozenset[int], limit: int = MAX_EXTENT) -> int:
    stop = min(len(buf), end + limit)
    while end < stop and buf[end] in chars:
        end += 1
    return end


def extend_left(buf: bytes, start: int, chars: frozenset[int], limit: int = MAX_EXTENT) -> int:
    stop = max(0, start - limit)
    while start > stop and buf[start - 1] in chars:
        start -= 1
    return start


_NOT_DIGITS: Final = bytes(c for c in range(256) if c not in DIGITS)
# Each ASCII digit as itself, and as the Luhn sum of its double (2*d, less 9 past 9).
_VALUE: Final = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED: Final = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def luhn(digits: bytes) -> bool:
    """The Luhn check over ASCII digits (C-speed: two translations and two sums)."""
    total = sum(digits[-1::-2].translate(_VALUE)) + sum(digits[-2::-2].translate(_DOUBLED))
    return total % 10 == 0


def only_digits(data: bytes) -> bytes:
    return data.translate(None, _NOT_DIGITS)


_DIGIT_OR_SPACE: Final = bytes(c if c in DIGITS else 0x20 for c in range(256))


def has_digit(data: bytes) -> bool:
    """Whether ``data`` holds an ASCII digit: two C-speed passes, where ``only_digits``
    builds its deletion table on every call."""
    return bool(data) and not data.translate(_DIGIT_OR_SPACE).isspace()


def _before(buf: bytes, start: int) -> int:
    return buf[start - 1] if start > 0 else 0


def _after(buf: bytes, end: int) -> int:
    return buf[end] if end < len(buf) else 0


# ---- secrets --------------------------------------------------------------------------------


def standalone(buf: bytes, start: int, end: int) -> Confirmed | None:
    """A token of exactly the matched length: no token character on either side."""
    if _before(buf, start) in TOKEN or _after(buf, end) in TOKEN:
        return None
    return start, end, 1.0


def gcp_api_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    return standalone(buf, start, end)


def stripe_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, ALNUM, 255)
    if _after(buf, end) in TOKEN:
        return None
    return start, end, 1.0


def aws_secret(buf: bytes, start: int, end: int) -> Confirmed | None:
    start, end = start + 1, end - 1  # the pattern matched one delimiter on each side
    value = buf[start:end]
    # Upper case, lower case and digits, each present (bytes.lower and upper change only
    # ASCII letters: C-speed, where a set of the bytes is a Python object per byte).
    if value.lower() == value or value.upper() == value or not has_digit(value):
        return None
    return (start, end, 1.0) if shannon(value) >= 4.0 else None


def azure_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    start += 1
    if _after(buf, end) in BASE64:
        return None
    return (start, end, 1.0) if shannon(buf[start:end]) >= 4.5 else None


_CLIENT_SECRET: Final = ALNUM | frozenset(b"_~.-")


def azure_client_secret(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _before(buf, start) in _CLIENT_SECRET or _after(buf, end) in _CLIENT_SECRET:
        return None
    value = buf[start:end]
    if not has_digit(value) or value.lower() == value.upper():  # digits and letters
        return None
    return (start, end, 1.0) if shannon(value) >= 3.5 else None


def hex_tail(buf: bytes, start: int, end: int) -> Confirmed | None:
    """The span is the 40 hex digits the pattern ends with (a key id after its name)."""
    return end - 40, end, 1.0


def connection_string(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, CONNECTION_STRING, 1024)
    while end > start and buf[end - 1] in b";.":
        end -= 1
    return start, end, 1.0


_BASE62: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int) -> bytes:
    out = bytearray()
    while n:
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return bytes(reversed(out)).rjust(width, b"0")


def github_token(buf: bytes, start: int, end: int) -> Confirmed | None:
    """``gh?_`` + 30 random base62 + their CRC-32 in 6 base62 digits."""
    body, check = buf[start + 4:end - 6], buf[end - 6:end]
    return (start, end, 1.0) if base62(binascii.crc32(body), 6) == check else None


def github_pat(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, ALNUM, 64)
    return (start, end, 1.0) if end - start >= 82 and _after(buf, end) not in TOKEN else None


_GITLAB: Final = TOKEN | frozenset(b".")
_SLACK: Final = ALNUM | frozenset(b"-")


def gitlab_token(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, _GITLAB, 256)
    while buf[end - 1] in b".":
        end -= 1
    return start, end, 1.0


def slack_token(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, _SLACK, 256)
    while buf[end - 1] in b"-":
        end -= 1
    return (start, end, 1.0) if end - start >= 24 else None


def slack_webhook(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, ALNUM, 64)
    for scheme in (b"https://", b"http://"):
        if buf[max(0, start - len(scheme)):start] == scheme:
            start -= len(scheme)
            break
    return start, end, 1.0


def openai_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, TOKEN, 512)
    return (start, end, 1.0) if end - start >= 40 else None


def anthropic_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end, TOKEN, 256)
    n = end - start
    if n < 60:
        return None
    # The documented shape: 108 characters ending in "AA"; others are likely keys too.
    return start, end, 1.0 if (100 <= n <= 120 and buf[end - 2:end] == b"AA") else 0.85


_LOWER_HEX: Final = DIGITS | frozenset(b"abcdef")


def _exact_token(buf: bytes, start: int, prefix: int, length: int,
                 chars: frozenset[int]) -> Confirmed | None:
    """A provider key of a fixed shape: ``prefix`` bytes, then exactly ``length`` of
    ``chars`` with both letters and digits among them, and no token character after."""
    body = start + prefix
    end = extend_right(buf, body, chars, length + 1)
    if end - body != length or _after(buf, end) in TOKEN:
        return None
    value = buf[body:end]
    if value.isdigit() or value.isalpha():
        return None
    return start, end, 1.0


def openrouter_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    return _exact_token(buf, start, len(b"sk-or-v1-"), 64, _LOWER_HEX)


def groq_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    return _exact_token(buf, start, len(b"gsk_"), 52, ALNUM)


def xai_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    return _exact_token(buf, start, len(b"xai-"), 80, ALNUM)


def perplexity_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    return _exact_token(buf, start, len(b"pplx-"), 48, ALNUM)


def _b64url(data: bytes) -> bytes | None:
    data = data.replace(b"-", b"+").replace(b"_", b"/")
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return None


def jwt(buf: bytes, start: int, end: int) -> Confirmed | None:
    """Three base64url parts; the first decodes to a JOSE header with ``alg``."""
    end = extend_right(buf, end, TOKEN, 8192)
    header_end = buf.find(b".", start, end)
    raw = _b64url(buf[start:header_end])
    if raw is None:
        return None
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return None
    return start, end, 1.0


def private_key(buf: bytes, start: int, end: int) -> Confirmed | None:
    """From the BEGIN line to the end of the END line (or of the key body, if cut)."""
    stop = buf.find(b"-----END", end, end + MAX_PEM)
    if stop >= 0:
        close = buf.find(b"-----", stop + 8, stop + 80)
        if close >= 0:
            return start, close + 5, 1.0
    return start, extend_right(buf, end, PEM_BODY, MAX_PEM), 1.0


_PLACEHOLDERS: Final = (b"password", b"passwd", b"pass", b"pwd", b"secret", b"changeme", b"xxx",
                 b"****", b"...", b"your", b"example", b"placeholder", b"redacted", b"<",
                 b"${", b"{", b"%s", b"$(")


_PLACEHOLDER_SET: Final = frozenset(_PLACEHOLDERS)
_PLACEHOLDER_HEADS: Final = (b"<", b"${", b"{", b"%", b"$(", b"your")
_PLACEHOLDER_PARTS: Final = (b"xxxx", b"****", b"changeme", b"placeholder", b"redacted",
                             b"your_", b"your-")


def _placeholder(value: bytes) -> bool:
    low = value.lower()
    # (bytes.find, not ``in``: see ``generic_secret``.)
    return (len(set(low)) <= 2 or low in _PLACEHOLDER_SET or low.startswith(_PLACEHOLDER_HEADS)
            or any(low.find(part) >= 0 for part in _PLACEHOLDER_PARTS))


def database_url(buf: bytes, start: int, end: int) -> Confirmed | None:
    scheme_end = buf.find(b"://", start, end)
    at = buf.rfind(b"@", scheme_end, end)
    colon = buf.find(b":", scheme_end + 3, at)
    if scheme_end < 0 or at < 0 or colon < 0:
        return None
    password = buf[colon + 1:at]
    end = extend_right(buf, end, URL_TAIL, 512)
    while buf[end - 1] in b".,;:?":
        end -= 1
    if end <= at + 1 or buf[at + 1] not in ALNUM:
        return None  # no host
    return start, end, 0.3 if _placeholder(password) else 1.0


_NAME: Final = bytes(sorted(ALNUM | frozenset(b"_.-")))
_QUOTES: Final = b"\"'\\"
_ASSIGN: Final = b" \t\r\n:=>\"'\\"


def _value_start(buf: bytes, start: int, end: int) -> int:
    """Where the value begins after ``name``, ``:``/``=``/``=>``/``:=`` or ``is``/``to``."""
    rest = buf[start:end].lstrip(_NAME).lstrip(_QUOTES)  # past the name and its quotes
    i = end - len(rest)
    j = end - len(rest.lstrip(b" \t"))
    word = buf[j:j + 4].lower()
    if j > i and (word.startswith((b"is ", b"to ")) or word.startswith(b"was ")):
        i = j + word.index(b" ")
    elif j >= end or buf[j] not in b":=":
        return -1
    i = end - len(buf[i:end].lstrip(_ASSIGN))
    return i if i < end else -1


MIN_GENERIC_VALUE: Final = 12


def generic_secret_core(end: int) -> tuple[int, int]:
    """What ``generic_secret``'s span always covers when it confirms a candidate ending at
    ``end``: the value ends one byte before it and is at least ``MIN_GENERIC_VALUE`` long. (A
    match of another class over this part is known to win before the value is looked at.)"""
    return end - 1 - MIN_GENERIC_VALUE, end - 1


def generic_secret(buf: bytes, start: int, end: int) -> Confirmed | None:
    """The value after the key-like name: long, mixed, high-entropy, not a placeholder."""
    low = buf[start:start + 7].lower()
    if low.startswith(b"bearer"):
        value_start = start + 6
        while buf[value_start] in b" \t":
            value_start += 1
    else:
        value_start = _value_start(buf, start, end)
        if value_start < 0:
            return None
    value_end = end - 1  # both patterns end on the one character that stops the value
    value = buf[value_start:value_end]
    # (bytes.find, not ``in``: a bytes operand of ``in`` is first tried as an integer, and
    # the TypeError that raises and clears costs more than the search.)
    if (len(value) < MIN_GENERIC_VALUE or value.startswith((b"/", b"~", b"./"))
            or value.find(b"://") >= 0):
        return None  # short, or a path or a URL
    if value.isdigit() or value.isalpha() or not has_digit(value):
        return None  # a value has letters and digits
    bits = shannon(value)  # before the placeholder words: it costs less than they do
    if bits < 3.0 or _placeholder(value):
        return None
    return value_start, value_end, min(1.0, bits / 4.0)


# ---- PII ------------------------------------------------------------------------------------


_EMAIL_LOCAL_TABLE: Final = bytes(0x61 if c in EMAIL_LOCAL else 0x20 for c in range(256))


def email(buf: bytes, start: int, end: int) -> Confirmed | None:
    """The pattern matched ``@domain``: read the local part back from the ``@``."""
    window = buf[max(0, start - 65):start].translate(_EMAIL_LOCAL_TABLE)
    local_start = start - (len(window) - 1 - window.rfind(b" "))
    local = buf[local_start:start]
    if not local or len(local) > 64 or (local_start and buf[local_start - 1] in EMAIL_LOCAL):
        return None
    if local[0] in b".-+" or local[-1] in b"." or b".." in local:
        return None
    before = _before(buf, local_start)
    if before == 0x3A and buf[max(0, local_start - 7):local_start].lower() != b"mailto:":
        return None  # user:password@host is a URL's credentials, not an address
    if before == 0x2F:  # scheme://user@host
        return None
    return local_start, end, 1.0


# ITU-T E.164 country calling codes.
_CALLING_CODES: Final = frozenset({
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53,
    54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232,
    233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 248, 249, 250, 251,
    252, 253, 254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290,
    291, 297, 298, 299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373,
    374, 375, 376, 377, 378, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501,
    502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
    670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689,
    690, 691, 692, 850, 852, 853, 855, 856, 880, 886, 960, 961, 962, 963, 964, 965, 966, 967,
    968, 970, 971, 972, 973, 974, 975, 976, 977, 992, 993, 994, 995, 996, 998,
})


def _separators_ok(text: bytes) -> bool:
    if text.count(b"(") != text.count(b")") or b"((" in text or b"))" in text:
        return False
    prev_sep = False
    for c in text:
        sep = c in b" .-"
        if sep and prev_sep:
            return False
        prev_sep = sep
    return len({c for c in text if c in b" .-"}) <= 2


def phone_international(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _before(buf, start) in ALNUM:
        return None
    text = buf[start:end].replace(b"(0)", b"")
    if not _separators_ok(text):
        return None
    digits = only_digits(text)
    if not 8 <= len(digits) <= 15:
        return None
    if not any(int(digits[:n]) in _CALLING_CODES for n in (1, 2, 3)):
        return None
    if digits[0] == 0x31 and len(digits) != 11:  # +1: the NANP has ten-digit numbers
        return None
    return start, end, 1.0


def _continues(buf: bytes, start: int, end: int) -> bool:
    """A longer run of digits and separators around the candidate (an id, not a number)."""
    after, before = buf[end:end + 2], buf[max(0, start - 2):start]
    return (len(after) == 2 and after[0] in b"-./" and after[1] in DIGITS) or (
        len(before) == 2 and before[1] in b"-./" and before[0] in DIGITS)


def _phone_digits(buf: bytes, start: int, end: int) -> bytes | None:
    """The digits of a national phone number candidate that stands alone, with balanced
    parentheses and consistent separators; ``None`` otherwise."""
    if _continues(buf, start, end):
        return None
    text = buf[start:end]
    if text.startswith(b"(") != (b")" in text) or not _separators_ok(text):
        return None
    return only_digits(text)


def phone_nanp(buf: bytes, start: int, end: int) -> Confirmed | None:
    digits = _phone_digits(buf, start, end)
    if digits is None or len(digits) != 10 or digits[1:3] == b"11" or digits[4:6] == b"11":
        return None
    return start, end, 1.0


def phone_uk(buf: bytes, start: int, end: int) -> Confirmed | None:
    digits = _phone_digits(buf, start, end)
    if (digits is None or not 10 <= len(digits) <= 11
            or (digits.startswith(b"07") and len(digits) != 11)):
        return None
    return start, end, 1.0


def phone_fr(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _continues(buf, start, end) or not _separators_ok(buf[start:end]):
        return None
    return start, end, 1.0


# Issuer prefixes (as digit-string ranges) and the lengths each issues.
_ISSUERS: Final[tuple[tuple[int, int, frozenset[int]], ...]] = (
    (4, 4, frozenset({16, 19})),  # Visa (13-digit cards are no longer issued)
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (300, 305, frozenset({14, 15, 16, 17, 18, 19})),  # Diners Club
    (3095, 3095, frozenset({14, 15, 16, 17, 18, 19})),
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),
    (38, 39, frozenset({14, 15, 16, 17, 18, 19})),
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
)
_GROUPINGS: Final = ((4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1),
                     (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2))


_ISSUER_TABLE: Final = tuple((len(str(lo)), lo, hi, lengths) for lo, hi, lengths in _ISSUERS)


def _issuer_ok(digits: bytes) -> bool:
    n = len(digits)
    prefixes = (0, int(digits[:1]), int(digits[:2]), int(digits[:3]), int(digits[:4]))
    return any(lo <= prefixes[width] <= hi and n in lengths
               for width, lo, hi, lengths in _ISSUER_TABLE)


def payment_card(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _continues(buf, start, end):
        return None
    text = buf[start:end]
    spaces, dashes = text.count(b" "), text.count(b"-")
    if spaces and dashes:
        return None
    if spaces or dashes:
        groups = tuple(map(len, text.split(b" " if spaces else b"-")))
        if groups not in _GROUPINGS:
            return None
    digits = only_digits(text)
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return None
    if not _issuer_ok(digits) or not luhn(digits):
        return None
    return start, end, 1.0


_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_checksum(code: str) -> bool:
    moved = code[4:] + code[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def iban(buf: bytes, start: int, end: int) -> Confirmed | None:
    text = buf[start:end]
    if b" " in text and any(len(g) != 4 for g in text.split(b" ")[:-1]):
        return None
    code = text.replace(b" ", b"").decode()
    if _IBAN_LENGTHS.get(code[:2]) != len(code) or not iban_checksum(code):
        return None
    return start, end, 1.0


def us_ssn(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _continues(buf, start, end):
        return None
    digits = only_digits(buf[start:end])
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area in (0, 666) or area >= 900 or group == 0 or serial == 0:
        return None
    if digits in (b"078051120", b"219099999", b"123456789"):
        return None  # the advertised and the sequential numbers
    return start, end, 1.0


def ipv4(buf: bytes, start: int, end: int) -> Confirmed | None:
    before = _before(buf, start)
    if before in ALNUM or before in b"._":
        return None
    after = buf[end:end + 2]
    if len(after) == 2 and after[0] == 0x2E and after[1] in ALNUM:
        return None  # one part of a longer dotted name: an OID, a version
    if before in b"vV" or b"version" in buf[max(0, start - 12):start].lower():
        return None
    parts = buf[start:end].split(b".")
    if any(len(p) > 1 and p[0] == 0x30 for p in parts):
        return None
    a, b, c, d = map(int, parts)
    if a > 255 or b > 255 or c > 255 or d > 255:
        return None
    return start, end, 1.0 if _public_v4(a, b) else 0.65


def _public_v4(a: int, b: int) -> bool:
    """Not private, loopback, link-local, shared, multicast or reserved (by the first bytes)."""
    return not (a in (0, 10, 127) or a >= 224 or (a == 169 and b == 254)
                or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168)
                or (a == 100 and 64 <= b <= 127))


_V6_BODY: Final = HEX | frozenset(b":.")
_V6_BEFORE: Final = ALNUM | frozenset(b":_.-")
_V6_AFTER: Final = ALNUM | frozenset(b"_")


def ipv6(buf: bytes, start: int, end: int) -> Confirmed | None:
    end = extend_right(buf, end - 1, _V6_BODY, 64)
    while buf[end - 1] == 0x2E:  # a trailing full stop
        end -= 1
    if _before(buf, start) in _V6_BEFORE:
        return None
    if _after(buf, end) in _V6_AFTER:
        return None
    text = buf[start:end].decode()
    groups = [g for g in text.split(":") if g]
    if len(groups) < 3 and not any(len(g) >= 3 for g in groups):
        return None
    if len(groups) < 2:
        return None
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return start, end, 1.0 if address.is_global else 0.65


_MONTHS: Final = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


def _plausible_date(year: int, month: int, day: int) -> bool:
    if year < 100:
        year += 1900 if year > 30 else 2000
    if not 1900 <= year <= 2099:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def birth_date(buf: bytes, start: int, end: int) -> Confirmed | None:
    text = buf[start:end].decode().lower().replace(",", " ").replace(".", " ")
    words = [w for w in text.replace("/", " ").replace("-", " ").split() if w != "of"]
    if len(words) != 3:
        return None
    if words[0].isdigit() and words[1].isdigit() and words[2].isdigit():
        a, b, c = (int(w) for w in words)
        if len(words[0]) == 4:
            ok = _plausible_date(a, b, c)
        else:  # day-month-year or month-day-year
            ok = _plausible_date(c, b, a) or _plausible_date(c, a, b)
    else:
        names = [w for w in words if not w[0].isdigit()]
        nums = [int(w.rstrip("stndrh")) for w in words if w[0].isdigit()]
        if len(names) != 1 or len(nums) != 2 or names[0][:3] not in _MONTHS:
            return None
        month = _MONTHS[names[0][:3]]
        ok = _plausible_date(max(nums), month, min(nums))
    return (start, end, 1.0) if ok else None


def document_number(buf: bytes, start: int, end: int) -> Confirmed | None:
    """A passport, licence, record or member number: mostly digits, not a year or a run."""
    text = buf[start:end]
    while text and text[-1] in b"-":
        text = text[:-1]
        end -= 1
    digits = only_digits(text)
    if len(digits) < 5 or len(set(digits)) < 2:
        return None
    if _after(buf, end) == 0x2E and _after(buf, end + 1) in DIGITS:
        return None  # a decimal number
    return start, end, 1.0


# ---- PHI ------------------------------------------------------------------------------------


def icd10(buf: bytes, start: int, end: int) -> Confirmed | None:
    if _before(buf, start) in b"-/.$#" or _after(buf, end) in b"-/":
        return None
    return start, end, 1.0


def npi(buf: bytes, start: int, end: int) -> Confirmed | None:
    """Ten digits whose last is the Luhn check digit of ``80840`` + the first nine."""
    if _continues(buf, start, end):
        return None
    return (start, end, 1.0) if luhn(b"80840" + buf[start:end]) else None


def dea(buf: bytes, start: int, end: int) -> Confirmed | None:
    """Two letters and seven digits: (d1+d3+d5) + 2(d2+d4+d6) ends in d7."""
    d = [c - 48 for c in buf[start + 2:end]]
    return (start, end, 1.0) if (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6] \
        else None


def high_entropy(buf: bytes, start: int, end: int) -> Confirmed | None:
    """For operators' token rules: at least 3.5 bits per character."""
    return (start, end, 1.0) if shannon(buf[start:end]) >= 3.5 else None


def luhn_number(buf: bytes, start: int, end: int) -> Confirmed | None:
    """For operators' number rules: the digits pass Luhn."""
    digits = only_digits(buf[start:end])
    return (start, end, 1.0) if len(digits) >= 2 and luhn(digits) else None


VALIDATORS: Final[Mapping[str, Validator]] = {
    f.__name__: f for f in (
        standalone, gcp_api_key, stripe_key, aws_secret, azure_key, azure_client_secret,
        hex_tail, connection_string, github_token, github_pat, gitlab_token, slack_token,
        slack_webhook, openai_key, anthropic_key, openrouter_key, groq_key, xai_key,
        perplexity_key, jwt, private_key, database_url,
        generic_secret, email, phone_international, phone_nanp, phone_uk, phone_fr,
        payment_card, iban, us_ssn, ipv4, ipv6, birth_date, document_number, icd10, npi, dea,
        high_entropy, luhn_number,
    )
}
