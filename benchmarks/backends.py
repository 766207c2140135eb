"""Benchmark: runtime vs cpp_standalone (1 and 2 threads) vs dask (2 workers), and
recorded vs online error on long traces.

1. The HH fit of the TraceFitter tutorial (seed 002): 5 traces x 1497 steps,
   100 samples per round, DE, MSE; the first round (code generation, Cython
   compilation or C++ build) and the later rounds timed separately.
2. A long-trace fit: a passive membrane (gl, C) on 10 traces at dt = 0.01 ms,
   100 samples per round, with the online error (OnlineTraceFitter). By
   default the traces are 2 s long (2 x 10^8 neuron-steps per round);
   ``--long-seconds 10`` runs the 10 traces x 10 s x 100 samples case (10^9
   neuron-steps per round, a few minutes more), where recorded traces would be
   8 GB per copy (the monitor, its transposed copy, the metric's difference:
   tens of GB). The recorded error is measured on shorter traces only
   (``--recorded-seconds``, 0.5 s: 0.4 GB per copy), next to the online error on
   the same traces.

Each case runs in a fresh process, so that its peak memory is its own: the
Python process's ru_maxrss, and the standalone binary's (read with
/usr/bin/time) or a dask worker's (asked from the worker). Same optimizer seed
everywhere: every backend evaluates the same parameter sets, and the printed
differences of the errors from runtime's show how closely they agree.

    .venv/bin/python benchmarks/backends.py [--rounds 4] [--long-seconds 2]
        [--recorded-seconds 0.5] [--samples 100] [--only hh|long] [--no-dask]

Not a test: it prints figures and asserts nothing. The default run takes
about 2-3 minutes on 2 free cores. OpenMP threads synchronise several times per
time step: when another job holds one of the cores, "standalone x2" becomes
many times slower than "standalone x1" (see docs/backends.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

LONG_DT_S = 1e-5
LONG_TRACES = 10
PASSIVE = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
PASSIVE_TRUE = {"gl": 10e-9, "C": 200e-12}  # time constant 20 ms

BACKENDS = {
    "runtime": ("runtime", {}),
    "standalone x1": ("cpp_standalone", {"threads": 1}),
    "standalone x2": ("cpp_standalone", {"threads": 2}),
    "dask x2": ("dask", {"n_workers": 2}),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="HH fit rounds (first + later)")
    parser.add_argument("--long-rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--long-seconds", type=float, default=2.0)
    parser.add_argument("--recorded-seconds", type=float, default=0.5)
    parser.add_argument("--only", choices=["hh", "long"])
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the cases (each in its own process) ------------------------------------------------------
CHILD_PEAK_FILE = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                               f"modelfit_bench_peak_{os.getpid()}.txt")


DASK = []


def dask_client(n_workers):
    """A LocalCluster whose workers import Brian in their main thread first: Brian's
    import sets a signal handler, which fails in the thread where dask unpickles
    large messages (a spec over 10 MB), as the long traces' spec is."""
    import importlib

    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    client.run(importlib.import_module, "brian2")
    DASK.extend([client, cluster])
    return client


def pipeline(backend_label, seed, stamps):
    from modelfit_core import Pipeline
    name, options = BACKENDS[backend_label]
    if name == "dask":
        options = {"client": dask_client(options["n_workers"])}
    if name == "cpp_standalone" and os.path.exists("/usr/bin/time"):
        # the binary's own peak memory, appended to a file at each run
        from brian2 import prefs
        prefs.devices.cpp_standalone.run_cmd_unix = [
            "/usr/bin/time", "-a", "-o", CHILD_PEAK_FILE, "-f", "%M", "./main"]
    return Pipeline.from_names(backend=name, backend_options=dict(options), seed=seed,
                               feedback=lambda *a: stamps.append(time.perf_counter()))


def hh_case(backend_label, samples, rounds):
    from brian2 import amp, mV, ms, msiemens, nsiemens, psiemens, usiemens

    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    data = load_hh_dataset()
    stamps = []
    pipe = pipeline(backend_label, 3, stamps)
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": data.inputs * amp},
                               output={"v": data.outputs * mV}, dt=0.01 * ms,
                               n_samples=samples, method="exponential_euler",
                               param_init={"v": -65 * mV}, namespace=hh_constants())
    bounds = dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                  g_kd=[200 * nsiemens, 200 * usiemens])
    started = time.perf_counter()
    try:
        fitter.fit(n_rounds=rounds, **bounds)
    finally:
        shutdown(fitter)
    return timings(started, stamps, samples * data.inputs.size, fitter)


def long_data(seconds):
    """Random current steps (every 50 ms) and the passive membrane's exact response
    with PASSIVE_TRUE, plus 0.5 mV noise: (LONG_TRACES, n_steps) arrays in SI."""
    from scipy.signal import lfilter
    n_steps = int(round(seconds / LONG_DT_S))
    rng = np.random.default_rng(7)
    block = int(round(0.05 / LONG_DT_S))
    levels = rng.uniform(0, 0.3e-9, (LONG_TRACES, n_steps // block + 1))
    currents = np.repeat(levels, block, axis=1)[:, :n_steps]
    el, gl, c = -0.07, PASSIVE_TRUE["gl"], PASSIVE_TRUE["C"]
    decay = np.exp(-gl * LONG_DT_S / c)
    # v[k+1] = decay*v[k] + (1-decay)*(El + I[k]/gl), v[0] = El; as Brian's 'exact'
    drive = (1 - decay) * (el + currents / gl)
    v = np.empty_like(currents)
    v[:, 0] = el
    v[:, 1:] = lfilter([1.0], [1.0, -decay], drive[:, :-1], axis=1,
                       zi=(decay * el) * np.ones((LONG_TRACES, 1)))[0]
    v += rng.normal(0, 0.5e-3, v.shape)
    return currents, v


def long_case(backend_label, samples, rounds, seconds, online):
    from brian2 import amp, mV, ms, nS, pF, volt

    from modelfit_core import MSEMetric, OnlineTraceFitter
    currents, voltage = long_data(seconds)
    stamps = []
    pipe = pipeline(backend_label, 5, stamps)
    data = dict(model=PASSIVE, input={"I": currents * amp}, output={"v": voltage * volt},
                dt=LONG_DT_S * 1e3 * ms, n_samples=samples, method="exact",
                param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
    if online:
        fitter = OnlineTraceFitter(pipeline=pipe, t_start=10 * ms, **data)
        options = {}
    else:
        fitter = pipe.trace_fitter(**data)
        options = {"metric": MSEMetric(t_start=10 * ms)}
    del currents, voltage
    started = time.perf_counter()
    try:
        fitter.fit(n_rounds=rounds, gl=[1 * nS, 100 * nS], C=[20 * pF, 1000 * pF], **options)
    finally:
        shutdown(fitter)
    return timings(started, stamps, samples * LONG_TRACES * int(round(seconds / LONG_DT_S)),
                   fitter)


WORKER_PEAKS_KB = []


def shutdown(fitter):
    if fitter._prepared is not None:
        fitter._prepared.close()
    client = getattr(fitter.backend, "client", None)
    if client is not None:
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        WORKER_PEAKS_KB.extend(peaks.values())
    if hasattr(fitter.backend, "shutdown"):
        fitter.backend.shutdown()
    for part in DASK:
        part.close()


def child_peak_kb() -> float:
    """Peak memory of the standalone binary (any run) or of a dask worker."""
    peaks = list(WORKER_PEAKS_KB)
    if os.path.exists(CHILD_PEAK_FILE):
        with open(CHILD_PEAK_FILE) as f:
            peaks += [float(line) for line in f if line.strip().isdigit()]
        os.remove(CHILD_PEAK_FILE)
    return max(peaks) if peaks else float("nan")


def timings(started, stamps, neuron_steps, fitter):
    rounds = np.diff([started] + stamps)
    later = float(np.mean(rounds[1:])) if len(rounds) > 1 else float("nan")
    return {"first": float(rounds[0]), "later": later,
            "rate": neuron_steps / later if len(rounds) > 1 else float("nan"),
            "errors": [r.errors.tolist() for r in fitter.history.rounds],
            "best": float(fitter.history.best_error)}


def run_case(spec):
    case = json.loads(spec)
    kind = case.pop("kind")
    result = hh_case(**case) if kind == "hh" else long_case(**case)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update(peak_mb=self_kb / 1024, child_peak_mb=child_peak_kb() / 1024)
    print("RESULT " + json.dumps(result), flush=True)


def in_fresh_process(**case):
    """Run one case in a new interpreter; its result (or its error)."""
    started = time.perf_counter()
    process = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)],
                             capture_output=True, text=True)
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            result["wall"] = time.perf_counter() - started
            return result
    tail = (process.stderr or process.stdout).strip().splitlines()[-3:]
    return {"failed": " | ".join(tail)}


# -- printing ---------------------------------------------------------------------------------
def agreement(results, reference="runtime"):
    """Largest relative difference of any evaluated error from the reference's."""
    ref = results.get(reference)
    out = {}
    for label, res in results.items():
        if "failed" in res or ref is None or "failed" in ref:
            out[label] = float("nan")
            continue
        a, b = np.array(ref["errors"], float), np.array(res["errors"], float)
        n = min(len(a), len(b))
        out[label] = float(np.nanmax(np.abs(a[:n] - b[:n]) / np.abs(a[:n])))
    return out


def table(title, results, rows):
    labels = list(results)
    width = max(15, *(len(label) + 2 for label in labels))
    print(f"\n{title}")
    print(f"{'':<30}" + "".join(f"{label:>{width}}" for label in labels))
    for name, key, fmt in rows:
        cells = []
        for label in labels:
            res = results[label]
            if "failed" in res:
                cells.append(f"{'failed':>{width}}")
            else:
                value = res.get(key, float("nan"))
                cells.append(f"{'-':>{width}}" if value != value else f"{value:>{width}{fmt}}")
        print(f"{name:<30}" + "".join(cells))
    for label, res in results.items():
        if "failed" in res:
            print(f"  {label} failed: {res['failed']}")


def main():
    args = parse_args()
    if args.case:
        return run_case(args.case)
    labels = [label for label in BACKENDS if not (args.no_dask and label.startswith("dask"))]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start "
          f"(timings on a shared machine vary; compare within a run)")
    rows = [("first round (s)", "first", ".2f"), ("later rounds (s, mean)", "later", ".3f"),
            ("neuron-steps/s (later)", "rate", ".3g"), ("best error", "best", ".4g"),
            ("peak RSS, Python (MB)", "peak_mb", ".0f"),
            ("peak RSS, binary/worker (MB)", "child_peak_mb", ".0f"),
            ("case wall time (s)", "wall", ".1f")]
    if args.only in (None, "hh"):
        results = {label: in_fresh_process(kind="hh", backend_label=label,
                                           samples=args.samples, rounds=args.rounds)
                   for label in labels}
        diffs = agreement(results)
        table(f"HH tutorial fit: 5 traces x 1497 steps, {args.samples} samples, "
              f"{args.rounds} rounds (first includes compilation/build)", results, rows)
        print("max relative difference of every evaluated error from runtime's: " +
              ", ".join(f"{label} {value:.1e}" for label, value in diffs.items()
                        if label != "runtime"))
    if args.only in (None, "long"):
        n_steps = int(round(args.recorded_seconds / LONG_DT_S))
        short = {f"{label} {'online' if online else 'recorded'}":
                 in_fresh_process(kind="long", backend_label=label, samples=args.samples,
                                  rounds=args.long_rounds, seconds=args.recorded_seconds,
                                  online=online)
                 for label in ("runtime", "standalone x1") for online in (False, True)}
        recorded_gb = args.samples * LONG_TRACES * n_steps * 8 / 1e9
        table(f"Recorded vs online error: {LONG_TRACES} traces x {args.recorded_seconds:g} s "
              f"({n_steps} steps), {args.samples} samples; one recorded copy = "
              f"{recorded_gb:.2f} GB", short, rows)
        diffs = agreement(short, reference="runtime recorded")
        print("max relative difference of every evaluated error from runtime recorded: " +
              ", ".join(f"{label} {value:.1e}" for label, value in diffs.items()
                        if label != "runtime recorded"))
        n_steps = int(round(args.long_seconds / LONG_DT_S))
        long = {label: in_fresh_process(kind="long", backend_label=label, samples=args.samples,
                                        rounds=args.long_rounds, seconds=args.long_seconds,
                                        online=True)
                for label in labels}
        full_gb = args.samples * LONG_TRACES * n_steps * 8 / 1e9
        table(f"Long traces, online error: {LONG_TRACES} traces x {args.long_seconds:g} s "
              f"({n_steps} steps), {args.samples} samples, {args.long_rounds} rounds; "
              f"recorded, one copy of the traces would be {full_gb:.1f} GB", long, rows)
        diffs = agreement(long)
        print("max relative difference of every evaluated error from runtime's: " +
              ", ".join(f"{label} {value:.1e}" for label, value in diffs.items()
                        if label != "runtime"))


if __name__ == "__main__":
    main()
