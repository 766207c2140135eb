"""Simulation-based inference with sbi: the ``Inferencer`` of brian2modelfitting.

Training data are simulated through the same :class:`SimulationBackend` as
fitting: one :class:`~modelfit_core.contracts.simulation.SimulationSpec` for a batch
of a fixed size, prepared (compiled) once and run batch after batch.

sbi is trained on rescaled numbers: each parameter is divided by a power of
ten of its bounds (``inferencer.theta_scale``) and each summary statistic by
a power of ten of its typical size (``inferencer.x_scale``), because sbi's
z-scoring clamps standard deviations below 1e-7 (farads and siemens in SI
would be squashed). The Inferencer's own methods take and return SI values,
and the prior it returns (``init_prior``) is over the parameters' own SI values,
as brian2modelfitting's; the rescaling stays inside (sbi gets the prior
rescaled); the trained ``inference`` and ``posterior`` objects live in the
rescaled space (``sample`` and the other methods convert back).

torch and sbi are imported when first needed, so loading the plugin (which
every :class:`~modelfit_core.registry.plugin_registry.Registry` does) stays cheap;
whether they are installed (the ``sbi`` extra) is the registry's to report.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping

import numpy as np

from modelfit_core.contracts.errors import (ConfigurationError, DataError, FitStateError,
                                            ParameterError)
from modelfit_core.plugin_api import (GENERATE_ITERATION, FittingProblem, Parts, as_named,
                                      generate_outputs, manual_simulator, parameter_point)

from . import sbi_features, sbi_methods
from .sbi_features import SPIKES
from .sbi_posterior import PosteriorMethods, as_numpy, torch_module


def _is_box(distribution) -> bool:
    """An sbi ``BoxUniform`` (a prior over a box), not a posterior."""
    base = getattr(distribution, "base_dist", None)
    return base is not None and hasattr(base, "low") and hasattr(base, "high")


def _power_of_ten(values: np.ndarray) -> float:
    values = np.abs(np.asarray(values, dtype=float))
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return 1.0
    return float(10.0 ** math.floor(math.log10(float(np.median(values)))))


class Inferencer(PosteriorMethods):
    """Infer the posterior over a model's parameters with simulation-based inference.

    Parameters
    ----------
    dt : Quantity
        Time step of the data and of the simulations.
    model : str or Equations
        Model equations; inferred parameters are declared ``name : unit (constant)``.
    input : dict
        ``{'I': traces}``: input variable -> (n_traces, n_steps) Quantity.
    output : dict
        Recorded outputs: ``{'v': traces}``, and/or ``{'spikes': [spike times per
        trace]}`` (``'spike'`` is accepted too).
    features : dict, optional
        ``{output: [callables]}``; each callable takes one trace (a 1-D array in
        SI units) or one spike train (spike times in seconds) and returns one
        number. None: automatic feature extraction by an embedding network
        (the default MLP or ``inference_kwargs={'embedding_net': net}``).
    method, threshold, reset, refractory, param_init
        As for a Brian ``NeuronGroup`` / the fitters.
    batch_size : int
        Parameter sets simulated per batch (one compiled simulation serves all).
    backend : str or SimulationBackend, optional
        Where training data are simulated (default ``"runtime"``).
    pipeline, namespace, use_units, level
        As for the fitters.
    """

    def __init__(self, dt, model, input, output, features=None, method=None, threshold=None,
                 reset=None, refractory=False, param_init=None, *, batch_size=1000,
                 use_units=True, backend=None, pipeline=None, namespace=None, level=0):
        if isinstance(output, Mapping) and "spike" in output and SPIKES not in output:
            output = {(SPIKES if key == "spike" else key): value for key, value in output.items()}
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size < 1:
            raise ConfigurationError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
        self.pipeline = pipeline if pipeline is not None else Parts.lazy_default()
        self.problem = FittingProblem.from_user(
            model, input, as_named(output, None, "output"), dt,
            backend=self.pipeline.resolve_backend(backend), threshold=threshold, reset=reset,
            refractory=refractory, method=method, param_init=param_init, namespace=namespace,
            level=level, owner="the Inferencer")
        self.use_units = use_units
        self.space = None
        self.n_samples = None
        self.batch_size = int(batch_size)
        self.features = sbi_features.normalise_features(features, self.output_names)
        self.x_o = sbi_features.observed_statistics(self.output_signals, self.output_spikes,
                                                    self.features, self.output_names,
                                                    self.n_traces)
        self.prior = self.posterior = self.inference = None
        self.theta = self.x = self.samples = None
        self.theta_scale = self.x_scale = None
        self._method = self._estimator = None
        self._round = 0
        self._simulation_key = None
        self.show_progress_bars = True

    # what is inferred from what lives in the fitting problem (self.problem)
    dt = property(lambda self: self.problem.dt, doc="Time step of the data and simulations.")
    model = property(lambda self: self.problem.model, doc="The parsed model.")
    param_init = property(lambda self: self.problem.param_init,
                          doc="Initial values and fixed parameters.")
    n_traces = property(lambda self: self.problem.n_traces, doc="Number of input traces.")
    output_names = property(lambda self: self.problem.output_names,
                            doc="Output variables, 'spikes' included.")
    output_signals = property(lambda self: self.problem.recordings.traces,
                              doc="Recorded trace outputs (not spikes) by name.")
    output_spikes = property(lambda self: self.problem.recordings.spikes,
                             doc="Recorded spike trains, or None.")

    def fit(self, *args, **kwargs):
        raise ConfigurationError("The Inferencer does not fit: call infer() for a posterior "
                                 "(or use TraceFitter/SpikeFitter for a best fit).")

    @property
    def n_neurons(self) -> int:
        """Neurons of the last training simulation (n_samples x n_traces)."""
        if self.n_samples is None:
            raise FitStateError("The number of samples is not known yet: call "
                                "generate_training_data() or infer() first.")
        return self.n_samples * self.n_traces

    def generate(self, output_var=None, params=None, param_init=None,
                 iteration=GENERATE_ITERATION, level=0):
        """Simulate the inputs with the parameters ``params`` (with units); see
        ``TraceFitter.generate``."""
        if params is None:
            raise FitStateError("Give params={...} (e.g. drawn from the posterior), or use "
                                "generate_traces() to draw them.")
        space, vector = parameter_point(self.problem, self.space, None, params)
        return generate_outputs(self.problem, space, vector, output_var=output_var,
                                param_init=param_init, iteration=iteration, level=level,
                                use_units=self.use_units)

    def setup_simulator(self, network_name, n_neurons, output_var, param_init, level=1):
        """A ``Simulator`` for Brian's active device with the model's network for
        ``n_neurons`` neurons (samples x traces) and monitors for ``output_var``, as
        ``TraceFitter.setup_simulator``; ``level=1`` takes the constants from the
        caller's namespace."""
        namespace = self.problem.resolve_namespace(max(int(level) - 1, 0))
        return manual_simulator(
            self.problem, self.pipeline.registry, network_name, n_neurons, output_var,
            param_init, namespace,
            self.space if self.space is not None else self.problem.free_parameters())

    @property
    def param_names(self) -> list[str]:
        """The inferred parameters, in alphabetical order (the columns of samples,
        posteriors and training data, as in brian2modelfitting)."""
        return list(self.space.names) if self.space is not None \
            else sorted(n for n in self.model.parameters if n not in self.param_init)

    # -- prior and training data -------------------------------------------
    def init_prior(self, **params):
        """A uniform prior (sbi ``BoxUniform``) over ``name=[lower, upper]`` bounds.

        Starts a new inference problem (any previous posterior is forgotten).
        """
        try:  # alphabetical, as brian2modelfitting orders samples and posteriors
            space = self.problem.parameter_space(params).sorted_by_name()
        except ParameterError as exc:
            raise type(exc)(str(exc).replace("to fit()", "to infer() or init_prior()")
                            .replace("No parameters to fit", "No parameters to infer")) from None
        from sbi.utils import BoxUniform
        torch = torch_module()
        self.space = space
        self.theta_scale = np.array([_power_of_ten([lo, hi]) for lo, hi in
                                     zip(space.lower, space.upper)])
        # the prior a user sees: over the parameters' own (SI) values, as the manual's
        # example and brian2modelfitting have it; sbi is trained on the rescaled one
        self.prior = BoxUniform(low=torch.as_tensor(space.lower, dtype=torch.float32),
                                high=torch.as_tensor(space.upper, dtype=torch.float32))
        self._scaled_prior = BoxUniform(
            low=torch.as_tensor(space.lower / self.theta_scale, dtype=torch.float32),
            high=torch.as_tensor(space.upper / self.theta_scale, dtype=torch.float32))
        self.posterior = self.inference = None
        self.x_scale = None
        self._round = 0
        return self.prior

    def _require_prior(self):
        if self.space is None:
            raise FitStateError("No prior yet: call init_prior(name=[lower, upper], ...) or "
                                "infer(...) with bounds first.")

    def _draw(self, distribution, n: int) -> np.ndarray:
        """``n`` parameter sets (SI) from a prior (a box over SI values: the one of
        :meth:`init_prior`, or ``calc_prior``'s) or a posterior (conditioned on x_o;
        trained on rescaled values)."""
        if _is_box(distribution):
            return np.atleast_2d(as_numpy(distribution.sample((n,)))).astype(float)
        if hasattr(distribution, "set_default_x"):
            drawn = distribution.sample((n,), x=self._x_o_sbi(), show_progress_bars=False)
        else:
            drawn = distribution.sample((n,))
        return np.atleast_2d(as_numpy(drawn)) * self.theta_scale

    def generate_training_data(self, n_samples, prior):
        """Draw ``n_samples`` parameter sets from ``prior`` (or a posterior); SI array."""
        self._require_prior()
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ConfigurationError(f"n_samples must be an integer >= 1; got {n_samples!r}.")
        theta = self._draw(prior, int(n_samples))
        self.n_samples = int(n_samples)
        return theta

    def _theta_array(self, theta) -> np.ndarray:
        self._require_prior()
        array = np.atleast_2d(as_numpy(theta))
        if array.ndim != 2 or array.shape[1] != len(self.space.names):
            raise DataError(f"theta must have one column per parameter "
                            f"({', '.join(self.space.names)}); got shape {array.shape}.")
        return array

    def _training_simulation(self, batch: int, level: int):
        record = tuple(self.output_signals)
        record_spikes = SPIKES in self.output_names
        key = ("infer", batch, self.space.names, record, record_spikes)
        if self._simulation_key not in (None, key):
            self.problem.release(self._simulation_key)
        self._simulation_key = key
        return self.problem.prepared(key, lambda: self.problem.simulation_spec(
            batch, self.space.names, self.problem.resolve_namespace(level),
            name="modelfit_infer", record=record, record_spikes=record_spikes))

    def extract_summary_statistics(self, theta, level=0):
        """Simulate every parameter set of ``theta`` (SI) and return the statistics x.

        Simulations run in batches of a fixed size through the backend.
        Diverged simulations get NaN statistics (dropped, with a warning,
        before training).
        """
        theta = self._theta_array(theta)
        n = len(theta)
        n_batches = math.ceil(n / self.batch_size)
        batch = math.ceil(n / n_batches)
        simulation = self._training_simulation(batch, level)
        width = sbi_features.n_statistics(self.features, self.output_names, self.n_traces,
                                          self.problem.n_steps)
        x = np.full((n, width), np.nan, dtype=np.float32)
        starts = range(0, n, batch)
        if self.show_progress_bars and n_batches > 1:
            from tqdm.auto import tqdm
            starts = tqdm(starts, total=n_batches, desc="Simulating", unit="batch")
        for start in starts:
            chunk = theta[start:start + batch]
            m = len(chunk)
            if m < batch:
                chunk = np.vstack([chunk, np.repeat(chunk[-1:], batch - m, axis=0)])
            result = simulation.run(self.space.columns(chunk), iteration=0)
            ok = np.flatnonzero(~result.diverged(batch)[:m])
            if ok.size == 0:
                continue
            traces = {name: result.traces[name][ok] for name in self.output_signals}
            spikes = [result.spikes[k] for k in ok] if result.spikes is not None else None
            with np.errstate(all="ignore"):
                x[start + ok] = sbi_features.summary_statistics(
                    traces, spikes, self.features, self.output_names, len(ok),
                    self.n_traces, first_index=start)
        self.n_samples = n
        return x

    def save_summary_statistics(self, f, theta=None, x=None):
        """Save parameter sets (SI) and statistics to a compressed ``.npz`` file."""
        theta = self.theta if theta is None else theta
        x = self.x if x is None else x
        if theta is None or x is None:
            raise FitStateError("Nothing to save: pass theta and x, or generate training data "
                                "(infer_step/infer) first.")
        np.savez_compressed(f, theta=as_numpy(theta), x=np.asarray(as_numpy(x), dtype=np.float32),
                            param_names=np.array(self.param_names))

    def load_summary_statistics(self, f):
        """Load ``(theta, x)`` saved by :meth:`save_summary_statistics` (or arr_0/arr_1)."""
        with np.load(f, allow_pickle=False) as loaded:
            if "theta" in loaded.files and "x" in loaded.files:
                theta, x = loaded["theta"], loaded["x"]
            elif "arr_0" in loaded.files and "arr_1" in loaded.files:
                theta, x = loaded["arr_0"], loaded["arr_1"]
            else:
                raise DataError(f"{f!r} holds {loaded.files}; expected arrays 'theta' and 'x'.")
            if "param_names" in loaded.files and self.space is not None and \
                    list(loaded["param_names"]) != list(self.space.names):
                raise DataError(f"{f!r} holds parameters {list(loaded['param_names'])}, but "
                                f"this inference is over {list(self.space.names)}.")
        if len(theta) != len(x):
            raise DataError(f"theta has {len(theta)} rows but x has {len(x)}.")
        self.theta, self.x = theta, x
        return theta, x

    # -- inference ----------------------------------------------------------------
    def _x_o_sbi(self):
        torch = torch_module()
        return torch.as_tensor(self.x_o / self.x_scale, dtype=torch.float32)

    def init_inference(self, inference_method, density_estimator_model, prior,
                       sbi_device="cpu", **inference_kwargs):
        """An sbi trainer (``NPE_C``, ``NLE_A``, ``NRE_B``, ...) for ``prior``.

        ``inference_kwargs`` go to sbi's ``posterior_nn``/``likelihood_nn``/
        ``classifier_nn`` (e.g. ``embedding_net``, ``hidden_features``), plus
        ``show_progress_bars`` for the trainer.
        """
        method = sbi_methods.resolve_method(inference_method)
        estimator = sbi_methods.resolve_estimator(method, density_estimator_model)
        device = sbi_methods.resolve_device(sbi_device)
        self.show_progress_bars = bool(inference_kwargs.pop("show_progress_bars",
                                                            self.show_progress_bars))
        if _is_box(prior):  # a prior over SI values: sbi gets it rescaled (theta_scale)
            prior = self._rescaled_box(prior, device)
        raw = None if self.features is not None else len(self.x_o)
        inference = sbi_methods.make_inference(method, estimator, prior, device, raw,
                                               self.show_progress_bars, **inference_kwargs)
        self.inference, self._method, self._estimator = inference, method, estimator
        return inference

    def _rescaled_box(self, prior, device: str):
        """The box ``prior`` (SI bounds) divided by :attr:`theta_scale`, on ``device``."""
        from sbi.utils import BoxUniform
        self._require_prior()
        torch = torch_module()
        scale = torch.as_tensor(self.theta_scale, dtype=torch.float32)
        low = prior.base_dist.low.detach().cpu() / scale
        high = prior.base_dist.high.detach().cpu() / scale
        if device == "cpu":
            return BoxUniform(low=low, high=high)
        return BoxUniform(low=low.to(device), high=high.to(device), device=device)

    def _family(self, inference) -> str:
        if self._method is not None and inference is self.inference:
            return self._method.family
        return sbi_methods.family_of(inference)

    def train(self, inference, theta, x, *args, **train_kwargs):
        """Append ``theta`` (SI) and ``x`` to ``inference`` and train it.

        ``args``: the proposal the parameters came from (posterior estimation)
        or the round they come from (likelihood/ratio estimation).
        """
        import inspect
        torch = torch_module()
        theta, x = self._theta_array(theta), np.atleast_2d(as_numpy(x))
        if self.x_scale is None:
            self.x_scale = self._x_scales(x)
        device = getattr(inference, "_device", "cpu")
        theta_t = torch.as_tensor(theta / self.theta_scale, dtype=torch.float32)
        x_t = torch.as_tensor(x / self.x_scale, dtype=torch.float32)
        sbi_methods.append_simulations(inference, self._family(inference), theta_t.to(device),
                                       x_t.to(device), *args)
        try:
            inference.train(**train_kwargs)
        except ValueError as exc:
            if "NaN" in str(exc) and self._round > 0:
                exc.add_note("modelfit: training on data from a posterior proposal became "
                             "numerically unstable (sbi's mixture-of-Gaussians loss of mdn "
                             "in later rounds); try density_estimator_model='maf', or fewer "
                             "epochs with train_kwargs={'max_num_epochs': ...}.")
            raise
        except TypeError as exc:
            accepted = [p for p in inspect.signature(inference.train).parameters if p != "self"]
            if not set(train_kwargs) - set(accepted):
                raise
            raise ConfigurationError(f"train_kwargs {sorted(set(train_kwargs) - set(accepted))} "
                                     f"are not accepted by {type(inference).__name__}.train; "
                                     f"it accepts {', '.join(accepted)}.") from exc
        self.inference = inference
        return inference

    def _x_scales(self, x: np.ndarray) -> np.ndarray:
        if self.features is None:  # one scale per output variable keeps the trace shape
            width = x.shape[1] // len(self.output_names)
            return np.concatenate([np.full(width, _power_of_ten(x[:, k * width:(k + 1) * width]))
                                   for k in range(len(self.output_names))])
        return np.array([_power_of_ten(x[:, j]) for j in range(x.shape[1])])

    def build_posterior(self, inference, **posterior_kwargs):
        """``(inference, posterior)``, the posterior conditioned on the recordings by default."""
        posterior = inference.build_posterior(**posterior_kwargs)
        posterior.set_default_x(self._x_o_sbi().to(getattr(posterior, "_device", "cpu")))
        self.inference, self.posterior = inference, posterior
        return inference, posterior

    def infer_step(self, proposal, inference, n_samples=None, theta=None, x=None,
                   train_kwargs=None, posterior_kwargs=None, *args):
        """One round: simulate (unless theta and x are given), train, build the posterior."""
        if theta is None:
            if n_samples is None:
                raise ConfigurationError("Give n_samples, or theta and x (the training data).")
            theta = self.generate_training_data(n_samples, proposal)
        theta = self._theta_array(theta)
        if x is None:
            x = self.extract_summary_statistics(theta, level=1)
        x = np.atleast_2d(as_numpy(x)).astype(np.float32)
        if len(x) != len(theta):
            raise DataError(f"theta has {len(theta)} rows but x has {len(x)}.")
        if x.shape[1] != len(self.x_o):
            raise DataError(f"x has {x.shape[1]} summary statistics per row, but the features "
                            f"give {len(self.x_o)} for the recordings.")
        self.theta, self.x = theta, x
        self.n_samples = len(theta)
        theta, x = sbi_features.drop_invalid(
            theta, x, lambda message: warnings.warn(message, RuntimeWarning, stacklevel=3))
        if not args:
            family = self._family(inference)
            if family in (sbi_methods.POSTERIOR, sbi_methods.VECTOR_FIELD):
                args = (None if proposal is self.prior else proposal,)
            else:
                args = (self._round,)
        self.train(inference, theta, x, *args, **dict(train_kwargs or {}))
        _, posterior = self.build_posterior(inference, **dict(posterior_kwargs or {}))
        self._round += 1
        return posterior

    def infer(self, n_samples=None, theta=None, x=None, n_rounds=1, inference_method="SNPE",
              density_estimator_model=None, inference_kwargs=None, train_kwargs=None,
              posterior_kwargs=None, restart=False, sbi_device="cpu", seed=None, **params):
        """Train a neural density estimator and return the posterior.

        ``n_rounds=1``: amortized inference; more rounds (or calling again
        without ``restart=True``) focus on the recordings, each round drawing
        its parameters from the last posterior. Bounds are ``name=[lower,
        upper]`` with units. ``density_estimator_model`` defaults to ``'maf'``
        (``'resnet'`` for ratio estimation). ``seed`` seeds torch and Brian.
        """
        if not isinstance(n_rounds, (int, np.integer)) or n_rounds < 1:
            raise ConfigurationError(f"n_rounds must be an integer >= 1; got {n_rounds!r}.")
        if x is not None and theta is None:
            raise ConfigurationError("x was given without theta; give both (or neither).")
        if seed is not None:
            import brian2
            torch_module().manual_seed(int(seed))
            brian2.seed(int(seed))
        continuing = self.posterior is not None and not restart
        if continuing:
            if params:
                space = self.problem.parameter_space(params).sorted_by_name()
                if not space.same_as(self.space):
                    raise ConfigurationError("The bounds changed since the last infer() call; "
                                             "pass restart=True to start a new inference.")
            inference = self.inference
            if inference is None:
                if self._method is None:
                    raise FitStateError("The posterior has no inference object to continue "
                                        "(e.g. it was loaded); pass restart=True.")
                inference = self.init_inference(self._method.name, self._estimator, self.prior,
                                                sbi_device, **dict(inference_kwargs or {}))
            proposal = self.posterior
            if n_samples is None and theta is None:
                n_samples = self.n_samples
        else:
            if n_samples is None and theta is None:
                raise ConfigurationError("Give n_samples (simulations per round), or theta "
                                         "and x (training data).")
            prior = self.init_prior(**params)
            inference = self.init_inference(inference_method, density_estimator_model, prior,
                                            sbi_device, **dict(inference_kwargs or {}))
            proposal = prior
        later = n_samples if n_samples is not None else len(as_numpy(theta))
        posterior = None
        for index in range(int(n_rounds)):
            first = index == 0
            posterior = self.infer_step(proposal, inference, n_samples if first else later,
                                        theta if first else None, x if first else None,
                                        train_kwargs, posterior_kwargs)
            proposal = posterior
        return posterior
