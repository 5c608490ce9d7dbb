"""``l7.identity`` in the configuration, and the issuers' keys ``load_settings`` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gatewayd.config import L7Section, ProxyIdentitySection, parse_config
from gatewayd.errors import ConfigError
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.assertions import (
    MAX_KEY_FILE_BYTES,
    AssertionSettings,
    load_settings,
    read_key_file,
    verify_proxy_authorization,
)

NOW = 1_800_000_000.0
NO_KEYS: dict[str, ApiKey] = {}
ISSUER = "https://idp.example"


def pem(key: Any) -> bytes:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def section(**issuer: Any) -> ProxyIdentitySection:
    base = {"issuer": ISSUER, "audiences": ["clawgress"], "key_files": ["/k.pem"]}
    return ProxyIdentitySection.model_validate({"jwt_issuers": [{**base, **issuer}]})


def load(files: dict[str, bytes], **issuer: Any) -> AssertionSettings:
    return load_settings(section(**issuer), read=lambda p: files[str(p)])


def config(text: str, base: Path | None = None) -> ProxyIdentitySection:
    return parse_config(text, "test.yaml", base=base).l7.identity


# -- the model ------------------------------------------------------------------------------


def test_defaults() -> None:
    identity = L7Section().identity
    assert identity == ProxyIdentitySection()
    assert identity.allow_basic is True
    assert identity.jwt_issuers == []
    assert identity.spiffe_trust_domains == []
    assert identity.client_ca_files == []
    issuer = section().jwt_issuers[0]
    assert issuer.algorithms == ["ES256", "RS256", "EdDSA"]
    assert (issuer.agent_claim, issuer.agent_prefix, issuer.leeway) == ("sub", "", 30)
    assert issuer.jwks_file is None


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    identity = config(
        """
        l7:
          proxy_tls: true
          identity:
            jwt_issuers:
              - issuer: https://idp.example
                audiences: [clawgress]
                key_files: [keys/idp.pem, /etc/idp2.pem]
                jwks_file: keys/idp.jwks
              - issuer: https://other.example
                audiences: [clawgress]
                jwks_file: /etc/other.jwks
            spiffe_trust_domains: [prod.example]
            client_ca_files: [ca/clients.pem]
        """,
        base=tmp_path,
    )
    first, second = identity.jwt_issuers
    assert first.key_files == [tmp_path / "keys/idp.pem", Path("/etc/idp2.pem")]
    assert first.jwks_file == tmp_path / "keys/idp.jwks"
    assert second.jwks_file == Path("/etc/other.jwks")
    assert identity.client_ca_files == [tmp_path / "ca/clients.pem"]


def test_durations() -> None:
    assert section(leeway="1m").jwt_issuers[0].leeway == 60
    assert section(leeway=0).jwt_issuers[0].leeway == 0
    assert section(leeway="0s").jwt_issuers[0].leeway == 0


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"algorithms": ["none"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"audiences": []}, "audiences"),
        ({"audiences": [""]}, "audiences"),
        ({"issuer": ""}, "issuer"),
        ({"key_files": []}, "needs key_files or a jwks_file"),
        ({"agent_claim": ""}, "agent_claim"),
        ({"leeway": "11m"}, "leeway"),
        ({"leeway": True}, "leeway"),
        ({"leeway": -1}, "leeway"),
        ({"jwks_url": "https://idp.example/jwks"}, "jwks_url"),
    ],
)
def test_invalid_issuers(fields: dict[str, Any], fragment: str) -> None:
    issuer = {"issuer": ISSUER, "audiences": ["clawgress"], "key_files": ["/k.pem"], **fields}
    with pytest.raises(ConfigError, match=fragment):
        parse_config(json.dumps({"l7": {"identity": {"jwt_issuers": [issuer]}}}), "test.yaml")


@pytest.mark.parametrize(
    ("identity", "fragment"),
    [
        ({"spiffe_trust_domains": ["prod.example"]}, "go together"),
        ({"client_ca_files": ["/ca.pem"]}, "go together"),
        ({"spiffe_trust_domains": ["Prod.Example"], "client_ca_files": ["/ca.pem"]},
         "spiffe_trust_domains"),
        ({"spiffe_trust_domains": ["spiffe://prod"], "client_ca_files": ["/ca.pem"]},
         "spiffe_trust_domains"),
        ({"allow_basic": "perhaps"}, "allow_basic"),
        (
            {"jwt_issuers": [{"issuer": ISSUER, "audiences": ["a"], "key_files": ["/k"]}] * 2},
            "configured twice",
        ),
    ],
)
def test_invalid_sections(identity: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(json.dumps({"l7": {"identity": identity}}), "test.yaml")


def test_example_configuration_parses() -> None:
    example = Path(__file__).parents[2] / "examples" / "gateway.yaml"
    parsed = parse_config(example.read_text(encoding="utf-8"), str(example))
    assert parsed.l7.identity == ProxyIdentitySection()


# -- loading keys ---------------------------------------------------------------------------


def test_loads_keys_from_real_files(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "idp.pem").write_bytes(pem(key))
    identity = config(
        """
        l7:
          identity:
            jwt_issuers:
              - issuer: https://idp.example
                audiences: [clawgress]
                algorithms: [ES256]
                key_files: [idp.pem]
        """,
        base=tmp_path,
    )
    loaded = load_settings(identity)
    token = jwt.encode(
        {"iss": ISSUER, "aud": "clawgress", "sub": "a1", "exp": NOW + 60}, key, algorithm="ES256"
    )
    assert verify_proxy_authorization(f"Bearer {token}", loaded, NO_KEYS.get, NOW).agent_id == "a1"


def test_key_kinds() -> None:
    keys = {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }
    expected = {
        "p256": {"ES256"},
        "p384": {"ES384"},
        "p521": {"ES512"},
        "rsa": {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
        "ed25519": {"EdDSA"},
        "ed448": {"EdDSA"},
    }
    algorithms = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384",
                  "PS512", "EdDSA"]
    for name, key in keys.items():
        loaded = load({"/k.pem": pem(key)}, algorithms=algorithms)
        (verifying,) = loaded.issuers[ISSUER].keys
        assert verifying.algorithms == expected[name], name


def test_jwks() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {"keys": [
        {**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ed.public_key())), "kid": "ed"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec",
         "use": "sig"},
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa",
         "alg": "PS256"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "enc",
         "use": "enc"},
    ]}
    loaded = load({"/k.jwks": json.dumps(jwks).encode()}, key_files=[], jwks_file="/k.jwks",
                  algorithms=["EdDSA", "ES256", "PS256"])
    got = {(k.kid, tuple(sorted(k.algorithms))) for k in loaded.issuers[ISSUER].keys}
    assert got == {("ed", ("EdDSA",)), ("ec", ("ES256",)), ("rsa", ("PS256",))}


def test_issuer_without_usable_keys() -> None:
    with pytest.raises(ConfigError, match="none of its keys can check its algorithms"):
        load({"/k.jwks": b'{"keys": []}'}, key_files=[], jwks_file="/k.jwks")


def private_jwk() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    data: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    return data


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("k.pem", b"", "not a PEM public key"),
        ("k.pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
         "not a PEM public key"),
        ("k.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
         "not a PEM public key"),
        ("k.jwks", b"{", "not JSON"),
        ("k.jwks", b"[]", "not a JWKS document"),
        ("k.jwks", b'{"keys": {}}', "not a JWKS document"),
        ("k.jwks", b'{"keys": [1]}', r"keys\[0\] is not a JSON object"),
        ("k.jwks", b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "secret or private"),
        ("k.jwks", b'{"keys": [{"kty": "EC", "crv": "secp256k1", "x": "", "y": ""}]}',
         "unsupported key type"),
        ("k.jwks", b'{"keys": [{"kty": "RSA", "n": "AQAB"}]}', "not a valid RSA key"),
        ("k.jwks", b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": 5}]}',
         "not a valid OKP key"),
    ],
)
def test_bad_key_files(name: str, data: bytes, fragment: str) -> None:
    fields: dict[str, Any] = (
        {"key_files": [f"/{name}"]} if name.endswith(".pem")
        else {"key_files": [], "jwks_file": f"/{name}"}
    )
    with pytest.raises(ConfigError, match=fragment) as info:
        load({f"/{name}": data}, **fields)
    assert ISSUER in str(info.value)
    assert f"/{name}" in str(info.value)


def test_secrets_in_key_files_are_never_quoted() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="private key") as info:
        load({"/k.pem": private_pem})
    assert "MI" not in str(info.value)
    jwk = private_jwk()
    with pytest.raises(ConfigError, match="secret or private") as info:
        load({"/k.jwks": json.dumps({"keys": [jwk]}).encode()}, key_files=[],
             jwks_file="/k.jwks")
    assert jwk["d"] not in str(info.value)
    broken = {**jwk, "kty": "RSA"}
    del broken["d"]
    with pytest.raises(ConfigError, match="not a valid RSA key") as info:
        load({"/k.jwks": json.dumps({"keys": [broken]}).encode()}, key_files=[],
             jwks_file="/k.jwks")
    assert jwk["x"] not in str(info.value)


def test_weak_and_odd_keys() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigError, match="RSA key of 1024 bits"):
        load({"/k.pem": pem(weak)}, algorithms=["RS256"])
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(ConfigError, match="secp256k1"):
        load({"/k.pem": pem(k1)})
    ed = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(ConfigError, match="none of its keys can check its algorithms"):
        load({"/k.pem": pem(ed)}, algorithms=["ES256"])
    jwk = {**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ed.public_key())), "alg": "ES256"}
    with pytest.raises(ConfigError, match="does not fit its key type"):
        load({"/k.jwks": json.dumps({"keys": [jwk]}).encode()}, key_files=[],
             jwks_file="/k.jwks")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.pem"):
        load_settings(section(key_files=[str(tmp_path / "missing.pem")]))
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        load_settings(section(key_files=[str(big)]))
    small = tmp_path / "small.pem"
    small.write_bytes(b"abc")
    assert read_key_file(small) == b"abc"
