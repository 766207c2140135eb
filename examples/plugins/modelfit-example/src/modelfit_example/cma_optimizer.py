"""CMA-ES (pycma) as a modelfit optimizer, through pycma's ask/tell interface.

The plugin satisfies modelfit's ``Optimizer`` Protocol (``initialize``, ``ask``,
``tell``, ``recommend``) without any base class; the entry point in
``pyproject.toml`` registers it under the name ``"cmaes"``::

    Pipeline.from_names(optimizer="cmaes", optimizer_options={"sigma0": 0.2}, seed=1)
    from modelfit_core import CMAESOptimizer      # the classic interface

pycma is imported when a fit starts: importing this module stays cheap, so that
``from modelfit_core import *`` does not pay for it. A missing pycma is reported
by ``modelfit plugins`` from this distribution's metadata (it requires ``cma``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from modelfit_core import ConfigurationError, FitStateError

MIN_POPULATION = 4
"""Smallest CMA-ES generation; rounds of fewer samples are pooled into generations."""


class CMAESOptimizer:
    """Covariance Matrix Adaptation Evolution Strategy (pycma), ask/tell.

    The search runs on the unit cube mapped linearly onto the bounds, with
    pycma's own boundary handling, so every asked point lies inside the bounds
    and ``sigma0`` is a fraction of each parameter's range.

    Parameters
    ----------
    sigma0 : float
        Initial step size as a fraction of the ranges (default 0.3).
    x0 : "center" or "random"
        Start at the centre of the box (default) or at a point drawn with the seed.
    seed : int, optional
        Seeds this optimizer's own random generator (pycma's global numpy seed
        is not used), so a seed repeats the same asks whatever else runs.
    **cma_options
        Further pycma options (``cma.CMAOptions()``), e.g. ``CMA_diagonal=True``.

    Notes
    -----
    A CMA-ES generation has the ``popsize`` the fitter passes to
    ``initialize`` (its ``n_samples``), at least 4 solutions. Rounds of fewer
    samples are pooled: pycma learns once a generation's errors are all told.
    """

    def __init__(self, sigma0: float = 0.3, x0: str = "center", seed: int | None = None,
                 **cma_options):
        if not (isinstance(sigma0, (int, float)) and 0 < sigma0 <= 1):
            raise ConfigurationError(f"CMAESOptimizer: sigma0 is a fraction of the parameter "
                                     f"ranges, 0 < sigma0 <= 1; got {sigma0!r}.")
        if x0 not in ("center", "random"):
            raise ConfigurationError(f"CMAESOptimizer: x0 must be 'center' or 'random'; "
                                     f"got {x0!r}.")
        self.sigma0, self.x0, self.seed = float(sigma0), x0, seed
        self.cma_options = cma_options
        self._es = None

    # -- the Optimizer protocol ------------------------------------------------------
    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Start a new search over ``bounds`` (name -> [lower, upper], SI floats)."""
        import cma  # pycma: imported when a fit starts (see the module docstring)

        names = list(parameter_names)
        missing = [n for n in names if n not in bounds]
        unknown = [n for n in bounds if n not in names]
        if missing or unknown:
            raise ConfigurationError(
                "CMAESOptimizer: " + (f"no bounds for {', '.join(missing)}. " if missing else "")
                + (f"bounds for unknown parameter(s) {', '.join(unknown)}." if unknown else ""))
        lower = np.array([float(bounds[n][0]) for n in names])
        upper = np.array([float(bounds[n][1]) for n in names])
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
                and np.all(lower < upper)):
            raise ConfigurationError("CMAESOptimizer: every parameter needs finite bounds "
                                     "with lower < upper.")
        self.parameter_names, self._lower, self._upper = names, lower, upper
        self._rng = np.random.RandomState(self.seed)
        # pycma does not support one dimension: search in two, ignore the second
        dimension = max(len(names), 2)
        start = np.full(dimension, 0.5) if self.x0 == "center" else \
            self._rng.uniform(0.2, 0.8, dimension)
        options = {"bounds": [0.0, 1.0], "popsize": max(int(popsize), MIN_POPULATION),
                   "randn": self._rng.randn, "seed": math.nan,
                   "verbose": -9, "verb_log": 0, "verb_disp": 0}
        options.update(self.cma_options)
        self._es = cma.CMAEvolutionStrategy(start, self.sigma0, options)
        self._lambda = int(self._es.popsize)
        self._queue: list[np.ndarray] = []  # this generation's solutions not yet asked for
        self._asked: dict[bytes, np.ndarray] = {}
        self._pool_x: list[np.ndarray] = []
        self._pool_f: list[float] = []
        self._best_vector: np.ndarray | None = None
        self._best_error = math.inf
        return self._lambda

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """``n_samples`` parameter vectors inside the bounds (SI units)."""
        self._check_initialized()
        vectors = []
        for _ in range(int(n_samples)):
            if not self._queue:  # whole generations, as pycma expects
                self._queue = list(self._es.ask())
            x = self._queue.pop(0)
            vector = self._to_si(x)
            self._asked[vector.tobytes()] = x
            vectors.append(vector)
        return [v.copy() for v in vectors]

    def tell(self, parameters, errors) -> None:
        """Report the errors of asked vectors; pycma learns once a generation is full."""
        self._check_initialized()
        errors = np.asarray(errors, dtype=float)
        if len(parameters) != len(errors):
            raise ConfigurationError("CMAESOptimizer.tell needs one error per parameter "
                                     f"vector; got {len(parameters)} vectors and "
                                     f"{len(errors)} errors.")
        for vector, error in zip(parameters, errors):
            vector = np.asarray(vector, dtype=float)
            x = self._asked.pop(vector.tobytes(), None)
            if x is None:  # a point this optimizer did not ask for: tell where it is
                x = np.full(self._es.N, 0.5)
                x[:vector.size] = np.clip((vector - self._lower) / (self._upper - self._lower),
                                          0.0, 1.0)
            self._pool_x.append(x)
            self._pool_f.append(float(error))
            if np.isfinite(error) and error < self._best_error:
                self._best_error, self._best_vector = float(error), vector.copy()
        if len(self._pool_x) >= self._lambda:  # a generation is complete: learn
            self._es.tell(self._pool_x, _rankable(self._pool_f))
            self._pool_x, self._pool_f = [], []
            self._queue.clear()  # never asked for, from the previous distribution
            self._asked.clear()

    def recommend(self) -> np.ndarray:
        """The best vector told so far, or the centre of the search distribution."""
        self._check_initialized()
        if self._best_vector is not None:
            return self._best_vector.copy()
        return self._to_si(self._es.boundary_handler.repair(self._es.mean))

    # -- helpers ----------------------------------------------------------------------
    def _check_initialized(self):
        if self._es is None:
            raise FitStateError("CMAESOptimizer.initialize() must be called first.")

    def _to_si(self, x) -> np.ndarray:
        unit = np.asarray(x, dtype=float)[:len(self._lower)]
        return np.clip(self._lower + unit * (self._upper - self._lower), self._lower,
                       self._upper)

    def __repr__(self):
        return f"CMAESOptimizer(sigma0={self.sigma0!r}, seed={self.seed!r})"


def _rankable(values: list[float]) -> list[float]:
    """Only ranks matter to CMA-ES: non-finite errors become worse than every finite one."""
    array = np.asarray(values, dtype=float)
    finite = np.isfinite(array)
    worst = array[finite].max() if finite.any() else 0.0
    return np.where(finite, array, worst + abs(worst) + 1.0).tolist()
