"""A real recording: a CA1 pyramidal cell's passive responses to a short pulse and a long
step, fitted with a one-compartment and a two-compartment passive model.

There is no ground truth; the targets are multiples of the best error the suite's
reference runs reached (``REFERENCE_ERRORS``, docs/benchmark.md says how they were
obtained). The data ship with modelfit (data/ca1_passive/README.md: origin, licence).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from brian2 import Mohm, amp, mV, nS, pF, second, volt

from modelfit_core.contracts.benchmark_problem import BenchmarkProblem

DATA_FILE = Path(__file__).parent / "data" / "ca1_passive" / "ca1_passive.csv"

ONE_COMPARTMENT = """
dv/dt = (-v/R + I)/C : volt
R : ohm (constant)
C : farad (constant)
"""
"""v relative to rest, as recorded."""

TWO_COMPARTMENTS = """
dv/dt = (-v/R + gc*(vd - v) + I)/C : volt
dvd/dt = (-vd/Rd + gc*(v - vd))/Cd : volt
R : ohm (constant)
C : farad (constant)
Rd : ohm (constant)
Cd : farad (constant)
gc : siemens (constant)
"""
"""A soma (recorded, injected) coupled to a dendrite by the conductance gc."""

REFERENCE_ERRORS = {"ca1_one_compartment": 2.42e-9, "ca1_two_compartments": 4.71e-10}
"""Best MSE (V²) of the reference runs, the targets' floor: the lowest error any method
reached in the reduced benchmarks of docs/benchmark.md (one compartment: pymoo's DE,
every seed; two compartments: DE followed by refine(), from several starts). A later
run that goes lower should lower these."""


def load_recording() -> tuple[np.ndarray, np.ndarray, float]:
    """(current in A, voltage in V, dt in s) of the shipped recording, one trace each."""
    table = np.loadtxt(DATA_FILE, delimiter=",", skiprows=2)
    dt_s = float(table[1, 0] - table[0, 0]) * 1e-3
    return table[None, :, 1] * 1e-9, table[None, :, 2] * 1e-3, dt_s


def _problem(name: str, title: str, model: str, bounds: dict, n_samples: int,
             budget: int, quick_budget: int) -> BenchmarkProblem:
    current, voltage, dt_s = load_recording()
    init = {"v": 0 * mV} | ({"vd": 0 * mV} if "vd" in model else {})
    return BenchmarkProblem(
        title=title, category="real recordings", model=model, dt=dt_s * second,
        inputs={"I": current * amp}, outputs={"v": voltage * volt}, bounds=bounds,
        error_floor=REFERENCE_ERRORS[name],
        # exponential Euler is exact for these linear models under a current constant
        # within each step, and every method can use it (a gradient optimizer cannot
        # integrate its sensitivity equations with Brian's 'exact')
        fitter_options={"method": "exponential_euler", "param_init": init},
        n_samples=n_samples, budget=budget, quick_budget=quick_budget, refinable=True)


class CA1OneCompartment:
    """Input resistance and capacitance of one compartment (2 parameters)."""

    def define(self) -> BenchmarkProblem:
        return _problem("ca1_one_compartment", "CA1 recording, 1 compartment, 2 parameters",
                        ONE_COMPARTMENT, {"R": (5 * Mohm, 500 * Mohm),
                                          "C": (10 * pF, 1000 * pF)},
                        n_samples=20, budget=2000, quick_budget=100)


class CA1TwoCompartments:
    """Soma and dendrite resistances and capacitances and their coupling (5 parameters)."""

    def define(self) -> BenchmarkProblem:
        return _problem("ca1_two_compartments",
                        "CA1 recording, 2 compartments, 5 parameters", TWO_COMPARTMENTS,
                        {"R": (5 * Mohm, 2000 * Mohm), "C": (5 * pF, 500 * pF),
                         "Rd": (5 * Mohm, 2000 * Mohm), "Cd": (10 * pF, 2000 * pF),
                         "gc": (1 * nS, 500 * nS)},
                        n_samples=50, budget=5000, quick_budget=300)

