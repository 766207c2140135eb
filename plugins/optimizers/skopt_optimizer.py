"""Sequential model-based (Bayesian) optimization with scikit-optimize (skopt).

skopt and scikit-learn are imported when an optimizer is first created (the
surrogate models, which subclass them, live in
:mod:`~modelfit_plugins.optimizers.skopt_models`), so loading the plugin (which
every :class:`~modelfit_core.registry.plugin_registry.Registry` does) stays cheap.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_plugins.optimizers.bounds import calc_bounds

METHODS = ("GP", "RF", "ET", "GBRT")
"""skopt's surrogate models: Gaussian process, random forest, extra trees,
gradient-boosted trees. (skopt's "DUMMY" random search fails with scikit-learn
>= 1.6 inside skopt itself; nevergrad's "RandomSearch" does that job.)"""

_OWN = {"base_estimator", "dimensions", "random_state", "n_initial_points", "acq_func",
        "acq_optimizer"}


class SkoptOptimizer:
    """scikit-optimize's ask/tell ``Optimizer`` over the parameter bounds.

    Parameters
    ----------
    method : {"GP", "RF", "ET", "GBRT"} or sklearn regressor
        The surrogate model: Gaussian process (default), random forest, extra
        trees, gradient-boosted trees, or any scikit-learn regressor (for
        ``acq_func`` other than "gp_hedge"/"EI"/"PI"/"LCB" it must predict a
        standard deviation, e.g. ``predict(X, return_std=True)``).
    n_initial_points : int
        Random points evaluated before the surrogate is used (default 10).
    acq_func : str
        Acquisition function: "gp_hedge" (default), "EI", "PI", "LCB".
    acq_optimizer : str
        "auto" (default), "sampling" or "lbfgs".
    random_state : int, optional
        Seed of skopt's random state: the whole search repeats exactly.
    seed : int, optional
        Same as ``random_state`` (the name every modelfit optimizer understands).
    ask_strategy : str
        How skopt proposes several points at once: "cl_min" (default),
        "cl_mean", "cl_max" (constant liar: each proposed point is told to a
        copy of the optimizer with a made-up error before the next is proposed).
    fast_batch : bool
        With a Gaussian process, keep the kernel hyperparameters fitted on the
        real evaluations while proposing the points of a batch, instead of
        re-optimizing them after every made-up error as skopt does: a round
        costs one hyperparameter fit instead of ``n_samples + 1`` (several
        times faster), the proposals differ slightly. Default False (skopt's
        behaviour).
    **options
        Passed to ``skopt.Optimizer`` (``acq_func_kwargs``, ``acq_optimizer_kwargs``,
        ``initial_point_generator``, ``n_jobs``, ``model_queue_size``, ...).
    """

    calc_bounds = staticmethod(calc_bounds)

    suite_methods: tuple[str, ...] = ("GP",)
    """Methods ``modelfit benchmark`` runs by default (docs/benchmark.md)."""
    suite_max_evaluations = 200
    """Bayesian optimization refits its model for every proposed point: beyond a few
    hundred evaluations a run takes hours, so the suite stops it there."""

    def __init__(self, method="GP", n_initial_points=10, acq_func="gp_hedge",
                 acq_optimizer="auto", random_state=None, seed=None, ask_strategy="cl_min",
                 fast_batch=False, **options):
        from sklearn.base import RegressorMixin
        from skopt import Optimizer as _SkoptOptimizer

        if isinstance(method, str):
            if method.upper() not in METHODS:
                raise ConfigurationError(f"Unknown skopt method {method!r}; use one of "
                                         f"{', '.join(METHODS)} or a scikit-learn regressor.")
        elif not (isinstance(method, RegressorMixin) or
                  (hasattr(method, "fit") and hasattr(method, "predict"))):
            raise ConfigurationError(f"The skopt method must be one of {', '.join(METHODS)} "
                                     f"or a scikit-learn regressor; got {method!r}.")
        if seed is not None and random_state is not None and seed != random_state:
            raise ConfigurationError(f"seed={seed!r} and random_state={random_state!r} "
                                     f"disagree; give one of them.")
        if random_state is None:
            random_state = seed
        if random_state is not None and not isinstance(random_state, (int, np.integer)):
            raise ConfigurationError("random_state (or seed) must be an integer; a shared "
                                     "RandomState would not repeat a fit.")
        if "ps" in str(acq_func):
            raise ConfigurationError(f"acq_func={acq_func!r} needs evaluation times, which "
                                     f"modelfit does not report; use 'gp_hedge', 'EI', 'PI' "
                                     f"or 'LCB'.")
        accepted = set(inspect.signature(_SkoptOptimizer).parameters) - _OWN
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ConfigurationError(f"skopt.Optimizer has no option "
                                     f"{', '.join(map(repr, unknown))}; its options: "
                                     f"{', '.join(sorted(accepted))}.")
        if ask_strategy not in ("cl_min", "cl_mean", "cl_max"):
            raise ConfigurationError(f"Unknown ask_strategy {ask_strategy!r}; use 'cl_min', "
                                     f"'cl_mean' or 'cl_max'.")
        self.method = method
        self.n_initial_points = n_initial_points
        self.acq_func = acq_func
        self.acq_optimizer = acq_optimizer
        self.random_state = random_state
        self.seed = random_state
        self.ask_strategy = ask_strategy
        self.fast_batch = bool(fast_batch)
        self.options = dict(options)
        self.optim = None

    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Set up the search over ``bounds`` (name -> [lower, upper], SI floats)."""
        from skopt import Optimizer as _SkoptOptimizer
        from skopt.space import Real

        from modelfit_plugins.optimizers import skopt_models

        self.parameter_names = list(parameter_names)
        pairs = calc_bounds(self.parameter_names, **bounds)
        self._lower = np.array([p[0] for p in pairs])
        self._upper = np.array([p[1] for p in pairs])
        dimensions = [Real(low, high, transform="normalize", name=name)
                      for name, (low, high) in zip(self.parameter_names, pairs)]
        rng = np.random.RandomState(self.random_state)
        estimator = skopt_models.surrogate(self.method, dimensions, rng,
                                           self.options.get("n_jobs", 1))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.optim = _SkoptOptimizer(
                    dimensions=dimensions, base_estimator=estimator,
                    n_initial_points=self.n_initial_points, acq_func=self.acq_func,
                    acq_optimizer=self.acq_optimizer, random_state=rng, **self.options)
        except ValueError as exc:
            raise ConfigurationError(f"scikit-optimize rejected the configuration: "
                                     f"{exc}") from exc
        return popsize

    def _check_initialized(self):
        if self.optim is None:
            raise FitStateError("SkoptOptimizer.initialize() must be called first.")

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """``n_samples`` parameter vectors inside the bounds, in SI units."""
        self._check_initialized()
        with warnings.catch_warnings():
            # "The objective has been evaluated at point ... before": harmless here
            warnings.simplefilter("ignore", UserWarning)
            if n_samples == 1:
                points = [self.optim.ask()]
            elif self.fast_batch:
                points = self._ask_batch(n_samples)
            else:
                points = self.optim.ask(n_points=n_samples, strategy=self.ask_strategy)
        return [np.clip(np.asarray(p, dtype=float), self._lower, self._upper)
                for p in points]

    def _ask_batch(self, n_samples):
        """skopt's constant-liar batch (``Optimizer.ask(n_points)``), with the GP kernel fixed."""
        from modelfit_plugins.optimizers import skopt_models

        optim = self.optim
        lie = {"cl_min": np.min, "cl_mean": np.mean, "cl_max": np.max}[self.ask_strategy]
        fixed = skopt_models.fixed_kernel_copy(optim.models[-1]) if optim.models else None
        original = optim.base_estimator_
        if fixed is not None:  # the copy refits on the real points with the fixed kernel
            optim.base_estimator_ = fixed
        try:
            copy = optim.copy(random_state=optim.rng.randint(0, np.iinfo(np.int32).max))
        finally:
            optim.base_estimator_ = original
        points = []
        for _ in range(n_samples):
            point = copy.ask()
            points.append(point)
            copy._tell(point, float(lie(copy.yi)) if copy.yi else 0.0)
        return points

    def tell(self, parameters, errors) -> None:
        """Report errors for parameter vectors (asked or not)."""
        self._check_initialized()
        errors = [float(e) for e in np.asarray(errors, dtype=float)]
        if len(parameters) != len(errors):
            raise ConfigurationError("tell() needs one error per parameter vector.")
        points = [[float(v) for v in np.clip(np.asarray(p, dtype=float), self._lower,
                                             self._upper)] for p in parameters]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.optim.tell(points, errors)

    @property
    def tested_parameters(self) -> list:
        """Every parameter vector told so far (SI), as brian2modelfitting's optimizers keep."""
        return [] if self.optim is None else [np.asarray(x, dtype=float) for x in self.optim.Xi]

    @property
    def errors(self) -> list[float]:
        """The error of each of :attr:`tested_parameters`."""
        return [] if self.optim is None else [float(y) for y in self.optim.yi]

    def recommend(self) -> np.ndarray:
        """The best parameters told so far, in SI units."""
        self._check_initialized()
        if not self.optim.yi:
            raise FitStateError("Nothing was told to the optimizer yet.")
        return np.asarray(self.optim.Xi[int(np.argmin(self.optim.yi))], dtype=float)

    def __repr__(self):
        method = self.method if isinstance(self.method, str) else type(self.method).__name__
        return f"SkoptOptimizer(method={method!r}, random_state={self.random_state!r})"
