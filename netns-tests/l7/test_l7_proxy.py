"""The explicit proxy: absolute-form HTTP requests and CONNECT, decided per request by the
same pipeline as diverted flows; identity from the source's lease."""

from __future__ import annotations

import pytest
from l7_support import PROXY, L7Gateway, json_body

FAMILIES = (4, 6)


@pytest.mark.parametrize("family", FAMILIES)
def test_plain_http_through_the_proxy(gateway: L7Gateway, family: int) -> None:
    cursor = gateway.cursor()
    got = gateway.curl("a1", "http://api.openai.com/v1/models", "-x", PROXY[family])
    assert got.status == 200, got
    assert json_body(got)["object"] == "list"
    event = cursor.wait("http.request", via="proxy", path="/v1/models")
    assert event["agent_id"] == "researcher" and event["action"] == "inspect"
    assert event["src_ip"] == ("10.77.0.11" if family == 4 else "fd77::11")
    assert event["upstream"].endswith(":80") and event["status"] == 200


def test_connect_to_an_inspected_host_is_intercepted(gateway: L7Gateway) -> None:
    cursor = gateway.cursor()
    got = gateway.curl("a1", "https://api.openai.com/v1/models", "-x", PROXY[4])
    assert got.status == 200, got
    tls = cursor.wait("tls.decision", via="proxy", sni="api.openai.com")
    assert tls["tls"] == "intercepted"
    inner = cursor.wait("http.request", via="proxy", path="/v1/models")
    assert inner["tls"] == "intercepted" and inner["status"] == 200
    tunnel = cursor.wait("http.request", via="proxy", method="CONNECT")
    assert tunnel["status"] == 200 and tunnel["host"] == "api.openai.com"


def test_connect_to_an_allowed_host_is_spliced_untouched(gateway: L7Gateway) -> None:
    cursor = gateway.cursor()
    # Only the lab CA is trusted: the server's own certificate must arrive untouched.
    got = gateway.curl("a2", "https://raw.githubusercontent.com/", "-x", PROXY[4],
                       "--cacert", str(gateway.lab.ca_bundle))
    assert got.status == 200, got
    tls = cursor.wait("tls.decision", via="proxy", sni="raw.githubusercontent.com")
    assert tls["tls"] == "spliced" and tls["rule_id"] == "raw"


def test_a_denied_host_is_refused_before_the_tunnel(gateway: L7Gateway) -> None:
    cursor = gateway.cursor()
    got = gateway.curl("a1", "https://pastebin.com/", "-x", PROXY[4])
    assert got.rc != 0 and got.status is None, got
    assert "403" in got.stderr
    event = cursor.wait("http.request", via="proxy", method="CONNECT", host="pastebin.com")
    assert (event["status"], event["rule_id"]) == (403, "paste-sites")
    plain = gateway.curl("a1", "http://pastebin.com/", "-x", PROXY[4])
    assert plain.status == 403 and json_body(plain)["rule_id"] == "paste-sites"


def test_an_unknown_source_is_asked_to_authenticate(gateway: L7Gateway) -> None:
    got = gateway.curl("a3", "http://api.openai.com/", "-x", PROXY[4], "-D", "-")
    assert got.status == 407, got
    assert 'proxy-authenticate: basic realm="clawgress"' in got.body.lower()


def test_the_tunnel_serves_its_host_only(gateway: L7Gateway) -> None:
    # A request inside a CONNECT tunnel to api.openai.com asking for another host: 421.
    got = gateway.curl("a1", "https://api.openai.com/", "-x", PROXY[4],
                       "-H", "Host: github.com")
    assert got.status == 421, got


def test_a_guarded_address_is_refused_by_the_proxy(gateway: L7Gateway) -> None:
    got = gateway.curl("a1", "http://169.254.169.254/latest/meta-data/", "-x", PROXY[4])
    assert got.status == 403, got


def test_the_proxy_is_not_reachable_from_the_uplink(gateway: L7Gateway) -> None:
    got = gateway.lab.exec("up", ["curl", "-sS", "-m", "2", "-x", "http://10.78.0.1:3128",
                                  "http://api.openai.com/"], capture_output=True, text=True,
                           timeout=10)
    assert got.returncode == 28, got  # dropped: curl times out
