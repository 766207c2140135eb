"""A passive membrane on three current steps: the easy sanity case."""

from __future__ import annotations

import numpy as np
from brian2 import amp, mV, nS, pF, second
from modelfit_plugins.problems.noise import gaussian

from modelfit_core.contracts.benchmark_problem import BenchmarkProblem

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
El : volt (constant)
"""
DT_S = 1e-4
N_STEPS = 600  # 60 ms at 0.1 ms: a few membrane time constants (20 ms)


def step_currents(amplitudes_a, n_steps: int, start_s: float, end_s: float,
                  dt_s: float) -> np.ndarray:
    """Step currents (A), one trace per amplitude, shape (len(amplitudes_a), n_steps)."""
    t = np.arange(n_steps) * dt_s
    on = (t >= start_s) & (t < end_s)
    return np.array([np.where(on, a, 0.0) for a in amplitudes_a])


class PassiveMembrane:
    """gl, C and El of a passive membrane from three steps (0.5 mV noise)."""

    def define(self) -> BenchmarkProblem:
        inputs = step_currents([0.05e-9, 0.1e-9, 0.2e-9], N_STEPS, 10e-3, 40e-3, DT_S)
        return BenchmarkProblem(
            title="passive membrane, 3 parameters, 3 steps",
            category="passive", model=MODEL, dt=DT_S * second, inputs={"I": inputs * amp},
            bounds={"gl": (1 * nS, 100 * nS), "C": (20 * pF, 1000 * pF),
                    "El": (-90 * mV, -50 * mV)},
            ground_truth={"gl": 10 * nS, "C": 200 * pF, "El": -70 * mV},
            noise=gaussian(0.5e-3), data_seed=1,
            # exact for this linear model with a current constant within each step, and
            # usable by every method (Brian's 'exact' cannot integrate sensitivities)
            fitter_options={"method": "exponential_euler", "param_init": {"v": -70 * mV}},
            n_samples=20, budget=2000, quick_budget=200, refinable=True)

