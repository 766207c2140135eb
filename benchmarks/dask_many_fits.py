"""Benchmark: 8 tutorial fits one after another in this process vs fit_many on a 2-worker
LocalCluster, side by side.

The TraceFitter tutorial's fit (HH model, the bundled recordings: 5 traces x 1497
steps, 100 samples per round, pymoo's DE) with seeds 1..8. Both sides
store every round in a database of their own (fit_many needs one; a plain loop
pays the same writes) and must end with the same best errors. Both sides are warm
before they are timed: this process and each worker ran one round of the fit (the
imports done, Brian's compiled code on disk and loaded); starting the cluster and
warming its workers is printed apart.

    .venv/bin/python benchmarks/dask_many_fits.py [--fits 8] [--rounds 60] [--workers 2]

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None,
                        help="folder keeping the databases (default: a temporary one)")
    return parser.parse_args()


def tutorial_fit(storage, study, seed, n_samples=100):
    """The tutorial's fitter with pymoo's DE (the default when these figures were
    measured), seeded, writing to ``storage``."""
    from brian2 import amp, mV, ms

    from modelfit_core import Pipeline
    from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset
    data = load_hh_dataset()
    pipe = Pipeline.from_names(optimizer="pymoo", seed=seed, feedback=None)
    return pipe.trace_fitter(model=HH_MODEL, input={"I": data.inputs * amp},
                             output={"v": data.outputs * mV}, dt=0.01 * ms,
                             n_samples=n_samples, method="exponential_euler",
                             param_init={"v": -65 * mV}, namespace=hh_constants(),
                             storage=storage, study=study)


def bounds():
    from brian2 import msiemens, nsiemens, psiemens, usiemens
    return dict(gl=[2 * psiemens, 200 * nsiemens], g_na=[200 * nsiemens, 0.4 * msiemens],
                g_kd=[200 * nsiemens, 200 * usiemens])


def one_after_another(args, folder: Path) -> tuple[float, list[float]]:
    storage = f"sqlite:///{folder / 'sequential.db'}"
    errors = []
    started = time.perf_counter()
    for seed in range(1, args.fits + 1):
        fitter = tutorial_fit(storage, f"tutorial/seed={seed}", seed, args.samples)
        _, error = fitter.fit(n_rounds=args.rounds, callback=None, **bounds())
        errors.append(float(error))
    return time.perf_counter() - started, errors


def warm_up(folder: str, n_samples: int) -> None:
    """One round of the fit in this process: imports done, Brian's code loaded."""
    fitter = tutorial_fit(f"sqlite:///{folder}/warm-{os.getpid()}.db", "warm", 0, n_samples)
    fitter.fit(n_rounds=1, callback=None, **bounds())


def side_by_side(args, folder: Path) -> tuple[float, float, list[float]]:
    from modelfit_core import FitJob, fit_many
    from modelfit_core.registry.plugin_registry import shared_registry
    started = time.perf_counter()
    dask = shared_registry().lookup("backends", "dask")(n_workers=args.workers)
    dask.fit_executor()  # starts the LocalCluster and Brian on its workers
    dask.client.run(warm_up, str(folder), args.samples)  # as warm as this process
    ready_s = time.perf_counter() - started
    jobs = FitJob.for_each(tutorial_fit, seed=range(1, args.fits + 1), n_samples=[args.samples],
                           n_rounds=args.rounds, fit_options=bounds())
    try:
        started = time.perf_counter()
        outcomes = fit_many(jobs, folder / "many.db", backend=dask, progress=False)
        elapsed = time.perf_counter() - started
    finally:
        dask.shutdown()
    failed = [str(o) for o in outcomes if not o.ok]
    if failed:
        raise SystemExit("\n".join(failed))
    return ready_s, elapsed, [float(o.best_error) for o in outcomes]


def main():
    args = parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="modelfit-many-fits-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warm_up(str(folder), args.samples)  # Brian's disk cache, the imports
        sequential_s, sequential_errors = one_after_another(args, folder)
        cluster_s, many_s, many_errors = side_by_side(args, folder)
    after = os.getloadavg()
    print(f"{args.fits} tutorial fits (HH, 5 traces x 1497 steps, {args.samples} samples x "
          f"{args.rounds} rounds, pymoo's DE, seeds 1..{args.fits}); load average "
          f"{load[0]:.2f} before, {after[0]:.2f} after; {os.cpu_count()} cores; identical "
          f"best errors: {sequential_errors == many_errors}")
    print(f"{'':<44}{'seconds':>10}")
    print(f"{'one after another, this process':<44}{sequential_s:>10.2f}")
    print(f"{f'fit_many, LocalCluster x{args.workers} (warm)':<44}{many_s:>10.2f}")
    print(f"{'  (starting it and warming its workers)':<44}{cluster_s:>10.2f}")
    print(f"{'ratio fit_many / one after another':<44}{many_s / sequential_s:>10.2f}")
    print(f"{'ratio with the start and warm-up':<44}"
          f"{(many_s + cluster_s) / sequential_s:>10.2f}")


if __name__ == "__main__":
    main()
