"""Dagit as a person uses it: `make dev` on 127.0.0.1, driven by Playwright in Debian's chromium.

The server runs in a temporary data home on a synthetic export, with the as-of date's partition
added to its instance (a fresh home has none). The test opens the asset graph, finds the seven
assets and their lineage, clicks "Materialize all", picks the as-of partition in the launch dialog,
waits for the run to succeed, then opens batch_predictions, eda_report and candidate_model and
looks at their metadata and pictures. Screenshots go to test-artifacts/ui/ (git-ignored). Every
process the server started is stopped by its process group, and the test checks none is left.
"""

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from booking_platform.config import load_settings
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.runtime import prepare_dagster_home
from booking_platform_tests.conftest import (
    REPO_ROOT,
    SEVEN_ASSETS,
    SEVEN_ASSETS_UPSTREAM,
    SYNTHETIC_ROWS,
)
from booking_platform_tests.dagit_server import running_dagit
from booking_platform_tests.synthetic import make_bookings, write_csv

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
SERVER_START_SECONDS = 300  # 6-9 s on a quiet machine, over a minute on a busy one
RUN_SECONDS = 900
AS_OF = "2017-05-01"
UPSTREAM = SEVEN_ASSETS_UPSTREAM
ALL_NAMES = set(UPSTREAM) | {"realised_performance", "eda_report"}


def _required() -> bool:
    return os.environ.get("REQUIRE_REAL_DATA") == "1" or bool(os.environ.get("CI"))


def _add_as_of_partition(env: dict[str, str]) -> None:
    """Add the as-of partition to the instance under the home, as `booking-platform run` does.

    prepare_dagster_home points os.environ's DAGSTER_HOME at the home; the MonkeyPatch context
    puts it back so the other tests keep their own instance.
    """
    settings = load_settings(env)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(settings.dagster_home))
        prepare_dagster_home(settings)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(as_of_partitions.name, [AS_OF])


@pytest.fixture(scope="module")
def dagit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make dev`'s command on a free port, in a temporary home on a synthetic export."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (make test installs it: apt-get install -y chromium)"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("ui")
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    env = {
        **os.environ,
        "BOOKING_PLATFORM_HOME": str(root / "home"),
        "BOOKINGS_SOURCE": str(source),
        "BOOKINGS_AS_OF": AS_OF,
    }
    _add_as_of_partition(env)
    env.pop("DAGSTER_HOME", None)  # dev.py puts the instance under the home
    with running_dagit(env, root / "dagit.log", SERVER_START_SECONDS) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator["playwright_api.Browser"]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: "playwright_api.Browser") -> Iterator["playwright_api.Page"]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    # Dagit's first-visit "Join the Dagster community" dialog, marked as seen before any page
    # loads: dismissed only when it showed, it could close a menu the test had just opened
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    page = context.new_page()
    # should another Dagit version name the flag otherwise, the dialog is still skipped
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )
    yield page
    context.close()


def _shot(page: "playwright_api.Page", name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let dialogs finish fading in
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open(page: "playwright_api.Page", url: str, ready_text: str) -> None:
    page.goto(url)
    page.get_by_text(ready_text).first.wait_for()


def _upstream(page: "playwright_api.Page", dagit: str, asset: str) -> set[str]:
    """The upstream assets listed in the Lineage section of an asset's overview page."""
    _open(page, f"{dagit}/assets/{asset}", "Upstream assets")
    section = (
        page.locator("div")
        .filter(has=page.get_by_text("Upstream assets", exact=True))
        .filter(has=page.get_by_text("Downstream assets", exact=True))
        .last
    )

    def read() -> tuple[set[str], set[str]]:
        text = section.inner_text()
        middle = text.index("Downstream assets")
        up, down = text[text.index("Upstream assets") : middle], text[middle:]
        return (
            {line.strip() for line in up.splitlines()} & ALL_NAMES,
            {line.strip() for line in down.splitlines()} & ALL_NAMES,
        )

    # the lists arrive after the headings: read until they are there and stop changing
    previous, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        current = read()
        if current == previous and (current[0] or current[1]):
            break
        previous = current
        page.wait_for_timeout(1000)
    return current[0]


def _markdown(page: "playwright_api.Page", key: str) -> "playwright_api.Locator":
    """Open a markdown metadata entry (Dagit shows it in a dialog) and return the dialog."""
    row = page.locator("tr", has=page.get_by_text(key, exact=True))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    return dialog


def _picture_shown(dialog: "playwright_api.Locator") -> bool:
    picture = dialog.locator("img[src^='data:image/png;base64,']").first
    picture.wait_for()
    width = picture.evaluate("image => image.complete ? image.naturalWidth : 0")
    return width > 100


def _drawn(page: "playwright_api.Page", asset: str) -> bool:
    return page.locator("foreignObject", has_text=re.compile(f"^{asset}$")).count() >= 1


def test_a_person_sees_the_graph_materializes_all_and_reads_the_results(
    dagit: str, page: "playwright_api.Page"
) -> None:
    # the asset graph opens on the assets themselves: one group, so no collapsed group boxes
    # to expand (Dagit draws several groups each folded); zoom out until all are drawn
    _open(page, f"{dagit}/asset-groups", "Materialize all")
    zoom_out = page.locator("[aria-label=zoom_out]").first
    for _ in range(10):
        if all(_drawn(page, asset) for asset in SEVEN_ASSETS | {"eda_report"}):
            break
        zoom_out.click()
        page.wait_for_timeout(300)
    assert not page.locator("foreignObject [aria-label=unfold_more]").count()  # nothing folded
    for asset in SEVEN_ASSETS | {"eda_report"}:
        assert _drawn(page, asset), asset
    for _ in range(2):
        page.locator("[aria-label=zoom_in]").first.click()
    _shot(page, "1_asset_graph")
    # lineage, as each asset's page lists it
    assert {asset: _upstream(page, dagit, asset) for asset in UPSTREAM} == UPSTREAM

    # Materialize all: the graph is partitioned, so Dagit asks which as-of dates; pick the one
    _open(page, f"{dagit}/asset-groups", "Materialize all")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem", name=AS_OF).click()  # its name repeats the key
    dialog.get_by_text("Launch runs to materialize").click()  # closes the partition menu
    playwright_api.expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    _shot(page, "2_launch_dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()
    # then follow the run to its end
    page.get_by_role("link", name="View", exact=True).click()  # in the "Launched run" toast
    playwright_api.expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+"))
    _shot(page, "3_run_started")
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    status.wait_for(timeout=RUN_SECONDS * 1000)
    _shot(page, "4_run_finished")
    assert status.inner_text() == "Success"
    playwright_api.expect(page.get_by_text(f"partition: {AS_OF}").first).to_be_visible()

    # batch_predictions: rows written, the riskiest bookings with their reasons
    _open(page, f"{dagit}/assets/batch_predictions", "Metadata")
    row_count = page.locator("tr", has=page.get_by_text("rows", exact=True)).first
    assert int(row_count.locator("td").last.inner_text().replace(",", "")) > 100
    dialog = _markdown(page, "top_risk")
    assert "reason_1" in dialog.inner_text()
    assert re.search(r"(raises|lowers) risk \([+-]\d", dialog.inner_text())
    _shot(page, "5_batch_predictions_top_risk")
    dialog.get_by_role("button", name="Close").click()

    # eda_report: numbers and pictures
    _open(page, f"{dagit}/assets/eda_report", "Metadata")
    for key in ("duplicate_rows", "history_bookings", "plot_by_hotel", "plot_duplicates"):
        assert page.get_by_text(key, exact=True).count() >= 1
    dialog = _markdown(page, "plot_seasonality")
    assert _picture_shown(dialog)
    _shot(page, "6_eda_report_seasonality")
    dialog.get_by_role("button", name="Close").click()

    # candidate_model: the calibration picture logged with it
    _open(page, f"{dagit}/assets/candidate_model", "Metadata")
    dialog = _markdown(page, "plot_calibration")
    assert _picture_shown(dialog)
    _shot(page, "7_candidate_calibration")
    print(f"screenshots in {ARTIFACTS}")
