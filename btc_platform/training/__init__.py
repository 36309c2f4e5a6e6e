"""Training entry points, each run as its own process; they speak Pipes via dagster-pipes."""
