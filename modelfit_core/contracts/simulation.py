"""What the core hands a simulation backend, and what it gets back.

A :class:`SimulationSpec` is plain data (strings, floats, numpy arrays and
Brian quantities) so that it can be pickled to other processes or machines.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np


ONLINE_ERROR_PREFIX = "modelfit_online_error_"


def online_error_variable(output: str) -> str:
    """The model variable accumulating the online error of ``output`` (see
    :attr:`SimulationSpec.online_error`)."""
    return ONLINE_ERROR_PREFIX + output


@attrs.frozen
class InputSignal:
    """One input variable fed to the model as a function of time and trace.

    ``values`` has shape (n_traces, n_steps), in SI units; ``dim`` is the
    Brian dimension of the variable.
    """

    values: np.ndarray
    dim: Any


@attrs.frozen
class SimulationSpec:
    """Everything a backend needs to build a model once and run it many times.

    All times are in seconds, all values in SI units without Brian units.
    The neuron with index ``k`` simulates parameter set ``k // n_traces`` on
    input trace ``k % n_traces``.
    """

    model: str
    """Model equations, as given by the user (the inputs are not defined there)."""
    parameter_names: tuple[str, ...]
    n_samples: int
    n_traces: int
    n_steps: int
    dt: float
    inputs: Mapping[str, InputSignal]
    record: tuple[str, ...] = ()
    """State variables to record at every time step."""
    record_spikes: bool = False
    method: str | None = None
    threshold: str | None = None
    reset: str | None = None
    refractory: Any = False
    param_init: Mapping[str, Any] = attrs.field(factory=dict)
    """Initial values: SI floats, or strings evaluated after parameters are set."""
    namespace: Mapping[str, Any] = attrs.field(factory=dict)
    """External constants and functions the equations refer to."""
    constants: Mapping[str, float] = attrs.field(factory=dict)
    """Model parameters that are not fitted, with their SI value."""
    targets: Mapping[str, InputSignal] = attrs.field(factory=dict)
    """Recorded outputs exposed to the equations as ``<name>_target``."""
    uses_iteration: bool = False
    """Whether the model refers to the ``iteration`` variable."""
    record_final: tuple[str, ...] = ()
    """Variables (or subexpressions) whose value at the end of the run is returned."""
    name: str = "modelfit"
    online_error: Mapping[str, float] = attrs.field(factory=dict)
    """Outputs whose squared error against ``targets[name]`` is accumulated while
    simulating (nothing recorded), mapped to ``t_start`` in seconds. The model
    variable :func:`online_error_variable` (name) ends the run holding each
    neuron's mean squared error over the steps from ``t_start`` on, compared as a
    StateMonitor records (at the start of each step); list it in ``record_final``
    to get it back (:attr:`SimulationResult.online_errors`)."""

    running_sums: tuple[str, ...] = ()
    """Dimensionless variables added to each neuron, starting at 0 at every run, to
    which :attr:`running_code` adds; list them in ``record_final`` to get them back.
    Only backends with the :class:`~modelfit_core.contracts.protocols.RunningSumBackend`
    capability simulate them (the gradient optimizer's rounds,
    :mod:`modelfit_core.fitting.sensitivity_round`)."""
    running_code: str = ""
    """Brian statements run at the start of every step (where a StateMonitor records):
    temporaries, then ``+=`` to the :attr:`running_sums`. They may read the recorded
    outputs as ``<name>_target`` (those in :attr:`targets`) and the
    :attr:`step_weights` as functions of time."""
    step_weights: Mapping[str, np.ndarray] = attrs.field(factory=dict)
    """Name -> one dimensionless value per time step, given to the model as a function
    of time ``name(t)`` (for :attr:`running_sums`)."""

    @property
    def n_neurons(self) -> int:
        return self.n_samples * self.n_traces

    @property
    def duration(self) -> float:
        """Simulated time per run, in seconds."""
        return self.n_steps * self.dt


@attrs.define
class SimulationResult:
    """Output of one batch.

    ``traces[var]`` has shape (n_samples, n_traces, n_steps) in SI units;
    ``spikes[sample][trace]`` is an array of spike times in seconds.
    ``final[var]`` holds the values of ``spec.record_final`` at the end.
    ``failed[sample]`` is True where the backend could not simulate that
    parameter set (it then also counts as diverged).
    """

    traces: dict[str, np.ndarray] = attrs.field(factory=dict)
    spikes: list[list[np.ndarray]] | None = None
    final: dict[str, np.ndarray] = attrs.field(factory=dict)
    """Values at the end of the run, one per neuron (n_samples * n_traces)."""
    failed: np.ndarray | None = None
    errors: dict[str, np.ndarray] = attrs.field(factory=dict)
    """Objective errors (n_samples,) by output, already computed where the batch
    was simulated (see :class:`~modelfit_core.model.recordings.ErrorsWhereSimulated`);
    the traces or spikes of those outputs are then not sent back."""

    @property
    def online_errors(self) -> dict[str, np.ndarray]:
        """Online errors by output: each neuron's mean squared error (SI units
        squared, n_samples * n_traces values), from ``final``."""
        return {name[len(ONLINE_ERROR_PREFIX):]: values for name, values in self.final.items()
                if name.startswith(ONLINE_ERROR_PREFIX)}

    def diverged(self, n_samples: int) -> np.ndarray:
        """Boolean mask (n_samples,) of parameter sets whose traces (or online
        errors) hold NaN/inf."""
        bad = np.zeros(n_samples, dtype=bool) if self.failed is None else self.failed.copy()
        for values in (*self.traces.values(), *self.online_errors.values()):
            bad |= ~np.isfinite(values).reshape(n_samples, -1).all(axis=1)
        return bad
