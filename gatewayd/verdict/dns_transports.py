"""DNS that does not go through port 53: the well-known DoH and DoT endpoints.

To the data plane these are destinations like any other (denied unless a rule allows
them), but a flow toward one is an agent trying to resolve names where the gateway cannot
see them, so its record is flagged ``encrypted-dns`` for the operator and the behaviour
engine. The lists name the large public resolvers; they are signals, not the enforcement.
"""

from __future__ import annotations

from typing import Final

DOT_PORT: Final = 853
HTTPS_PORT: Final = 443

KNOWN_DOH_HOSTS: Final = frozenset({
    "cloudflare-dns.com", "mozilla.cloudflare-dns.com", "one.one.one.one",
    "security.cloudflare-dns.com", "family.cloudflare-dns.com",
    "dns.google", "dns.google.com", "8888.google",
    "dns.quad9.net", "dns9.quad9.net", "dns10.quad9.net", "dns11.quad9.net",
    "doh.opendns.com", "dns.opendns.com", "doh.familyshield.opendns.com",
    "dns.nextdns.io", "dns.adguard.com", "dns.adguard-dns.com", "doh.cleanbrowsing.org",
    "doh.mullvad.net", "dns.mullvad.net", "doh.dns.sb", "dns.alidns.com", "doh.pub",
    "dns.controld.com", "freedns.controld.com",
})

KNOWN_DOH_ADDRESSES: Final = frozenset({
    "1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001",
    "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
    "9.9.9.9", "149.112.112.112", "2620:fe::fe", "2620:fe::9",
    "208.67.222.222", "208.67.220.220", "94.140.14.14", "94.140.15.15",
    "223.5.5.5", "223.6.6.6", "185.228.168.168", "76.76.2.0", "45.90.28.0",
})


def is_encrypted_dns(host: str | None, address: str, port: int) -> bool:
    """Whether a flow to ``address``:``port`` (named ``host``, if known) looks like DNS
    over TLS (port 853) or over HTTPS to a well-known resolver."""
    if port == DOT_PORT:
        return True
    if port != HTTPS_PORT:
        return False
    return host in KNOWN_DOH_HOSTS or address in KNOWN_DOH_ADDRESSES
