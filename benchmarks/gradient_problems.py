"""The fitting problems of the gradient benchmarks (benchmarks/gradient_fits.py,
benchmarks/gradient_agreement.py): the HH tutorial (3 parameters, the bundled noisy
recordings), an HH model with 8 free parameters and an AdEx model with resets and 9
free parameters (both synthetic: recordings simulated at a known ground truth).

Each problem gives ``fitter(backend, optimizer)``-ready arguments: the TraceFitter
options, the bounds, the ground truth and the error a fit must reach ("target").
"""

from __future__ import annotations

import attrs
import numpy as np
from brian2 import amp, cm, ms, mV, nA, nS, pA, pF, siemens, ufarad, umetre

# the suite's HH model with 8 free parameters (its reversal potentials, threshold offset
# and capacitance free as well), and its AdEx model (9 parameters; reset
# ``v = Vr; w += b`` at ``v > VT + 5*DeltaT``, Brette & Gerstner 2005)
from modelfit_plugins.problems.hodgkin_huxley import HH8_MODEL
from modelfit_plugins.problems.integrate_and_fire import ADEX_MODEL

from modelfit_core.tools.datasets import HH_MODEL, hh_constants, load_hh_dataset


@attrs.frozen
class Problem:
    """One fitting problem: what a TraceFitter needs, the bounds and the target."""

    name: str
    options: dict
    bounds: dict
    truth: dict | None
    target: float
    """Error (SI, V²) a fit must reach to count as solved."""

    @property
    def n_parameters(self) -> int:
        return len(self.bounds)


def _synthetic(name, model, inputs, truth, *, dt, method, threshold=None, reset=None,
               param_init, namespace=None):
    """Recordings simulated at ``truth`` with the runtime backend (no noise)."""
    from modelfit_core import TraceFitter
    placeholder = np.zeros(np.shape(inputs)) * mV
    options = {"model": model, "input": {"I": inputs}, "dt": dt, "method": method,
                   "threshold": threshold, "reset": reset, "param_init": param_init,
                   "namespace": namespace or {}}
    fitter = TraceFitter(output={"v": placeholder}, n_samples=1, **options)
    traces = fitter.generate(params=truth)
    return {**options, "output": {"v": traces}}


def hh3() -> Problem:
    """The tutorial: 3 conductances, the bundled recordings (0.25 mV noise)."""
    dataset = load_hh_dataset()
    options = {"model": HH_MODEL, "input": {"I": dataset.inputs * amp},
                   "output": {"v": dataset.outputs * mV}, "dt": 0.01 * ms,
                   "method": "exponential_euler", "param_init": {"v": -65 * mV},
                   "namespace": hh_constants()}
    bounds = {"gl": [2e-12 * siemens, 200 * nS], "g_na": [200 * nS, 0.4e-3 * siemens],
              "g_kd": [200 * nS, 200e-6 * siemens]}
    truth = {k: v * siemens for k, v in dataset.ground_truth.items()}
    # the noise alone gives 0.0625 mV²: within 10 % of it
    return Problem("hh3", options, bounds, truth, target=1.1 * (0.25e-3) ** 2)


def hh8() -> Problem:
    """HH with 8 free parameters, synthetic recordings (the tutorial's inputs)."""
    dataset = load_hh_dataset()
    area = 20000 * umetre ** 2
    truth = {"gl": 12 * nS, "g_na": 25e-6 * siemens, "g_kd": 7e-6 * siemens,
             "El": -65 * mV, "EK": -90 * mV, "ENa": 50 * mV, "VT": -63 * mV,
             "Cm": 1 * ufarad * cm ** -2 * area}
    bounds = {"gl": [1 * nS, 100 * nS], "g_na": [5e-6 * siemens, 100e-6 * siemens],
              "g_kd": [1e-6 * siemens, 30e-6 * siemens], "El": [-80 * mV, -50 * mV],
              "EK": [-100 * mV, -70 * mV], "ENa": [30 * mV, 70 * mV],
              "VT": [-70 * mV, -55 * mV], "Cm": [100 * pF, 400 * pF]}
    options = _synthetic("hh8", HH8_MODEL, dataset.inputs * amp, truth, dt=0.01 * ms,
                         method="exponential_euler", param_init={"v": -65 * mV})
    return Problem("hh8", options, bounds, truth, target=(0.5e-3) ** 2)


def adex9(dt=0.02 * ms) -> Problem:
    """AdEx with resets, 9 free parameters, synthetic recordings (three current steps
    from 10 to 70 ms of 80 ms; ``dt`` sets the time step)."""
    n_steps = round(float(80 * ms / dt))
    inputs = np.zeros((3, n_steps))
    for k, amplitude in enumerate((0.3, 0.5, 0.8)):
        inputs[k, n_steps // 8:7 * n_steps // 8] = amplitude
    truth = {"gL": 10 * nS, "EL": -70 * mV, "DeltaT": 2 * mV, "VT": -50 * mV,
             "a": 2 * nS, "tauw": 100 * ms, "b": 60 * pA, "Vr": -58 * mV, "C": 200 * pF}
    bounds = {"gL": [2 * nS, 40 * nS], "EL": [-80 * mV, -60 * mV],
              "DeltaT": [0.5 * mV, 5 * mV], "VT": [-60 * mV, -40 * mV],
              "a": [0 * nS, 10 * nS], "tauw": [20 * ms, 300 * ms],
              "b": [0 * pA, 200 * pA], "Vr": [-70 * mV, -45 * mV],
              "C": [50 * pF, 400 * pF]}
    options = _synthetic("adex9", ADEX_MODEL, inputs * nA, truth, dt=dt, method="euler",
                         threshold="v > VT + 5*DeltaT", reset="v = Vr; w += b",
                         param_init={"v": -70 * mV, "w": 0 * amp})
    return Problem("adex9", options, bounds, truth, target=(1e-3) ** 2)


PROBLEMS = {"hh3": hh3, "hh8": hh8, "adex9": adex9}
FINE = {"adex9": lambda: adex9(dt=0.005 * ms)}
"""Finer time steps, for the finite-difference comparison of spiking models (whose
discrete spike times make the error a staircase on the grid)."""
