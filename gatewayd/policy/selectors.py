"""What a policy rule selects: which agents (``identity``) and which destinations.

These are the parts of a rule the plan's indexes match on: an ``IdentitySelector`` over
agent, team, project and environment, and a ``Destination`` of host patterns, networks,
ports and a protocol, with the helpers that validate and normalize host patterns and port
ranges. ``PolicyModel`` and ``Name`` are the base model and the name type every part of a
policy document uses. Pure; the meaning of each field is in ``docs/policy.md``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatewayd.selector_values import check_values

# Bound on the entries of one list field; it keeps compile time and memory predictable.
MAX_ENTRIES_PER_FIELD = 10_000

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Name = Annotated[str, Field(pattern=_NAME)]
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class PolicyModel(BaseModel):
    """A part of a policy document: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    ANY = "any"


def normalize_host(host: str) -> str:
    """Lower-case, without a trailing dot: the form hosts are compared in."""
    return host.strip().rstrip(".").lower()


def check_host_pattern(pattern: str) -> str:
    """Validate one ``hosts`` entry: an exact name or ``*.suffix``; returns it normalized."""
    host = normalize_host(pattern)
    if not host:
        raise ValueError("empty host name")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError(f"{pattern!r} is an address: put addresses under cidrs (e.g. {host}/32)")
    if host == "*":
        raise ValueError("'*' alone is not a host pattern: omit destination to match any")
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise ValueError(f"{pattern!r}: a wildcard needs a suffix, such as *.example.com")
    if len(host) > 253:
        raise ValueError(f"{pattern!r}: longer than 253 characters")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(
                f"{pattern!r}: {label!r} is not a valid DNS label (use '*.' only as the first"
                " label; internationalized names in their xn-- form)"
            )
    return host


class IdentitySelector(PolicyModel):
    """Which agents a rule is for. Each field is ``*`` (any), a value, or a list of values."""

    agent: Literal["*"] | Name | list[Name] = "*"
    team: Literal["*"] | Name | list[Name] = "*"
    project: Literal["*"] | Name | list[Name] = "*"
    environment: Literal["*"] | Name | list[Name] = "*"

    @field_validator("agent", "team", "project", "environment", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        return check_values(value, MAX_ENTRIES_PER_FIELD)

    def values(self, field: str) -> tuple[str, ...] | None:
        """The accepted values of ``field``, or ``None`` for any."""
        value = getattr(self, field)
        if value == "*":
            return None
        return (value,) if isinstance(value, str) else tuple(dict.fromkeys(value))


IDENTITY_FIELDS = ("agent", "team", "project", "environment")


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def parse_port(value: Any) -> PortRange:
    """``443`` or ``"8000-8100"`` → ``PortRange``; raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("expected a port number or a range like 8000-8100")
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,5}(-\d{1,5})?", value.strip()):
        a, _, b = value.strip().partition("-")
        low, high = int(a), int(b or a)
    else:
        raise ValueError(f"{value!r}: expected a port number or a range like 8000-8100")
    if not (1 <= low <= high <= 65535):
        raise ValueError(f"{value!r}: ports are 1-65535, low end first")
    return PortRange(low, high)


class Destination(PolicyModel):
    """Where a rule applies. Hosts and CIDRs are alternatives: either may match."""

    hosts: list[str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default=[], max_length=MAX_ENTRIES_PER_FIELD
    )
    ports: list[int | str] = Field(default=[], max_length=MAX_ENTRIES_PER_FIELD)
    protocol: Protocol = Protocol.ANY

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_host_pattern(h) for h in value))

    @field_validator("cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"{item!r}: expected a network such as 10.0.0.0/8")
            try:
                out.append(ipaddress.ip_network(item.strip(), strict=True))
            except ValueError as exc:
                raise ValueError(f"{item!r}: {exc}") from None
        return list(dict.fromkeys(out))

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int | str]) -> list[int | str]:
        seen: dict[PortRange, int | str] = {}
        for item in value:
            seen.setdefault(parse_port(item), item)
        return list(seen.values())

    def port_ranges(self) -> tuple[PortRange, ...]:
        return tuple(parse_port(p) for p in self.ports)

    @property
    def any_destination(self) -> bool:
        return not self.hosts and not self.cidrs
