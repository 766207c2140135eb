"""A long C++ standalone simulation, run several times and interrupted by
tests/test_interruptions.py.

    python tests/standalone_interrupt_worker.py DIRECTORY LABEL...

Prints ``PREPARED`` once compiled; then for each label ``SIMULATING`` when the
binary runs (Brian's ``Network._globally_running``) and ``RESULT COMPLETE`` or
``RESULT INTERRUPTED`` (a KeyboardInterrupt from ``run``).
"""

import sys
import threading
import time

import numpy as np
from brian2 import Network

from modelfit_core.contracts.simulation import SimulationSpec
from modelfit_plugins.backends.brian2_standalone import Brian2StandaloneBackend

N_STEPS = 6_000_000
"""About 4 s of C++ for two neurons on the 2-core development machine: long enough to be
interrupted 0.3 s in, short for the two runs that go to the end (the suite's time)."""


def announce():
    while not Network._globally_running:
        time.sleep(0.001)
    print("SIMULATING", flush=True)


def main():
    spec = SimulationSpec(model="dv/dt = -v/tau : 1\ntau : second (constant)",
                          parameter_names=("tau",), n_samples=2, n_traces=1, n_steps=N_STEPS,
                          dt=1e-4, inputs={}, record_final=("v",), param_init={"v": 1.0},
                          name="modelfit_interrupt")
    simulation = Brian2StandaloneBackend(threads=1, directory=sys.argv[1]).prepare(spec)
    print("PREPARED", flush=True)
    for _label in sys.argv[2:]:
        watcher = threading.Thread(target=announce, daemon=True)
        watcher.start()
        try:
            result = simulation.run({"tau": np.array([1.0, 2.0])})
            print("RESULT COMPLETE", result.final["v"].tolist(), flush=True)
        except KeyboardInterrupt as exc:
            print("RESULT INTERRUPTED", exc, flush=True)
        watcher.join()
    simulation.close()


if __name__ == "__main__":
    main()
