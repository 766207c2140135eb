"""The contracts between the fitting loop and its parts.

These are structural types (:class:`typing.Protocol`): any object with the
right methods works, no base class needed. Plugins provide implementations;
the core only ever talks to these shapes.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Optimizer(Protocol):
    """Ask/tell optimizer over a box of parameters (all values in SI units)."""

    def initialize(self, parameter_names: Sequence[str], popsize: int,
                   rounds: int, **bounds: Sequence[float]) -> int:
        """Set up the search over ``bounds`` (name -> [lower, upper]); return the
        population size actually used."""

    def ask(self, n_samples: int) -> list[Sequence[float]]:
        """Return ``n_samples`` parameter vectors, ordered as ``parameter_names``."""

    def tell(self, parameters: Sequence[Sequence[float]], errors: Sequence[float]) -> None:
        """Report the errors of parameters returned by :meth:`ask`."""

    def recommend(self) -> Sequence[float]:
        """Return the optimizer's own best guess (a parameter vector)."""


@runtime_checkable
class Metric(Protocol):
    """Turns simulated and recorded results into one error per parameter set.

    Trace metrics receive arrays of shape (n_samples, n_traces, n_steps) and
    (n_traces, n_steps); spike metrics nested lists of spike-time arrays in
    seconds. All values are unitless SI.
    """

    def calc(self, model_results: Any, data_results: Any, dt: Any) -> np.ndarray:
        """Return the errors, shape (n_samples,)."""

    def get_features(self, model_results: Any, data_results: Any, dt: Any) -> np.ndarray:
        """Return per-trace features or errors, shape (n_samples, n_traces)."""

    def get_errors(self, features: np.ndarray) -> np.ndarray:
        """Reduce features to one error per parameter set, shape (n_samples,)."""

    def get_dimensions(self, output_dim: Any) -> Any:
        """Physical dimensions of the raw error for an output of ``output_dim``."""

    def get_normalized_dimensions(self, output_dim: Any) -> Any:
        """Physical dimensions of the error after normalization."""

    def revert_normalization(self, error: Any) -> Any:
        """Undo the normalization of an error."""


@runtime_checkable
class PreparedSimulation(Protocol):
    """A model compiled for a fixed number of parameter sets and traces.

    Optional: ``compute_errors_with(errors_here)``. A simulation that runs in
    other processes may define it; the fitter then passes, at the start of
    each fit, a picklable ``errors_here(result, n_samples) -> SimulationResult``
    (or ``None``) that scores a batch where it was simulated, so that errors
    travel back instead of traces (the dask backend does this).
    """

    def run(self, parameters: Mapping[str, np.ndarray],
            iteration: float = 0.0) -> "SimulationResult":
        """Simulate every parameter set (name -> array of n_samples SI values)."""

    def close(self) -> None:
        """Release whatever the preparation holds (processes, files, devices)."""


@runtime_checkable
class SimulationBackend(Protocol):
    """Prepares a :class:`~modelfit_core.contracts.simulation.SimulationSpec` once for many runs."""

    name: str

    def prepare(self, spec: Any) -> PreparedSimulation:
        """Build (and compile) the simulation described by ``spec``."""


@runtime_checkable
class Feedback(Protocol):
    """Told about every round; returning True stops the fit."""

    def __call__(self, params, errors, best_params, best_error, index,
                 additional_info=None) -> bool | None:
        ...


@runtime_checkable
class Inference(Protocol):
    """Simulation-based inference engine (prior, training, posterior, sampling)."""

    def infer(self, *args, **kwargs) -> Any:
        ...


# Imported for the annotation above without creating an import cycle at runtime.
from modelfit_core.contracts.simulation import SimulationResult  # noqa: E402
