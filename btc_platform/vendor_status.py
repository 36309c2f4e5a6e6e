"""Vendor status per endpoint, and the partitions served without it, kept in the lake.

The lake is the one store that every run process, the sensors and the UI's code location share in
both the embedded setup and production (GCS). Documents are small and each is written whole:

    _status/vendors/<vendor>/<endpoint>.json           status, last success, last failure + message
    _status/degraded/<asset>/<partition>.json          a partition skipped or served by a fallback

The restoration sensor reads both: endpoints that are not `ok` get probed, and when one answers
again the partitions recorded against it are re-run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from btc_platform.lake import Lake

STATUSES = ("ok", "no_credentials", "no_access", "not_entitled", "rate_limited", "failing")
VENDORS_PREFIX, DEGRADED_PREFIX = "_status/vendors", "_status/degraded"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class EndpointStatus:
    vendor: str
    endpoint: str
    status: str = "ok"
    last_success: str | None = None
    last_failure: str | None = None
    last_failure_status: str | None = None
    last_failure_message: str | None = None
    updated_at: str | None = None


@dataclass
class DegradedPartition:
    asset: str
    partition: str
    vendor: str
    endpoint: str
    how: str  # "skipped" (nothing written) or "fallback" (served by another source)
    reason: str
    recorded_at: str | None = None


class VendorStatusStore:
    def __init__(self, lake: Lake):
        self.lake = lake

    # -- endpoint status ------------------------------------------------------------------------
    def _status_path(self, vendor: str, endpoint: str) -> str:
        return f"{VENDORS_PREFIX}/{_slug(vendor)}/{_slug(endpoint)}.json"

    def get(self, vendor: str, endpoint: str) -> EndpointStatus | None:
        doc = self.lake.get_document(self._status_path(vendor, endpoint))
        return EndpointStatus(**doc) if doc else None

    def record(self, vendor: str, endpoint: str, status: str, message: str | None = None) -> EndpointStatus:
        """Record one call's outcome; `message` must already be free of secrets (VendorError's is)."""
        if status not in STATUSES:
            raise ValueError(f"unknown vendor status {status!r}; expected one of {STATUSES}")
        current = self.get(vendor, endpoint) or EndpointStatus(vendor, endpoint)
        now = _now()
        current.status, current.updated_at = status, now
        if status == "ok":
            current.last_success = now
        else:
            current.last_failure, current.last_failure_status = now, status
            current.last_failure_message = (message or "")[:500]
        self.lake.put_document(self._status_path(vendor, endpoint), asdict(current))
        return current

    def all(self) -> list[EndpointStatus]:
        return [EndpointStatus(**doc) for doc in self.lake.list_documents(VENDORS_PREFIX).values()]

    # -- partitions served degraded -------------------------------------------------------------
    def _degraded_path(self, asset: str, partition: str) -> str:
        return f"{DEGRADED_PREFIX}/{_slug(asset)}/{_slug(partition)}.json"

    def mark_degraded(self, asset: str, partition: str, vendor: str, endpoint: str, how: str, reason: str) -> None:
        if how not in ("skipped", "fallback"):
            raise ValueError(f"how must be skipped or fallback, not {how!r}")
        entry = DegradedPartition(asset, partition, vendor, endpoint, how, reason[:500], _now())
        self.lake.put_document(self._degraded_path(asset, partition), asdict(entry))

    def clear_degraded(self, asset: str, partition: str) -> None:
        self.lake.delete_document(self._degraded_path(asset, partition))

    def degraded(self) -> list[DegradedPartition]:
        return [DegradedPartition(**doc) for doc in self.lake.list_documents(DEGRADED_PREFIX).values()]
