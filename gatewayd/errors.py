"""The few exception types Clawgress raises on purpose.

Everything a user can cause (a bad file, a bad flag, a refused bundle) derives from
``ClawgressError``; the CLI prints its message as one line and exits with code 2. Anything
else reaching the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations


class ClawgressError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""


class ConfigError(ClawgressError):
    """The gateway configuration is missing or invalid."""


class StoreError(ClawgressError):
    """The store refused an operation (bad input, conflicting state)."""


class NotFound(StoreError):
    """The named object does not exist."""


class PolicyError(ClawgressError):
    """A policy document or bundle is invalid, or a condition cannot be compiled."""


class BundleVerificationError(PolicyError):
    """A bundle was refused: signature, key, integrity, version, expiry or archive shape."""


class ParseError(ClawgressError, ValueError):
    """Input bytes are not what the parser accepts (not: incomplete)."""
