"""The dashboard as a user sees it: the real server, a real headless Chromium.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it)
and Playwright for Python (the ``test`` extra), which drives the system browser
through its executable path. Without a browser these tests are skipped with the
reason, except in CI (``CI=true``), where a missing browser is a failure.

Screenshots of every page are written to the test's temporary folder and copied
to ``output/screenshots/`` (or ``$MODELFIT_SCREENSHOTS``); their paths are printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from dashboard_studies import make_hostile, write_study
from storage_helpers import stored_rounds

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("MODELFIT_SCREENSHOTS", ROOT / "output" / "screenshots"))
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("MODELFIT_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the dashboard's browser tests: .ci/run installs "
                    f"it with apt-get)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("no browser tests: Playwright for Python is not installed "
                    "(pip install playwright; it is in the test extra)")
    path = chromium_path()
    if path is None:
        unavailable("no browser tests: no Chromium found (apt-get install chromium, or set "
                    "MODELFIT_CHROMIUM to a Chromium executable)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda message: page.problems.append(f"console: {message.text}")
            if message.type == "error" else None)
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"),
                                      dialog.dismiss()))
    yield page
    context.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")
    from modelfit_plugins.dashboard.app import create_app
    from modelfit_plugins.dashboard.server import ServerThread, allowed_hosts
    db = tmp_path_factory.mktemp("browser") / "fit.db"
    write_study(db, "pymoo DE", 40, 30, names=("gl", "C", "gK"))
    write_study(db, "nevergrad", 40, 30, seed=3, names=("gl", "C", "gK"),
                optimizer="NevergradOptimizer(method='DE')")
    write_study(db, "pareto", 25, 20, seed=1, objectives=("v", "rate"), optimizer="NSGA2()")
    running = ServerThread(create_app(str(db), allowed_hosts=allowed_hosts("127.0.0.1")))
    yield running.url
    running.stop()


def screenshot(page, tmp_path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    print(f"screenshot: {SCREENSHOTS / path.name} (test artefact {path})")
    return path


def wait_until(page, condition: str, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``() => condition`` in the page (Playwright's wait_for_function evaluates
    strings with eval, which the pages' Content-Security-Policy forbids)."""
    deadline = time.time() + timeout
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.time() < deadline, f"not within {timeout} s: {condition}"
        time.sleep(interval)


def open_ready(page, url: str) -> None:
    page.goto(url)
    wait_until(page, "document.body.dataset.ready === '1'")


def drawn_points(page, selector: str) -> int:
    return page.locator(f"{selector} .scatterlayer .point").count()


def test_the_pages_load_and_draw_their_plots(page, server, tmp_path):
    open_ready(page, server + "?all=1")
    rows = page.locator("#studies tbody tr")
    assert rows.count() == 3
    assert page.locator("#studies").inner_text().count("finished") == 3
    screenshot(page, tmp_path, "studies")

    open_ready(page, server + "study?" + urllib.parse.urlencode({"name": "pymoo DE"}))
    assert page.locator("#n-rounds").inner_text() == "40"
    assert "finished" in page.locator("#state").inner_text()
    for plot in ("#plot-rounds", "#plot-traces", "#plot-parameters", "#plot-pairs"):
        assert page.locator(f"{plot} .main-svg").count() >= 1, plot
    assert drawn_points(page, "#plot-parameters") > 50
    assert drawn_points(page, "#plot-pairs") > 50
    assert page.locator("#plot-traces .scatterlayer .trace").count() >= 6  # 3 x (rec + fit)
    assert page.locator("#best-table tr").count() == 4
    assert "SyntheticOptimizer(method='DE')" in page.locator(".description").inner_text()
    screenshot(page, tmp_path, "study")

    open_ready(page, server + "study?name=pareto")
    assert drawn_points(page, "#plot-pareto") > 10
    assert page.locator("#front-members tr").count() >= 2
    screenshot(page, tmp_path, "study_pareto")

    open_ready(page, server + "compare?" + urllib.parse.urlencode({"a": "pymoo DE",
                                                                   "b": "nevergrad"}))
    assert page.locator("#plot-compare-rounds .scatterlayer .trace").count() == 2
    assert page.locator(".side [data-plot=traces] .main-svg").count() >= 2
    screenshot(page, tmp_path, "compare")
    assert not page.problems, page.problems


def test_a_click_on_a_point_shows_its_parameters_and_traces(page, server, tmp_path):
    open_ready(page, server + "study?" + urllib.parse.urlencode({"name": "pymoo DE"}))
    lines_before = page.locator("#plot-traces .scatterlayer .trace").count()
    # where plotly drew the lowest diamond (a point whose traces are stored) of the
    # first parameter's plot; the mouse clicks there
    page.locator("#plot-parameters").scroll_into_view_if_needed()
    x, y, point = page.evaluate("""() => {
        const plot = document.getElementById('plot-parameters');
        const trace = plot.data.find((t) => t.marker.symbol === 'diamond' && t.xaxis === 'x');
        let best = 0;
        trace.y.forEach((y, k) => { if (y < trace.y[best]) best = k; });
        const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
        const box = plot.getBoundingClientRect();
        return [box.left + xa._offset + xa.c2p(trace.x[best]),
                box.top + ya._offset + ya.c2p(trace.y[best]), trace.customdata[best]];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    wait_until(page, "document.getElementById('clicked').dataset.point !== undefined", 10)
    points = [None, point]
    assert page.locator("#clicked").inner_text().startswith(
        f"Clicked: round {points[1][0]}, sample {points[1][1]}")
    assert "pS" in page.locator("#clicked").inner_text() or "nS" in \
        page.locator("#clicked").inner_text()
    assert page.locator("#plot-traces .scatterlayer .trace").count() > lines_before
    screenshot(page, tmp_path, "study_clicked_point")
    assert not page.problems, page.problems


WORKERS = ("tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000", "tcp://10.0.0.3:4000")


def test_the_workers_panel_draws_for_a_study_with_workers_only(page, tmp_path):
    from modelfit_plugins.dashboard.app import create_app
    from modelfit_plugins.dashboard.server import ServerThread, allowed_hosts
    db = tmp_path / "workers.db"
    write_study(db, "dask", 15, 30, workers=WORKERS)
    write_study(db, "cluster", 15, 40, seed=2,
                workers=tuple(f"tcp://10.0.1.{k}:4000" for k in range(20)))
    write_study(db, "runtime", 15, 30)
    running = ServerThread(create_app(str(db), allowed_hosts=allowed_hosts("127.0.0.1")))
    try:
        open_ready(page, running.url + "study?name=dask")
        assert page.locator("#workers").is_visible()
        assert page.locator("#plot-workers .scatterlayer .trace").count() == 3  # a line each
        summary = page.locator("#workers-summary").inner_text()
        assert summary.startswith("3 workers, 90 chunks in 15 rounds; busy ") and \
            all(name in summary for name in WORKERS)
        assert page.locator("#workers-table tr").count() == 4
        # hovering a point names its worker
        page.locator("#plot-workers").scroll_into_view_if_needed()
        x, y = page.evaluate("""() => {
            const plot = document.getElementById('plot-workers');
            const trace = plot.data[1], xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
            const box = plot.getBoundingClientRect();
            return [box.left + xa._offset + xa.c2p(trace.x[7]),
                    box.top + ya._offset + ya.c2p(trace.y[7])];
        }""")
        page.mouse.move(x, y)
        wait_until(page, "document.querySelector('#plot-workers .hoverlayer .hovertext')", 10)
        hover = page.locator("#plot-workers .hoverlayer").text_content()
        assert WORKERS[1] in hover and "round 7" in hover, hover
        screenshot(page, tmp_path, "study_workers")

        open_ready(page, running.url + "study?name=cluster")  # many workers: a heatmap
        assert page.evaluate("document.getElementById('plot-workers').data[0].type") == \
            "heatmap"
        assert page.locator("#plot-workers .heatmaplayer").count() == 1
        assert page.locator("#workers-table tr").count() == 21
        assert "20 workers" in page.locator("#workers-summary").inner_text()
        screenshot(page, tmp_path, "study_workers_heatmap")

        open_ready(page, running.url + "study?name=runtime")  # a single process: no panel
        assert page.locator("#workers").is_hidden()
        assert page.locator("#plot-workers .main-svg").count() == 0
    finally:
        running.stop()
    assert not page.problems, page.problems


def test_hostile_text_shows_as_text_and_runs_nothing(page, tmp_path):
    from modelfit_plugins.dashboard.app import create_app
    from modelfit_plugins.dashboard.server import ServerThread, allowed_hosts
    db = tmp_path / "hostile.db"
    write_study(db, "h", 10, 10, workers=WORKERS[:2])
    make_hostile(db)
    running = ServerThread(create_app(str(db), allowed_hosts=allowed_hosts("127.0.0.1")))
    try:
        open_ready(page, running.url + "?all=1")
        link = page.locator("#studies a").first
        assert "<script>" in link.inner_text()
        link.click()
        wait_until(page, "document.body.dataset.ready === '1'")
        assert "<script>window.__pwned" in page.locator("h1").inner_text()
        assert "<img src=x" in page.locator("#best-table").inner_text()
        assert "stored rows could not be read" in page.locator("#unreadable").inner_text()
        assert "<script>window.__pwned" in page.locator("#workers-table").inner_text()
        assert "1 stored rows could not be read" in page.locator("#workers-note").inner_text()
        assert page.evaluate("window.__pwned") is None
        screenshot(page, tmp_path, "hostile_study")
    finally:
        running.stop()
    assert not [p for p in page.problems if "dialog" in p or "page error" in p], page.problems


def test_a_page_open_during_a_fit_shows_each_new_round_within_2_s(page, tmp_path):
    from modelfit_plugins.dashboard.app import create_app
    from modelfit_plugins.dashboard.server import ServerThread, allowed_hosts
    db = tmp_path / "live.db"
    n_rounds = 10
    fit = subprocess.Popen([sys.executable, str(ROOT / "tests" / "storage_worker.py"), str(db),
                            "live", str(n_rounds), "--sleep", "1.2", "--n-samples", "8"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = None
    try:
        deadline = time.time() + 240
        while stored_rounds(db, "live") < 1:
            assert fit.poll() is None, fit.stderr.read()[-3000:]
            assert time.time() < deadline
            time.sleep(0.05)
        running = ServerThread(create_app(str(db), allowed_hosts=allowed_hosts("127.0.0.1")))
        open_ready(page, running.url + "study?name=live")
        assert "running" in page.locator("#state").inner_text()
        delays, seen = [], stored_rounds(db, "live")
        while seen < n_rounds:
            count = stored_rounds(db, "live")
            if count > seen:
                stored_at = time.time()
                # the status line, and the error-per-round plot (its best-so-far line)
                wait_until(page, f"Number(document.getElementById('n-rounds').textContent)"
                                 f" >= {count} && document.getElementById('plot-rounds')"
                                 f".data.at(-1).x.length >= {count}", timeout=5,
                           interval=0.02)
                delays.append(time.time() - stored_at)
                seen = count
            assert fit.poll() is None or stored_rounds(db, "live") == n_rounds, \
                fit.stderr.read()[-3000:]
            time.sleep(0.02)
        assert len(delays) >= 3 and max(delays) <= 2.0, delays
        wait_until(page, "document.getElementById('state').textContent.includes('finished')",
                   timeout=10)
        assert page.locator("#plot-rounds .scatterlayer .trace").count() >= 4
        print(f"new rounds shown after {max(delays):.2f} s at most "
              f"(median {sorted(delays)[len(delays) // 2]:.2f} s)")
        screenshot(page, tmp_path, "study_live_finished")
    finally:
        fit.kill()
        fit.wait()
        if running is not None:
            running.stop()
    assert not page.problems, page.problems
