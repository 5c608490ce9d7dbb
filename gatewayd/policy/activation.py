"""Publishing bundles, the active bundle, the last-known-good file, and what a gateway enforces.

``publish`` verifies a bundle, parses and compiles its documents, refuses a version that is
not newer than every version published before (rollback), then in one store transaction
records it, makes it active and bumps the ``policy`` generation; the same bundle is written
to the last-known-good file (temp file, fsync, rename) before that transaction commits.
A refused publish changes neither the store nor the file.

``load_active`` is what a gateway enforces: the active bundle from the store, verified again
(trusted keys may have changed) and compiled; failing that, the last-known-good file;
failing that, a plan that denies everything and says why. An expired bundle is handled by
``policy.on_expired``: ``deny-all`` or ``keep`` (enforced, and noted in ``problems``).

The checks (``prepare_bundle``, ``check_newer``, ``enforce``) are pure; reading keys, the
store and the file are the thin functions around them. Time is always an argument.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gatewayd.config import Config, PolicySection
from gatewayd.errors import BundleVerificationError, PolicyError, StoreError
from gatewayd.policy.bundle import BundleLimits, format_timestamp
from gatewayd.policy.bundle_files import (
    discard_file,
    install_file,
    read_bundle_file,
    stage_file,
)
from gatewayd.policy.compile import compile_plan
from gatewayd.policy.documents import parse_documents, parse_quotas
from gatewayd.policy.guard import Guard
from gatewayd.policy.plan import Plan
from gatewayd.policy.signing import TrustedKeys, VerifiedBundle, read_trusted_keys, verify_bundle
from gatewayd.store import Store

Source = Literal["store", "last-known-good", "none"]
OnExpired = Literal["deny-all", "keep"]
# The last-known-good file holds a signed policy: readable by the gateway's group only.
LKG_MODE = 0o640


@dataclass(frozen=True)
class Trust:
    """How bundles are verified: trusted keys by id, archive bounds, signatures on or off."""

    keys: TrustedKeys
    limits: BundleLimits
    require_signature: bool

    @classmethod
    def from_config(cls, policy: PolicySection) -> Trust:
        """Reads the trusted key files (only when signatures are required)."""
        keys = read_trusted_keys(policy.trusted_keys) if policy.require_signature else {}
        return cls(keys, BundleLimits.from_config(policy), policy.require_signature)


@dataclass(frozen=True)
class CompiledBundle:
    """A verified bundle and the plan compiled from its documents."""

    bundle: VerifiedBundle
    plan: Plan

    @property
    def version(self) -> int:
        return self.bundle.version


def prepare_bundle(
    data: bytes, *, trust: Trust, guard: Guard, now: float, allow_expired: bool = False
) -> CompiledBundle:
    """Verify ``data``, then parse and compile its documents; any failure is a refusal."""
    bundle = verify_bundle(
        data,
        keys=trust.keys,
        limits=trust.limits,
        now=now,
        require_signature=trust.require_signature,
        allow_expired=allow_expired,
    )
    try:
        documents = parse_documents(bundle.documents)
        plan = compile_plan(documents, bundle_version=bundle.version, guard=guard,
                            quotas=parse_quotas(bundle.documents))
    except BundleVerificationError:
        raise
    except PolicyError as exc:
        raise BundleVerificationError(f"policy documents are invalid: {exc}") from None
    return CompiledBundle(bundle, plan)


def check_newer(version: int, *, active: int | None, highest: int | None) -> None:
    """Refuse ``version`` unless it is greater than every version published before."""
    if active is not None and version <= active:
        raise BundleVerificationError(
            f"bundle version {version} is not newer than the active version {active}"
            " (rollback refused)"
        )
    if highest is not None and version <= highest:
        raise BundleVerificationError(
            f"bundle version {version} is not newer than version {highest}, published"
            " before (rollback refused)"
        )


# --- the store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleRecord:
    """One published bundle as the store keeps it (without its bytes)."""

    version: int
    sha256: str
    created_at: str
    expires_at: str
    key_id: str | None
    published_at: float
    active: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "key_id": self.key_id,
            "published_at": format_timestamp(self.published_at),
            "active": self.active,
        }


_RECORD_COLUMNS = (
    "b.version, b.sha256, b.created_at, b.expires_at, b.key_id, b.published_at,"
    " a.version IS NOT NULL"
)


def _record(row: Any) -> BundleRecord:
    version, sha, created, expires, key, published, active = row
    return BundleRecord(int(version), sha, created, expires, key, float(published), bool(active))


def bundle_history(store: Store) -> list[BundleRecord]:
    """Every bundle ever published, newest first."""
    rows = store.conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM policy_bundles b"  # noqa: S608 (constant columns)
        " LEFT JOIN policy_active a ON a.version = b.version ORDER BY b.version DESC"
    ).fetchall()
    return [_record(r) for r in rows]


def active_record(store: Store) -> BundleRecord | None:
    row = store.conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM policy_active a"  # noqa: S608 (constant columns)
        " JOIN policy_bundles b ON b.version = a.version WHERE a.id = 1"
    ).fetchone()
    return _record(row) if row else None


def _active_blob(store: Store) -> tuple[int, str, bytes] | None:
    row = store.conn.execute(
        "SELECT b.version, b.sha256, b.blob FROM policy_active a"
        " JOIN policy_bundles b ON b.version = a.version WHERE a.id = 1"
    ).fetchone()
    if row is None:
        return None
    version, sha256, blob = row
    if not isinstance(blob, bytes):
        raise StoreError(f"the bundle of version {version} is not stored as bytes")
    return int(version), str(sha256), blob


def _versions(store: Store) -> tuple[int | None, int | None]:
    """(active version, highest version ever published)."""
    active = store.conn.execute("SELECT version FROM policy_active WHERE id = 1").fetchone()
    highest = store.conn.execute("SELECT MAX(version) FROM policy_bundles").fetchone()
    return (
        int(active[0]) if active else None,
        int(highest[0]) if highest and highest[0] is not None else None,
    )


# --- publishing -----------------------------------------------------------------------------


def publish(store: Store, data: bytes, config: Config, now: float) -> BundleRecord:
    """Verify, compile and activate bundle ``data``; write it as the last-known-good file.

    Raises ``BundleVerificationError`` (nothing changed) when the bundle is refused. The
    file is renamed into place while the store's write lock is held, just before commit,
    so concurrent publishers leave the file and the store agreeing.
    """
    policy = config.policy
    compiled = prepare_bundle(
        data, trust=Trust.from_config(policy), guard=Guard.from_config(config), now=now
    )
    bundle = compiled.bundle
    lkg = policy.last_known_good
    staged = stage_file(lkg, data, mode=LKG_MODE)
    try:
        with store.write():
            active, highest = _versions(store)
            check_newer(bundle.version, active=active, highest=highest)
            store.conn.execute(
                "INSERT INTO policy_bundles(version, sha256, created_at, expires_at, key_id,"
                " published_at, blob) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (bundle.version, bundle.sha256, bundle.manifest.created_at,
                 bundle.manifest.expires_at, bundle.key_id, now, data),
            )
            store.conn.execute(
                "INSERT INTO policy_active(id, version, activated_at) VALUES (1, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET version = excluded.version,"
                " activated_at = excluded.activated_at",
                (bundle.version, now),
            )
            store.bump("policy")
            install_file(staged, lkg)
    except sqlite3.Error as exc:
        discard_file(staged)
        raise StoreError(f"store {store.path}: cannot publish: {exc}") from None
    except BaseException:
        discard_file(staged)
        raise
    return BundleRecord(
        bundle.version, bundle.sha256, bundle.manifest.created_at, bundle.manifest.expires_at,
        bundle.key_id, now, True,
    )


# --- what a gateway enforces ----------------------------------------------------------------


@dataclass
class ActivePolicy:
    """The plan a gateway enforces and where it came from.

    ``source`` is ``store`` (the active bundle), ``last-known-good`` (the file, because the
    store's bundle could not be used) or ``none`` (nothing valid: ``plan`` denies all).
    ``problems`` says what went wrong on the way, in order.
    """

    plan: Plan
    version: int | None
    source: Source
    problems: list[str] = field(default_factory=list)
    key_id: str | None = None
    created_at: str | None = None
    expires_at: str | None = None
    expired: bool = False
    documents: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "source": self.source,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": self.expired,
            "documents": list(self.documents),
            "deny_all": self.plan.deny_all_reason,
            "problems": list(self.problems),
        }


def enforce(
    compiled: CompiledBundle, source: Source, problems: list[str], *, on_expired: OnExpired,
    now: float,
) -> ActivePolicy:
    """The policy to enforce from a usable bundle, applying ``on_expired`` when it expired."""
    bundle = compiled.bundle
    manifest = bundle.manifest
    expired = bundle.expired(now)
    plan = compiled.plan
    if expired:
        if on_expired == "deny-all":
            reason = (f"policy bundle version {bundle.version} expired at {manifest.expires_at}"
                      " (policy.on_expired: deny-all)")
            plan = Plan.deny_all(reason, bundle_version=bundle.version)
            problems = [*problems, reason]
        else:
            problems = [*problems, (
                f"policy bundle version {bundle.version} expired at {manifest.expires_at};"
                " still enforced (policy.on_expired: keep)"
            )]
    return ActivePolicy(
        plan=plan,
        version=bundle.version,
        source=source,
        problems=problems,
        key_id=bundle.key_id,
        created_at=manifest.created_at,
        expires_at=manifest.expires_at,
        expired=expired,
        documents=tuple(d.path for d in manifest.documents),
    )


def load_active(store: Store, config: Config, now: float) -> ActivePolicy:
    """What a gateway should enforce now: store, else last-known-good, else deny-all."""
    policy = config.policy
    problems: list[str] = []
    try:
        trust: Trust | None = Trust.from_config(policy)
    except BundleVerificationError as exc:
        trust = None
        problems.append(str(exc))
    guard = Guard.from_config(config)
    if trust is not None:
        compiled = _from_store(store, trust, guard, now, problems)
        if compiled is not None:
            return enforce(compiled, "store", problems, on_expired=policy.on_expired, now=now)
        compiled = _from_last_known_good(policy.last_known_good, trust, guard, now, problems)
        if compiled is not None:
            return enforce(compiled, "last-known-good", problems, on_expired=policy.on_expired,
                           now=now)
    reason = "no valid policy bundle: " + "; ".join(problems)
    return ActivePolicy(Plan.deny_all(reason), None, "none", problems)


def _from_store(
    store: Store, trust: Trust, guard: Guard, now: float, problems: list[str]
) -> CompiledBundle | None:
    try:
        active = _active_blob(store)
    except (sqlite3.Error, StoreError) as exc:
        problems.append(f"store {store.path}: cannot read the active bundle: {exc}")
        return None
    if active is None:
        problems.append("no bundle has been published to the store")
        return None
    version, sha256, blob = active
    try:
        compiled = prepare_bundle(blob, trust=trust, guard=guard, now=now, allow_expired=True)
    except BundleVerificationError as exc:
        problems.append(f"active bundle version {version} in the store refused: {exc}")
        return None
    if compiled.bundle.sha256 != sha256 or compiled.version != version:
        problems.append(
            f"active bundle version {version} in the store refused: it does not match its"
            " record (sha256 or version)"
        )
        return None
    return compiled


def _from_last_known_good(
    path: Path, trust: Trust, guard: Guard, now: float, problems: list[str]
) -> CompiledBundle | None:
    if not path.exists():
        problems.append(f"no last-known-good file at {path}")
        return None
    try:
        data = read_bundle_file(path, trust.limits)
        return prepare_bundle(data, trust=trust, guard=guard, now=now, allow_expired=True)
    except PolicyError as exc:
        problems.append(f"last-known-good {path} refused: {exc}")
        return None
