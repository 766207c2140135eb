"""A passive membrane on two current steps: the small model the dask tests fit."""

import numpy as np
from brian2 import amp, mV, nS, pF

MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
BOUNDS = dict(gl=[1 * nS, 50 * nS], C=[50 * pF, 500 * pF])


def step_responses(n_steps=300):
    """Two step currents (0.1 and 0.3 nA from step 30), in A, and the membrane's exact
    response (gl = 10 nS, tau = 20 ms, El = -70 mV), in V, sampled every 0.1 ms."""
    currents = np.zeros((2, n_steps))
    currents[0, 30:], currents[1, 30:] = 0.1e-9, 0.3e-9
    t = np.clip(np.arange(n_steps) * 1e-4 - 30e-4, 0, None)
    return currents, -70e-3 + currents / 10e-9 * (1 - np.exp(-t / 20e-3))


def recordings(n_steps=300):
    """:func:`step_responses` with units (currents in amp, voltages in mV)."""
    currents, v = step_responses(n_steps)
    return currents * amp, v * 1e3 * mV
