"""A fit with SQLite storage, run as a subprocess by the storage and interruption tests.

    python tests/storage_worker.py DB STUDY N_ROUNDS [--resume] [--sleep S] [--pickle]
        [--catch-interrupt] [--steps N] [--online] [--codegen numpy] [--announce]
        [--gl-upper NS] [--n-samples N] [--seed S] [--tau-model]

Prints ``FITTING`` when the fit starts, ``SIMULATING`` (with --announce) once a
simulation runs (Brian's ``Network._globally_running``), and ``BEST gl C error``
at the end. With --catch-interrupt, a KeyboardInterrupt prints ``INTERRUPTED
rounds best...`` and ``REASON message`` (after checking that the fitter is still
usable) and exits 130.
"""

import argparse
import sys
import threading
import time

import numpy as np
from brian2 import Network, amp, mV, ms, nS, pF

from modelfit_core import Pipeline
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.storage import FitStore

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
INTERRUPTED_EXIT = 130


def recordings(n_steps=300):
    currents = np.zeros((2, n_steps))
    currents[0, 30:] = 0.1e-9
    currents[1, 30:] = 0.3e-9
    t = np.arange(n_steps) * 1e-4
    tau = 200e-12 / 10e-9
    onset = np.clip(t - 30e-4, 0, None)
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-onset / tau))
    return currents * amp, v * 1e3 * mV


def announce_simulations():
    """Print SIMULATING once Brian runs a simulation, so that a test can signal then."""
    while not Network._globally_running:
        time.sleep(0.001)
    print("SIMULATING", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("study")
    parser.add_argument("n_rounds", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--pickle", action="store_true")
    parser.add_argument("--catch-interrupt", action="store_true")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--online", action="store_true")
    parser.add_argument("--codegen", default=None)
    parser.add_argument("--announce", action="store_true")
    parser.add_argument("--gl-upper", type=float, default=50.0)
    parser.add_argument("--n-samples", type=int, default=30)  # a DE population
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    currents, v = recordings(args.steps)
    storage = FitStore(args.db, args.study, pickle_optimizer=True) if args.pickle \
        else f"sqlite:///{args.db}"
    backend_options = {"codegen_target": args.codegen} if args.codegen else None
    pipe = Pipeline.from_names(seed=args.seed, feedback=None, storage=storage,
                               study=args.study, backend_options=backend_options,
                               registry=Registry(distributions=["modelfit-brian2"]))
    fitter = pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                               dt=0.1 * ms, n_samples=args.n_samples,
                               param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
    pause = (lambda *a: time.sleep(args.sleep)) if args.sleep else None
    if args.announce:
        threading.Thread(target=announce_simulations, daemon=True).start()
    print("FITTING", flush=True)
    extra = {"online_error": True} if args.online else {}
    try:
        best, error = fitter.fit(n_rounds=args.n_rounds, resume=args.resume, callback=pause,
                                 gl=[1 * nS, args.gl_upper * nS], C=[50 * pF, 500 * pF],
                                 **extra)
    except KeyboardInterrupt as exc:
        if not args.catch_interrupt:
            raise  # (Brian's excepthook prints no traceback; the exit status is -SIGINT)
        print(f"REASON {exc}", flush=True)
        rounds = len(fitter.history.rounds)
        assert rounds == len(fitter.history.rounds)
        best = fitter.best_params
        shown = "none" if best is None else f"{float(best['gl'])!r} {float(best['C'])!r}"
        print(f"INTERRUPTED {rounds} {shown}", flush=True)
        sys.exit(INTERRUPTED_EXIT)
    print(f"BEST {float(best['gl'])!r} {float(best['C'])!r} {float(error)!r}")


if __name__ == "__main__":
    main()
