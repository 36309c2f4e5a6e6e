"""Out-of-sample judgement of trained models: cost-aware backtests, forecast quality and leakage checks."""
