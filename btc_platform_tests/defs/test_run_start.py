"""Runs launched from the UI do not start a process per step: each one re-imported the code location."""

import os
import subprocess
import sys


def test_steps_run_in_the_run_process_by_default():
    from btc_platform.definitions import defs

    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
    assert defs.resolve_job_def("coinbase_daily_ingest").executor_def.name == "in_process"


def test_multiprocess_on_request_forks_steps_from_a_preloaded_server():
    code = "from btc_platform.definitions import defs; print(defs.resolve_job_def('coinbase_daily_ingest').executor_def.name)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BTC_PLATFORM_EXECUTOR": "multiprocess"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "multiprocess_forkserver"
