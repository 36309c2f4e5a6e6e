"""One way to open a storage URL (local folder or gs://bucket/prefix) as an fsspec filesystem.

On GCS, gcsfs uses Google's default credentials in production. Where `STORAGE_EMULATOR_HOST` is
set (tests, local runs against gcp-storage-emulator) it talks to that endpoint anonymously: without
`token="anon"` gcsfs would wait on the cloud metadata server and hang (STACK.md).
"""

from __future__ import annotations

import os

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
