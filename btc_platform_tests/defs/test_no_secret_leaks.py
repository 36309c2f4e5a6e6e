"""No vendor key appears in any log line, error, metadata value or lake file."""

import json
import logging
from datetime import date
from pathlib import Path

from btc_platform.config import KEY_ENV
from btc_platform.defs.partitions import multi_key
from btc_platform.sandbox import FaultRule

REJECTED_FRED_KEY = "0" * 32  # a key the vendor rejects is a secret too


def test_keys_never_leak_through_successes_failures_or_retries(run, instance, clean_sandbox, platform_env,
                                                             caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    keys = {vendor: platform_env[var] for vendor, var in KEY_ENV.items()}
    keys["fred (rejected)"] = REJECTED_FRED_KEY
    clean_sandbox.vendors["alphavantage"].configure(per_minute=None, per_day=None)
    # Retries (429, 5xx) and a failing page on the way ...
    clean_sandbox.set_faults([FaultRule("429", count=2), FaultRule("503", count=2),
                              FaultRule("truncated", vendor="fred", count=1),
                              # the same schema break in two answers in a row: a failing partition
                              FaultRule("wrong_shape", vendor="fred", count=2)])
    results = [run([asset], "2024-03-04", raise_on_error=False)
               for asset in ("cryptoquant_onchain_metrics", "fred_vintages", "alphavantage_daily")]
    results.append(run(["coinapi_perp_ohlcv_1h", "coinapi_funding_rates"], multi_key(date(2024, 3, 4), "BTC-USD"),
                       raise_on_error=False))
    # ... then a denied endpoint and a rejected key.
    clean_sandbox.deny("coinapi", r"/v1/metrics", "no_access")
    results.append(run(["coinapi_funding_rates"], multi_key(date(2024, 3, 5), "BTC-USD"), raise_on_error=False))
    monkeypatch.setenv("FRED_API_KEY", REJECTED_FRED_KEY)
    results.append(run(["fred_vintages"], "2024-03-05", raise_on_error=False))

    event_text = "\n".join(str(event) for r in results for event in instance.all_logs(r.run_id))
    lake_files = [p for p in Path(platform_env["BTC_PLATFORM_LAKE_URL"]).rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in lake_files) and any(p.suffix == ".json" for p in lake_files)
    lake_bytes = b"".join(p.read_bytes() for p in lake_files)
    # The failures did happen: retries, a malformed page (retried), a schema break (final), the denied
    # endpoint and the rejected key.
    assert any(e["fault"] == "429" for e in clean_sandbox.request_log)
    assert "not valid JSON" in caplog.text and "fred" in caplog.text
    assert not results[1].success and "MalformedPayloadError" in event_text
    status = json.loads((Path(platform_env["BTC_PLATFORM_LAKE_URL"]) / "_status/vendors/fred/vintagedates.json").read_text())
    assert status["status"] == "no_access" and b'"no_access"' in lake_bytes
    for vendor, key in keys.items():
        assert key not in event_text, f"{vendor} key in the Dagster event log"
        assert key not in caplog.text, f"{vendor} key in a log line"
        assert key.encode() not in lake_bytes, f"{vendor} key in a lake file"
