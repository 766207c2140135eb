"""Benchmark: the dask backend against the runtime backend, the issue-25 targets in one run.

The HH tutorial fit (the bundled recordings: 5 traces x 1497 steps, pymoo's DE and the
default metric, traces recorded and scored as a fit does by default), later
rounds (compilation excluded), warm caches, same seed on both backends:

* fixed cost of a dask round: 1 worker against runtime, 100 samples per round;
* speed-up of 2 workers against runtime at 400 and 2000 samples per round;
* the floor of that speed-up on this machine: two plain processes simulating (and
  scoring) half a batch each at the same time, against one process the whole batch,
  no dask involved;
* nevergrad's DE (400 samples) on 2 workers, synchronous against asynchronous.

    .venv/bin/python benchmarks/dask_speedup.py [--rounds 4] [--samples 400 2000]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time

import numpy as np

WARM_ROUNDS = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds per fit")
    parser.add_argument("--samples", type=int, nargs="+", default=[400, 2000])
    parser.add_argument("--fixed-samples", type=int, default=100)
    return parser.parse_args()


def bounds():
    from brian2 import msiemens, nsiemens, psiemens, usiemens
    return dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                g_kd=[200 * nsiemens, 200 * usiemens])


def tutorial_fitter(backend, n_samples, stamps=None):
    from brian2 import amp, mV, ms

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    data = load_hh_dataset()
    feedback = None if stamps is None else (lambda *a: stamps.append(time.perf_counter()))
    pipe = Pipeline.from_names(backend=backend, seed=3, feedback=feedback)
    return pipe.trace_fitter(model=HH_MODEL, input={"I": data.inputs * amp},
                             output={"v": data.outputs * mV}, dt=0.01 * ms,
                             n_samples=n_samples, method="exponential_euler",
                             param_init={"v": -65 * mV}, namespace=hh_constants())


def later_round_s(backend, n_samples, rounds, optimizer=None) -> tuple[float, object]:
    """Mean wall seconds of the rounds after WARM_ROUNDS, and the results."""
    stamps: list[float] = []
    fitter = tutorial_fitter(backend, n_samples, stamps)
    # pymoo's DE by name: the generation-based optimizer these figures were measured with
    # (the default of this fit is now the gradient optimizer, docs/optimizers.md)
    options = {"optimizer": "pymoo"} if optimizer is None else {"optimizer": optimizer()}
    fitter.fit(n_rounds=WARM_ROUNDS + rounds, **options, **bounds())
    return statistics.mean(np.diff(stamps[WARM_ROUNDS - 1:])), \
        fitter.results(format="dataframe")


# -- the floor: two plain processes, no dask ------------------------------------------
_SIMULATION = None


def _prepare_half(n_samples: int) -> None:
    global _SIMULATION
    fitter = tutorial_fitter("runtime", n_samples)
    fitter.fit(n_rounds=1, callback=None, **bounds())
    _SIMULATION = fitter.current_fit


def _simulate_and_score(matrix) -> float:
    fit = _SIMULATION
    started = time.perf_counter()
    result = fit.simulation.run(fit.space.columns(matrix))
    fit.objective.score(result, len(matrix))
    return time.perf_counter() - started


def split_floor(n_samples: int, repeats: int) -> tuple[float, float]:
    """Seconds to simulate and score a batch in one process, and in two processes
    (half each, at the same time)."""
    rng = np.random.default_rng(0)
    lower = np.array([200e-9, 200e-9, 2e-12])
    upper = np.array([200e-6, 0.4e-3, 200e-9])
    batch = lower + rng.random((n_samples, 3)) * (upper - lower)
    whole, halves = [], []
    with concurrent.futures.ProcessPoolExecutor(1, initializer=_prepare_half,
                                                initargs=(n_samples,)) as one:
        one.submit(_simulate_and_score, batch).result()
        for _ in range(repeats):
            started = time.perf_counter()
            one.submit(_simulate_and_score, batch).result()
            whole.append(time.perf_counter() - started)
    half = n_samples // 2
    with concurrent.futures.ProcessPoolExecutor(2, initializer=_prepare_half,
                                                initargs=(half,)) as two:
        list(two.map(_simulate_and_score, [batch[:half], batch[half:2 * half]]))
        for _ in range(repeats):
            started = time.perf_counter()
            list(two.map(_simulate_and_score, [batch[:half], batch[half:2 * half]]))
            halves.append(time.perf_counter() - started)
    return statistics.median(whole), statistics.median(halves)


def main():
    args = parse_args()
    from modelfit_core import NevergradOptimizer
    from modelfit_core.registry.plugin_registry import Registry
    dask_kind = Registry().lookup("backends", "dask")
    rows = []
    one = dask_kind(n_workers=1)
    try:
        one._ensure_client()
        runtime_s, runtime_results = later_round_s("runtime", args.fixed_samples, args.rounds)
        dask_s, dask_results = later_round_s(one, args.fixed_samples, args.rounds)
    finally:
        one.shutdown()
    print(f"HH tutorial fit, 5 traces x 1497 steps, pymoo's DE, "
          f"{args.rounds} timed rounds after {WARM_ROUNDS} (ms per round)")
    print(f"fixed cost, 1 worker, {args.fixed_samples} samples: runtime {runtime_s * 1e3:.1f}, "
          f"dask {dask_s * 1e3:.1f}, difference {(dask_s - runtime_s) * 1e3:+.1f} ms; "
          f"identical results: {runtime_results.equals(dask_results)}")
    two = dask_kind(n_workers=2)
    asynchronous = dask_kind(n_workers=2, asynchronous=True)
    try:
        two._ensure_client()
        for n in args.samples:
            runtime_s, runtime_results = later_round_s("runtime", n, args.rounds)
            dask_s, dask_results = later_round_s(two, n, args.rounds)
            whole_s, halves_s = split_floor(n, args.rounds)
            rows.append((f"{n} samples, pymoo DE", runtime_s, dask_s,
                         runtime_results.equals(dask_results), whole_s / halves_s))
        two.shutdown()
        asynchronous._ensure_client()
        n = args.samples[0]
        nevergrad_runtime_s, _ = later_round_s("runtime", n, args.rounds,
                                               lambda: NevergradOptimizer(method="DE", seed=1))
        synchronous = dask_kind(n_workers=2)
        try:
            sync_s, _ = later_round_s(synchronous, n, args.rounds,
                                      lambda: NevergradOptimizer(method="DE", seed=1))
        finally:
            synchronous.shutdown()
        async_s, _ = later_round_s(asynchronous, n, args.rounds,
                                   lambda: NevergradOptimizer(method="DE", seed=1))
    finally:
        two.shutdown()
        asynchronous.shutdown()
    print(f"{'2 workers':<30}{'runtime':>9}{'dask x2':>9}{'speed-up':>10}"
          f"{'floor':>8}  identical")
    for label, runtime_s, dask_s, same, floor in rows:
        print(f"{label:<30}{runtime_s * 1e3:>9.1f}{dask_s * 1e3:>9.1f}"
              f"{runtime_s / dask_s:>10.2f}{floor:>8.2f}  {same}")
    for label, seconds in (("sync", sync_s), ("async", async_s)):
        print(f"{f'{n} samples, nevergrad DE {label}':<30}{nevergrad_runtime_s * 1e3:>9.1f}"
              f"{seconds * 1e3:>9.1f}{nevergrad_runtime_s / seconds:>10.2f}")
    print("floor: one process simulating and scoring the whole batch / two processes "
          "half each at once (no dask): the best a 2-way split can do here")


if __name__ == "__main__":
    main()
