"""The parts of a fit (optimizer, metric, backend, feedback), chosen by name.

:class:`Parts` turns plugin names and options into objects through its own
:class:`~modelfit_core.registry.plugin_registry.Registry`, and supplies the
defaults of the classic classes. ``Pipeline`` (in the fitting layer) adds
the factories of fitters to it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Mapping

import attrs
import numpy as np

from modelfit_core.contracts.default_optimizer import FitToOptimize, OptimizerChoice
from modelfit_core.contracts.errors import (
    ArgumentTypeError,
    ConfigurationError,
    PluginContractError,
)
from modelfit_core.contracts.kinds import kind_called
from modelfit_core.contracts.protocols import StudyStorage
from modelfit_core.registry.plugin_registry import Registry, shared_registry

DEFAULT_NAMES = {"optimizers": "pymoo", "metrics": "mse", "feedback": "text",
                 "backends": "runtime", "dashboards": "web"}
"""The plugins of a fit that names none. The optimizer is chosen per fit by the
``modelfit_default_optimizer`` hook (the gradient optimizer claims the fits it can
differentiate); pymoo's DE is the fallback: the largest ECDF area of the suite's
derivative-free methods (docs/benchmark.md, docs/optimizers.md). The backend
is the one a backend plugin names through the ``modelfit_default_backend`` hook
(the Brian backends: the one of Brian's active device, ``'cpp_standalone'`` after
``set_device('cpp_standalone')``), ``'runtime'`` if none does."""

DEFAULT_STORAGE_SCHEME = "sqlite"
"""The storage plugin of a ``storage=`` given as a plain path."""


class _Default:
    """The value of ``callback=`` meaning "the pipeline's feedback"."""

    def __repr__(self):
        return "DEFAULT"


DEFAULT = _Default()


def accepts_keyword(cls: Any, keyword: str) -> bool:
    """Whether ``cls(keyword=...)`` is accepted (explicitly or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def construct(cls: type, options: dict[str, Any], kind: str, name: str):
    """``cls(**options)``, with the accepted options named when it refuses them."""
    try:
        return cls(**options)
    except TypeError as exc:
        try:
            accepted = ", ".join(p for p in inspect.signature(cls).parameters if p != "self")
        except (TypeError, ValueError):
            accepted = "?"
        raise ConfigurationError(f"Cannot create the {kind} {name!r} with options {options}: "
                                 f"{exc}. It accepts: {accepted}.") from exc


@attrs.define
class Parts:
    """Optimizer, metric, backend and feedback of a fit, from installed plugins.

    Each instance has its own registry, so two differently configured sets
    of parts can live side by side.
    """

    registry: Registry
    optimizer: Any = None
    metric: Any = None
    backend: Any = None
    feedback: Any = None
    seed: int | None = None
    storage: str | None = None
    study: str | None = None
    names: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_names(cls, optimizer: str | Any | None = None, metric: str | Any = "mse",
                   backend: str | Any | None = None, feedback: str | Any = "text",
                   optimizer_options: dict | None = None, metric_options: dict | None = None,
                   backend_options: dict | None = None, feedback_options: dict | None = None,
                   seed: int | None = None, registry: Registry | None = None,
                   disable_plugins=(), plugins=(), storage: str | None = None,
                   study: str | None = None):
        """Assemble the parts from plugin names (or ready objects).

        Parameters
        ----------
        optimizer, metric, backend, feedback : str or object
            Registered names (see ``modelfit plugins``) or objects; ``feedback``
            may also be None or a callable. ``optimizer`` None: each fit chooses
            its own, as ``fit()`` without ``optimizer=`` does (docs/optimizers.md,
            "The default optimizer"); with ``optimizer_options`` it is the default
            plugin, pymoo. ``backend`` defaults to the one of Brian's active device
            (``'runtime'``).
        *_options : dict
            Keyword arguments for the corresponding plugin class.
        seed : int, optional
            Passed to the optimizer so that a whole fit repeats exactly.
        registry : Registry, optional
            Defaults to the process's registry, or, with ``disable_plugins`` or
            ``plugins``, a registry of these parts' own.
        disable_plugins, plugins
            Entry points to skip, and extra (hook) plugin objects to register.
        storage, study : str, optional
            Stream every evaluation of the fitters made from these parts to SQLite
            (``"sqlite:///fit.db"``) under the study name; see ``fit(resume=True)``.
        """
        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, (int, np.integer))):
            raise ArgumentTypeError(f"seed must be an integer; got {seed!r}.")
        for kind, options in (("optimizer", optimizer_options), ("metric", metric_options),
                              ("backend", backend_options), ("feedback", feedback_options)):
            if options is not None and not isinstance(options, Mapping):
                raise ArgumentTypeError(
                    f"{kind}_options must be a dict of keyword arguments, e.g. "
                    f"optimizer_options={{'method': 'DE'}}; got {options!r}.")
        if registry is None:
            registry = Registry(disable=disable_plugins, plugins=plugins) \
                if disable_plugins or plugins else shared_registry()
        parts = cls(registry=registry, seed=seed, storage=storage, study=study,
                    names={"optimizer": optimizer, "metric": metric, "backend": backend,
                           "feedback": feedback})
        optimizer_options = dict(optimizer_options or {})
        if optimizer is None and optimizer_options:
            optimizer = DEFAULT_NAMES["optimizers"]
        if seed is not None and isinstance(optimizer, str):
            if not accepts_keyword(registry.lookup("optimizers", optimizer), "seed"):
                raise ConfigurationError(f"The optimizer {optimizer!r} does not accept a seed.")
            optimizer_options.setdefault("seed", seed)
        if optimizer is not None:  # None: each fit chooses (Parts.default_optimizer)
            parts.optimizer = parts.make("optimizers", optimizer, optimizer_options)
        parts.metric = parts.make("metrics", metric, metric_options or {})
        parts.backend = parts.resolve_backend(backend, backend_options or {})
        parts.feedback = parts.make("feedback", feedback, feedback_options or {}) \
            if isinstance(feedback, str) else feedback
        return parts

    @classmethod
    def lazy_default(cls):
        """The parts behind the classic classes: text feedback, and the default
        optimizer, metric and backend made only when a fit needs them."""
        return cls(registry=shared_registry(), feedback=DEFAULT_NAMES["feedback"])

    def make(self, kind: str, spec: str | Any, options: dict[str, Any] | None = None):
        """An object of ``kind`` from a registered name and options, or ``spec`` itself."""
        singular = kind_called(kind).singular
        if options is not None and not isinstance(options, Mapping):
            raise ArgumentTypeError(
                f"The {singular} options must be a dict of keyword arguments, e.g. "
                f"{singular}_options={{'method': 'DE'}}; got {options!r}.")
        options = dict(options or {})
        if not isinstance(spec, str):
            if options:
                raise ConfigurationError(f"Options for {kind} were given with an object "
                                         f"({spec!r}); configure the object instead.")
            return spec
        return construct(self.registry.lookup(kind, spec), options, singular, spec)

    def named_optimizer(self, name: str):
        """A new optimizer of the plugin ``name``, with these parts' seed if it takes one
        (``fit(optimizer="gradient")`` on a seeded pipeline repeats, as the default does)."""
        seeded = self.seed is not None and accepts_keyword(
            self.registry.lookup("optimizers", name), "seed")
        return self.make("optimizers", name, {"seed": self.seed} if seeded else {})

    def default_optimizer(self, fit: FitToOptimize | None = None):
        """These parts' optimizer, else a new one of the optimizer the plugins choose for
        ``fit`` (the ``modelfit_default_optimizer`` hook), else of the default optimizer
        plugin (:data:`DEFAULT_NAMES`), seeded with these parts' seed."""
        if self.optimizer is not None:
            return self.optimizer
        return self.make_choice(self.optimizer_choice(fit))

    def optimizer_choice(self, fit: FitToOptimize | None) -> OptimizerChoice:
        """What the plugins choose for a fit that names no optimizer (``fit`` None: the
        default optimizer plugin's defaults)."""
        chosen = None if fit is None else \
            self.registry.hook.modelfit_default_optimizer(fit=fit)
        if chosen is None:
            why = "" if fit is None or fit.gradients_refused is None else \
                f" (gradients cannot be used: {fit.gradients_refused.splitlines()[0]})"
            return OptimizerChoice(DEFAULT_NAMES["optimizers"],
                                   reason=f"the default derivative-free optimizer{why}")
        if not isinstance(chosen, OptimizerChoice):
            raise PluginContractError(
                f"A modelfit_default_optimizer hook answered {chosen!r}; it must return an "
                f"OptimizerChoice (modelfit_core.contracts.default_optimizer) or None.")
        return chosen

    def make_choice(self, choice: OptimizerChoice):
        """The optimizer of ``choice``, with these parts' seed if its class takes one."""
        options = dict(choice.options)
        if self.seed is not None and "seed" not in options and accepts_keyword(
                self.registry.lookup("optimizers", choice.plugin), "seed"):
            options["seed"] = self.seed
        return self.make("optimizers", choice.plugin, options)

    def default_metric(self, **options):
        """These parts' metric, or a new one of the default metric plugin with ``options``."""
        if self.metric is not None and not options:
            return self.metric
        return self.make("metrics", DEFAULT_NAMES["metrics"], options)

    def resolve_backend(self, backend=None, options: dict | None = None):
        """A backend object from a name, an object, or None: these parts' backend,
        else the one the backend plugins choose (see :data:`DEFAULT_NAMES`)."""
        if backend is None:
            backend = self.backend if self.backend is not None else \
                (self.registry.hook.modelfit_default_backend() or DEFAULT_NAMES["backends"])
        return self.make("backends", backend, options)

    def resolve_storage(self, storage=None, study: str | None = None):
        """A study storage from a URL or path, a storage object, or None (these parts'
        storage; None if they have none).

        The URL's scheme names the storage plugin (``sqlite:///fit.db``; a plain path
        is SQLite), made with ``(url, study)``; ``study`` defaults to these parts'
        study, else ``"default"``.
        """
        storage = storage if storage is not None else self.storage
        if storage is None:
            return None
        if not isinstance(storage, (str, os.PathLike)):
            if isinstance(storage, StudyStorage):
                return storage
            raise ArgumentTypeError(
                f"storage must be a URL such as 'sqlite:///fit.db', a path, or a storage "
                f"object (with start(), load_for_resume(), session(), close()); got "
                f"{storage!r}.")
        url = os.fspath(storage)
        scheme = url.split("://", 1)[0] if "://" in url else DEFAULT_STORAGE_SCHEME
        cls = self.registry.lookup("storage", scheme)
        return construct(cls, {"url": url, "study": study or self.study or "default"},
                         "storage", scheme)

    def resolve_feedback(self, callback):
        """Feedback object from a name, None, a callable, or :data:`DEFAULT` (these parts')."""
        if callback is DEFAULT:
            callback = self.feedback
        if callback is None:
            return None
        if isinstance(callback, str):
            return self.make("feedback", callback)
        if not callable(callback):
            raise ConfigurationError(f"callback must be 'text', 'progressbar', None or a "
                                     f"callable; got {callback!r}.")
        return callback
