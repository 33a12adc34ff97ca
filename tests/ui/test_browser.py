"""A real headless Chromium (Debian's, driven by Playwright) opens the dashboard and a report.

Checks what a person would: the runs are listed, the plots are drawn (plotly's
``.js-plotly-plot`` elements holding traces), and a point logged while the page is open shows up
without a reload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runcast
from runcast.errors import RuncastWarning
from runcast.report import build_report, write_html
from runcast.ui import start, stop

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # nothing may be fetched from the internet: fail any request that is not local
    outside: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "file://", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    pg.route("**/*", guard)
    yield pg
    pg.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert outside == [], f"the page tried to reach the internet: {outside}"


def n_points(page: Any, run_name: str) -> int:
    """How many raw points the dashboard's plot holds for ``run_name``."""
    return int(
        page.evaluate(
            """(name) => {
                const div = document.getElementById('curves');
                const t = (div.data || []).find((t) => t.name === name + ' (raw)');
                return t ? t.x.length : -1;
            }""",
            run_name,
        )
    )


def test_dashboard_lists_runs_draws_and_updates_live(page: Any, live: Any) -> None:
    server = start(live.db, port=0)
    try:
        page.goto(server.url)
        # both runs listed, with their status
        page.wait_for_selector(f"tr[data-run='{live.live_id}']")
        rows = page.locator("#runs tbody tr")
        assert rows.count() == 2
        assert "running" in page.locator(f"tr[data-run='{live.live_id}']").inner_text()
        assert "finished" in page.locator(f"tr[data-run='{live.done_id}']").inner_text()
        # the running run is plotted first: plotly drew its traces with all 100 points
        page.wait_for_selector("#curves.js-plotly-plot .scatterlayer .trace")
        page.wait_for_function("() => document.getElementById('curves').data.length >= 5")
        page.wait_for_function("() => document.getElementById('curves').data[0].x.length === 100")
        # the forecast final value appears in the run list (median and 80% interval)
        page.wait_for_function(
            f"() => /\\[.*\\] at step 299/.test("
            f"document.querySelector(\"tr[data-run='{live.live_id}'] .forecast\").textContent)",
            timeout=60_000,
        )
        # a point logged while the page is open appears without a reload
        last = live.log(3)
        page.wait_for_function(
            f"() => document.getElementById('curves').data[0].x.slice(-1)[0] === {last}",
            timeout=15_000,
        )
        assert n_points(page, "live") == 103
        # the forecast band is drawn (a filled polygon ending at the planned last step)
        page.wait_for_function(
            "() => document.getElementById('curves').data[4].x.slice(-1)[0] === 299",
            timeout=60_000,
        )
        # the finished run's forecast says the step it was made from (a fifth of the way)
        page.wait_for_function(
            f"() => /at step 299, made at step 60/.test("
            f"document.querySelector(\"tr[data-run='{live.done_id}'] .forecast\").textContent)",
            timeout=60_000,
        )
        # comparison: tick the finished run; its traces join the same plot
        page.locator(f"tr[data-run='{live.done_id}'] input").check()
        page.wait_for_function(
            "() => document.getElementById('curves').data.length === 10", timeout=15_000
        )
        page.wait_for_function(
            "() => document.getElementById('curves').data[5].x.length === 300", timeout=15_000
        )
        assert n_points(page, "done") == 300
    finally:
        stop(server)


def test_report_opens_offline_with_plots(page: Any, live: Any, tmp_path: Path) -> None:
    live.close()  # finish the run so the report shows a judged forecast
    with runcast.open_store(live.db) as store:
        rep = build_report(store, [live.done_id, live.live_id], whatif=False)
    path = write_html(rep, tmp_path / "report.html")
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot")
    # comparison + one figure per run, each with traces drawn as SVG paths
    assert page.locator(".js-plotly-plot").count() == 3
    n_traces = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map((d) => d.data.length)"
    )
    assert all(n >= 4 for n in n_traces), n_traces
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 12
    assert "done" in page.locator("table.summary").inner_text()


HOSTILE = '<img src=x onerror="window.pwned=1">a<b>c & [/x] 名前'


def test_dashboard_shows_hostile_names_as_text_and_missing_points_as_gaps(
    page: Any, db_path: Path
) -> None:
    run = runcast.init(project="<p>", name=HOSTILE, db=str(db_path))
    for s in range(20):
        run.log({"loss": float("nan") if s == 10 else 3.0 - 0.1 * s}, step=s)
    with pytest.warns(RuncastWarning, match="recorded as missing"):
        run.finish()
    server = start(db_path, port=0)
    try:
        page.goto(server.url)
        page.wait_for_selector(f"tr[data-run='{run.id}']")
        page.wait_for_function("() => document.getElementById('curves').data.length >= 5")
        page.wait_for_function("() => document.getElementById('curves').data[0].x.length === 20")
        # the name is text in the run list: no <img> was made, its onerror never ran
        assert page.locator("#runs img").count() == 0
        assert page.evaluate("() => window.pwned") is None
        assert HOSTILE in page.locator(f"tr[data-run='{run.id}']").inner_text()
        # plotly draws the legend from its own small HTML: unescaped, "a<b>c" was drawn "ac"
        legend = page.eval_on_selector_all(".legendtext", "els => els.map((e) => e.textContent)")
        assert f"{HOSTILE} (raw)" in legend, legend
        # the missing point at step 10 is a gap in the raw line (null), not a line across it
        raw_y = page.evaluate("() => document.getElementById('curves').data[0].y")
        assert raw_y[10] is None and raw_y[9] == pytest.approx(2.1)
    finally:
        stop(server)


def test_a_run_without_a_forecast_says_why_on_the_page(page: Any, db_path: Path) -> None:
    # the reason was only in a tooltip ("—" on the page): a user saw no forecast and no reason
    run = runcast.init(project="ui", name="bare", db=str(db_path))
    for s in range(30):
        run.log({"loss": 3.0 / (1.0 + s) ** 0.5}, step=s)
    run.flush()
    server = start(db_path, port=0)
    try:
        page.goto(server.url)
        cell = f"tr[data-run='{run.id}'] .forecast"
        page.wait_for_function(
            f'() => /planned length is unknown/.test(document.querySelector("{cell}")'
            "?.textContent ?? '')",
            timeout=60_000,
        )
        page.locator(f"tr[data-run='{run.id}'] input").check()
        page.wait_for_function(
            "() => /bare: No forecast/.test(document.getElementById('notes').textContent)",
            timeout=30_000,
        )
    finally:
        stop(server)
        run.finish()


def test_run_list_pages_with_previous_and_next(page: Any, db_path: Path) -> None:
    # the list asks the server for one page at a time: 7 runs at 3 a page are 3 pages
    with runcast.open_store(db_path) as store:
        ids = [
            store.create_run("ui", f"r{i}", status="finished", start_time=1e9 + i, end_time=2e9).id
            for i in range(7)
        ]
    newest = ids[::-1]
    server = start(db_path, port=0)

    def shown() -> list[str]:
        rows = page.locator("#runs tbody tr")
        return [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]

    def wait_for(first: str, n: int) -> None:
        page.wait_for_function(
            f"() => {{ const r = document.querySelectorAll('#runs tbody tr'); return r.length "
            f"=== {n} && r[0].dataset.run === '{first}'; }}",
            timeout=15_000,
        )

    try:
        page.goto(server.url + "?per_page=3")
        wait_for(newest[0], 3)
        assert shown() == newest[:3]
        assert page.locator("#page-info").inner_text() == "runs 1–3 of 7 (newest first)"
        assert page.locator("#newer").is_disabled() and page.locator("#older").is_enabled()
        page.locator("#older").click()
        wait_for(newest[3], 3)
        assert shown() == newest[3:6]
        assert page.locator("#page-info").inner_text() == "runs 4–6 of 7 (newest first)"
        page.locator("#older").click()
        wait_for(newest[6], 1)
        assert page.locator("#older").is_disabled() and page.locator("#newer").is_enabled()
        # the page stays put across the list's own refresh (every 2 s; the status line says when)
        before = page.locator("#status").inner_text()
        page.wait_for_function(
            "(t) => document.getElementById('status').textContent !== t",
            arg=before,
            timeout=15_000,
        )
        assert shown() == newest[6:]
        page.locator("#newer").click()
        wait_for(newest[3], 3)
        # a filter starts again from its newest match; one page of matches needs no pager
        page.locator("#filter").fill("r1")
        wait_for(ids[1], 1)
        assert page.locator("#pager").is_hidden()
        page.locator("#filter").fill("")
        wait_for(newest[0], 3)
        assert page.locator("#pager").is_visible()
    finally:
        stop(server)
