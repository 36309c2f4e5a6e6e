"""Dataset checks that gate training. Each returns {"passed": bool, ...details as plain JSON}."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from btc_platform.datasets.columns import is_target, to_utc
from btc_platform.features.grid import MIN_BAR_COVERAGE

MIN_COMPLETENESS = 0.95
MAX_GAP = pd.Timedelta(days=7)
MIN_CLASS_SHARE = 0.05
# Rows built on bars that lack part of their minutes: their volume features are null. A dataset with
# more than this share of them is refused.
MAX_PARTIAL_BAR_SHARE = 0.05


def completeness(frame: pd.DataFrame, required: Iterable[str], threshold: float = MIN_COMPLETENESS) -> dict:
    """Share of rows where every required field is set (and per field); passes above `threshold`."""
    required = list(required)
    missing = [c for c in required if c not in frame.columns]
    if missing or frame.empty:
        return {"passed": False, "missing_columns": missing, "rows": int(len(frame))}
    per_field = {c: round(float(frame[c].notna().mean()), 6) for c in required}
    all_set = float(frame[required].notna().all(axis=1).mean())
    return {"passed": all_set > threshold, "complete_rows": round(all_set, 6), "threshold": threshold,
            "per_field": per_field}


def partial_bars(frame: pd.DataFrame, max_share: float = MAX_PARTIAL_BAR_SHARE,
                 min_coverage: float = MIN_BAR_COVERAGE) -> dict:
    """Rows built on partial bars (fewer of their minutes than `min_coverage`: `partial_bar`, else
    `bar_coverage` under it), reported by symbol and day; fails above `max_share` of the rows, or
    when the table does not say how its bars are covered. Rows with a gap in their lookback are
    reported too (not limited: a table starting inside a product's history has them by design)."""
    if "bar_coverage" not in frame.columns and "partial_bar" not in frame.columns:
        return {"passed": False, "rows": int(len(frame)),
                "message": "the table has no bar_coverage column: rows built on partial bars cannot be told"}
    coverage = pd.to_numeric(frame.get("bar_coverage"), errors="coerce") if "bar_coverage" in frame else None
    if "partial_bar" in frame.columns:
        partial = frame["partial_bar"].fillna(False).astype(bool)
    else:
        partial = coverage < min_coverage
    share = float(partial.mean()) if len(frame) else 0.0
    days = to_utc(frame.loc[partial, "ts"]).dt.strftime("%Y-%m-%d")
    by_day = frame.loc[partial, "symbol"].astype(str).str.cat(days, sep=" ").value_counts().sort_index()
    listed = ", ".join(f"{k} ({v} rows)" for k, v in list(by_day.items())[:10]) + (" ..." if len(by_day) > 10 else "")
    passed = share <= max_share
    out = {"passed": passed, "rows": int(len(frame)), "partial_rows": int(partial.sum()), "share": round(share, 6),
           "max_share": max_share, "partial_by_day": {k: int(v) for k, v in by_day.items()},
           "unknown_coverage_rows": int(coverage.isna().sum()) if coverage is not None else int(len(frame)),
           "lookback_gap_rows": int(frame["lookback_gap"].fillna(False).astype(bool).sum())
           if "lookback_gap" in frame else None}
    if not passed:
        out["message"] = (f"{int(partial.sum())} of {len(frame)} rows ({share:.1%}) are built on partial bars "
                          f"(under {min_coverage:.0%} of their minutes), above the limit of {max_share:.1%}: {listed}")
    return out


def targets_present(parts: dict[str, pd.DataFrame], target: str) -> dict:
    nulls = {name: int(part[target].isna().sum()) if target in part else int(len(part))
             for name, part in parts.items()}
    return {"passed": not any(nulls.values()), "target": target, "null_targets": nulls}


def max_gap(frame: pd.DataFrame, limit: pd.Timedelta = MAX_GAP) -> dict:
    """Longest hole between consecutive rows of each symbol; fails above `limit`."""
    gaps = {}
    for symbol, ts in to_utc(frame["ts"]).groupby(frame["symbol"]):
        diffs = ts.sort_values().diff().dropna()
        gaps[str(symbol)] = str(diffs.max()) if len(diffs) else "0 days"
    worst = max((pd.Timedelta(g) for g in gaps.values()), default=pd.Timedelta(0))
    return {"passed": worst <= limit, "limit": str(limit), "longest_gap": str(worst), "per_symbol": gaps}


def label_balance(labels: pd.Series, min_share: float = MIN_CLASS_SHARE) -> dict:
    """Class shares, reported; flags a class under `min_share` (a warning, not a block)."""
    counts = labels.dropna().astype(str).value_counts()
    shares = {str(k): round(float(v) / max(int(counts.sum()), 1), 4) for k, v in counts.sort_index().items()}
    return {"passed": bool(shares) and min(shares.values()) >= min_share, "shares": shares,
            "rows": int(counts.sum())}


# ---- TRL dataset formats ------------------------------------------------------------------------
# The columns each TRL dataset type needs (huggingface.co/docs/trl/dataset_formats).
TRL_TYPES = {
    "language_modeling": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
    "prompt_only": ("prompt",),
}


def _is_messages(value) -> bool:
    return (isinstance(value, list) and len(value) > 0 and all(
        isinstance(m, dict) and set(m) >= {"role", "content"} and m["role"] in ("system", "user", "assistant")
        and isinstance(m["content"], str) for m in value))


def trl_format(records: list[dict], kind: str) -> dict:
    """Every record has the TRL columns of `kind`, all standard strings or all conversational
    message lists (one format per dataset, as TRL's is_conversational expects)."""
    keys = TRL_TYPES[kind]
    problems: list[str] = []
    formats = set()
    for i, rec in enumerate(records):
        absent = [k for k in keys if k not in rec]
        if absent:
            problems.append(f"row {i}: missing {absent}")
            continue
        for k in keys:
            value = rec[k]
            if isinstance(value, str) and kind != "language_modeling":
                formats.add("standard")
            elif _is_messages(value):
                formats.add("conversational")
            else:
                problems.append(f"row {i}: {k} is neither a string nor a list of role/content messages")
        if kind == "language_modeling" and rec["messages"][-1]["role"] != "assistant":
            problems.append(f"row {i}: the conversation does not end with the assistant")
        if len(problems) > 5:
            break
    if len(formats) > 1:
        problems.append(f"mixed formats {sorted(formats)}")
    return {"passed": not problems and bool(records), "kind": kind, "format": sorted(formats),
            "rows": len(records), "problems": problems[:5]}


def hf_loadable(local_files: dict[str, Path], builder: str, expect_rows: dict[str, int],
                expect_columns: Iterable[str]) -> dict:
    """Load the files with HF `datasets` (one split per file) and compare rows and columns."""
    from datasets import disable_progress_bars, load_dataset

    disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        loaded = load_dataset(builder, data_files={k: str(v) for k, v in local_files.items()}, cache_dir=cache)
        rows = {split: loaded[split].num_rows for split in loaded}
        columns = {split: loaded[split].column_names for split in loaded}
    missing = {s: sorted(set(expect_columns) - set(c)) for s, c in columns.items() if set(expect_columns) - set(c)}
    return {"passed": rows == expect_rows and not missing, "rows": rows, "expected_rows": expect_rows,
            "missing_columns": missing}


# ---- decision-time data -------------------------------------------------------------------------

def decision_time_sample(samples: pd.DataFrame, n: int = 40) -> pd.DataFrame:
    """A deterministic spread of samples: evenly spaced over time."""
    if len(samples) <= n:
        return samples
    step = len(samples) / n
    return samples.iloc[[int(i * step) for i in range(n)]]


def as_known_at(table: pd.DataFrame, decision_at: pd.Timestamp) -> pd.DataFrame:
    """The table as it stood at `decision_at`: rows decided by then, every target blanked."""
    cut = table[to_utc(table["decision_at"]) <= decision_at].copy()
    for col in [c for c in cut.columns if is_target(c)]:
        cut[col] = None
    return cut


def numbers_from_decision_time(table: pd.DataFrame, samples: pd.DataFrame,
                               rebuild: Callable[[pd.DataFrame], pd.DataFrame],
                               same: Callable[[dict, dict], bool], n: int = 40,
                               lookback: pd.Timedelta | None = None) -> dict:
    """Rebuild sampled rows from the table cut off at each one's decision time (later rows gone,
    targets blanked; only `lookback` of history when given) and require `same(sample, rebuilt)`."""
    checked, mismatches = 0, []
    for row in decision_time_sample(samples, n).to_dict(orient="records"):
        at = pd.Timestamp(row["decision_at"])
        known = as_known_at(table[table["symbol"] == row["symbol"]], at)
        if lookback is not None:
            known = known[to_utc(known["decision_at"]) > at - lookback]
        rebuilt = rebuild(known)
        match = rebuilt[rebuilt["decision_at"] == row["decision_at"]]
        checked += 1
        if len(match) != 1 or not same(row, match.iloc[0].to_dict()):
            mismatches.append(f"{row['symbol']} {row['decision_at']}")
    return {"passed": checked > 0 and not mismatches, "checked": checked, "mismatches": mismatches[:5]}


def single_origin(sources: list[str], origins: dict[str, str], examples: int = 3) -> dict:
    """One vendor source behind a dataset. `sources`: what the lake records (more than one once mixing
    was allowed); `origins`: the origin recorded with each raw partition under the dataset's rows.
    Fails when those partitions come from more than one source, naming each with example partitions."""
    by_origin: dict[str, list[str]] = {}
    for label, origin in sorted(origins.items()):
        by_origin.setdefault(origin, []).append(label)
    passed = len(by_origin) <= 1
    out = {"passed": passed, "lake_sources": list(sources), "partitions_checked": len(origins),
           "origins": {origin: len(labels) for origin, labels in by_origin.items()}}
    if not passed:
        out["examples"] = {origin: labels[:examples] for origin, labels in by_origin.items()}
        out["message"] = ("partitions of mixed origin, refused: " + "; ".join(
            f"{origin} ({len(labels)} partitions, e.g. {', '.join(labels[:examples])})"
            for origin, labels in by_origin.items()))
    return out
