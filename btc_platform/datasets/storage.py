"""Dataset files under a root URL (local folder or gs://bucket/prefix), through storage.open_url.

Layout: <root>/<dataset>/version=<version>/<files>, manifest.json written last. A version folder
without a manifest is an interrupted build: never read, and rebuilt over on the next run.
"""

from __future__ import annotations

import io
import json
import posixpath
from pathlib import Path

import numpy as np
import pandas as pd

from btc_platform.storage import open_url

MANIFEST = "manifest.json"


class DatasetStore:
    def __init__(self, root_url: str):
        if "://" not in root_url:
            root_url = str(Path(root_url).resolve())
        self.root_url = root_url.rstrip("/")
        self.fs, self.root = open_url(self.root_url)

    def version_url(self, dataset: str, version: str) -> str:
        return f"{self.root_url}/{dataset}/version={version}"

    def _path(self, dataset: str, version: str, name: str) -> str:
        return posixpath.join(self.root, dataset, f"version={version}", name)

    # ---- writing ----------------------------------------------------------------------------
    def write_bytes(self, dataset: str, version: str, name: str, data: bytes) -> str:
        path = self._path(dataset, version, name)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        self.fs.pipe_file(path, data)
        return path

    def write_parquet(self, dataset: str, version: str, name: str, frame: pd.DataFrame) -> str:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return self.write_bytes(dataset, version, name, buf.getvalue())

    def write_npz(self, dataset: str, version: str, name: str, arrays: dict[str, np.ndarray]) -> str:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return self.write_bytes(dataset, version, name, buf.getvalue())

    def write_json(self, dataset: str, version: str, name: str, payload) -> str:
        text = json.dumps(payload, indent=2, sort_keys=True, default=str)
        return self.write_bytes(dataset, version, name, text.encode())

    def write_jsonl(self, dataset: str, version: str, name: str, records: list[dict]) -> str:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        return self.write_bytes(dataset, version, name, text.encode())

    def write_csv(self, dataset: str, version: str, name: str, frame: pd.DataFrame) -> str:
        return self.write_bytes(dataset, version, name, frame.to_csv(index=False).encode())

    def publish(self, dataset: str, version: str, manifest: dict) -> str:
        """Write the manifest: the last file of a build, the one that makes the version usable."""
        return self.write_json(dataset, version, MANIFEST, manifest)

    # ---- reading ----------------------------------------------------------------------------
    def is_published(self, dataset: str, version: str) -> bool:
        return self.fs.exists(self._path(dataset, version, MANIFEST))

    def manifest(self, dataset: str, version: str) -> dict:
        if not self.is_published(dataset, version):
            raise FileNotFoundError(f"{self.version_url(dataset, version)} has no {MANIFEST}: "
                                    "the build is incomplete or never ran")
        return json.loads(self.read_bytes(dataset, version, MANIFEST))

    def read_bytes(self, dataset: str, version: str, name: str) -> bytes:
        return self.fs.cat_file(self._path(dataset, version, name))

    def read_parquet(self, dataset: str, version: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(dataset, version, name)))

    def read_npz(self, dataset: str, version: str, name: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.read_bytes(dataset, version, name))) as npz:
            return {k: npz[k] for k in npz.files}

    def list_files(self, dataset: str, version: str) -> list[str]:
        base = self._path(dataset, version, "")
        return sorted(posixpath.relpath(p, base) for p in self.fs.find(base))

    def download(self, dataset: str, version: str, local_dir: Path, names: list[str] | None = None) -> Path:
        """Copy a published version's files to a local folder (HF datasets, training processes)."""
        self.manifest(dataset, version)  # refuses incomplete versions
        local_dir = Path(local_dir)
        for name in names or self.list_files(dataset, version):
            target = local_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(dataset, version, name))
        return local_dir
