"""Benchmark: dask backend (2 workers) vs the plain runtime backend, side by side.

A fit where simulation dominates: the HH model on the bundled step currents
stretched to 100 ms (5 traces x 10000 steps), 100 samples per round. Each
backend runs a warm-up round (compilation), then timed rounds; same seed, so
both evaluate exactly the same parameter sets.

    .venv/bin/python benchmarks/dask_speedup.py [--rounds 4] [--steps 10000] [--workers 2]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recorded", action="store_true",
                        help="record the traces and send them back (default: online error)")
    return parser.parse_args()


def make_fitter(backend, n_steps, n_samples):
    from brian2 import amp, mV, ms

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    data = load_hh_dataset()
    repeats = int(np.ceil(n_steps / data.inputs.shape[1]))
    inputs = np.tile(data.inputs, repeats)[:, :n_steps]
    outputs = np.tile(data.outputs, repeats)[:, :n_steps]
    stamps = []
    pipe = Pipeline.from_names(backend=backend, seed=3,
                               feedback=lambda *a: stamps.append(time.perf_counter()))
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": inputs * amp},
                               output={"v": outputs * mV}, dt=0.01 * ms, n_samples=n_samples,
                               method="exponential_euler", param_init={"v": -65 * mV},
                               namespace=hh_constants())
    return fitter, stamps


def timed_fit(backend, args):
    from brian2 import msiemens, nsiemens, psiemens, usiemens
    fitter, stamps = make_fitter(backend, args.steps, args.samples)
    bounds = dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                  g_kd=[200 * nsiemens, 200 * usiemens])
    started = time.perf_counter()
    fitter.fit(n_rounds=args.rounds + 1, online_error=not args.recorded, **bounds)
    rounds = np.diff([started] + stamps)
    return {"first": rounds[0], "later": statistics.mean(rounds[1:]),
            "results": fitter.results(format="dataframe")}


def main():
    args = parse_args()
    from modelfit_core.registry.plugin_registry import Registry
    dask = Registry().lookup("backends", "dask")(n_workers=args.workers)
    dask._ensure_client()
    try:
        runtime = timed_fit("runtime", args)
        distributed = timed_fit(dask, args)
    finally:
        dask.shutdown()
    same = runtime["results"].equals(distributed["results"])
    neuron_steps = args.samples * 5 * args.steps
    print(f"HH, 5 traces x {args.steps} steps, {args.samples} samples/round, "
          f"{args.rounds} timed rounds, {'recorded traces' if args.recorded else 'online error'}; "
          f"identical results: {same}")
    print(f"{'':<34}{'runtime':>10}{f'dask x{args.workers}':>10}{'speed-up':>10}")
    print(f"{'first round (s, compile)':<34}{runtime['first']:>10.3f}"
          f"{distributed['first']:>10.3f}{runtime['first'] / distributed['first']:>10.2f}")
    print(f"{'later rounds (s)':<34}{runtime['later']:>10.3f}"
          f"{distributed['later']:>10.3f}{runtime['later'] / distributed['later']:>10.2f}")
    print(f"{'neuron-steps/s (later rounds)':<34}{neuron_steps / runtime['later']:>10.3g}"
          f"{neuron_steps / distributed['later']:>10.3g}")


if __name__ == "__main__":
    main()
