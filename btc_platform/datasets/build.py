"""A dataset build in memory (files, manifest, check results) and its publication to a store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from btc_platform.datasets.manifest import code_version, dataset_card, provenance, source_summary
from btc_platform.datasets.storage import DatasetStore


@dataclass
class Build:
    dataset: str
    version: str
    description: str
    config: dict
    source: dict
    source_hash: str
    splits: dict[str, dict]
    provenance: dict = field(default_factory=dict)
    files: dict[str, object] = field(default_factory=dict)  # name -> DataFrame (parquet/csv), list (jsonl), dict (json/npz)
    checks: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    examples: dict[str, dict] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def manifest(self) -> dict:
        return {
            "dataset": self.dataset, "version": self.version, "description": self.description,
            "config": self.config, "source": self.source, "source_hash": self.source_hash,
            "content_hash": self.source_hash, "provenance": self.provenance,
            "splits": self.splits, "files": sorted(self.files) + ["README.md", "manifest.json"],
            "checks": {k: v["passed"] for k, v in self.checks.items()}, "notes": self.notes,
            "code_version": code_version(), "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **self.extra,
        }


def new_build(dataset: str, version: str, description: str, config: dict, table: pd.DataFrame,
              source_name: str, source_hash: str) -> Build:
    return Build(dataset, version, description, config, source_summary(table, source_name), source_hash, {},
                 provenance(table))


def publish(store: DatasetStore, build: Build) -> tuple[dict, bool]:
    """Write the build's files, its card, then its manifest. A version already published holds the
    same content (the version is a content hash), so it is left as it is: returns (manifest, reused)."""
    if store.is_published(build.dataset, build.version):
        return store.manifest(build.dataset, build.version), True
    for name, content in build.files.items():
        if name.endswith(".parquet"):
            store.write_parquet(build.dataset, build.version, name, content)
        elif name.endswith(".csv"):
            store.write_csv(build.dataset, build.version, name, content)
        elif name.endswith(".jsonl"):
            store.write_jsonl(build.dataset, build.version, name, content)
        elif name.endswith(".npz"):
            store.write_npz(build.dataset, build.version, name, content)
        elif name.endswith(".json"):
            store.write_json(build.dataset, build.version, name, content)
        else:
            raise ValueError(f"no writer for {name}")
    manifest = build.manifest()
    store.write_bytes(build.dataset, build.version, "README.md", dataset_card(manifest, build.examples).encode())
    store.publish(build.dataset, build.version, manifest)
    return manifest, False
