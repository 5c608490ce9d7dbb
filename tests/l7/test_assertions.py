from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.config import JwtIssuer, ProxyIdentitySection
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.api_keys import IssuedKey, new_api_key
from gatewayd.l7.assertions import (
    Assertion,
    AssertionRefused,
    AssertionSettings,
    load_settings,
    verify_client_certificate,
    verify_proxy_authorization,
)
from gatewayd.l7.assertions import (
    AssertionFlag as Flag,
)

NOW = 1_800_000_000.0
NO_KEYS: dict[str, ApiKey] = {}
ISSUER = "https://idp.example"
AUDIENCE = "clawgress"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- keys and settings --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(key: Any) -> bytes:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def self_signed(key: Any, *, days: int = 365) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp signing")])
    start = dt.datetime.fromtimestamp(NOW - 86400, tz=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def _public_jwk(key: Any) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key())
    if isinstance(key, rsa.RSAPrivateKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    return jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())


@pytest.fixture(scope="module")
def files(
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> dict[Path, bytes]:
    """Key files as ``load_settings`` reads them: an EC public key, an RSA certificate,
    an Ed25519 key in a JWKS."""
    jwks = {"keys": [{**json.loads(_public_jwk(ed_key)), "kid": "ed-1"}]}
    return {
        Path("/keys/ec.pem"): public_pem(ec_key),
        Path("/keys/rsa.crt"): self_signed(rsa_key).public_bytes(serialization.Encoding.PEM),
        Path("/keys/idp.jwks"): json.dumps(jwks).encode(),
    }


def issuer(**fields: Any) -> JwtIssuer:
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE, "other-gateway"],
        "algorithms": ["ES256", "RS256", "PS256", "EdDSA"],
        "key_files": ["/keys/ec.pem", "/keys/rsa.crt"],
        "jwks_file": "/keys/idp.jwks",
    }
    return JwtIssuer.model_validate({**base, **fields})


def make_settings(files: dict[Path, bytes], **fields: Any) -> AssertionSettings:
    section = ProxyIdentitySection.model_validate(
        {"jwt_issuers": [issuer()], **fields}
    )
    return load_settings(section, read=files.__getitem__)


@pytest.fixture(scope="module")
def cfg(files: dict[Path, bytes]) -> AssertionSettings:
    return make_settings(files)


# -- helpers --------------------------------------------------------------------------------


def refused(call: Callable[[], object], flag: Flag, *secrets: str) -> AssertionRefused:
    """``call()`` raises ``AssertionRefused`` with ``flag``, and quotes none of ``secrets``."""
    with pytest.raises(AssertionRefused) as info:
        call()
    err = info.value
    assert err.flag is flag, (err.flag, err.reason)
    assert str(err) == err.reason
    assert err.reason
    for secret in secrets:
        assert secret not in err.reason
    return err


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- Basic: API keys --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, IssuedKey]:
    """a1's key, a1's revoked key, a2's key, and an agent id with colons."""
    return {
        "a1": new_api_key("a1", now=NOW - 100),
        "revoked": new_api_key("a1", now=NOW - 100),
        "a2": new_api_key("a2", now=NOW - 100),
        "colons": new_api_key("team:agent:1", now=NOW - 100),
    }


@pytest.fixture(scope="module")
def lookup(keys: dict[str, IssuedKey]) -> Callable[[str], ApiKey | None]:
    stored = {k.key_id: k.record for k in keys.values()}
    revoked = keys["revoked"].record
    stored[revoked.key_id] = ApiKey(
        revoked.key_id, revoked.agent_id, revoked.hash, revoked.created_at, NOW - 10
    )
    return stored.get


def test_basic(
    cfg: AssertionSettings, keys: dict[str, IssuedKey], lookup: Callable[[str], ApiKey | None]
) -> None:
    key = keys["a1"]
    header = basic("a1", key.token)
    expected = Assertion("a1", "basic", key.key_id)
    assert verify_proxy_authorization(header, cfg, lookup, NOW) == expected
    assert verify_proxy_authorization(header.encode(), cfg, lookup, NOW) == expected
    for variant in (
        header.replace("Basic", "basic"),
        header.replace("Basic", "BASIC"),
        header.replace("Basic ", "Basic    "),
        f"  {header}\t",
    ):
        assert verify_proxy_authorization(variant, cfg, lookup, NOW) == expected


def test_basic_agent_id_with_colons(
    cfg: AssertionSettings, keys: dict[str, IssuedKey], lookup: Callable[[str], ApiKey | None]
) -> None:
    key = keys["colons"]
    got = verify_proxy_authorization(basic("team:agent:1", key.token), cfg, lookup, NOW)
    assert got == Assertion("team:agent:1", "basic", key.key_id)


def test_basic_refusals(
    cfg: AssertionSettings, keys: dict[str, IssuedKey], lookup: Callable[[str], ApiKey | None]
) -> None:
    token = keys["a1"].token
    secret = token.split("_", 2)[2]  # cgk_<key id>_<secret>: the secret may hold "_" too

    def check(header: str | bytes, flag: Flag, fragment: str = "") -> None:
        err = refused(
            lambda: verify_proxy_authorization(header, cfg, lookup, NOW), flag, token, secret
        )
        assert fragment in err.reason

    key_id = keys["a1"].key_id
    unknown = new_api_key("a1", now=NOW).token
    check(basic("a1", unknown), Flag.KEY_UNKNOWN, "unknown")
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    check(basic("a1", wrong_secret), Flag.KEY_INVALID, key_id)
    check(basic("a1", keys["revoked"].token), Flag.KEY_REVOKED, "revoked")
    check(basic("a2", token), Flag.KEY_OF_ANOTHER_AGENT, "not a key of agent 'a2'")
    check(basic("a1", keys["a2"].token), Flag.KEY_OF_ANOTHER_AGENT, "'a1'")
    check(basic("a1", "hunter2"), Flag.MALFORMED, "not an API key")
    check(basic("", token), Flag.AGENT_INVALID, "not an agent id")
    check(basic("a 1", token), Flag.AGENT_INVALID)
    check("Basic " + base64.b64encode(token.encode()).decode(), Flag.MALFORMED, "agent_id:")
    check("Basic a1:" + token, Flag.MALFORMED)  # not base64 at all
    check("Basic " + base64.b64encode(f"a1:{token}".encode())[:-2].decode(), Flag.MALFORMED)
    check("Basic " + base64.b64encode(b"\xff\xfe:" + token.encode()).decode(), Flag.MALFORMED,
          "UTF-8")
    check(basic("a1", token + "\n"), Flag.MALFORMED)


def test_basic_turned_off(
    files: dict[Path, bytes], keys: dict[str, IssuedKey], lookup: Callable[[str], ApiKey | None]
) -> None:
    off = make_settings(files, allow_basic=False)
    refused(
        lambda: verify_proxy_authorization(basic("a1", keys["a1"].token), off, lookup, NOW),
        Flag.SCHEME_DISABLED,
    )


def test_lookup_failure_passes_through(cfg: AssertionSettings, keys: dict[str, IssuedKey]) -> None:
    def down(key_id: str) -> ApiKey | None:
        raise OSError("store unavailable")

    with pytest.raises(OSError, match="store unavailable"):
        verify_proxy_authorization(basic("a1", keys["a1"].token), cfg, down, NOW)


@pytest.mark.parametrize(
    ("header", "flag"),
    [
        ("", Flag.MALFORMED),
        ("Basic", Flag.MALFORMED),
        ("Basic ", Flag.MALFORMED),
        ("Bearer", Flag.MALFORMED),
        ("Basic a b", Flag.MALFORMED),
        ("Basic\tYTE6eA==", Flag.MALFORMED),
        ("Digest username=\"a1\"", Flag.MALFORMED),
        ("Digest abc", Flag.SCHEME_UNKNOWN),
        ("Negotiate YIIBhg==", Flag.SCHEME_UNKNOWN),
        ("Basic YTE6eA==\r\nX-Injected: 1", Flag.MALFORMED),
        ("Basic é", Flag.MALFORMED),
        (b"Basic \xff\xfe", Flag.MALFORMED),
        ("Basic " + "A" * 9000, Flag.MALFORMED),
    ],
)
def test_malformed_headers(cfg: AssertionSettings, header: str | bytes, flag: Flag) -> None:
    refused(lambda: verify_proxy_authorization(header, cfg, NO_KEYS.get, NOW), flag)


# -- Bearer: JWTs -----------------------------------------------------------------------------


def claims(**extra: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "a1", "iat": NOW - 10, "exp": NOW + 300}
    out = {**base, **extra}
    return {k: v for k, v in out.items() if v is not None}


def bearer(key: Any, alg: str = "ES256", headers: dict[str, Any] | None = None,
           **extra: Any) -> str:
    return "Bearer " + jwt.encode(claims(**extra), key, algorithm=alg, headers=headers)


def check_jwt(
    cfg: AssertionSettings, header: str, flag: Flag, fragment: str = "", now: float = NOW
) -> AssertionRefused:
    token = header.removeprefix("Bearer ")
    err = refused(lambda: verify_proxy_authorization(header, cfg, NO_KEYS.get, now), flag, token)
    assert fragment in err.reason, err.reason
    for part in token.split("."):
        if len(part) > 8:
            assert part not in err.reason
    return err


def test_jwt_with_each_key_kind(
    cfg: AssertionSettings,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    expected = Assertion("a1", "jwt", ISSUER)
    for header in (
        bearer(ec_key, "ES256"),
        bearer(rsa_key, "RS256"),
        bearer(rsa_key, "PS256"),
        bearer(ed_key, "EdDSA", headers={"kid": "ed-1"}),
        bearer(ed_key, "EdDSA"),  # no kid: every key of the algorithm is tried
        bearer(ec_key, "ES256", aud=["someone-else", AUDIENCE]),
        bearer(ec_key, "ES256", headers={"kid": "anything"}),  # PEM keys have no kid
    ):
        assert verify_proxy_authorization(header, cfg, NO_KEYS.get, NOW) == expected


def test_jwt_time_is_the_callers(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # Far from the real clock in both directions: only ``now`` decides.
    future = 4_000_000_000.0
    header = bearer(ec_key, iat=future - 5, exp=future + 60)
    assert verify_proxy_authorization(header, cfg, NO_KEYS.get, future).agent_id == "a1"
    past = 1_000_000_000.0
    header = bearer(ec_key, iat=past - 5, exp=past + 60)
    assert verify_proxy_authorization(header, cfg, NO_KEYS.get, past).agent_id == "a1"
    check_jwt(cfg, header, Flag.EXPIRED, now=past + 91)


def test_jwt_expiry_and_leeway(cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey) -> None:
    # The default leeway is 30 seconds.
    ok = verify_proxy_authorization(bearer(ec_key, exp=NOW - 29), cfg, NO_KEYS.get, NOW)
    assert ok.agent_id == "a1"
    check_jwt(cfg, bearer(ec_key, exp=NOW - 30), Flag.EXPIRED, "expired")
    check_jwt(cfg, bearer(ec_key, exp=NOW - 3600), Flag.EXPIRED)
    ok = verify_proxy_authorization(bearer(ec_key, nbf=NOW + 30), cfg, NO_KEYS.get, NOW)
    assert ok.agent_id == "a1"
    check_jwt(cfg, bearer(ec_key, nbf=NOW + 31), Flag.NOT_YET_VALID, "nbf")
    check_jwt(cfg, bearer(ec_key, iat=NOW + 31), Flag.NOT_YET_VALID, "iat")


def test_jwt_without_leeway(files: dict[Path, bytes], ec_key: ec.EllipticCurvePrivateKey) -> None:
    strict = load_settings(
        ProxyIdentitySection(jwt_issuers=[issuer(leeway=0)]), read=files.__getitem__
    )
    check_jwt(strict, bearer(ec_key, exp=NOW), Flag.EXPIRED)
    check_jwt(strict, bearer(ec_key, nbf=NOW + 1), Flag.NOT_YET_VALID)
    assert verify_proxy_authorization(bearer(ec_key, exp=NOW + 1), strict, NO_KEYS.get, NOW)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "soon", True, [NOW]])
def test_jwt_times_must_be_numbers(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, value: Any
) -> None:
    for name in ("exp", "nbf", "iat"):
        check_jwt(cfg, bearer(ec_key, **{name: value}), Flag.CLAIM_INVALID, name)


def test_jwt_audience_and_issuer(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    check_jwt(cfg, bearer(ec_key, aud="billing-api"), Flag.AUDIENCE_INVALID, "audience")
    check_jwt(cfg, bearer(ec_key, aud=["billing-api"]), Flag.AUDIENCE_INVALID)
    check_jwt(cfg, bearer(ec_key, aud=[5]), Flag.AUDIENCE_INVALID)
    check_jwt(cfg, bearer(ec_key, iss="https://evil.example"), Flag.ISSUER_UNKNOWN,
              "'https://evil.example' is not configured")
    check_jwt(cfg, bearer(ec_key, iss=ISSUER + "/"), Flag.ISSUER_UNKNOWN)
    for iss in (5, [ISSUER], {"iss": ISSUER}):
        body = b64url(json.dumps(claims(iss=iss)).encode())
        head = b64url(b'{"alg":"ES256"}')
        check_jwt(cfg, f"Bearer {head}.{body}.AAAA", Flag.CLAIM_INVALID, "'iss'")


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub"])
def test_jwt_required_claims(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, claim: str
) -> None:
    header = "Bearer " + jwt.encode(
        {k: v for k, v in claims().items() if k != claim}, ec_key, algorithm="ES256"
    )
    check_jwt(cfg, header, Flag.CLAIM_MISSING, repr(claim))


def test_jwt_signature(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    check_jwt(cfg, bearer(stranger), Flag.SIGNATURE_INVALID, ISSUER)
    head, _, sig = bearer(ec_key).removeprefix("Bearer ").split(".")
    forged = b64url(json.dumps(claims(sub="a2")).encode())
    check_jwt(cfg, f"Bearer {head}.{forged}.{sig}", Flag.SIGNATURE_INVALID)
    # An RS256 token signed by the right key but presented as PS256.
    rs_head, payload, rs_sig = bearer(rsa_key, "RS256").removeprefix("Bearer ").split(".")
    ps_head = b64url(json.dumps({"alg": "PS256", "typ": "JWT"}).encode())
    check_jwt(cfg, f"Bearer {ps_head}.{payload}.{rs_sig}", Flag.SIGNATURE_INVALID)
    assert rs_head != ps_head


def test_jwt_algorithms(
    files: dict[Path, bytes], cfg: AssertionSettings, rsa_key: rsa.RSAPrivateKey
) -> None:
    es_only = load_settings(
        ProxyIdentitySection(jwt_issuers=[issuer(algorithms=["ES256"])]), read=files.__getitem__
    )
    check_jwt(es_only, bearer(rsa_key, "RS256"), Flag.ALGORITHM_REFUSED, "'RS256'")
    # Not among the issuer's algorithms.
    check_jwt(cfg, bearer(ec.generate_private_key(ec.SECP384R1()), "ES384"),
              Flag.ALGORITHM_REFUSED)
    p384 = load_settings(
        ProxyIdentitySection(jwt_issuers=[issuer(algorithms=["ES256", "ES384"])]),
        read=files.__getitem__,
    )
    check_jwt(p384, bearer(ec.generate_private_key(ec.SECP384R1()), "ES384"),
              Flag.SIGNING_KEY_UNKNOWN, "no ES384 key")


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        (b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()),
         b64url(signature))
    )


@pytest.mark.parametrize("pem_of", ["ec", "rsa"])
def test_hs256_signed_with_the_public_key_is_refused(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey,
    pem_of: str,
) -> None:
    # The classic algorithm confusion: HMAC keyed with the issuer's public key, which
    # anyone can read. PyJWT refuses to make such a token, so it is made by hand.
    secret = public_pem(ec_key if pem_of == "ec" else rsa_key)
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    check_jwt(cfg, f"Bearer {head}.{body}.{b64url(mac)}", Flag.ALGORITHM_REFUSED, "HS256")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS512"])
def test_unsigned_and_hmac_tokens_are_refused(cfg: AssertionSettings, alg: str) -> None:
    check_jwt(cfg, "Bearer " + unsigned({"alg": alg}, claims()), Flag.ALGORITHM_REFUSED)


def test_jwt_kid(files: dict[Path, bytes], ed_key: ed25519.Ed25519PrivateKey) -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    jwks = {"keys": [
        {**json.loads(_public_jwk(ed_key)), "kid": "ed-1"},
        {**json.loads(_public_jwk(other)), "kid": "ed-2"},
    ]}
    only_jwks = load_settings(
        ProxyIdentitySection(jwt_issuers=[issuer(key_files=[], algorithms=["EdDSA"])]),
        read={**files, Path("/keys/idp.jwks"): json.dumps(jwks).encode()}.__getitem__,
    )

    def header(key: Any, kid: str | None) -> str:
        return bearer(key, "EdDSA", headers={"kid": kid} if kid else None)

    assert verify_proxy_authorization(header(ed_key, "ed-1"), only_jwks, NO_KEYS.get, NOW)
    assert verify_proxy_authorization(header(other, "ed-2"), only_jwks, NO_KEYS.get, NOW)
    assert verify_proxy_authorization(header(other, None), only_jwks, NO_KEYS.get, NOW)
    check_jwt(only_jwks, header(other, "ed-1"), Flag.SIGNATURE_INVALID)
    check_jwt(only_jwks, header(other, "ed-9"), Flag.SIGNING_KEY_UNKNOWN, "'ed-9'")
    check_jwt(only_jwks, "Bearer " + unsigned({"alg": "EdDSA", "kid": 7}, claims()),
              Flag.MALFORMED)
    check_jwt(only_jwks, "Bearer " + unsigned({"alg": 7}, claims()), Flag.MALFORMED)


def test_jwt_agent_claim(files: dict[Path, bytes], ec_key: ec.EllipticCurvePrivateKey) -> None:
    custom = load_settings(
        ProxyIdentitySection(
            jwt_issuers=[issuer(agent_claim="agent", agent_prefix="agent:")]
        ),
        read=files.__getitem__,
    )
    header = bearer(ec_key, agent="agent:team:a7")
    got = verify_proxy_authorization(header, custom, NO_KEYS.get, NOW)
    assert got == Assertion("team:a7", "jwt", ISSUER)
    check_jwt(custom, bearer(ec_key), Flag.CLAIM_MISSING, "'agent'")
    check_jwt(custom, bearer(ec_key, agent="a7"), Flag.AGENT_INVALID, "'agent:'")
    check_jwt(custom, bearer(ec_key, agent="agent:"), Flag.AGENT_INVALID)
    check_jwt(custom, bearer(ec_key, agent="agent:a 7"), Flag.AGENT_INVALID)
    check_jwt(custom, bearer(ec_key, agent=["agent:a7"]), Flag.CLAIM_INVALID, "'agent'")
    # PyJWT itself refuses a `sub` that is not a string, whichever claim names the agent.
    check_jwt(custom, bearer(ec_key, agent="agent:a7", sub=5), Flag.CLAIM_INVALID)


def test_sub_with_invalid_agent(cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey) -> None:
    err = check_jwt(cfg, bearer(ec_key, sub="alice@example.com"), Flag.AGENT_INVALID)
    assert "alice" not in err.reason  # the claim may be personal data; not echoed


@pytest.mark.parametrize(
    "token", ["abc", "a.b.c", "a.b", "....", "e30.W10.e30", "eyJhbGciOiJFUzI1NiJ9.W10.AA"]
)
def test_not_a_jwt(cfg: AssertionSettings, token: str) -> None:
    check_jwt(cfg, f"Bearer {token}", Flag.MALFORMED)


def test_bearer_without_issuers(
    files: dict[Path, bytes], ec_key: ec.EllipticCurvePrivateKey
) -> None:
    none = load_settings(ProxyIdentitySection(), read=files.__getitem__)
    check_jwt(none, bearer(ec_key), Flag.SCHEME_DISABLED, "no issuers")


# -- client certificates ------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, self_signed(key)


def client_cert(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    *names: x509.GeneralName,
    start: float = NOW - 3600,
    end: float = NOW + 3600,
) -> bytes:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(start, tz=dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(end, tz=dt.UTC))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def uri(text: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(text)


@pytest.fixture(scope="module")
def spiffe(files: dict[Path, bytes]) -> AssertionSettings:
    section = ProxyIdentitySection(
        spiffe_trust_domains=["prod.example", "lab.example"], client_ca_files=[Path("/ca.pem")]
    )
    return load_settings(section, read=files.__getitem__)


CertCa = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def test_certificate_names_an_agent(spiffe: AssertionSettings, client_ca: CertCa) -> None:
    der = client_cert(client_ca, x509.DNSName("agent.internal"),
                      uri("https://example.com/x"), uri("spiffe://prod.example/agent/a1"))
    assert verify_client_certificate(der, spiffe, NOW) == Assertion(
        "a1", "certificate", "spiffe://prod.example/agent/a1"
    )
    twice = client_cert(client_ca, uri("spiffe://prod.example/agent/a1"),
                        uri("spiffe://lab.example/agent/a1"))
    assert verify_client_certificate(twice, spiffe, NOW) == Assertion(
        "a1", "certificate", "spiffe://prod.example/agent/a1"
    )
    colons = client_cert(client_ca, uri("spiffe://lab.example/agent/team:a2"))
    got = verify_client_certificate(colons, spiffe, NOW)
    assert got is not None and got.agent_id == "team:a2"


@pytest.mark.parametrize(
    "names",
    [
        (),
        (x509.DNSName("a1.prod.example"),),
        (x509.UniformResourceIdentifier("spiffe://other.example/agent/a1"),),
        (x509.UniformResourceIdentifier("spiffe://PROD.example/agent/a1"),),
        (x509.UniformResourceIdentifier("SPIFFE://prod.example/agent/a1"),),
        (x509.UniformResourceIdentifier("spiffe://prod.example/ns/default/sa/a1"),),
        (x509.UniformResourceIdentifier("spiffe://prod.example.evil/agent/a1"),),
        (x509.UniformResourceIdentifier("https://prod.example/agent/a1"),),
        (x509.UniformResourceIdentifier("spiffe://prod.example"),),
    ],
)
def test_certificate_without_identity(
    spiffe: AssertionSettings, client_ca: CertCa, names: tuple[x509.GeneralName, ...]
) -> None:
    assert verify_client_certificate(client_cert(client_ca, *names), spiffe, NOW) is None


@pytest.mark.parametrize(
    "text",
    ["spiffe://prod.example/agent/", "spiffe://prod.example/agent/a1/extra",
     "spiffe://prod.example/agent/-a1", "spiffe://prod.example/agent/a1?x=1"],
)
def test_certificate_with_invalid_agent(
    spiffe: AssertionSettings, client_ca: CertCa, text: str
) -> None:
    der = client_cert(client_ca, uri(text))
    refused(lambda: verify_client_certificate(der, spiffe, NOW), Flag.AGENT_INVALID)


def test_certificate_naming_two_agents(spiffe: AssertionSettings, client_ca: CertCa) -> None:
    der = client_cert(client_ca, uri("spiffe://prod.example/agent/a1"),
                      uri("spiffe://lab.example/agent/a2"))
    err = refused(lambda: verify_client_certificate(der, spiffe, NOW),
                  Flag.CERTIFICATE_AMBIGUOUS)
    assert "a1, a2" in err.reason


def test_certificate_validity(spiffe: AssertionSettings, client_ca: CertCa) -> None:
    name = uri("spiffe://prod.example/agent/a1")
    der = client_cert(client_ca, name, start=NOW, end=NOW + 60)
    assert verify_client_certificate(der, spiffe, NOW) is not None
    assert verify_client_certificate(der, spiffe, NOW + 60) is not None
    refused(lambda: verify_client_certificate(der, spiffe, NOW + 61), Flag.EXPIRED)
    refused(lambda: verify_client_certificate(der, spiffe, NOW - 1), Flag.NOT_YET_VALID)


def test_certificate_garbage(spiffe: AssertionSettings, client_ca: CertCa) -> None:
    der = client_cert(client_ca, uri("spiffe://prod.example/agent/a1"))
    for bad in (b"", b"\x30\x00", der[:-1], der[:40], b"not a certificate"):
        refused(lambda bad=bad: verify_client_certificate(bad, spiffe, NOW),  # type: ignore[misc]
                Flag.CERTIFICATE_INVALID)


def test_certificates_ignored_without_trust_domains(
    cfg: AssertionSettings, client_ca: CertCa
) -> None:
    der = client_cert(client_ca, uri("spiffe://prod.example/agent/a1"))
    assert verify_client_certificate(der, cfg, NOW) is None
    assert verify_client_certificate(b"garbage", cfg, NOW) is None


# -- properties -----------------------------------------------------------------------------


def outcome(call: Callable[[], Assertion | None]) -> Assertion | None:
    """The result of ``call``, ``None`` if it refused: anything else escaping fails."""
    try:
        return call()
    except AssertionRefused as err:
        refusal = err
    assert refusal.flag in Flag
    assert refusal.reason
    return None


SCHEMES = st.sampled_from(["Basic ", "Bearer ", "basic  ", "bearer ", "", " ", "Digest "])


@FUZZ
@given(SCHEMES, st.text())
def test_any_header_text(cfg: AssertionSettings, scheme: str, rest: str) -> None:
    outcome(lambda: verify_proxy_authorization(scheme + rest, cfg, NO_KEYS.get, NOW))


@FUZZ
@given(SCHEMES, st.binary())
def test_any_header_bytes(cfg: AssertionSettings, scheme: str, rest: bytes) -> None:
    outcome(lambda: verify_proxy_authorization(scheme.encode() + rest, cfg, NO_KEYS.get, NOW))


@FUZZ
@given(st.binary())
def test_any_basic_credentials(
    cfg: AssertionSettings, lookup: Callable[[str], ApiKey | None], raw: bytes
) -> None:
    header = "Basic " + base64.b64encode(raw).decode()
    outcome(lambda: verify_proxy_authorization(header, cfg, lookup, NOW))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)
CLAIM_VALUES = st.one_of(JSON, st.just(ISSUER), st.just(AUDIENCE), st.just("a1"),
                         st.just(NOW + 60), st.just(NOW - 60))
CLAIM_NAMES = st.sampled_from(["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "agent"])
CLAIMS = st.dictionaries(
    CLAIM_NAMES | st.text(max_size=5),
    CLAIM_VALUES,
    max_size=8,
)


@FUZZ
@given(
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]) | st.text(max_size=4),
                    st.one_of(JSON, st.sampled_from(["ES256", "EdDSA", "none", "HS256", "ed-1"])),
                    max_size=4),
    CLAIMS,
    st.binary(max_size=80),
)
def test_any_unsigned_jwt(
    cfg: AssertionSettings, head: dict[str, Any], body: dict[str, Any], sig: bytes
) -> None:
    header = "Bearer " + unsigned(head, body, sig)
    assert outcome(lambda: verify_proxy_authorization(header, cfg, NO_KEYS.get, NOW)) is None


@FUZZ
@given(CLAIMS)
def test_any_signed_claims(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, body: dict[str, Any]
) -> None:
    # Signed as raw JWS: jwt.encode itself refuses some of these claims.
    header = "Bearer " + jwt.PyJWS().encode(json.dumps(body).encode(), ec_key, algorithm="ES256")
    got = outcome(lambda: verify_proxy_authorization(header, cfg, NO_KEYS.get, NOW))
    if got is not None:
        assert got == Assertion("a1", "jwt", ISSUER)
        assert body["iss"] == ISSUER and body["sub"] == "a1"


@FUZZ
@given(st.data())
def test_any_mutated_jwt(
    cfg: AssertionSettings, ec_key: ec.EllipticCurvePrivateKey, data: st.DataObject
) -> None:
    token = bearer(ec_key).removeprefix("Bearer ")
    i = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters(codec="ascii"))
    mutated = token[:i] + char + token[i + 1:]
    got = outcome(lambda: verify_proxy_authorization("Bearer " + mutated, cfg, NO_KEYS.get, NOW))
    if mutated != token and got is not None:
        # Only a change that decodes to the same bytes (base64url's spare low bits of the
        # last character) may still verify.
        assert got == Assertion("a1", "jwt", ISSUER)


@FUZZ
@given(st.binary(max_size=2000))
def test_any_certificate_bytes(spiffe: AssertionSettings, der: bytes) -> None:
    outcome(lambda: verify_client_certificate(der, spiffe, NOW))


@FUZZ
@given(st.data())
def test_any_corrupted_certificate(
    spiffe: AssertionSettings, client_ca: CertCa, data: st.DataObject
) -> None:
    der = bytearray(_cert_for_fuzz(client_ca))
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    outcome(lambda: verify_client_certificate(bytes(der), spiffe, NOW))


_FUZZ_CERT: dict[str, bytes] = {}


def _cert_for_fuzz(ca: CertCa) -> bytes:
    if "der" not in _FUZZ_CERT:
        _FUZZ_CERT["der"] = client_cert(ca, uri("spiffe://prod.example/agent/a1"),
                                        uri("spiffe://lab.example/agent/a1"))
    return _FUZZ_CERT["der"]
