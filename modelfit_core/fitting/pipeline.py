"""Pipeline: the parts of a fit chosen by name, and the fitters that use them."""

from __future__ import annotations

import attrs

from modelfit_core.contracts.metric_bases import compares_spikes
from modelfit_core.fitting.spike_fitter import SpikeFitter
from modelfit_core.fitting.trace_fitter import TraceFitter
from modelfit_core.registry.parts import Parts


@attrs.define
class Pipeline(Parts):
    """The parts of a fit, chosen by name from installed plugins.

    Use :meth:`~modelfit_core.registry.parts.Parts.from_names`; then
    ``pipe.trace_fitter(...)`` gives a fitter whose ``fit`` uses these parts.
    Each pipeline has its own registry.
    """

    def trace_fitter(self, model, input, output, dt, n_samples, **kwargs) -> TraceFitter:
        """A :class:`TraceFitter` that fits with this pipeline's parts."""
        kwargs.setdefault("backend", self.backend)
        return TraceFitter(model=model, input=input, output=output, dt=dt,
                           n_samples=n_samples, pipeline=self, **kwargs)

    def spike_fitter(self, model, input, output, dt, n_samples, **kwargs) -> SpikeFitter:
        """A :class:`SpikeFitter` that fits with this pipeline's parts."""
        kwargs.setdefault("backend", self.backend)
        return SpikeFitter(model=model, input=input, output=output, dt=dt,
                           n_samples=n_samples, pipeline=self, **kwargs)

    def fitter(self, model, input, output, dt, n_samples, **kwargs):
        """A SpikeFitter if this pipeline's metric compares spikes, else a TraceFitter."""
        make = self.spike_fitter if compares_spikes(self.metric) else self.trace_fitter
        return make(model=model, input=input, output=output, dt=dt, n_samples=n_samples,
                    **kwargs)

    def inferencer(self, model, input, output, dt, name: str = "sbi", **kwargs):
        """An Inferencer (inference plugin ``name``) simulating with this pipeline's backend."""
        cls = self.registry.lookup("inference", name)
        kwargs.setdefault("backend", self.backend)
        return cls(model=model, input=input, output=output, dt=dt, pipeline=self, **kwargs)
