"""Who sent a proxy request, by what it carries: ``Proxy-Authorization`` or a client
certificate. The engine compares the answer with the source's lease itself.

* ``verify_proxy_authorization(value, settings, keys, now)``: ``Basic
  base64(agent_id:api_key)`` with a key from ``clawgress agent key create``, or ``Bearer
  <JWT>`` from a configured issuer.
* ``verify_client_certificate(der, settings, now)``: a URI SAN
  ``spiffe://<trust domain>/agent/<agent id>`` in an accepted trust domain. The TLS layer
  has verified the chain against ``l7.identity.client_ca_files``; this reads the name.

Each returns an ``Assertion`` or raises ``AssertionRefused``, whose ``flag`` goes into the
audit record and whose ``reason`` says what was wrong without the key, token or secret.
Nothing else escapes, whatever the input.

Pure: the header, the certificate, the settings, the API keys (a lookup by key id) and
the time are arguments. The only IO is ``load_settings`` reading the issuers' key files,
once, when the configuration is loaded.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning

from gatewayd.config import JwtIssuer, ProxyIdentitySection
from gatewayd.errors import ClawgressError, ConfigError
from gatewayd.identity.names import check_name
from gatewayd.identity.registry import ApiKey
from gatewayd.l7.api_keys import key_id_of, verify_api_key

# A Proxy-Authorization value longer than this is refused before it is decoded.
DEFAULT_MAX_ASSERTION_BYTES = 8 * 1024
# Key files (PEM, JWKS) larger than this are refused.
MAX_KEY_FILE_BYTES = 1024 * 1024
MIN_RSA_BITS = 2048

Method = Literal["basic", "jwt", "certificate"]
PublicKey = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
# How the engine finds a stored key by its id: ``registry.api_keys_by_id().get`` fits.
KeyLookup = Callable[[str], ApiKey | None]

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_JWK_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
# RFC 7235: an auth-scheme is a token; its credentials here are a token68.
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_SPIFFE = "spiffe://"
_AGENT_PATH = "agent/"


class AssertionFlag(StrEnum):
    """Why an assertion was refused, as the audit record flags it."""

    MALFORMED = "assertion-malformed"
    SCHEME_UNKNOWN = "assertion-scheme-unknown"
    SCHEME_DISABLED = "assertion-scheme-disabled"
    KEY_UNKNOWN = "assertion-key-unknown"
    KEY_INVALID = "assertion-key-invalid"
    KEY_REVOKED = "assertion-key-revoked"
    KEY_OF_ANOTHER_AGENT = "assertion-key-of-another-agent"
    ISSUER_UNKNOWN = "assertion-issuer-unknown"
    ALGORITHM_REFUSED = "assertion-algorithm-refused"
    SIGNING_KEY_UNKNOWN = "assertion-signing-key-unknown"
    SIGNATURE_INVALID = "assertion-signature-invalid"
    EXPIRED = "assertion-expired"
    NOT_YET_VALID = "assertion-not-yet-valid"
    AUDIENCE_INVALID = "assertion-audience-invalid"
    CLAIM_MISSING = "assertion-claim-missing"
    CLAIM_INVALID = "assertion-claim-invalid"
    AGENT_INVALID = "assertion-agent-invalid"
    CERTIFICATE_INVALID = "assertion-certificate-invalid"
    CERTIFICATE_AMBIGUOUS = "assertion-certificate-ambiguous"


class AssertionRefused(ClawgressError):
    """An assertion that names no agent: ``flag`` for the audit record, ``reason`` for
    people (also ``str(err)``). Neither holds the key, the token or a secret."""

    def __init__(self, flag: AssertionFlag, reason: str) -> None:
        super().__init__(reason)
        self.flag = flag
        self.reason = reason


@dataclass(frozen=True)
class Assertion:
    """An agent named by a request, how, and by what: the API key's id (``basic``), the
    JWT's issuer (``jwt``) or the certificate's SPIFFE ID (``certificate``)."""

    agent_id: str
    method: Method
    credential: str


@dataclass(frozen=True)
class VerifyingKey:
    """A public key of an issuer, the algorithms it can check, its JWKS ``kid`` if any."""

    key: PublicKey
    algorithms: frozenset[str]
    kid: str | None = None


@dataclass(frozen=True)
class IssuerSettings:
    issuer: str
    audiences: tuple[str, ...]
    algorithms: frozenset[str]
    keys: tuple[VerifyingKey, ...]
    agent_claim: str = "sub"
    agent_prefix: str = ""
    leeway: int = 0


@dataclass(frozen=True)
class AssertionSettings:
    """What ``l7.identity`` says, with the issuers' keys loaded (``load_settings``)."""

    allow_basic: bool = True
    issuers: Mapping[str, IssuerSettings] = field(default_factory=dict)
    trust_domains: frozenset[str] = frozenset()
    max_bytes: int = DEFAULT_MAX_ASSERTION_BYTES


# -- Proxy-Authorization -------------------------------------------------------------------


def verify_proxy_authorization(
    value: bytes | str, settings: AssertionSettings, keys: KeyLookup, now: float
) -> Assertion:
    """The agent a ``Proxy-Authorization`` value names; ``AssertionRefused`` otherwise.

    ``keys`` finds stored API keys by id (revoked ones included, to say so); an exception
    it raises (the store is down) is the caller's to handle and passes through.
    """
    if len(value) > settings.max_bytes:
        raise _refuse(AssertionFlag.MALFORMED, f"longer than {settings.max_bytes} bytes")
    if isinstance(value, bytes):
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise _refuse(AssertionFlag.MALFORMED, "not ASCII") from None
    elif value.isascii():
        text = value
    else:
        raise _refuse(AssertionFlag.MALFORMED, "not ASCII")
    scheme, _, credentials = text.strip(" \t").partition(" ")
    credentials = credentials.lstrip(" ")
    if not _SCHEME.fullmatch(scheme) or not _TOKEN68.fullmatch(credentials):
        raise _refuse(AssertionFlag.MALFORMED, "expected '<scheme> <credentials>'")
    match scheme.lower():
        case "basic":
            return _basic(credentials, settings, keys)
        case "bearer":
            return _bearer(credentials, settings, now)
    raise _refuse(
        AssertionFlag.SCHEME_UNKNOWN, f"scheme {scheme[:20]!r} is not accepted (Basic or Bearer)"
    )


def _refuse(flag: AssertionFlag, reason: str) -> AssertionRefused:
    return AssertionRefused(flag, f"Proxy-Authorization: {reason}")


def _basic(credentials: str, settings: AssertionSettings, keys: KeyLookup) -> Assertion:
    if not settings.allow_basic:
        raise _refuse(AssertionFlag.SCHEME_DISABLED, "Basic (API keys) is turned off")
    try:
        text = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise _refuse(
            AssertionFlag.MALFORMED, "Basic credentials are not UTF-8 in base64"
        ) from None
    # The last ':', not the first (RFC 7617): an agent id may hold ':' but a key never does.
    agent_id, colon, token = text.rpartition(":")
    if not colon:
        raise _refuse(AssertionFlag.MALFORMED, "Basic credentials are not agent_id:api_key")
    try:
        check_name("agent id", agent_id)
    except ValueError:
        raise _refuse(AssertionFlag.AGENT_INVALID, "the Basic user is not an agent id") from None
    key_id = key_id_of(token)
    if key_id is None:
        raise _refuse(AssertionFlag.MALFORMED, "the Basic password is not an API key (cgk_...)")
    stored = keys(key_id)
    if stored is None:
        raise _refuse(AssertionFlag.KEY_UNKNOWN, f"API key {key_id} is unknown")
    # The secret is checked before anything about the key is told: its id alone (which
    # audit records show) must not reveal whether it is revoked or whose it is.
    if not verify_api_key(token, stored.hash):
        raise _refuse(AssertionFlag.KEY_INVALID, f"API key {key_id}: wrong secret")
    if stored.revoked:
        raise _refuse(AssertionFlag.KEY_REVOKED, f"API key {key_id} is revoked")
    if stored.agent_id != agent_id:
        raise _refuse(
            AssertionFlag.KEY_OF_ANOTHER_AGENT,
            f"API key {key_id} is not a key of agent {agent_id!r}",
        )
    return Assertion(agent_id, "basic", key_id)


# -- JWT -------------------------------------------------------------------------------------

# PyJWT reads the system clock for exp, nbf and iat, so those are turned off here and
# checked against ``now`` by ``_check_times``, with PyJWT's rules.
_UNVERIFIED: Any = {
    "verify_signature": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}
_VERIFIED: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": True,
    "verify_iss": True,
    "require": ["exp", "iss", "aud"],
}


def _bearer(token: str, settings: AssertionSettings, now: float) -> Assertion:
    if not settings.issuers:
        raise _refuse(AssertionFlag.SCHEME_DISABLED, "Bearer (JWT) has no issuers configured")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options=_UNVERIFIED)
    except jwt.PyJWTError:
        raise _refuse(AssertionFlag.MALFORMED, "the Bearer token is not a JWT") from None
    iss = unverified.get("iss")
    if iss is None:
        raise _refuse(AssertionFlag.CLAIM_MISSING, "JWT has no 'iss' claim")
    if not isinstance(iss, str):
        raise _refuse(AssertionFlag.CLAIM_INVALID, "JWT claim 'iss' is not a string")
    issuer = settings.issuers.get(iss)
    if issuer is None:
        raise _refuse(AssertionFlag.ISSUER_UNKNOWN, f"JWT issuer {iss[:80]!r} is not configured")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or not (kid is None or isinstance(kid, str)):
        raise _refuse(AssertionFlag.MALFORMED, "JWT header 'alg' or 'kid' is not a string")
    if alg not in issuer.algorithms:
        raise _refuse(
            AssertionFlag.ALGORITHM_REFUSED,
            f"JWT algorithm {alg[:20]!r} is not allowed for issuer {issuer.issuer!r}",
        )
    candidates = [
        k for k in issuer.keys
        if alg in k.algorithms and (kid is None or k.kid is None or k.kid == kid)
    ]
    if not candidates:
        what = f"with kid {kid[:40]!r} " if kid is not None else ""
        raise _refuse(
            AssertionFlag.SIGNING_KEY_UNKNOWN,
            f"issuer {issuer.issuer!r} has no {alg} key {what}to check the JWT with",
        )
    claims = _verified_claims(token, alg, issuer, candidates)
    _check_times(claims, issuer.leeway, now)
    return Assertion(_agent_of(claims, issuer), "jwt", issuer.issuer)


def _verified_claims(
    token: str, alg: str, issuer: IssuerSettings, candidates: list[VerifyingKey]
) -> dict[str, Any]:
    for candidate in candidates:
        try:
            return jwt.decode(
                token,
                key=candidate.key,
                algorithms=[alg],
                audience=list(issuer.audiences),
                issuer=issuer.issuer,
                options=_VERIFIED,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(AssertionFlag.CLAIM_MISSING, f"JWT has no {exc.claim!r} claim") from None
        except jwt.InvalidAudienceError:
            raise _refuse(
                AssertionFlag.AUDIENCE_INVALID,
                f"JWT audience is not one of the audiences of issuer {issuer.issuer!r}",
            ) from None
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise _refuse(
                AssertionFlag.ALGORITHM_REFUSED, f"JWT algorithm {alg} does not fit the key"
            ) from None
        except jwt.DecodeError:
            raise _refuse(AssertionFlag.MALFORMED, "the Bearer token is not a JWT") from None
        except jwt.PyJWTError as exc:
            # After the signature: a claim of the wrong type (iss, sub, jti). The class
            # names the claim; PyJWT's message may quote the token's contents.
            raise _refuse(
                AssertionFlag.CLAIM_INVALID, f"JWT claim refused ({type(exc).__name__})"
            ) from None
    raise _refuse(
        AssertionFlag.SIGNATURE_INVALID,
        f"JWT signature does not verify with the keys of issuer {issuer.issuer!r}",
    )


def _check_times(claims: dict[str, Any], leeway: int, now: float) -> None:
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and exp <= now - leeway:
        raise _refuse(AssertionFlag.EXPIRED, "JWT has expired")
    if nbf is not None and nbf > now + leeway:
        raise _refuse(AssertionFlag.NOT_YET_VALID, "JWT is not valid yet (nbf)")
    if iat is not None and iat > now + leeway:
        raise _refuse(AssertionFlag.NOT_YET_VALID, "JWT is issued in the future (iat)")


def _numeric_date(claims: dict[str, Any], name: str) -> float | int | None:
    value = claims.get(name)
    if value is None:
        return None
    # JSON numbers only, finite: Python's json reads NaN and Infinity, and NaN compares
    # false with everything, so it would never expire.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(AssertionFlag.CLAIM_INVALID, f"JWT claim {name!r} is not a number")
    return value


def _agent_of(claims: dict[str, Any], issuer: IssuerSettings) -> str:
    claim = issuer.agent_claim
    value = claims.get(claim)
    if value is None:
        raise _refuse(AssertionFlag.CLAIM_MISSING, f"JWT has no {claim!r} claim")
    if not isinstance(value, str):
        raise _refuse(AssertionFlag.CLAIM_INVALID, f"JWT claim {claim!r} is not a string")
    prefix = issuer.agent_prefix
    if not value.startswith(prefix):
        raise _refuse(
            AssertionFlag.AGENT_INVALID, f"JWT claim {claim!r} does not start with {prefix!r}"
        )
    agent_id = value[len(prefix):]
    try:
        return check_name("agent id", agent_id)
    except ValueError:
        raise _refuse(
            AssertionFlag.AGENT_INVALID, f"JWT claim {claim!r} does not hold an agent id"
        ) from None


# -- client certificates -------------------------------------------------------------------


def verify_client_certificate(
    der: bytes, settings: AssertionSettings, now: float
) -> Assertion | None:
    """The agent a verified client certificate (DER) names; ``None`` if it names none.

    It names one by a URI SAN ``spiffe://<trust domain>/agent/<agent id>`` with an
    accepted trust domain; other URIs and SPIFFE IDs of other workloads are ignored.
    ``AssertionRefused`` if the certificate cannot be read, is outside its validity at
    ``now``, or names an invalid agent id or two agents.
    """
    if not settings.trust_domains:
        return None
    try:
        # cryptography reads a few RFC 5280 violations (a serial number that is not
        # positive) with a deprecation warning, and will refuse them: refuse them now.
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
            not_before = cert.not_valid_before_utc.timestamp()
            not_after = cert.not_valid_after_utc.timestamp()
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        return None
    except (
        ValueError,
        CryptographyDeprecationWarning,
        x509.InvalidVersion,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ):
        raise AssertionRefused(
            AssertionFlag.CERTIFICATE_INVALID,
            "client certificate: not a readable X.509 certificate",
        ) from None
    if now < not_before:
        raise AssertionRefused(AssertionFlag.NOT_YET_VALID, "client certificate: not valid yet")
    if now > not_after:
        raise AssertionRefused(AssertionFlag.EXPIRED, "client certificate: expired")
    named: dict[str, str] = {}
    for uri in uris:
        agent_id = _spiffe_agent(uri, settings.trust_domains)
        if agent_id is not None:
            named.setdefault(agent_id, uri)
    if len(named) > 1:
        raise AssertionRefused(
            AssertionFlag.CERTIFICATE_AMBIGUOUS,
            f"client certificate: names {len(named)} agents ({', '.join(sorted(named))})",
        )
    if not named:
        return None
    ((agent_id, uri),) = named.items()
    return Assertion(agent_id, "certificate", uri)


def _spiffe_agent(uri: str, trust_domains: frozenset[str]) -> str | None:
    """The agent id of ``uri`` if it is an agent's SPIFFE ID in ``trust_domains``."""
    if not uri.startswith(_SPIFFE):
        return None
    domain, _, path = uri[len(_SPIFFE):].partition("/")
    if domain not in trust_domains or not path.startswith(_AGENT_PATH):
        return None
    agent_id = path[len(_AGENT_PATH):]
    try:
        return check_name("agent id", agent_id)
    except ValueError:
        raise AssertionRefused(
            AssertionFlag.AGENT_INVALID,
            f"client certificate: spiffe://{domain}/agent/... does not hold an agent id",
        ) from None


# -- settings ------------------------------------------------------------------------------


def read_key_file(path: Path) -> bytes:
    """The bytes of a key file, at most ``MAX_KEY_FILE_BYTES``; ``OSError``, ``ValueError``."""
    with path.open("rb") as f:
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"larger than {MAX_KEY_FILE_BYTES} bytes")
    return data


def load_settings(
    section: ProxyIdentitySection, read: Callable[[Path], bytes] = read_key_file
) -> AssertionSettings:
    """``section`` with its issuers' keys read (by ``read``); ``ConfigError`` naming the
    file if one cannot be read or holds no usable public key."""
    issuers = {issuer.issuer: _issuer_settings(issuer, read) for issuer in section.jwt_issuers}
    return AssertionSettings(
        allow_basic=section.allow_basic,
        issuers=issuers,
        trust_domains=frozenset(section.spiffe_trust_domains),
    )


def _issuer_settings(issuer: JwtIssuer, read: Callable[[Path], bytes]) -> IssuerSettings:
    keys: list[VerifyingKey] = []
    files: list[tuple[Path, Callable[[bytes], list[VerifyingKey]]]] = [
        (path, keys_from_pem) for path in issuer.key_files
    ]
    if issuer.jwks_file is not None:
        files.append((issuer.jwks_file, keys_from_jwks))
    for path, parse in files:
        try:
            keys.extend(parse(read(path)))
        except OSError as exc:
            raise ConfigError(
                f"l7.identity: issuer {issuer.issuer!r}: cannot read {path}: {exc.strerror}"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"l7.identity: issuer {issuer.issuer!r}: {path}: {exc}") from None
    allowed = frozenset(issuer.algorithms)
    usable = tuple(k for k in keys if k.algorithms & allowed)
    if not usable:
        raise ConfigError(
            f"l7.identity: issuer {issuer.issuer!r}: none of its keys can check its"
            f" algorithms ({', '.join(sorted(allowed))})"
        )
    return IssuerSettings(
        issuer=issuer.issuer,
        audiences=tuple(issuer.audiences),
        algorithms=allowed,
        keys=usable,
        agent_claim=issuer.agent_claim,
        agent_prefix=issuer.agent_prefix,
        leeway=issuer.leeway,
    )


def keys_from_pem(data: bytes) -> list[VerifyingKey]:
    """The public keys of a PEM file: one public key, or certificates; ``ValueError``
    (never quoting the file) if it holds neither, or a private key."""
    if b"PRIVATE KEY-----" in data:
        raise ValueError("holds a private key: give the issuer's public key")
    public: list[object]
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            public = [c.public_key() for c in x509.load_pem_x509_certificates(data)]
        else:
            public = [serialization.load_pem_public_key(data)]
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key or certificate") from None
    return [_verifying_key(key, None) for key in public]


def keys_from_jwks(data: bytes) -> list[VerifyingKey]:
    """The signing keys of a JWKS document (keys with ``"use": "enc"`` are skipped);
    ``ValueError`` (never quoting the file) if it is not one or holds a secret key."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('not a JWKS document ({"keys": [...]})')
    keys = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"keys[{i}] is not a JSON object")
        if entry.get("use", "sig") != "sig":
            continue
        keys.append(_jwk_key(entry, i))
    return keys


def _jwk_key(entry: dict[str, Any], i: int) -> VerifyingKey:
    kty, crv, kid = entry.get("kty"), entry.get("crv"), entry.get("kid")
    if kty == "oct" or "d" in entry:
        raise ValueError(f"keys[{i}] is a secret or private key: give public keys only")
    if kty == "RSA":
        algorithm = "RS256"
    elif kty == "EC" and crv in _JWK_CURVES:
        algorithm = _JWK_CURVES[crv]
    elif kty == "OKP" and crv in ("Ed25519", "Ed448"):
        algorithm = "EdDSA"
    else:
        raise ValueError(f"keys[{i}]: unsupported key type {str(kty)[:20]!r} {str(crv)[:20]!r}")
    if kid is not None and not isinstance(kid, str):
        raise ValueError(f"keys[{i}]: kid is not a string")
    try:
        key = jwt.PyJWK(entry, algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError):
        # PyJWT's messages quote the key; say only which one it is.
        raise ValueError(f"keys[{i}] is not a valid {kty} key") from None
    verifying = _verifying_key(key, kid)
    alg = entry.get("alg")
    if alg is not None:
        if alg not in verifying.algorithms:
            raise ValueError(f"keys[{i}]: alg {str(alg)[:20]!r} does not fit its key type")
        verifying = VerifyingKey(verifying.key, frozenset({alg}), kid)
    return verifying


def _verifying_key(key: object, kid: str | None) -> VerifyingKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}")
        return VerifyingKey(key, _RSA_ALGORITHMS, kid)
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ValueError(f"EC curve {key.curve.name} is not P-256, P-384 or P-521")
        return VerifyingKey(key, frozenset({algorithm}), kid)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return VerifyingKey(key, frozenset({"EdDSA"}), kid)
    raise ValueError(f"unsupported key type {type(key).__name__}")
