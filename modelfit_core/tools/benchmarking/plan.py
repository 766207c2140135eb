"""What a benchmark runs, checked before anything is simulated.

Unknown problem or optimizer names (the registry suggests the closest), a
method a plugin refuses, a budget below one round of a problem, an output
folder that is a file and a problem plugin that breaks its contract are all
reported here, as :class:`~modelfit_core.contracts.errors.ModelfitError`\\ s
naming the culprit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from modelfit_core.contracts.benchmark_problem import BenchmarkProblem
from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.tools.benchmarking.methods import (
    REFINE_SHARE,
    Method,
    baselines,
    canonical,
    default_methods,
    default_optimizer,
    evaluation_cost,
    is_multiobjective,
    max_evaluations,
    parse_method,
    points_per_round,
)
from modelfit_core.tools.benchmarking.problems import defined_problem

QUICK_SEEDS = 1
DEFAULT_SEEDS = 10
"""Seeds of a full run (COCO asks for at least ten)."""
DATABASE = "runs.db"
"""The study database in the output folder: one study per (problem, method, seed)."""


@attrs.frozen
class Run:
    """One (problem, method, seed) of a benchmark."""

    problem: str
    method: Method
    seed: int
    n_samples: int
    n_rounds: int
    refine_evaluations: int = 0
    """Evaluations left to ``refine()`` after the rounds (0: no refinement)."""
    cost: int = 1
    """Plain simulations one evaluation of the search counts as (``1 + n_parameters`` for
    a gradient optimizer, see :func:`~modelfit_core.tools.benchmarking.methods.evaluation_cost`)."""

    @property
    def study(self) -> str:
        """Its study in the database."""
        return f"{self.problem}/{self.method.label}/seed{self.seed}"

    @property
    def budget(self) -> int:
        """Simulation cost of the run in plain simulations: the rounds' and the
        refinement's."""
        return self.n_samples * self.n_rounds * self.cost + self.refine_evaluations


@attrs.frozen
class Plan:
    """The runs of a benchmark, and where they go."""

    problems: dict[str, BenchmarkProblem]
    methods: tuple[Method, ...]
    seeds: tuple[int, ...]
    runs: tuple[Run, ...]
    output: Path
    default: Method
    """The default optimizer (what fit() uses), as the suite names it."""
    backend: str | None = None

    @property
    def database(self) -> Path:
        return self.output / DATABASE

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.database}"


def _checked_seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ArgumentTypeError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigurationError(f"--seeds must be at least 1, got {seeds}.")
        return tuple(range(1, seeds + 1))
    found = tuple(seeds)
    if not found or any(isinstance(s, bool) or not isinstance(s, int) for s in found):
        raise ArgumentTypeError(f"seeds must be integers, got {seeds!r}")
    return found


def _checked_output(output: Path | str) -> Path:
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"The output folder {str(path)!r} is a file; name a folder "
                                 f"(it is created if missing) with --output.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigurationError(f"The output folder {str(path)!r} cannot be made: "
                                         f"{str(parent)!r} is a file.")
            break
    return path


def _checked_methods(registry: Registry, names: Iterable[str] | None) -> tuple[Method, ...]:
    if names is None:
        return tuple(default_methods(registry))
    found: list[Method] = []
    for text in names:
        method = parse_method(text)
        if method.is_default:
            if method.method is not None:
                raise ConfigurationError(
                    f"{text!r}: the default takes no method (it is what fit() chooses); "
                    f"name the optimizer instead, e.g. pymoo:{method.method}.")
            if method not in found:
                found.append(method)
            continue
        cls = registry.lookup("optimizers", method.plugin)  # unknown: closest names
        if is_multiobjective(cls):
            raise ConfigurationError(
                f"The optimizer {method.plugin!r} is multi-objective; the suite's problems "
                f"have one error. Name a single-objective optimizer.")
        method = canonical(method, registry)
        method.make(registry, seed=0)  # a method or option the plugin refuses, now
        if method not in found:
            found.append(method)
    if not found:
        raise ConfigurationError("No optimizer to run: name at least one with --optimizers.")
    return tuple(found)


def make_plan(registry: Registry, *, problems: Iterable[str] | None = None,
              optimizers: Iterable[str] | None = None, seeds: int | Sequence[int] | None = None,
              budget: int | None = None, quick: bool = False,
              output: Path | str = "benchmark", backend: str | None = None) -> Plan:
    """Check a benchmark's arguments and list its runs; nothing is simulated.

    Parameters
    ----------
    registry : Registry
        Where problems and optimizers are found (every installed plugin).
    problems, optimizers : iterable of str, optional
        Problem plugin names; methods as ``plugin`` or ``plugin:METHOD``. Default: every
        installed problem and every installed
        single-objective optimizer with the methods it lists (``quick``: the default
        optimizer and the baselines, see :func:`~.methods.baselines`).
    seeds : int or sequence of int, optional
        A count (seeds 1..N) or the seeds themselves; default :data:`DEFAULT_SEEDS`
        (``quick``: :data:`QUICK_SEEDS`).
    budget : int, optional
        Evaluations per run, instead of each problem's own (``quick``: its quick budget).
    output : path
        Result folder (created; a file there is an error).
    backend : str, optional
        The backend plugin simulating every run (``'dask'``).
    """
    output_path = _checked_output(output)
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise ConfigurationError(f"--budget must be a positive number of evaluations, "
                                 f"got {budget!r}.")
    if backend is not None:
        registry.lookup("backends", backend)
    names = registry.names("problems") if problems is None else list(dict.fromkeys(problems))
    if not names:
        raise ConfigurationError("No problem to run: none is installed or named.")
    defined = {name: defined_problem(registry, name) for name in names}
    default = default_optimizer()
    if optimizers is None and quick:
        optimizers = [default.label] + [m.label for m in baselines(registry)]
    methods = _checked_methods(registry, optimizers)
    seed_list = _checked_seeds(seeds if seeds is not None else
                               (QUICK_SEEDS if quick else DEFAULT_SEEDS))
    runs = []
    for name, problem in defined.items():
        evaluations = budget if budget is not None else \
            (problem.quick_budget if quick else problem.budget)
        if evaluations < problem.n_samples:
            raise ConfigurationError(
                f"A budget of {evaluations} evaluations is below one round of problem "
                f"{name!r} ({problem.n_samples} parameter sets per round); give "
                f"--budget {problem.n_samples} or more.")
        for method in methods:
            limit = max_evaluations(registry, method)
            capped = min(evaluations, limit) if limit is not None else evaluations
            refined = method.refine and problem.refinable
            searched = capped - int(capped * REFINE_SHARE) if refined else capped
            cost = evaluation_cost(registry, method, len(problem.bounds))
            n_samples = points_per_round(registry, method, problem.n_samples)
            n_rounds = max(searched // (n_samples * cost), 1)
            refine_evaluations = max(capped - n_rounds * n_samples * cost, 0) \
                if refined else 0
            runs.extend(Run(name, method, seed, n_samples, n_rounds,
                            refine_evaluations, cost) for seed in seed_list)
    return Plan(problems=defined, methods=methods, seeds=seed_list, runs=tuple(runs),
                output=output_path, default=default, backend=backend)
