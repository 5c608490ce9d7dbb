"""``clawgress credential add|list|rotate|revoke``: the provider keys the gateway injects;
``clawgress credential placeholder issue|list|revoke``: what agents hold instead.

A key is read from ``--key-file`` or standard input (a prompt that does not echo on a
terminal), never from the command line, where ``ps`` and shell history would keep it.
Nothing here prints a key: listings show ids, hosts, headers and dates; a placeholder is
printed once, when it is issued.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gatewayd.cli.context import CliContext
from gatewayd.cli.lease import iso_time
from gatewayd.cli.output import emit_json, emit_table
from gatewayd.credentials import (
    PROVIDERS,
    Credential,
    DataKey,
    Placeholder,
    Secret,
    Vault,
    check_key,
    credential_shape,
    new_credential,
    open_data_key,
)
from gatewayd.errors import ClawgressError

# A key is at most a few KiB; more on standard input is not one.
MAX_KEY_INPUT = 64 * 1024

_DATA_KEY_HELP = (
    "The data key file provider keys are sealed with [default: credentials.key beside the"
    " store]. Created (0600) on first use; back it up apart from the store."
)


def data_key_path(obj: CliContext, given: Path | None) -> Path:
    """Where the data key is: ``given``, else beside the store."""
    return given if given is not None else obj.config.credentials_key_path


def open_vault(obj: CliContext) -> Vault:
    return Vault(obj.store())


def open_sealer(vault: Vault, path: Path) -> DataKey:
    """The data key in ``path``, made there if missing, unless live credentials were
    sealed with a data key: then its file is missing (a wrong --data-key, a lost file),
    and a new key would seal new credentials under a key the gateway does not read."""
    if not path.exists():
        sealed_with = sorted({c.data_key_id for c in vault.list_credentials()
                              if not c.revoked})
        if sealed_with:
            raise ClawgressError(
                f"{path}: no data key there, but credentials are sealed with data key"
                f" {', '.join(sealed_with)}; restore its file, or name it with --data-key"
                " (credentials sealed with a lost data key must be revoked and added again)")
    return open_data_key(path)


def read_key(key_file: Path | None) -> Secret:
    """The provider key from ``key_file`` (``-``: standard input) or standard input."""
    if key_file is not None and str(key_file) != "-":
        source = str(key_file)
        try:
            with key_file.open("rb") as f:
                data = f.read(MAX_KEY_INPUT + 1)
        except OSError as exc:
            raise ClawgressError(f"{key_file}: cannot read: {exc.strerror or exc}") from None
    else:
        source = "standard input"
        stdin = sys.stdin.buffer
        if stdin.isatty():
            typed: str = click.prompt("Provider key", hide_input=True, err=True)
            data = typed.encode("utf-8", "surrogateescape")
        else:
            data = stdin.read(MAX_KEY_INPUT + 1)
    if len(data) > MAX_KEY_INPUT:
        raise ClawgressError(f"{source}: more than {MAX_KEY_INPUT} bytes; not a key")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ClawgressError(f"{source}: the key is not ASCII text") from None
    try:
        return check_key(text)
    except ValueError as exc:
        raise ClawgressError(f"{source}: {exc}") from None


def _state(revoked_at: float | None) -> str:
    return "active" if revoked_at is None else "revoked"


def credential_json(c: Credential, placeholders: int | None = None) -> dict[str, Any]:
    """A credential for ``--json``: never its key, sealed or not."""
    out: dict[str, Any] = {
        "credential_id": c.credential_id,
        "provider": c.provider,
        "hosts": list(c.hosts),
        "header": c.injection.header,
        "format": c.injection.template,
        "allow_cleartext": c.allow_cleartext,
        "data_key_id": c.data_key_id,
        "state": _state(c.revoked_at),
        "created_at": iso_time(c.created_at),
        "created_at_unix": c.created_at,
        "rotated_at": iso_time(c.rotated_at),
        "rotated_at_unix": c.rotated_at,
        "revoked_at": iso_time(c.revoked_at),
        "revoked_at_unix": c.revoked_at,
    }
    if placeholders is not None:
        out["active_placeholders"] = placeholders
    return out


def placeholder_json(p: Placeholder) -> dict[str, Any]:
    """A placeholder for ``--json``: its id, never its text or hash."""
    return {
        "placeholder_id": p.placeholder_id,
        "placeholder": p.shown,
        "credential_id": p.credential_id,
        "agent_id": p.agent_id,
        "label": p.label,
        "state": _state(p.revoked_at),
        "created_at": iso_time(p.created_at),
        "created_at_unix": p.created_at,
        "revoked_at": iso_time(p.revoked_at),
        "revoked_at_unix": p.revoked_at,
    }


@click.group("credential")
def group() -> None:
    """Add, list, rotate and revoke the provider keys the gateway injects.

    Agents never hold provider keys: each is issued a placeholder (`credential
    placeholder issue`) that it uses as its API key, and the gateway swaps it for the key
    on intercepted requests to the credential's hosts. See docs/credentials.md.
    """


_PROVIDERS_EPILOG = (
    "Providers with defaults (hosts; header): "
    + "; ".join(f"{name} ({', '.join(d.hosts)}; {d.injection.describe()})"
                for name, d in PROVIDERS.items())
    + ". Any other provider name needs --host and --header."
)


@group.command("add", epilog=_PROVIDERS_EPILOG)
@click.argument("credential_id")
@click.option("--provider", required=True, help="openai, anthropic, azure-openai, gemini...")
@click.option("--host", "hosts", multiple=True,
              help="A host the key may be sent to (repeat; *.suffix allowed) [default: the"
              " provider's].")
@click.option("--header", help="The header the key goes in [default: the provider's].")
@click.option("--format", "template",
              help="The header's value, with {key} where the key goes, e.g. 'Bearer {key}'"
              " [default: the provider's, else {key}].")
@click.option("--allow-cleartext", is_flag=True,
              help="Also inject over plain HTTP (a self-hosted API on a trusted network);"
              " without it the key is sent inside TLS only.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the key from this file ('-': standard input).")
@click.option("--data-key", type=click.Path(dir_okay=False, path_type=Path),
              help=_DATA_KEY_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def add(obj: CliContext, *, credential_id: str, provider: str, hosts: tuple[str, ...],
        header: str | None, template: str | None, allow_cleartext: bool,
        key_file: Path | None, data_key: Path | None, as_json: bool) -> None:
    """Add provider key CREDENTIAL_ID, sealed, for the hosts it may be sent to.

    The key is read from --key-file, or from standard input (a prompt that does not echo
    on a terminal); never from the command line.
    """
    vault = open_vault(obj)
    try:
        credential_shape(credential_id, provider, hosts=hosts, header=header,
                         template=template)
    except ValueError as exc:
        raise ClawgressError(str(exc)) from None
    key = read_key(key_file)
    path = data_key_path(obj, data_key)
    made = not path.exists()
    sealer = open_sealer(vault, path)
    try:
        credential = new_credential(credential_id, provider, key, sealer, hosts=hosts,
                                    header=header, template=template,
                                    allow_cleartext=allow_cleartext, now=obj.now())
    except ValueError as exc:
        raise ClawgressError(str(exc)) from None
    vault.add_credential(credential)
    note = f"created data key {path} (0600): back it up apart from the store" if made else ""
    if as_json:
        emit_json(credential_json(credential, 0))
        if note:
            click.echo(note, err=True)
        return
    click.echo(f"added credential {credential.credential_id} ({credential.provider}):"
               f" sent to {', '.join(credential.hosts)} as"
               f" {credential.injection.describe()}")
    if note:
        click.echo(note)


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of credentials.")
@click.pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """List credentials, revoked ones too: ids, hosts, headers, dates; never a key."""
    vault = open_vault(obj)
    active: dict[str, int] = {}
    for p in vault.list_placeholders():
        if not p.revoked:
            active[p.credential_id] = active.get(p.credential_id, 0) + 1
    credentials = vault.list_credentials()
    if as_json:
        emit_json([credential_json(c, active.get(c.credential_id, 0)) for c in credentials])
        return
    rows = [
        {
            "credential": c.credential_id,
            "provider": c.provider,
            "hosts": list(c.hosts),
            "header": c.injection.describe(),
            "state": _state(c.revoked_at),
            "placeholders": active.get(c.credential_id, 0),
            "created": iso_time(c.created_at),
            "rotated": iso_time(c.rotated_at),
            "revoked": iso_time(c.revoked_at),
        }
        for c in credentials
    ]
    emit_table(rows, ("credential", "provider", "hosts", "header", "state", "placeholders",
                      "created", "rotated", "revoked"))


@group.command("rotate")
@click.argument("credential_id")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the new key from this file ('-': standard input).")
@click.option("--data-key", type=click.Path(dir_okay=False, path_type=Path),
              help=_DATA_KEY_HELP)
@click.pass_obj
def rotate(obj: CliContext, credential_id: str, key_file: Path | None,
           data_key: Path | None) -> None:
    """Replace CREDENTIAL_ID's key; its placeholders keep working and carry the new one.

    The key is read from --key-file, or from standard input (a prompt that does not echo
    on a terminal); never from the command line.
    """
    vault = open_vault(obj)
    vault.get_credential(credential_id)
    key = read_key(key_file)
    sealer = open_sealer(vault, data_key_path(obj, data_key))
    credential = vault.rotate_key(credential_id, key, sealer, now=obj.now())
    click.echo(f"rotated the key of credential {credential.credential_id}")


@group.command("revoke")
@click.argument("credential_id")
@click.pass_obj
def revoke(obj: CliContext, credential_id: str) -> None:
    """Revoke CREDENTIAL_ID: every placeholder for it is refused from then on."""
    credential = open_vault(obj).revoke_credential(credential_id, now=obj.now())
    click.echo(f"revoked credential {credential.credential_id}")


@group.group("placeholder")
def placeholder_group() -> None:
    """Issue, list and revoke the placeholders agents use in place of provider keys.

    A placeholder is bound to one agent and one credential; the agent uses it as its API
    key. Only a hash is stored; it is shown once, when it is issued.
    """


_SHOWN_ONCE = (
    "This placeholder will not be shown again: give it to the agent now (only its hash is"
    " kept). The agent uses it as its API key; the gateway swaps it for the credential's"
    " key on intercepted requests to the credential's hosts."
)


@placeholder_group.command("issue")
@click.argument("credential_id")
@click.option("--agent", "agent_id", required=True, help="The agent that will use it.")
@click.option("--label", default="", help="What it is for (up to 128 printable ASCII).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with the placeholder.")
@click.pass_obj
def placeholder_issue(obj: CliContext, credential_id: str, agent_id: str, label: str,
                      as_json: bool) -> None:
    """Issue a placeholder of --agent for CREDENTIAL_ID and print it, once."""
    issued = open_vault(obj).issue_placeholder(credential_id, agent_id, now=obj.now(),
                                               label=label)
    if as_json:
        emit_json({**placeholder_json(issued.record), "placeholder": issued.token})
        click.echo(_SHOWN_ONCE, err=True)
        return
    click.echo(f"issued placeholder {issued.record.shown} to agent {agent_id} for"
               f" credential {credential_id}")
    click.echo(issued.token)
    click.echo(_SHOWN_ONCE)


@placeholder_group.command("list")
@click.option("--credential", "credential_id", help="Only this credential's.")
@click.option("--agent", "agent_id", help="Only this agent's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of placeholders.")
@click.pass_obj
def placeholder_list(obj: CliContext, credential_id: str | None, agent_id: str | None,
                     as_json: bool) -> None:
    """List placeholders, revoked ones too: ids, agents, credentials; never their text."""
    found = open_vault(obj).list_placeholders(credential_id=credential_id,
                                              agent_id=agent_id)
    if as_json:
        emit_json([placeholder_json(p) for p in found])
        return
    rows = [
        {
            "placeholder": p.shown,
            "agent": p.agent_id,
            "credential": p.credential_id,
            "label": p.label,
            "state": _state(p.revoked_at),
            "created": iso_time(p.created_at),
            "revoked": iso_time(p.revoked_at),
        }
        for p in found
    ]
    emit_table(rows, ("placeholder", "agent", "credential", "label", "state", "created",
                      "revoked"))


@placeholder_group.command("revoke")
@click.argument("placeholder_id")
@click.pass_obj
def placeholder_revoke(obj: CliContext, placeholder_id: str) -> None:
    """Revoke PLACEHOLDER_ID (cg-ph-<id> or <id>): the gateway refuses it from then on."""
    found = open_vault(obj).revoke_placeholder(placeholder_id, now=obj.now())
    click.echo(f"revoked placeholder {found.shown} of agent {found.agent_id}")
