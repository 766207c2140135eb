"""The contracts between the fitting loop and its parts.

These are structural types (:class:`typing.Protocol`): any object with the
right methods works, no base class needed. Each plugin kind has one
Protocol listing exactly the methods the core calls on every such object
(:mod:`modelfit_core.contracts.kinds` checks them when a plugin registers).

Optional *capabilities* are Protocols of their own: an object opts in by
having their methods, and the core asks ``isinstance(obj, Capability)``,
never a class name:

* :class:`MetricWithUnits`: the metric's error has physical units.
* :class:`LeastSquaresMetric`: the error is a mean of squared, scaled
  residuals, so it can be accumulated during the simulation (the online
  error) and differentiated (``TraceFitter.refine``).
* :class:`SingleRunDelegation`: a batch backend names the backend that
  simulates one parameter set at a time (``generate``, ``refine``).
* :class:`RemoteScoring`: a prepared simulation that runs elsewhere scores
  its batches there.
* :class:`MultiObjectiveOptimizer`: the optimizer minimizes several
  objectives at once (``fit(objectives=...)``) and is told their matrix.
* :class:`MultiObjectiveMetric`: the metric's error is a sum of objectives
  that can be told apart (``fit(objectives="features")``).
* :class:`GradientOptimizer`: the optimizer is told, with each round's errors,
  the Gauss-Newton normal equations of every point (:class:`NormalEquations`),
  so the fit simulates sensitivities for it, and for no other optimizer.
* :class:`RunningSumBackend`: the backend simulates the sums a round
  accumulates while simulating (:attr:`SimulationSpec.running_sums`), which a
  gradient round needs.
* :class:`AsynchronousOptimizer` and :class:`AsynchronousSimulation`: an
  optimizer that takes errors as they come and a simulation that runs chunks
  side by side and hands back each as it finishes; with both (and the backend
  asked for it) a fit evaluates asynchronously: no worker waits for the others.
* :class:`ReportsWorkerActivity`: a prepared simulation spread over workers
  says what each worker did in the last batch (:class:`WorkerActivity`), which
  the fit passes on with the round (progress, storage, dashboard).
* :class:`RunsWholeFits`: the backend runs whole fits side by side
  (``fit_many``, ``modelfit benchmark``) through a :class:`FitExecutor`.

:class:`StudyStorage` is the contract of the study storages (SQLite is one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import attrs

if TYPE_CHECKING:
    import numpy as np

    from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec


@runtime_checkable
class Optimizer(Protocol):
    """Ask/tell optimizer over a box of parameters (all values in SI units)."""

    def initialize(self, parameter_names: Sequence[str], popsize: int,
                   rounds: int, **bounds: Sequence[float]) -> int:
        """Set up the search over ``bounds`` (name -> [lower, upper]); return the
        population size actually used."""
        ...

    def ask(self, n_samples: int) -> list[Sequence[float]]:
        """Return ``n_samples`` parameter vectors, ordered as ``parameter_names``."""
        ...

    def tell(self, parameters: Sequence[Sequence[float]], errors: Sequence[float]) -> None:
        """Report the errors of parameters returned by :meth:`ask`: one error per vector;
        for a :class:`MultiObjectiveOptimizer` in a fit with ``objectives=``, an
        array of shape (n_samples, n_objectives), one row per vector, the columns in
        the order of the names given to ``set_objectives``."""

    def recommend(self) -> Sequence[float]:
        """Return the optimizer's own best guess (a parameter vector)."""
        ...


@runtime_checkable
class MultiObjectiveOptimizer(Protocol):
    """Capability: the optimizer minimizes several objectives at once.

    A fit with ``objectives="separate"`` or ``"features"`` needs one (a
    single-objective optimizer is refused before anything is simulated), and
    one is refused by a fit without ``objectives=``. Before ``initialize`` (and
    again at every later ``fit()`` of the same fit, with the same names) the
    fitter calls ``set_objectives(names)``; ``tell`` then receives an
    (n_samples, n_objectives) array, finite (a diverged simulation is told as
    ten times the worst finite value of each objective seen, plus one), and
    ``recommend`` returns a compromise of the non-dominated points it was told.
    """

    def set_objectives(self, names: Sequence[str]) -> None:
        """The objectives ``tell`` will receive, in the order of its columns."""


@attrs.frozen(eq=False)  # arrays: compare jtj and jtr with numpy
class NormalEquations:
    """The Gauss-Newton normal equations of every point of a round.

    Coordinates are the parameters scaled to their bounds,
    ``u = (x - lower) / (upper - lower)``, so that every direction is on the same
    scale. With ``E`` the error the fit scores (the sum over outputs of a
    least-squares metric's mean of squared, normalized residuals), near a point
    ``u``: ``E(u + d) ~= E(u) + 2 jtr . d + d . jtj . d``, exactly the
    linearization of the residuals (``jtj`` is JᵀJ and ``jtr`` Jᵀr, each divided
    by the residuals' count and weighted as the metric weighs them). A diverged
    point has zeros.
    """

    jtj: np.ndarray
    """(n_samples, n_parameters, n_parameters), symmetric, positive semi-definite."""
    jtr: np.ndarray
    """(n_samples, n_parameters): half the gradient of the error."""

    def gradient(self) -> np.ndarray:
        """The gradient of the error, dE/du (n_samples, n_parameters)."""
        return 2 * self.jtr


@runtime_checkable
class GradientOptimizer(Protocol):
    """Capability: the optimizer uses the derivatives of the error.

    The fit then simulates the sensitivity equations with every round (one
    simulation per point costing about ``1 + n_parameters`` plain ones) and
    calls ``tell_gradients`` instead of ``tell``. The fit refuses, before
    anything is simulated, a metric without residuals (it needs a
    :class:`LeastSquaresMetric` for every output), spike outputs, a penalty, a
    backend without :class:`RunningSumBackend`, and models whose derivatives
    cannot be computed (stochastic equations, unknown functions, random resets),
    each with what to use instead. Resuming a stored fit tells the stored normal
    equations again, so a deterministic gradient optimizer continues exactly.
    """

    def tell_gradients(self, parameters: Sequence[Any],
                       errors: Sequence[float] | np.ndarray,
                       normal_equations: NormalEquations) -> None:
        """Report the errors (as :meth:`Optimizer.tell` does) and, row for row, the
        normal equations of the points returned by ``ask``."""


@runtime_checkable
class Metric(Protocol):
    """Turns simulated and recorded results into one error per parameter set.

    Trace metrics receive arrays of shape (n_samples, n_traces, n_steps) and
    (n_traces, n_steps); spike metrics nested lists of spike-time arrays in
    seconds. All values are unitless SI. A metric comparing spike trains says
    so with the attribute ``compares = "spikes"`` (the base class
    :class:`~modelfit_core.contracts.metric_bases.SpikeMetric` does); a metric
    may check the recordings before any simulation with
    ``validate_data(data, dt)``.
    """

    def calc(self, model_results: Any, data_results: Any, dt: Any) -> np.ndarray:
        """Return the errors, shape (n_samples,)."""
        ...


@runtime_checkable
class MetricWithUnits(Protocol):
    """Capability: the metric's error has physical units (without it: dimensionless)."""

    def get_dimensions(self, output_dim: Any) -> Any:
        """Physical dimensions of the raw error for an output of ``output_dim``."""

    def get_normalized_dimensions(self, output_dim: Any) -> Any:
        """Physical dimensions of the error after normalization."""

    def revert_normalization(self, error: Any) -> Any:
        """Undo the normalization of an error."""


@runtime_checkable
class MultiObjectiveMetric(Protocol):
    """Capability: the metric's error is a sum of named objectives (eFEL features for
    ``FeatureMetric``), each of which becomes an objective with
    ``fit(objectives="features")``."""

    def objective_names(self) -> Sequence[str]:
        """The objectives, in the order of the columns of :meth:`calc_objectives`."""
        ...

    def calc_objectives(self, model_results: Any, data_results: Any, dt: Any) -> np.ndarray:
        """Errors of each objective, shape (n_samples, n_objectives), normalized as
        ``calc``: each row adds up to what ``calc`` returns for that sample."""
        ...


@attrs.frozen
class ResidualForm:
    """How a :class:`LeastSquaresMetric` turns one output's traces into its error.

    With ``r = (simulated - recorded) / scale`` at each time step, the error of
    a parameter set is the mean over traces of either ``mean(r[start_step:]**2)``
    (``weights`` None) or ``sum(weights * r**2) / sum(weights)``.
    """

    scale: float
    """The normalization, in SI units of the output."""
    start_step: int = 0
    """First time step that counts."""
    weights: np.ndarray | None = None
    """One non-negative weight per time step, or None."""


@runtime_checkable
class LeastSquaresMetric(Protocol):
    """Capability: the error is a mean of squared, scaled residuals (:class:`ResidualForm`).

    Such an error can be accumulated while simulating (``online_error=True``,
    ``OnlineTraceFitter``) and refined with scipy's ``least_squares``
    (``TraceFitter.refine``). ``MSEMetric`` has it; any metric can opt in.
    """

    def residual_form(self, n_steps: int, dt: float) -> ResidualForm:
        """The residuals behind the error of traces of ``n_steps`` steps of ``dt`` seconds."""
        ...


@runtime_checkable
class PreparedSimulation(Protocol):
    """A model compiled for a fixed number of parameter sets and traces."""

    def run(self, parameters: Mapping[str, np.ndarray],
            iteration: float = 0.0) -> "SimulationResult":
        """Simulate every parameter set (name -> array of n_samples SI values)."""
        ...

    def close(self) -> None:
        """Release whatever the preparation holds (processes, files, devices)."""


@runtime_checkable
class AsynchronousOptimizer(Protocol):
    """Capability: the optimizer can be asked again before it is told, and told the
    errors of any asked points in any order (nevergrad's ask/tell with
    ``num_workers``). An asynchronous fit keeps at most :meth:`points_in_flight`
    points asked and not yet told.
    """

    def points_in_flight(self) -> int:
        """How many asked points may wait for their errors at once (after
        ``initialize``)."""
        ...


@runtime_checkable
class AsynchronousSimulation(Protocol):
    """Capability of a :class:`PreparedSimulation` that runs chunks of a batch side by
    side and returns each as soon as it is done.

    A fit uses it only when ``asynchronous`` is True (the backend was asked to; the
    backend says so with its own attribute ``asynchronous = True`` too, which a resumed
    fit reads to tell the stored rounds without asking for them again) and its
    optimizer is an :class:`AsynchronousOptimizer`: it then keeps
    :meth:`capacity` chunks of at most :attr:`chunk_size` points running, and asks
    for new points each time one finishes.
    """

    asynchronous: bool
    """Whether the backend was asked to evaluate asynchronously."""
    chunk_size: int
    """The most parameter sets one chunk takes."""

    def capacity(self) -> int:
        """Chunks that keep every worker busy."""
        ...

    def submit(self, parameters: Mapping[str, np.ndarray], iteration: float = 0.0) -> Any:
        """Start simulating (and scoring, see :class:`RemoteScoring`) up to
        :attr:`chunk_size` parameter sets (SI arrays by name); returns a handle."""
        ...

    def next_finished(self) -> tuple[Any, SimulationResult]:
        """Wait for a submitted chunk to finish: its handle and result."""
        ...

    def cancel_all(self) -> None:
        """Forget every submitted chunk not yet returned by :meth:`next_finished`."""


@attrs.frozen
class WorkerActivity:
    """What one worker did during one batch of a distributed simulation."""

    worker: str
    """The worker's name or address, as its scheduler knows it."""
    busy_s: float
    """Seconds it spent simulating and scoring its chunks."""
    n_samples: int
    """Parameter sets it simulated (a padded chunk's repeats not counted)."""
    chunks: int
    """Chunks it ran."""


@runtime_checkable
class ReportsWorkerActivity(Protocol):
    """Capability of a :class:`PreparedSimulation` spread over several workers: what
    each worker did in the last :meth:`PreparedSimulation.run` (a fit attaches it to
    the round: ``RoundRecord.workers``)."""

    def round_activity(self) -> Sequence[WorkerActivity]:
        """One entry per worker that ran part of the last batch."""
        ...


@runtime_checkable
class RemoteScoring(Protocol):
    """Capability of a :class:`PreparedSimulation` that runs in other processes.

    Its backend says so with the class attribute ``scores_remotely = True``, so
    that the fitter does not check the memory of recordings that are never
    gathered in this process.

    At the start of each fit the fitter passes a picklable
    ``errors_here(result, n_samples) -> SimulationResult`` (or None) that
    scores a batch where it was simulated, so that errors travel back instead
    of traces (the dask backend does this).
    """

    def compute_errors_with(self, errors_here: Callable | None) -> None:
        """Score every later batch with ``errors_here`` where it is simulated."""


@runtime_checkable
class SimulationBackend(Protocol):
    """Prepares a :class:`~modelfit_core.contracts.simulation.SimulationSpec` once for many runs."""

    name: str

    def prepare(self, spec: "SimulationSpec") -> PreparedSimulation:
        """Build (and compile) the simulation described by ``spec``."""
        ...


@runtime_checkable
class RunningSumBackend(Protocol):
    """Capability of a backend: it simulates :attr:`SimulationSpec.running_sums` (a
    variable per neuron to which an expression is added at the start of every step,
    with :attr:`SimulationSpec.step_weights` as functions of time), so a gradient
    round's sums of residuals and sensitivities are accumulated while simulating.
    It says so with the class attribute ``simulates_running_sums = True``."""

    simulates_running_sums: bool


@runtime_checkable
class FitExecutor(Protocol):
    """Runs whole fits side by side: what a :class:`RunsWholeFits` backend hands
    ``fit_many`` and ``modelfit benchmark``.

    Each job is a picklable call ``fn(*args)`` that builds a fitter, fits and writes
    its rounds to a study storage; the executor runs it in another process (a
    worker), one job per process at a time, and may run it again elsewhere if that
    process dies (the job then resumes from its storage).
    """

    @property
    def slots(self) -> int:
        """How many jobs run at once (its worker processes)."""
        ...

    @property
    def job_backend(self) -> str:
        """The backend plugin that simulates each job's batches where the job runs (the
        dask backend's ``inner``)."""
        ...

    @property
    def job_backend_options(self) -> Mapping[str, Any]:
        """The options of :attr:`job_backend`."""
        ...

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Start ``fn(*args)`` and return its future at once: ``done() -> bool``,
        ``result()`` (the value, or the job's exception raised), ``cancel()``, as a
        :class:`concurrent.futures.Future` has them."""
        ...

    def shutdown(self) -> None:
        """Cancel the jobs not finished and let go of what the executor holds (the
        backend's own ``shutdown`` closes a cluster it started)."""


@runtime_checkable
class RunsWholeFits(Protocol):
    """Capability of a backend: it runs whole fits side by side, each in a process of
    its own (the dask backend, on its workers). ``fit_many`` and ``modelfit benchmark``
    then spread their fits over it instead of running them one after another in this
    process."""

    def fit_executor(self) -> FitExecutor:
        """The executor that runs the jobs (started if need be)."""
        ...


@runtime_checkable
class SingleRunDelegation(Protocol):
    """Capability of a batch backend (processes, a compiled binary): name the
    backend for single simulations in this process (``generate``, ``refine``),
    where a round trip or a compilation per run would dominate. Without it, a
    backend simulates single runs itself."""

    def single_run_backend(self) -> SimulationBackend:
        """The backend that simulates one parameter set at a time."""
        ...


@runtime_checkable
class StudyStorage(Protocol):
    """Where a fit's rounds are written as they finish, and read back to resume it.

    ``storage="sqlite:///fit.db"`` (or a path) on a fitter names the SQLite store;
    the part before ``://`` picks the storage plugin (the ``storage`` kind:
    ``modelfit.storage`` entry points named after the scheme, made with
    ``(url, study)``), and any object with these methods can be given as
    ``storage=`` itself. The fit calls it directly: writing a round is part of
    committing it (tell, store, record: whole or not at all), so a storage is
    not a listener. ``location`` (``url#study``) names the study in messages and
    in ``modelfit_checkpoint_written``.
    """

    location: str

    def start(self, description: Any, restart: bool) -> None:
        """Plan a new study described by ``description`` (a
        :class:`~modelfit_core.results.study_description.StudyDescription`), written
        when the rounds begin; a stored study of the same name needs ``restart``."""

    def load_for_resume(self, description: Any) -> Any:
        """The stored study that ``description`` continues (a
        :class:`~modelfit_core.results.storage.StoredStudy`: its rounds, the next
        iteration, the optimizer's rounds); a StorageError listing each difference
        if it is another fit's."""

    def session(self) -> Any:
        """A context manager owning the study while rounds run; it yields
        ``write_round(record, optimizer) -> location``, called once per round after
        the optimizer was told it and before it joins the history."""

    def close(self) -> None:
        """Release the storage (connections, files)."""


@runtime_checkable
class KeepsDisplayData(Protocol):
    """A study storage that also keeps what a dashboard draws: the study's details and
    recordings, the best points' simulated traces, how each fit ended (the SQLite
    store does)."""

    def display_session(self, display: Any) -> Any:
        """As ``session()``, also writing what ``display`` (a
        :class:`~modelfit_core.fitting.fit_display.FitDisplay`) gives."""


@runtime_checkable
class Feedback(Protocol):
    """Told about every round; returning True stops the fit."""

    def __call__(self, params, errors, best_params, best_error, index,
                 additional_info=None) -> bool | None:
        """React to a finished round."""


@runtime_checkable
class Inference(Protocol):
    """Simulation-based inference engine (prior, training, posterior, sampling)."""

    def infer(self, *args, **kwargs) -> Any:
        """Train on simulations and return the posterior."""


@runtime_checkable
class Dashboard(Protocol):
    """Pages about the studies of a fit database, served read-only while fits write it
    (``modelfit dashboard``, ``fit(dashboard=True)``).

    ``storage`` is what fitters take (``"sqlite:///fit.db"`` or a path); ``study``,
    if given, is the study whose page the printed address opens. Where it listens
    (host, port) is the plugin's own option.
    """

    def serve(self, storage: str, study: str | None = None) -> None:
        """Serve in this process until interrupted (Ctrl-C); print the address first."""

    def start(self, storage: str, study: str | None = None) -> Any:
        """Serve in the background while this process runs (without slowing it down);
        return at once with an object that has ``url`` (the address, a string) and
        ``stop()``."""


@runtime_checkable
class SuiteProblem(Protocol):
    """A fitting problem of the benchmark suite (``modelfit benchmark``), made with no
    arguments."""

    def define(self) -> Any:
        """Return the problem: a
        :class:`~modelfit_core.contracts.benchmark_problem.BenchmarkProblem`."""


def required_methods(protocol: type) -> tuple[str, ...]:
    """The methods a Protocol lists (in definition order), e.g. ``('calc',)`` for Metric."""
    return tuple(name for name, value in vars(protocol).items()
                 if callable(value) and (not name.startswith("_") or name == "__call__"))
