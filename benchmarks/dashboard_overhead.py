"""Benchmark: how much slower a fit runs while the dashboard watches it.

The HH tutorial fit (5 traces x 1497 steps, n_samples=100, nevergrad DE, MSE,
storage in SQLite) timed in fresh processes, alternately:

* ``stored``: with storage, no dashboard;
* ``watched``: with storage and ``fit(dashboard=True)`` (the server in its own
  process), and the study's page open in a headless Chromium that polls it
  and redraws every plot after each round, as a user's browser would
  (``--client http`` polls the same JSON endpoints without a browser).

Both write the same rounds, recordings and best traces; the difference is the
server reading the database (WAL: readers never block the writer), the
browser drawing, and their CPU time. Reported: the median wall time of each,
and their ratio.

    .venv/bin/python benchmarks/dashboard_overhead.py [--rounds 40] [--repeats 3]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client", choices=("browser", "http"), default="browser")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def fit(db: str, watched: bool, n_rounds: int, n_samples: int) -> dict:
    """One fit in this process; prints the dashboard's address first when watched."""
    from brian2 import amp, mV, ms, msiemens, nsiemens, psiemens, usiemens

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset

    shared = ROOT.parent / "shared" / "data"
    dataset = load_hh_dataset(str(shared) if shared.exists() else None)
    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", feedback=None, seed=1,
                               storage=f"sqlite:///{db}", study="hh")
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": dataset.inputs * amp},
                               output={"v": dataset.outputs * mV}, dt=0.01 * ms,
                               n_samples=n_samples, method="exponential_euler",
                               param_init={"v": -65 * mV}, namespace=hh_constants())
    bounds = dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                  g_kd=[200 * nsiemens, 200 * usiemens])
    if watched:  # the server starts (and the page opens) before the timed rounds
        fitter.fit(n_rounds=1, dashboard=True, **bounds)
        print(f"URL {fitter.dashboard.url}", flush=True)
        sys.stdin.readline()  # the page is open
    else:
        fitter.fit(n_rounds=1, **bounds)
    started, cpu = time.perf_counter(), time.process_time()
    server_cpu = _cpu_seconds(fitter.dashboard.process.pid) if watched else 0.0
    fitter.fit(n_rounds=n_rounds)
    result = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
              "error": float(fitter.best_error)}
    if watched:
        result["server_cpu"] = _cpu_seconds(fitter.dashboard.process.pid) - server_cpu
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    import os
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Page:
    """The study's page open while the fit runs: a real browser, or an HTTP poller doing
    what the page does (status every 0.5 s; study, pairs when a round arrives)."""

    def __init__(self, url: str, client: str):
        self.url, self.client = url, client
        self.stop_event = threading.Event()
        self.refreshes = 0
        if client == "browser":
            from playwright.sync_api import sync_playwright
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run"])
            self.page = self.browser.new_page(viewport={"width": 1400, "height": 900})
            self.page.goto(url)
            deadline = time.time() + 60
            while not self.page.evaluate("() => document.body.dataset.ready === '1'") \
                    and time.time() < deadline:
                time.sleep(0.05)
        else:
            self.thread = threading.Thread(target=self.poll, daemon=True)
            self.thread.start()

    def poll(self):
        status_url = self.url.replace("/study?", "/api/status?")
        rounds = None
        while not self.stop_event.wait(0.5):
            status = json.loads(urllib.request.urlopen(status_url).read())
            if status["rounds"] != rounds:
                rounds = status["rounds"]
                urllib.request.urlopen(self.url.replace("/study?", "/api/study?")).read()
                urllib.request.urlopen(self.url.replace("/study?", "/api/pairs?")).read()
                self.refreshes += 1

    def close(self) -> int:
        if self.client == "browser":
            self.refreshes = int(self.page.evaluate("() => Number(document.body.dataset"
                                                    ".rounds || 0)"))
            self.browser.close()
            self.playwright.stop()
        else:
            self.stop_event.set()
            self.thread.join()
        return self.refreshes


def descendants_cpu(root: int) -> float:
    """CPU seconds (user + system) of the processes below ``root`` still running: the
    browser that Playwright started for the page."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            parents[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        for child, (parent, ticks) in parents.items():
            if parent == pid:
                total += ticks
                frontier.append(child)
    return total / os.sysconf("SC_CLK_TCK")


def run_one(watched: bool, args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--worker", "watched" if watched else "stored",
                   "--db", str(Path(folder) / "fit.db"), "--rounds", str(args.rounds),
                   "--samples", str(args.samples)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
        page = None
        if watched:
            line = process.stdout.readline()
            while not line.startswith("URL "):
                line = process.stdout.readline()
            page = Page(line.split()[1], args.client)
            browser_cpu = descendants_cpu(os.getpid()) - _own_children_cpu(process.pid)
            process.stdin.write("\n")
            process.stdin.flush()
        result = json.loads(process.stdout.readlines()[-1])
        if page is not None:
            result["browser_cpu"] = descendants_cpu(os.getpid()) - \
                _own_children_cpu(process.pid) - browser_cpu if args.client == "browser" \
                else 0.0
        process.wait()
        if page is not None:
            result["page_rounds"] = page.close()
        return result


def _own_children_cpu(worker: int) -> float:
    """CPU seconds of the fit's process and its dashboard (counted apart)."""
    return descendants_cpu(worker) + _cpu_seconds(worker)


def main():
    args = parse_args()
    if args.worker:
        print(json.dumps(fit(args.db, args.worker == "watched", args.rounds, args.samples)))
        return
    run_one(False, args)  # warm-up: Brian's Cython cache
    results = {"stored": [], "watched": []}
    for repeat in range(args.repeats):
        for watched in (False, True):
            result = run_one(watched, args)
            results["watched" if watched else "stored"].append(result)
            print(f"repeat {repeat + 1}: {'watched' if watched else 'stored '} "
                  f"{result['seconds']:.2f} s (fit CPU {result['cpu']:.2f} s)  error "
                  f"{result['error']:.3g}"
                  + (f"  server CPU {result['server_cpu']:.2f} s, browser CPU "
                     f"{result['browser_cpu']:.2f} s, page showed round "
                     f"{result['page_rounds']}" if watched else ""), flush=True)

    def median(kind, key):
        return statistics.median(r[key] for r in results[kind])

    print(f"\n{args.rounds} rounds of {args.samples} HH simulations, median of "
          f"{args.repeats} (client: {args.client}; load average "
          f"{open('/proc/loadavg').read().split()[0]} on {os.cpu_count()} cores)")
    print(f"{'':<24}{'wall s':>8}{'fit CPU s':>11}{'server CPU s':>14}{'browser CPU s':>15}")
    for kind, label in (("stored", "stored, not watched"), ("watched", "stored and watched")):
        server = median(kind, "server_cpu") if kind == "watched" else 0.0
        browser = median(kind, "browser_cpu") if kind == "watched" else 0.0
        print(f"{label:<24}{median(kind, 'seconds'):8.2f}{median(kind, 'cpu'):11.2f}"
              f"{server:14.2f}{browser:15.2f}")
    print(f"{'ratio watched/stored':<24}{median('watched', 'seconds') / median('stored', 'seconds'):8.3f}"
          f"{median('watched', 'cpu') / median('stored', 'cpu'):11.3f}")


if __name__ == "__main__":
    main()
