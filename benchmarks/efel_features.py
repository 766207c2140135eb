"""Benchmark: eFEL feature extraction of one round, serial vs parallel, side by side.

A round of a fit with FeatureMetric extracts the features of n_samples x 5
simulated traces (the bundled HH dataset: 1497 steps at dt = 0.01 ms). This
script simulates such rounds once with the runtime backend (parameters spread
around the ground truth, so spike counts vary), then times
``FeatureMetric.get_features`` on them serially (``n_jobs=1``) and with a
process pool (``n_jobs=2, 4, ...`` up to the available CPUs), and prints
features per second next to the time Brian took to simulate the round and
to plain ``efel.get_feature_values`` on numpy trace dicts.

    .venv/bin/python benchmarks/efel_features.py [--samples 20 100 400] [--repeat 3]

Not a test: it prints figures, it asserts nothing. The pool is started once
before timing (as in a fit, where it lives as long as the metric).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

FEATURES = ["voltage_base", "spike_count", "time_to_first_spike", "AP1_amp",
            "mean_frequency", "maximum_voltage"]


def parse_args():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[20, 100, 400],
                        help="parameter sets per round (each gives 5 traces)")
    parser.add_argument("--jobs", type=int, nargs="+",
                        default=sorted({j for j in (2, 4, 8, cpus) if 1 < j <= cpus}) or [2],
                        help="process counts to compare with serial")
    parser.add_argument("--features", nargs="+", default=FEATURES)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def simulate_round(n_samples: int, seed: int):
    """(model traces (n_samples, 5, n_steps) in volts, recorded traces, dt, seconds)."""
    from brian2 import amp
    from modelfit_core.tools.datasets import (DT_S, HH_GROUND_TRUTH, HH_MODEL, hh_constants,
                                        load_hh_dataset)
    from modelfit_core.fitting.pipeline import Pipeline
    from modelfit_core.contracts.simulation import InputSignal, SimulationSpec

    dataset = load_hh_dataset()
    rng = np.random.default_rng(seed)
    params = {name: value * rng.uniform(0.5, 2.0, n_samples)
              for name, value in HH_GROUND_TRUTH.items()}
    spec = SimulationSpec(
        model=HH_MODEL, parameter_names=tuple(params), n_samples=n_samples,
        n_traces=dataset.inputs.shape[0], n_steps=dataset.inputs.shape[1], dt=DT_S,
        inputs={"I": InputSignal(values=dataset.inputs, dim=amp.dim)}, record=("v",),
        method="exponential_euler", param_init={"v": -65e-3}, namespace=hh_constants(),
        name="efel_benchmark")
    prepared = Pipeline.lazy_default().resolve_backend("runtime").prepare(spec)
    prepared.run(params)  # warm-up (code generation)
    started = time.perf_counter()
    result = prepared.run(params)
    simulated = time.perf_counter() - started
    prepared.close()
    return result.traces["v"], dataset.outputs * 1e-3, DT_S, simulated


def best_time(metric, model, data, dt, repeat):
    metric.get_features(model, data, dt)  # warm-up: data features, pool start
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        metric.get_features(model, data, dt)
        times.append(time.perf_counter() - started)
    return min(times)


def naive_time(features, model, dt, repeat):
    """Plain ``efel.get_feature_values`` on trace dicts holding numpy arrays."""
    import efel
    n_steps = model.shape[-1]
    time_ms = np.arange(n_steps) * dt * 1e3
    traces = [{"T": time_ms, "V": v * 1e3, "stim_start": [5.0], "stim_end": [10.0]}
              for v in model.reshape(-1, n_steps)]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        efel.get_feature_values(traces, features, raise_warnings=False)
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    args = parse_args()
    from brian2 import ms, second
    warnings.simplefilter("ignore", DeprecationWarning)
    from modelfit_plugins.metrics.efel_features import FeatureMetric
    import efel

    stim = [(5 * ms, 10 * ms)]
    print(f"eFEL {efel.__version__}; features: {', '.join(args.features)}; "
          f"CPUs available: {len(os.sched_getaffinity(0))}; best of {args.repeat}")
    header = f"{'traces':>7} {'simulate s':>11} {'plain eFEL feat/s':>18} {'serial feat/s':>14}"
    for jobs in args.jobs:
        header += f" {f'{jobs} procs feat/s':>16} {'ratio':>6}"
    header += f" {'extract/simulate':>17}"
    print(header)
    for n_samples in args.samples:
        model, data, dt, simulated = simulate_round(n_samples, args.seed)
        n_traces = model.shape[0] * model.shape[1]
        n_features = n_traces * len(args.features)
        serial = best_time(FeatureMetric(stim, args.features, n_jobs=1), model, data,
                           dt * second, args.repeat)
        naive = naive_time(args.features, model, dt, args.repeat)
        line = (f"{n_traces:>7} {simulated:>11.3f} {n_features / naive:>18.0f} "
                f"{n_features / serial:>14.0f}")
        fastest = serial
        for jobs in args.jobs:
            metric = FeatureMetric(stim, args.features, n_jobs=jobs)
            try:
                elapsed = best_time(metric, model, data, dt * second, args.repeat)
            finally:
                metric.close()
            fastest = min(fastest, elapsed)
            line += f" {n_features / elapsed:>16.0f} {serial / elapsed:>6.2f}"
        line += f" {fastest / simulated:>17.2f}"
        print(line, flush=True)
    print("plain eFEL: efel.get_feature_values on numpy trace dicts, no metric; serial: "
          "FeatureMetric(n_jobs=1).get_features (eFEL on lists, plus the errors);\n"
          "ratio: serial time / parallel time; extract/simulate: fastest extraction time "
          "over Brian's simulation time for the same round.")


if __name__ == "__main__":
    main()
