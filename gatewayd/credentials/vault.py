"""``Vault``: credentials and placeholders in the store. The credentials' IO.

Every write runs in one store transaction (all or nothing) and bumps the ``credentials``
generation, which the data plane watches to rebuild its ``Keyring``. Time is always the
caller's ``now`` (unix seconds). Rows hold sealed keys and placeholder hashes only: the
vault never sees a key's text (``new_credential`` seals it first), and a placeholder's
text only as ``issue_placeholder`` makes it, to return it once.

Credentials and placeholders are revoked, never deleted: their ids name quota counters
and audit records, and a revoked one is refused as revoked rather than as unknown. A
placeholder goes with its agent when the agent is removed. Revoking a credential leaves
its placeholders as they are; every use of them is refused while it is revoked.

The store is taken as the caller opened it; this module imports ``gatewayd.store`` for
types only, so the store's migrations can import this package (``schema``) in turn.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from secrets import token_bytes
from typing import TYPE_CHECKING, Any

from gatewayd.credentials.injector import Keyring
from gatewayd.credentials.model import (
    PLACEHOLDER_PREFIX,
    Credential,
    Placeholder,
    check_label,
    check_name,
    shown,
)
from gatewayd.credentials.placeholders import (
    ID_BYTES,
    IssuedPlaceholder,
    new_placeholder,
    placeholder_id_of,
)
from gatewayd.credentials.providers import Injection
from gatewayd.credentials.sealing import DataKey
from gatewayd.credentials.secret import Secret
from gatewayd.errors import NotFound, StoreError

if TYPE_CHECKING:
    from gatewayd.store import Store

CREDENTIALS_DOMAIN = "credentials"

_CREDENTIAL_COLUMNS = (
    "credential_id, provider, hosts, header, template, sealed, data_key_id,"
    " allow_cleartext, created_at, rotated_at, revoked_at"
)
_CREDENTIALS = f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials ORDER BY credential_id"  # noqa: S608 - our columns
_CREDENTIAL_BY_ID = f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE credential_id = ?"  # noqa: S608 - idem
_PLACEHOLDER_COLUMNS = (
    "placeholder_id, credential_id, agent_id, hash, created_at, revoked_at, label"
)
# ?1: only this credential (NULL: every one); ?2: only this agent (NULL: every one).
_PLACEHOLDERS = (
    f"SELECT {_PLACEHOLDER_COLUMNS} FROM credential_placeholders"  # noqa: S608 - our columns
    " WHERE (?1 IS NULL OR credential_id = ?1) AND (?2 IS NULL OR agent_id = ?2)"
    " ORDER BY created_at, placeholder_id"
)
_PLACEHOLDER_BY_ID = (
    f"SELECT {_PLACEHOLDER_COLUMNS} FROM credential_placeholders"  # noqa: S608 - idem
    " WHERE placeholder_id = ?"
)


class Vault:
    """Credentials and placeholders in ``store`` (one with the credential tables)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.store.conn

    def generation(self) -> int:
        """The store's ``credentials`` generation: it moves on every vault write."""
        return self.store.generation(CREDENTIALS_DOMAIN)

    # -- credentials ------------------------------------------------------------------

    def add_credential(self, credential: Credential) -> Credential:
        """Store ``credential`` (from ``new_credential``); ``StoreError`` if its id is
        taken (by a revoked credential too) or it is revoked already."""
        if credential.revoked:
            raise StoreError("a new credential cannot be revoked already")
        with self.store.write():
            if self._credential(credential.credential_id) is not None:
                raise StoreError(f"credential {credential.credential_id!r} already exists"
                                 " (ids are kept once revoked; pick another)")
            self._conn.execute(
                f"INSERT INTO credentials({_CREDENTIAL_COLUMNS})"  # noqa: S608 - our columns
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _credential_row(credential),
            )
            self.store.bump(CREDENTIALS_DOMAIN)
        return credential

    def get_credential(self, credential_id: str) -> Credential:
        credential = self._credential(credential_id)
        if credential is None:
            raise NotFound(f"no credential {credential_id!r}")
        return credential

    def list_credentials(self) -> list[Credential]:
        """Every credential, revoked ones too, by id."""
        return [_credential(row) for row in self._conn.execute(_CREDENTIALS)]

    def rotate_key(self, credential_id: str, key: Secret, data_key: DataKey, *,
                   now: float) -> Credential:
        """Seal ``key`` in place of the credential's key: its placeholders stay valid and
        carry the new key from the next keyring on. ``StoreError`` if it is revoked."""
        sealed = data_key.seal(key, credential_id)
        with self.store.write():
            credential = self.get_credential(credential_id)
            if credential.revoked:
                raise StoreError(f"credential {credential_id} is revoked")
            self._conn.execute(
                "UPDATE credentials SET sealed = ?, data_key_id = ?, rotated_at = ?"
                " WHERE credential_id = ?", (sealed, data_key.key_id, now, credential_id))
            self.store.bump(CREDENTIALS_DOMAIN)
        return replace(credential, sealed=sealed, data_key_id=data_key.key_id, rotated_at=now)

    def revoke_credential(self, credential_id: str, *, now: float) -> Credential:
        """Revoke a credential from ``now`` on; ``StoreError`` if it is revoked already."""
        with self.store.write():
            credential = self.get_credential(credential_id)
            if credential.revoked:
                raise StoreError(f"credential {credential_id} is revoked already")
            self._conn.execute("UPDATE credentials SET revoked_at = ? WHERE credential_id = ?",
                               (now, credential_id))
            self.store.bump(CREDENTIALS_DOMAIN)
        return replace(credential, revoked_at=now)

    # -- placeholders -----------------------------------------------------------------

    def issue_placeholder(
        self,
        credential_id: str,
        agent_id: str,
        *,
        now: float,
        label: str = "",
        random_bytes: Callable[[int], bytes] = token_bytes,
    ) -> IssuedPlaceholder:
        """A new placeholder of ``agent_id`` for ``credential_id``, stored (its hash) and
        returned with its text, to show once. ``NotFound`` for an unknown agent or
        credential; ``StoreError`` for a revoked credential or an invalid label."""
        try:
            check_name("agent id", agent_id)
            check_label(label)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        issued = new_placeholder(credential_id, agent_id, now=now, label=label,
                                 token_bytes=random_bytes)
        record = issued.record
        with self.store.write():
            credential = self.get_credential(credential_id)
            if credential.revoked:
                raise StoreError(f"credential {credential_id} is revoked")
            if self._conn.execute("SELECT 1 FROM agents WHERE agent_id = ?",
                                  (agent_id,)).fetchone() is None:
                raise NotFound(f"no agent {agent_id!r}: add it before giving it a placeholder")
            if self._placeholder(record.placeholder_id) is not None:
                raise StoreError(f"placeholder id {record.placeholder_id} is taken")
            self._conn.execute(
                f"INSERT INTO credential_placeholders({_PLACEHOLDER_COLUMNS})"  # noqa: S608 - our columns
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.placeholder_id, record.credential_id, record.agent_id, record.hash,
                 record.created_at, None, record.label),
            )
            self.store.bump(CREDENTIALS_DOMAIN)
        return issued

    def get_placeholder(self, placeholder_id: str) -> Placeholder:
        """A placeholder by its id: ``<id>``, ``cg-ph-<id>``, or the whole placeholder."""
        bare = _bare_id(placeholder_id)
        found = self._placeholder(bare)
        if found is None:
            raise NotFound(f"no placeholder {shown(bare)}")
        return found

    def list_placeholders(self, *, credential_id: str | None = None,
                          agent_id: str | None = None) -> list[Placeholder]:
        """Placeholders, revoked ones too, oldest first; of one credential or agent if
        named."""
        rows = self._conn.execute(_PLACEHOLDERS, (credential_id, agent_id))
        return [Placeholder(*row) for row in rows]

    def revoke_placeholder(self, placeholder_id: str, *, now: float) -> Placeholder:
        """Revoke a placeholder (named by its id, with or without ``cg-ph-``) from ``now``
        on; ``StoreError`` if it is revoked already."""
        with self.store.write():
            found = self.get_placeholder(placeholder_id)
            if found.revoked:
                raise StoreError(f"placeholder {found.shown} is revoked already")
            self._conn.execute(
                "UPDATE credential_placeholders SET revoked_at = ? WHERE placeholder_id = ?",
                (now, found.placeholder_id))
            self.store.bump(CREDENTIALS_DOMAIN)
        return replace(found, revoked_at=now)

    # -- the data plane's snapshot ----------------------------------------------------

    def keyring(self) -> Keyring:
        """Every credential and placeholder, revoked ones too, for an ``Injector``.

        The generation is read first, so the keyring is never older than the generation
        it carries: a write in between only causes one extra rebuild.
        """
        generation = self.generation()
        credentials = {c.credential_id: c for c in self.list_credentials()}
        placeholders = {p.placeholder_id: p for p in self.list_placeholders()}
        return Keyring(credentials, placeholders, generation)

    # -- rows -------------------------------------------------------------------------

    def _credential(self, credential_id: str) -> Credential | None:
        row = self._conn.execute(_CREDENTIAL_BY_ID, (credential_id,)).fetchone()
        return _credential(row) if row else None

    def _placeholder(self, placeholder_id: str) -> Placeholder | None:
        row = self._conn.execute(_PLACEHOLDER_BY_ID, (placeholder_id,)).fetchone()
        return Placeholder(*row) if row else None


def _bare_id(text: str) -> str:
    """The id of a placeholder as an operator names it; ``StoreError`` (which does not
    quote ``text``: it may be a whole placeholder) if it names none."""
    text = text.strip()
    whole = placeholder_id_of(text)
    if whole is not None:
        return whole
    bare = text.removeprefix(PLACEHOLDER_PREFIX)
    if len(bare) != 2 * ID_BYTES or not set(bare) <= set("0123456789abcdef"):
        raise StoreError("not a placeholder id: expected cg-ph- and 16 hex digits")
    return bare


def _credential_row(c: Credential) -> tuple[Any, ...]:
    return (c.credential_id, c.provider, json.dumps(list(c.hosts)), c.injection.header,
            c.injection.template, c.sealed, c.data_key_id, int(c.allow_cleartext),
            c.created_at, c.rotated_at, c.revoked_at)


def _credential(row: Sequence[Any]) -> Credential:
    (cid, provider, hosts, header, template, sealed, data_key_id, cleartext, created,
     rotated, revoked) = row
    return Credential(cid, provider, tuple(json.loads(hosts)), Injection(header, template),
                      bytes(sealed), data_key_id, created, bool(cleartext), rotated, revoked)
