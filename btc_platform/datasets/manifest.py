"""What a dataset build records about itself: manifest.json and a dataset card (README.md)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from btc_platform.datasets.columns import to_utc

# Bump when the files a build writes change shape: a new layout is a new version of the same data.
FORMAT_VERSION = 2


def code_version() -> str:
    """The git commit of this checkout (marked dirty when it has local changes), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"git:{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"package:{metadata.version('btc-platform')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def build_version(table_hash: str, config: dict) -> str:
    """A version from the source table's content hash, the build config and the file layout."""
    payload = json.dumps({"table": table_hash, "config": config, "format": FORMAT_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def provenance(table: pd.DataFrame) -> dict:
    """Vendors and fallbacks seen in the table (`source`, `<col>_source`) and missing-data reasons."""
    vendors: dict[str, int] = {}
    for col in [c for c in table.columns if c == "source" or c.endswith("_source")]:
        for value, n in table[col].dropna().astype(str).value_counts().items():
            vendors[value] = vendors.get(value, 0) + int(n)
    reasons: dict[str, dict[str, int]] = {}
    for col in [c for c in table.columns if c.endswith("_missing_reason")]:
        counts = table[col].dropna().astype(str).value_counts()
        if len(counts):
            reasons[col.removesuffix("_missing_reason")] = {str(k): int(v) for k, v in counts.items()}
    return {"vendors": dict(sorted(vendors.items())),
            "fallbacks": sorted(v for v in vendors if v.startswith("fallback:")),
            "missing_reasons": reasons}


def source_summary(table: pd.DataFrame, name: str) -> dict:
    ts = to_utc(table["ts"])
    decided = to_utc(table["decision_at"]) if "decision_at" in table else ts
    partitions = ts.dt.strftime("%Y-%m-%d")
    return {
        "table": name, "rows": int(len(table)), "symbols": sorted(map(str, table["symbol"].unique())),
        "ts_min": ts.min().isoformat() if len(ts) else None, "ts_max": ts.max().isoformat() if len(ts) else None,
        "partitions": {"first": partitions.min() if len(ts) else None, "last": partitions.max() if len(ts) else None,
                       "count": int(partitions.nunique())},
        # Macro values were joined as known at each decision time, so no vintage after this was used.
        "fred_vintage_cutoff": decided.max().isoformat() if len(ts) else None,
    }


def frame_summary(frame: pd.DataFrame, label: str | None = None) -> dict:
    out = {"rows": int(len(frame))}
    if len(frame):
        ts = to_utc(frame["ts"])
        out.update(ts_min=ts.min().isoformat(), ts_max=ts.max().isoformat(),
                   per_symbol={str(k): int(v) for k, v in frame["symbol"].value_counts().sort_index().items()})
    if label and label in frame:
        out["class_balance"] = class_balance(frame[label])
    return out


def class_balance(labels: pd.Series) -> dict:
    counts = labels.dropna().astype(str).value_counts().sort_index()
    total = int(counts.sum())
    return {str(k): {"rows": int(v), "share": round(float(v) / total, 4)} for k, v in counts.items()}


def dataset_card(manifest: dict, examples: dict[str, dict] | None = None) -> str:
    """A README.md for the version folder, from its manifest."""
    src = manifest["source"]
    lines = [
        f"# {manifest['dataset']} (version {manifest['version']})", "",
        manifest.get("description", ""), "",
        "## Source", "",
        f"- table `{src['table']}`: {src['rows']} rows, {', '.join(src['symbols'])}, "
        f"{src['ts_min']} .. {src['ts_max']} ({src['partitions']['count']} daily partitions)",
        f"- source content hash `{manifest['source_hash']}`",
        f"- FRED vintage cut-off (latest decision time): {src['fred_vintage_cutoff']}",
        f"- vendors: {json.dumps(manifest['provenance']['vendors']) or 'none recorded'}; "
        f"fallbacks: {', '.join(manifest['provenance']['fallbacks']) or 'none'}",
        f"- code version `{manifest['code_version']}`, built {manifest['built_at']}", "",
        "## Build", "", "```json", json.dumps(manifest["config"], indent=2, sort_keys=True, default=str), "```", "",
        "## Splits", "", "| part | rows | from | to | class balance |", "|---|---|---|---|---|",
    ]
    for name, part in manifest["splits"].items():
        balance = ", ".join(f"{k} {v['share']:.0%}" for k, v in part.get("class_balance", {}).items())
        lines.append(f"| {name} | {part['rows']} | {part.get('ts_min', '')} | {part.get('ts_max', '')} | {balance} |")
    lines += ["", "## Files", ""] + [f"- `{f}`" for f in manifest["files"]]
    if manifest.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in manifest["notes"]]
    for title, example in (examples or {}).items():
        lines += ["", f"## Example: {title}", "", "```json", json.dumps(example, indent=2, default=_plain), "```"]
    return "\n".join(lines) + "\n"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
