"""The data lake: date-partitioned Parquet in the hive layout, on a local folder or any fsspec URL.

    <root>/<zone>/<dataset>/symbol=<S>/interval=<I>/yyyy=<Y>/mm=<MM>/dd=<DD>/part-000.parquet

A partition is one Parquet object, written whole or not at all: locally through a temporary file
renamed into place; on GCS uploaded to a staging name and then published under a generation
precondition (`gcs_publish`); on other object stores as a single upload. Summaries (JSON) sit beside
the data in the same folder. Remote reads fetch whole objects, never sizes from gcsfs's listing cache,
which goes stale when another process (or the Google client) replaces an object.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from btc_platform.storage import open_url

DATA_FILE = "part-000.parquet"


@dataclass(frozen=True)
class PartitionRef:
    zone: str
    dataset: str
    day: date
    symbol: str | None = None
    interval: str | None = None

    def relpath(self) -> str:
        parts = [self.zone, self.dataset]
        if self.symbol is not None:
            parts.append(f"symbol={self.symbol}")
        if self.interval is not None:
            parts.append(f"interval={self.interval}")
        parts += [f"yyyy={self.day:%Y}", f"mm={self.day:%m}", f"dd={self.day:%d}"]
        return "/".join(parts)

    def label(self) -> str:
        return "/".join(p for p in (self.dataset, self.symbol, self.interval, f"{self.day:%F}") if p)


@dataclass(frozen=True)
class WriteResult:
    path: str
    rows: int
    bytes: int


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Microsecond UTC timestamps: what BigQuery and DuckDB read as TIMESTAMP without surprises.
    fields = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def parquet_bytes(df: pd.DataFrame) -> bytes:
    table = _arrow_table(df)
    # Dictionary encoding pays for strings only; for floats it costs time and rarely saves space.
    dict_cols = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=dict_cols)
    return buf.getvalue()


class Lake:
    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = url
        self.fs, root = open_url(url, **(storage_options or {}))
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else self.fs.protocol
        self.is_local = "file" in protocols
        self.root = os.path.abspath(root) if self.is_local else root.rstrip("/")
        self.gcs = None
        if {"gs", "gcs"} & set(protocols):
            from btc_platform.gcs_publish import GcsPublisher  # the Google client loads only for gs://

            self.gcs = GcsPublisher(self.root)

    def path(self, ref: PartitionRef, name: str = DATA_FILE) -> str:
        return f"{self.root}/{ref.relpath()}/{name}"

    def display_path(self, ref: PartitionRef | None = None) -> str:
        inner = self.root if ref is None else self.path(ref)
        return inner if self.is_local else self.fs.unstrip_protocol(inner)

    def exists(self, ref: PartitionRef) -> bool:
        return self._exists(self.path(ref))

    def write(self, ref: PartitionRef, df: pd.DataFrame) -> WriteResult:
        data = parquet_bytes(df)
        target = self.path(ref)
        self._put_atomic(target, data)
        return WriteResult(path=self.display_path(ref), rows=len(df), bytes=len(data))

    def read(self, ref: PartitionRef, columns: list[str] | None = None) -> pd.DataFrame | None:
        with self._open(self.path(ref)) as f:
            return None if f is None else pq.read_table(f, columns=columns).to_pandas()

    def read_many(self, refs: list[PartitionRef], columns: list[str] | None = None) -> pd.DataFrame:
        """Concatenate the partitions that exist, in the order given (missing ones are skipped)."""
        frames = [f for f in (self.read(r, columns) for r in refs) if f is not None and len(f)]
        if not frames:
            return pd.DataFrame(columns=columns) if columns else pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def write_json(self, ref: PartitionRef, name: str, obj) -> str:
        self._put_atomic(self.path(ref, name), json.dumps(obj, indent=2, sort_keys=True, default=str).encode())
        return self.display_path(ref).rsplit("/", 1)[0] + f"/{name}"

    def read_json(self, ref: PartitionRef, name: str):
        with self._open(self.path(ref, name)) as f:
            return None if f is None else json.load(f)

    # -- small JSON documents outside the partition layout (vendor status, bookkeeping) --------------
    def put_document(self, relpath: str, obj) -> None:
        self._put_atomic(f"{self.root}/{relpath}", json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def get_document(self, relpath: str):
        with self._open(f"{self.root}/{relpath}") as f:
            return None if f is None else json.load(f)

    def list_documents(self, prefix: str) -> dict[str, object]:
        """Every JSON document under `prefix`, by path relative to the root."""
        base = f"{self.root}/{prefix}"
        if not self._exists(base):
            return {}
        found = {}
        for path in sorted(self.fs.find(base)):
            if path.endswith(".json"):
                with self._open(path) as f:
                    if f is not None:  # deleted since the listing
                        found[path[len(self.root) + 1:]] = json.load(f)
        return found

    def put_bytes(self, relpath: str, data: bytes) -> str:
        self._put_atomic(f"{self.root}/{relpath}", data)
        root = self.root if self.is_local else self.fs.unstrip_protocol(self.root)
        return f"{root}/{relpath}"

    def delete_document(self, relpath: str) -> None:
        target = f"{self.root}/{relpath}"
        if self._exists(target):
            self.fs.rm(target)

    def sweep_staging(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Remove what writers that died between upload and publish left on GCS (nothing elsewhere)."""
        return self.gcs.sweep_staging(older_than) if self.gcs else []

    def _exists(self, target: str) -> bool:
        if not self.is_local:
            self.fs.invalidate_cache(target)  # other processes write here too: look afresh
        return self.fs.exists(target)

    def _open(self, target: str):
        """A binary file for `target`, or a context of None where it does not exist."""
        if self.is_local:
            return self.fs.open(target, "rb") if self.fs.exists(target) else nullcontext()
        try:
            return io.BytesIO(self.fs.cat_file(target))  # one GET of the whole object, whatever the cache says
        except FileNotFoundError:
            return nullcontext()

    def _put_atomic(self, target: str, data: bytes) -> None:
        parent = target.rsplit("/", 1)[0]
        if self.is_local:
            os.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        elif self.gcs:
            self.gcs.put(target, data)
            self.fs.invalidate_cache(target)  # published by another client: gcsfs's listing is stale
        else:
            # One object upload: readers see the old object or the new one, never a part.
            self.fs.pipe_file(target, data)
