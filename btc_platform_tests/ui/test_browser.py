"""The Dagster UI, used with clicks in headless Chromium as a person uses it, on the UI `make ui` starts.

The tests run in file order on one UI. The failed check comes first: its detail page shows the latest
execution, and automation (eager quality checks) would add passing ones once other days are ingested.
Each step saves a screenshot under test-artifacts/ui/ (NN-step.png; NN-step-FAILED.png when it fails,
named in the error with the tail of the UI's log).
"""

import json
import re
import time
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import expect

from btc_platform.defs.coinbase.assets import candles_ref
from btc_platform.defs.partitions import last_closed_day
from btc_platform.lake import Lake
from btc_platform_tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.ui

ASSET, QUALITY = "coinbase_candles_1m", "coinbase_candles_1m_quality"
# Each test its own closed days, so none sees another's partitions.
MATERIALIZE_DAY = last_closed_day()
BLOCKED_DAY = last_closed_day() - timedelta(days=1)
BACKFILL_DAYS = [last_closed_day() - timedelta(days=n) for n in (4, 3, 2)]


@contextmanager
def step(page, ui, name: str):
    """Screenshot the page at the end of a step; on failure, screenshot it and name the file in the error."""
    try:
        yield
    except Exception as exc:
        shot = ARTIFACTS / f"{name}-FAILED.png"
        try:
            page.screenshot(path=shot, full_page=True)
        except Exception as shot_error:  # the page itself may be gone
            shot = f"(none: {shot_error})"
        raise AssertionError(f"UI step {name} failed: {exc}\nscreenshot: {shot}\n"
                             f"UI log ({ui.log_path}), tail:\n{ui.log_tail(2000)}") from exc
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def open_asset(page, key: str) -> None:
    """From the Catalog, click the asset's name."""
    page.goto("/")
    page.get_by_role("link", name="Catalog").click()
    page.locator(f'a[href="/assets/{key}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/assets/{key}(\?|$)"))


def open_materialize_dialog(page, days_text: str, symbols: list[str]):
    """Materialize… on the asset page, then the dialog's date field and symbol picker."""
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")  # not the pickers' popovers
    date_field = dialog.get_by_placeholder(re.compile(r"^ex: "))
    date_field.fill(days_text)
    date_field.press("Enter")
    dialog.get_by_text("Select a partition or create one").click()
    for symbol in symbols:
        page.locator("span", has_text=re.compile(rf"^{symbol}$")).first.click()
    page.keyboard.press("Escape")  # closes the picker, not the dialog
    return dialog


def lake_rows(ui, day, symbol) -> int | None:
    frame = Lake(ui.env["BTC_PLATFORM_LAKE_URL"]).read(candles_ref(day, symbol))
    return None if frame is None else len(frame)


def test_asset_graph_shows_every_group(page, ui):
    from btc_platform.definitions import defs

    expected = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    with step(page, ui, "01-asset-graph"):
        page.goto("/")
        page.get_by_role("link", name="Lineage").click()
        page.get_by_text("Global asset lineage").wait_for()
        # One node per group in the graph, and the group tree beside it.
        nodes = page.locator("foreignObject [data-tooltip]")
        tree = page.locator("button:has([aria-label=asset_group]) [title]")
        expect(nodes).to_have_count(len(expected))
        expect(tree).to_have_count(len(expected))
        shown = set(nodes.evaluate_all("els => els.map(e => e.getAttribute('data-tooltip'))"))
        listed = set(tree.evaluate_all("els => els.map(e => e.title)"))
        assert shown == expected, f"graph shows groups {sorted(shown)}, the definitions have {sorted(expected)}"
        assert listed == expected, f"group tree lists {sorted(listed)}, the definitions have {sorted(expected)}"


def test_failed_blocking_check_explains_itself(page, ui):
    day, symbol = BLOCKED_DAY, "BTC-USD"
    key = f"{day}|{symbol}"
    # Every Coinbase page of that day comes back with its last half missing, the same way each time,
    # so the ingest accepts it and the day's coverage (about 50%) is under the blocking 90%.
    fault = {"kind": "short_page", "vendor": "coinbase", "path_regex": rf"candles\?.*start={day}T"}
    httpx.post(f"{ui.sandbox_url}/_sandbox/faults", json=fault, timeout=10).raise_for_status()
    try:
        launched = ui.graphql("""mutation($keys: [String!]!) { launchPartitionBackfill(backfillParams: {
            partitionNames: $keys, assetSelection: [{path: ["coinbase_candles_1m"]}, {path: ["coinbase_candles_1m_quality"]}]
        }) { __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                              keys=[key])["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = ui.wait_for_backfill(launched["backfillId"])
    finally:
        httpx.delete(f"{ui.sandbox_url}/_sandbox/faults", timeout=10)
    assert [r["status"] for r in backfill["runs"]] == ["FAILURE"], f"the blocked day's run: {backfill}"

    with step(page, ui, "03-failed-blocking-check"):
        open_asset(page, QUALITY)
        page.get_by_role("tab", name="Checks").click()
        page.get_by_text("coverage", exact=True).first.click()
        detail = page.locator("body")
        expect(detail.get_by_text("Execution history")).to_be_visible()  # a check's detail is open
        expect(detail.get_by_text("This is a blocking asset check.")).to_be_visible()
        expect(detail.get_by_text("present + no-trade minutes cover at least 90% of the expected bars")).to_be_visible()
        expect(detail.get_by_text("Failed", exact=True).last).to_be_visible()
        # The measured coverage and the partition that fails it.
        expect(detail.get_by_text("lowest_coverage_adjusted").first).to_be_visible()
        expect(detail.get_by_text(re.compile(r"^0\.(4|5)\d*$")).first).to_be_visible()
        page.get_by_text("[Show JSON]").first.click()
        expect(page.get_by_role("dialog").filter(has_text="failing_partitions").get_by_text(key)).to_be_visible()


def test_materialize_one_partition_with_clicks(page, ui):
    day, symbol = MATERIALIZE_DAY, "BTC-USD"
    with step(page, ui, "02a-materialize-dialog"):
        open_asset(page, ASSET)
        dialog = open_materialize_dialog(page, day.isoformat(), [symbol])
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    with step(page, ui, "02b-run-succeeded"):
        dialog.get_by_role("button", name="Launch 1 run").click()
        # The toast names the run; its View link opens the run's page.
        view = page.get_by_role("link", name="View", exact=True)
        run_id = re.fullmatch(r"/runs/([0-9a-f-]{36})", view.get_attribute("href")).group(1)
        view.click()
        expect(page).to_have_url(re.compile(rf"/runs/{run_id}"))
        run = ui.wait_for_run(run_id)
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}"
        assert tags.get("dagster/partition") == f"{day}|{symbol}", tags
        assert tags.get("btc_platform/source", "").startswith("sandbox("), f"run source tag: {tags}"
        page.reload()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        rows = lake_rows(ui, day, symbol)
        assert rows and rows > 1000, f"{symbol} {day}: {rows} rows in the UI's lake after the run"


def test_backfill_three_days_two_symbols_with_clicks(page, ui):
    first, last = BACKFILL_DAYS[0], BACKFILL_DAYS[-1]
    symbols = ["BTC-USD", "ETH-USD"]
    with step(page, ui, "04a-backfill-dialog"):
        open_asset(page, ASSET)
        dialog = open_materialize_dialog(page, f"[{first}...{last}]", symbols)
        expect(dialog.get_by_text("6 partitions", exact=True)).to_be_visible()
    with step(page, ui, "04b-backfill-completed"):
        started = time.monotonic()
        dialog.get_by_role("button", name="Launch backfill").click()
        view = page.get_by_role("link", name="View", exact=True)  # in the toast "Created backfill …"
        backfill_id = re.fullmatch(r"/runs/b/([a-z0-9]+)", view.get_attribute("href")).group(1)
        view.click()
        expect(page).to_have_url(re.compile(rf"/runs/b/{backfill_id}"))
        backfill = ui.wait_for_backfill(backfill_id)
        wall = time.monotonic() - started
        statuses = sorted(r["status"] for r in backfill["runs"])
        summary = {"backfill": backfill_id, "runs": len(statuses), "statuses": statuses, "wall_s": round(wall, 1)}
        (ARTIFACTS / "04-backfill.json").write_text(json.dumps(summary, indent=2))
        print(f"backfill {backfill_id}: {len(statuses)} runs {statuses}, {wall:.0f} s")
        assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill ended {backfill}"
        # The backfill policy runs a range per product, not one run per day.
        assert statuses == ["SUCCESS"] * len(symbols), f"expected one successful run per symbol: {backfill}"
        for symbol in symbols:
            for day in BACKFILL_DAYS:
                rows = lake_rows(ui, day, symbol)
                assert rows and rows > 1000, f"{symbol} {day}: {rows} rows in the UI's lake after the backfill"
        page.reload()
        expect(page.get_by_text(re.compile(r"Completed|Succeeded|Success")).first).to_be_visible()
