"""A fit with SQLite storage, run as a subprocess by tests/test_storage.py.

    python tests/storage_worker.py DB STUDY N_ROUNDS [--resume] [--sleep S]
"""

import argparse
import time

import numpy as np
from brian2 import amp, mV, ms, nS, pF

from modelfit_core import Pipeline
from modelfit_core.registry.plugin_registry import Registry

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""


def recordings():
    currents = np.zeros((2, 300))
    currents[0, 30:] = 0.1e-9
    currents[1, 30:] = 0.3e-9
    t = np.arange(300) * 1e-4
    tau = 200e-12 / 10e-9
    onset = np.clip(t - 30e-4, 0, None)
    v = -70e-3 + currents / 10e-9 * (1 - np.exp(-onset / tau))
    return currents * amp, v * 1e3 * mV


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("study")
    parser.add_argument("n_rounds", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    currents, v = recordings()
    pipe = Pipeline.from_names(seed=11, feedback=None, storage=f"sqlite:///{args.db}",
                               study=args.study, registry=Registry(distributions=["modelfit-brian2"]))
    fitter = pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                               dt=0.1 * ms, n_samples=8, param_init={"v": -70 * mV},
                               namespace={"El": -70 * mV})
    pause = (lambda *a: time.sleep(args.sleep)) if args.sleep else None
    best, error = fitter.fit(n_rounds=args.n_rounds, resume=args.resume, callback=pause,
                             gl=[1 * nS, 50 * nS], C=[50 * pF, 500 * pF])
    print(f"BEST {float(best['gl'])!r} {float(best['C'])!r} {float(error)!r}")


if __name__ == "__main__":
    main()
