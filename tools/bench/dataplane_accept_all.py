"""The reference NFQUEUE handler: accept every queued packet, stamped *allow*, nothing else.

What queueing a flow's first packet to userspace costs by itself, for the data-plane
benchmark to compare the verdict engine with. Binds ``dataplane.queue`` of the gateway
configuration (with its ``queue_max_len``), prints ``ready``, then answers each packet with
its mark stamped *allow* (so the ruleset's commit chain records the flow as decided, as the
engine's verdict would) and accept. Run it in the gateway's namespace, with the ruleset
applied and no engine bound to the queue. Ends on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from netfilterqueue import NetfilterQueue

from gatewayd.config import load_config
from gatewayd.netfilter.marks import Marks, State


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="the gateway configuration (gateway.yaml)")
    args = ap.parse_args(argv)
    config, _ = load_config(args.config)
    marks = Marks.from_config(config)
    allow = State.ALLOW

    def on_packet(pkt: Any) -> None:
        pkt.set_mark(marks.stamp(pkt.get_mark(), allow))
        pkt.accept()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    nfq = NetfilterQueue()
    nfq.bind(config.dataplane.queue, on_packet, max_len=config.dataplane.queue_max_len)
    print("ready", flush=True)
    try:
        nfq.run()
    except KeyboardInterrupt:
        pass
    finally:
        nfq.unbind()
    return 0


if __name__ == "__main__":
    sys.exit(main())
