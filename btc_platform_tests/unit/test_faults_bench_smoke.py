"""The fault-storm benchmark runs end to end and reports a figure per outcome (figures are printed,
never asserted as goals)."""

from pathlib import Path

from btc_platform_tests.conftest import run_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "faults.py"


def test_faults_benchmark_smoke(tmp_path):
    result, output = run_benchmark(SCRIPT, ["--smoke"], tmp_path)
    cell = result["vendors"]["coinbase"]["cells"]["0.3"]
    outcomes = ("identical", "failed_cleanly", "partial", "differing")
    assert sum(cell[k] for k in outcomes) == cell["partitions"] == 2
    assert cell["faults_injected"] > 0 and cell["retry_cost"] >= 1.0
    assert result["vendors"]["coinbase"]["baseline"]["rows"] > 0
    assert "identical" in output and "requests/partition" in output
