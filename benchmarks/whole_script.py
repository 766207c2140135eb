"""Benchmark: the manual's tutorial as a whole script, modelfit vs brian2modelfitting.

Each run is a fresh ``python benchmarks/tutorial_script.py`` process (imports,
data, fitter, 10 rounds of 100 samples, generate_traces), alternating
modelfit (this environment) and the reference (brian2modelfitting in
``.refvenv``, made by ``benchmarks/setup_reference_venv.sh``). Two settings:

* warm caches: one untimed run per side first, so Brian's Cython cache (and
  modelfit's code cache) on disk hold the compiled model;
* empty caches (a new machine): every run gets new, empty cache folders (Brian's
  Cython cache, and modelfit's code cache through ``MODELFIT_CACHE_DIR``), one
  set per side.

The table gives medians per phase (imports, data and construction, first
round, later rounds, generate, process wall time) and the ratio
modelfit/reference, then the first round over a later round (the median of
each run's ratio). ``--import-optimizer-first`` imports nevergrad with the
package (brian2modelfitting does; modelfit imports it in the first round), so
that the first round is compared without it.

    .venv/bin/python benchmarks/whole_script.py [--repeats 5] [--cold-repeats 3]
                                                [--import-optimizer-first] [--no-code-cache]

``--no-code-cache`` runs modelfit without its code cache (``MODELFIT_CACHE=off``),
as it ran before the cache existed.

A third process per warm run, ``benchmarks/floor_script.py``, does the same
simulations with Brian alone; the floor table adds up what no fitting package
avoids (Brian's import, the data phase, the seconds spent in Brian's compiled
code) and shows how far modelfit is above it.

Not a test: it prints, it asserts nothing. A default run takes about five
minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "tutorial_script.py"
FLOOR_SCRIPT = ROOT / "benchmarks" / "floor_script.py"
PHASES = [("imports", "started", "package"), ("data + construction", "package", "construction"),
          ("first round", "construction", "first_round"),
          ("later rounds (9)", "first_round", "later_rounds"),
          ("generate_traces", "later_rounds", "generate")]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="warm-cache runs per side")
    parser.add_argument("--cold-repeats", type=int, default=3,
                        help="empty-cache runs per side (0 to skip)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--reference-python", default=str(ROOT / ".refvenv" / "bin" / "python"))
    parser.add_argument("--n-rounds", type=int, default=10)
    parser.add_argument("--import-optimizer-first", action="store_true",
                        help="import nevergrad with the package, before the first round")
    parser.add_argument("--modelfit-optimizer", choices=["nevergrad", "pymoo", "default"],
                        default="nevergrad", help="modelfit's side: the tutorial's "
                        "NevergradOptimizer(), PymooOptimizer('DE'), or fit() without "
                        "optimizer= (for this fit the gradient optimizer)")
    parser.add_argument("--no-code-cache", action="store_true",
                        help="run modelfit with MODELFIT_CACHE=off (as before its code cache)")
    return parser.parse_args()


def run_once(python: str, package: str, args, cache: Path | None) -> dict:
    if package == "floor":
        command = [python, str(FLOOR_SCRIPT), "--data-dir", args.data_dir,
                   "--n-rounds", str(args.n_rounds)]
    else:
        command = [python, str(SCRIPT), "--package", package, "--data-dir", args.data_dir,
                   "--n-rounds", str(args.n_rounds)]
    if args.import_optimizer_first and package != "floor":
        command.append("--import-optimizer-first")
    if package == "modelfit":
        command += ["--optimizer", args.modelfit_optimizer]
    env = dict(os.environ)
    if args.no_code_cache:
        env["MODELFIT_CACHE"] = "off"
    if cache is not None:  # empty folders of this side's own
        command += ["--cython-cache-dir", str(cache / package / "cython")]
        env["MODELFIT_CACHE_DIR"] = str(cache / package / "modelfit")
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env,
                               cwd=ROOT, timeout=900)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{package} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def phase_times(result: dict) -> dict[str, float]:
    marks = result["marks"]
    times = {name: marks[end] - marks[start] for name, start, end in PHASES}
    times["in the script"] = marks["generate"]
    times["whole process"] = result["wall"]
    return times


def first_round_ratio(results: list[dict]) -> float:
    """Median over runs of the first round's time over a later round's (their mean)."""
    ratios = []
    for result in results:
        times = phase_times(result)
        later = times["later rounds (9)"] / max(result["n_rounds"] - 1, 1)
        ratios.append(times["first round"] / later)
    return statistics.median(ratios)


def medians(results: list[dict]) -> dict[str, float]:
    per_phase = [phase_times(r) for r in results]
    return {name: statistics.median(t[name] for t in per_phase) for name in per_phase[0]}


def table(title: str, ours: dict, theirs: dict | None) -> None:
    print(f"\n{title}")
    print(f"{'seconds (median)':<26}{'modelfit':>10}{'reference':>11}{'ratio':>8}")
    print("-" * 55)
    for name, value in ours.items():
        if theirs is None:
            print(f"{name:<26}{value:>10.3f}{'-':>11}{'-':>8}")
            continue
        ratio = value / theirs[name] if theirs[name] > 0 else float("nan")
        print(f"{name:<26}{value:>10.3f}{theirs[name]:>11.3f}{ratio:>8.2f}")


def ratios(ours: list[dict], theirs: list[dict]) -> None:
    print(f"first round / later round (median of runs): modelfit {first_round_ratio(ours):.2f}"
          + (f", reference {first_round_ratio(theirs):.2f}" if theirs else ""))


def floor_table(floors: list[dict], ours: dict, theirs: dict | None, n_rounds: int) -> None:
    """What no fitting package can avoid: Brian's import, the script's data phase and
    the simulations themselves (seconds in Brian's compiled code, floor_script.py)."""
    parts = {
        "import brian2": statistics.median(r["marks"]["brian"] for r in floors),
        "data + network": statistics.median(r["marks"]["construction"] - r["marks"]["package"]
                                            for r in floors),
        f"simulation ({n_rounds} runs)": n_rounds * statistics.median(
            statistics.median(r["simulated"]) for r in floors),
    }
    floor = sum(parts.values())
    print("\nThe floor (Brian alone: floor_script.py; medians)")
    for name, value in parts.items():
        print(f"{name:<26}{value:>10.3f}")
    print(f"{'floor':<26}{floor:>10.3f}" + (f"   {floor / theirs['whole process']:.2f} x the "
                                             f"reference" if theirs else ""))
    print(f"{'modelfit above the floor':<26}{ours['whole process'] - floor:>10.3f}")


def series(args, python_ref, repeats: int, cold: bool, floors: list | None = None
           ) -> tuple[list, list]:
    ours, theirs = [], []
    for k in range(repeats):
        with tempfile.TemporaryDirectory(prefix="modelfit-bench-") as folder:
            cache = Path(folder) if cold else None
            ours.append(run_once(sys.executable, "modelfit", args, cache))
            if python_ref:
                theirs.append(run_once(python_ref, "reference", args, cache))
            if floors is not None:
                floors.append(run_once(sys.executable, "floor", args, cache))
        print(f"  {'cold' if cold else 'warm'} run {k + 1}/{repeats}: modelfit "
              f"{ours[-1]['wall']:.2f} s" +
              (f", reference {theirs[-1]['wall']:.2f} s" if theirs else ""), flush=True)
    return ours, theirs


def main():
    args = parse_args()
    python_ref = args.reference_python if Path(args.reference_python).exists() else None
    if python_ref is None:
        print(f"no reference environment at {args.reference_python}: run "
              f"`bash benchmarks/setup_reference_venv.sh` to compare; modelfit alone")
    print("warming up the caches (one untimed run per side) ...", flush=True)
    run_once(sys.executable, "modelfit", args, None)
    if python_ref:
        run_once(python_ref, "reference", args, None)
    run_once(sys.executable, "floor", args, None)
    floors = []
    ours, theirs = series(args, python_ref, args.repeats, cold=False, floors=floors)
    table(f"Warm caches: {args.repeats} alternating fresh processes per side", medians(ours),
          medians(theirs) if theirs else None)
    ratios(ours, theirs)
    floor_table(floors, medians(ours), medians(theirs) if theirs else None, args.n_rounds)
    errors = (statistics.median(r["error"] for r in ours),
              statistics.median(r["error"] for r in theirs) if theirs else float("nan"))
    print(f"final error (V^2, median): modelfit {errors[0]:.3g}, reference {errors[1]:.3g}")
    if args.cold_repeats:
        cold_ours, cold_theirs = series(args, python_ref, args.cold_repeats, cold=True)
        table(f"Empty caches (new Cython and modelfit cache folders for every run): "
              f"{args.cold_repeats} runs per side", medians(cold_ours),
              medians(cold_theirs) if cold_theirs else None)
        ratios(cold_ours, cold_theirs)
    if theirs:
        ratio = medians(ours)["whole process"] / medians(theirs)["whole process"]
        print(f"\ntarget: whole process <= 0.25 x the reference (warm): "
              f"{'met' if ratio <= 0.25 else 'not met'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
