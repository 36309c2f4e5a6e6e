"""Merging two answers to the same request (a short page and its re-request), shared by the clients."""

from __future__ import annotations

import pandas as pd

from btc_platform.vendors.errors import MalformedPayloadError


def union_answers(a: pd.DataFrame, b: pd.DataFrame, *, what: str, vendor: str, endpoint: str,
                  partition: str | None) -> pd.DataFrame:
    """Both answers' rows, oldest first, identical repeats collapsed; two different `what` for one `ts` fail."""
    both = pd.concat([a, b], ignore_index=True).drop_duplicates(ignore_index=True)
    if both["ts"].duplicated().any():
        ts = both.loc[both["ts"].duplicated(), "ts"].iloc[0]
        raise MalformedPayloadError(f"two different {what} for {ts:%F} in two answers", vendor=vendor,
                                    endpoint=endpoint, partition=partition)
    return both.sort_values("ts", kind="stable").reset_index(drop=True)
