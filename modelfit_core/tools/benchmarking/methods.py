"""The methods a benchmark compares: optimizer plugins by name, with a method option.

A method is written ``plugin`` (the plugin with its default options, what a fit
naming it gets) or ``plugin:METHOD`` (``nevergrad:CMA``, ``pymoo:PSO``: the
plugin made with ``method='METHOD'``), or ``default``: what ``fit()`` does when it
names no optimizer (the plugins choose per problem, through the
``modelfit_default_optimizer`` hook). By default a benchmark runs the default
and every installed single-objective optimizer plugin: its default
configuration, and each further method its class lists in the optional
``suite_methods`` attribute. Nothing here knows a plugin by name; a third
party's optimizer is run as modelfit's own.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs

from modelfit_core.registry.parts import accepts_keyword, construct
from modelfit_core.registry.plugin_registry import Registry

DEFAULT_METHOD = "default"
"""The method name of what ``fit()`` uses when it names no optimizer (a reserved name:
no optimizer plugin)."""
REFINE_SUFFIX = "+refine"
REFINE_SHARE = 0.2
"""The share of a ``+refine`` run's budget left to ``refine()``; the search gets the rest
(whole rounds, at least one)."""


@attrs.frozen
class Method:
    """One optimizer configuration of the suite."""

    plugin: str
    """The optimizer plugin's registered name, or :data:`DEFAULT_METHOD`."""
    method: str | None = None
    """Its ``method`` option, None for the plugin's default."""
    refine: bool = False
    """Whether the search is followed by ``refine()`` (least squares) where the problem's
    metric allows it (``plugin:METHOD+refine``)."""

    @property
    def label(self) -> str:
        """``plugin:METHOD`` as written on the command line, or ``plugin``, with
        ``+refine`` when refined."""
        base = self.plugin if self.method is None else f"{self.plugin}:{self.method}"
        return base + (REFINE_SUFFIX if self.refine else "")

    @property
    def is_default(self) -> bool:
        """Whether this is what ``fit()`` chooses (no optimizer named)."""
        return self.plugin == DEFAULT_METHOD

    def make(self, registry: Registry, seed: int) -> Any:
        """A new optimizer object, seeded if the plugin takes ``seed=`` (None for the
        default: the fit chooses, seeded by its parts)."""
        if self.is_default:
            return None
        cls = registry.lookup("optimizers", self.plugin)
        options: dict[str, Any] = {} if self.method is None else {"method": self.method}
        if accepts_keyword(cls, "seed"):
            options["seed"] = seed
        return construct(cls, options, "optimizer", self.plugin)


def parse_method(text: str) -> Method:
    """``'plugin'``, ``'plugin:METHOD'``, either with ``'+refine'``, as a :class:`Method`."""
    refine = text.endswith(REFINE_SUFFIX)
    if refine:
        text = text[:-len(REFINE_SUFFIX)]
    plugin, _, method = text.partition(":")
    return Method(plugin.strip(), method.strip() or None, refine)


def default_method_of(cls: Any) -> str | None:
    """The default of a plugin class's ``method`` argument, if it has one (a string)."""
    try:
        parameter = inspect.signature(cls).parameters.get("method")
    except (TypeError, ValueError):
        return None
    default = None if parameter is None else parameter.default
    return default if isinstance(default, str) else None


def canonical(method: Method, registry: Registry) -> Method:
    """The same configuration with the plugin's default method spelt out (``pymoo`` and
    ``pymoo:DE`` are one run)."""
    if method.method is not None or method.is_default:
        return method
    default = default_method_of(registry.lookup("optimizers", method.plugin))
    return Method(method.plugin, default, method.refine) if default is not None else method


def is_multiobjective(cls: Any) -> bool:
    """Whether an optimizer class has the multi-objective capability (``set_objectives``),
    which a single-error fit refuses."""
    return callable(getattr(cls, "set_objectives", None))


def default_methods(registry: Registry) -> list[Method]:
    """The default and every installed single-objective optimizer: its default
    configuration and the methods its class lists in ``suite_methods``, each also
    followed by ``refine()`` (``+refine``, applied where a problem's metric allows it)."""
    found: list[Method] = [Method(DEFAULT_METHOD)]
    for name in registry.names("optimizers"):
        cls = registry.lookup("optimizers", name)
        if is_multiobjective(cls):
            continue
        default = default_method_of(cls)
        methods = [default] + [m for m in getattr(cls, "suite_methods", ()) if m != default]
        found.extend(Method(name, method) for method in methods)
    return found + [attrs.evolve(method, refine=True) for method in found]


def default_optimizer() -> Method:
    """What ``fit()`` uses when it names no optimizer, as a method of the suite."""
    return Method(DEFAULT_METHOD)


def evaluation_cost(registry: Registry, method: Method, n_parameters: int) -> int:
    """Plain simulations one evaluation of ``method`` counts as.

    An optimizer with the gradient capability (``tell_gradients``: every point is
    simulated with its sensitivity equations) pays ``1 + n_parameters``: the sensitivity
    system has one equation per state variable and parameter, and the measured time of
    such a simulation stayed below that (docs/gradient.md). Every other optimizer pays 1.
    The default pays what the optimizer its fit chose pays: a round's cost is known
    once it ran (:func:`stored_round_cost`), and stays within ``n_samples``.
    """
    if method.is_default:
        return 1
    cls = registry.lookup("optimizers", method.plugin)
    return 1 + n_parameters if callable(getattr(cls, "tell_gradients", None)) else 1


def stored_round_cost(round_record: Any, n_parameters: int) -> int:
    """Plain simulations one evaluation of a stored round counts as: ``1 + n_parameters``
    for a round simulated with its sensitivities (it holds normal equations), else 1."""
    return 1 + n_parameters if getattr(round_record, "normal_equations", None) is not None \
        else 1


def points_per_round(registry: Registry, method: Method, problem_n_samples: int) -> int:
    """Parameter sets per round of ``method`` on a problem: the problem's ``n_samples``,
    unless the optimizer class asks for its own (``suite_n_samples``: a gradient
    optimizer's few starts, where a population method wants dozens of points). The
    default gets the problem's ``n_samples``, as a user's fitter does."""
    if method.is_default:
        return problem_n_samples
    wanted = getattr(registry.lookup("optimizers", method.plugin), "suite_n_samples", None)
    return int(wanted) if isinstance(wanted, int) and wanted > 0 else problem_n_samples


def max_evaluations(registry: Registry, method: Method) -> int | None:
    """The most evaluations a plugin says it is usable for (its class's optional
    ``suite_max_evaluations``), None for no limit."""
    if method.is_default:
        return None
    limit = getattr(registry.lookup("optimizers", method.plugin), "suite_max_evaluations", None)
    return int(limit) if limit is not None else None


def baselines(registry: Registry) -> list[Method]:
    """Optimizer plugins whose class says it is a baseline (``suite_baseline = True``, as
    random search): ``--quick`` runs them beside the default optimizer."""
    found = []
    for name in registry.names("optimizers"):
        cls = registry.lookup("optimizers", name)
        if getattr(cls, "suite_baseline", False) is True and not is_multiobjective(cls):
            found.append(canonical(Method(name), registry))
    return found
