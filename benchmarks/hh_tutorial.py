"""Benchmark: the TraceFitter tutorial fit, modelfit vs brian2modelfitting, side by side.

The seed-002 fit (HH model, 5 traces x 1497 steps at dt = 0.01 ms,
n_samples=100, 10 rounds, nevergrad DE, MSE) timed for modelfit in this
process and for the reference package in its own virtual environment
(``bash benchmarks/setup_reference_venv.sh`` creates ``.refvenv``), for a few
seeds, each fit in a fresh process after one warm-up fit per side, so that
both find Brian's Cython cache on disk warm and neither has it in memory.

    .venv/bin/python benchmarks/hh_tutorial.py [--data-dir DIR] [--seeds 1 2 3]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = ROOT.parent / "shared" / "data"
    parser.add_argument("--data-dir", default=str(shared) if shared.exists() else None,
                        help="tutorial CSV folder (default ../shared/data, else bundled data)")
    parser.add_argument("--n-samples", type=int, default=100)
    parser.add_argument("--n-rounds", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--backend", default="runtime")
    parser.add_argument("--reference-python", default=str(ROOT / ".refvenv" / "bin" / "python"))
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--worker-seed", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def modelfit_fit(data_dir, n_samples, n_rounds, seed, backend):
    """One tutorial fit with modelfit; returns timings and the final error."""
    from brian2 import amp, mV, ms, msiemens, nsiemens, psiemens, usiemens

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset

    dataset = load_hh_dataset(data_dir)
    stamps = []
    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", backend=backend,
                               feedback=lambda *args: stamps.append(time.perf_counter()),
                               seed=seed)
    fitter = pipe.trace_fitter(model=HH_MODEL, input={"I": dataset.inputs * amp},
                               output={"v": dataset.outputs * mV}, dt=0.01 * ms,
                               n_samples=n_samples, method="exponential_euler",
                               param_init={"v": -65 * mV}, namespace=hh_constants())
    started = time.perf_counter()
    _, error = fitter.fit(n_rounds=n_rounds, gl=[2 * psiemens, 200 * nsiemens],
                          g_na=[200 * nsiemens, 0.4 * msiemens],
                          g_kd=[200 * nsiemens, 200 * usiemens])
    total = time.perf_counter() - started
    rounds = [b - a for a, b in zip([started] + stamps[:-1], stamps)]
    n_traces, n_steps = dataset.inputs.shape
    return {"total_s": total, "round_s": rounds, "first_round_s": rounds[0],
            "later_round_mean_s": statistics.mean(rounds[1:]) if len(rounds) > 1 else None,
            "best_error": float(error), "n_traces": n_traces, "n_steps": n_steps}


def modelfit_fit_in_new_process(data_dir, n_samples, n_rounds, seed, backend):
    """Like the reference, each fit runs in a fresh process (Cython disk cache warm)."""
    command = [sys.executable, __file__, "--data-dir", str(data_dir), "--n-samples",
               str(n_samples), "--n-rounds", str(n_rounds), "--backend", backend,
               "--worker-seed", str(seed)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def reference_fit(python, data_dir, n_samples, n_rounds, seed):
    command = [python, str(ROOT / "benchmarks" / "reference_hh_fit.py"), "--data-dir",
               str(data_dir), "--n-samples", str(n_samples), "--n-rounds", str(n_rounds),
               "--seed", str(seed)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def summarize(runs):
    pick = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {"total_s": pick("total_s"), "first_round_s": pick("first_round_s"),
            "later_round_mean_s": pick("later_round_mean_s"), "best_error": pick("best_error"),
            "n_traces": runs[0]["n_traces"], "n_steps": runs[0]["n_steps"]}


def main():
    args = parse_args()
    from modelfit_core.tools.datasets import DATA_DIR
    data_dir = args.data_dir or str(DATA_DIR)
    if args.worker_seed is not None:
        result = modelfit_fit(data_dir, args.n_samples, args.n_rounds, args.worker_seed,
                              args.backend)
        print(json.dumps(result))
        return 0
    print(f"data: {data_dir}; {args.n_samples} samples x {args.n_rounds} rounds; "
          f"seeds {args.seeds}; backend {args.backend}")
    modelfit_fit_in_new_process(data_dir, args.n_samples, 1, 0, args.backend)  # warm-up
    ours = summarize([modelfit_fit_in_new_process(data_dir, args.n_samples, args.n_rounds, s,
                                                  args.backend) for s in args.seeds])
    reference = None
    if not args.skip_reference and Path(args.reference_python).exists():
        reference_fit(args.reference_python, data_dir, args.n_samples, 1, 0)  # warm-up
        reference = summarize([reference_fit(args.reference_python, data_dir, args.n_samples,
                                             args.n_rounds, s) for s in args.seeds])
    elif not args.skip_reference:
        print(f"(reference not found at {args.reference_python}: run "
              f"'bash benchmarks/setup_reference_venv.sh' to compare)")

    neuron_steps = args.n_samples * ours["n_traces"] * ours["n_steps"]
    rows = [("whole fit (s)", "total_s", "{:.3f}"),
            ("first round (s, code generation)", "first_round_s", "{:.3f}"),
            ("later rounds, mean (s)", "later_round_mean_s", "{:.3f}"),
            ("final error (V^2, median)", "best_error", "{:.3g}")]
    header = f"{'median over seeds':<36}{'modelfit':>12}"
    if reference:
        header += f"{'b2modelfitting':>16}{'ratio':>9}"
    print(header)
    for label, key, fmt in rows:
        line = f"{label:<36}{fmt.format(ours[key]):>12}"
        if reference:
            line += f"{fmt.format(reference[key]):>16}{ours[key] / reference[key]:>9.2f}"
        print(line)
    later = ours["later_round_mean_s"]
    line = f"{'neuron-steps per second (later)':<36}{neuron_steps / later:>12.3g}"
    if reference:
        theirs = neuron_steps / reference["later_round_mean_s"]
        line += f"{theirs:>16.3g}{(neuron_steps / later) / theirs:>9.2f}"
    print(line)


if __name__ == "__main__":
    sys.exit(main())
