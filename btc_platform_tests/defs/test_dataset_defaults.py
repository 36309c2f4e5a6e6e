"""Automation runs the dataset assets without run config: the defaults must build a valid dataset."""

from btc_platform_tests.defs.test_training_sensor import write_table
from btc_platform_tests.synthetic_tables import training_table


def test_llm_instructions_with_default_config_pass_their_blocking_checks(run, platform_env):
    from btc_platform.definitions import defs

    write_table(platform_env["BTC_PLATFORM_DUCKDB_PATH"], training_table(days=24, seed=4))
    result = run(["llm_instructions_1h"])  # what the automation sensor launches: no run config
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows"].value > 0
    blocking = {s.name for s in defs.resolve_assets_def("llm_instructions_1h").check_specs if s.blocking}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert blocking <= set(checks) and all(checks[name] for name in blocking), checks
