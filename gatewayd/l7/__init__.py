"""The L7 engine: what the gateway does with flows that policy sends to ``inspect``.

It will hold the pipeline of the design notes' §7 — connections arriving by TPROXY or as
an explicit proxy, HTTP/1.1 parsing, TLS interception, the AI protocol analyzer, DLP,
quotas and enforcement, forwarding upstream (servers verified against the system trust
store plus ``l7.extra_upstream_cas``). Built so far: the gateway CA that interception
signs with; interception itself is not built yet.

* ``ca``: the gateway CA (``issue_ca``, ``GatewayCA``), which mints leaves through
  ``GatewayCA.leaf_for``. Pure apart from key material: the clock is an argument.
* ``leaf``: leaf certificates per server name (``server_name``, ``mint_leaf``) and their
  LRU cache (``LeafCache``). Pure.
* ``ca_store``: the CA in ``l7.ca_dir``: ``init_ca``, ``rotate_ca``, ``load_ca``.
* ``files``: atomic writes (the key 0600, its folder 0700) and bounded reads.

IO boundary: ``ca_store`` and ``files``; the rest takes and returns values. Private keys
are never logged, printed or put in an error message.
"""

from gatewayd.l7.ca import (
    DEFAULT_LEAF_CACHE_SIZE,
    DEFAULT_LEAF_TTL,
    GatewayCA,
    describe_certificate,
    fingerprint,
    issue_ca,
)
from gatewayd.l7.ca_store import (
    CERT_FILE,
    KEY_FILE,
    PREVIOUS_CERT_FILE,
    CaPaths,
    init_ca,
    load_ca,
    load_ca_certificate,
    load_previous_certificate,
    rotate_ca,
)
from gatewayd.l7.leaf import Leaf, LeafCache, mint_leaf, server_name

__all__ = [
    "CERT_FILE",
    "DEFAULT_LEAF_CACHE_SIZE",
    "DEFAULT_LEAF_TTL",
    "KEY_FILE",
    "PREVIOUS_CERT_FILE",
    "CaPaths",
    "GatewayCA",
    "Leaf",
    "LeafCache",
    "describe_certificate",
    "fingerprint",
    "init_ca",
    "issue_ca",
    "load_ca",
    "load_ca_certificate",
    "load_previous_certificate",
    "mint_leaf",
    "rotate_ca",
    "server_name",
]
