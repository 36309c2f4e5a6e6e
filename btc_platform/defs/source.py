"""The vendor source of an ingest run, where people look: run tags, metadata, the partition's footer."""

import dagster as dg

from btc_platform.sources import SourceMismatch, claim_lake

SOURCE_TAG = "btc_platform/source"


def ingest_source(context: dg.AssetExecutionContext, lake, api) -> str:
    """The source `api` answers from (its resource's `source`): claimed in the lake, where another
    source's data refuses it unless the lake resource allows mixing, and tagged on the run."""
    source = api.origin()
    try:
        claim_lake(lake.lake(), source, lake.allow_mixed_sources)
    except SourceMismatch as error:
        raise dg.Failure(f"{context.asset_key.to_user_string()}: refused, nothing written: {error}") from None
    if context.run.tags.get(SOURCE_TAG) != source:
        context.instance.add_run_tags(context.run.run_id, {SOURCE_TAG: source})
    return source


def with_source(result, source: str):
    """`result` (a MaterializeResult, or None for a skipped asset) with the source in its metadata."""
    if result is None:
        return None
    return result._replace(metadata={**(result.metadata or {}), "source": source})
