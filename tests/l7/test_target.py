"""Reading where a request goes: forms by listener, hosts, ports and path normalization."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.l7.target import TargetError, normalize_path, parse_host, read_target


@pytest.mark.parametrize(("raw", "normal"), [
    ("/", "/"), ("/a/b", "/a/b"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/../x", "/x"),
    ("/a/b/..", "/a/"), ("/a/%62", "/a/b"), ("/%7Euser", "/~user"), ("/a%2Db", "/a-b"),
    ("/a/%2e%2e/b", "/b"), ("/q%3fx", "/q%3Fx"), ("//a", "//a"),
])
def test_paths_are_normalized(raw: str, normal: str) -> None:
    assert normalize_path(raw) == normal


@pytest.mark.parametrize("raw", ["/a%2fb", "/a%5cb", "/a%00", "/a%zz", "/a%4", "a", "/ü",
                                 "/a b"])
def test_paths_servers_read_otherwise_are_refused(raw: str) -> None:
    with pytest.raises(TargetError):
        normalize_path(raw)


@given(st.text(alphabet="/.%2eE5fFaAbB-_~", max_size=40).map(lambda s: "/" + s))
def test_normalization_is_idempotent_and_never_leaves_dot_segments(raw: str) -> None:
    try:
        once = normalize_path(raw)
    except TargetError:
        return
    assert normalize_path(once) == once
    assert "/../" not in once + "/" and "/./" not in once + "/"


@pytest.mark.parametrize(("text", "expected"), [
    ("Example.COM", ("example.com", 80, False)), ("example.com.:8080", ("example.com", 8080,
                                                                          False)),
    ("10.0.0.1:443", ("10.0.0.1", 443, True)), ("[fd00::1]", ("fd00::1", 80, True)),
    ("[fd00::1]:8443", ("fd00::1", 8443, True)),
])
def test_hosts(text: str, expected: tuple[str, int, bool]) -> None:
    assert parse_host(text, 80) == expected


@pytest.mark.parametrize("text", ["", "exa mple.com", "a:0", "a:65536", "a:x", "[fd00::1",
                                  "[fd00::1]x", "[fe80::1%eth0]", "-bad-.com", "a" * 300])
def test_bad_hosts(text: str) -> None:
    with pytest.raises(TargetError):
        parse_host(text, 80)


def test_transparent_requests_take_the_host_header_and_the_flows_port() -> None:
    t = read_target("GET", b"/v1/models?x=1", b"api.openai.com", via="transparent",
                    default_port=443)
    assert (t.host, t.port, t.path, t.upstream) == ("api.openai.com", 443, "/v1/models",
                                                    "/v1/models?x=1")
    with pytest.raises(TargetError, match="no Host"):
        read_target("GET", b"/", None, via="transparent", default_port=80)
    with pytest.raises(TargetError, match="different servers"):
        read_target("GET", b"http://a.com/", b"b.com", via="transparent", default_port=80)


def test_proxy_requests_are_absolute_or_connect() -> None:
    t = read_target("GET", b"http://Example.com:8080/a/../b", b"ignored", via="proxy",
                    default_port=80)
    assert (t.host, t.port, t.path, t.upstream) == ("example.com", 8080, "/b", "/b")
    assert read_target("GET", b"http://example.com", None, via="proxy",
                       default_port=80).path == "/"
    c = read_target("CONNECT", b"api.openai.com:443", None, via="proxy", default_port=0)
    assert (c.host, c.port, c.authority) == ("api.openai.com", 443, "api.openai.com:443")
    for method, target, status in (("GET", b"/", 400), ("GET", b"https://a/", 400),
                                   ("CONNECT", b"a.com", 400), ("GET", b"http://u@a/", 400),
                                   ("GET", b"ftp://a/", 400), ("GET", b"/" * 9000, 414)):
        with pytest.raises(TargetError) as err:
            read_target(method, target, b"a", via="proxy", default_port=80)
        assert err.value.status == status
    with pytest.raises(TargetError) as err:
        read_target("CONNECT", b"a.com:443", None, via="transparent", default_port=80)
    assert err.value.status == 405


@given(st.binary(max_size=200), st.one_of(st.none(), st.binary(max_size=60)),
       st.sampled_from(["GET", "POST", "CONNECT", "OPTIONS"]),
       st.sampled_from(["transparent", "proxy"]))
def test_any_target_gives_a_target_or_a_target_error(target: bytes, host: bytes | None,
                                                    method: str, via: str) -> None:
    try:
        t = read_target(method, target, host, via=via, default_port=80)
    except TargetError as exc:
        status = exc.status
    else:
        assert 0 < t.port < 65536 and t.host
        return
    assert 400 <= status < 500
