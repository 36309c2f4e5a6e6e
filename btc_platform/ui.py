"""`make ui`: the Dagster webserver and daemon (`dagster dev`) on the vendor source its instance's data
came from.

    python -m btc_platform.ui [--live] [--seed N] [--replay SYMBOL=DIR] [--allow-mixed-sources] [dagster dev args]

- The demo's instance (data/dagster_home) was built from the built-in sandbox: the UI starts the
  sandbox as a child process with the seed and replay folders recorded beside the instance
  (`btc_platform_source.json`; seed 7 for an instance without a record, as the demo uses), points
  every vendor at it, and stops it when the UI stops.
- `--live` (`make ui LIVE=1`, or BTC_PLATFORM_LIVE=1): the vendors' real hosts and your keys, on an
  instance, lake, warehouse and artifacts of their own under data/live unless DAGSTER_HOME or the
  BTC_PLATFORM_* locations name others.
- An instance or lake recorded for another source is refused before anything starts, unless
  `--allow-mixed-sources` (BTC_PLATFORM_ALLOW_MIXED_SOURCES=1): then both records list every source,
  each partition keeps its own, and datasets refuse partitions of mixed origin.

Both children run in sessions of their own: Ctrl-C (SIGINT) or SIGTERM reaches this process, which
stops `dagster dev` with one SIGTERM (it shuts its webserver and daemon down in about 3 s), then the
sandbox. `dagster dev` gets SIGINT restored: started from a script it would inherit it as ignored and
could not be stopped (STACK.md). Each child also gets SIGTERM if this process dies.
"""

import argparse
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from btc_platform.config import ALLOW_MIXED_SOURCES_ENV, LIVE_DATA_DIR, SOURCE_ENV, prepare_instance_home, project_root
from btc_platform.sources import LIVE, claim_instance, claim_lake, instance_source, mixing_allowed, sandbox_source

DEFAULT_SEED = 7  # the sandbox's and the demo's
SANDBOX_START_TIMEOUT_S = 60.0
# Live mode's own locations, under LIVE_DATA_DIR, unless the environment names them.
LIVE_LOCATIONS = {
    "BTC_PLATFORM_LAKE_URL": "lake",
    "BTC_PLATFORM_DUCKDB_PATH": "warehouse.duckdb",
    "BTC_PLATFORM_DATASETS_DIR": "datasets",
    "BTC_PLATFORM_MODELS_DIR": "models",
    "BTC_PLATFORM_MLFLOW_DIR": "mlflow",
}


@dataclass
class UIPlan:
    home: Path
    source: str
    lake_url: str
    allow_mixed: bool
    env: dict[str, str]  # for dagster dev, over os.environ; the sandbox's URLs are added once it listens
    dagster_argv: list[str]
    sandbox_argv: list[str] | None = None  # None: live vendors
    settings: dict = field(default_factory=dict)  # recorded beside the instance (seed, replay)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def build_plan(argv: list[str], environ: dict[str, str] | None = None, root: Path | None = None) -> UIPlan:
    """What `make ui` will start, from its arguments, the environment and the instance's record."""
    environ = dict(os.environ if environ is None else environ)
    root = Path(root or project_root())
    # No -h/--help here: -h is dagster dev's host.
    parser = argparse.ArgumentParser(prog="python -m btc_platform.ui", add_help=False)
    parser.add_argument("--live", action="store_true", help="the vendors' real hosts (own instance and lake)")
    parser.add_argument("--seed", type=int, help="the sandbox's seed (default: the instance's, else 7)")
    parser.add_argument("--replay", action="append", default=[], metavar="SYMBOL=DIR",
                        help="replay real 1-minute klines for SYMBOL from DIR in the sandbox")
    parser.add_argument("--allow-mixed-sources", action="store_true",
                        help="use an instance or lake recorded for another source")
    args, dagster_args = parser.parse_known_args(argv)

    sandbox_home = root / "data" / "dagster_home"
    home = Path(environ.get("DAGSTER_HOME") or sandbox_home).resolve()
    recorded = instance_source(home) or {}
    live = args.live or _truthy(environ.get("BTC_PLATFORM_LIVE"))
    if live and home == sandbox_home.resolve():
        home = (root / LIVE_DATA_DIR / "dagster_home").resolve()  # never the demo's instance by default
        recorded = instance_source(home) or {}
    elif not live and not (args.seed is not None or args.replay) and recorded.get("source") == LIVE:
        live = True  # the instance holds live data: stay on its source
    allow_mixed = args.allow_mixed_sources or mixing_allowed(environ)

    env = {"DAGSTER_HOME": str(home)}
    if allow_mixed:
        env[ALLOW_MIXED_SOURCES_ENV] = "1"
    if live:
        for var, name in LIVE_LOCATIONS.items():
            env[var] = environ.get(var) or str(root / LIVE_DATA_DIR / name)
        source, sandbox_argv, settings = LIVE, None, {}
    else:
        kept = (recorded.get("settings") or {}).get(recorded.get("source"), {})
        seed = args.seed if args.seed is not None else int(kept.get("seed", DEFAULT_SEED))
        replay = dict(item.split("=", 1) for item in args.replay) if args.replay else dict(kept.get("replay", {}))
        for symbol, folder in replay.items():
            if not Path(folder).is_dir():
                parser.error(f"--replay {symbol}={folder}: not a folder of Binance 1-minute kline CSVs")
        replay = {symbol: str(Path(folder).resolve()) for symbol, folder in replay.items()}
        source, settings = sandbox_source(seed, replay), {"seed": seed, "replay": replay}
        sandbox_argv = [sys.executable, "-m", "btc_platform.sandbox", "--host", "127.0.0.1",
                        "--port", environ.get("BTC_PLATFORM_SANDBOX_PORT") or "0", "--seed", str(seed),
                        "--alphavantage-unpaced", *(f"--replay={s}={d}" for s, d in sorted(replay.items()))]
        env["ALPHAVANTAGE_REQUESTS_PER_MINUTE"] = "600"  # the twin runs unpaced, as in the demo
    env[SOURCE_ENV] = source
    lake_url = env.get("BTC_PLATFORM_LAKE_URL") or environ.get("BTC_PLATFORM_LAKE_URL") or "./data/lake"
    dagster = str(Path(sys.executable).parent / "dagster")
    dagster_argv = [dagster, "dev", "-w", "workspace.yaml", *(dagster_args or ["-h", "127.0.0.1", "-p", "3000"])]
    return UIPlan(home=home, source=source, lake_url=lake_url, allow_mixed=allow_mixed, env=env,
                  dagster_argv=dagster_argv, sandbox_argv=sandbox_argv, settings=settings)


def claim_sources(plan: UIPlan) -> None:
    """Record the plan's source beside the instance and in the lake; SourceMismatch when either holds
    another source's data and mixing was not asked for."""
    from btc_platform.lake import Lake

    claim_instance(plan.home, plan.source, plan.allow_mixed, settings=plan.settings)
    claim_lake(Lake(plan.lake_url), plan.source, plan.allow_mixed)


def _child_setup(restore_sigint: bool) -> None:
    """In the child before exec: SIGTERM when this process dies (Linux), SIGINT back to default."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if restore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def sandbox_process(argv: list[str] | None, timeout: float = SANDBOX_START_TIMEOUT_S):
    """The sandbox as a child process; yields its URL (None without argv), stops it on exit."""
    if argv is None:
        yield None
        return
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: _child_setup(False))
    try:
        deadline, url = time.monotonic() + timeout, None
        while url is None:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError(f"the vendor sandbox did not start ({' '.join(argv)}): "
                                   + ("exited with " + str(proc.returncode) if proc.poll() is not None
                                      else f"no SANDBOX_URL line within {timeout:.0f} s"))
            if select.select([proc.stdout], [], [], left)[0]:
                line = proc.stdout.readline()
                if line.startswith("SANDBOX_URL="):
                    url = line.strip().split("=", 1)[1]
        proc.stdout.close()  # it prints nothing more
        yield url
    finally:
        _stop(proc)


def run(plan: UIPlan, log=print) -> int:
    """Start the sandbox (when the plan has one) and dagster dev; block until dagster dev exits or this
    process gets SIGINT/SIGTERM; stop both. Returns dagster dev's exit status."""
    from btc_platform.sandbox.registry import sandbox_url_env

    prepare_instance_home(plan.home)
    with sandbox_process(plan.sandbox_argv) as url:
        env = {**os.environ, **plan.env, **(sandbox_url_env(url, plan.source) if url else {})}
        log(f"Vendor source: {plan.source}" + (f" (sandbox at {url})" if url else " (the vendors' real hosts)"))
        log(f"Instance: {plan.home}; lake: {plan.lake_url}")
        dagster = subprocess.Popen(plan.dagster_argv, env=env, start_new_session=True,
                                   preexec_fn=lambda: _child_setup(True))
        stopping = []

        def stop(signum, _frame):
            if not stopping:  # one SIGTERM: a second would cut dagster dev's own shutdown short
                stopping.append(signum)
                dagster.terminate()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return dagster.wait()
        finally:
            _stop(dagster)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    from btc_platform.sources import SourceMismatch

    plan = build_plan(sys.argv[1:] if argv is None else argv)
    try:
        claim_sources(plan)
    except SourceMismatch as error:
        sys.exit(f"make ui: {error}")
    sys.exit(run(plan))


if __name__ == "__main__":
    main()
