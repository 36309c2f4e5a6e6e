"""Where vendor data comes from: one source per instance and lake, recorded and checked.

A source is a label: `sandbox(seed=7)` (the built-in sandbox's generated market), `replay:<SYMBOL=DIR,...>
sandbox(seed=7)` (real candles replayed for those products, generated ones for the rest) or `live`
(the vendors' real hosts). It is recorded three ways:
- beside the Dagster instance (`<DAGSTER_HOME>/btc_platform_source.json`) and in the lake root
  (`_platform/source.json`), on first use: a later process with another source is refused unless
  mixing is asked for, and then the record lists every source;
- in every ingest partition's Parquet footer (pandas attrs), written with the data in one object, so
  a dataset can tell later which origins its partitions have.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from btc_platform.config import ALLOW_MIXED_SOURCES_ENV, BASE_URL_ENV, DEFAULT_BASE_URLS, SOURCE_ENV

LIVE = "live"
ORIGIN_ATTR = "btc_platform_origin"  # key in the frame's attrs, stored in the Parquet footer
INSTANCE_FILE = "btc_platform_source.json"
LAKE_DOCUMENT = "_platform/source.json"


class SourceMismatch(ValueError):
    """A process with one source about to use an instance or lake recorded for another."""


def sandbox_source(seed: int, replay: dict[str, str | Path] | None = None) -> str:
    label = f"sandbox(seed={seed})"
    if replay:
        files = ",".join(f"{symbol}={Path(folder).resolve()}" for symbol, folder in sorted(replay.items()))
        label = f"replay:{files} {label}"
    return label


def source_from_env(env: dict[str, str] | None = None) -> str:
    """BTC_PLATFORM_SOURCE when set; else `live` on the vendors' real hosts, or `custom(<hosts>)` when
    some base URL points elsewhere without saying what it is."""
    env = os.environ if env is None else env
    if env.get(SOURCE_ENV):
        return env[SOURCE_ENV]
    custom = sorted({env[var] for vendor, var in BASE_URL_ENV.items()
                     if env.get(var) and env[var] != DEFAULT_BASE_URLS[vendor]})
    return f"custom({','.join(custom)})" if custom else LIVE


def mixing_allowed(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return (env.get(ALLOW_MIXED_SOURCES_ENV) or "").strip().lower() in ("1", "true", "yes")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def claim(record: dict | None, source: str, allow_mixed: bool, where: str,
          settings: dict | None = None) -> dict | None:
    """The record after `source` uses `where`; None when it is unchanged. Another source than the
    recorded one is refused (SourceMismatch naming both) unless `allow_mixed`: then it is added and
    the record says `mixed`. `settings` (how to start that source again) are kept by source."""
    kept = {source: settings} if settings else {}
    if not record:
        return {"source": source, "sources": [source], "mixed": False, "recorded_at": _now(), "settings": kept}
    sources = record.get("sources") or [record["source"]]
    if source in sources:
        if settings and (record.get("settings") or {}).get(source) != settings:
            return {**record, "settings": {**(record.get("settings") or {}), **kept}}
        return None
    if not allow_mixed:
        raise SourceMismatch(
            f"{where} holds data from {' + '.join(sources)}; this process uses {source}. Use another "
            f"instance/lake for it (DAGSTER_HOME, BTC_PLATFORM_LAKE_URL; `make ui LIVE=1` has its own under "
            f"data/live), or mix them on purpose with {ALLOW_MIXED_SOURCES_ENV}=1 (datasets then refuse "
            "partitions of mixed origin)")
    return {**record, "sources": [*sources, source], "mixed": True, "mixed_at": _now(),
            "settings": {**(record.get("settings") or {}), **kept}}


def instance_source(home: Path) -> dict | None:
    path = Path(home) / INSTANCE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def claim_instance(home: Path, source: str, allow_mixed: bool = False, settings: dict | None = None) -> dict:
    """Record `source` beside the Dagster instance in `home` (see `claim`); returns the record."""
    path = Path(home) / INSTANCE_FILE
    current = instance_source(home)
    new = claim(current, source, allow_mixed, f"the Dagster instance {Path(home).resolve()}", settings)
    if new is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(new, indent=2) + "\n")
        os.replace(tmp, path)
    return new or current


def lake_source(lake) -> dict | None:
    return lake.get_document(LAKE_DOCUMENT)


def claim_lake(lake, source: str, allow_mixed: bool = False) -> dict:
    """Record `source` in the lake root (see `claim`); returns the record."""
    current = lake_source(lake)
    new = claim(current, source, allow_mixed, f"the lake {lake.display_path()}")
    if new is not None:
        lake.put_document(LAKE_DOCUMENT, new)
    return new or current


def with_origin(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """`frame` marked with its origin; the lake writes it into the Parquet footer with the rows."""
    frame.attrs[ORIGIN_ATTR] = source
    return frame


def partition_origin(lake, ref) -> str | None:
    """The origin recorded in a partition's footer; None when it has none (written before origins were
    recorded) or does not exist."""
    path = lake.path(ref)
    if not lake.fs.exists(path):
        return None
    meta = pq.read_schema(path, filesystem=lake.fs).metadata or {}
    pandas_meta = json.loads(meta.get(b"pandas", b"{}"))
    return (pandas_meta.get("attributes") or {}).get(ORIGIN_ATTR)


def raw_partitions(lake, days_by_symbol: dict[str, set]) -> list:
    """The raw zone's partitions (PartitionRef) of these symbols' days, and of these days for the
    datasets without symbols, found by listing each dataset's symbol and interval folders once."""
    from btc_platform.lake import PartitionRef

    base = f"{lake.root}/raw"
    if not lake.fs.exists(base):
        return []

    def children(path: str, prefix: str) -> list[str]:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in lake.fs.ls(path, detail=False)]
        return [n[len(prefix):] for n in names if n.startswith(prefix)]

    every_day = sorted(set().union(*days_by_symbol.values())) if days_by_symbol else []
    refs = []
    for dataset in sorted(n for n in children(base, "") if not n.startswith(("_", "."))):
        symbols = children(f"{base}/{dataset}", "symbol=")
        for symbol in symbols or [None]:
            if symbol is not None and symbol not in days_by_symbol:
                continue
            folder = f"{base}/{dataset}" + (f"/symbol={symbol}" if symbol else "")
            days = sorted(days_by_symbol[symbol]) if symbol else every_day
            for interval in children(folder, "interval=") or [None]:
                refs += [PartitionRef("raw", dataset, day, symbol=symbol, interval=interval) for day in days]
    return refs


def dataset_origins(lake, frame: pd.DataFrame) -> tuple[list[str], dict[str, str | None]]:
    """(sources the lake records, origin by raw partition label) for the symbols and days of `frame`.
    A lake that only one source ever wrote to needs no partition read."""
    record = lake_source(lake) or {}
    sources = record.get("sources") or ([record["source"]] if record.get("source") else [])
    if len(sources) <= 1 or frame.empty:
        return sources, {}
    days = pd.to_datetime(frame["ts"], utc=True).dt.date
    by_symbol: dict[str, set] = {}
    for symbol, day in zip(frame["symbol"].astype(str), days):
        by_symbol.setdefault(symbol, set()).add(day)
    origins = {ref.label(): partition_origin(lake, ref) for ref in raw_partitions(lake, by_symbol)}
    return sources, {label: origin for label, origin in origins.items() if origin is not None}
