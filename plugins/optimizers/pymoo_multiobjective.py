"""Multi-objective optimization with pymoo: NSGA-II and NSGA-III.

The optimizers of ``fit(..., objectives="separate" | "features")``, registered
as ``nsga2`` and ``nsga3``. They are
:class:`~modelfit_plugins.optimizers.pymoo_optimizer.PymooOptimizer` with
several objectives: the same ask-and-tell of whole generations on the unit
cube mapped onto the bounds, the same seeding (numpy's global random state is
never touched), the same replay log when pickled; what differs is that
``tell`` receives an (n_samples, n_objectives) array, and that pymoo's
algorithm is set up for that many objectives (NSGA-III with Das and Dennis'
reference directions). pymoo is imported when a fit starts (``initialize``).
"""

from __future__ import annotations

from math import comb
from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.plugin_api import ParetoFront
from modelfit_plugins.optimizers.pymoo_methods import MethodSpec, resolve_method
from modelfit_plugins.optimizers.pymoo_optimizer import PymooOptimizer

_GA_OPTIONS = ("sampling", "selection", "crossover", "mutation", "eliminate_duplicates")

MULTI_OBJECTIVE_METHODS: dict[str, MethodSpec] = {
    spec.name: spec for spec in (
        # Deb et al. 2002: non-dominated sorting and crowding distance (SBX crossover,
        # polynomial mutation, binary tournaments)
        MethodSpec("NSGA2", "pymoo.algorithms.moo.nsga2", "NSGA2", _GA_OPTIONS,
                   min_population=4),
        # Deb and Jain 2014: reference directions instead of crowding (for 3+ objectives)
        MethodSpec("NSGA3", "pymoo.algorithms.moo.nsga3", "NSGA3", _GA_OPTIONS,
                   min_population=4),
    )
}
"""The multi-objective methods offered, by name."""


def reference_directions(n_objectives: int, population: int) -> np.ndarray:
    """Das and Dennis' evenly spread directions on the unit simplex: the most
    (``n_partitions`` as large as possible) that a generation of ``population``
    points can hold (at least the ``n_objectives`` corners)."""
    from pymoo.util.ref_dirs import get_reference_directions
    partitions = 1
    while comb(partitions + 1 + n_objectives - 1, n_objectives - 1) <= population:
        partitions += 1
    return get_reference_directions("das-dennis", n_objectives, n_partitions=partitions)


class PymooMultiObjectiveOptimizer(PymooOptimizer):
    """pymoo's NSGA-II or NSGA-III, asked and told whole generations.

    Parameters
    ----------
    method : {"NSGA2", "NSGA3"}
        Case-insensitive. NSGA-II ranks by non-domination and crowding distance;
        NSGA-III by non-domination and Das-Dennis reference directions (better
        spread with three or more objectives).
    seed : int, optional
        Makes the search (and so the Pareto front of a fit) repeat exactly.
    **options
        pymoo's keyword arguments: ``pop_size``, ``sampling``, ``selection``,
        ``crossover``, ``mutation``, ``eliminate_duplicates``.

    Notes
    -----
    The fitter calls :meth:`set_objectives` before :meth:`initialize`; ``tell``
    then takes an (n_vectors, n_objectives) array. :meth:`recommend` is the
    told point closest to the ideal point of the non-dominated points told so
    far (each objective scaled to [0, 1] over them). Generation sizes, rounds
    smaller or larger than a generation, and pickling are as for
    :class:`PymooOptimizer`.
    """

    def __init__(self, method: str = "NSGA2", seed: int | None = None, **options):
        super().__init__(method, seed, **options)
        self.objectives: tuple[str, ...] = ()
        """The names given to :meth:`set_objectives`."""

    @staticmethod
    def resolve(method):
        return resolve_method(method, MULTI_OBJECTIVE_METHODS, {},
                              owner="PymooMultiObjectiveOptimizer")

    # -- the MultiObjectiveOptimizer capability ---------------------------------------
    def set_objectives(self, names: Sequence[str]) -> None:
        """The objectives ``tell`` receives (at least two), in the order of its columns.
        Calling it again with as many objectives (a continued fit) changes nothing."""
        names = tuple(str(n) for n in names)
        if len(names) < 2:
            raise ConfigurationError(f"{type(self).__name__} needs at least two objectives; "
                                     f"got {list(names)}.")
        if self.error_shape != (len(names),):
            self._algorithm = None  # set up for another number of objectives: initialize again
        self.objectives, self.error_shape = names, (len(names),)

    # -- the protocol -----------------------------------------------------------------
    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """As :meth:`PymooOptimizer.initialize`, after :meth:`set_objectives`."""
        if not self.error_shape:
            raise FitStateError(f"{type(self).__name__}.set_objectives(names) must be called "
                                f"before initialize(): the fitter does so for a fit with "
                                f"objectives='separate' or 'features'.")
        return super().initialize(parameter_names, popsize, rounds, **bounds)

    def recommend(self) -> np.ndarray:
        """The compromise of the non-dominated points told so far (see the class's notes),
        or the centre of the bounds before any."""
        self._check_initialized()
        k = self._front.chosen()
        if k is None:
            return (self._lower + self._upper) / 2
        position, sample = self._front.rows[k]
        return self._told[position][sample].copy()

    def error_array(self, errors, n_vectors: int) -> np.ndarray:
        errors = np.asarray(errors, dtype=float)
        expected = (n_vectors, *self.error_shape)
        if errors.shape != expected and not (n_vectors == 0 and errors.size == 0):
            raise ConfigurationError(
                f"{type(self).__name__}.tell needs an array of shape (n_vectors, "
                f"n_objectives) = {expected} (objectives {', '.join(self.objectives)}); got "
                f"shape {errors.shape}.")
        return errors.reshape(expected)

    def algorithm_options(self) -> dict:
        if self._spec.name != "NSGA3":
            return self.options
        return {**self.options,
                "ref_dirs": reference_directions(self.error_shape[0], self.population)}

    # -- bookkeeping (PymooOptimizer's, for rows of objectives) -------------------------
    def _reset(self) -> None:
        super()._reset()
        self._worst_error = np.full(self.error_shape or (1,), -np.inf)
        self._front = ParetoFront(getattr(self, "objectives", ()) or ("f0",))
        self._told: list[np.ndarray] = []

    def _penalty(self) -> np.ndarray:
        """Per objective: 10 x the worst finite value told + 1 (the fitter's rule)."""
        worst = np.where(np.isfinite(self._worst_error), self._worst_error, 0.0)
        return 10.0 * np.abs(worst) + 1.0

    def _record(self, matrix: np.ndarray, errors: np.ndarray) -> None:
        self.tested_parameters.extend(matrix.copy())
        self.errors.extend(errors.tolist())
        finite = np.isfinite(errors).all(axis=1)
        if finite.any():
            self._worst_error = np.maximum(self._worst_error, errors[finite].max(axis=0))
        self._told.append(matrix.copy())
        self._front.add(len(self._told) - 1, errors, finite)


class NSGA2Optimizer(PymooMultiObjectiveOptimizer):
    """NSGA-II (pymoo): ``NSGA2Optimizer(seed=None, **options)``; see
    :class:`PymooMultiObjectiveOptimizer`. The default optimizer of
    ``fit(objectives=...)``."""

    def __init__(self, seed: int | None = None, **options):
        super().__init__("NSGA2", seed, **options)

    def __repr__(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"NSGA2Optimizer(seed={self.seed!r}{options})"


class NSGA3Optimizer(PymooMultiObjectiveOptimizer):
    """NSGA-III (pymoo) with Das-Dennis reference directions:
    ``NSGA3Optimizer(seed=None, **options)``; see :class:`PymooMultiObjectiveOptimizer`."""

    def __init__(self, seed: int | None = None, **options):
        super().__init__("NSGA3", seed, **options)

    def __repr__(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"NSGA3Optimizer(seed={self.seed!r}{options})"
