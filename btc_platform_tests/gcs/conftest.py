"""The lake on the GCS emulator: a Lake, a raw client to look at the bucket, and Dagster runs."""

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from btc_platform.lake import Lake
from btc_platform_tests.conftest import graph_runner


@pytest.fixture
def gcs_lake(gcs_env):
    return Lake(gcs_env["BTC_PLATFORM_LAKE_URL"])


@pytest.fixture
def bucket(gcs_env, gcs_emulator):
    """The emulator's bucket through the Google client: what is really stored, no cache between."""
    client = storage.Client(project="test-project", credentials=AnonymousCredentials())
    return client.bucket(gcs_emulator.bucket)


@pytest.fixture
def stored(bucket, gcs_lake):
    """Names of the objects under the lake's root, relative to it."""
    prefix = gcs_lake.gcs.prefix + "/"

    def _stored(under: str = "") -> list[str]:
        return sorted(b.name[len(prefix):] for b in bucket.list_blobs(prefix=prefix + under))

    return _stored


@pytest.fixture
def run(gcs_env, instance):
    """Materialize a selection of the real definitions, the lake on the emulator."""
    return graph_runner(instance)
