"""The champion pointer: which model version serves a target, beside the MLflow alias `champion`.

`<models>/_champions/<target>.json` holds the current champion (model, version folder, dataset version,
registered version, why and when it was promoted); `<models>/_champions/<target>.history.jsonl` records
every promotion and demotion with its reason. Promotion writes the pointer and moves the alias
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


def record_event(models_root: str, target: str, event: dict) -> dict:
    """Append a promotion or demotion (with its reason) to the target's history."""
    event = {"at": now(), "target": target, **event}
    url = f"{_root(models_root)}/{target}.history.jsonl"
    fs, path = open_url(url)
    old = fs.cat_file(path) if fs.isfile(path) else b""
    _write(url, old + (json.dumps(event, sort_keys=True, default=str) + "\n").encode())
    return event


def history(models_root: str, target: str) -> list[dict]:
    fs, path = open_url(f"{_root(models_root)}/{target}.history.jsonl")
    if not fs.isfile(path):
        return []
    return [json.loads(line) for line in fs.cat_file(path).decode().splitlines() if line.strip()]
