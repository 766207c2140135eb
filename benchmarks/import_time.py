#!/usr/bin/env python
"""Benchmark: what importing modelfit costs beyond importing Brian 2.

Every measurement runs in a fresh Python process (``python -c CODE``, where
CODE times itself with ``time.perf_counter()`` and prints one line of JSON), so
nothing is cached in memory between repeats; the medians over ``--repeats``
processes are printed side by side (one untimed warm-up process per kind first,
so that every timed one finds the ``.pyc`` files written and the disk cache warm).

Measured (seconds, medians):

1. ``import brian2`` alone;
2. ``from modelfit_core import *`` after ``import brian2`` in the same
   process, i.e. modelfit's import cost beyond Brian's;
3. ``from modelfit_core import Pipeline; Pipeline.from_names()`` with its
   defaults, timed separately after (2);
4. (2) + (3): modelfit's own cost beyond Brian;
5. the command ``modelfit plugins`` (``python -m modelfit_core plugins``) as a
   whole process, wall time, next to a bare ``python -c pass`` process;
6. which heavy optional libraries are in ``sys.modules`` after (2) + (3)
   (nevergrad, skopt, sklearn, efel, sbi, torch, dask, distributed, pandas,
   matplotlib; the goal is none);
7. the reference package brian2modelfitting, if its virtual environment exists
   (``bash benchmarks/setup_reference_venv.sh`` creates ``.refvenv``):
   ``import brian2`` and ``from brian2modelfitting import *`` timed there the
   same way, and the ratio modelfit / reference of the import cost beyond Brian.

The last line says whether the target is met: modelfit's import + default
Pipeline <= 0.3 s beyond Brian's import.

    .venv/bin/python benchmarks/import_time.py [--repeats 5]
        [--reference-python .refvenv/bin/python] [--skip-reference]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3
LIBRARIES = ("nevergrad", "skopt", "sklearn", "efel", "sbi", "torch", "dask", "distributed",
             "pandas", "matplotlib")

# Each CODE prints exactly one JSON line last on stdout (Brian may log to stderr).
MODELFIT_CODE = f"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import brian2
t1 = time.perf_counter()
by_brian = [m for m in {LIBRARIES!r} if m in sys.modules]
from modelfit_core import *
t2 = time.perf_counter()
from modelfit_core import Pipeline
Pipeline.from_names()
t3 = time.perf_counter()
print(json.dumps({{"brian2": t1 - t0, "star": t2 - t1, "pipeline": t3 - t2,
                  "brian2_version": brian2.__version__, "by_brian": by_brian,
                  "loaded": [m for m in {LIBRARIES!r} if m in sys.modules]}}))
"""

REFERENCE_CODE = f"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import brian2
t1 = time.perf_counter()
from brian2modelfitting import *
t2 = time.perf_counter()
import brian2modelfitting
print(json.dumps({{"brian2": t1 - t0, "star": t2 - t1,
                  "brian2_version": brian2.__version__,
                  "version": getattr(brian2modelfitting, "__version__", "?"),
                  "loaded": [m for m in {LIBRARIES!r} if m in sys.modules]}}))
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="fresh processes per measurement; medians are printed (default 5)")
    parser.add_argument("--reference-python", default=str(ROOT / ".refvenv" / "bin" / "python"),
                        help="python of the reference venv (default .refvenv/bin/python)")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run_code(python: str, code: str) -> dict:
    """Run ``python -c code`` in a fresh process; return its JSON line."""
    result = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env=_environment(), timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{python} -c ... failed (exit {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def process_wall(argv: list[str]) -> tuple[float, int]:
    """Wall time of a whole process (start to exit) and its exit status."""
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_environment(), timeout=600)
    return time.perf_counter() - started, result.returncode


def median(values):
    return statistics.median(values) if values else float("nan")


def fmt(value) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.3f}"


def main() -> int:
    args = parse_args()
    python = sys.executable
    reference = None if args.skip_reference else Path(args.reference_python)
    reference_note = None
    if reference is not None and not reference.exists():
        reference_note = (f"reference: {reference} not found; create it with "
                          f"`bash benchmarks/setup_reference_venv.sh` (or pass "
                          f"--reference-python) to compare with brian2modelfitting; skipped")
        reference = None
    elif reference is None:
        reference_note = "reference: skipped (--skip-reference)"

    plugins_argv = [python, "-m", "modelfit_core", "plugins"]
    bare_argv = [python, "-c", "pass"]

    # warm-up (untimed): .pyc files written, disk cache warm, Brian's caches found
    print(f"warming up ({python}) ...", file=sys.stderr, flush=True)
    run_code(python, MODELFIT_CODE)
    process_wall(plugins_argv)
    if reference is not None:
        try:
            run_code(str(reference), REFERENCE_CODE)
        except RuntimeError as exc:
            reference_note = f"reference: failed, skipped:\n{exc}"
            reference = None

    mf, ref, bare, plugins, plugins_rc = [], [], [], [], set()
    for k in range(args.repeats):
        print(f"repeat {k + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        mf.append(run_code(python, MODELFIT_CODE))
        if reference is not None:
            ref.append(run_code(str(reference), REFERENCE_CODE))
        bare.append(process_wall(bare_argv)[0])
        wall, rc = process_wall(plugins_argv)
        plugins.append(wall)
        plugins_rc.add(rc)

    m_brian = median([r["brian2"] for r in mf])
    m_star = median([r["star"] for r in mf])
    m_pipe = median([r["pipeline"] for r in mf])
    m_own = median([r["star"] + r["pipeline"] for r in mf])
    r_brian = median([r["brian2"] for r in ref]) if ref else None
    r_star = median([r["star"] for r in ref]) if ref else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if (a is not None and b) else "-"

    header = (f"{'seconds (median of ' + str(args.repeats) + ' fresh processes)':<52}"
              f"{'modelfit':>10}{'reference':>11}{'ratio':>8}")
    print()
    print(f"modelfit: brian2 {mf[0]['brian2_version']}, python {sys.version.split()[0]}"
          + (f"; reference: brian2modelfitting {ref[0]['version']}, brian2 "
             f"{ref[0]['brian2_version']}" if ref else ""))
    print(header)
    print("-" * len(header))
    rows = [
        ("1. import brian2", m_brian, r_brian, ratio(m_brian, r_brian)),
        ("2. from <package> import * (after brian2)", m_star, r_star, ratio(m_star, r_star)),
        ("3. Pipeline.from_names() (defaults, after 2)", m_pipe, None, ""),
        ("4. modelfit's own cost beyond Brian (2+3)", m_own, r_star, ratio(m_own, r_star)),
        ("5. process: python -m modelfit_core plugins", median(plugins), None, ""),
        ("   process: python -c pass", median(bare), None, ""),
        ("   difference (plugins command - bare python)", median(plugins) - median(bare),
         None, ""),
    ]
    for label, a, b, r in rows:
        print(f"{label:<52}{fmt(a):>10}{fmt(b):>11}{r:>8}")
    if plugins_rc != {0}:
        print(f"   (note: `modelfit plugins` exit status {sorted(plugins_rc)})")
    print()
    loaded = sorted({m for r in mf for m in r["loaded"]})
    by_brian = sorted({m for r in mf for m in r["by_brian"]})
    shown = [f"{m} (already loaded by import brian2)" if m in by_brian else m for m in loaded]
    print(f"6. heavy libraries in sys.modules after (2)+(3): "
          f"{', '.join(shown) if shown else 'none'}")
    print(f"   checked: {', '.join(LIBRARIES)}; loaded by modelfit beyond Brian: "
          f"{', '.join(m for m in loaded if m not in by_brian) or 'none'}")
    if ref:
        ref_loaded = sorted({m for r in ref for m in r["loaded"]})
        print(f"   reference, after its star import: {', '.join(ref_loaded) or 'none'}")
    print()
    if ref:
        print(f"7. import cost beyond Brian, modelfit / reference: {ratio(m_star, r_star)} "
              f"(star import only: {fmt(m_star)} s vs {fmt(r_star)} s); "
              f"{ratio(m_own, r_star)} with the default Pipeline "
              f"({fmt(m_own)} s vs {fmt(r_star)} s)")
    else:
        print("7. " + reference_note)
    print()
    met = "met" if m_own <= TARGET_S else "not met"
    print(f"target: modelfit's import + default Pipeline <= {TARGET_S} s beyond Brian's "
          f"import: {met} ({m_own:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
