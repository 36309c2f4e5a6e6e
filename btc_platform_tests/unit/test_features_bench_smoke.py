"""The features benchmark runs end to end and reports its figures (timings are printed, never asserted)."""

from pathlib import Path

from btc_platform_tests.conftest import run_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "features.py"
ROWS = 20_000

EXPECTED_KEYS = {
    "rows", "symbol", "timeframe", "start", "end", "filled_minutes", "columns_full", "columns_ta", "columns_core",
    "ours_core_s", "ours_ta_s", "ours_full_s", "ours_full_peak_rss_gb", "ours_full_baseline_rss_gb",
    "ours_ta_peak_rss_gb", "ours_core_peak_rss_gb", "ta_s", "ta_core_s", "ta_peak_rss_gb", "ta_parts_s",
    "speedup_core", "speedup_ta_columns", "speedup_full_vs_ta", "max_rel_diff", "max_rel_diff_bollinger",
    "max_rel_diff_other", "agrees_with_ta", "goal_speedup", "goal_speedup_met", "goal_peak_gb", "goal_peak_met",
    "ours_full_user_s", "ours_full_sys_s", "ta_user_s", "ta_sys_s",
}


def test_features_benchmark_smoke(tmp_path):
    result, output = run_benchmark(SCRIPT, ["--rows", str(ROWS)], tmp_path)

    assert EXPECTED_KEYS <= set(result)
    assert result["rows"] == ROWS and result["timeframe"] == "1m" and result["symbol"] == "BTC-USD"
    assert result["columns_full"] == 82 and result["columns_core"] == 14
    assert result["columns_core"] < result["columns_ta"] < result["columns_full"]
    assert len(result["max_rel_diff"]) == result["columns_ta"]
    assert result["agrees_with_ta"] is True  # values, not timings: the same numbers as ta
    for key in ("ours_core_s", "ours_ta_s", "ours_full_s", "ta_s", "ta_core_s", "speedup_ta_columns"):
        assert result[key] > 0, key
    assert 0 < result["ours_full_baseline_rss_gb"] <= result["ours_full_peak_rss_gb"]
    assert {"ADX", "ATR", "RSI", "MFI"} <= set(result["ta_parts_s"])
    assert "vs ta" in output and "peak RSS" in output and "agreement with ta" in output
