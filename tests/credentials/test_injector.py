from __future__ import annotations

from dataclasses import replace

import pytest

from gatewayd.credentials import (
    Claim,
    Credential,
    CredentialRefused,
    DataKey,
    Headers,
    Injector,
    IssuedPlaceholder,
    Keyring,
    Secret,
    new_credential,
    new_placeholder,
)

from .conftest import ANTHROPIC_KEY, AZURE_KEY, GEMINI_KEY, OPENAI_KEY, T0

CUSTOM_KEY = "lab-token-0123456789"


class Ring:
    """Credentials of each kind and placeholders of agent a1 (and one of a2) for them."""

    def __init__(self, data_key: DataKey) -> None:
        made: list[Credential] = [
            new_credential(cid, provider, Secret(key), data_key, now=T0)
            for cid, provider, key in (("openai-prod", "openai", OPENAI_KEY),
                                       ("anthropic", "anthropic", ANTHROPIC_KEY),
                                       ("gemini", "gemini", GEMINI_KEY))
        ]
        made.append(new_credential("azure", "azure-openai", Secret(AZURE_KEY), data_key,
                                   hosts=["*.openai.azure.com"], now=T0))
        made.append(new_credential("lab", "vllm", Secret(CUSTOM_KEY), data_key,
                                   hosts=["llm.lab.internal"], header="X-LLM-Token",
                                   template="Token {key}", allow_cleartext=True, now=T0))
        self.credentials = {c.credential_id: c for c in made}
        self.issued = {cid: new_placeholder(cid, "a1", now=T0) for cid in self.credentials}
        self.of_a2 = new_placeholder("openai-prod", "a2", now=T0)
        self.data_key = data_key

    def keyring(self) -> Keyring:
        placeholders = {p.record.placeholder_id: p.record
                        for p in (*self.issued.values(), self.of_a2)}
        return Keyring(self.credentials, placeholders, 1)

    def injector(self, keyring: Keyring | None = None) -> Injector:
        return Injector(keyring or self.keyring(), self.data_key)

    def token(self, cid: str) -> str:
        return self.issued[cid].token


@pytest.fixture
def ring(data_key: DataKey) -> Ring:
    return Ring(data_key)


def h(*pairs: tuple[str, str]) -> Headers:
    return [(n.encode(), v.encode()) for n, v in pairs]


def names(headers: Headers) -> list[str]:
    return [n.decode().lower() for n, _ in headers]


def swap(ring: Ring, headers: Headers, host: str, upstream: str = "/v1/chat/completions",
         agent: str = "a1", tls: bool = True) -> tuple[Claim, Headers, str]:
    injector = ring.injector()
    claim = injector.claim(agent, host, headers, upstream, tls=tls)
    assert claim is not None
    done = injector.inject(claim, headers, upstream)
    return claim, done.headers, done.upstream


# -- each provider's format -------------------------------------------------------------


def test_openai_bearer(ring: Ring) -> None:
    headers = h(("host", "api.openai.com"),
                ("authorization", f"Bearer {ring.token('openai-prod')}"),
                ("content-type", "application/json"))
    claim, out, upstream = swap(ring, headers, "api.openai.com")
    assert out == h(("host", "api.openai.com"), ("content-type", "application/json"),
                    ("authorization", f"Bearer {OPENAI_KEY}"))
    assert upstream == "/v1/chat/completions"
    assert claim.credential_id == "openai-prod"
    assert claim.placeholder_id == ring.issued["openai-prod"].placeholder_id
    assert claim.carriers == ("header:authorization",)
    assert claim.as_dict() == {
        "placeholder": ring.issued["openai-prod"].record.shown, "credential": "openai-prod",
        "provider": "openai", "carriers": ["header:authorization"], "header": "authorization"}


def test_anthropic_x_api_key(ring: Ring) -> None:
    headers = h(("x-api-key", ring.token("anthropic")), ("anthropic-version", "2023-06-01"))
    _, out, _ = swap(ring, headers, "api.anthropic.com", "/v1/messages")
    assert out == h(("anthropic-version", "2023-06-01"), ("x-api-key", ANTHROPIC_KEY))


def test_anthropic_placeholder_given_as_a_bearer_token(ring: Ring) -> None:
    headers = h(("Authorization", f"Bearer {ring.token('anthropic')}"))
    _, out, _ = swap(ring, headers, "api.anthropic.com", "/v1/messages")
    assert out == h(("x-api-key", ANTHROPIC_KEY))


def test_azure_api_key(ring: Ring) -> None:
    headers = h(("api-key", ring.token("azure")))
    _, out, _ = swap(ring, headers, "myres.openai.azure.com",
                     "/openai/deployments/gpt/chat/completions?api-version=2024-06-01")
    assert out == h(("api-key", AZURE_KEY))


def test_gemini_header(ring: Ring) -> None:
    headers = h(("x-goog-api-key", ring.token("gemini")))
    _, out, _ = swap(ring, headers, "generativelanguage.googleapis.com")
    assert out == h(("x-goog-api-key", GEMINI_KEY))


def test_gemini_query_key_moves_to_the_header(ring: Ring) -> None:
    upstream = f"/v1beta/models/gemini-pro:generateContent?alt=sse&key={ring.token('gemini')}"
    claim, out, sent = swap(ring, h(("accept", "*/*")), "generativelanguage.googleapis.com",
                            upstream)
    assert claim.carriers == ("query:key",)
    assert sent == "/v1beta/models/gemini-pro:generateContent?alt=sse"
    assert out == h(("accept", "*/*"), ("x-goog-api-key", GEMINI_KEY))
    _, _, alone = swap(ring, [], "generativelanguage.googleapis.com",
                       f"/v1/models?key={ring.token('gemini')}")
    assert alone == "/v1/models"


def test_custom_header_and_format(ring: Ring) -> None:
    headers = h(("X-LLM-Token", f"Token {ring.token('lab')}"))
    _, out, _ = swap(ring, headers, "llm.lab.internal", tls=False)
    assert out == h(("x-llm-token", f"Token {CUSTOM_KEY}"))


def test_the_same_placeholder_in_two_carriers(ring: Ring) -> None:
    token = ring.token("openai-prod")
    headers = h(("authorization", f"Bearer {token}"), ("x-api-key", token))
    claim, out, _ = swap(ring, headers, "api.openai.com")
    assert claim.carriers == ("header:authorization", "header:x-api-key")
    assert out == h(("authorization", f"Bearer {OPENAI_KEY}"))


def test_an_existing_header_of_the_credential_is_replaced(ring: Ring) -> None:
    headers = h(("authorization", "Bearer something-else"),
                ("x-api-key", ring.token("openai-prod")))
    _, out, _ = swap(ring, headers, "api.openai.com")
    assert out == h(("authorization", f"Bearer {OPENAI_KEY}"))


def test_no_placeholder_no_claim(ring: Ring) -> None:
    injector = ring.injector()
    assert injector.claim("a1", "api.openai.com", h(("authorization", f"Bearer {OPENAI_KEY}")),
                          "/v1/models", tls=True) is None
    assert injector.claim("a1", "example.com", [], "/?q=1", tls=False) is None


def test_non_ascii_header_values_are_skipped(ring: Ring) -> None:
    headers = [(b"authorization", b"Bearer \xff\xfe")]
    assert ring.injector().claim("a1", "api.openai.com", headers, "/", tls=True) is None


# -- refusals ---------------------------------------------------------------------------


def refused(ring: Ring, headers: Headers, host: str = "api.openai.com", *,
            agent: str = "a1", tls: bool = True, upstream: str = "/v1/models",
            keyring: Keyring | None = None, data_key: DataKey | None = None
            ) -> CredentialRefused:
    injector = Injector(keyring or ring.keyring(), data_key or ring.data_key)
    with pytest.raises(CredentialRefused) as err:
        injector.claim(agent, host, headers, upstream, tls=tls)
    text = str(err.value)
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, AZURE_KEY, GEMINI_KEY, CUSTOM_KEY):
        assert secret not in text
    for issued in (*ring.issued.values(), ring.of_a2):
        assert issued.token not in text
        assert issued.token[23:] not in text  # the secret part
    return err.value


def bearer(issued: IssuedPlaceholder) -> Headers:
    return h(("authorization", f"Bearer {issued.token}"))


def test_another_agents_placeholder(ring: Ring) -> None:
    err = refused(ring, bearer(ring.of_a2), agent="a1")
    assert (err.kind, err.status) == ("placeholder-wrong-agent", 403)
    assert str(err) == f"placeholder {ring.of_a2.record.shown} is not issued to agent a1"
    assert err.placeholder_id == ring.of_a2.placeholder_id


def test_another_host(ring: Ring) -> None:
    err = refused(ring, bearer(ring.issued["openai-prod"]), "evil.example.com")
    assert err.kind == "placeholder-wrong-host"
    assert "credential openai-prod is not for host evil.example.com" in str(err)
    err = refused(ring, h(("api-key", ring.token("azure"))), "openai.azure.com")
    assert err.kind == "placeholder-wrong-host"


def test_a_revoked_placeholder(ring: Ring) -> None:
    keyring = ring.keyring()
    pid = ring.issued["openai-prod"].placeholder_id
    placeholders = {**keyring.placeholders,
                    pid: replace(keyring.placeholders[pid], revoked_at=T0 + 1)}
    err = refused(ring, bearer(ring.issued["openai-prod"]),
                  keyring=replace(keyring, placeholders=placeholders))
    assert (err.kind, str(err)) == ("placeholder-revoked", f"placeholder cg-ph-{pid} is revoked")


def test_a_revoked_credential(ring: Ring) -> None:
    keyring = ring.keyring()
    credentials = {**keyring.credentials,
                   "openai-prod": replace(keyring.credentials["openai-prod"], revoked_at=T0)}
    err = refused(ring, bearer(ring.issued["openai-prod"]),
                  keyring=replace(keyring, credentials=credentials))
    assert err.kind == "credential-revoked"
    assert "credential openai-prod is revoked" in str(err)


def test_a_credential_gone_from_the_store(ring: Ring) -> None:
    keyring = ring.keyring()
    credentials = {k: v for k, v in keyring.credentials.items() if k != "openai-prod"}
    err = refused(ring, bearer(ring.issued["openai-prod"]),
                  keyring=replace(keyring, credentials=credentials))
    assert err.kind == "credential-unknown"


def test_an_unknown_placeholder(ring: Ring) -> None:
    stranger = new_placeholder("openai-prod", "a1", now=T0)
    err = refused(ring, bearer(stranger))
    assert (err.kind, err.status) == ("placeholder-unknown", 403)
    assert str(err) == f"placeholder {stranger.record.shown} is not known to this gateway"


def test_a_known_id_with_another_secret(ring: Ring) -> None:
    real = ring.token("openai-prod")
    forged = real[:23] + ("A" if real[23] != "A" else "B") + real[24:]
    err = refused(ring, h(("authorization", f"Bearer {forged}")))
    assert err.kind == "placeholder-unknown"


@pytest.mark.parametrize("value", [
    "Bearer cg-ph-", "Bearer cg-ph-0011", "cg-ph-" + "x" * 60,
    "Bearer cg-ph-0001020304050607-" + "A" * 42 + "!",
])
def test_a_malformed_placeholder(ring: Ring, value: str) -> None:
    err = refused(ring, h(("authorization", value)))
    assert err.kind == "placeholder-malformed"
    assert str(err).startswith("a malformed placeholder in header:authorization")
    token = value.rsplit(maxsplit=1)[-1]
    assert token == "cg-ph-" or token not in str(err)


def test_a_malformed_placeholder_in_the_query(ring: Ring) -> None:
    err = refused(ring, [], "generativelanguage.googleapis.com", upstream="/v1?key=cg-ph-zz")
    assert err.kind == "placeholder-malformed"
    assert "query:key" in str(err)


def test_two_placeholders(ring: Ring) -> None:
    headers = h(("authorization", f"Bearer {ring.token('openai-prod')}"),
                ("x-api-key", ring.token("anthropic")))
    err = refused(ring, headers)
    assert err.kind == "placeholder-conflict"
    assert ring.issued["openai-prod"].record.shown in str(err)
    assert ring.issued["anthropic"].record.shown in str(err)


def test_clear_text_is_refused_unless_allowed(ring: Ring) -> None:
    err = refused(ring, bearer(ring.issued["openai-prod"]), tls=False)
    assert err.kind == "credential-cleartext"
    assert "inside TLS only" in str(err)


def test_a_key_the_data_key_cannot_open(ring: Ring) -> None:
    err = refused(ring, bearer(ring.issued["openai-prod"]), data_key=DataKey(bytes(32)))
    assert (err.kind, err.status) == ("credential-unsealable", 500)
    assert "does not open with data key" in str(err)


def test_inject_refuses_a_placeholder_added_after_the_claim(ring: Ring) -> None:
    injector = ring.injector()
    headers = bearer(ring.issued["openai-prod"])
    claim = injector.claim("a1", "api.openai.com", headers, "/", tls=True)
    assert claim is not None
    later = [*headers, (b"x-api-key", ring.token("anthropic").encode())]
    with pytest.raises(CredentialRefused) as err:
        injector.inject(claim, later, "/")
    assert err.value.kind == "placeholder-conflict"


def test_no_key_in_reprs(ring: Ring) -> None:
    headers = bearer(ring.issued["openai-prod"])
    claim, out, _ = swap(ring, headers, "api.openai.com")
    done = ring.injector().inject(claim, headers, "/")
    for text in (repr(claim), repr(done), repr(ring.keyring()), repr(ring.injector()),
                 repr(ring.issued["openai-prod"])):
        assert OPENAI_KEY not in text
        assert ring.token("openai-prod") not in text
    assert (b"authorization", f"Bearer {OPENAI_KEY}".encode()) in out


def test_header_names_are_matched_in_any_case(ring: Ring) -> None:
    headers = [(b"X-Api-Key", ring.token("anthropic").encode())]
    _, out, _ = swap(ring, headers, "API.Anthropic.com")
    assert out == h(("x-api-key", ANTHROPIC_KEY))
