"""The ingest benchmark runs end to end and reports its figures (timings are printed, never asserted)."""

from pathlib import Path

from btc_platform_tests.conftest import run_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ingest.py"
DAYS = 3
REQUESTS_PER_DAY = 5  # 1440 one-minute bars in pages of at most 300 (a short page is asked twice)

EXPECTED_KEYS = {
    "symbol", "start", "days", "allowed_rps", "requests", "client_requests", "client_retries", "wall_s",
    "achieved_rps", "ratio", "steady_rps", "rejected_429", "max_consecutive_429", "candles", "lake_bytes",
    "bytes_per_candle", "csv_bytes_per_candle", "parquet_plain_bytes_per_candle", "time", "gaps_ms",
}


def test_ingest_benchmark_smoke(tmp_path):
    result, output = run_benchmark(SCRIPT, ["--days", str(DAYS)], tmp_path)

    assert EXPECTED_KEYS <= set(result)
    assert result["symbol"] == "BTC-USD" and result["days"] == DAYS
    assert result["allowed_rps"] == 10.0
    assert result["client_requests"] == result["requests"]
    assert DAYS * REQUESTS_PER_DAY <= result["requests"] - result["rejected_429"] <= 2 * DAYS * REQUESTS_PER_DAY
    assert 0 < result["candles"] <= DAYS * 1440
    assert result["lake_bytes"] > 0 and result["bytes_per_candle"] > 0
    assert result["csv_bytes_per_candle"] > 0 and result["parquet_plain_bytes_per_candle"] > 0
    assert result["wall_s"] > 0 and result["achieved_rps"] > 0 and result["ratio"] > 0
    assert result["max_consecutive_429"] >= 0
    assert "achieved / allowed" in output and "bytes/candle" in output
