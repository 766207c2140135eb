"""Pipeline: optimizer + metric + backend + feedback, assembled from plugin names."""

from __future__ import annotations

import inspect
from typing import Any

import attrs

from modelfit_core.contracts.errors import ConfigurationError
from modelfit_core.contracts.hookspecs import SINGULAR
from modelfit_core.registry.plugin_registry import Registry


def _construct(cls: type, options: dict[str, Any], kind: str, name: str):
    try:
        return cls(**options)
    except TypeError as exc:
        try:
            accepted = ", ".join(p for p in inspect.signature(cls).parameters if p != "self")
        except (TypeError, ValueError):
            accepted = "?"
        raise ConfigurationError(f"Cannot create the {kind} {name!r} with options {options}: "
                                 f"{exc}. It accepts: {accepted}.") from exc


def _accepts(cls: type, keyword: str) -> bool:
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


@attrs.define
class Pipeline:
    """The parts of a fit, chosen by name from installed plugins.

    Use :meth:`from_names`; then ``pipe.trace_fitter(...)`` gives a fitter
    whose ``fit`` uses these parts. Each pipeline has its own registry.
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
    def from_names(cls, optimizer: str | Any = "nevergrad", metric: str | Any = "mse",
                   backend: str | Any = "runtime", feedback: str | Any = "text",
                   optimizer_options: dict | None = None, metric_options: dict | None = None,
                   backend_options: dict | None = None, feedback_options: dict | None = None,
                   seed: int | None = None, registry: Registry | None = None,
                   disable_plugins=(), plugins=(), storage: str | None = None,
                   study: str | None = None) -> "Pipeline":
        """Assemble a pipeline from plugin names (or ready objects).

        Parameters
        ----------
        optimizer, metric, backend, feedback : str or object
            Registered names (see ``modelfit plugins``) or objects; ``feedback``
            may also be None or a callable.
        *_options : dict
            Keyword arguments for the corresponding plugin class.
        seed : int, optional
            Passed to the optimizer so that a whole fit repeats exactly.
        registry : Registry, optional
            Defaults to a new registry reading the ``modelfit`` entry points.
        disable_plugins, plugins
            Entry points to skip, and extra plugin objects to register.
        storage, study : str, optional
            Stream every evaluation of the pipeline's fitters to SQLite
            (``"sqlite:///fit.db"``) under the study name; see ``fit(resume=True)``.
        """
        registry = registry or Registry(disable=disable_plugins, plugins=plugins)
        pipe = cls(registry=registry, seed=seed, storage=storage, study=study,
                   names={"optimizer": optimizer, "metric": metric, "backend": backend,
                          "feedback": feedback})
        optimizer_options = dict(optimizer_options or {})
        if seed is not None and isinstance(optimizer, str):
            cls_ = registry.lookup("optimizers", optimizer)
            if not _accepts(cls_, "seed"):
                raise ConfigurationError(f"The optimizer {optimizer!r} does not accept a seed.")
            optimizer_options.setdefault("seed", seed)
        pipe.optimizer = pipe._make("optimizers", optimizer, optimizer_options)
        pipe.metric = pipe._make("metrics", metric, metric_options or {})
        pipe.backend = pipe.resolve_backend(backend, backend_options or {})
        pipe.feedback = pipe._make("feedback", feedback, feedback_options or {}) \
            if isinstance(feedback, str) else feedback
        return pipe

    @classmethod
    def lazy_default(cls) -> "Pipeline":
        """The pipeline behind the classic classes: text feedback, and the default
        optimizer and metric made only when a fit needs them (importing stays light)."""
        return cls(registry=Registry(), feedback="text")

    def default_optimizer(self):
        """This pipeline's optimizer, or a new nevergrad DE optimizer."""
        if self.optimizer is not None:
            return self.optimizer
        options = {"seed": self.seed} if self.seed is not None else {}
        return self._make("optimizers", "nevergrad", options)

    def default_metric(self):
        """This pipeline's metric, or a new MSE metric."""
        return self.metric if self.metric is not None else self._make("metrics", "mse", {})

    def _make(self, kind: str, spec: str | Any, options: dict):
        if not isinstance(spec, str):
            if options:
                raise ConfigurationError(f"Options for {kind} were given with an object "
                                         f"({spec!r}); configure the object instead.")
            return spec
        return _construct(self.registry.lookup(kind, spec), options, SINGULAR[kind], spec)

    def resolve_backend(self, backend=None, options: dict | None = None):
        """A backend object from a name, an object, or None (this pipeline's)."""
        if backend is None:
            backend = self.backend if self.backend is not None else "runtime"
        return self._make("backends", backend, options or {})

    def resolve_feedback(self, callback):
        """Feedback object from a name, None, a callable, or the pipeline default."""
        from modelfit_core.fitting.fitter import _DEFAULT
        if callback is _DEFAULT:
            callback = self.feedback
        if callback is None:
            return None
        if isinstance(callback, str):
            return self._make("feedback", callback, {})
        if not callable(callback):
            raise ConfigurationError(f"callback must be 'text', 'progressbar', None or a "
                                     f"callable; got {callback!r}.")
        return callback

    # -- fitters ------------------------------------------------------------------
    def trace_fitter(self, model, input, output, dt, n_samples, **kwargs):
        """A :class:`TraceFitter` that fits with this pipeline's parts."""
        from modelfit_core.fitting.trace_fitter import TraceFitter
        kwargs.setdefault("backend", self.backend)
        return TraceFitter(model=model, input=input, output=output, dt=dt,
                           n_samples=n_samples, pipeline=self, **kwargs)

    def spike_fitter(self, model, input, output, dt, n_samples, **kwargs):
        """A :class:`SpikeFitter` that fits with this pipeline's parts."""
        from modelfit_core.fitting.spike_fitter import SpikeFitter
        kwargs.setdefault("backend", self.backend)
        return SpikeFitter(model=model, input=input, output=output, dt=dt,
                           n_samples=n_samples, pipeline=self, **kwargs)

    def inferencer(self, model, input, output, dt, name: str = "sbi", **kwargs):
        """An Inferencer (inference plugin ``name``) simulating with this pipeline's backend."""
        cls = self.registry.lookup("inference", name)
        kwargs.setdefault("backend", self.backend)
        return cls(model=model, input=input, output=output, dt=dt, pipeline=self, **kwargs)

    def fitter(self, model, input, output, dt, n_samples, **kwargs):
        """A SpikeFitter if this pipeline's metric compares spikes, else a TraceFitter."""
        from modelfit_core.model.recordings import is_spike_metric
        make = self.spike_fitter if is_spike_metric(self.metric) else self.trace_fitter
        return make(model=model, input=input, output=output, dt=dt, n_samples=n_samples,
                    **kwargs)
