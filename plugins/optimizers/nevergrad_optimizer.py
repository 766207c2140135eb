"""Gradient-free optimization with nevergrad (differential evolution by default)."""

from __future__ import annotations

import difflib
from typing import Sequence

import nevergrad as ng
import numpy as np

from modelfit_core import hookimpl
from modelfit_core.errors import ConfigurationError, FitStateError


_BOUNDINGS = ("arctan", "tanh", "bouncing", "clipping")


class NevergradOptimizer:
    """Any optimizer of nevergrad's registry, by name, through ask/tell.

    The search runs on one nevergrad ``Array`` over the unit cube, mapped
    linearly onto the bounds: several times cheaper to ask for than an
    instrumentation of one ``Scalar`` per parameter, and asking is what
    dominates a round once the simulation is compiled. The cube is bounded
    with nevergrad's ``arctan`` transform by default, as brian2modelfitting's
    scalars were: on the tutorial's HH fit (10 rounds, 5 seeds) it reaches a
    median error 7x lower than "bouncing" or "clipping".

    Parameters
    ----------
    method : str or nevergrad optimizer class/factory
        A name from ``nevergrad.optimizers.registry`` ("DE", "CMA", "PSO",
        "TwoPointsDE", ...). Default "DE".
    use_nevergrad_recommendation : bool
        Use nevergrad's recommendation as ``recommend()``; default False, in
        which case the best parameters seen are tracked by the fitter.
    seed : int, optional
        Seeds the optimizer's random state: the same seed asks the same points.
    budget : int, optional
        Evaluations nevergrad plans for (default: n_samples × n_rounds).
    bounding : {"arctan", "tanh", "bouncing", "clipping"}
        How nevergrad keeps candidates inside the bounds (default "arctan").
    **options
        Passed to nevergrad's optimizer constructor (e.g. ``num_workers``).
    """

    def __init__(self, method="DE", use_nevergrad_recommendation=False, seed=None,
                 budget=None, bounding="arctan", **options):
        if isinstance(method, str) and method not in ng.optimizers.registry:
            close = difflib.get_close_matches(method, list(ng.optimizers.registry), n=3)
            raise ConfigurationError(
                f"Unknown nevergrad method {method!r}." +
                (f" Did you mean {', '.join(map(repr, close))}?" if close else "") +
                " See nevergrad.optimizers.registry for all names.")
        if bounding not in _BOUNDINGS:
            raise ConfigurationError(f"Unknown bounding {bounding!r}; use one of "
                                     f"{', '.join(_BOUNDINGS)}.")
        self.bounding = bounding
        self.method = method
        self.use_nevergrad_recommendation = use_nevergrad_recommendation
        self.seed = seed
        self.budget = budget
        self.options = options
        self._optimizer = None
        self._pending: list = []
        self._asked: list = []

    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Set up the search over ``bounds`` (name -> [lower, upper], SI floats)."""
        self.parameter_names = list(parameter_names)
        missing = [n for n in self.parameter_names if n not in bounds]
        if missing:
            raise ConfigurationError(f"No bounds for parameter(s) {', '.join(missing)}.")
        self._lower = np.array([float(bounds[n][0]) for n in self.parameter_names])
        self._upper = np.array([float(bounds[n][1]) for n in self.parameter_names])
        n_parameters = len(self.parameter_names)
        if self.bounding == "bouncing":  # nevergrad's own default for bounded arrays
            parametrization = ng.p.Array(shape=(n_parameters,), lower=0.0, upper=1.0)
        else:
            parametrization = ng.p.Array(init=np.full(n_parameters, 0.5)).set_bounds(
                0.0, 1.0, method=self.bounding)
        if self.seed is not None:
            parametrization.random_state = np.random.RandomState(self.seed)
        factory = ng.optimizers.registry[self.method] if isinstance(self.method, str) \
            else self.method
        options = dict(self.options)
        options.setdefault("num_workers", popsize)
        budget = self.budget if self.budget is not None else popsize * max(rounds, 1)
        self._optimizer = factory(parametrization=parametrization, budget=budget, **options)
        self._pending, self._asked = [], []
        return popsize

    def _check_initialized(self):
        if self._optimizer is None:
            raise FitStateError("NevergradOptimizer.initialize() must be called first.")

    def _to_si(self, unit_vector) -> np.ndarray:
        return self._lower + np.asarray(unit_vector, dtype=float) * (self._upper - self._lower)

    def _to_unit(self, vector) -> np.ndarray:
        return (np.asarray(vector, dtype=float) - self._lower) / (self._upper - self._lower)

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """``n_samples`` parameter vectors inside the bounds, in SI units."""
        self._check_initialized()
        self._pending = [self._optimizer.ask() for _ in range(n_samples)]
        self._asked = [np.clip(self._to_si(c.value), self._lower, self._upper)
                       for c in self._pending]
        return [vector.copy() for vector in self._asked]

    def tell(self, parameters, errors) -> None:
        """Report errors for the vectors of the last ``ask`` (in the same order)."""
        self._check_initialized()
        errors = np.asarray(errors, dtype=float)
        if len(parameters) != len(errors):
            raise ConfigurationError("tell() needs one error per parameter vector.")
        for k, (vector, error) in enumerate(zip(parameters, errors)):
            if k < len(self._pending) and np.array_equal(self._asked[k], vector):
                candidate = self._pending[k]
            else:  # a point the optimizer did not ask for
                candidate = self._optimizer.parametrization.spawn_child(
                    new_value=np.clip(self._to_unit(vector), 0.0, 1.0))
            self._optimizer.tell(candidate, float(error))
        self._pending, self._asked = [], []

    def recommend(self) -> np.ndarray:
        """nevergrad's recommendation, in SI units."""
        self._check_initialized()
        return self._to_si(self._optimizer.provide_recommendation().value)

    def __repr__(self):
        return f"NevergradOptimizer(method={self.method!r}, seed={self.seed!r})"


@hookimpl
def modelfit_register_optimizers():
    return {"nevergrad": NevergradOptimizer}
