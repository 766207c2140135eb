"""Benchmark: the gradient optimizer vs differential evolution (pymoo, nevergrad).

On the problems of benchmarks/gradient_problems.py (HH tutorial, 3 parameters; HH
with 8; AdEx with resets and 9), each method fits from several seeds until it
reaches the problem's target error or spends the simulation budget. Cost is
counted in plain simulations (one parameter set on all traces); a simulation
with sensitivities counts as max(measured time ratio, 1 + n_parameters) plain
ones, the ratio measured here on the same problem, machine and number of rows.

    .venv/bin/python benchmarks/gradient_fits.py [--problems hh3 hh8 adex9]
        [--seeds 0 1 2] [--budget 10000] [--out results.jsonl]

Prints, per problem and method: success rate, median cost and wall time to the
target (over the successful seeds), the median best error at the end. Not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradient_problems import PROBLEMS

METHODS = {
    "gradient": ("gradient", {}, 8),
    "pymoo DE": ("pymoo", {"method": "DE"}, 30),
    "nevergrad DE": ("nevergrad", {"method": "DE"}, 30),
}
"""Method -> (optimizer plugin, options, points per round)."""


class FixedRandomSearch:
    """Uniform random points, exactly ``popsize`` per round (to time plain rounds)."""

    def __init__(self, seed=0):
        self.seed = seed

    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.lower = np.array([bounds[n][0] for n in parameter_names])
        self.upper = np.array([bounds[n][1] for n in parameter_names])
        self.rng = np.random.default_rng(self.seed)
        return popsize

    def ask(self, n_samples):
        return list(self.lower + self.rng.random((n_samples, len(self.lower)))
                    * (self.upper - self.lower))

    def tell(self, parameters, errors):
        pass

    def recommend(self):
        return (self.lower + self.upper) / 2


def round_seconds(problem, optimizer, n_samples: int, rounds: int = 4) -> float:
    """Median duration of a round of ``n_samples`` points (after one compiling round)."""
    from modelfit_core import TraceFitter
    fitter = TraceFitter(n_samples=n_samples, **problem.options)
    fitter.fit(n_rounds=1 + rounds, optimizer=optimizer, metric="mse", callback=None,
               **problem.bounds)
    seconds = statistics.median(r.duration_s for r in fitter.current_fit.history.rounds[1:])
    release(fitter)
    return seconds


def release(fitter) -> None:
    """Free the fitter's Brian objects, so that the next fit's group gets the same name and
    reuses the compiled code (a live group would make the next one a renamed twin)."""
    for key in fitter.problem.prepared_keys:
        fitter.problem.release(key)
    fitter.current_fit = None
    gc.collect()


def cost_ratio(problem) -> tuple[float, float]:
    """(measured time of a gradient round / a plain round of as many points, the cost
    counted per sensitivity simulation: max(ratio, 1 + p))."""
    from modelfit_plugins.optimizers.gradient_optimizer import GaussNewtonOptimizer
    n = METHODS["gradient"][2]
    plain = round_seconds(problem, FixedRandomSearch(0), n)
    gradient = round_seconds(problem, GaussNewtonOptimizer(seed=0), n)
    ratio = gradient / plain
    return ratio, max(ratio, 1 + problem.n_parameters)


def run(problem, method: str, seed: int, budget: float, unit_cost: float) -> dict:
    """One fit until the target or the budget; cost in plain simulations."""
    from modelfit_core import Pipeline
    name, options, n_samples = METHODS[method]
    pipeline = Pipeline.from_names(optimizer=name, optimizer_options=options, metric="mse",
                                   seed=seed)
    fitter = pipeline.trace_fitter(n_samples=n_samples, **problem.options)
    state = {"cost": 0.0, "reached": None, "best": np.inf}
    started = time.perf_counter()

    def feedback(params, errors, best_params, best_error, index, additional_info=None):
        state["cost"] += len(errors) * unit_cost
        state["best"] = min(state["best"], float(np.min(errors)))
        if state["reached"] is None and state["best"] <= problem.target:
            state["reached"] = (state["cost"], time.perf_counter() - started)
        return state["reached"] is not None or state["cost"] >= budget

    fitter.fit(n_rounds=10 ** 6, callback=feedback, **problem.bounds)
    release(fitter)
    reached = state["reached"]
    return {"problem": problem.name, "method": method, "seed": seed,
            "solved": reached is not None,
            "cost": reached[0] if reached else None,
            "wall_s": reached[1] if reached else None,
            "spent": state["cost"], "best_error": state["best"],
            "total_wall_s": time.perf_counter() - started}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(3)))
    parser.add_argument("--budget", type=float, default=10_000)
    parser.add_argument("--out", default=None, help="append each run as a JSON line")
    parser.add_argument("--gradient-samples", type=int, default=METHODS["gradient"][2],
                        help="starts per round of the gradient optimizer")
    args = parser.parse_args()
    METHODS["gradient"] = (*METHODS["gradient"][:2], args.gradient_samples)
    table = []
    for name in args.problems:
        problem = PROBLEMS[name]()
        ratio, unit = cost_ratio(problem) if "gradient" in args.methods else (1.0, 1.0)
        print(f"\n{name}: {problem.n_parameters} parameters, target {problem.target:.3g} V²; "
              f"gradient round / plain round of as many points: {ratio:.2f} x, counted as "
              f"{unit:.1f} simulations per point", flush=True)
        for method in args.methods:
            runs = []
            for seed in args.seeds:
                result = run(problem, method, seed, args.budget,
                             unit if method == "gradient" else 1.0)
                result["time_ratio"] = ratio if method == "gradient" else 1.0
                runs.append(result)
                print(f"  {method:<13} seed {seed}: "
                      + (f"target at cost {result['cost']:.0f} ({result['wall_s']:.1f} s)"
                         if result["solved"] else
                         f"not reached (best {result['best_error']:.3g} after "
                         f"{result['spent']:.0f})"), flush=True)
                if args.out:
                    with open(args.out, "a") as out:
                        out.write(json.dumps(result) + "\n")
            solved = [r for r in runs if r["solved"]]
            table.append((name, method, len(solved), len(runs),
                          statistics.median(r["cost"] for r in solved) if solved else None,
                          statistics.median(r["wall_s"] for r in solved) if solved else None,
                          statistics.median(r["best_error"] for r in runs)))
    print(f"\n{'problem':<7} {'method':<13} {'solved':>7} {'median cost':>12} "
          f"{'median wall s':>14} {'median best error':>18}")
    for name, method, solved, total, cost, wall, best in table:
        print(f"{name:<7} {method:<13} {solved:>3}/{total:<3} "
              f"{'-' if cost is None else f'{cost:.0f}':>12} "
              f"{'-' if wall is None else f'{wall:.1f}':>14} {best:>18.3g}")


if __name__ == "__main__":
    main()
