"""`python -m btc_platform.serving [--host 127.0.0.1] [--port 8000]`: the app configured from the environment
(BTC_PLATFORM_MODELS_DIR, BTC_PLATFORM_DUCKDB_PATH, BTC_PLATFORM_SERVE_TARGET) on uvicorn."""

from __future__ import annotations

import argparse

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m btc_platform.serving")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface (a container)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run("btc_platform.serving.app:app", host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
