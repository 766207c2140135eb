"""Random search: parameter sets drawn uniformly within the bounds, the suite's baseline.

Every method of the benchmark suite (``modelfit benchmark``) is measured against
it: a search that does not beat uniform sampling on a problem has learnt nothing
from the errors it was told. Seeded, so a run is repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from modelfit_plugins.optimizers.bounds import calc_bounds

from modelfit_core.contracts.errors import FitStateError


class RandomSearchOptimizer:
    """Uniform sampling of the box given by the bounds.

    Parameters
    ----------
    seed : int, optional
        Seed of the sampler (the same seed asks the same points).
    """

    suite_methods: tuple[str, ...] = ()
    """Configurations ``modelfit benchmark`` runs by default: the plugin's defaults."""
    suite_baseline = True
    """``modelfit benchmark --quick`` runs it beside the default optimizer: what a search
    must beat."""

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._lower: np.ndarray | None = None
        self._upper = np.empty(0)
        self._rng = np.random.default_rng(seed)
        self._best: np.ndarray | None = None
        self._best_error = np.inf

    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Read the bounds (SI, name -> [lower, upper]); the population is ``popsize``."""
        box = np.asarray(calc_bounds(list(parameter_names), **bounds), dtype=float)
        self._lower, self._upper = box[:, 0], box[:, 1]
        self._rng = np.random.default_rng(self.seed)
        self._best, self._best_error = None, np.inf
        return popsize

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """``n_samples`` points drawn uniformly in the box."""
        if self._lower is None:
            raise FitStateError("RandomSearchOptimizer.ask() before initialize()")
        draws = self._rng.random((n_samples, self._lower.size))
        return list(self._lower + draws * (self._upper - self._lower))

    def tell(self, parameters, errors) -> None:
        """Keep the best point told so far."""
        errors = np.asarray(errors, dtype=float).reshape(len(parameters), -1)[:, 0]
        if errors.size == 0:
            return
        k = int(np.argmin(errors))
        if errors[k] < self._best_error:
            self._best, self._best_error = np.asarray(parameters[k], dtype=float), errors[k]

    def recommend(self) -> np.ndarray:
        """The best point told so far (the box's centre before any)."""
        if self._best is not None:
            return self._best
        if self._lower is None:
            raise FitStateError("RandomSearchOptimizer.recommend() before initialize()")
        return (self._lower + self._upper) / 2
