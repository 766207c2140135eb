"""Benchmark: the gradient optimizer at its own 4 starts per round against the problems'
n_samples starts, beside pymoo's DE, on the suite's MSE trace problems.

The suite runs the gradient optimizer with 4 starts per round (its class attribute
``suite_n_samples``); a default optimizer would have to honour the fitter's
``n_samples`` (20-50 in the suite's problems, 100 in the tutorial). This runs the
suite twice, the second time with ``suite_n_samples`` switched off in this process
(so sequentially: a dask worker would import the class afresh), and prints the
ECDF areas side by side (``modelfit benchmark --compare``).

    .venv/bin/python benchmarks/gradient_starts.py [--seeds 3] [--budget 2000]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse

MSE_TRACE_PROBLEMS = ["passive", "hh_tutorial", "hh_8", "adex", "ca1_one_compartment",
                      "ca1_two_compartments"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--output", default="output/gradient_starts")
    parser.add_argument("--backend", default=None, help="for the first run (e.g. dask)")
    args = parser.parse_args()
    from modelfit_core.tools.benchmarking.suite import compare_folders, run_benchmark
    from modelfit_plugins.optimizers.gradient_optimizer import GaussNewtonOptimizer
    own = f"{args.output}/four_starts"
    run_benchmark(problems=MSE_TRACE_PROBLEMS, optimizers=["pymoo:DE", "gradient"],
                  seeds=args.seeds, budget=args.budget, output=own, backend=args.backend,
                  progress=False)
    GaussNewtonOptimizer.suite_n_samples = None  # the problems' n_samples, as a default
    problems = f"{args.output}/problem_starts"
    run_benchmark(problems=MSE_TRACE_PROBLEMS, optimizers=["gradient"], seeds=args.seeds,
                  budget=args.budget, output=problems, progress=False)
    print(compare_folders(own, problems))


if __name__ == "__main__":
    main()
