"""The dashboard's server over real HTTP (uvicorn on a free port, urllib as the client):
pages and JSON, thinning, safety against hostile databases, the command line."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette", reason="the dashboard extra: pip install modelfit-brian2[dashboard]")

from dashboard_studies import make_hostile, write_study  # noqa: E402
from modelfit_plugins.dashboard import plot_data  # noqa: E402
from modelfit_plugins.dashboard.app import create_app  # noqa: E402
from modelfit_plugins.dashboard.server import ServerThread, allowed_hosts  # noqa: E402

HOSTILE_NAME = ("<script>window.__pwned = 1; alert('pwned')</script>"
                "<img src=x onerror=\"window.__pwned=1\">")


def get(url: str, host: str | None = None):
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str):
    status, headers, body = get(url)
    assert headers["content-type"].startswith("application/json")
    # strict JSON: NaN and Infinity would break the page's JSON.parse
    return status, json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "fit.db"
    write_study(db, "de", 40, 30, names=("gl", "C", "gK"))
    write_study(db, "mo", 20, 20, seed=1, objectives=("v", "rate"), optimizer="NSGA2()")
    hostile = folder / "hostile.db"
    write_study(hostile, "h", 10, 10, workers=("tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"))
    make_hostile(hostile)
    return db, hostile


@pytest.fixture
def serve():
    started = []

    def start(db, **options):
        server = ServerThread(create_app(str(db), allowed_hosts=allowed_hosts("127.0.0.1"),
                                         **options))
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


def test_every_page_and_endpoint_answers(studies, serve):
    db, _ = studies
    url = serve(db)
    for path in ("", "?all=1", "study?name=de", "study?name=mo", "compare?a=de&b=mo"):
        status, headers, body = get(url + path)
        assert status == 200, (path, body[:300])
        assert headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert b"<script>" not in body  # scripts come from files, never inline
    status, listing = get_json(url + "api/studies")
    assert [s["name"] for s in listing["studies"]] == ["de", "mo"]
    assert listing["studies"][0]["state"] == "finished"
    assert listing["studies"][0]["rounds"] == 40 and listing["studies"][0]["evaluations"] == 1200
    status, study = get_json(url + "api/study?name=de")
    assert status == 200 and study["status"]["rounds"] == 40
    assert len(study["rounds"]["best"]) == 40
    assert study["rounds"]["best"] == sorted(study["rounds"]["best"], reverse=True)
    assert [p["axis"]["name"] for p in study["parameters"]["plots"]] == ["gl", "C", "gK"]
    assert study["parameters"]["plots"][0]["axis"]["title"] == "gl (nS)"
    assert study["traces"][0]["traces"][0]["recorded"] and study["traces_of"]
    assert study["pareto"] is None
    status, pairs = get_json(url + "api/pairs?name=de&p=0,2")
    assert pairs["parameters"] == [0, 2] and len(pairs["pairs"]) == 1
    mo = get_json(url + "api/study?name=mo")[1]
    assert mo["pareto"]["names"] == ["v", "rate"] and mo["pareto"]["n_front"] >= 1
    # a point with stored traces, one without, one that does not exist
    round_, sample = study["traces_of"]
    point = get_json(url + f"api/point?name=de&round={round_}&sample={sample}")[1]
    assert point["traces"] and point["parameters"][0]["name"] == "gl"
    assert point["parameters"][1]["value"].endswith("pF")
    assert get_json(url + "api/point?name=de&round=0&sample=29")[1]["traces"] is None
    assert get_json(url + "api/point?name=de&round=999&sample=0")[0] == 404
    assert get_json(url + "api/point?name=de&round=x&sample=0")[0] == 400
    assert get_json(url + "api/study?name=nope")[0] == 404
    assert get(url + "study?name=nope")[0] == 404
    plotly = re.search(rb'src="(/static/plotly-[^"]+)"', get(url + "study?name=de")[2])
    status, headers, body = get(url + plotly.group(1).decode().lstrip("/"))
    assert status == 200 and b"plotly.js" in body[:300]


def test_a_large_study_is_thinned_on_the_server(tmp_path, serve):
    db = tmp_path / "large.db"
    write_study(db, "big", 300, 100, names=("gl", "C", "gK", "Cm"))
    url = serve(db)
    study = get_json(url + "api/study?name=big")[1]
    grid = plot_data.PARAMETER_GRID[0] * plot_data.PARAMETER_GRID[1]
    for plot in study["parameters"]["plots"]:
        assert 0 < len(plot["x"]) <= grid + plot_data.BEST_KEPT + study["n_traced"]
    assert study["parameters"]["n_usable"] > 25_000
    pairs = get_json(url + "api/pairs?name=big&p=0,1,2,3")[1]
    assert len(pairs["pairs"]) == 6
    for pair in pairs["pairs"]:
        assert len(pair["x"]) <= 20 * 20 + plot_data.BEST_KEPT + study["n_traced"]
    # the best point is always sent
    best_error = min(min(e for e in p["error"] if e is not None)
                     for p in study["parameters"]["plots"])
    assert study["best"]["error"].startswith(f"{best_error:.6g}"[:5])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 100), log=st.booleans())
def test_thinning_keeps_the_lowest_error_of_each_cell_and_what_must_be_kept(n, seed, log):
    rng = np.random.default_rng(seed)
    x = np.exp(rng.normal(size=n)) if log else rng.normal(size=n)
    y = np.exp(rng.normal(size=n))
    score = y.copy()
    keep = [int(k) for k in rng.integers(0, n, 5)]
    chosen = plot_data.thin(x, y, score, (10, 8), log, True, keep)
    assert set(keep) <= set(chosen.tolist()) or len(chosen) == n
    assert int(np.argmin(score)) in chosen
    assert len(chosen) <= max(10 * 8 + len(keep), 10 * 8 // 4)
    # brute force: every point left out has a kept point in its cell with a lower score
    if len(chosen) < n:
        tx, ty = (np.log10(x) if log else x), np.log10(y)
        cells = [np.clip(((v - v.min()) / (v.max() - v.min() or 1) * m).astype(int), 0, m - 1)
                 for v, m in ((tx, 10), (ty, 8))]
        cell = cells[0] * 8 + cells[1]
        for c in np.unique(cell):
            members = np.flatnonzero(cell == c)
            assert members[np.argmin(score[members])] in chosen


def test_a_study_with_workers_sends_how_busy_each_was(tmp_path, serve):
    db = tmp_path / "workers.db"
    names = ("tcp://10.0.0.2:4000", "tcp://10.0.0.1:4000", "worker <b>3</b>")
    write_study(db, "dask", 12, 30, workers=names)
    write_study(db, "runtime", 5, 10)
    url = serve(db)
    study = get_json(url + "api/study?name=dask")[1]
    workers = study["workers"]
    assert [w["name"] for w in workers["workers"]] == sorted(names)
    assert workers["workers"][2]["label"] == "worker &lt;b&gt;3&lt;/b&gt;"
    assert workers["round"] == list(range(12)) and workers["group"] == 1
    assert workers["n_workers"] == 3 and workers["chunks"] == 3 * 12 * 2
    assert all(len(row) == 12 and all(0.6 <= v <= 0.99 for v in row)
               for row in workers["share"])
    for worker, row in zip(workers["workers"], workers["share"]):
        assert worker["busy_share"] == pytest.approx(np.mean(row))  # rounds of equal length
        assert worker["n_samples"] == 12 * 10 and worker["rounds"] == 12
    # the light part (what follows each round of a running fit) carries it too
    assert get_json(url + "api/study?name=dask&parts=light")[1]["workers"] == workers
    assert get_json(url + "api/study?name=runtime")[1]["workers"] is None


def test_worker_activity_is_grouped_and_bounded_for_the_page():
    from modelfit_plugins.dashboard.study_reader import WorkerRows
    rows = WorkerRows()
    for r in range(50):
        for w in range(10):
            if (r, w) != (7, 3):  # worker 3 ran no chunk in round 7
                rows.rounds.append(r)
                rows.workers.append(f"w{w}")
                rows.busy_s.append(0.1 * (w + 1) * (2.0 if w == 9 else 1.0))
                rows.n_samples.append(3)
                rows.chunks.append(1)
    times = {r: (0.0, 1.0) for r in range(50)}
    times[49] = (0.0, None)  # a round whose duration cannot be read
    panel = plot_data.workers_plot(rows, times, max_groups=10, max_workers=4)
    assert panel["group"] == 5 and panel["round"] == [4, 9, 14, 19, 24, 29, 34, 39, 44, 49]
    assert panel["n_workers"] == 10 and panel["n_rounds"] == 50 and panel["chunks"] == 499
    # the busiest four, in the order of their names
    assert [w["name"] for w in panel["workers"]] == ["w6", "w7", "w8", "w9"]
    assert panel["workers"][3]["busy_share"] == 1.0  # 2 s in a round of 1 s: capped
    assert panel["share"][0] == pytest.approx([0.7] * 10)
    small = plot_data.workers_plot(rows, times, max_groups=10, max_workers=10)
    assert small["share"][3][1] == pytest.approx(0.4 * 4 / 5)  # rounds 5-9, one without it
    assert small["workers"][3]["rounds"] == 49
    assert plot_data.workers_plot(WorkerRows(), times) is None


def test_rounds_are_summarized_by_quantiles_and_grouped_when_too_many():
    from modelfit_plugins.dashboard.study_reader import Evaluations
    evaluations = Evaluations(n_params=1, n_objectives=0)
    rows = [(r, s, f"[{s}]", float(100 - r + s), 0, None) for r in range(50) for s in range(5)]
    rows[3] = (0, 3, "[3]", None, 1, None)  # diverged: left out of the quantiles
    evaluations._extend_row_by_row(rows)
    summary = plot_data.rounds_plot(evaluations, max_groups=10)
    assert summary["group"] == 5 and len(summary["round"]) == 10
    assert summary["min"][0] == 100 - 4 and summary["max"][0] == 100 + 4
    assert summary["best"][-1] == 100 - 49 and summary["diverged"][0] == 1
    assert summary["evaluations"][-1] == 250


def test_a_hostile_database_shows_its_safe_parts_and_runs_nothing(studies, serve):
    _, hostile = studies
    before = sha(hostile)
    url = serve(hostile)
    name = urllib.parse.urlencode({"name": HOSTILE_NAME})
    for path in ("?all=1", f"study?{name}", f"compare?{name.replace('name', 'a')}&"
                                            f"{name.replace('name', 'b')}"):
        status, headers, body = get(url + path)
        assert status == 200, body[:500]
        text = body.decode()
        # user text arrives escaped: no tag from the database is in the page
        assert "<img src=x" not in text and "<script>window" not in text
        assert "&lt;script&gt;window.__pwned" in text or path == "?all=1"
    status, study = get_json(url + f"api/study?{name}")
    assert status == 200
    # text for an error, JSON that does not parse, a list of the wrong length
    assert study["unreadable"] == 3 and study["unreadable_traces"] >= 1
    assert study["names"][0].startswith("&lt;img")  # escaped for plotly's labels
    assert study["parameters"]["plots"][0]["axis"]["title"].startswith("&lt;img")
    # a worker named with markup: the text as it is, and escaped for plotly; a row of
    # garbage left out and counted
    workers = study["workers"]
    assert workers["unreadable"] == 1 and workers["n_workers"] == 3
    named = [w for w in workers["workers"] if w["name"] == HOSTILE_NAME]
    assert len(named) == 1 and named[0]["label"].startswith("&lt;script&gt;")
    listing = get_json(url + "api/studies")[1]["studies"]
    assert listing[0]["name"] == HOSTILE_NAME  # JSON carries the text; the page sets it as text
    assert sha(hostile) == before  # never written


@pytest.mark.parametrize("damage", ["truncated", "not a database", "deleted", "no tables"])
def test_a_broken_database_is_an_error_and_the_server_goes_on(tmp_path, serve, damage):
    db = tmp_path / "fit.db"
    write_study(db, "s", 30, 20)
    url = serve(db)
    assert get(url + "api/study?name=s")[0] == 200
    if damage == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    elif damage == "not a database":
        db.write_bytes(b"hello" * 1000)
    elif damage == "deleted":
        db.unlink()
    else:
        db.unlink()
        import sqlite3
        sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.commit()
    for path in ("api/study?name=s", "api/status?name=s", "api/studies"):
        status, body = get_json(url + path)
        assert status in (404, 503) and body["error"], (path, body)
    status, _, body = get(url + "study?name=s")
    assert status in (404, 503) and b"Cannot show this" in body
    write_study_again = tmp_path / "fit.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{write_study_again}{suffix}").unlink(missing_ok=True)
    write_study(write_study_again, "s", 5, 5)
    assert get(url + "api/studies")[0] == 200  # the same server serves the new file


def test_read_only_files_are_served_and_never_changed(tmp_path, serve):
    db = tmp_path / "fit.db"
    write_study(db, "s", 10, 10)
    db.chmod(0o444)
    before = (sha(db), db.stat().st_mtime_ns)
    url = serve(db)
    for path in ("?all=1", "study?name=s", "api/study?name=s", "api/pairs?name=s"):
        assert get(url + path)[0] == 200
    assert (sha(db), db.stat().st_mtime_ns) == before


def test_requests_for_other_host_names_are_refused_on_loopback(studies, serve):
    db, _ = studies
    url = serve(db)
    assert get(url + "api/studies", host="attacker.example")[0] == 400
    assert get(url + "api/studies", host="localhost")[0] == 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_line_serves_until_stopped_and_names_a_busy_port(studies):
    db, _ = studies
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "modelfit_core", "dashboard",
                                f"sqlite:///{db}", "--port", str(port), "--study", "de"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/study?name=de" in line, process.stderr.read()
        status, _, body = get(f"http://127.0.0.1:{port}/")  # --study: / opens it
        assert status == 200 and b"study-name" in body
        busy = subprocess.run([sys.executable, "-m", "modelfit_core", "dashboard", str(db),
                               "--port", str(port)], capture_output=True, text=True,
                              timeout=60)
        assert busy.returncode == 2 and "--port" in busy.stderr and str(port) in busy.stderr
    finally:
        process.terminate()
        process.wait(timeout=20)
    missing = subprocess.run([sys.executable, "-m", "modelfit_core", "dashboard",
                              str(db.parent / "missing.db")], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "No fit database" in missing.stderr


def test_the_dashboard_is_a_registered_plugin(registry):
    from modelfit_core.contracts.protocols import Dashboard
    cls = registry.lookup("dashboards", "web")
    assert cls.__name__ == "WebDashboard" and isinstance(cls(), Dashboard)
    from modelfit_core.contracts.errors import ArgumentTypeError
    with pytest.raises(ArgumentTypeError, match="port"):
        cls(port=70000)


def test_fit_with_dashboard_serves_the_study_from_another_process(tmp_path, capsys):
    from storage_helpers import BOUNDS, make_fitter
    fitter = make_fitter(tmp_path / "fit.db")
    fitter.fit(n_rounds=2, dashboard=True, **BOUNDS)
    printed = capsys.readouterr().out
    assert f"modelfit dashboard: {fitter.dashboard.url}" in printed
    assert fitter.dashboard.process.pid != os.getpid()
    deadline = time.time() + 30
    status = get_json(fitter.dashboard.url.replace("/study?", "/api/status?"))[1]
    while status.get("rounds") != 2 and time.time() < deadline:
        time.sleep(0.2)
        status = get_json(fitter.dashboard.url.replace("/study?", "/api/status?"))[1]
    assert status["rounds"] == 2 and status["state"] == "finished"
    first = fitter.dashboard
    fitter.fit(n_rounds=1, dashboard=True)
    assert fitter.dashboard is first  # one dashboard per fitter
    first.stop()
    assert not first.running


def test_a_dashboard_registered_by_a_hook_plugin_is_started_by_fit(tmp_path, capsys):
    """fit(dashboard=NAME) finds any plugin of the dashboards kind through the fitter's
    registry, as it finds the built-in web dashboard."""
    from modelfit_core import Pipeline, hookimpl
    from modelfit_core.registry.plugin_registry import Registry
    from storage_helpers import BOUNDS

    started = []

    class Running:
        url = "http://127.0.0.1:1/"
        running = True

        def stop(self):
            self.running = False

    class ListingDashboard:
        """Serves nothing: says what it was asked to serve."""

        def serve(self, storage, study=None):
            started.append(("serve", storage, study))

        def start(self, storage, study=None):
            started.append(("start", storage, study))
            return Running()

    class Provider:
        @hookimpl
        def modelfit_register_dashboards(self):
            return {"listing": ListingDashboard}

    registry = Registry(distributions=["modelfit-brian2"], plugins=[Provider()])
    assert "listing" in registry.names("dashboards") and "web" in registry.names("dashboards")
    from dashboard_studies import passive_fitter
    fitter = passive_fitter(Pipeline.from_names(registry=registry, feedback=None, seed=1,
                                                storage=str(tmp_path / "fit.db"), study="s"))
    fitter.fit(n_rounds=1, dashboard="listing", **BOUNDS)
    assert started == [("start", fitter.storage.url, "s")]
    assert "modelfit dashboard: http://127.0.0.1:1/" in capsys.readouterr().out


def test_modelfit_fit_starts_the_dashboard_of_the_config_file(tmp_path, capsys):
    """[fit] dashboard = { port = 0 } in a configuration file: the fit's pages are served
    while it runs; a wrong value is named with its key before anything is simulated."""
    from config_project import passive_config, write_project
    from modelfit_core.tools import cli
    currents = np.zeros((2, 200))
    currents[0, 30:], currents[1, 30:] = 0.1e-9, 0.3e-9
    t = np.clip(np.arange(200) * 1e-4 - 3e-3, 0, None)
    v_mv = (-70e-3 + currents / 10e-9 * (1 - np.exp(-t / 20e-3))) * 1e3
    config = passive_config(6, 2).replace('feedback = "text"',
                                          'feedback = "text"\ndashboard = { port = 0 }')
    folder = write_project(tmp_path, config, currents, v_mv)
    assert cli.main(["fit", str(folder / "fit.toml")]) == 0
    out = capsys.readouterr().out
    assert "modelfit dashboard: http://127.0.0.1:" in out and "name=passive" in out
    (folder / "fit.toml").write_text(config.replace("{ port = 0 }", '{ port = "x" }'))
    assert cli.main(["fit", str(folder / "fit.toml")]) == 2
    assert "[fit] dashboard" in capsys.readouterr().err
    no_storage = passive_config(6, 2).replace('storage = "sqlite:///fit.db"\n', "").replace(
        'feedback = "text"', 'feedback = "text"\ndashboard = true')
    (folder / "fit.toml").write_text(no_storage)
    assert cli.main(["fit", str(folder / "fit.toml")]) == 2
    assert "storage" in capsys.readouterr().err
