"""Benchmark: the dashboard's pages on a study of 100,000 evaluations.

A synthetic study (1000 rounds x 100 points, 6 parameters, written through
the real FitStore as a fit writes it, with recordings and best traces; and a
second one of 10,000 evaluations for the side-by-side page) served by the real
server (uvicorn in this process); timed:

* the server: each page's HTML and JSON, the first request after the server
  started without reading the studies ("cold": the 10^5 evaluations read and
  parsed then) and later ones ("warm": the studies are in memory, as they are
  once the server has read them at start);
* the browser: headless Chromium from the address to every plot drawn
  (``document.body.dataset.ready``), for each page, warm.

    .venv/bin/python benchmarks/dashboard_pages.py [--rounds 1000] [--samples 100] [--workers 8]

``--workers N``: the large study says what N workers did in each round, as a fit on
dask does (the study page then also draws its Workers panel).

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def fetch(url: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this process (the server's threads) and bytes."""
    started, cpu = time.perf_counter(), time.process_time()
    body = urllib.request.urlopen(url, timeout=120).read()
    return time.perf_counter() - started, time.process_time() - cpu, len(body)


def browser_times(base: str, pages: dict[str, str], repeats: int) -> dict[str, list]:
    """Per page: (wall seconds, CPU seconds of the browser's processes) of each load."""
    import os

    from dashboard_overhead import descendants_cpu
    from playwright.sync_api import sync_playwright
    times = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(base + "?all=1")  # plotly.js cached, as after a user's first visit
        for label, path in pages.items():
            times[label] = []
            for _ in range(repeats):
                started, cpu = time.perf_counter(), descendants_cpu(os.getpid())
                page.goto(base + path)
                while not page.evaluate("() => document.body.dataset.ready === '1'"):
                    time.sleep(0.02)
                times[label].append((time.perf_counter() - started,
                                     descendants_cpu(os.getpid()) - cpu))
        browser.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    from dashboard_studies import write_study

    from modelfit_plugins.dashboard.app import create_app
    from modelfit_plugins.dashboard.server import ServerThread

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "fit.db"
        started = time.perf_counter()
        names = ("gl", "C", "gK", "Cm", "gNa", "gL")
        write_study(db, "large", args.rounds, args.samples, names=names,
                    workers=tuple(f"tcp://10.0.0.{k}:4000" for k in range(args.workers)))
        write_study(db, "other", args.rounds // 10, args.samples, seed=2, names=names)
        n = args.rounds * args.samples
        print(f"wrote a study of {n} evaluations ({args.rounds} rounds x {args.samples}, "
              f"{len(names)} parameters, {args.workers} workers) in "
              f"{time.perf_counter() - started:.1f} s; "
              f"database {db.stat().st_size / 1e6:.0f} MB")
        server = ServerThread(create_app(str(db), prewarm=False))
        base = server.url
        large = urllib.parse.urlencode({"name": "large"})
        requests = {"studies page (HTML)": "?all=1",
                    "study page (HTML)": f"study?{large}",
                    "study data (JSON)": f"api/study?{large}",
                    "pairs of 3 (JSON)": f"api/pairs?{large}&p=0,1,2",
                    "status poll (JSON)": f"api/status?{large}",
                    "clicked point (JSON)": f"api/point?{large}&round=500&sample=3",
                    "compare page (HTML)": "compare?a=large&b=other"}
        import os
        print(f"\nserver: seconds per request, wall and the server's CPU (cold = the first "
              f"request, which reads the {n} evaluations; warm = median of {args.repeats}); "
              f"load average {open('/proc/loadavg').read().split()[0]} on {os.cpu_count()} "
              f"cores")
        print(f"{'request':<24}{'cold':>8}{'CPU':>8}{'warm':>8}{'CPU':>8}{'bytes':>10}")
        for label, path in requests.items():
            cold, cold_cpu, size = fetch(base + path)
            warm = [fetch(base + path) for _ in range(args.repeats)]
            print(f"{label:<24}{cold:8.3f}{cold_cpu:8.3f}"
                  f"{statistics.median(w[0] for w in warm):8.3f}"
                  f"{statistics.median(w[1] for w in warm):8.3f}{size:10d}")
        try:
            pages = {"studies": "?all=1", "study": f"study?{large}",
                     "side by side": "compare?a=large&b=other"}
            times = browser_times(base, pages, args.repeats)
            print(f"\nbrowser (headless Chromium): seconds from the address to every plot "
                  f"drawn, and the browser's CPU seconds meanwhile, median of {args.repeats}")
            print(f"{'page':<24}{'wall':>8}{'max':>8}{'CPU':>8}")
            for label, values in times.items():
                print(f"{label:<24}{statistics.median(v[0] for v in values):8.3f}"
                      f"{max(v[0] for v in values):8.3f}"
                      f"{statistics.median(v[1] for v in values):8.3f}")
        except Exception as exc:  # no browser here: the server's figures stand alone
            print(f"\nbrowser: not measured ({type(exc).__name__}: {exc})")
        server.stop()


if __name__ == "__main__":
    main()
