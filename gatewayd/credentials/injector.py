"""``Injector``: swaps a request's placeholder for the provider key it stands for. Pure.

Two calls per request, on either side of the quota stage:

* ``claim(agent_id, host, headers, upstream, tls=...)`` finds the placeholder in the
  request's carriers and checks it: well formed, known (its hash matches), issued to the
  agent making the request, not revoked, its credential not revoked, the host one its
  credential may be sent to, and the connection to it TLS unless the credential allows
  clear text. It returns a ``Claim`` (``None`` when the request carries no placeholder)
  whose ``credential_id`` the quota stage passes on, or raises ``CredentialRefused``
  (``kind`` says which check failed). The key is unsealed here, so a data key that does not
  open it refuses the request before anything is held or sent.
* ``inject(claim, headers, upstream)`` takes the outgoing request (after every other
  rewrite: no other stage ever sees the key) and returns it with each carrier that held
  the placeholder removed (a ``key=`` query parameter too) and the credential's header
  set to the key, in the credential's format.

The injector reads an immutable ``Keyring``, the store's credentials and placeholders at
one generation (``Vault.keyring``); the engine builds a new one when the generation moves.
Nothing here logs; refusals name placeholders by id and credentials by theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatewayd.credentials.carriers import (
    AUTH_HEADERS,
    QUERY_CARRIER,
    Headers,
    carried,
    without_headers,
    without_query_keys,
)
from gatewayd.credentials.errors import CredentialRefused, SealError
from gatewayd.credentials.model import Credential, Placeholder, shown
from gatewayd.credentials.placeholders import (
    is_placeholder_like,
    placeholder_id_of,
    verify_placeholder,
)
from gatewayd.credentials.providers import Injection
from gatewayd.credentials.sealing import DataKey
from gatewayd.credentials.secret import Secret


@dataclass(frozen=True, slots=True)
class Keyring:
    """The store's credentials and placeholders, by id, at ``generation``."""

    credentials: Mapping[str, Credential] = field(default_factory=dict)
    placeholders: Mapping[str, Placeholder] = field(default_factory=dict)
    generation: int = 0

    def carriers(self) -> frozenset[str]:
        """The headers a placeholder may ride in: the usual auth headers and every header a
        credential is injected in."""
        return AUTH_HEADERS | {c.injection.header for c in self.credentials.values()}


@dataclass(frozen=True, slots=True)
class Claim:
    """A request's placeholder, checked: whose, for which credential, found where. The
    unsealed key rides along for ``inject`` (a ``Secret``: never printed)."""

    placeholder_id: str
    credential_id: str
    provider: str
    agent_id: str
    carriers: tuple[str, ...]
    injection: Injection
    key: Secret = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """For the request's record."""
        return {"placeholder": shown(self.placeholder_id), "credential": self.credential_id,
                "provider": self.provider, "carriers": list(self.carriers),
                "header": self.injection.header}


@dataclass(frozen=True, slots=True)
class Injected:
    """The request as it goes upstream: ``headers`` (with the key; left out of ``repr``)
    and ``upstream``, its origin-form target; ``note`` says what was done."""

    headers: Headers = field(repr=False)
    upstream: str
    note: str


class Injector:
    """Checks and swaps placeholders against one ``Keyring``."""

    name = "credentials"

    def __init__(self, keyring: Keyring, data_key: DataKey) -> None:
        self.keyring = keyring
        self._data_key = data_key
        self.carriers = keyring.carriers()

    @property
    def generation(self) -> int:
        return self.keyring.generation

    def claim(self, agent_id: str, host: str, headers: Headers, upstream: str, *,
              tls: bool) -> Claim | None:
        """The placeholder the request carries, checked for ``agent_id`` sending it to
        ``host`` (over TLS or not); ``None`` if it carries none. ``CredentialRefused`` when
        it may not be used (module docstring)."""
        found = [c for c in carried(headers, upstream, self.carriers)
                 if is_placeholder_like(c.token)]
        if not found:
            return None
        ids: list[str] = []
        for c in found:
            pid = placeholder_id_of(c.token)
            if pid is None:
                raise CredentialRefused(
                    f"a malformed placeholder in {c.carrier} (a placeholder reads"
                    " cg-ph-<16 hex digits>-<43 characters>)", "placeholder-malformed")
            if pid not in ids:
                ids.append(pid)
        if len({c.token for c in found}) > 1:
            named = ", ".join(shown(pid) for pid in ids)
            raise CredentialRefused(f"the request carries more than one placeholder ({named})",
                                    "placeholder-conflict")
        pid = ids[0]
        record = self.keyring.placeholders.get(pid)
        if record is None or not verify_placeholder(found[0].token, record.hash):
            raise CredentialRefused(f"placeholder {shown(pid)} is not known to this gateway",
                                    "placeholder-unknown", placeholder_id=pid)
        if record.agent_id != agent_id:
            raise CredentialRefused(f"placeholder {shown(pid)} is not issued to agent"
                                    f" {agent_id}", "placeholder-wrong-agent",
                                    placeholder_id=pid)
        if record.revoked:
            raise CredentialRefused(f"placeholder {shown(pid)} is revoked",
                                    "placeholder-revoked", placeholder_id=pid)
        credential = self.keyring.credentials.get(record.credential_id)
        if credential is None:
            raise CredentialRefused(f"placeholder {shown(pid)}: its credential"
                                    f" {record.credential_id} is not in the store",
                                    "credential-unknown", placeholder_id=pid)
        cid = credential.credential_id
        if credential.revoked:
            raise CredentialRefused(f"placeholder {shown(pid)}: credential {cid} is revoked",
                                    "credential-revoked", placeholder_id=pid)
        if not credential.admits(host):
            raise CredentialRefused(f"placeholder {shown(pid)}: credential {cid} is not for"
                                    f" host {host} (it is for {', '.join(credential.hosts)})",
                                    "placeholder-wrong-host", placeholder_id=pid)
        if not tls and not credential.allow_cleartext:
            raise CredentialRefused(f"placeholder {shown(pid)}: credential {cid} is sent"
                                    f" inside TLS only, and this request to {host} is plain"
                                    " HTTP", "credential-cleartext", placeholder_id=pid)
        try:
            key = self._data_key.unseal(credential.sealed, cid)
        except SealError as exc:
            raise CredentialRefused(f"placeholder {shown(pid)}: {exc}",
                                    "credential-unsealable", 500, pid) from None
        carriers = tuple(dict.fromkeys(c.carrier for c in found))
        return Claim(pid, cid, credential.provider, agent_id, carriers, credential.injection,
                     key)

    def inject(self, claim: Claim, headers: Headers, upstream: str) -> Injected:
        """The outgoing request with ``claim``'s placeholder swapped for its key.

        ``headers`` and ``upstream`` are the request as it is about to be sent; a
        placeholder other than the claimed one there is refused (``CredentialRefused``).
        """
        injection = claim.injection
        dropped = {injection.header}
        for c in carried(headers, upstream, self.carriers):
            if not is_placeholder_like(c.token):
                continue
            if placeholder_id_of(c.token) != claim.placeholder_id:
                raise CredentialRefused(
                    f"the request carries a placeholder besides"
                    f" {shown(claim.placeholder_id)}", "placeholder-conflict",
                    placeholder_id=claim.placeholder_id)
            if c.carrier != QUERY_CARRIER:
                dropped.add(c.carrier.removeprefix("header:"))
        out = without_headers(headers, dropped)
        out.append((injection.header.encode("ascii"), injection.value(claim.key)))
        return Injected(out, without_query_keys(upstream, is_placeholder_like),
                        f"{shown(claim.placeholder_id)} -> credential {claim.credential_id}"
                        f" in {injection.header}")
