"""The Inferencer's posterior: storage, sampling, analysis and generated traces.

A mixin of :class:`~modelfit_plugins.inference.sbi_inference.Inferencer`;
the posterior lives in sbi's rescaled space (see that module), these methods
take and return SI values.
"""

from __future__ import annotations

import numpy as np
from brian2 import Quantity
from brian2.units.fundamentalunits import DIMENSIONLESS

from modelfit_core.contracts.errors import ConfigurationError, DataError, FitStateError

from . import sbi_analysis, sbi_methods
from .sbi_features import SPIKES

_FORMAT = "modelfit-posterior-1"


def torch_module():
    import torch
    return torch


def as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


class _ScaledDensity:
    """``density`` seen over values that are ``factor`` times smaller (a change of unit)."""

    def __init__(self, density, factor: np.ndarray, x=None):
        torch = torch_module()
        self._density, self._x = density, x
        self._device = getattr(density, "_device", "cpu")
        self._factor = torch.as_tensor(factor, dtype=torch.float32, device=self._device)
        self._log_jacobian = float(np.log(factor).sum())

    def log_prob(self, theta, **kwargs):
        if self._x is not None:
            kwargs.setdefault("x", self._x)
        return self._density.log_prob(theta * self._factor, **kwargs) + self._log_jacobian


class PosteriorMethods:
    """Posterior methods of the Inferencer (needs its space, scales, x_o and generate)."""

    def _require_posterior(self, posterior=None):
        posterior = posterior if posterior is not None else self.posterior
        if posterior is None:
            raise FitStateError("No posterior yet: call infer() (or infer_step()/"
                                "load_posterior()) first.")
        return posterior

    def save_posterior(self, f):
        """Save the posterior, with what is needed to use it again, to ``f`` (torch.save)."""
        posterior = self._require_posterior()
        import sbi
        state = {"format": _FORMAT, "posterior": posterior, "x_o": self.x_o,
                 "theta_scale": self.theta_scale, "x_scale": self.x_scale,
                 "param_names": list(self.space.names), "lower": self.space.lower,
                 "upper": self.space.upper,
                 "method": None if self._method is None else self._method.name,
                 "estimator": self._estimator, "sbi_version": sbi.__version__}
        torch_module().save(state, f)

    def load_posterior(self, f):
        """Load a posterior saved by :meth:`save_posterior` and make it the current one."""
        state = torch_module().load(f, weights_only=False)
        if not (isinstance(state, dict) and state.get("format") == _FORMAT):
            raise DataError(f"{f!r} was not written by Inferencer.save_posterior().")
        declared = dict(self.model.parameters)
        unknown = [n for n in state["param_names"] if n not in declared]
        if unknown:
            raise DataError(f"The saved posterior is over {state['param_names']}, which this "
                            f"model does not declare ({', '.join(unknown)}).")
        if len(state["x_o"]) != len(self.x_o):
            raise DataError(f"The saved posterior uses {len(state['x_o'])} summary statistics; "
                            f"this Inferencer's features give {len(self.x_o)}.")
        self.init_prior(**{name: [Quantity(lo, dim=declared[name]),
                                  Quantity(hi, dim=declared[name])]
                           for name, lo, hi in zip(state["param_names"], state["lower"],
                                                   state["upper"])})
        self.theta_scale, self.x_scale = state["theta_scale"], state["x_scale"]
        self._method = None if state["method"] is None else \
            sbi_methods.resolve_method(state["method"])
        self._estimator = state["estimator"]
        self.posterior = state["posterior"]
        self.posterior.set_default_x(self._x_o_sbi())
        self.inference = None
        return self.posterior

    def sample(self, shape, posterior=None, **kwargs):
        """Draw parameter sets from the posterior (SI values, shape ``shape + (n_params,)``).

        ``kwargs`` go to the posterior's ``sample`` (``x=`` is the statistics,
        in SI, of another observation; default: the recordings).
        """
        posterior = self._require_posterior(posterior)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        torch = torch_module()
        if "x" in kwargs and kwargs["x"] is not None:
            kwargs["x"] = torch.as_tensor(as_numpy(kwargs["x"]) / self.x_scale, dtype=torch.float32)
        else:
            kwargs["x"] = self._x_o_sbi()
        kwargs.setdefault("show_progress_bars", False)
        samples = as_numpy(posterior.sample(shape, **kwargs)) * self.theta_scale
        self.samples = samples
        return samples

    def log_prob(self, theta, posterior=None):
        """Log posterior density of parameter sets ``theta`` (SI), given the recordings."""
        density = self._density(posterior, 1.0)
        torch = torch_module()
        theta = torch.as_tensor(self._theta_array(theta), dtype=torch.float32)
        return as_numpy(density.log_prob(theta.to(density._device)))

    def _density(self, density, unit):
        """The posterior (or a user's density over SI values) over values in ``unit``."""
        unit = np.broadcast_to(np.asarray(unit, dtype=float), (len(self.space.names),))
        if density is not None and not hasattr(density, "set_default_x"):
            return _ScaledDensity(density, unit)
        return _ScaledDensity(self._require_posterior(density), unit / self.theta_scale,
                              self._x_o_sbi())

    def _display(self):
        """Plotting units: the Brian unit that suits each upper bound (e.g. nS)."""
        self._require_prior()
        scale, units = [], []
        for high, low, dim in zip(self.space.upper, self.space.lower, self.space.dims):
            magnitude = max(abs(high), abs(low))
            if dim is DIMENSIONLESS or magnitude == 0:
                scale.append(1.0 if magnitude == 0 else 10.0 ** np.floor(np.log10(magnitude)))
                units.append("" if scale[-1] == 1 else f"{scale[-1]:g}")
            else:
                unit = Quantity(magnitude, dim=dim).get_best_unit()
                scale.append(float(unit))
                units.append(str(unit))
        return sbi_analysis.Display(self.space.names, self.space.lower, self.space.upper,
                                    scale, units)

    def pairplot(self, samples=None, points=None, limits=None, subset=None, labels=None,
                 ticks=None, **kwargs):
        """Pairwise marginals of posterior samples (sbi.analysis.pairplot); returns (fig, axes).

        ``samples`` (SI) default to the last :meth:`sample`; ``points``,
        ``limits`` and ``ticks`` are dicts of quantities, ``labels`` a dict of
        names. Axes show each parameter in a display unit, added to its label.
        """
        if samples is None:
            if self.samples is None:
                raise FitStateError("No samples: call sample() first or pass samples=.")
            samples = self.samples
        return sbi_analysis.pairplot(as_numpy(samples), self._display(), points=points,
                                     limits=limits, subset=subset, labels=labels, ticks=ticks,
                                     **kwargs)

    def conditional_pairplot(self, condition, density=None, points=None, limits=None,
                             subset=None, labels=None, ticks=None, **kwargs):
        """Slices of the posterior density through ``condition`` (SI); returns (fig, axes)."""
        display = self._display()
        return sbi_analysis.conditional_pairplot(self._density(density, display.scale),
                                                 condition, display, points=points,
                                                 limits=limits, subset=subset, labels=labels,
                                                 ticks=ticks, **kwargs)

    def conditional_corrcoeff(self, condition, density=None, limits=None, subset=None,
                              **kwargs):
        """Correlation matrix of the posterior conditioned on ``condition`` (SI)."""
        display = self._display()
        return sbi_analysis.conditional_corrcoeff(self._density(density, display.scale),
                                                  condition, display, limits=limits,
                                                  subset=subset, **kwargs)

    def generate_spikes(self, n_samples=1, posterior=None, param_init=None, level=0):
        """Spike times (one array of seconds per input trace) with parameters drawn from
        the posterior (the mean of ``n_samples`` draws); see :meth:`generate_traces`."""
        return self.generate_traces(n_samples=n_samples, posterior=posterior,
                                    output_var=SPIKES, param_init=param_init, level=level)

    def generate_traces(self, n_samples=1, posterior=None, output_var=None, param_init=None,
                        level=0):
        """Simulate the inputs with parameters drawn from the posterior.

        One draw by default; with ``n_samples > 1`` the mean of the draws.
        ``output_var``: a variable, ``'spikes'``, or a list (default: the outputs).
        """
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ConfigurationError(f"n_samples must be an integer >= 1; got {n_samples!r}.")
        posterior = self._require_posterior(posterior)
        previous = self.samples
        drawn = self.sample((int(n_samples),), posterior=posterior)
        self.samples = previous
        vector = drawn.mean(axis=0) if n_samples > 1 else drawn[0]
        if output_var == "spike" or (not isinstance(output_var, str) and output_var is not None
                                     and "spike" in output_var):
            output_var = SPIKES if isinstance(output_var, str) else \
                [SPIKES if v == "spike" else v for v in output_var]
        return self.generate(output_var=output_var, params=self.space.to_dict(vector, True),
                             param_init=param_init, level=level)
