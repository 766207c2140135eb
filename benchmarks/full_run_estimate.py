"""Benchmark planning: how long the full suite takes, from a measured result folder.

The full run is ``modelfit benchmark`` with its defaults: every problem, the
default and every installed single-objective optimizer with the methods it lists,
each also ``+refine``, 10 seeds, each problem's own budget. This lists that
plan (nothing is simulated) and prices each run with what FOLDER measured:

* the seconds per plain simulation of its (problem, method) in FOLDER (the
  rounds' own seconds over their simulation cost, median over seeds); for a
  method FOLDER did not run on that problem, the median over the methods it
  did run there (marked ``~``: that method's own optimizer time is missing);
* plus the problem's median set-up seconds (the first build of a run).

It prints per problem the CPU seconds and the total, and the wall time on N
workers if runs keep every worker busy side by side (``--backend dask``; the
many-fits benchmark measured 0.47-0.55 of the sequential time on 2 workers).

    .venv/bin/python benchmarks/full_run_estimate.py FOLDER [--workers 2 16 64]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def measured_rates(folder: Path) -> tuple[dict, dict]:
    """(problem, method) -> median seconds per plain simulation (0 for a method that
    refused the problem: it simulates nothing); problem -> median set-up seconds, from
    FOLDER's results.json."""
    document = json.loads((folder / "results.json").read_text())
    per_simulation, setups = defaultdict(list), defaultdict(list)
    for run in document["runs"]:
        if run["status"] == "refused":
            per_simulation[run["problem"], run["method"]].append(0.0)
            continue
        if not run["evaluations"]:
            continue
        method = run["method"]
        per_simulation[run["problem"], method].append(run["seconds"][-1]
                                                      / run["evaluations"][-1])
        if run["status"] == "ran":
            setups[run["problem"]].append(run["setup_seconds"])
    return ({key: statistics.median(v) for key, v in per_simulation.items()},
            {key: statistics.median(v) for key, v in setups.items()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a result folder of modelfit benchmark")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()

    from modelfit_core.registry.plugin_registry import shared_registry
    from modelfit_core.tools.benchmarking.plan import make_plan

    rates, setups = measured_rates(args.folder)
    plan = make_plan(shared_registry(), seeds=args.seeds, output="/tmp/full_run_estimate")
    cpu: dict[str, float] = defaultdict(float)
    simulations: dict[str, int] = defaultdict(int)
    guessed: set[str] = set()
    longest = (0.0, "")
    refined = sum(run.refine_evaluations for run in plan.runs)
    for run in plan.runs:
        label = run.method.label.replace("+refine", "")
        rate = rates.get((run.problem, label))
        if rate is None:
            known = [r for (problem, _), r in rates.items() if problem == run.problem]
            if not known:
                raise SystemExit(f"{args.folder} holds no run of the problem {run.problem!r}")
            rate = statistics.median(known)
            guessed.add(run.method.label)
        seconds = run.budget * rate + setups.get(run.problem, 0.0)
        cpu[run.problem] += seconds
        simulations[run.problem] += run.budget
        longest = max(longest, (seconds, run.study))
    total = sum(cpu.values())
    print(f"The full run: {len(plan.runs)} runs ({len(plan.methods)} methods x "
          f"{len(plan.seeds)} seeds x {len(plan.problems)} problems), "
          f"{sum(simulations.values()):,} plain simulations")
    print(f"{'problem':<24}{'simulations':>14}{'CPU s':>10}")
    for problem in plan.problems:
        print(f"{problem:<24}{simulations[problem]:>14,}{cpu[problem]:>10.0f}")
    print(f"{'total':<24}{sum(simulations.values()):>14,}{total:>10.0f}"
          f"  ({total / 3600:.1f} CPU hours)")
    for workers in args.workers:
        print(f"on {workers:>3} workers: {max(total / workers, longest[0]) / 60:7.1f} min")
    print(f"the longest run, which no number of workers shortens: {longest[1]}, "
          f"{longest[0]:.0f} s")
    print(f"of which refine()'s: {refined:,} simulations, priced as the search's, though "
          f"least squares simulates them one at a time (an underestimate)")
    if guessed:
        print(f"~ priced at the median of the measured methods of each problem (their own "
              f"optimizer time is missing): {', '.join(sorted(guessed))}")


if __name__ == "__main__":
    main()
