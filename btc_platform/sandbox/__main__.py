"""Run the sandbox as a process: prints `SANDBOX_URL=...` once listening, serves until SIGTERM/SIGINT.

python -m btc_platform.sandbox --host 127.0.0.1 --port 0 [--seed 7] [--replay BTC-USD=DIR] [--faults faults.json]
    [--alphavantage-unpaced]

`make ui` starts it this way, with the seed and replay folders its instance's data was built from.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading

from .faults import FaultRule
from .server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m btc_platform.sandbox")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--replay", action="append", default=[], metavar="SYMBOL=DIR",
                    help="replay real 1m klines for SYMBOL from DIR (repeatable)")
    ap.add_argument("--faults", metavar="FILE", help="JSON list of fault rules to start with")
    ap.add_argument("--rate-limit-per-s", type=float, default=10.0)
    ap.add_argument("--rate-limit-burst", type=int, default=15)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--alphavantage-unpaced", action="store_true",
                    help="no per-minute limit on the Alpha Vantage twin (as the demo runs it)")
    args = ap.parse_args(argv)

    replay = {}
    for item in args.replay:
        symbol, sep, path = item.partition("=")
        if not sep:
            ap.error(f"--replay expects SYMBOL=DIR, got {item!r}")
        replay[symbol] = path

    server = SandboxServer(args.host, args.port, replay=replay, seed=args.seed,
                           rate_limit_per_s=args.rate_limit_per_s,
                           rate_limit_burst=args.rate_limit_burst)
    if args.alphavantage_unpaced:
        server.vendors["alphavantage"].configure(per_minute=None)
    if args.faults:
        with open(args.faults) as f:
            server.set_faults([FaultRule.from_dict(r) for r in json.load(f)])

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(f"SANDBOX_URL={server.url}", flush=True)  # the parent reads this line to find the port
    try:
        done.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
