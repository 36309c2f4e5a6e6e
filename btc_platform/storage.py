"""One way to open a storage URL (local folder or gs://bucket/prefix) as an fsspec filesystem.

On GCS, gcsfs uses Google's default credentials in production. Where `STORAGE_EMULATOR_HOST` is
set (tests, local runs against gcp-storage-emulator) it talks to that endpoint anonymously: without
`token="anon"` gcsfs would wait on the cloud metadata server and hang (STACK.md).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import timedelta

import fsspec


def storage_options(url: str, env: dict[str, str] | None = None) -> dict:
    env = os.environ if env is None else env
    if url.startswith("gs://") and env.get("STORAGE_EMULATOR_HOST"):
        return {"endpoint_url": env["STORAGE_EMULATOR_HOST"], "token": "anon",
                "project": env.get("GOOGLE_CLOUD_PROJECT", "test-project")}
    return {}


def open_url(url: str, **options) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it for `url`; explicit options win over the environment."""
    return fsspec.core.url_to_fs(url, **{**storage_options(url), **options})


# What local writers leave when killed between writing and renaming: the lake's `.<uuid>.tmp` files,
# model folders staged as `.<name>.<hex>.tmp`, champion files as `<name>.<hex>.tmp`, and folders moved
# aside as `.<name>.old-<hex>` (folders.replace_folder). Readers never see them; nothing else removes them.
LEFTOVER = re.compile(r"\.[0-9a-f]{8,32}\.tmp$|^\..+\.old-[0-9a-f]{8}$")


def sweep_local_leftovers(root: str, older_than: timedelta = timedelta(hours=1),
                          now: float | None = None) -> list[str]:
    """Remove the temp files and folders under a local `root` that are older than `older_than` (younger
    ones may belong to writes in progress); returns their paths."""
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    removed = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            try:
                if not LEFTOVER.search(name) or os.lstat(path).st_mtime > cutoff:
                    continue
                if name in dirs:
                    shutil.rmtree(path)
                    dirs.remove(name)  # gone: do not walk into it
                else:
                    os.unlink(path)
            except FileNotFoundError:  # removed meanwhile (its writer finished, or another sweep)
                continue
            removed.append(path)
    return sorted(removed)
