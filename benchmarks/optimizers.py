"""Benchmark: optimizers on the bundled HH problem, and refine with vs without gradients.

1. Error reached after a fixed budget of simulations (n_samples x n_rounds
   parameter sets) by nevergrad's DE, CMA and PSO, scikit-optimize's GP, and
   a random-search baseline (nevergrad's RandomSearch), for several seeds.
2. ``TraceFitter.refine`` from the same starting point with finite-difference
   and with analytic (sensitivity-equation) Jacobians: simulations and wall
   time until both reach the same error.

The problem is the TraceFitter tutorial's: the HH model, the five bundled
step-current recordings (1497 steps at dt = 0.01 ms, 0.25 mV noise), the
tutorial's bounds for gl, g_na and g_kd, MSE.

    .venv/bin/python benchmarks/optimizers.py [--seeds 1 2 3] [--n-samples 10] [--n-rounds 12]

Not a test: it prints tables, it asserts nothing. The default run takes about
two minutes on two cores, most of it skopt's Gaussian process, run here with
``fast_batch=True`` (kernel hyperparameters fitted once per round rather than
once per proposed point) and ``acq_optimizer="sampling"`` (2000 candidates).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings



def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n-samples", type=int, default=10)
    parser.add_argument("--n-rounds", type=int, default=12)
    parser.add_argument("--methods", nargs="+",
                        default=["DE", "CMA", "PSO", "skopt-GP", "RandomSearch"])
    parser.add_argument("--skip-refine", action="store_true")
    parser.add_argument("--skip-optimizers", action="store_true")
    return parser.parse_args()


def hh_fitter(n_samples):
    from brian2 import mV

    from modelfit_core import TraceFitter
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset

    inputs, outputs, dt = load_hh_dataset().quantities()
    return TraceFitter(model=HH_MODEL, input={"I": inputs}, output={"v": outputs}, dt=dt,
                       n_samples=n_samples, method="exponential_euler",
                       param_init={"v": -65 * mV}, namespace=hh_constants())


def hh_bounds():
    from brian2 import msiemens, nsiemens, psiemens, usiemens
    return {"gl": [2 * psiemens, 200 * nsiemens], "g_na": [200 * nsiemens, 0.4 * msiemens],
            "g_kd": [200 * nsiemens, 200 * usiemens]}


def make_optimizer(method, seed):
    from modelfit_core import NevergradOptimizer
    if method == "skopt-GP":
        from modelfit_plugins.optimizers.skopt_optimizer import SkoptOptimizer
        return SkoptOptimizer("GP", seed=seed, acq_optimizer="sampling", fast_batch=True,
                              acq_optimizer_kwargs={"n_points": 2000})
    return NevergradOptimizer(method, seed=seed)


def run_optimizers(args):
    from modelfit_core import MSEMetric

    budget = args.n_samples * args.n_rounds
    print(f"== Optimizers: HH tutorial problem, {budget} simulations "
          f"({args.n_samples} samples x {args.n_rounds} rounds), seeds {args.seeds} ==")
    fitter = hh_fitter(args.n_samples)
    bounds = hh_bounds()
    # compile once, outside the timings
    fitter.fit(n_rounds=1, optimizer=make_optimizer("RandomSearch", 0), metric=MSEMetric(),
               callback=None, **bounds)
    rows = []
    for method in args.methods:
        errors, times = [], []
        for seed in args.seeds:
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, error = fitter.fit(n_rounds=args.n_rounds, restart=True, callback=None,
                                      optimizer=make_optimizer(method, seed),
                                      metric=MSEMetric(), **bounds)
            times.append(time.perf_counter() - started)
            errors.append(float(error) * 1e6)  # V^2 -> mV^2
        rows.append((method, errors, times))
    width = max(len(m) for m in args.methods)
    seeds = "  ".join(f"{'seed ' + str(s):>10}" for s in args.seeds)
    print(f"{'method':<{width}}  {seeds}  {'median':>10}  {'vs random':>9}  {'time/fit':>8}")
    baseline = next((statistics.median(e) for m, e, _ in rows if m == "RandomSearch"), None)
    for method, errors, times in rows:
        median = statistics.median(errors)
        ratio = f"{median / baseline:9.2f}" if baseline else f"{'-':>9}"
        values = "  ".join(f"{e:10.4f}" for e in errors)
        print(f"{method:<{width}}  {values}  {median:10.4f}  {ratio}  "
              f"{statistics.median(times):7.2f}s")
    print("(best MSE in mV^2 after the budget; the recording noise alone gives 0.0625)")
    return rows


def run_refine(args):
    from brian2 import nS, usiemens

    from modelfit_core import MSEMetric, NevergradOptimizer

    start = {"gl": 40 * nS, "g_na": 60 * usiemens, "g_kd": 15 * usiemens}
    print("\n== refine (scipy least_squares, trf) from gl=40 nS, g_na=60 uS, g_kd=15 uS ==")
    fitter = hh_fitter(2)
    fitter.fit(n_rounds=0, optimizer=NevergradOptimizer(), metric=MSEMetric(), **hh_bounds())
    traces = {}
    for calc_gradient in (False, True):
        fitter.refine(start, callback=None, calc_gradient=calc_gradient, max_nfev=1)  # compile
        trace = []
        started = time.perf_counter()

        def callback(params, errors, best, best_error, index, info, trace=trace,
                     started=started):
            trace.append((info["n_simulations"], time.perf_counter() - started,
                          float(errors[0]) * 1e6))
            return False

        _, result = fitter.refine(start, callback=callback, calc_gradient=calc_gradient)
        traces[calc_gradient] = (trace, result, time.perf_counter() - started)
    target = max(min(e for _, _, e in trace) for trace, _, _ in traces.values()) * (1 + 1e-6)
    print(f"target error: {target:.6f} mV^2 (the larger of the two final errors)")
    print(f"{'Jacobian':<26} {'simulations':>11} {'wall time':>9} {'total sims':>10} "
          f"{'total time':>10} {'final error':>12}")
    for calc_gradient, (trace, result, total) in traces.items():
        reached = next((s, t) for s, t, e in trace if e <= target)
        label = "analytic (calc_gradient)" if calc_gradient else "finite differences"
        print(f"{label:<26} {reached[0]:>11d} {reached[1]:>8.2f}s {result.n_simulations:>10d} "
              f"{total:>9.2f}s {float(result.error) * 1e6:>12.6f}")
    print("(simulations: model runs, each of the 5 traces; the analytic Jacobian comes with "
          "each run, which costs more per run; times exclude compilation)")
    return traces


def main():
    args = parse_args()
    from brian2 import BrianLogger, prefs
    prefs.codegen.target = "cython"
    BrianLogger.suppress_name("unused_brian_object")
    if not args.skip_optimizers:
        run_optimizers(args)
    if not args.skip_refine:
        run_refine(args)


if __name__ == "__main__":
    main()
