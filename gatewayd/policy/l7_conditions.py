"""A rule's L7 conditions: what only the L7 engine can tell about a request.

``L7Conditions`` is a rule's ``l7:`` block: HTTP methods, path globs, providers, model and
tool globs, DLP classes and bounds on the token estimate (``TokenBounds``). Every listed
condition must hold. At L4 a rule with any of them can only be decided by inspecting the
flow. Pure; the meaning of each field is in ``docs/policy.md``.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from gatewayd.policy.selectors import MAX_ENTRIES_PER_FIELD, Name, PolicyModel

_METHOD = re.compile(r"^[A-Z]{1,20}$")
_GLOB_OK = re.compile(r"^[\x21-\x7e]{1,1024}$")


class TokenBounds(PolicyModel):
    """Inclusive bounds on the request's prompt token estimate."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _order(self) -> TokenBounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _globs(value: list[str]) -> list[str]:
    for item in value:
        if not _GLOB_OK.match(item):
            raise ValueError(f"{item!r}: patterns are 1-1024 printable characters, no spaces")
    return value


class L7Conditions(PolicyModel):
    """Conditions only the L7 engine can answer. At L4 a rule with any of these can only
    be decided by inspecting the flow, so it turns the L4 decision into ``inspect``."""

    methods: list[str] = Field(default=[], max_length=64)
    paths: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    providers: list[Name] = Field(default=[], max_length=256)
    models: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    tools: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    dlp_classes: list[str] = Field(default=[], max_length=1024)
    token_estimate: TokenBounds | None = None

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        out = []
        for m in value:
            if not _METHOD.match(m.upper()):
                raise ValueError(f"{m!r}: expected an HTTP method such as GET or POST")
            out.append(m.upper())
        return out

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for p in _globs(value):
            if not p.startswith("/") and p != "*":
                raise ValueError(f"{p!r}: a path pattern starts with '/'")
        return value

    @field_validator("models", "tools")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _globs(value)

    @field_validator("dlp_classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        for c in value:
            if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", c):
                raise ValueError(f"{c!r}: expected a dotted class such as secrets or pii.email")
        return value

    def fields(self) -> tuple[str, ...]:
        """Names of the conditions that are set."""
        return tuple(
            name
            for name in ("methods", "paths", "providers", "models", "tools", "dlp_classes",
                         "token_estimate")
            if getattr(self, name)
        )
