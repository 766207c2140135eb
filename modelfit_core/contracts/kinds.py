"""The kinds of plugins, each described once.

A :class:`Kind` names its registration hook, its entry-point group, its
Protocol and the methods a registered class must have. The hook
specifications (:mod:`.hookspecs`), the registry, ``modelfit plugins`` and
the contract checks for plugin authors all read :data:`KINDS`.
"""

from __future__ import annotations

from typing import Any

import attrs

from modelfit_core.contracts.protocols import (Dashboard, Feedback, Inference, Metric,
                                               Optimizer, SimulationBackend, StudyStorage,
                                               SuiteProblem,
                                               required_methods)

PROJECT = "modelfit"
"""The pluggy project name; also the entry-point group of hook plugins."""


@attrs.frozen
class Kind:
    """One kind of plugin: optimizers, metrics, backends, feedback, inference, storage,
    dashboards or problems (of the benchmark suite)."""

    name: str
    """Plural name, used by ``Registry.lookup(kind, ...)``: ``'optimizers'``."""
    singular: str
    """For messages: ``'optimizer'``."""
    protocol: type
    """The Protocol of :mod:`modelfit_core.contracts.protocols` its classes satisfy."""
    hint: str = ""
    """Added to the message when a registered class lacks methods."""

    @property
    def hook(self) -> str:
        """The registration hook: ``modelfit_register_<name>``."""
        return f"{PROJECT}_register_{self.name}"

    @property
    def entry_point_group(self) -> str:
        """Entry points ``name = "module:Class"`` of this kind, read without importing."""
        return f"{PROJECT}.{self.name}"

    @property
    def required(self) -> tuple[str, ...]:
        """Methods a registered class must define: those of its Protocol."""
        return required_methods(self.protocol)

    def problem_with(self, obj: Any) -> str | None:
        """Why ``obj`` cannot be registered for this kind, or None if it has the right shape.

        Classes are checked for the methods of the Protocol; other callables
        (factories) are accepted as they are, since what they make is only
        known once they are called.
        """
        if not isinstance(obj, type):
            return None if callable(obj) else (
                f"{obj!r} is neither a class nor a factory (a callable returning the "
                f"{self.singular})")
        missing = [m for m in self.required if not _defines(obj, m)]
        if not missing:
            return None
        needed = ", ".join(f"{m}()" for m in self.required)
        article = "an" if self.singular[0] in "aeiou" else "a"
        text = (f"{obj.__module__}.{obj.__qualname__} does not satisfy the "
                f"{self.protocol.__name__} protocol: it has no "
                f"{', '.join(f'{m}()' for m in missing)} ({article} {self.singular} needs "
                f"{needed}")
        return text + (f"; {self.hint}" if self.hint else "") + ")"


    def missing_methods(self, obj: Any) -> list[str]:
        """The Protocol's methods that the object (or class) ``obj`` lacks."""
        cls = obj if isinstance(obj, type) else type(obj)
        return [m for m in self.required if not _defines(cls, m)
                and not callable(getattr(obj, m, None))]


def _defines(cls: type, method: str) -> bool:
    # looked up in the class dictionaries: every class has a ``__call__`` (type's)
    for klass in cls.__mro__:
        if method in vars(klass):
            value = vars(klass)[method]
            return callable(value) or isinstance(value, (staticmethod, classmethod))
    return False


KINDS: tuple[Kind, ...] = (
    Kind("optimizers", "optimizer", Optimizer),
    Kind("metrics", "metric", Metric,
         hint="subclass modelfit_core.TraceMetric or SpikeMetric to build calc() from "
              "get_features() and get_errors()"),
    Kind("backends", "backend", SimulationBackend),
    Kind("feedback", "feedback", Feedback),
    Kind("inference", "inference", Inference),
    Kind("storage", "storage", StudyStorage,
         hint="registered under the scheme of its URLs ('sqlite' for sqlite:///fit.db) and "
              "made with (url, study)"),
    Kind("dashboards", "dashboard", Dashboard),
    Kind("problems", "problem", SuiteProblem,
         hint="define() returns a modelfit_core.contracts.benchmark_problem.BenchmarkProblem"),
)
"""Every kind, in the order ``modelfit plugins`` lists them."""

KIND_NAMES: tuple[str, ...] = tuple(kind.name for kind in KINDS)


def kind_named(name: str) -> Kind | None:
    """The :class:`Kind` called ``name`` (``'optimizers'``), or None."""
    return next((kind for kind in KINDS if kind.name == name), None)


def kind_called(name: str) -> Kind:
    """The :class:`Kind` called ``name``, for names written in the code (``'optimizers'``).

    Raises
    ------
    ValueError
        No kind has that name (the kinds are named).
    """
    kind = kind_named(name)
    if kind is None:
        raise ValueError(f"No plugin kind is called {name!r}; the kinds are "
                         f"{', '.join(KIND_NAMES)}.")
    return kind
