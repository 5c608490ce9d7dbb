"""ja4 and ja4_raw against published fingerprints, the corpus, and the rules of the format.

The published figures are the ones fingerprinting services report for these browsers'
ClientHellos (Chrome since its ML-KEM key share and the new ALPS code point; Firefox with
ECH GREASE); the corpus holds real captures of the same clients, so a match shows the
whole chain (parser, GREASE handling, sorting, hashing) agrees with FoxIO's definition.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.packets import ClientHello, is_grease, ja4, ja4_raw, parse_client_hello

CORPUS_DIR = Path(__file__).parent / "tls_corpus"

CHROME_JA4 = "t13d1516h2_8daaf6152771_d8a2da3f94cd"
CHROME_JA4_RAW = (
    "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    "_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01"
    "_0403,0804,0401,0503,0805,0501,0806,0601"
)
FIREFOX_JA4 = "t13d1717h2_5b57614c22b0_3cbfd9057e0d"

JA4_SHAPE = re.compile(
    r"^[tq](13|12|11|10|s3|s2|d1|d2|d3|00)[di]\d{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$"
)


def hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "0" * 12


def hello(
    *,
    legacy_version: int = 0x0303,
    sni: str | None = "example.com",
    alpn: tuple[bytes, ...] = (b"h2",),
    supported_versions: tuple[int, ...] = (0x0304, 0x0303),
    cipher_suites: tuple[int, ...] = (0x1301, 0x1302),
    extensions: tuple[int, ...] | None = None,
    signature_algorithms: tuple[int, ...] = (0x0403, 0x0804),
) -> ClientHello:
    """A ClientHello value with consistent extensions unless ``extensions`` says otherwise."""
    if extensions is None:
        listed = [0x000D]
        if sni is not None:
            listed.insert(0, 0x0000)
        if alpn:
            listed.append(0x0010)
        if supported_versions:
            listed.append(0x002B)
        extensions = tuple(listed)
    return ClientHello(
        legacy_version=legacy_version,
        sni=sni,
        alpn=alpn,
        supported_versions=supported_versions,
        cipher_suites=cipher_suites,
        extensions=extensions,
        signature_algorithms=signature_algorithms,
        supported_groups=(0x001D,),
        key_share_groups=(0x001D,),
        ech=False,
        size=0,
    )


# --- published fingerprints ------------------------------------------------------------------


def test_chrome_fingerprint_as_published() -> None:
    # Chrome's ClientHello in the order it sends it, GREASE included: the fingerprint
    # sorts, drops GREASE, and leaves server_name and ALPN out of the extension hash.
    chrome = hello(
        cipher_suites=(
            0x3A3A,
            0x1301,
            0x1302,
            0x1303,
            0xC02B,
            0xC02F,
            0xC02C,
            0xC030,
            0xCCA9,
            0xCCA8,
            0xC013,
            0xC014,
            0x009C,
            0x009D,
            0x002F,
            0x0035,
        ),
        extensions=(
            0x8A8A,
            0x002D,
            0x0033,
            0x0010,
            0xFE0D,
            0x0017,
            0x44CD,
            0x0000,
            0x000B,
            0x000A,
            0x002B,
            0xFF01,
            0x0023,
            0x0012,
            0x0005,
            0x000D,
            0x001B,
            0x5A5A,
        ),
        signature_algorithms=(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
        supported_versions=(0xFAFA, 0x0304, 0x0303),
        alpn=(b"h2", b"http/1.1"),
    )
    assert ja4_raw(chrome) == CHROME_JA4_RAW
    assert ja4(chrome) == CHROME_JA4


def test_captured_browsers_match_their_published_fingerprints() -> None:
    chrome = parse_client_hello((CORPUS_DIR / "chrome136.bin").read_bytes())
    firefox = parse_client_hello((CORPUS_DIR / "firefox135.bin").read_bytes())
    assert chrome is not None and firefox is not None
    assert ja4(chrome) == CHROME_JA4
    assert ja4_raw(chrome) == CHROME_JA4_RAW
    assert ja4(firefox) == FIREFOX_JA4


@pytest.mark.parametrize("path", sorted(CORPUS_DIR.glob("*.bin")), ids=lambda p: p.stem)
def test_every_corpus_hello_has_a_well_formed_fingerprint(path: Path) -> None:
    parsed = parse_client_hello(path.read_bytes())
    assert parsed is not None
    value = ja4(parsed)
    assert JA4_SHAPE.match(value), value
    raw_prefix, raw_ciphers, *raw_rest = ja4_raw(parsed).split("_")
    prefix, cipher_hash, extension_hash = value.split("_")
    assert raw_prefix == prefix
    assert cipher_hash == (
        hashlib.sha256(raw_ciphers.encode()).hexdigest()[:12] if raw_ciphers else "0" * 12
    )
    raw_extensions = "_".join(raw_rest)
    assert extension_hash == (
        hashlib.sha256(raw_extensions.encode()).hexdigest()[:12] if raw_extensions else "0" * 12
    )


def test_the_fingerprint_does_not_depend_on_the_name_asked_for() -> None:
    # curl asking for a name and for an address differ only in the SNI flag and count.
    with_name = parse_client_hello((CORPUS_DIR / "curl-h2.bin").read_bytes())
    by_address = parse_client_hello((CORPUS_DIR / "curl-ip-no-sni.bin").read_bytes())
    assert with_name is not None and by_address is not None
    assert ja4(with_name) == "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6"
    assert ja4(by_address) == "t13i3111h2_e8f1e7e78f70_b26ce05bbdd6"


# --- the rules of the prefix -----------------------------------------------------------------


def test_version_from_supported_versions_ignores_grease_and_order() -> None:
    assert ja4(hello(supported_versions=(0x0A0A, 0x0303, 0x0304))).startswith("t13")


def test_version_from_legacy_field_without_supported_versions() -> None:
    assert ja4(hello(supported_versions=(), legacy_version=0x0303)).startswith("t12")
    assert ja4(hello(supported_versions=(), legacy_version=0x0301)).startswith("t10")


def test_unknown_or_only_grease_versions_are_00() -> None:
    assert ja4(hello(supported_versions=(0x7F1C,))).startswith("t00")
    assert ja4(hello(supported_versions=(0x2A2A,))).startswith("t00")


def test_quic_transport_letter() -> None:
    assert ja4(hello(), transport="quic").startswith("q13")


def test_sni_flag_follows_the_extension() -> None:
    assert ja4(hello(sni="a.example"))[3] == "d"
    assert ja4(hello(sni=None))[3] == "i"


def test_counts_leave_grease_out_and_stop_at_99() -> None:
    many = tuple(range(0x0100, 0x0100 + 150))
    value = ja4(hello(cipher_suites=(0x0A0A, *many), extensions=(0x1A1A, *many)))
    assert value[4:8] == "9999"
    few = ja4(hello(cipher_suites=(0x0A0A, 0x1301), extensions=(0x0000, 0x2A2A, 0x0010)))
    assert few[4:8] == "0102"


def test_alpn_ends_or_their_hex_digits() -> None:
    assert ja4(hello(alpn=(b"http/1.1",))).split("_")[0].endswith("h1")
    assert ja4(hello(alpn=(b"h2", b"http/1.1"))).split("_")[0].endswith("h2")
    assert ja4(hello(alpn=())).split("_")[0].endswith("00")
    # A first protocol that does not start and end with a letter or digit: hex ends.
    assert ja4(hello(alpn=(b"\xab\x01\xcd",))).split("_")[0].endswith("ad")
    assert ja4(hello(alpn=(b"x/",))).split("_")[0].endswith("7f")


def test_empty_lists_hash_to_zeros() -> None:
    bare = hello(sni=None, alpn=(), supported_versions=(), extensions=(), signature_algorithms=())
    assert ja4(bare).endswith("_000000000000")
    assert ja4_raw(bare).endswith("_")


def test_signature_algorithms_keep_the_clients_order() -> None:
    raw = ja4_raw(hello(signature_algorithms=(0x0804, 0x0A0A, 0x0403)))
    assert raw.endswith("_0804,0403")


# --- properties ------------------------------------------------------------------------------

u16 = st.integers(min_value=0, max_value=0xFFFF)


@given(
    ciphers=st.lists(u16, min_size=1, max_size=120),
    extensions=st.lists(u16, max_size=120, unique=True),
    algorithms=st.lists(u16, max_size=30),
    versions=st.lists(u16, max_size=6),
    legacy=u16,
    alpn=st.lists(st.binary(min_size=1, max_size=8), max_size=3),
    data=st.data(),
)
def test_fingerprint_shape_and_order_independence(
    ciphers: list[int],
    extensions: list[int],
    algorithms: list[int],
    versions: list[int],
    legacy: int,
    alpn: list[bytes],
    data: st.DataObject,
) -> None:
    value = hello(
        legacy_version=legacy,
        sni="x.example" if 0 in extensions else None,
        alpn=tuple(alpn),
        supported_versions=tuple(versions),
        cipher_suites=tuple(ciphers),
        extensions=tuple(extensions),
        signature_algorithms=tuple(algorithms),
    )
    fingerprint = ja4(value)
    assert JA4_SHAPE.match(fingerprint), fingerprint
    # Shuffling ciphers and extensions (not signature algorithms) changes nothing.
    shuffled = value._replace(
        cipher_suites=tuple(data.draw(st.permutations(ciphers))),
        extensions=tuple(data.draw(st.permutations(extensions))),
    )
    assert ja4(shuffled) == fingerprint
    # Adding GREASE anywhere changes nothing either.
    grease = data.draw(st.sampled_from(range(0x0A0A, 0x10000, 0x1010)))
    assert is_grease(grease)
    greased = value._replace(
        cipher_suites=(grease, *value.cipher_suites),
        signature_algorithms=(*value.signature_algorithms, grease),
    )
    assert ja4(greased) == fingerprint
