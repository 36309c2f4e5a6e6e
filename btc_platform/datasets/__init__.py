"""Training datasets from the training tables, without Dagster: walk-forward splits with purge and
embargo, scalers, sequence windows, instruction and preference data for LLMs, manifests and checks.
One module per concern; `build` and the *_dataset modules assemble a versioned build."""
