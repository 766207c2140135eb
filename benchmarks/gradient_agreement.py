"""Benchmark: the gradient of the error from sensitivities vs finite differences.

For each problem of benchmarks/gradient_problems.py, at the ground truth moved by
a random offset (a few seeds), the analytic gradient (one gradient round) is
compared to central differences of the error, per parameter; for the spiking
AdEx model (at dt = 5 µs) also without the shift of spike times in the
sensitivities' jumps.

    .venv/bin/python benchmarks/gradient_agreement.py [--problems hh3 hh8 adex9]

Not a test: it prints figures, it asserts nothing (tests/test_gradient_fits.py
checks agreement on small models).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradient_problems import FINE, PROBLEMS

STEPS = {"hh3": 1e-6, "hh8": 1e-6, "adex9": 2e-3}
"""Finite-difference step (fraction of each range): small for smooth models; for
spiking ones large enough to move spikes by many time steps, so that the difference
sees the smooth dependence of spike times rather than the staircase of the grid."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--offset", type=float, default=0.05,
                        help="largest distance from the truth, as a fraction of each range")
    args = parser.parse_args()
    from modelfit_core import MSEMetric, TraceFitter
    from modelfit_core.tools.gradient_checks import check_gradient

    for name in args.problems:
        problem = FINE.get(name, PROBLEMS[name])()
        fitter = TraceFitter(n_samples=1, **problem.options)
        rng = np.random.default_rng(0)
        variants = [("with spike jumps", True), ("reset only", False)] \
            if problem.options.get("reset") else [("smooth model", True)]
        for label, jumps in variants:
            differences = []
            for _ in range(args.points):
                point = {}
                for key, (low, high) in problem.bounds.items():
                    width = high - low
                    value = problem.truth[key] + rng.uniform(-1, 1) * args.offset * width
                    point[key] = min(max(value, low + 0.01 * width), high - 0.01 * width)
                check = check_gradient(fitter, point, problem.bounds, metric=MSEMetric(),
                                       step=STEPS[name], spike_jumps=jumps)
                differences.append(check.relative_difference)
                print(f"\n{name} ({label}), error {check.error:.4g} V²:")
                print(check.table())
            table = np.array(differences)
            print(f"\n== {name} ({label}): relative difference over {args.points} points: "
                  f"median {np.median(table):.2e}, range {table.min():.2e} .. "
                  f"{table.max():.2e}")


if __name__ == "__main__":
    main()
