"""Population-based optimization with pymoo, asked and told a whole generation at a time.

nevergrad asks and tells one candidate at a time: on the tutorial's HH fit
(100 samples per round) that costs about as much as the simulation itself.
pymoo's ask-and-tell interface hands out a whole population as one array and
learns from one array of errors, so a round's optimizer overhead is a few
vectorized operations. pymoo (and pycma, for CMA-ES) is imported when a fit
starts (``initialize``); creating the optimizer checks the method and option
names without importing it.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Sequence

import numpy as np

from modelfit_core.contracts.errors import (ArgumentTypeError, ConfigurationError,
                                            FitStateError)
from modelfit_plugins.optimizers.bounds import calc_bounds
from modelfit_plugins.optimizers.pymoo_methods import (build_algorithm, check_integer,
                                                       check_options, population_size,
                                                       resolve_method)


class Generation:
    """One population pymoo proposed: handed out round by round, told to pymoo whole."""

    __slots__ = ("number", "population", "vectors", "errors", "handed")

    def __init__(self, number: int, population, vectors: np.ndarray,
                 error_shape: tuple = ()):
        self.number = number
        self.population = population
        """pymoo's Population (its ``X`` in the unit cube)."""
        self.vectors = vectors
        """The same points in SI units, as handed out."""
        self.errors = np.full((len(vectors), *error_shape), np.nan)
        """The error of each point (a row of objectives with several); NaN until told."""
        self.handed = 0
        """How many points (the first ones) have been handed out by ``ask``."""

    @property
    def size(self) -> int:
        return len(self.vectors)

    def complete(self) -> bool:
        return not np.isnan(self.errors).any()


def _waiting(errors: np.ndarray) -> np.ndarray:
    """Which points (rows of ``errors``, one error or one row of objectives each) have
    not been told yet."""
    return np.isnan(errors).any(axis=tuple(range(1, errors.ndim)))


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array, dtype=float).tobytes(),
                           digest_size=16).digest()


class PymooOptimizer:
    """pymoo's DE, PSO, GA or CMA-ES through pymoo's ask-and-tell interface.

    The search runs on the unit cube mapped linearly onto the bounds (pymoo's
    operators repair points into the cube), so every asked point lies inside the
    bounds. Each pymoo generation is asked for as one array and told as one array.

    Parameters
    ----------
    method : {"DE", "PSO", "GA", "CMAES"}
        pymoo's differential evolution (variant "DE/best/1/bin", CR=0.9 by default),
        particle swarm optimization, genetic algorithm, or CMA-ES (pycma).
        Case-insensitive. pymoo's NelderMead proposes one point at a time and is
        not offered.
    seed : int, optional
        Makes the search repeat exactly (pymoo's ``seed``; CMA-ES's draws from
        numpy's global random state are made on a private stream, and the
        caller's global state is left untouched). Without a seed every fit differs.
    **options
        pymoo's keyword arguments of the method, e.g. ``pop_size`` (every method),
        ``variant``, ``F``, ``CR`` (DE), ``w``, ``c1``, ``c2`` (PSO), ``crossover``,
        ``mutation`` (GA), ``sigma``, ``restarts`` and pycma's options (CMAES).
        An unknown name is a ConfigurationError listing the accepted ones.

    Notes
    -----
    ``initialize`` returns the generation size used: ``pop_size`` (default: the
    fitter's ``n_samples``), at least the method's minimum (DE 4, CMA-ES 4, PSO
    and GA 2) and at least ``n_samples`` (pymoo proposes a generation only after
    learning from the last, so one round cannot span two generations). Rounds smaller than a generation are queued and their errors
    pooled: pymoo learns once the generation's errors are all told. A round
    that needs more points than the current generation has left gets them from
    the next generation, which DE, PSO and GA propose at once (once pymoo has
    learnt from its initial sample); CMA-ES must learn first, so it drops the
    rest of a generation whose asked points are all told (pymoo is told them as
    the worst error; they are never simulated), and it cannot be asked for more
    than one generation in a round (a FitStateError says so). When CMA-ES has
    converged it starts again (with a new seed drawn from ``seed``), so a fit
    never runs out of points.
    """

    calc_bounds = staticmethod(calc_bounds)
    error_shape: tuple = ()
    """The shape of one point's error: () for one objective, (k,) for k objectives."""

    suite_methods: tuple[str, ...] = ("DE", "CMAES", "PSO", "GA")
    """Methods ``modelfit benchmark`` runs by default (docs/benchmark.md)."""

    def __init__(self, method: str = "DE", seed: int | None = None, **options):
        self._spec = self.resolve(method)
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer))):
            raise ArgumentTypeError(f"PymooOptimizer: seed must be an integer; got {seed!r}.")
        if seed is not None and seed < 0:
            raise ConfigurationError(f"PymooOptimizer: seed must be >= 0; got {seed!r}.")
        check_options(self._spec, options)
        self.method = self._spec.name
        self.seed = None if seed is None else int(seed)
        self.options = dict(options)
        self._algorithm = None
        self._reset()

    def _reset(self) -> None:
        self._open: list[Generation] = []  # oldest first
        self._log: list[tuple] = []        # what pymoo was asked and told, to rebuild it
        self._n_generations = 0
        self._restarts = 0
        self._replaying = False
        self._last_ask: tuple | None = None  # (matrix, [(generation, start, stop)])
        self._best_vector: np.ndarray | None = None
        self._best_error = np.inf
        self._worst_error = -np.inf
        self.tested_parameters: list[np.ndarray] = []
        """Every parameter vector told so far (SI), as brian2modelfitting's optimizers keep."""
        self.errors: list[float] = []
        """The error of each of :attr:`tested_parameters`."""

    @staticmethod
    def resolve(method):
        """The method's :class:`~.pymoo_methods.MethodSpec` (subclasses offer others)."""
        return resolve_method(method)

    def error_array(self, errors, n_vectors: int) -> np.ndarray:
        """The errors told for ``n_vectors`` vectors, as an array of one error per vector."""
        errors = np.asarray(errors, dtype=float).reshape(-1)
        if n_vectors != errors.size:
            raise ConfigurationError(f"PymooOptimizer.tell needs one error per parameter "
                                     f"vector; got {n_vectors} vectors and "
                                     f"{errors.size} errors.")
        return errors

    def algorithm_options(self) -> dict:
        """pymoo's keyword arguments for the algorithm (subclasses add their own)."""
        return self.options

    @property
    def optim(self):
        """pymoo's algorithm (None before ``initialize``), as brian2modelfitting's
        optimizers expose their library's object."""
        return self._algorithm

    # -- the protocol -----------------------------------------------------------------
    def initialize(self, parameter_names: Sequence[str], popsize: int, rounds: int,
                   **bounds) -> int:
        """Start a new search over ``bounds`` (name -> [lower, upper], SI floats).

        Returns
        -------
        int
            The generation size the algorithm uses (see the class's notes).
        """
        popsize = check_integer(popsize, "PymooOptimizer.initialize: popsize", 1)
        self.parameter_names = list(parameter_names)
        pairs = np.array(calc_bounds(self.parameter_names, **bounds), dtype=float)
        self._lower, self._upper = pairs[:, 0], pairs[:, 1]
        self.rounds = rounds
        self.population = population_size(self._spec, self.options, int(popsize))
        # without a seed, one is drawn now: a pickled optimizer is rebuilt by replaying
        # what pymoo was asked and told, which needs the same random draws
        self._root_seed = (self.seed if self.seed is not None
                           else int(np.random.SeedSequence().entropy))
        self._reset()
        self._start()
        return self.population

    def ask(self, n_samples: int) -> list[np.ndarray]:
        """``n_samples`` parameter vectors inside the bounds, in SI units."""
        self._check_initialized()
        need, pieces = check_integer(n_samples, "PymooOptimizer.ask: n_samples", 0), []
        while need > 0:
            current = self._open[-1] if self._open else None
            if current is not None and current.handed < current.size:
                rest = current.size - current.handed
                if rest < need and not self._may_overlap():
                    if 0 < current.handed and self._all_handed_told(current):
                        self._drop_rest(current)
                        continue
                    raise self._cannot_ask(n_samples)
                take = min(rest, need)
                pieces.append((current, current.handed, current.handed + take))
                current.handed += take
                need -= take
            elif self._open and not self._may_overlap():
                raise self._cannot_ask(n_samples)
            else:
                self._open.append(self._new_generation())
        matrix = (np.vstack([g.vectors[a:b] for g, a, b in pieces]) if pieces
                  else np.empty((0, len(self._lower))))
        self._last_ask = (matrix, pieces)
        return list(matrix.copy())  # rows of the caller's own array

    def tell(self, parameters, errors) -> None:
        """Report the errors of asked vectors; pymoo learns from each complete generation.

        A vector this optimizer did not ask for counts for :meth:`recommend` and
        :attr:`tested_parameters`, but pymoo does not learn from it.
        """
        self._check_initialized()
        errors = self.error_array(errors, len(parameters))
        if errors.size == 0:
            return
        matrix = np.vstack([np.asarray(v, dtype=float).reshape(-1) for v in parameters])
        if matrix.shape[1] != len(self._lower):
            raise ConfigurationError(f"PymooOptimizer.tell: vectors of {matrix.shape[1]} "
                                     f"values for {len(self._lower)} parameters "
                                     f"{self.parameter_names}.")
        self._record(matrix, errors)
        told = self._finite(errors)
        last, self._last_ask = self._last_ask, None
        if last is not None and np.array_equal(last[0], matrix):
            offset = 0  # the usual case: exactly the last ask, in order
            for generation, start, stop in last[1]:
                generation.errors[start:stop] = told[offset:offset + stop - start]
                offset += stop - start
        else:
            self._tell_one_by_one(matrix, told)
        for generation in [g for g in self._open if g.complete()]:
            self._open.remove(generation)
            self._pymoo_tell(generation)

    def recommend(self) -> np.ndarray:
        """The best parameters told so far (SI), or the centre of the bounds before any."""
        self._check_initialized()
        if self._best_vector is not None:
            return self._best_vector.copy()
        return (self._lower + self._upper) / 2

    # -- pymoo ------------------------------------------------------------------------
    def _pymoo_seed(self, run: int) -> int:
        """The seed of the ``run``-th pymoo algorithm of this fit (0, then one per restart).

        Never 0: pycma takes a seed of 0 to mean "seed from the clock".
        """
        state = np.random.SeedSequence([self._root_seed, run]).generate_state(1)[0]
        return int(state) % (2 ** 31 - 2) + 1

    def _start(self) -> None:
        seed = self._pymoo_seed(self._restarts)
        n_var = max(len(self._lower), self._spec.min_dimensions)
        # pycma reseeds numpy's global random state and samples from it: give it its own
        self._global_state = np.random.RandomState(seed).get_state()
        with self._random():
            self._algorithm, self._problem = build_algorithm(
                self._spec, self.algorithm_options(), self.population, n_var, seed,
                n_obj=max(1, int(np.prod(self.error_shape))))

    @contextlib.contextmanager
    def _random(self):
        """pymoo's calls draw from this optimizer's global stream, if the method needs one
        (and numpy's overflow warnings are silenced where they are expected)."""
        errstate = (np.errstate(over="ignore") if self._spec.quiet_overflow
                    else contextlib.nullcontext())
        if not self._spec.global_random:
            with errstate:
                yield
            return
        saved = np.random.get_state()
        np.random.set_state(self._global_state)
        try:
            with errstate:
                yield
        finally:
            self._global_state = np.random.get_state()
            np.random.set_state(saved)

    def _new_generation(self, expected: bytes | None = None) -> Generation:
        """pymoo's next generation; ``expected``: its digest when replaying the log."""
        try:
            with self._random():
                population = self._algorithm.ask()
        except ConfigurationError:
            raise
        except Exception as exc:
            raise self._failure("asked for a generation", exc) from exc
        unit = np.asarray(population.get("X"), dtype=float).reshape(len(population), -1)
        if getattr(self._algorithm, "send_array_to_yield", True) is False \
                and self.population > 1:
            # pycma has stopped (converged): pymoo's CMA-ES hands back its final solution
            # alone instead of a generation. A new run, as its own restarts would; the
            # same draws happen when a pickled optimizer is replayed
            self._restarts += 1
            self._start()
            return self._new_generation(expected)
        if len(unit) == 0:
            raise ConfigurationError(
                f"pymoo's {self.method} proposed no new point: every offspring duplicated "
                f"a member of its population (it has converged). Use another method, or "
                f"eliminate_duplicates=False with GA.")
        if expected is None:
            self._log.append(("ask", _digest(unit)))
        elif _digest(unit) != expected:
            raise FitStateError(
                f"PymooOptimizer({self.method!r}) cannot be restored: pymoo proposed other "
                f"points than before it was pickled (another pymoo version?).")
        self._n_generations += 1
        d = len(self._lower)  # a dimension added for pycma is ignored
        vectors = np.clip(self._lower + unit[:, :d] * (self._upper - self._lower),
                          self._lower, self._upper)
        return Generation(self._n_generations - 1, population, vectors, self.error_shape)

    def _pymoo_tell(self, generation: Generation) -> None:
        if not self._replaying:
            self._log.append(("tell", generation.number, generation.errors.copy()))
        generation.population.set("F", generation.errors.reshape(generation.size, -1))
        try:
            with self._random():
                self._algorithm.tell(infills=generation.population)
        except Exception as exc:
            raise self._failure("told a generation's errors", exc) from exc
        if self._algorithm.termination.has_terminated():
            # CMA-ES stopped (converged): a new run, as its own restarts would
            self._restarts += 1
            self._start()

    def _may_overlap(self) -> bool:
        # before pymoo has been told its initial sample it has no population to breed from
        return self._spec.overlapping and bool(self._algorithm.is_initialized)

    def _drop_rest(self, generation: Generation) -> None:
        """Complete ``generation`` without its points not yet asked for (never simulated):
        pymoo is told them as the worst error, so they take no part in what it learns."""
        generation.errors[generation.handed:] = self._penalty()
        generation.handed = generation.size
        self._open.remove(generation)
        self._pymoo_tell(generation)

    # -- bookkeeping --------------------------------------------------------------------
    @staticmethod
    def _all_handed_told(generation: Generation) -> bool:
        return not np.isnan(generation.errors[:generation.handed]).any()

    def _penalty(self) -> float:
        """The fitter's rule for a diverged simulation: 10 x the worst finite error + 1."""
        worst = self._worst_error if np.isfinite(self._worst_error) else 0.0
        return 10.0 * abs(worst) + 1.0

    def _finite(self, errors: np.ndarray) -> np.ndarray:
        """Errors pymoo can rank (the fitter already tells only finite ones)."""
        finite = np.isfinite(errors)
        return errors if finite.all() else np.where(finite, errors, self._penalty())

    def _record(self, matrix: np.ndarray, errors: np.ndarray) -> None:
        self.tested_parameters.extend(matrix.copy())
        self.errors.extend(errors.tolist())
        finite = np.isfinite(errors)
        if finite.any():
            k = int(np.argmin(np.where(finite, errors, np.inf)))
            if errors[k] < self._best_error:
                self._best_error, self._best_vector = float(errors[k]), matrix[k].copy()
            self._worst_error = max(self._worst_error, float(errors[finite].max()))

    def _tell_one_by_one(self, matrix: np.ndarray, errors: np.ndarray) -> None:
        """Match told vectors to asked, untold points (any grouping, any order)."""
        waiting: dict[bytes, list] = {}
        for generation in self._open:
            for k in np.flatnonzero(_waiting(generation.errors[:generation.handed])):
                waiting.setdefault(generation.vectors[k].tobytes(), []).append((generation, k))
        for vector, error in zip(matrix, errors):
            slots = waiting.get(vector.tobytes())
            if slots:
                generation, k = slots.pop(0)
                generation.errors[k] = error

    def _check_initialized(self) -> None:
        if self._algorithm is None:
            raise FitStateError("PymooOptimizer.initialize() must be called first.")

    def _cannot_ask(self, n_samples) -> FitStateError:
        asked = sum(g.handed for g in self._open)
        told = sum(int((~_waiting(g.errors[:g.handed])).sum()) for g in self._open)
        return FitStateError(
            f"PymooOptimizer({self.method!r}) proposes generations of {self.population} "
            f"points and learns from each before proposing the next, so it cannot hand "
            f"out {n_samples} more points now ({asked} asked, {told} of them told, in the "
            f"current generation). Tell the errors of the points asked first, ask for at "
            f"most a generation per round, or initialize it with popsize={n_samples}.")

    def _failure(self, action: str, exc: Exception) -> ConfigurationError:
        shown = {k: v for k, v in self.options.items()}
        return ConfigurationError(f"pymoo's {self.method} (options {shown}) failed when "
                                  f"{action}: {type(exc).__name__}: {exc}")

    # -- pickling -------------------------------------------------------------------------
    def __getstate__(self):
        """Everything but pymoo's objects, which hold unpicklable parts (CMA-ES's
        generator, GA's decorated operators): pymoo is rebuilt on unpickling by
        replaying what it was asked and told, from the same seed."""
        state = self.__dict__.copy()
        for name in ("_algorithm", "_problem", "_global_state"):
            state.pop(name, None)
        state["_open"] = [(g.number, g.errors.copy(), g.handed) for g in self._open]
        if self._last_ask is not None:
            matrix, pieces = self._last_ask
            state["_last_ask"] = (matrix, [(g.number, a, b) for g, a, b in pieces])
        return state

    def __setstate__(self, state):
        opened, last = state.pop("_open"), state.pop("_last_ask")
        self.__dict__.update(state)
        self._algorithm, self._open, self._last_ask = None, [], None
        if "_root_seed" not in state:  # pickled before initialize
            return
        log, restarts = self._log, self._restarts
        self._restarts, self._n_generations = 0, 0
        self._replaying = True
        try:
            self._start()
            populations = {}
            for entry in log:
                if entry[0] == "ask":
                    generation = self._new_generation(expected=entry[1])
                    populations[generation.number] = generation
                else:
                    generation = populations.pop(entry[1])
                    generation.errors = entry[2].copy()
                    self._pymoo_tell(generation)
        finally:
            self._replaying = False
        if self._restarts != restarts:
            raise FitStateError(f"PymooOptimizer({self.method!r}) cannot be restored: "
                                f"the replay took another course than the original.")
        for number, errors, handed in opened:
            generation = populations[number]
            generation.errors, generation.handed = errors, handed
            self._open.append(generation)
        if last is not None:
            matrix, pieces = last
            self._last_ask = (matrix, [(populations[n], a, b) for n, a, b in pieces])

    def __repr__(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(method={self.method!r}, seed={self.seed!r}{options})"
