"""The L7 engine: what the gateway does with flows that policy sends to ``inspect``, and
with requests on its explicit proxy (``docs/l7.md``).

One pipeline per request — identity, host, what the body says, policy, DLP actions,
credentials, quota, audit — behind two listeners (TPROXY for diverted flows, the explicit
proxy). TLS is decided by its ClientHello and spliced, or intercepted with leaves of the
gateway CA.

Sans-IO (values in, values out; the clock is an argument):

* ``target``: where a request goes (forms, hosts, ports, normalized paths);
* ``exchange``: who sent it (leases, assertions), which host decides, the policy's
  decision, what the decision does, and the ``http.request`` record;
* ``responses``: the JSON answers the engine gives in place of an upstream;
* ``assertions``, ``api_keys``: proxy identity assertions (Basic API keys, Bearer JWTs,
  client certificates) and the API keys agents use;
* ``ca``, ``leaf``, ``certs``: the gateway CA and the leaves it mints per server name;
* ``http1``: HTTP/1.1 both ways (heads parsed by llhttp, bodies framed here);
* ``inspection``: what looks at a request's body before it is decided, and what follows
  its response; ``ai_stage`` (the AI protocol analyzer), ``dlp_stage`` (DLP and a rule's
  ``dlp:`` actions) and ``quota_stage`` (budgets held, then booked) are its stages.

IO shell: ``engine`` (listeners), ``connection`` (one client connection: TLS decision,
HTTP/1.1 with ``http1``, forwarding), ``conn`` (byte streams, TLS ended with ``ssl.SSLObject``,
splicing), ``upstream`` (connections to servers), ``interception`` (server TLS contexts
per name), ``ca_store`` and ``files`` (the CA on disk). Private keys are never logged,
printed or put in an error message.

The request path's modules (``gatewayd.compiled.COMPILED``) run compiled (mypyc) when
``tools/native.py`` built them from the sources as they are; otherwise as Python.
"""

from gatewayd.compiled import use_compiled

use_compiled(__name__, __path__)  # before the modules it may replace are imported

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
