"""What the engine reads off the wire and keeps across reloads of leases and policy.

The names each agent resolved (``ResolvedNames``), the ClientHello streams of pending
flows and the DNS-over-TCP streams being read (``Streams``), and the name each flow was
decided by (``hosts``: a reload judges established flows by the same name). Every part is
bounded.

Pure: in-memory state; the caller passes the time, nothing here does IO.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from gatewayd.config import NamesSection
from gatewayd.packets import Packet
from gatewayd.verdict.resolved import ResolvedNames
from gatewayd.verdict.streams import Streams

# Streams read at once, and how long one may wait for its next segment.
MAX_STREAMS = 16384
STREAM_IDLE_S = 30.0
MAX_DNS_STREAM = 65537
# Flows decided by a name, remembered so that a reload judges them by the same name.
MAX_DECIDED_HOSTS = 262144

# A TCP stream, by its client's direction: (src, sport, dst, dport).
StreamKey = tuple[bytes, int, bytes, int]
# A flow: (src, sport, dst, dport, protocol).
HostKey = tuple[bytes, int, bytes, int, int]


@dataclass
class Observed:
    """What the engine read off the wire, kept across reloads of leases and policy."""

    settings: NamesSection
    names: ResolvedNames
    hellos: Streams
    dns: Streams
    # (src, sport, dst, dport, protocol) of flows decided by a name → that name.
    hosts: OrderedDict[HostKey, str] = field(default_factory=OrderedDict)

    @classmethod
    def from_settings(cls, settings: NamesSection) -> Observed:
        return cls(
            settings,
            ResolvedNames(min_ttl=settings.min_ttl_s, max_ttl=settings.max_ttl_s,
                          max_addresses=settings.max_addresses_per_agent),
            Streams(max_flows=MAX_STREAMS, max_bytes=settings.max_client_hello + 5 * 16,
                    idle_s=STREAM_IDLE_S),
            Streams(max_flows=MAX_STREAMS, max_bytes=MAX_DNS_STREAM, idle_s=STREAM_IDLE_S),
        )

    def decided_by(self, key: HostKey, host: str) -> None:
        hosts = self.hosts
        hosts[key] = host
        if len(hosts) > MAX_DECIDED_HOSTS:
            hosts.popitem(last=False)

    def expire(self, now: float) -> list[StreamKey]:
        """Drop what ran out; returns the pending flows whose ClientHello never came."""
        self.names.expire(now)
        self.dns.expire(now)
        return [key for key in self.hellos.expire(now) if isinstance(key, tuple)]


def stream_key(packet: Packet) -> StreamKey:
    return (packet.src, packet.sport, packet.dst, packet.dport)


def host_key(packet: Packet) -> HostKey:
    return (packet.src, packet.sport, packet.dst, packet.dport, packet.protocol)
