"""Integrate-and-fire problems: AdEx voltage traces with spikes (9 parameters), and the
spike trains of an adapting integrate-and-fire neuron (SpikeFitter, GammaFactor)."""

from __future__ import annotations

import numpy as np
from brian2 import amp, ms, mV, nS, ohm, pA, pF, second
from modelfit_plugins.problems.noise import gaussian, jitter
from modelfit_plugins.problems.passive import step_currents

from modelfit_core.contracts.benchmark_problem import SPIKE_FITTER, BenchmarkProblem

ADEX_MODEL = """
dv/dt = (gL*(EL - v) + gL*DeltaT*exp((v - VT)/DeltaT) + I - w)/C : volt
dw/dt = (a*(v - EL) - w)/tauw : amp
C : farad (constant)
gL : siemens (constant)
EL : volt (constant)
VT : volt (constant)
DeltaT : volt (constant)
tauw : second (constant)
a : siemens (constant)
b : amp (constant)
Vr : volt (constant)
"""
ADEX_DT_S = 1e-4
ADEX_STEPS = 2000  # 200 ms: adaptation over several spikes


class AdExVoltage:
    """Nine AdEx parameters from the voltage (spikes included) under two steps."""

    def define(self) -> BenchmarkProblem:
        inputs = step_currents([0.3e-9, 0.6e-9], ADEX_STEPS, 20e-3, 180e-3, ADEX_DT_S)
        return BenchmarkProblem(
            title="AdEx, 9 parameters, voltage with spikes",
            category="integrate-and-fire", model=ADEX_MODEL, dt=ADEX_DT_S * second,
            inputs={"I": inputs * amp},
            bounds={"C": (50 * pF, 500 * pF), "gL": (2 * nS, 50 * nS),
                    "EL": (-80 * mV, -60 * mV), "VT": (-60 * mV, -40 * mV),
                    "DeltaT": (0.5 * mV, 5 * mV), "tauw": (20 * ms, 300 * ms),
                    "a": (0 * nS, 10 * nS), "b": (0 * pA, 200 * pA),
                    "Vr": (-70 * mV, -45 * mV)},
            ground_truth={"C": 200 * pF, "gL": 10 * nS, "EL": -70 * mV, "VT": -50 * mV,
                          "DeltaT": 2 * mV, "tauw": 100 * ms, "a": 2 * nS, "b": 60 * pA,
                          "Vr": -58 * mV},
            noise=gaussian(1e-3), data_seed=4,
            fitter_options={"method": "euler", "threshold": "v > 0*mV",
                            "reset": "v = Vr; w += b", "refractory": 2 * ms,
                            "param_init": {"v": -70 * mV, "w": 0 * pA}},
            n_samples=50, budget=10000, quick_budget=300)


AIF_MODEL = """
dv/dt = (EL - v + R*I - w)/tau : volt (unless refractory)
dw/dt = -w/tau_w : volt
R : ohm (constant)
tau : second (constant)
tau_w : second (constant)
b : volt (constant)
Vth : volt (constant)
"""
AIF_DT_S = 1e-4
AIF_STEPS = 5000  # 500 ms of fluctuating current: a few dozen spikes per trace


def fluctuating_currents(n_traces: int, n_steps: int, dt_s: float, seed: int) -> np.ndarray:
    """A mean current plus Ornstein-Uhlenbeck fluctuations (tau 5 ms), A."""
    rng = np.random.default_rng(seed)
    currents = np.empty((n_traces, n_steps))
    decay = np.exp(-dt_s / 5e-3)
    for trace in range(n_traces):
        x = 0.0
        kicks = rng.normal(0.0, np.sqrt(1 - decay ** 2), n_steps)
        for k in range(n_steps):
            x = decay * x + kicks[k]
            currents[trace, k] = x
    means = np.linspace(0.25e-9, 0.4e-9, n_traces)[:, None]
    return means + 0.15e-9 * currents


class AdaptiveIFSpikes:
    """Five parameters of an adapting integrate-and-fire neuron from its spike times."""

    def define(self) -> BenchmarkProblem:
        inputs = fluctuating_currents(2, AIF_STEPS, AIF_DT_S, seed=5)
        return BenchmarkProblem(
            title="adaptive IF, 5 parameters, spike trains (gamma factor)",
            category="spike trains", model=AIF_MODEL, dt=AIF_DT_S * second,
            inputs={"I": inputs * amp}, output_var="spikes", fitter=SPIKE_FITTER,
            bounds={"R": (20e6 * ohm, 300e6 * ohm), "tau": (5 * ms, 50 * ms),
                    "tau_w": (20 * ms, 500 * ms), "b": (0 * mV, 10 * mV),
                    "Vth": (-60 * mV, -40 * mV)},
            ground_truth={"R": 100e6 * ohm, "tau": 20 * ms, "tau_w": 150 * ms, "b": 3 * mV,
                          "Vth": -50 * mV},
            noise=jitter(1e-3), data_seed=5,
            fitter_options={"method": "exact", "threshold": "v > Vth",
                            "reset": "v = EL; w += b", "refractory": 2 * ms,
                            "param_init": {"v": -70 * mV},
                            "namespace": {"EL": -70 * mV}},
            metric="gamma_factor",
            metric_options={"delta": 1 * ms, "time": AIF_STEPS * AIF_DT_S * second},
            n_samples=50, budget=5000, quick_budget=300)
