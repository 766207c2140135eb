"""Benchmark: optimizers on the bundled HH problem, and refine with vs without gradients.

1. Error reached after a fixed budget of simulations (n_samples x n_rounds
   parameter sets) by nevergrad's DE, CMA and PSO, pymoo's DE, PSO, CMA-ES and
   GA (``PymooOptimizer``), scikit-optimize's GP, and a random-search baseline
   (nevergrad's RandomSearch), for several seeds, at 100 and at 1000 samples
   per round; and each method's overhead: the time spent in ``ask`` and
   ``tell`` as a fraction of a round's time (ask + simulate + score + tell),
   over the rounds after the first.
2. ``TraceFitter.refine`` from the same starting point with finite-difference
   and with analytic (sensitivity-equation) Jacobians: simulations and wall
   time until both reach the same error.

The problem is the TraceFitter tutorial's: the HH model, the five bundled
step-current recordings (1497 steps at dt = 0.01 ms, 0.25 mV noise), the
tutorial's bounds for gl, g_na and g_kd, MSE.

    .venv/bin/python benchmarks/optimizers.py [--seeds 1 2 3] [--n-samples 100 1000]
                                              [--n-rounds 10 5] [--methods DE pymoo-DE ...]

``--n-rounds`` gives the rounds for each ``--n-samples`` value (one value: the same
for all). A pymoo method may carry options: ``"pymoo-PSO:adaptive=False"``. ask and tell are timed by wrapping the optimizer in a proxy that
delegates to it (``TimedOptimizer``); no library is patched. Not a test: it
prints tables, it asserts nothing; timings on a shared machine are noisy. The
default run takes about five minutes on two cores, most of it the 1000-sample
rounds. skopt's GP runs only up to ``--skopt-max-samples`` samples per round
(default 20, so not in the default run): it refits its model for every proposed
point (here with ``fast_batch=True``, kernel hyperparameters fitted once per
round, and ``acq_optimizer="sampling"`` over 2000 candidates), which takes about
two minutes per round at 100 samples (3 rounds: 341 s, 99.9% of it in ask and
tell) and far longer at 1000. ``--skopt-max-samples 100`` runs it anyway.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import time
import warnings

NEVERGRAD = ("DE", "CMA", "PSO", "RandomSearch")
PYMOO_PREFIX = "pymoo-"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n-samples", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--n-rounds", type=int, nargs="+", default=[10, 5],
                        help="rounds for each --n-samples value (or one for all)")
    parser.add_argument("--methods", nargs="+",
                        default=["DE", "CMA", "PSO", "pymoo-DE", "pymoo-PSO", "pymoo-CMAES",
                                 "pymoo-GA", "skopt-GP", "RandomSearch"])
    parser.add_argument("--skopt-max-samples", type=int, default=20,
                        help="run skopt-GP only up to this many samples per round")
    parser.add_argument("--skip-refine", action="store_true")
    parser.add_argument("--skip-optimizers", action="store_true")
    args = parser.parse_args()
    if len(args.n_rounds) == 1:
        args.n_rounds = args.n_rounds * len(args.n_samples)
    if len(args.n_rounds) != len(args.n_samples):
        parser.error("give one --n-rounds value, or one per --n-samples value")
    return args


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
    if method.startswith(PYMOO_PREFIX):
        from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer
        # "pymoo-PSO:adaptive=False": options after the name, values as Python literals
        name, _, listed = method[len(PYMOO_PREFIX):].partition(":")
        options = {key: ast.literal_eval(value) for key, _, value in
                   (item.partition("=") for item in listed.split(",") if item)}
        return PymooOptimizer(name, seed=seed, **options)
    return NevergradOptimizer(method, seed=seed)


def label(method):
    """The method as the tables show it (nevergrad's are the unprefixed names)."""
    return f"{method} (nevergrad)" if method in NEVERGRAD else method


class TimedOptimizer:
    """Delegates to ``optimizer`` and adds up the time of each round's ask and tell."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.round_s: list[float] = []
        """ask + tell of each round, seconds."""
        self._asking = 0.0

    def initialize(self, *args, **kwargs):
        return self.optimizer.initialize(*args, **kwargs)

    def ask(self, n_samples):
        started = time.perf_counter()
        vectors = self.optimizer.ask(n_samples)
        self._asking = time.perf_counter() - started
        return vectors

    def tell(self, parameters, errors):
        started = time.perf_counter()
        self.optimizer.tell(parameters, errors)
        self.round_s.append(self._asking + time.perf_counter() - started)

    def recommend(self):
        return self.optimizer.recommend()


def timed_fit(fitter, method, seed, n_rounds, bounds):
    """One fit; returns (final error in mV^2, seconds, overhead of the later rounds)."""
    from modelfit_core import MSEMetric

    optimizer = TimedOptimizer(make_optimizer(method, seed))
    stamps = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, error = fitter.fit(n_rounds=n_rounds, restart=True, optimizer=optimizer,
                              metric=MSEMetric(), callback=lambda *args: stamps.append(
                                  time.perf_counter()), **bounds)
    total = time.perf_counter() - started
    # the first round also pays for one-time work (imports, the optimizer's set-up)
    rounds = [b - a for a, b in zip(stamps, stamps[1:])]
    overhead = sum(optimizer.round_s[1:]) / sum(rounds) if rounds else float("nan")
    return float(error) * 1e6, total, overhead  # V^2 -> mV^2


def run_optimizers(args):
    from modelfit_core import MSEMetric

    bounds = hh_bounds()
    results = {}  # (method, n_samples) -> (errors, times, overheads)
    for n_samples, n_rounds in zip(args.n_samples, args.n_rounds):
        methods = [m for m in args.methods
                   if m != "skopt-GP" or n_samples <= args.skopt_max_samples]
        print(f"\n== Optimizers: HH tutorial problem, {n_samples * n_rounds} "
              f"simulations ({n_samples} samples x {n_rounds} rounds), "
              f"seeds {args.seeds} ==")
        fitter = hh_fitter(n_samples)
        # compile once, outside the timings
        fitter.fit(n_rounds=1, optimizer=make_optimizer("RandomSearch", 0),
                   metric=MSEMetric(), callback=None, **bounds)
        for method in methods:
            runs = [timed_fit(fitter, method, seed, n_rounds, bounds)
                    for seed in args.seeds]
            results[method, n_samples] = tuple(zip(*runs))
        print_table(results, methods, n_samples, args.seeds)
        if len(methods) < len(args.methods):
            print(f"(skopt-GP not run at {n_samples} samples per round: its GP refits for "
                  f"every proposed point, about two minutes per round at 100 samples; "
                  f"--skopt-max-samples {n_samples} runs it)")
    print_summary(results, args)
    return results


def print_table(results, methods, n_samples, seeds):
    width = max(len(label(m)) for m in methods)
    columns = "  ".join(f"{'seed ' + str(s):>10}" for s in seeds)
    print(f"{'method':<{width}}  {columns}  {'median':>10}  {'vs random':>9}  "
          f"{'time/fit':>8}  {'overhead':>8}")
    baseline = results.get(("RandomSearch", n_samples))
    baseline = statistics.median(baseline[0]) if baseline else None
    for method in methods:
        errors, times, overheads = results[method, n_samples]
        median = statistics.median(errors)
        ratio = f"{median / baseline:9.2f}" if baseline else f"{'-':>9}"
        values = "  ".join(f"{e:10.4f}" for e in errors)
        print(f"{label(method):<{width}}  {values}  {median:10.4f}  {ratio}  "
              f"{statistics.median(times):7.2f}s  {statistics.median(overheads):8.1%}")
    print("(best MSE in mV^2 after the budget; the recording noise alone gives 0.0625. "
          "overhead: ask + tell / round time, rounds 2 on, median over seeds)")


def print_summary(results, args):
    sizes = args.n_samples
    width = max(len(label(m)) for m in args.methods)
    budgets = ", ".join(f"{n} x {r}" for n, r in zip(sizes, args.n_rounds))
    print(f"\n== Summary: median over seeds {args.seeds}; samples x rounds: {budgets} ==")
    head = "  ".join(f"{f'error @{n}':>12}" for n in sizes) + "  " + \
        "  ".join(f"{f'overhead @{n}':>13}" for n in sizes)
    print(f"{'method':<{width}}  {head}")
    for method in args.methods:
        cells = []
        for n in sizes:
            found = results.get((method, n))
            cells.append(f"{statistics.median(found[0]):12.4f}" if found else f"{'-':>12}")
        for n in sizes:
            found = results.get((method, n))
            cells.append(f"{statistics.median(found[2]):13.1%}" if found else
                         f"{'-':>13}")
        print(f"{label(method):<{width}}  {'  '.join(cells)}")
    print("(error: best MSE in mV^2 after n_samples x n_rounds simulations; overhead: "
          "time in ask + tell / time of the round, ask + simulate + score + tell, "
          "rounds 2 on; '-': not run, see above)")


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
