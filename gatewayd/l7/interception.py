"""TLS server contexts for interception: one per server name, with its CA-signed leaf.

``LeafContexts.context_for(name, now)`` gives an ``ssl.SSLContext`` presenting the gateway
CA's leaf for ``name`` (``GatewayCA.leaf_for``), ALPN http/1.1 only, TLS 1.2 or newer.
Python's ``ssl`` loads certificates from files only: the leaf and its key are written to an
anonymous in-memory file (``memfd_create``) that is closed once loaded, so the key never
touches a disk. Contexts are kept as long as their leaf is the cached one.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from gatewayd.errors import ClawgressError
from gatewayd.l7.ca import GatewayCA
from gatewayd.l7.leaf import Leaf


def _load(leaf: Leaf, client_cas: Sequence[Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if client_cas:
        # Clients may present a certificate (mTLS); those that do are verified here.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        for path in client_cas:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ClawgressError(f"l7.identity.client_ca_files: cannot load {path}:"
                                     f" {exc}") from None
    fd = os.memfd_create("clawgress-leaf", os.MFD_CLOEXEC)
    try:
        os.write(fd, leaf.cert_pem + leaf.key_pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return ctx


class LeafContexts:
    """Server contexts per name; with ``client_cas``, clients may present certificates
    signed by them (the explicit proxy's own TLS listener)."""

    def __init__(self, ca: GatewayCA, max_size: int, client_cas: Sequence[Path] = ()) -> None:
        self.ca = ca
        self.max_size = max_size
        self.client_cas = tuple(client_cas)
        self._contexts: OrderedDict[str, tuple[Leaf, ssl.SSLContext]] = OrderedDict()

    def context_for(self, name: str, now: float) -> ssl.SSLContext:
        """The server context for ``name`` (``ValueError`` if it cannot be certified;
        ``ClawgressError`` if the CA is not valid now)."""
        leaf = self.ca.leaf_for(name, now)
        held = self._contexts.get(leaf.server_name)
        if held is not None and held[0] is leaf:
            self._contexts.move_to_end(leaf.server_name)
            return held[1]
        ctx = _load(leaf, self.client_cas)
        self._contexts[leaf.server_name] = (leaf, ctx)
        self._contexts.move_to_end(leaf.server_name)
        while len(self._contexts) > self.max_size:
            self._contexts.popitem(last=False)
        return ctx

    def listener_context(self, default_name: str, now: float) -> ssl.SSLContext:
        """A context for a TLS listener: the leaf for the name a client asks for (SNI), or
        for ``default_name`` when it asks for none or for a name no leaf can carry."""
        default = self.context_for(default_name, now)

        def by_name(tls: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            if name:
                with contextlib.suppress(ValueError, ClawgressError):
                    tls.context = self.context_for(name, time.time())

        default.sni_callback = by_name
        return default
