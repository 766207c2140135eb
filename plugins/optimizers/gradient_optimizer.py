"""Gradient-based global search: many Levenberg-Marquardt starts, replaced when done.

Each round holds ``n_samples`` current points ("starts"). The fit simulates all
of them together with their sensitivity equations and tells this optimizer,
with the errors, each point's normal equations
(:class:`~modelfit_core.contracts.protocols.NormalEquations`, the optimizer
declares it wants them by having ``tell_gradients``). Every start then takes a
damped Gauss-Newton step from its own Jacobian
(:mod:`~modelfit_plugins.optimizers.gradient_steps`): a step that lowers the
error is accepted and the damping relaxed, one that does not is rejected and
the damping raised. A start that has converged (its error no longer falls),
stalled (damping too large), stopped on a bound or diverged is replaced by a new
point: the next point of a scrambled Sobol sequence over the box, or (with
probability ``local_fraction``) a point near the best one seen, so the search
stays global. All randomness comes from ``seed``: a fit repeats exactly, and a
resumed fit (the stored normal equations told again) continues exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from modelfit_plugins.optimizers.bounds import calc_bounds
from modelfit_plugins.optimizers.gradient_steps import (
    damped_step,
    predicted_decrease,
    projected_gradient_norm,
)

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_core.contracts.protocols import NormalEquations

SMALLEST_STEP = 1e-9
"""A step shorter than this (in units of the box) means the start cannot move."""


class GaussNewtonOptimizer:
    """Multi-start Levenberg-Marquardt over the parameter box (``optimizer='gradient'``).

    Parameters
    ----------
    seed : int, optional
        Seed of the space-filling design and of the restarts near the best point:
        the whole search repeats exactly.
    damping : float
        The starting Levenberg-Marquardt damping (lambda) of every start.
    max_step : float
        The largest change of a parameter in one step, as a fraction of its range.
    local_fraction : float
        Probability that a replaced start is drawn near the best point seen (else
        from the space-filling design).
    local_spread : float
        Standard deviation of those points around the best, as a fraction of each
        range.
    tolerance : float
        A step lowering a start's error by less than this fraction counts as no
        progress.
    patience : int
        Steps without progress (or rejected) in a row after which a start is replaced.
    max_damping : float
        A start whose damping grows beyond this is replaced (its model of the error
        is no longer trustworthy).
    starts : int, optional
        Starts held at once, each simulated once per round. Default: one per parameter
        set of the fitter's ``n_samples``. The default optimizer chooses a few
        (:mod:`~modelfit_plugins.optimizers.gradient_default`): each start then takes
        more steps within the same budget.
    """

    calc_bounds = staticmethod(calc_bounds)

    suite_n_samples = 4
    """Starts per round in ``modelfit benchmark`` (docs/benchmark.md): 2 to 8 starts fit
    best (docs/gradient.md); a population's 50 points would spend the budget on few steps."""

    def __init__(self, seed: int | None = None, damping: float = 1e-2, max_step: float = 0.5,
                 local_fraction: float = 0.5, local_spread: float = 0.05,
                 tolerance: float = 1e-3, patience: int = 3, max_damping: float = 1e6,
                 starts: int | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ConfigurationError(f"seed must be an integer, got {seed!r}.")
        for name, value, low, high in (("damping", damping, 0, np.inf),
                                       ("max_step", max_step, 0, 1),
                                       ("local_fraction", local_fraction, 0, 1),
                                       ("local_spread", local_spread, 0, np.inf),
                                       ("tolerance", tolerance, 0, 1),
                                       ("max_damping", max_damping, 0, np.inf)):
            if not (isinstance(value, (int, float, np.floating, np.integer))
                    and low <= float(value) <= high) or (name == "max_step" and value == 0):
                raise ConfigurationError(f"GaussNewtonOptimizer: {name} must be a number in "
                                         f"[{low}, {high}], got {value!r}.")
        if not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ConfigurationError(f"GaussNewtonOptimizer: patience must be an integer >= 1, "
                                     f"got {patience!r}.")
        if starts is not None and (isinstance(starts, bool)
                                   or not isinstance(starts, (int, np.integer)) or starts < 1):
            raise ConfigurationError(f"GaussNewtonOptimizer: starts must be an integer >= 1 "
                                     f"or None (one per n_samples), got {starts!r}.")
        self.starts = None if starts is None else int(starts)
        self.seed = None if seed is None else int(seed)
        self.damping = float(damping)
        self.max_step = float(max_step)
        self.local_fraction = float(local_fraction)
        self.local_spread = float(local_spread)
        self.tolerance = float(tolerance)
        self.patience = int(patience)
        self.max_damping = float(max_damping)
        self._initialized = False

    def __repr__(self):
        return (f"GaussNewtonOptimizer(seed={self.seed!r}, damping={self.damping!r}, "
                f"max_step={self.max_step!r}, local_fraction={self.local_fraction!r}, "
                f"local_spread={self.local_spread!r}, tolerance={self.tolerance!r}, "
                f"patience={self.patience!r}, max_damping={self.max_damping!r}"
                + ("" if self.starts is None else f", starts={self.starts!r}") + ")")

    # -- the optimizer protocol -------------------------------------------------------
    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Set up ``popsize`` starts (or :attr:`starts`, returned) over ``bounds``
        (name -> [lower, upper], SI floats); the first round evaluates a space-filling
        design."""
        from scipy.stats import qmc

        self.parameter_names = list(parameter_names)
        pairs = np.array(calc_bounds(self.parameter_names, **bounds), dtype=float)
        self._lower, self._upper = pairs[:, 0], pairs[:, 1]
        self._width = np.where(self._upper > self._lower, self._upper - self._lower, 1.0)
        n, p = self.starts or int(popsize), len(self.parameter_names)
        self._rng = np.random.default_rng(self.seed)
        self._design = qmc.Sobol(d=p, scramble=True,
                                 seed=int(self._rng.integers(2 ** 32)))
        self._current = np.full((n, p), np.nan)
        """Each start's accepted point (NaN: a new start, not evaluated yet)."""
        self._error = np.full(n, np.inf)
        self._jtj = np.zeros((n, p, p))
        self._jtr = np.zeros((n, p))
        self._lambda = np.full(n, self.damping)
        self._idle = np.zeros(n, dtype=int)
        self._predicted = np.zeros(n)
        self._proposal = self._design_points(n)
        self._best_u: np.ndarray | None = None
        self._best_error = np.inf
        self.n_replaced = 0
        self._initialized = True
        return n

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """The point each start evaluates next (SI values inside the bounds)."""
        self._check_initialized()
        if n_samples != len(self._proposal):
            raise FitStateError(f"GaussNewtonOptimizer holds {len(self._proposal)} starts (the "
                                f"population given to initialize), asked for {n_samples}.")
        return [self._lower + u * self._width for u in self._proposal]

    def tell(self, parameters, errors) -> None:
        """Refused: this optimizer needs the normal equations (``tell_gradients``)."""
        raise FitStateError(
            "GaussNewtonOptimizer needs each point's normal equations: a fit gives them "
            "through tell_gradients() (fit(optimizer='gradient') simulates the "
            "sensitivities). Tell it with tell_gradients(parameters, errors, "
            "NormalEquations(jtj, jtr)).")

    def tell_gradients(self, parameters, errors, normal_equations: NormalEquations) -> None:
        """Take each start's step (accepted or not) and plan the next one."""
        self._check_initialized()
        points = np.vstack([np.asarray(v, dtype=float) for v in parameters])
        units = np.clip((points - self._lower) / self._width, 0, 1)
        errors = np.asarray(errors, dtype=float)
        jtj = np.asarray(normal_equations.jtj, dtype=float)
        jtr = np.asarray(normal_equations.jtr, dtype=float)
        if len(errors) != len(self._proposal) or jtj.shape[0] != len(errors):
            raise FitStateError(f"GaussNewtonOptimizer was told {len(errors)} errors and "
                                f"{jtj.shape[0]} normal equations for "
                                f"{len(self._proposal)} asked points.")
        finite = np.isfinite(errors)
        if finite.any():
            k = int(np.argmin(np.where(finite, errors, np.inf)))
            if errors[k] < self._best_error:
                self._best_error, self._best_u = float(errors[k]), units[k].copy()
        for i in range(len(errors)):
            self._update_start(i, units[i], float(errors[i]), jtj[i], jtr[i])

    def recommend(self) -> np.ndarray:
        """The best point evaluated so far (the box's centre before any)."""
        self._check_initialized()
        best = self._best_u if self._best_u is not None else np.full(len(self._lower), 0.5)
        return self._lower + best * self._width

    # -- one start ---------------------------------------------------------------------------
    def _update_start(self, i: int, u: np.ndarray, error: float, jtj: np.ndarray,
                      jtr: np.ndarray) -> None:
        usable = np.isfinite(error) and np.isfinite(jtj).all() and np.isfinite(jtr).all()
        if np.isnan(self._current[i]).any():  # a new start's first evaluation
            if not usable:
                return self._replace(i)
            self._accept(i, u, error, jtj, jtr)
        elif usable and error < self._error[i]:
            gain = self._error[i] - error
            ratio = gain / max(self._predicted[i], 1e-300)
            progress = gain > self.tolerance * self._error[i]
            self._accept(i, u, error, jtj, jtr)
            if ratio > 0.75:
                self._lambda[i] /= 3
            elif ratio < 0.25:
                self._lambda[i] *= 2
            self._idle[i] = 0 if progress else self._idle[i] + 1
        else:  # the step made things worse: stay, and trust the model less
            self._lambda[i] *= 4
            self._idle[i] += 1
        if self._idle[i] >= self.patience or self._lambda[i] > self.max_damping \
                or self._error[i] == 0 or projected_gradient_norm(
                    self._current[i], self._jtr[i]) <= 1e-14 * max(self._error[i], 1e-300):
            return self._replace(i)
        step = damped_step(self._current[i], self._jtj[i], self._jtr[i], self._lambda[i],
                           self.max_step)
        if np.max(np.abs(step), initial=0) < SMALLEST_STEP:
            return self._replace(i)  # held on the bounds, or at a stationary point
        self._predicted[i] = predicted_decrease(self._jtj[i], self._jtr[i], step)
        self._proposal[i] = self._current[i] + step

    def _accept(self, i, u, error, jtj, jtr) -> None:
        self._current[i], self._error[i] = u, error
        self._jtj[i], self._jtr[i] = jtj, jtr

    def _replace(self, i: int) -> None:
        """Start ``i`` again elsewhere: near the best point or from the design."""
        self.n_replaced += 1
        p = len(self._lower)
        self._current[i] = np.nan
        self._error[i] = np.inf
        self._lambda[i] = self.damping
        self._idle[i] = 0
        if self._best_u is not None and self._rng.random() < self.local_fraction:
            point = self._best_u + self._rng.normal(0, self.local_spread, p)
            self._proposal[i] = np.clip(point, 0, 1)
        else:
            self._proposal[i] = self._design_points(1)[0]

    def _design_points(self, n: int) -> np.ndarray:
        with warnings.catch_warnings():
            # "The balance properties of Sobol' points require n to be a power of 2":
            # the sequence is drawn point by point as starts are replaced
            warnings.simplefilter("ignore", UserWarning)
            return self._design.random(n)

    def _check_initialized(self) -> None:
        if not self._initialized:
            raise FitStateError("GaussNewtonOptimizer.initialize() must be called first.")
