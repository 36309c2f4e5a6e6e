"""Lake objects on GCS, written in two steps: upload to a staging name, then publish.

    1. upload the bytes to <root>/_staging/<uuid>      (nobody reads there)
    2. rewrite it server-side to the final name, if the final name's generation is still the one
       seen just before (0: absent): a writer that raced another one is told, not overwritten
    3. delete the staging object

A process that dies before step 2 leaves a staging object and nothing else: readers only look at
final names, so the partition is the old one or absent, never partial. `sweep_staging` removes
staging objects left by such crashes. The Google client library does the publish (gcsfs has no
generation preconditions); with `STORAGE_EMULATOR_HOST` set it talks to the emulator anonymously,
otherwise it uses the default credentials.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

STAGING_DIR = "_staging"


class ConcurrentWriteError(RuntimeError):
    """Another writer published the same object between our look and our publish."""


@lru_cache(maxsize=4)
def _client(emulator_host: str | None, project: str | None) -> storage.Client:
    if emulator_host:  # the client library reads STORAGE_EMULATOR_HOST itself; it needs no credentials there
        return storage.Client(project=project or "test-project", credentials=AnonymousCredentials())
    return storage.Client(project=project)


def gcs_client() -> storage.Client:
    return _client(os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT"))


def _content_type(name: str) -> str:
    return "application/json" if name.endswith(".json") else "application/octet-stream"


class GcsPublisher:
    """Staged, generation-checked writes under one root, given as `bucket/prefix` (no gs://)."""

    def __init__(self, root: str, client: storage.Client | None = None):
        self.bucket_name, _, self.prefix = root.strip("/").partition("/")
        self._client = client

    @property
    def bucket(self) -> storage.Bucket:
        return (self._client or gcs_client()).bucket(self.bucket_name)

    def _key(self, path: str) -> str:
        bucket, _, key = path.strip("/").partition("/")
        if bucket != self.bucket_name:
            raise ValueError(f"{path} is not in bucket {self.bucket_name}")
        return key

    def staging_prefix(self) -> str:
        return f"{self.prefix}/{STAGING_DIR}/" if self.prefix else f"{STAGING_DIR}/"

    def upload_staging(self, data: bytes, content_type: str) -> storage.Blob:
        staged = self.bucket.blob(f"{self.staging_prefix()}{uuid.uuid4().hex}")
        staged.upload_from_string(data, content_type=content_type, if_generation_match=0)
        return staged

    def publish(self, staged: storage.Blob, key: str) -> int:
        """Copy `staged` to `key` unless someone else changed `key` since we looked; its new generation."""
        bucket = self.bucket
        current = bucket.get_blob(key)
        expected = current.generation if current else 0
        final = bucket.blob(key)
        try:
            token, _, _ = final.rewrite(staged, if_generation_match=expected)
            while token:  # large objects across locations take several calls; within a bucket one
                token, _, _ = final.rewrite(staged, token=token, if_generation_match=expected)
        except PreconditionFailed as error:
            # The same bytes already there (a retried rewrite whose answer was lost, or another run
            # writing identical content) is the outcome we wanted, not a conflict.
            now = bucket.get_blob(key)
            if now is not None and staged.crc32c and now.crc32c == staged.crc32c and now.size == staged.size:
                return now.generation
            raise ConcurrentWriteError(
                f"gs://{self.bucket_name}/{key} changed while it was being written (expected generation "
                f"{expected}); another run wrote it: it holds that run's whole object"
            ) from error
        return final.generation

    def put(self, path: str, data: bytes) -> int:
        """Write `data` at `path` (bucket/key) through a staging object; the published generation."""
        key = self._key(path)
        staged = self.upload_staging(data, _content_type(key))
        try:
            return self.publish(staged, key)
        finally:
            try:
                staged.delete(if_generation_match=staged.generation)
            except NotFound:
                pass

    def sweep_staging(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete staging objects older than `older_than` (left by writers that died); their names.
        Younger ones may belong to writes in progress and are kept."""
        cutoff = datetime.now(timezone.utc) - older_than
        swept = []
        for blob in (self._client or gcs_client()).list_blobs(self.bucket_name, prefix=self.staging_prefix()):
            if blob.time_created is not None and blob.time_created <= cutoff:
                try:
                    blob.delete(if_generation_match=blob.generation)
                except (NotFound, PreconditionFailed):
                    continue
                swept.append(f"gs://{self.bucket_name}/{blob.name}")
        return swept
