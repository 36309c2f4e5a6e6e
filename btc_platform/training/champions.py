"""The champion pointer: which model version serves a target, beside the MLflow alias `champion`.

`<models>/_champions/<target>.json` holds the current champion (model, version folder, dataset version,
registered version, why and when it was promoted); `<models>/_champions/<target>.history/` holds
every promotion and demotion with its reason, one object each (named by time, so they list in order). Promotion writes the pointer and moves the alias
together; the serving app polls the pointer, so it also works where MLflow is not reachable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import uuid
from pathlib import Path

from btc_platform.storage import open_url

FOLDER = "_champions"


def _root(models_root: str) -> str:
    if "://" not in models_root:
        models_root = str(Path(models_root).resolve())
    return f"{models_root.rstrip('/')}/{FOLDER}"


def pointer_url(models_root: str, target: str) -> str:
    return f"{_root(models_root)}/{target}.json"


def read_champion(models_root: str, target: str) -> dict | None:
    """The current champion record, or None when no model was ever promoted for `target`."""
    fs, path = open_url(pointer_url(models_root, target))
    if not fs.isfile(path):
        return None
    record = json.loads(fs.cat_file(path))
    return record or None


def _write(url: str, data: bytes) -> None:
    fs, path = open_url(url)
    if "://" in url:
        fs.pipe_file(path, data)  # one object: readers see the old or the new one whole
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_champion(models_root: str, target: str, record: dict | None) -> None:
    """Point `target` at `record` (None: no champion, after a demotion)."""
    _write(pointer_url(models_root, target), json.dumps(record or {}, indent=2, sort_keys=True, default=str).encode())


def _events_dir(models_root: str, target: str) -> str:
    return f"{_root(models_root)}/{target}.history"


def record_event(models_root: str, target: str, event: dict) -> dict:
    """Add a promotion or demotion (with its reason) to the target's history: one new object per event,
    never a read-modify-write of a shared file, so two writers cannot drop each other's events."""
    event = {"at": now(), "target": target, **event}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    _write(f"{_events_dir(models_root, target)}/{stamp}-{uuid.uuid4().hex[:8]}.json",
           json.dumps(event, sort_keys=True, default=str).encode())
    return event


def history(models_root: str, target: str) -> list[dict]:
    """Every recorded event, oldest first (plus those of the older single-file `.history.jsonl`)."""
    events = []
    fs, legacy = open_url(f"{_root(models_root)}/{target}.history.jsonl")
    if fs.isfile(legacy):
        events += [json.loads(line) for line in fs.cat_file(legacy).decode().splitlines() if line.strip()]
    fs, folder = open_url(_events_dir(models_root, target))
    if fs.isdir(folder):
        names = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".json"))
        events += [json.loads(fs.cat_file(p)) for p in names]
    return events
