"""Benchmark: NSGA-II and NSGA-III against a weighted-sum sweep, by hypervolume.

The problem: the bundled Hodgkin–Huxley recordings (5 current steps, 1497
steps of 0.01 ms) fitted with a deliberately reduced model, a leaky
integrate-and-fire neuron (``gl``, ``C`` and the threshold ``vt`` fitted; reset
to -85 mV, 1.5 ms refractory), against two outputs of the same recording:
the membrane potential (MSE, in mV²) and the spike times found in it
(upward crossings of -20 mV; the gamma factor with ±0.5 ms, 0 = identical
trains). An integrate-and-fire neuron has no action potential, so it cannot
fit both: firing at the recorded times costs voltage error, following the
voltage costs spikes.

With the same number of simulated parameter sets (``--evaluations``) each
method gets:

* ``nsga2`` / ``nsga3``: ``fit(objectives="separate")``, one population of
  ``--population`` for ``evaluations / population`` rounds;
* ``weighted sum``: the classic single-objective fit (pymoo's DE, the best
  batch optimizer of ``benchmarks/optimizers.py``) of
  ``λ·MSE/(100 mV²) + (1 - λ)·Γ`` for each λ of ``--weights``, the
  evaluations split evenly between the λ. Its front is taken two ways: the
  non-dominated set of every point it evaluated (``all points``, generous),
  and of the best point of each λ (``best of each λ``, what a user of the
  sweep keeps).

The hypervolume is computed on objectives scaled to [0, 1] by the ideal and
nadir points of all fronts of all methods and seeds together, with the
reference point (1.1, 1.1); larger is better. Medians over ``--seeds``.

    .venv/bin/python benchmarks/pareto.py [--seeds 1 2 3 4 5] [--evaluations 1500]
                                          [--figures /tmp/pareto_figs]

Not a test: it prints a table and writes figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import numpy as np

LIF = """
dv/dt = (gl*(El - v) + I)/C : volt (unless refractory)
gl : siemens (constant)
C : farad (constant)
vt : volt (constant)
"""
OBJECTIVES = ("spikes", "v")
"""Γ (dimensionless) and the voltage MSE (mV²), in this order everywhere."""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--evaluations", type=int, default=1500)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9],
                        help="the λ of the weighted-sum sweep")
    parser.add_argument("--figures", default="/tmp/pareto_figs",
                        help="folder for the PNG files ('' for none)")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args()


def problem(data_dir=None):
    """The recordings: inputs, voltage, the spike trains found in it, dt, duration."""
    from modelfit_core.tools.datasets import load_hh_dataset
    dataset = load_hh_dataset(data_dir)
    recorded = dataset.outputs  # mV
    trains = []
    for trace in recorded:
        up = np.flatnonzero((trace[1:] > -20) & (trace[:-1] <= -20)) + 1
        trains.append(up * dataset.dt_s)
    return dataset.inputs, recorded, trains, dataset.dt_s


def make_fitter(data, n_samples):
    from brian2 import amp, mV, ms, second

    from modelfit_core import SpikeFitter
    inputs, recorded, trains, dt = data
    return SpikeFitter(model=LIF, input={"I": inputs * amp},
                       output={"spikes": [t * second for t in trains], "v": recorded * mV},
                       dt=dt * second, n_samples=n_samples, threshold="v > vt",
                       reset="v = -85*mV", refractory=1.5 * ms, method="exact",
                       param_init={"v": -65 * mV}, namespace={"El": -65 * mV})


def bounds():
    from brian2 import mV, nF, nS, pF, uS
    return {"gl": [1 * nS, 1 * uS], "C": [20 * pF, 2 * nF], "vt": [-64 * mV, -20 * mV]}


def metrics(data, weight_v=None):
    """Γ and MSE (normalized by 1 mV, so in mV²); with ``weight_v`` = λ, scaled so that
    their sum is λ·MSE/100 + (1 - λ)·Γ."""
    from brian2 import mV, ms, second

    from modelfit_core import GammaFactor, MSEMetric
    duration = data[1].shape[1] * data[3] * second
    if weight_v is None:
        return {"spikes": GammaFactor(delta=0.5 * ms, time=duration),
                "v": MSEMetric(normalization=mV)}
    return {"spikes": GammaFactor(delta=0.5 * ms, time=duration,
                                  normalization=1.0 / (1.0 - weight_v)),
            "v": MSEMetric(normalization=10 * mV / np.sqrt(weight_v))}


def run_multiobjective(data, method, seed, evaluations, population, figures=None):
    from modelfit_plugins.optimizers.pymoo_multiobjective import (NSGA2Optimizer,
                                                                  NSGA3Optimizer)
    optimizer = {"nsga2": NSGA2Optimizer, "nsga3": NSGA3Optimizer}[method](seed=seed)
    gc.collect()  # free the last fitter's Brian objects (see below)
    fitter = make_fitter(data, population)
    started = time.perf_counter()
    fitter.fit(n_rounds=evaluations // population, objectives="separate",
               optimizer=optimizer, metric=metrics(data), callback=None, **bounds())
    elapsed = time.perf_counter() - started
    frame = fitter.results(format="dataframe")
    values = frame[[f"objective_{name}" for name in OBJECTIVES]].to_numpy()
    if figures is not None:
        from modelfit_core.tools.pareto_plots import write_front_plots
        print("wrote " + ", ".join(map(str, write_front_plots(fitter, figures))))
    # the fitter is dropped: a live one would make the next fitter's Brian objects take
    # other names, and so compile their code again (inside the next method's timing)
    return {"all": values, "front": values, "seconds": elapsed, "evaluations": len(frame)}


def run_weighted_sum(data, seed, evaluations, weights):
    from modelfit_core import PymooOptimizer
    per_weight = evaluations // len(weights)
    population = max(4, per_weight // 30)  # 30 rounds per λ, as many as a front gets
    everything, best, elapsed, count = [], [], 0.0, 0
    for k, weight in enumerate(weights):
        gc.collect()  # free the last fitter's Brian objects (see run_multiobjective)
        fitter = make_fitter(data, population)
        started = time.perf_counter()
        fitter.fit(n_rounds=per_weight // population, metric=metrics(data, weight),
                   optimizer=PymooOptimizer("DE", seed=seed * 100 + k), callback=None,
                   **bounds())
        elapsed += time.perf_counter() - started
        frame = fitter.results(format="dataframe")
        values = np.column_stack([frame["normalized_error_spikes"] / (1 - weight),
                                  frame["normalized_error_v"] * 100 / weight])
        finite = np.isfinite(frame["errors"].to_numpy())
        everything.append(values[finite])
        best.append(values[np.argmin(np.where(finite, frame["errors"], np.inf))])
        count += len(frame)
    return {"all": np.vstack(everything), "front": np.vstack(best), "seconds": elapsed,
            "evaluations": count}


def main():
    args = parse_args()
    from modelfit_core.results.pareto import hypervolume, non_dominated
    data = problem(args.data_dir)
    for size in {args.population, max(4, args.evaluations // len(args.weights) // 30)}:
        make_fitter(data, size).fit(n_rounds=1, metric=metrics(data), optimizer="pymoo",
                                    callback=None, **bounds())  # compile outside the timings
    runs = {}
    for seed in args.seeds:
        for method in ("nsga2", "nsga3"):
            figures = Path(args.figures) / f"{method}_seed{seed}" \
                if args.figures and seed == args.seeds[0] else None
            runs[method, seed] = run_multiobjective(data, method, seed, args.evaluations,
                                                    args.population, figures)
        sweep = run_weighted_sum(data, seed, args.evaluations, args.weights)
        runs["weighted sum (all points)", seed] = sweep
        runs["weighted sum (best of each λ)", seed] = {**sweep, "all": sweep["front"]}
        print(f"seed {seed} done", flush=True)
    fronts = {key: run["all"][non_dominated(run["all"])] for key, run in runs.items()}
    union = np.vstack(list(fronts.values()))
    ideal, nadir = union.min(axis=0), union.max(axis=0)
    volumes = {key: hypervolume((front - ideal) / (nadir - ideal), [1.1, 1.1])
               for key, front in fronts.items()}
    methods = list(dict.fromkeys(method for method, _ in runs))
    print(f"\nLIF fitted to the bundled HH data, objectives Γ (spikes) and MSE (mV²); "
          f"{args.evaluations} evaluations per method; seeds {args.seeds}; ideal "
          f"({ideal[0]:.3g}, {ideal[1]:.4g} mV²), nadir ({nadir[0]:.3g}, {nadir[1]:.4g} mV²)\n")
    print("| method | hypervolume (median) | min–max over seeds | front size (median) | "
          "evaluations | wall time (median) |")
    print("|---|---|---|---|---|---|")
    for method in methods:
        hv = [volumes[method, s] for s in args.seeds]
        size = [len(fronts[method, s]) for s in args.seeds]
        seconds = [runs[method, s]["seconds"] for s in args.seeds]
        count = runs[method, args.seeds[0]]["evaluations"]
        print(f"| {method} | {statistics.median(hv):.4f} | {min(hv):.4f}–{max(hv):.4f} | "
              f"{statistics.median(size):g} | {count} | {statistics.median(seconds):.1f} s |")
    print("\nper seed:\n\n| seed | " + " | ".join(methods) + " |")
    print("|" + "---|" * (len(methods) + 1))
    for seed in args.seeds:
        print(f"| {seed} | " + " | ".join(f"{volumes[m, seed]:.5f}" for m in methods) + " |")
    if args.figures:
        write_figures(Path(args.figures), fronts, args.seeds[0], methods)


def write_figures(folder: Path, fronts, seed, methods):
    from matplotlib.figure import Figure
    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4.4))
    ax = fig.add_subplot()
    styles = {"nsga2": "-o", "nsga3": "-s", "weighted sum (all points)": "--^",
              "weighted sum (best of each λ)": ":D"}
    for method in methods:
        front = fronts[method, seed]
        front = front[np.argsort(front[:, 0])]
        ax.plot(front[:, 0], front[:, 1], styles.get(method, "-"), ms=3, label=method,
                drawstyle="steps-post")  # the edge of the region each front dominates
    ax.set_xlabel("Γ error (spike times)")
    ax.set_ylabel("voltage MSE (mV²)")
    ax.set_title(f"Pareto fronts, seed {seed}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(folder / "benchmark_fronts.png", dpi=100)
    print(f"wrote {folder / 'benchmark_fronts.png'}")


if __name__ == "__main__":
    main()
