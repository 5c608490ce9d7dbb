from __future__ import annotations

import pytest

from gatewayd.credentials import (
    PROVIDERS,
    DataKey,
    Injection,
    Secret,
    check_host,
    check_key,
    host_admitted,
    new_credential,
)
from gatewayd.credentials.providers import check_header, check_template, injection_for

from .conftest import OPENAI_KEY, T0


@pytest.mark.parametrize(("given", "canonical"), [
    ("api.openai.com", "api.openai.com"),
    ("API.OpenAI.com.", "api.openai.com"),
    ("*.openai.azure.com", "*.openai.azure.com"),
    ("10.0.0.5", "10.0.0.5"),
    ("[fd00::0001]", "fd00::1"),
    ("llm_internal", "llm_internal"),
])
def test_host_patterns(given: str, canonical: str) -> None:
    assert check_host(given) == canonical


@pytest.mark.parametrize(("given", "why"), [
    ("", "expected a host name"),
    ("*", "expected a host name"),
    ("*.com", "at least two labels"),
    ("api.*.com", "expected a host name"),
    ("*.*.example.com", "expected a host name"),
    ("https://api.openai.com", "expected a host name"),
    ("api.openai.com:443", "expected a host name"),
    ("-bad.example.com", "expected a host name"),
])
def test_invalid_host_patterns(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_host(given)


@pytest.mark.parametrize(("host", "admitted"), [
    ("api.openai.com", True),
    ("API.OPENAI.COM.", True),
    ("openai.com", False),
    ("api.openai.com.evil.example", False),
    ("res.openai.azure.com", True),
    ("a.b.openai.azure.com", True),
    ("openai.azure.com", False),
    ("evil-openai.azure.com", False),
])
def test_host_matching(host: str, admitted: bool) -> None:
    assert host_admitted(("api.openai.com", "*.openai.azure.com"), host) is admitted


def test_check_key_strips_white_space() -> None:
    assert check_key(f"  {OPENAI_KEY}\r\n").reveal() == OPENAI_KEY


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"),
    (" \n", "empty"),
    ("sk-abc def", "spaces, control or non-ASCII"),
    ("sk-abc\x00def", "spaces, control or non-ASCII"),
    ("sk-\u00e9t\u00e9", "spaces, control or non-ASCII"),
    ("x" * 4097, "longer than 4096"),
    ("cg-ph-0001020304050607-" + "A" * 43, "a Clawgress placeholder"),
])
def test_check_key_refuses_without_quoting(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as err:
        check_key(text)
    if text.strip():
        assert text.strip()[:8] not in str(err.value)


def test_provider_defaults() -> None:
    assert PROVIDERS["openai"].injection == Injection("authorization", "Bearer {key}")
    assert PROVIDERS["anthropic"].injection == Injection("x-api-key", "{key}")
    assert PROVIDERS["azure-openai"].injection == Injection("api-key", "{key}")
    assert PROVIDERS["gemini"].injection == Injection("x-goog-api-key", "{key}")
    for defaults in PROVIDERS.values():
        for host in defaults.hosts:
            assert check_host(host) == host
        assert check_header(defaults.injection.header) == defaults.injection.header
        assert check_template(defaults.injection.template) == defaults.injection.template


def test_injection_overrides() -> None:
    assert injection_for("openai", None, None) == Injection("authorization", "Bearer {key}")
    # Another header of a known provider: the key alone unless a format is given.
    assert injection_for("openai", "X-Api-Key", None) == Injection("x-api-key", "{key}")
    assert injection_for("openai", "Authorization", None) == Injection("authorization",
                                                                       "Bearer {key}")
    assert injection_for("openai", None, "Token {key}") == Injection("authorization",
                                                                     "Token {key}")
    assert injection_for("vllm", "Authorization", "Bearer {key}") == Injection(
        "authorization", "Bearer {key}")
    with pytest.raises(ValueError, match="no default header"):
        injection_for("vllm", None, None)


@pytest.mark.parametrize(("header", "template", "why"), [
    ("host", None, "frames or authenticates"),
    ("Proxy-Authorization", None, "frames or authenticates"),
    ("Content-Length", None, "frames or authenticates"),
    ("bad header", None, "not a header name"),
    ("x-key", "Bearer", r"must hold \{key\} exactly once"),
    ("x-key", "{key}{key}", r"must hold \{key\} exactly once"),
    ("x-key", "Bearer {key}\r\nx: y", "printable ASCII"),
    ("x-key", " {key}", "starts or ends with a space"),
])
def test_invalid_injections(header: str, template: str | None, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        injection_for("custom", header, template)


def test_new_credential_defaults_and_seals(data_key: DataKey) -> None:
    c = new_credential("openai-prod", "openai", Secret(OPENAI_KEY), data_key, now=T0)
    assert c.hosts == ("api.openai.com",)
    assert c.injection == Injection("authorization", "Bearer {key}")
    assert c.data_key_id == data_key.key_id
    assert not c.allow_cleartext
    assert not c.revoked
    assert data_key.unseal(c.sealed, "openai-prod").reveal() == OPENAI_KEY
    assert "sealed" not in repr(c)
    assert OPENAI_KEY not in repr(c)


def test_new_credential_of_a_custom_provider(data_key: DataKey) -> None:
    c = new_credential("vllm-lab", "vllm", Secret("s3cr3t-token-value"), data_key,
                       hosts=["llm.lab.internal", "LLM.lab.internal."], header="Authorization",
                       template="Bearer {key}", allow_cleartext=True, now=T0)
    assert c.hosts == ("llm.lab.internal",)
    assert c.allow_cleartext
    with pytest.raises(ValueError, match="no default hosts"):
        new_credential("x", "vllm", Secret("k"), data_key, header="x-key", now=T0)


@pytest.mark.parametrize(("cid", "provider", "why"), [
    ("-bad", "openai", "invalid credential id"),
    ("a b", "openai", "invalid credential id"),
    ("ok", "OpenAI", "invalid provider"),
    ("ok", "", "invalid provider"),
])
def test_new_credential_refuses_bad_names(data_key: DataKey, cid: str, provider: str,
                                          why: str) -> None:
    with pytest.raises(ValueError, match=why):
        new_credential(cid, provider, Secret(OPENAI_KEY), data_key, now=T0)
