"""Hodgkin–Huxley problems: the tutorial's 3 conductances on its bundled recordings, and
8 parameters (conductances, reversal potentials, capacitance, the rate functions'
threshold offset) on synthetic traces, fitted to the voltage or to eFEL features."""

from __future__ import annotations

from brian2 import amp, mV, nS, pF, second, siemens, uS
from modelfit_plugins.problems.noise import gaussian
from modelfit_plugins.problems.passive import step_currents

from modelfit_core.contracts.benchmark_problem import BenchmarkProblem
from modelfit_core.plugin_api import HH_MODEL, hh_constants, load_hh_dataset

HH8_MODEL = HH_MODEL + """El : volt (constant)
EK : volt (constant)
ENa : volt (constant)
VT : volt (constant)
Cm : farad (constant)
"""
"""The tutorial's model with its constants (reversal potentials, capacitance, VT) free."""

HH8_TRUTH = {"gl": 12 * nS, "g_na": 25 * uS, "g_kd": 7 * uS, "El": -65 * mV, "EK": -90 * mV,
             "ENa": 50 * mV, "VT": -63 * mV, "Cm": 200 * pF}
HH8_BOUNDS = {"gl": (1 * nS, 100 * nS), "g_na": (1 * uS, 100 * uS),
              "g_kd": (0.5 * uS, 50 * uS), "El": (-80 * mV, -50 * mV),
              "EK": (-100 * mV, -70 * mV), "ENa": (30 * mV, 70 * mV),
              "VT": (-70 * mV, -50 * mV), "Cm": (100 * pF, 400 * pF)}
HH8_DT_S = 2e-5  # exponential Euler stays accurate for the HH gates at 0.02 ms
HH8_STEPS = 1000  # 20 ms: a 10 ms step with a few spikes
STIM_S = (5e-3, 15e-3)


def hh8_inputs():
    """Two current steps (0.5 and 2 nA, 5-15 ms), amp."""
    return step_currents([0.5e-9, 2e-9], HH8_STEPS, *STIM_S, HH8_DT_S) * amp


def hh8_recordings() -> dict:
    """What the 8-parameter problems share: the model, its synthetic recordings (the same
    noisy voltage for the voltage and the features problem) and how it is simulated."""
    return dict(model=HH8_MODEL, dt=HH8_DT_S * second, inputs={"I": hh8_inputs()},
                bounds=HH8_BOUNDS, ground_truth=HH8_TRUTH, noise=gaussian(0.5e-3),
                data_seed=3, fitter_options={"method": "exponential_euler",
                                             "param_init": {"v": -65 * mV}})


class HHTutorial:
    """The TraceFitter tutorial: gl, g_na, g_kd on the five bundled recordings."""

    def define(self) -> BenchmarkProblem:
        data = load_hh_dataset()
        inputs, outputs, dt = data.quantities()
        return BenchmarkProblem(
            title="HH tutorial, 3 conductances, bundled recordings",
            category="conductance-based", model=HH_MODEL, dt=dt, inputs={"I": inputs},
            outputs={"v": outputs},
            bounds={"gl": (2e-12 * siemens, 200e-9 * siemens),
                    "g_na": (200e-9 * siemens, 0.4e-3 * siemens),
                    "g_kd": (200e-9 * siemens, 200e-6 * siemens)},
            ground_truth={name: value * siemens for name, value in data.ground_truth.items()},
            fitter_options={"method": "exponential_euler", "param_init": {"v": -65 * mV},
                            "namespace": hh_constants()},
            n_samples=50, budget=5000, quick_budget=200, refinable=True)


class HHEightParameters:
    """Eight HH parameters from two current steps (synthetic, 0.5 mV noise)."""

    def define(self) -> BenchmarkProblem:
        return BenchmarkProblem(
            title="HH, 8 parameters, synthetic voltage", category="conductance-based",
            **hh8_recordings(), n_samples=50, budget=10000, quick_budget=300, refinable=True)


FEATURES = ["spike_count", "mean_frequency", "time_to_first_spike", "mean_AP_amplitude",
            "voltage_base", "steady_state_voltage_stimend"]


class HHFeatures:
    """The eight HH parameters fitted to eFEL features of the same recordings."""

    def define(self) -> BenchmarkProblem:
        return BenchmarkProblem(
            title="HH, 8 parameters, eFEL features", category="features",
            **hh8_recordings(), metric="efel",
            metric_options={"stim_times": [(STIM_S[0] * second, STIM_S[1] * second)] * 2,
                            "feat_list": FEATURES, "n_jobs": 1},
            n_samples=50, budget=10000, quick_budget=300)

