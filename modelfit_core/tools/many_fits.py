"""Many independent fits at once, each its own study in one storage file: :func:`fit_many`.

A job (:class:`FitJob`) is a TOML configuration (what ``modelfit fit`` reads) or a
function that makes a fitter. On a backend that runs whole fits
(:class:`~modelfit_core.contracts.protocols.RunsWholeFits`: the dask backend) the
jobs run side by side, one per worker; on any other backend, one after another in
this process. Every job writes its rounds to the same SQLite file, from which the
progress is read and the results are taken, and from which running ``fit_many``
again resumes: finished studies are read back, unfinished ones resumed, the others
started.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.protocols import FitExecutor, RunsWholeFits
from modelfit_core.contracts.units import error_quantity, with_unit
from modelfit_core.registry.parts import Parts
from modelfit_core.registry.plugin_registry import Registry, shared_registry
from modelfit_core.results.database import database_path, open_for_writing
from modelfit_core.results.storage import list_studies, read_history
from modelfit_core.results.study_description import dimension_from_json, dimension_json
from modelfit_core.results.study_progress import stored_rounds
from modelfit_core.tools.side_by_side import Ended, Job, Watcher, run_side_by_side

RAN, RESUMED, STORED, FAILED = "ran", "resumed", "stored", "failed"
IN_THIS_PROCESS = "this process"
RESERVED_FIT_OPTIONS = frozenset({"n_rounds", "resume", "restart", "callback", "dashboard"})
"""``fit()`` keywords that fit_many sets itself."""

BackendChoice = tuple[Any, Mapping[str, Any]]
"""A backend plugin's name (or a backend object) and options: what a configuration job
simulates with."""


def _shown_value(value: Any) -> str:
    if isinstance(value, os.PathLike):
        return Path(value).name
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@attrs.frozen(eq=False)
class FitJob:
    """One fit of :func:`fit_many`: a TOML configuration, or a function making a fitter.

    Make jobs with :meth:`from_config`, :meth:`from_function` or :meth:`for_each`.

    Parameters
    ----------
    config : Path, optional
        A configuration file as ``modelfit fit`` reads it (its ``[fit] storage``,
        ``study``, ``feedback`` and ``dashboard`` are replaced by fit_many's).
    make_fitter : callable, optional
        Called where the fit runs as ``make_fitter(storage=..., study=...,
        **arguments)``; it returns a fitter made with that storage and study
        (``TraceFitter(..., storage=storage, study=study)``). With a cluster it is
        sent to the workers: a module-level function, or one defined in a script.
    arguments : dict
        Keyword arguments of ``make_fitter`` (``seed=3``, ``data="cell2.csv"``).
    n_rounds : int, optional
        Rounds of the fit (required with ``make_fitter``; a configuration's
        ``[fit] n_rounds`` otherwise).
    fit_options : dict
        Further keywords of ``fitter.fit()``: bounds, ``optimizer``, ``metric``,
        ``online_error``...
    seed : int, optional
        Replaces a configuration's ``[fit] seed``.
    study : str, optional
        The study's name; default: derived from the job (``hh/seed3``,
        ``make_fit/seed=3``).
    """

    config: Path | None = attrs.field(default=None,
                                      converter=attrs.converters.optional(Path))
    make_fitter: Callable[..., Any] | None = None
    arguments: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    n_rounds: int | None = None
    fit_options: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    seed: int | None = None
    study: str | None = None

    def __attrs_post_init__(self):
        if (self.config is None) == (self.make_fitter is None):
            raise ArgumentTypeError("A FitJob is a configuration file (config=) or a "
                                    "function making a fitter (make_fitter=): give one.")
        if self.make_fitter is not None and not callable(self.make_fitter):
            raise ArgumentTypeError(f"make_fitter must be a function returning a fitter; "
                                    f"got {self.make_fitter!r}.")
        if self.config is not None and (self.arguments or self.fit_options):
            raise ConfigurationError(
                f"A configuration job ({self.config}) takes seed=, n_rounds= and study=; "
                f"write other changes in the file, or make the fitter in a function "
                f"(FitJob.from_function).")
        if self.make_fitter is not None and self.n_rounds is None:
            raise ConfigurationError(f"FitJob of {self.label}: give n_rounds=, the rounds "
                                     f"of the fit.")
        if self.n_rounds is not None and (isinstance(self.n_rounds, bool)
                                          or not isinstance(self.n_rounds, int)
                                          or self.n_rounds < 1):
            raise ConfigurationError(f"FitJob of {self.label}: n_rounds must be an integer "
                                     f">= 1; got {self.n_rounds!r}.")
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigurationError(f"FitJob of {self.label}: seed must be an integer >= 0; "
                                     f"got {self.seed!r}.")
        reserved = sorted(RESERVED_FIT_OPTIONS & set(self.fit_options))
        if reserved:
            raise ConfigurationError(
                f"FitJob of {self.label}: fit_options may not hold {', '.join(reserved)}: "
                f"fit_many sets them (n_rounds= is the job's own argument; a stored study "
                f"is resumed by running fit_many again).")
        if self.study is not None and (not isinstance(self.study, str) or not self.study):
            raise ConfigurationError(f"FitJob of {self.label}: study must be a non-empty "
                                     f"string; got {self.study!r}.")

    @property
    def label(self) -> str:
        """The job in messages: its file, or its function and arguments."""
        if self.config is not None:
            seed = f" (seed {self.seed})" if self.seed is not None else ""
            return f"{self.config}{seed}"
        name = getattr(self.make_fitter, "__name__", repr(self.make_fitter))
        given = ", ".join(f"{key}={_shown_value(value)}" for key, value in self.arguments.items())
        return f"{name}({given})"

    @classmethod
    def from_config(cls, path: str | os.PathLike, *, seed: int | None = None,
                    n_rounds: int | None = None, study: str | None = None) -> "FitJob":
        """The fit a configuration file describes (``seed`` and ``n_rounds`` replace its
        own)."""
        return cls(config=Path(path), seed=seed, n_rounds=n_rounds, study=study)

    @classmethod
    def from_function(cls, make_fitter: Callable[..., Any], *, n_rounds: int,
                      fit_options: Mapping[str, Any] | None = None, study: str | None = None,
                      **arguments: Any) -> "FitJob":
        """The fit of the fitter ``make_fitter(storage=..., study=..., **arguments)``."""
        return cls(make_fitter=make_fitter, arguments=arguments, n_rounds=n_rounds,
                   fit_options=dict(fit_options or {}), study=study)

    @classmethod
    def for_each(cls, source: Callable[..., Any] | str | os.PathLike, *,
                 n_rounds: int | None = None, fit_options: Mapping[str, Any] | None = None,
                 **varying: Iterable[Any]) -> list["FitJob"]:
        """One job per combination of the ``varying`` arguments' values.

        ``FitJob.for_each(make_fit, seed=range(1, 9), n_rounds=30, fit_options=bounds)``:
        the same fit with eight seeds; ``FitJob.for_each(make_fit, data=paths, seed=[1,
        2], ...)``: each dataset with two seeds (every combination). With a
        configuration file as ``source``, only ``seed`` varies.
        """
        if not varying:
            raise ConfigurationError("FitJob.for_each: name what varies, e.g. "
                                     "seed=range(1, 9).")
        names = list(varying)
        values = [list(varying[name]) for name in names]
        if any(not v for v in values):
            raise ConfigurationError(f"FitJob.for_each: "
                                     f"{', '.join(n for n, v in zip(names, values) if not v)} "
                                     f"has no value.")
        if isinstance(source, (str, os.PathLike)):
            if names != ["seed"] or fit_options:
                raise ConfigurationError(
                    f"FitJob.for_each({str(source)!r}, ...): a configuration file varies "
                    f"only its seed (seed=range(1, 9)); for other changes make the fitter "
                    f"in a function.")
            return [cls.from_config(source, seed=seed, n_rounds=n_rounds)
                    for seed in values[0]]
        if n_rounds is None:
            raise ConfigurationError("FitJob.for_each: give n_rounds=, the rounds of each fit.")
        return [cls.from_function(source, n_rounds=n_rounds, fit_options=fit_options,
                                  **dict(zip(names, combination)))
                for combination in itertools.product(*values)]


@attrs.frozen(eq=False)
class FitOutcome:
    """How one job of :func:`fit_many` ended, read from its study."""

    job: FitJob
    study: str
    status: str
    """``'ran'``, ``'resumed'`` (its study held some rounds), ``'stored'`` (it held them
    all: nothing ran) or ``'failed'`` (see :attr:`error`)."""
    rounds: int
    """Rounds its study holds."""
    best_params: dict[str, Any] | None = None
    """The best parameters stored (with units), None before a finite error."""
    best_error: Any = None
    where: str = ""
    """The process that fitted it, ``host:pid`` (or ``'this process'``)."""
    error: BaseException | None = None
    """What the job raised (the rounds it stored before are kept)."""

    @property
    def ok(self) -> bool:
        """Whether the job ended without an error."""
        return self.error is None

    def __str__(self) -> str:
        where = f" on {self.where}" if self.where else ""
        if self.error is not None:
            reason = str(self.error).strip().splitlines()[0] if str(self.error).strip() \
                else ""
            return (f"{self.study}: FAILED{where} after {self.rounds} stored round(s): "
                    f"{type(self.error).__name__}: {reason} (job {self.job.label})")
        best = f"best error {self.best_error}" if self.best_params is not None else \
            "no finite error"
        return f"{self.study}: {self.status}{where}, {self.rounds} rounds, {best}"


# -- where a job runs -----------------------------------------------------------------------
def config_for_job(job: FitJob, storage: str, study: str, backend: BackendChoice | None):
    """The job's configuration as fit_many runs it: its storage and study, no feedback
    or dashboard, the job's seed, and ``backend`` (name, options) if given."""
    from modelfit_core.tools.config import load_config
    assert job.config is not None
    config = load_config(job.config)
    fit = dict(config.data.get("fit", {}))
    fit.update(storage=storage, study=study, feedback=False, dashboard=False)
    if job.seed is not None:
        fit["seed"] = job.seed
    if backend is not None:
        fit["backend"], fit["backend_options"] = backend[0], dict(backend[1])
    return attrs.evolve(config, data={**config.data, "fit": fit})


def _fitter_and_call(job: FitJob, storage: str, study: str,
                     backend: BackendChoice | None) -> tuple[Any, int, dict[str, Any]]:
    """The job's fitter, its rounds and the other ``fit()`` keywords; nothing simulated."""
    if job.config is not None:
        from modelfit_core.tools.config import build_fitter
        config = config_for_job(job, storage, study, backend)
        fitter, bounds = build_fitter(config)
        try:  # checked now, as fit() would before simulating: several files, one message
            fitter.problem.parameter_space(bounds)
        except ConfigurationError as exc:
            raise config.error("bounds", None, str(exc)) from exc
        n_rounds = job.n_rounds if job.n_rounds is not None else config.get("fit", "n_rounds")
        return fitter, n_rounds, {"objectives": config.get("fit", "objectives"), **bounds}
    assert job.make_fitter is not None and job.n_rounds is not None
    fitter = job.make_fitter(storage=storage, study=study, **job.arguments)
    location = getattr(getattr(fitter, "storage", None), "location", None)
    if not callable(getattr(fitter, "fit", None)):
        raise ArgumentTypeError(f"{job.label} returned {fitter!r}, not a fitter.")
    if location != f"{storage}#{study}":
        raise ConfigurationError(
            f"{job.label} made a fitter that does not write to the storage fit_many gives "
            f"it (its storage: {location or 'none'}; expected {storage}#{study}): make it "
            f"with storage=storage, study=study, e.g. TraceFitter(..., storage=storage, "
            f"study=study).")
    return fitter, job.n_rounds, dict(job.fit_options)


def run_job(job: FitJob, study: str, storage: str, backend: BackendChoice | None = None,
            on_round: Callable[[], None] | None = None) -> dict[str, Any]:
    """Build and fit one job where it runs (a worker, or this process): its study is
    resumed if it holds rounds, else started. Returns the status, ``host:pid``, the
    rounds and the best parameters and error (so the driver need not read them back).

    ``on_round`` is told each finished round (in this process only: it is not sent).
    """
    stored = stored_rounds(database_path(storage)).get(study, 0)
    fitter, n_rounds, options = _fitter_and_call(job, storage, study, backend)
    callback = None if on_round is None else (lambda *args, **kwargs: on_round())
    try:
        fitter.fit(n_rounds=n_rounds, resume=stored > 0, callback=callback, **options)
    finally:
        closing = getattr(fitter.storage, "close", None)
        if callable(closing):
            closing()
    fit = fitter.current_fit
    # plain numbers and dimensions as text: an executor's serialization may turn Brian's
    # quantities (numpy subclasses) into bare arrays
    best = None if fit is None or fit.best_vector is None else {
        "names": list(fit.space.names), "vector": [float(v) for v in fit.best_vector],
        "dims": [dimension_json(dim) for dim in fit.space.dims],
        "error": float(fit.best_error), "error_dim": dimension_json(fit.objective.error_dim)}
    return {"status": RESUMED if stored else RAN,
            "where": f"{socket.gethostname()}:{os.getpid()}",
            "rounds": len(fit.history.rounds) if fit is not None else stored, "best": best}


def _best_with_units(best: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, Any]:
    """A job's best parameters and error (from :func:`run_job`) with their units."""
    if best is None:
        return None, None
    params = {name: with_unit(value, dimension_from_json(dim))
              for name, value, dim in zip(best["names"], best["vector"], best["dims"])}
    return params, error_quantity(best["error"], dimension_from_json(best["error_dim"]))


# -- the driver ----------------------------------------------------------------------------
@attrs.frozen
class _Planned:
    job: FitJob
    study: str
    n_rounds: int


def _study_of(job: FitJob, config_study: str | None) -> str:
    if job.study is not None:
        return job.study
    if job.config is not None:
        base = config_study or job.config.stem
        return base if job.seed is None else f"{base}/seed{job.seed}"
    name = getattr(job.make_fitter, "__name__", "fit")
    return "/".join([name] + [f"{key}={_shown_value(value)}"
                              for key, value in job.arguments.items()])


def _planned(job: FitJob, storage: str, backend: BackendChoice | None) -> _Planned:
    """The job's study and rounds; a configuration is read and its fitter built (every
    value checked, nothing compiled)."""
    if job.config is None:
        assert job.n_rounds is not None
        return _Planned(job, _study_of(job, None), job.n_rounds)
    from modelfit_core.tools.config import load_config
    study = _study_of(job, load_config(job.config).get("fit", "study"))
    fitter, n_rounds, _ = _fitter_and_call(job, storage, study, backend)
    fitter.storage.close()
    return _Planned(job, study, n_rounds)


def _jobs(jobs: Iterable[FitJob | str | os.PathLike] | FitJob | str | os.PathLike
          ) -> list[FitJob]:
    given = [jobs] if isinstance(jobs, (str, os.PathLike, FitJob)) else list(jobs)
    found = []
    for job in given:
        if isinstance(job, (str, os.PathLike)):
            job = FitJob.from_config(Path(job).resolve())
        elif not isinstance(job, FitJob):
            raise ArgumentTypeError(f"fit_many takes FitJobs and configuration files; got "
                                    f"{job!r}.")
        elif job.config is not None and not job.config.is_absolute():
            # workers may run elsewhere: files are named absolutely
            job = attrs.evolve(job, config=job.config.resolve())
        found.append(job)
    if not found:
        raise ConfigurationError("fit_many: no job given.")
    return found


def _check_unique(planned: list[_Planned]) -> None:
    by_study: dict[str, list[str]] = {}
    for item in planned:
        by_study.setdefault(item.study, []).append(item.job.label)
    twice = {study: labels for study, labels in by_study.items() if len(labels) > 1}
    if twice:
        listed = "; ".join(f"{study!r}: {', '.join(labels)}" for study, labels in twice.items())
        raise ConfigurationError(
            f"Several jobs would write the same study ({listed}); each fit needs its own. "
            f"Give them study= names (FitJob(..., study=...), or [fit] study in the "
            f"configuration files).")


def _outcome(item: _Planned, path: Path, status: str, where: str = "",
             error: BaseException | None = None) -> FitOutcome:
    if item.study not in list_studies(path):
        return FitOutcome(item.job, item.study, FAILED if error else status, 0, where=where,
                          error=error)
    history = read_history(path, item.study)
    best = history.space.to_dict(history.best_vector) \
        if history.best_vector is not None else None
    error_value = error_quantity(history.best_error, history.error_dim) \
        if best is not None else None
    return FitOutcome(item.job, item.study, FAILED if error else status, len(history.rounds),
                      best, error_value, where, error)


class _Progress(Watcher):
    """A bar of rounds with the running fits' counts, and a line per fit started and
    ended (nothing printed when ``stream`` is None)."""

    def __init__(self, planned: list[_Planned], stored: dict[str, int], slots: int,
                 where: str, stream: TextIO | None):
        self.n_rounds = {item.study: item.n_rounds for item in planned}
        self.stored = {study: min(stored.get(study, 0), n) for study, n in self.n_rounds.items()}
        self.running: set[str] = set()
        self.done = sum(1 for study, n in self.n_rounds.items() if self.stored[study] >= n)
        self.total = len(planned)
        self.stream = stream
        self.bar = None
        if stream is not None:
            from tqdm import tqdm
            self.bar = tqdm(total=sum(self.n_rounds.values()), initial=sum(self.stored.values()),
                            unit="round", file=stream, dynamic_ncols=True,
                            desc=f"{self.done}/{self.total} fits")
            self.say(f"fit_many: {self.total} fits, {slots} at a time ({where})")

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)

    def _refresh(self) -> None:
        if self.bar is not None:  # drawn with the next update (tqdm's own pace)
            self.bar.set_description(f"{self.done}/{self.total} fits", refresh=False)
            self.bar.set_postfix_str(", ".join(
                f"{study} {self.stored[study]}/{self.n_rounds[study]}"
                for study in sorted(self.running)), refresh=False)

    def started(self, job: Job, where: str) -> None:
        self.running.add(job.study)
        stored = self.stored[job.study]
        self.say(f"{job.study}: " + (f"resumed after {stored} stored rounds" if stored
                                     else "started") + f" on {where}")
        self._refresh()

    def rounds(self, job: Job, stored: int) -> None:
        stored = min(stored, self.n_rounds[job.study])
        if self.bar is not None and stored > self.stored[job.study]:
            self.bar.update(stored - self.stored[job.study])
        self.stored[job.study] = max(stored, self.stored[job.study])
        self._refresh()

    def ended(self, job: Job, ended: Ended) -> None:
        self.running.discard(job.study)
        self.done += 1
        if ended.error is not None:
            text = str(ended.error).strip().splitlines()
            self.say(f"{job.study}: FAILED: {type(ended.error).__name__}: "
                     f"{text[0] if text else ''}")
        else:
            where = ended.value.get("where", "") if isinstance(ended.value, dict) else ""
            self.say(f"{job.study}: {self.stored[job.study]} rounds stored"
                     + (f" (fitted on {where})" if where else ""))
        self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fit_many(jobs: Iterable[FitJob | str | os.PathLike] | FitJob | str | os.PathLike,
             storage: str | os.PathLike, *, backend: Any = None,
             backend_options: Mapping[str, Any] | None = None, resume: bool = True,
             progress: bool = True, stream: TextIO | None = None,
             registry: Registry | None = None) -> list[FitOutcome]:
    """Run independent fits, each its own study in one SQLite file.

    Parameters
    ----------
    jobs : iterable of FitJob, or configuration file paths
        The fits (:class:`FitJob`; a path is ``FitJob.from_config(path)``).
    storage : str or path
        ``"sqlite:///many.db"`` or a path. With a cluster, every worker writes to it:
        it must be on a file system they share (docs/distributed_and_storage.md).
    backend : str or backend object, optional
        Where the fits run. A backend that runs whole fits (``"dask"``, with
        ``backend_options={"n_workers": 2}`` or ``{"address": ...}``) runs them side by
        side, one per worker, each simulating with its inner backend (a configuration's
        ``[fit] backend`` is replaced by it). Any other backend, or None: one after
        another in this process (configurations then simulate with ``backend`` if given,
        else their own). A backend made here from its name is shut down at the end.
    resume : bool
        Studies already in ``storage`` are read back when they hold all their rounds
        and resumed otherwise (the default); False refuses them before anything runs.
    progress : bool
        A bar of rounds, and a line per fit started and ended, on ``stream`` (default
        stderr).
    registry : Registry, optional
        Where the backend is found (default: the process's).

    Returns
    -------
    list of FitOutcome
        One per job, in order: its study, status, rounds, best parameters and error,
        the process that fitted it, or the error it raised (the others go on).

    Raises
    ------
    ConfigurationError
        A bad configuration (named with its key and line), two jobs on one study, a
        storage that is not SQLite: before anything is simulated.
    """
    listed = _jobs(jobs)
    path = database_path(os.fspath(storage)).resolve()
    url = f"sqlite:///{path}"
    parts = Parts(registry=registry if registry is not None else shared_registry())
    chosen = None if backend is None else \
        parts.resolve_backend(backend, dict(backend_options or {}))
    made_here = isinstance(backend, str)
    side_by_side = isinstance(chosen, RunsWholeFits)
    # one after another here: every configuration simulates with the one backend object
    here_backend: BackendChoice | None = (chosen, {}) \
        if chosen is not None and not side_by_side else None
    try:
        # every job is checked before anything is simulated (configurations are read and
        # their fitters built; the file is created, in WAL mode, before a worker writes)
        planned = [_planned(job, url, here_backend) for job in listed]
        _check_unique(planned)
        open_for_writing(path).close()
        stored = stored_rounds(path)
        if not resume:
            existing = [item.study for item in planned if item.study in list_studies(path)]
            if existing:
                raise ConfigurationError(
                    f"{path} already holds the studies {', '.join(map(repr, existing))} and "
                    f"resume=False; pass resume=True to continue them, or another storage.")
        outcomes: dict[int, FitOutcome] = {
            k: _outcome(item, path, STORED) for k, item in enumerate(planned)
            if stored.get(item.study, 0) >= item.n_rounds}
        to_run = [k for k in range(len(planned)) if k not in outcomes]
        executor = chosen.fit_executor() if side_by_side and to_run else None
        out = (stream if stream is not None else sys.stderr) if progress else None
        where = (f"side by side on {chosen!r}" if executor is not None else
                 "one after another in this process" if to_run else "all stored already")
        watcher = _Progress(planned, stored, executor.slots if executor else 1, where, out)
        for k, outcome in outcomes.items():
            watcher.say(f"{outcome.study}: all {outcome.rounds} rounds stored already")
        try:
            if executor is not None:
                ended = _run_on(executor, [planned[k] for k in to_run], url, path, watcher)
            else:
                ended = _run_here([planned[k] for k in to_run], url, here_backend, watcher)
            for k, result in zip(to_run, ended):
                value = result.value if isinstance(result.value, dict) else {}
                if result.error is None and "rounds" in value:  # the job's own best
                    outcomes[k] = FitOutcome(
                        planned[k].job, planned[k].study, value["status"], value["rounds"],
                        *_best_with_units(value["best"]), where=value["where"])
                else:
                    outcomes[k] = _outcome(planned[k], path, value.get("status", FAILED),
                                           value.get("where", ""), result.error)
        finally:
            watcher.close()
            if executor is not None:
                executor.shutdown()
    finally:
        shutdown = getattr(chosen, "shutdown", None)
        if made_here and callable(shutdown):
            shutdown()
    return [outcomes[k] for k in range(len(planned))]


def _run_on(executor: FitExecutor, planned: list[_Planned], url: str, path: Path,
            watcher: Watcher) -> list[Ended]:
    backend = (executor.job_backend, dict(executor.job_backend_options))
    Parts(registry=shared_registry()).resolve_backend(*backend)  # a bad inner: now
    jobs = [Job(item.study, item.n_rounds, run_job, (item.job, item.study, url, backend))
            for item in planned]
    return run_side_by_side(executor, jobs, path, watcher)


def _run_here(planned: list[_Planned], url: str, backend: BackendChoice | None,
              watcher: Watcher) -> list[Ended]:
    ended = []
    for item in planned:
        job = Job(item.study, item.n_rounds, run_job, ())
        count = stored_rounds(database_path(url)).get(item.study, 0)
        watcher.started(job, IN_THIS_PROCESS)

        def on_round(job: Job = job) -> None:
            nonlocal count
            count += 1
            watcher.rounds(job, count)

        try:
            value = run_job(item.job, item.study, url, backend, on_round)
            result = Ended(value={**value, "where": IN_THIS_PROCESS})
        except Exception as exc:  # noqa: BLE001 - the job's own error: the others go on
            result = Ended(error=exc)
        watcher.ended(job, result)
        ended.append(result)
    return ended
