"""A known fake key goes through every command and every refusal; it must come out
nowhere: not in output, exception text or repr, tracebacks, log records, or the files
the store and the data key live in."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest
from click.testing import Result

from gatewayd.credentials import (
    CredentialRefused,
    DataKey,
    Injector,
    Secret,
    Vault,
    new_placeholder,
    open_data_key,
    sight,
)
from gatewayd.credentials.inspection import KeyInspection
from gatewayd.l7.target import Target
from gatewayd.store import open_store

from .conftest import T0, RunCredential

CANARY = "sk-proj-CanaryKey0123456789abcdefghijT3BlbkFJ9876543210zyxwvuts"
# Pieces of it too: a message that quoted a prefix or a slice would carry one.
FRAGMENTS = (CANARY, CANARY[8:20], CANARY[20:32], CANARY[32:44], CANARY[-12:])


def assert_clean(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"{where} holds the key ({fragment!r})"


def result_text(result: Result) -> str:
    parts = [result.stdout, result.stderr, repr(result.exception)]
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        parts.append("".join(traceback.format_exception(*result.exc_info)))
    return "\n".join(parts)


def assert_files_clean(folder: Path, *, skip: tuple[Path, ...] = ()) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and path not in skip:
            data = path.read_bytes()
            for fragment in FRAGMENTS:
                assert fragment.encode() not in data, f"{path} holds the key"


def test_the_cli_never_shows_the_key(run_credential: RunCredential, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    run = run_credential
    key_file = tmp_path / "provider.key"
    key_file.write_text(CANARY + "\n")
    results: list[Result] = []

    def step(*args: str, input: str | bytes | None = None) -> Result:
        result = run(*args, input=input)
        results.append(result)
        return result

    for agent in ("a1", "a2"):
        step("agent", "add", agent, "--team", "t", "--project", "p", "--env", "dev")
    # Malformed and refused input, each carrying the key.
    step("credential", "add", "bad", "--provider", "openai", input=CANARY + " tail")
    step("credential", "add", "bad", "--provider", "openai", input=CANARY + "\x00")
    step("credential", "add", "bad", "--provider", "openai",
         input=(CANARY + "\u00e9").encode())
    step("credential", "add", "bad", "--provider", "openai", input="cg-ph-" + CANARY)
    step("credential", "add", "bad", "--provider", "openai", input=CANARY * 2000)
    step("credential", "add", "bad", "--provider", "openai", input=CANARY + "\t" + CANARY)
    step("credential", "add", "bad key id", "--provider", "openai", input=CANARY)
    step("credential", "add", "bad", "--provider", "Bad Provider", input=CANARY)
    step("credential", "add", "bad", "--provider", "openai", "--host", "https://x",
         input=CANARY)
    step("credential", "add", "bad", "--provider", "openai", "--header", "host",
         input=CANARY)
    step("credential", "add", "bad", "--provider", "openai", "--format", "nokey",
         input=CANARY)
    step("credential", "rotate", "nope", input=CANARY)
    # The way it is meant to be done, then everything else.
    assert step("credential", "add", "openai-prod", "--provider", "openai",
                "--key-file", str(key_file)).exit_code == 0
    step("credential", "add", "openai-prod", "--provider", "openai", input=CANARY)
    step("credential", "add", "second", "--provider", "openai", "--json", input=CANARY)
    step("credential", "list")
    step("credential", "list", "--json")
    issued = step("credential", "placeholder", "issue", "openai-prod", "--agent", "a1",
                  "--json")
    pid = json.loads(issued.stdout)["placeholder_id"]
    step("credential", "placeholder", "issue", "openai-prod", "--agent", "ghost")
    step("credential", "placeholder", "list")
    step("credential", "placeholder", "list", "--json")
    step("credential", "rotate", "openai-prod", input=CANARY)
    step("credential", "rotate", "openai-prod", input=CANARY + " broken")
    step("credential", "placeholder", "revoke", pid)
    step("credential", "revoke", "openai-prod")
    step("credential", "rotate", "openai-prod", input=CANARY)
    step("credential", "add", "--help")

    refused = [r for r in results if r.exit_code != 0]
    assert len(refused) >= 15
    for result in results:
        assert_clean(result_text(result), f"output of {result}")
    assert_clean(caplog.text, "the log")
    for record in caplog.records:
        assert_clean(record.getMessage() + repr(record.args), "a log record")
    assert_files_clean(tmp_path, skip=(key_file,))
    with open_store(tmp_path / "clawgress.db") as store:
        rows = store.conn.execute("SELECT * FROM credentials").fetchall()
        assert len(rows) == 2
        assert_clean(repr(rows), "the credential rows")
        dump = "\n".join(store.conn.iterdump())
        assert_clean(dump, "the database dump")
    data_key = open_data_key(tmp_path / "credentials.key", create=False)
    with open_store(tmp_path / "clawgress.db") as store:
        sealed = Vault(store).get_credential("openai-prod").sealed
        assert data_key.unseal(sealed, "openai-prod").reveal() == CANARY


def test_the_engine_side_never_shows_the_key(vault: Vault, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from gatewayd.credentials import new_credential  # noqa: PLC0415

    caplog.set_level(logging.DEBUG)
    data_key = open_data_key(tmp_path / "state" / "credentials.key")
    credential = new_credential("openai-prod", "openai", Secret(CANARY), data_key, now=T0)
    vault.add_credential(credential)
    mine = vault.issue_placeholder("openai-prod", "a1", now=T0)
    theirs = vault.issue_placeholder("openai-prod", "a2", now=T0)
    revoked = vault.issue_placeholder("openai-prod", "a1", now=T0)
    vault.revoke_placeholder(revoked.placeholder_id, now=T0)
    injector = Injector(vault.keyring(), data_key)
    texts: list[str] = []

    def bearer(token: str) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", f"Bearer {token}".encode())]

    cases = [
        ("a1", "api.openai.com", bearer(theirs.token), True),
        ("a1", "evil.example.com", bearer(mine.token), True),
        ("a1", "api.openai.com", bearer(revoked.token), True),
        ("a1", "api.openai.com", bearer(mine.token), False),
        ("a1", "api.openai.com", bearer(mine.token[:-1]), True),
        ("a1", "api.openai.com", bearer(mine.token + "x"), True),
        ("a1", "api.openai.com", bearer(new_placeholder("openai-prod", "a1", now=T0).token),
         True),
        ("a1", "api.openai.com", [*bearer(mine.token), (b"x-api-key", theirs.token.encode())],
         True),
        ("a1", "api.openai.com", [(b"authorization", b"Bearer \xff" + CANARY.encode())], True),
    ]
    for agent, host, headers, tls in cases:
        try:
            claim = injector.claim(agent, host, headers, "/v1/models", tls=tls)
        except CredentialRefused as exc:
            texts += [str(exc), repr(exc), repr(exc.args), "".join(
                traceback.format_exception(exc))]
        else:
            texts.append(repr(claim))
    # A data key that does not open it.
    try:
        Injector(vault.keyring(), DataKey(bytes(32))).claim(
            "a1", "api.openai.com", bearer(mine.token), "/", tls=True)
    except CredentialRefused as exc:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    else:
        pytest.fail("a data key that does not open the key was taken")
    # The successful path: only the outgoing header may carry the key.
    claim = injector.claim("a1", "api.openai.com", bearer(mine.token), "/", tls=True)
    assert claim is not None
    done = injector.inject(claim, bearer(mine.token), "/")
    assert (b"authorization", f"Bearer {CANARY}".encode()) in done.headers
    texts += [repr(claim), str(claim), repr(done), repr(injector.keyring), repr(credential),
              repr(vault.get_credential("openai-prod")), repr(claim.as_dict())]
    # The agent sends the key itself: a finding, by class and length only.
    sent = [(b"authorization", f"Bearer {CANARY}".encode()), (b"x-api-key", CANARY.encode())]
    seen = sight(sent, f"/v1/models?key={CANARY}")
    assert seen.dlp_classes == ("secrets.openai.api_key",)
    texts += [repr(seen)]
    target = Target("api.openai.com", 443, "/v1/models", f"/v1/models?key={CANARY}")
    found = KeyInspection().look("POST", target, sent, b"", True)
    assert found.dlp_classes == ("secrets.openai.api_key",)
    texts += [repr(found), json.dumps(found.record)]

    placeholder_secrets = [p.token[23:] for p in (mine, theirs, revoked)]
    for text in texts:
        assert_clean(text, "a refusal, repr or record")
        for secret in placeholder_secrets:
            assert secret not in text, "a placeholder's secret part is shown"
    assert_clean(caplog.text, "the log")
    assert_files_clean(tmp_path)
