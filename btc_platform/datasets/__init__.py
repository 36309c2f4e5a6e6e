"""Dataset builders: time splits with purge, numeric arrays, instruction rows. No Dagster here."""

from btc_platform.datasets.instructions import build_instruction_rows, write_instruction_files
from btc_platform.datasets.splits import (
    FEATURE_COLUMNS,
    TARGET_COLUMNS,
    content_hash,
    split_summary,
    time_split,
    write_split_files,
)

__all__ = [
    "FEATURE_COLUMNS",
    "TARGET_COLUMNS",
    "build_instruction_rows",
    "content_hash",
    "split_summary",
    "time_split",
    "write_instruction_files",
    "write_split_files",
]
