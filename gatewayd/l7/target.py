"""Where an HTTP request goes, read from its request line and ``Host`` header.

``read_target`` turns a request's method, target and ``Host`` header into a ``Target``:
the host and port it names, the path policy matches on and the target to send upstream.
Which forms are accepted depends on how the request arrived:

* transparent (a flow diverted to the L7 engine): origin-form (``/path?q``), or
  absolute-form whose authority is the ``Host``; ``Host`` is required (HTTP/1.1);
* explicit proxy: absolute-form ``http://host[:port]/path`` (``https://`` is refused:
  clients send ``CONNECT`` for TLS), or authority-form ``host:port`` for ``CONNECT``.

Paths are normalized before policy sees them, and the normalized path is what goes
upstream, so the two never disagree: percent-encoded unreserved characters are decoded,
dot segments removed (RFC 3986 §5.2.4). A path with an encoded ``/`` or ``\\``, a NUL, or a
``#`` is refused: servers read them in different ways. Pure.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from gatewayd.errors import ParseError

MAX_TARGET = 8192
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
# A fragment, a space or a control character: never in a request target.
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f#]")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Bytes a path or query may carry as they are (RFC 3986 pchar, '/', '?', and '%' escapes).
_PATH_OK = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")
_QUERY_OK = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]|{}^`\"<> ]*$")


class TargetError(ParseError):
    """A request whose target or ``Host`` cannot be used; ``status`` is what to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Target:
    """A request's destination: ``host`` (lower case, no trailing dot; an address in
    compressed form, without brackets), ``port``, the normalized ``path`` (no query) that
    policy matches, and ``upstream`` — the origin-form target sent on (path and query)."""

    host: str
    port: int
    path: str
    upstream: str
    is_address: bool = False

    @property
    def authority(self) -> str:
        """``host:port`` as a ``Host`` header or CONNECT target writes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def host_header(self, default_port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default_port else f"{host}:{self.port}"


def parse_host(text: str, default_port: int) -> tuple[str, int, bool]:
    """``host[:port]`` (an IPv6 address in brackets): the host in canonical form, the port,
    and whether the host is an address."""
    if not text or len(text) > 261:
        raise TargetError("empty or overlong host")
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetError(f"host {text[:80]!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise TargetError(f"host {text[:80]!r}: junk after ']'")
            port = _port(rest[1:])
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetError(f"host {text[:80]!r}: not an IPv6 address") from None
        if ip6.scope_id:
            raise TargetError(f"host {text[:80]!r}: an address with a zone")
        return ip6.compressed, port, True
    if ":" in text:
        host, _, port_text = text.rpartition(":")
        port = _port(port_text)
    host = host.rstrip(".").lower()
    try:
        ip4 = ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return ip4.compressed, port, True
    if not host or len(host) > 253 or not all(_HOST_LABEL.match(x) for x in host.split(".")):
        raise TargetError(f"host {text[:80]!r}: not a host name")
    return host, port, False


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise TargetError(f"port {text[:8]!r}: expected 1 to 65535")
    return int(text)


def normalize_path(raw: str) -> str:
    """``raw`` (a path without query) with unreserved escapes decoded and dot segments
    removed; ``TargetError`` for a path servers could read otherwise."""
    if not raw.startswith("/"):
        raise TargetError(f"path {raw[:80]!r}: does not start with '/'")
    if not _PATH_OK.match(raw):
        raise TargetError(f"path {raw[:80]!r}: characters a path cannot carry")

    def unescape(m: re.Match[str]) -> str:
        byte = int(m.group(1), 16)
        if byte in _UNRESERVED:
            return chr(byte)
        if byte in (0x2F, 0x5C, 0x00):
            raise TargetError(f"path {raw[:80]!r}: an encoded '/', '\\' or NUL")
        return "%" + m.group(1).upper()

    if "%" in raw:
        if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
            raise TargetError(f"path {raw[:80]!r}: a '%' that is not an escape")
        raw = _PCT.sub(unescape, raw)
    if "/." not in raw:
        return raw
    out: list[str] = []
    segments = raw.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _split(target: str) -> tuple[str, str]:
    path, sep, query = target.partition("?")
    if sep and not _QUERY_OK.match(query):
        raise TargetError("the query carries characters a query cannot carry")
    return path, (sep + query)


def read_target(method: str, target: bytes, host_header: bytes | None, *, via: str,
                default_port: int) -> Target:
    """The ``Target`` of a request (see the module docstring); ``via`` is ``transparent``
    or ``proxy``; ``default_port`` is the port a ``Host`` without one means (the flow's
    original port for transparent requests, 80 for absolute ``http://`` URLs).

    Agents call the same few endpoints over and over: the targets of short request lines
    are remembered (``_REMEMBERED`` of them; what is refused is worked out each time)."""
    if len(target) <= _REMEMBERED_TARGET and (host_header is None
                                              or len(host_header) <= _REMEMBERED_TARGET):
        return _remembered(method, target, host_header, via, default_port)
    return _read_target(method, target, host_header, via, default_port)


_REMEMBERED = 1024
_REMEMBERED_TARGET = 512  # bytes of target (and of Host) a remembered target may have


@functools.lru_cache(maxsize=_REMEMBERED)
def _remembered(method: str, target: bytes, host_header: bytes | None, via: str,
                default_port: int) -> Target:
    return _read_target(method, target, host_header, via, default_port)


def _read_target(method: str, target: bytes, host_header: bytes | None, via: str,
                 default_port: int) -> Target:
    if len(target) > MAX_TARGET:
        raise TargetError(f"request target over {MAX_TARGET} bytes", 414)
    try:
        text = target.decode("ascii")
        host_text = host_header.decode("ascii") if host_header is not None else None
    except UnicodeDecodeError:
        raise TargetError("request target or Host is not ASCII") from None
    if _TARGET_BAD.search(text):
        raise TargetError("request target carries a fragment or control characters")
    if method == "CONNECT":
        if via != "proxy":
            raise TargetError("CONNECT is for the explicit proxy", 405)
        host, port, is_address = parse_host(text, 0)
        if port == 0:
            raise TargetError("a CONNECT target needs a port (host:port)")
        return Target(host, port, "", "", is_address)
    lowered = text[:8].lower()
    if lowered.startswith("http://"):
        rest = text[7:]
        slash = rest.find("/")
        authority, path_query = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
        if "@" in authority:
            raise TargetError("credentials in the request URL are refused")
        host, port, is_address = parse_host(authority, 80)
        if host_text is not None and via == "transparent":
            named = parse_host(host_text.strip(), default_port)
            if named[:2] != (host, port):
                raise TargetError("the request URL and Host name different servers")
    elif lowered.startswith("https://"):
        raise TargetError("an https:// URL through the proxy: use CONNECT (HTTPS_PROXY)")
    elif text.startswith("/"):
        if via == "proxy":
            raise TargetError("a proxy request needs an absolute URL (http://host/path)")
        if host_text is None:
            raise TargetError("no Host header")
        host, port, is_address = parse_host(host_text.strip(), default_port)
        path_query = text
    elif text == "*" and method == "OPTIONS":
        if host_text is None:
            raise TargetError("no Host header")
        host, port, is_address = parse_host(host_text.strip(), default_port)
        return Target(host, port, "*", "*", is_address)
    else:
        raise TargetError(f"request target {text[:80]!r}: not a path or an http:// URL")
    raw_path, query = _split(path_query)
    path = normalize_path(raw_path)
    return Target(host, port, path, path + query, is_address)
