"""Gradient-free optimization with nevergrad (differential evolution by default).

nevergrad (with pandas and scikit-learn behind it) costs 1.5 s to import. It is
imported when a fit starts (``initialize``), or when an optimizer is created
with another method than the default or with options, which are checked
against nevergrad's registry at once. So ``from modelfit_core import *`` and a
default ``Pipeline`` stay cheap.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import sys
from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, FitStateError
from modelfit_plugins.optimizers.bounds import calc_bounds


def _import_nevergrad():
    """Import nevergrad with numpy's global random state seeded, then restored.

    A few registry entries draw their configuration from ``np.random`` when
    nevergrad is imported (``PolyLN``, ``MultiLN``, ...); seeding makes them
    the same in every process, so a seeded fit repeats across processes too,
    and the import leaves the user's global random state untouched.
    """
    if "nevergrad" in sys.modules:
        return sys.modules["nevergrad"]
    state = np.random.get_state()
    np.random.seed(12345)
    try:
        import nevergrad
    finally:
        np.random.set_state(state)
    return nevergrad


def __getattr__(name):
    # ``ng`` was a module global while nevergrad was imported with this module;
    # code that still reads it gets the module, imported (seeded) on first access
    if name == "ng":
        return _import_nevergrad()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_BOUNDINGS = ("arctan", "tanh", "bouncing", "clipping")
_CALL_OPTIONS = ("num_workers",)
_BATCH_METHODS = "'DE', 'TwoPointsDE', 'CMA', 'PSO', 'NGOpt'"


def _cma_defaults():
    """cma's default options (sequential methods run cma.fmin in a thread), if installed."""
    try:
        from cma import options_parameters
    except ImportError:
        return None
    return options_parameters.cma_default_options


def _method_name(method) -> str:
    return method if isinstance(method, str) else getattr(method, "name", repr(method))


def _is_sequential(factory) -> bool:
    """True for methods that propose one point at a time (asking for more can hang)."""
    if getattr(factory, "no_parallelization", False) or getattr(factory, "recast", False):
        return True
    _import_nevergrad()  # seeded, before a submodule import would import it unseeded
    from nevergrad.optimization.recaster import RecastOptimizer
    return inspect.isclass(factory) and issubclass(factory, RecastOptimizer)


def _configure(method, options: dict):
    """The nevergrad factory for ``method`` with configuration ``options`` applied.

    ``options`` are the keyword arguments of the method's nevergrad family
    (``DifferentialEvolution(popsize=..., crossover=...)``, ``ParametrizedCMA(
    popsize=..., elitist=...)``, ...), checked here so that a misspelled option
    fails when the optimizer is created.
    """
    ng = _import_nevergrad()
    from nevergrad.optimization.base import ConfiguredOptimizer
    factory = ng.optimizers.registry[method] if isinstance(method, str) else method
    if not options:
        return factory
    name = _method_name(method)
    if not isinstance(factory, ConfiguredOptimizer):
        raise ConfigurationError(
            f"nevergrad's {name!r} takes no configuration options, but got "
            f"{', '.join(sorted(options))}. Options of every method: budget, num_workers.")
    config = factory.config()
    try:
        parameters = inspect.signature(type(factory).__init__).parameters
        accepted = set(config) | {p for p, v in parameters.items() if p != "self" and
                                  v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
    except (TypeError, ValueError):
        accepted = set(config)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigurationError(
            f"nevergrad's {name!r} has no option {', '.join(map(repr, unknown))}. Its options: "
            f"{', '.join(sorted(accepted | {'budget', 'num_workers'}))}.")
    config.update(options)
    try:
        return type(factory)(**config)
    except Exception as exc:
        raise ConfigurationError(f"nevergrad's {name!r} rejected the options {options}: "
                                 f"{type(exc).__name__}: {exc}") from exc


class NevergradOptimizer:
    """Any optimizer of nevergrad's registry, by name, through ask/tell.

    The search runs on one nevergrad ``Array`` over the unit cube, mapped
    linearly onto the bounds: several times cheaper to ask for than an
    instrumentation of one ``Scalar`` per parameter, and asking is what
    dominates a round once the simulation is compiled. The cube is bounded
    with nevergrad's ``arctan`` transform by default, as brian2modelfitting's
    scalars were: on the tutorial's HH fit (10 rounds, 5 seeds) it reaches a
    median error 7x lower than "bouncing" or "clipping". Every method sees an
    unbounded space through that transform, so every method honours the bounds.

    Parameters
    ----------
    method : str or nevergrad optimizer class/factory
        A name from ``nevergrad.optimizers.registry`` ("DE", "CMA", "PSO",
        "TwoPointsDE", "NGOpt", ...). Default "DE". Sequential methods (SQP,
        Cobyla, NelderMead, BO, ...) propose one point at a time and need
        ``n_samples=1``; with more they raise a ConfigurationError.
    use_nevergrad_recommendation : bool
        ``recommend()`` returns nevergrad's recommendation (which accounts for
        repeated evaluations of noisy objectives) instead of the best parameters
        told so far (the default).
    seed : int, optional
        Makes the whole search repeat exactly: seeds the parametrization's random
        state, and gives the optimizer a private stream for the methods that
        draw from numpy's global random state (restoring the caller's afterwards).
    budget : int, optional
        Evaluations nevergrad plans for (default: n_samples × n_rounds).
    bounding : {"arctan", "tanh", "bouncing", "clipping"}
        How nevergrad keeps candidates inside the bounds (default "arctan").
    **options
        ``num_workers`` (default n_samples) is passed to the optimizer; every
        other option configures the method's nevergrad family, e.g.
        ``NevergradOptimizer("DE", popsize=50, crossover="twopoints")`` or
        ``NevergradOptimizer("CMA", elitist=True)``. Unknown options are an error.
    """

    calc_bounds = staticmethod(calc_bounds)

    DEFAULT_METHOD = "DE"

    suite_methods: tuple[str, ...] = ("DE", "CMA", "TwoPointsDE", "NGOpt")
    """Methods ``modelfit benchmark`` runs by default (docs/benchmark.md)."""

    def __init__(self, method=DEFAULT_METHOD, use_nevergrad_recommendation=False, seed=None,
                 budget=None, bounding="arctan", **options):
        if bounding not in _BOUNDINGS:
            raise ConfigurationError(f"Unknown bounding {bounding!r}; use one of "
                                     f"{', '.join(_BOUNDINGS)}.")
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer))):
            raise ConfigurationError(f"seed must be an integer; got {seed!r}.")
        self.bounding = bounding
        self.method = method
        self.use_nevergrad_recommendation = use_nevergrad_recommendation
        self.seed = seed
        self.budget = budget
        self.options = dict(options)
        self._call_options = {k: options.pop(k) for k in _CALL_OPTIONS if k in options}
        self._family_options = options
        # a chosen method or options are checked now; the default needs no check,
        # and nevergrad is then imported when the fit starts
        self._factory = None if (method == self.DEFAULT_METHOD and not options) \
            else self._nevergrad_factory()
        self._optimizer = None
        self._global_state = None
        self._sequential = False
        self._prefetched = None
        self._pending: dict[bytes, list] = {}
        """Candidates asked and not yet told, by their SI vector's bytes: several
        asks may wait for their errors at once (asynchronous evaluation)."""
        self._best_vector = None
        self._best_error = np.inf
        self.tested_parameters: list[np.ndarray] = []
        """Every parameter vector told so far (SI), as brian2modelfitting's optimizers keep."""
        self.errors: list[float] = []
        """The error of each of :attr:`tested_parameters`."""

    @property
    def optim(self):
        """The nevergrad optimizer itself (None before ``initialize``), as in
        brian2modelfitting."""
        return self._optimizer

    def _nevergrad_factory(self):
        """The method's nevergrad factory, configured (imports nevergrad)."""
        ng = _import_nevergrad()
        method = self.method
        if isinstance(method, str) and method not in ng.optimizers.registry:
            names = {name.lower(): name for name in ng.optimizers.registry}
            close = [names[n] for n in difflib.get_close_matches(method.lower(), list(names), n=3)]
            raise ConfigurationError(
                f"Unknown nevergrad method {method!r}." +
                (f" Did you mean {', '.join(map(repr, close))}?" if close else "") +
                " See nevergrad.optimizers.registry for all names.")
        return _configure(method, self._family_options)

    # -- randomness -------------------------------------------------------------
    @contextlib.contextmanager
    def _random(self):
        """With a seed, nevergrad's calls draw from this optimizer's own global stream."""
        if self._global_state is None:
            yield
            return
        saved, reseed = np.random.get_state(), np.random.seed
        np.random.set_state(self._global_state)

        def seed_from_stream(seed=None):
            # cma (CmaFmin2, Carola*) reseeds numpy from the OS clock: draw it instead
            reseed(int(np.random.randint(2 ** 31)) if seed is None else seed)

        np.random.seed = seed_from_stream
        cma_defaults = _cma_defaults() if self._sequential else None
        if cma_defaults is not None:  # cma adds the clock to its default seed 'time'
            cma_seed = cma_defaults.get("seed")
            cma_defaults["seed"] = int(np.random.randint(1, 2 ** 30))
        try:
            yield
        finally:
            if cma_defaults is not None:
                cma_defaults["seed"] = cma_seed
            np.random.seed = reseed
            self._global_state = np.random.get_state()
            np.random.set_state(saved)

    def _failure(self, action: str, exc: Exception) -> ConfigurationError:
        name = _method_name(self.method)
        text = " ".join(str(exc).split())
        if isinstance(exc, ImportError) or "No module named" in text:
            return ConfigurationError(f"nevergrad's {name!r} needs a package that is not "
                                      f"installed: {text.strip()}")
        if "budget" in text.lower() and self._optimizer is not None:
            return ConfigurationError(
                f"nevergrad's {name!r} plans its search for a budget of "
                f"{self._optimizer.budget} evaluations (n_samples x n_rounds of the first "
                f"fit() call) and cannot be asked for more ({text}). Pass "
                f"NevergradOptimizer({name!r}, budget=...) large enough for every round you "
                f"will run, or use a method without a fixed budget, e.g. {_BATCH_METHODS}.")
        return ConfigurationError(
            f"nevergrad's {name!r} failed when {action}: {type(exc).__name__}: {text}. "
            f"Methods that work in batches of n_samples points include {_BATCH_METHODS}.")

    # -- the protocol -----------------------------------------------------------
    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Set up the search over ``bounds`` (name -> [lower, upper], SI floats)."""
        self.parameter_names = list(parameter_names)
        pairs = np.array(calc_bounds(self.parameter_names, **bounds), dtype=float)
        self._lower, self._upper = pairs[:, 0], pairs[:, 1]
        num_workers = int(self._call_options.get("num_workers", popsize))
        self._num_workers = num_workers
        if self._factory is None:
            self._factory = self._nevergrad_factory()
        if _is_sequential(self._factory) and max(popsize, num_workers) > 1:
            raise ConfigurationError(
                f"nevergrad's {_method_name(self.method)!r} is sequential: it proposes one "
                f"point at a time and cannot be asked for n_samples={popsize} points per "
                f"round (it would hang or fail). Use n_samples=1 with it, or a method that "
                f"works in batches, e.g. {_BATCH_METHODS}.")
        self._global_state = (np.random.RandomState(self.seed).get_state()
                              if self.seed is not None else None)
        self._sequential = _is_sequential(self._factory)
        n_parameters = len(self.parameter_names)
        ng = _import_nevergrad()
        with self._random():
            if self.bounding == "bouncing":  # nevergrad's own default for bounded arrays
                parametrization = ng.p.Array(shape=(n_parameters,), lower=0.0, upper=1.0)
            else:
                parametrization = ng.p.Array(init=np.full(n_parameters, 0.5)).set_bounds(
                    0.0, 1.0, method=self.bounding)
            if self.seed is not None:
                parametrization.random_state = np.random.RandomState(self.seed)
            budget = self.budget if self.budget is not None else popsize * max(rounds, 1)
            try:
                self._optimizer = self._factory(parametrization=parametrization,
                                                budget=budget, num_workers=num_workers)
            except Exception as exc:
                if "parallel" in str(exc):
                    raise ConfigurationError(
                        f"nevergrad's {_method_name(self.method)!r} does not work in "
                        f"batches ({exc}); use n_samples=1 with it, or one of "
                        f"{_BATCH_METHODS}.") from exc
                raise self._failure("created", exc) from exc
        self._pending = {}
        self._best_vector, self._best_error = None, np.inf
        self._prefetched = None
        self.tested_parameters, self.errors = [], []
        # population methods (DE, PSO) keep a population of their own, of at least 30:
        # asked for fewer per round, they would spread one generation over rounds
        population = getattr(self._optimizer, "llambda", None)
        return int(population) if isinstance(population, (int, np.integer)) \
            and population > popsize else popsize

    def _next_candidate(self):
        prefetched, self._prefetched = self._prefetched, None
        if isinstance(prefetched, Exception):
            raise prefetched
        return prefetched if prefetched is not None else self._optimizer.ask()

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
        with self._random():
            try:
                candidates = [self._next_candidate() for _ in range(n_samples)]
            except Exception as exc:
                raise self._failure(f"asked for {n_samples} points", exc) from exc
        asked = [np.clip(self._to_si(c.value), self._lower, self._upper) for c in candidates]
        for vector, candidate in zip(asked, candidates):
            self._pending.setdefault(vector.tobytes(), []).append(candidate)
        return [vector.copy() for vector in asked]

    def tell(self, parameters, errors) -> None:
        """Report errors for asked vectors, in any order and after any number of asks
        (nevergrad learns from each as it comes); a vector never asked for is told as
        a new point."""
        self._check_initialized()
        errors = np.asarray(errors, dtype=float)
        if len(parameters) != len(errors):
            raise ConfigurationError("tell() needs one error per parameter vector.")
        with self._random():
            for vector, error in zip(parameters, errors):
                waiting = self._pending.get(np.asarray(vector, dtype=float).tobytes())
                if waiting:
                    candidate = waiting.pop(0)
                else:  # a point the optimizer did not ask for
                    candidate = self._optimizer.parametrization.spawn_child(
                        new_value=np.clip(self._to_unit(vector), 0.0, 1.0))
                try:
                    self._optimizer.tell(candidate, float(error))
                except Exception as exc:
                    raise self._failure("told the errors", exc) from exc
                if error < self._best_error:
                    self._best_error = float(error)
                    self._best_vector = np.asarray(vector, dtype=float).copy()
                self.tested_parameters.append(np.asarray(vector, dtype=float).copy())
                self.errors.append(float(error))
            if self._sequential and self.seed is not None:
                # A sequential method computes its next point in a background thread
                # (scipy, cma); fetch it now, while this optimizer's random stream is
                # active, so that the thread's draws repeat exactly.
                try:
                    self._prefetched = self._optimizer.ask()
                except Exception as exc:  # reported by the next ask()
                    self._prefetched = exc
        self._pending = {key: left for key, left in self._pending.items() if left}

    def points_in_flight(self) -> int:
        """How many asked points may wait for their errors at once (nevergrad's
        ``num_workers``; :class:`~modelfit_core.contracts.protocols.AsynchronousOptimizer`)."""
        self._check_initialized()
        return self._num_workers

    def recommend(self) -> np.ndarray:
        """The best parameters told so far (or nevergrad's recommendation), in SI units."""
        self._check_initialized()
        if self._best_vector is not None and not self.use_nevergrad_recommendation:
            return self._best_vector.copy()
        with self._random():
            return self._to_si(self._optimizer.provide_recommendation().value)

    def __repr__(self):
        return f"NevergradOptimizer(method={self.method!r}, seed={self.seed!r})"
