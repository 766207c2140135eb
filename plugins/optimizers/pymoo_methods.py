"""The pymoo algorithms :class:`~modelfit_plugins.optimizers.pymoo_optimizer.PymooOptimizer`
offers, their options, and how each one is built.

Method names and option names are checked here without importing pymoo, so a
misspelt option fails when the optimizer is created while ``from modelfit_core
import *`` stays cheap; pymoo itself (and pycma, for CMA-ES) is imported by
:func:`build_algorithm`, when a fit starts. ``tests/test_pymoo_optimizer.py``
checks that every option listed here is a keyword argument of the installed
pymoo's class, so that this table cannot drift from the library.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field

import numpy as np

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError


@dataclass(frozen=True)
class MethodSpec:
    """What :class:`PymooOptimizer` needs to know about one pymoo algorithm."""

    name: str
    module: str
    """The pymoo module that defines the algorithm's class."""
    class_name: str
    options: tuple[str, ...]
    """pymoo's keyword arguments a user may set (``pop_size`` is every method's)."""
    defaults: dict = field(default_factory=dict)
    """Our defaults, where they differ from pymoo's."""
    min_population: int = 2
    """The smallest generation the algorithm works with."""
    min_dimensions: int = 1
    """Searched dimensions (pycma needs two: a single parameter gets an ignored twin)."""
    overlapping: bool = True
    """Whether pymoo may be asked for a new generation before the previous one is told
    (true of the population-based algorithms; CMA-ES proposes its next generation only
    once it has learnt from the last)."""
    global_random: bool = False
    """The algorithm draws from numpy's global random state (pycma samples with
    ``np.random.randn`` and reseeds it), which the optimizer then swaps for its own."""
    library_options: str | None = None
    """Another library whose own options the algorithm passes on (``"cma"``)."""
    scipy_spatial: bool = True
    """pymoo imports scipy.spatial (0.1-0.2 s) in the middle of a later round (duplicate
    checks, Latin hypercube sampling): imported when the fit starts instead."""
    quiet_overflow: bool = False
    """Overflow in the algorithm's own formulas is expected and harmless (PSO's
    inertia ``1 / (1 + 1.5 exp(-2.6 f))`` overflows to its limit 0 when all particles
    are equally spread, e.g. a swarm of two), so numpy's warning is silenced."""

    @property
    def all_options(self) -> tuple[str, ...]:
        return ("pop_size",) + self.options


METHODS: dict[str, MethodSpec] = {
    spec.name: spec for spec in (
        # Storn and Price's DE/best/1/bin with CR = 0.9 (pymoo's CR is 0.2): a fit has
        # few, large generations. On the tutorial's HH fit (seeds 1-3) its median error
        # is 0.39 mV^2 at 100 samples x 10 rounds and 0.72 at 1000 x 5, against 15 and
        # 60 with CR = 0.2 and DE/rand/1/bin at 100 x 10 (nevergrad's DE: 0.90, 0.91)
        # pymoo's class with its duplicate check in numpy, not scipy.spatial (pymoo_de.py)
        MethodSpec("DE", "modelfit_plugins.optimizers.pymoo_de", "DE",
                   ("variant", "F", "CR", "jitter", "prob_mut", "sampling"),
                   defaults={"variant": "DE/best/1/bin", "CR": 0.9}, scipy_spatial=False,
                   # DE/x/1 draws three other members besides the target
                   min_population=4),
        # PSO's adaptation divides by (population - 1)
        MethodSpec("PSO", "pymoo.algorithms.soo.nonconvex.pso", "PSO",
                   ("sampling", "w", "c1", "c2", "adaptive", "initial_velocity",
                    "max_velocity_rate", "pertube_best"),
                   min_population=2, quiet_overflow=True),
        # tournament selection and crossover need two parents
        MethodSpec("GA", "pymoo.algorithms.soo.nonconvex.ga", "GA",
                   ("sampling", "selection", "crossover", "mutation", "eliminate_duplicates"),
                   min_population=2),
        # pycma's recombination needs at least two parents (mu = popsize // 2)
        MethodSpec("CMAES", "pymoo.algorithms.soo.nonconvex.cmaes", "CMAES",
                   ("sigma", "tolfun", "tolx", "restarts", "incpopsize"),
                   min_population=4, min_dimensions=2, overlapping=False,
                   global_random=True, library_options="cma"),
    )
}
"""The methods offered, by name."""

NOT_OFFERED = {
    "NelderMead": "pymoo's NelderMead proposes one point at a time (a reflection, an "
                  "expansion, a contraction), so it cannot use a round of many "
                  "simulations; use CMAES for a local search in batches, or "
                  "NevergradOptimizer('NelderMead') with n_samples=1",
}
"""pymoo algorithms that are deliberately not offered, and why."""


def resolve_method(method, methods: dict[str, MethodSpec] | None = None,
                   not_offered: dict[str, str] | None = None,
                   owner: str = "PymooOptimizer") -> MethodSpec:
    """The :class:`MethodSpec` of ``method`` (a name, case-insensitive) in ``methods``
    (default :data:`METHODS`; ``owner`` names the optimizer class in messages).

    Raises
    ------
    ArgumentTypeError
        ``method`` is not a string.
    ConfigurationError
        An unknown name (the accepted ones and the closest matches are listed), or a
        pymoo algorithm that is not offered (with the reason).
    """
    methods = METHODS if methods is None else methods
    not_offered = (NOT_OFFERED if methods is METHODS else {}) if not_offered is None \
        else not_offered
    if not isinstance(method, str):
        raise ArgumentTypeError(f"{owner}: method must be one of "
                                f"{', '.join(methods)} (a string); got {method!r}.")
    by_lower = {name.lower(): name for name in (*methods, *not_offered)}
    name = by_lower.get(method.lower())
    if name in not_offered:
        raise ConfigurationError(f"{owner}: {name!r} is not offered: "
                                 f"{not_offered[name]}.")
    if name is None:
        close = [by_lower[n] for n in difflib.get_close_matches(method.lower(), by_lower, n=2)
                 if by_lower[n] in methods]
        raise ConfigurationError(
            f"{owner}: unknown method {method!r}." +
            (f" Did you mean {' or '.join(map(repr, close))}?" if close else "") +
            f" The methods: {', '.join(methods)}.")
    return methods[name]


CMA_OPTIONS_SET_HERE = {
    "popsize": "the population is pop_size (default: the fitter's n_samples)",
    "bounds": "the search runs on the unit cube mapped onto the fit's bounds",
    "seed": "give PymooOptimizer(seed=...)",
    "randn": "pycma samples from a private stream seeded from seed=",
}
"""pycma options that pymoo's CMAES or this plugin set, and what to use instead."""


def check_options(spec: MethodSpec, options: dict) -> None:
    """Refuse options ``spec``'s algorithm does not take, naming the accepted ones.

    Raises
    ------
    ConfigurationError
        An unknown option (with the closest names and the list of accepted ones),
        or a ``pop_size`` that is not a positive integer (an ``ArgumentTypeError``
        when it is not an integer at all).
    """
    unknown = [name for name in options if name not in spec.all_options]
    if unknown and spec.library_options == "cma":
        taken = sorted(set(unknown) & set(CMA_OPTIONS_SET_HERE))
        if taken:
            raise ConfigurationError(
                f"PymooOptimizer({spec.name!r}) sets pycma's "
                f"{', '.join(map(repr, taken))} itself: "
                + "; ".join(CMA_OPTIONS_SET_HERE[name] for name in taken) + ".")
        # pycma's own options (CMA_diagonal, CMA_elitist, ...) reach CMAEvolutionStrategy
        unknown = [name for name in unknown if name not in cma_option_names()]
    if unknown:
        accepted = list(spec.all_options)
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, accepted, n=2)
            if close:
                hints.append(f"{name!r} (did you mean {' or '.join(map(repr, close))}?)")
            else:
                hints.append(repr(name))
        more = (", and pycma's options (cma.CMAOptions())"
                if spec.library_options == "cma" else "")
        raise ConfigurationError(
            f"PymooOptimizer({spec.name!r}) has no option {', '.join(hints)}. Its options: "
            f"{', '.join(accepted)}{more}. The seed is given as seed=; the search runs "
            f"until the fit stops, so there is no termination option.")
    if spec.name == "DE" and "variant" in options:
        check_de_variant(options["variant"])
    if "pop_size" in options:
        check_integer(options["pop_size"], f"PymooOptimizer({spec.name!r}): pop_size", 1)


def check_integer(value, what: str, minimum: int) -> int:
    """``value`` as an int: an ArgumentTypeError if it is no integer (bools are not),
    a ConfigurationError if it is below ``minimum``; ``what`` names it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{what} must be an integer; got {value!r}.")
    if value < minimum:
        raise ConfigurationError(f"{what} must be at least {minimum}; got {value!r}.")
    return int(value)


DE_VARIANT_PARTS = (("rand", "best", "target-to-best"), ("1", "2"),
                    ("bin", "exp", "hypercube", "line"))
"""The values of pymoo's DE variant string, ``DE/<selection>/<n_diffs>/<crossover>``."""


def check_de_variant(variant) -> None:
    """Refuse a DE variant pymoo would only reject when breeding its second generation."""
    parts = variant.split("/") if isinstance(variant, str) else []
    if not (len(parts) == 4 and parts[0] == "DE" and
            all(part in allowed for part, allowed in zip(parts[1:], DE_VARIANT_PARTS))):
        choices = "; ".join(", ".join(allowed) for allowed in DE_VARIANT_PARTS)
        raise ConfigurationError(
            f"PymooOptimizer('DE'): variant {variant!r} is not of the form "
            f"DE/<selection>/<n_diffs>/<crossover> with the values ({choices}), e.g. "
            f"'DE/rand/1/bin'.")


def cma_option_names() -> set[str]:
    """pycma's option names (imports pycma, which pymoo's CMA-ES needs anyway)."""
    try:
        import cma
    except ImportError as exc:  # pymoo requires cma; a broken install is still possible
        raise ConfigurationError(f"PymooOptimizer('CMAES') needs pycma (pip install cma): "
                                 f"{exc}") from exc
    return set(cma.CMAOptions())


def population_size(spec: MethodSpec, options: dict, round_size: int) -> int:
    """The generation size used: ``pop_size`` (default: the round size, the fitter's
    ``n_samples``), at least the method's minimum and at least a round.

    A generational algorithm proposes its next generation only once it has learnt
    from the last, so the points of one round cannot come from two generations:
    a smaller ``pop_size`` is raised to the round size.
    """
    round_size = max(int(round_size), 1)
    return max(int(options.get("pop_size", round_size)), round_size, spec.min_population)


def build_algorithm(spec: MethodSpec, options: dict, population: int, n_var: int,
                    seed: int, n_obj: int = 1):
    """pymoo's algorithm for ``spec``, set up on the unit cube of ``n_var`` dimensions
    for ``n_obj`` objectives.

    Returns ``(algorithm, problem)``. The algorithm never terminates by itself
    (``NoTermination``), except CMA-ES when it has converged: the caller then
    starts another one. Options pymoo refuses raise a ConfigurationError.
    """
    if spec.scipy_spatial:  # its cost falls on initialize, not on a round
        import scipy.spatial.distance  # noqa: F401
    from pymoo.core.problem import Problem
    from pymoo.core.termination import NoTermination

    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise ConfigurationError(f"PymooOptimizer({spec.name!r}) needs a package that is "
                                 f"not installed: {exc}") from exc
    kwargs = {**spec.defaults, **options, "pop_size": population}
    problem = Problem(n_var=n_var, n_obj=n_obj, xl=[0.0] * n_var, xu=[1.0] * n_var)
    try:
        algorithm = getattr(module, spec.class_name)(**kwargs)
        if spec.name == "CMAES":
            # CMA-ES starts from the best of an initial Latin hypercube sample of
            # n_sample_points (20 by default): one generation's worth keeps rounds aligned
            algorithm.n_sample_points = population
        algorithm.setup(problem, seed=seed, termination=NoTermination())
    except ConfigurationError:
        raise
    except Exception as exc:
        shown = {k: v for k, v in options.items() if k != "pop_size"}
        raise ConfigurationError(f"pymoo's {spec.name} rejected the options {shown}: "
                                 f"{type(exc).__name__}: {exc}") from exc
    return algorithm, problem
