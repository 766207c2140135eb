"""The clusters of the dask backend: which one, how it is reached, whether its
workers can be trusted with a fit, and what a lost scheduler means.

Three ways to a cluster (``docs/distributed_and_storage.md``, "Clusters"):

* a scheduler that runs already, by its address (:func:`connect`);
* a ``LocalCluster`` started here, one single-threaded worker process each
  (:func:`start_local_cluster`);
* a dask-jobqueue cluster (SLURM, PBS, SGE, LSF, HTCondor, Moab, OAR) whose
  scheduler runs here and whose workers are batch jobs
  (:func:`jobqueue_cluster` builds it without submitting anything,
  :func:`submit_jobs` submits).

Whatever the cluster, its workers must run the driver's versions of Python,
modelfit, Brian 2, numpy and dask's own packages (:func:`check_workers`), and
simulate one chunk at a time (one thread each): a worker keeps one prepared
simulation per fit, and two threads running it at once give wrong results.

Like ``dask_backend``, this module imports without dask: dask, distributed and
dask_jobqueue are imported where they are used.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.metadata
import importlib.util
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from modelfit_core.contracts.errors import ConfigurationError, SimulationError
from modelfit_core.plugin_api import DISTRIBUTION, install_hint


class WorkerVersionError(ConfigurationError):
    """Workers (or the scheduler) of a dask cluster run other versions of the packages
    a fit depends on than this process."""


class WorkerThreadsError(ConfigurationError):
    """Workers of a dask cluster run more than one thread each."""


class NoWorkersError(ConfigurationError, TimeoutError):
    """No worker of the batch jobs submitted for a fit joined the scheduler in time."""


class SchedulerLostError(SimulationError):
    """The dask scheduler stopped answering during a fit."""


class AllWorkersLostError(SimulationError):
    """The dask cluster had no worker for longer than the backend waits for one."""


# -- the kinds of cluster ------------------------------------------------------------------
LOCAL = "local"
JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
                    "lsf": "LSFCluster", "htcondor": "HTCondorCluster",
                    "moab": "MoabCluster", "oar": "OARCluster"}
"""dask-jobqueue's cluster classes, by the name ``cluster=`` takes."""
CLUSTER_KINDS = (LOCAL, *JOBQUEUE_CLASSES)

CONNECT_TIMEOUT_S = 5.0
"""How long a scheduler may take to answer: when connecting to it by its address, and
when the connection is lost in a fit (dask tries to reconnect that long)."""
WORKERS_TIMEOUT_S = 1800.0
"""How long a fit waits for the first worker of the batch jobs it submitted."""
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def import_jobqueue():
    """``dask_jobqueue``, imported without the Ctrl-C handler it installs.

    Importing it sets SIGINT to exit the process at once (its ``runner`` module, for
    its own command-line runners), which would replace Brian's handler: Ctrl-C would
    then kill a fit instead of stopping it after the round with every round kept.
    """
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        raise ConfigurationError(
            "dask-jobqueue can only be imported in the main thread (it installs a signal "
            "handler when imported): start a fit on a batch queue from the main thread.")
    handler = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
    return dask_jobqueue


def check_cluster_kind(kind: str) -> str:
    """``kind`` in lower case if it is a known cluster kind; a ConfigurationError naming
    the known ones (and the closest) otherwise."""
    if not isinstance(kind, str) or kind.lower() not in CLUSTER_KINDS:
        close = difflib.get_close_matches(str(kind).lower(), CLUSTER_KINDS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"Unknown dask cluster kind {kind!r}; the dask backend knows "
            f"{', '.join(repr(k) for k in CLUSTER_KINDS)}.{hint} For another cluster, start "
            f"its scheduler yourself and pass its address (address='tcp://host:8786').")
    return kind.lower()


def require_jobqueue(kind: str) -> None:
    """A ConfigurationError with the pip command when dask-jobqueue is not installed."""
    if importlib.util.find_spec("dask_jobqueue") is None:
        raise ConfigurationError(
            f"cluster={kind!r} needs dask-jobqueue, which is not installed: "
            f"{install_hint(DISTRIBUTION, 'jobqueue', 'dask-jobqueue')} (or pip install "
            f"dask-jobqueue).")


def single_threaded_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a jobqueue cluster, with one worker process per core of a job
    (``processes = cores``) unless given; a WorkerThreadsError when they would make
    workers of several threads."""
    import dask.config
    options = dict(options)
    cores = options.get("cores", dask.config.get(f"jobqueue.{kind}.cores", None))
    processes = options.get("processes", dask.config.get(f"jobqueue.{kind}.processes", None))
    if cores is not None and processes is None:
        options["processes"] = processes = cores
    if cores is not None and processes != cores:
        raise WorkerThreadsError(
            f"cluster_options cores={cores!r} with processes={processes!r} would start "
            f"workers of {cores}/{processes} threads; a dask worker of modelfit simulates one "
            f"chunk at a time (it keeps one prepared simulation per fit, which two threads "
            f"would run at once). Leave processes out (it is then cores: one single-threaded "
            f"worker per core) or set processes={cores!r}.")
    return options


def jobqueue_cluster(kind: str, options: Mapping[str, Any]):
    """A dask-jobqueue cluster of ``kind`` (``"slurm"``, ``"pbs"``, ...), its scheduler
    running here and no job submitted yet (``cluster.job_script()`` shows what a job
    would run; :func:`submit_jobs` submits).

    Parameters
    ----------
    kind : str
        One of :data:`JOBQUEUE_CLASSES`.
    options : mapping
        The cluster class's options (``cores``, ``memory``, ``walltime``, ``queue``,
        ``account``, ``job_script_prologue``, ...); ``processes`` defaults to ``cores``.
    """
    kind = check_cluster_kind(kind)
    require_jobqueue(kind)
    dask_jobqueue = import_jobqueue()
    cluster_class = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind])
    options = single_threaded_options(kind, options)
    try:
        return cluster_class(**options)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigurationError(
            f"dask-jobqueue's {cluster_class.__name__} refused cluster_options "
            f"{sorted(options)}: {exc}. See the options of {cluster_class.__name__} in "
            f"dask-jobqueue's documentation (cores and memory per job are required).") \
            from exc


def submit_jobs(cluster, jobs: int | None = None, adapt: Mapping[str, Any] | None = None) -> None:
    """Submit ``jobs`` batch jobs to ``cluster`` (a jobqueue cluster), or let it adapt
    their number to the work (``adapt``: ``minimum``/``maximum`` workers or
    ``minimum_jobs``/``maximum_jobs``)."""
    try:
        if adapt is not None:
            cluster.adapt(**dict(adapt))
        else:
            cluster.scale(jobs=jobs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"The dask cluster refused jobs={jobs!r}, adapt={adapt!r}: "
                                 f"{exc}") from exc


def check_job_count(kind: str | None, jobs, adapt) -> None:
    """A ConfigurationError unless a jobqueue cluster has exactly one of ``jobs`` (a
    positive integer) and ``adapt`` (a dict), and other clusters neither."""
    if kind is None or kind == LOCAL:
        if jobs is not None or adapt is not None:
            raise ConfigurationError(
                "jobs and adapt are options of a batch-queue cluster (cluster='slurm', "
                "'pbs', ...); a local cluster takes n_workers.")
        return
    if (jobs is None) == (adapt is None):
        raise ConfigurationError(
            f"cluster={kind!r} needs either jobs=N (how many batch jobs to submit) or "
            f"adapt={{'minimum': ..., 'maximum': ...}} (workers submitted as the fit needs "
            f"them), not {'both' if jobs is not None else 'neither'}.")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigurationError(f"jobs must be a positive integer, not {jobs!r}.")
    if adapt is not None and not isinstance(adapt, Mapping):
        raise ConfigurationError(f"adapt must be a dict such as {{'minimum': 1, "
                                 f"'maximum': 8}}, not {adapt!r}.")


def check_threads_per_worker(threads_per_worker) -> None:
    """A WorkerThreadsError unless ``threads_per_worker`` is 1."""
    if threads_per_worker != 1:
        raise WorkerThreadsError(
            f"threads_per_worker={threads_per_worker!r}: the dask backend's workers run one "
            f"thread each (a worker keeps one prepared simulation per fit, and two threads "
            f"running it at once give wrong results); ask for more workers (n_workers) "
            f"instead.")


# -- starting and reaching a cluster -------------------------------------------------------
_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]""")


def _runs_unguarded(module) -> bool:
    """Whether ``module`` is a script run as ``__main__`` without an
    ``if __name__ == "__main__":`` guard (every script of the manual is)."""
    path = getattr(module, "__file__", None)
    if path is None or getattr(getattr(module, "__spec__", None), "name", None):
        return False  # an interactive session, or ``python -m package``
    try:
        with open(path, encoding="utf-8", errors="replace") as source:
            return _GUARD.search(source.read()) is None
    except OSError:
        return False


@contextlib.contextmanager
def unguarded_main_hidden():
    """While the LocalCluster starts its worker processes, hide an unguarded script.

    Worker processes are spawned, and a spawned process runs the parent's
    ``__main__`` script again; without the guard, that would start the fit (and
    a cluster) again in every worker ("Nanny failed to start"). Hidden, the
    workers start without it. Objects defined in such a script (a custom
    metric) then cannot be sent to the workers: add the guard for those.
    """
    main = sys.modules.get("__main__")
    if main is None or not _runs_unguarded(main):
        yield
        return
    path = main.__file__
    del main.__file__  # what multiprocessing reads to run the script in its children
    try:
        yield
    finally:
        main.__file__ = path


def start_local_cluster(n_workers: int, memory_limit: str | float | None = "auto",
                        options: Mapping[str, Any] | None = None):
    """A LocalCluster of ``n_workers`` single-threaded worker processes.

    Parameters
    ----------
    n_workers : int
        Worker processes.
    memory_limit : str or float, optional
        Memory of each worker (``"2GB"``; ``"auto"``: the machine's memory shared
        equally; 0 or None: no limit).
    options : mapping, optional
        Further options of ``LocalCluster``.
    """
    import dask.config
    from dask.distributed import LocalCluster
    # keep the broadcast copies of the scattered specification on every worker (the
    # memory manager would drop all but one, and losing that worker would then cost a
    # re-send)
    settings = {"distributed.scheduler.active-memory-manager.start": False}
    arguments = {"dashboard_address": None, **dict(options or {}), "n_workers": n_workers,
                 "threads_per_worker": 1, "processes": True,
                 "memory_limit": 0 if memory_limit is None else memory_limit}
    try:
        with dask.config.set(settings), unguarded_main_hidden():
            return LocalCluster(**arguments)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"dask's LocalCluster refused {sorted(arguments)}: "
                                 f"{exc}") from exc


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A dask Client of the scheduler at ``address``, or a ConfigurationError naming it
    within ``timeout_s`` seconds (a wrong address, an unknown host, nothing listening,
    a firewall dropping packets)."""
    from dask.distributed import Client
    text = str(address)
    scheme = text.split("://", 1)[0] if "://" in text else "tcp"
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"The dask scheduler address {text!r} has the scheme "
                                 f"{scheme!r}; use one of {', '.join(_SCHEMES)}, e.g. "
                                 f"'tcp://host:8786'.")
    try:
        return Client(text, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError, MemoryError) as exc:
        # OSError covers dask's CommClosedError and unresolvable hosts; MemoryError is
        # what something that is not a scheduler can make dask's protocol allocate
        raise ConfigurationError(
            f"Cannot connect to the dask scheduler at {text!r} within {timeout_s:g} s "
            f"({type(exc).__name__}: {str(exc)[:200]}). Check that the scheduler runs "
            f"and that the address and port are right (dask-scheduler prints them), or "
            f"leave address out to start a local cluster.") from exc


def client_of(cluster, timeout_s: float = CONNECT_TIMEOUT_S):
    """A dask Client of a cluster started here, which gives up ``timeout_s`` seconds
    after losing its scheduler (dask's default is 30 s)."""
    from dask.distributed import Client
    return Client(cluster, timeout=f"{timeout_s}s")


def wait_for_first_worker(client, kind: str, timeout_s: float = WORKERS_TIMEOUT_S) -> None:
    """Wait until a worker of the submitted batch jobs joins; a NoWorkersError after
    ``timeout_s`` seconds."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError as exc:
        raise NoWorkersError(
            f"No worker of the {kind} jobs joined the dask scheduler within "
            f"{timeout_s:g} s. Check that the jobs were accepted and run (the queue, e.g. "
            f"squeue or qstat; the jobs' output in cluster_options' log_directory), what "
            f"they run (backend.cluster.job_script()), and that the compute nodes can "
            f"reach this machine; or wait longer with workers_timeout_s=...") from exc


# -- the versions of the workers -----------------------------------------------------------
DASK_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack")
"""dask's own packages whose versions must match (dask's ``get_versions`` reads them)."""
SCHEDULER_PACKAGES = ("python", "dask", "distributed", "cloudpickle")
"""What of the scheduler must match (it runs no simulation; dask leaves msgpack out too)."""
PYTHON = "python"


@functools.cache
def plugin_distributions() -> tuple[str, ...]:
    """The installed distributions that declare modelfit plugins (modelfit's own
    included), read once per process."""
    names = {distribution.name for distribution in importlib.metadata.distributions()
             if any(entry.group == "modelfit" or entry.group.startswith("modelfit.")
                    for entry in distribution.entry_points)}
    return tuple(sorted(names | {DISTRIBUTION}))


def checked_packages() -> tuple[str, ...]:
    """Every package whose version the workers must share with this process."""
    return (PYTHON, *plugin_distributions(), "brian2", "numpy", *DASK_PACKAGES)


def _comparable(package: str, version: str | None) -> str | None:
    if package == PYTHON and version is not None:
        return ".".join(version.split(".")[:2])  # 3.11.7.final.0: a patch release differs
    return version


@attrs.frozen
class VersionDifference:
    """A package whose version differs somewhere from this process's."""

    package: str
    here: str | None
    elsewhere: Mapping[str, str | None]
    """Each differing process (``"worker tcp://..."``) and its version (None: missing)."""

    def describe(self) -> str:
        there = "; ".join(f"{where}: {_shown(version)}"
                          for where, version in sorted(self.elsewhere.items()))
        return f"{self.package}: here {_shown(self.here)}; {there}"


def _shown(version: str | None) -> str:
    return "not installed" if version is None else version


def version_differences(here: Mapping[str, str | None],
                        elsewhere: Mapping[str, Mapping[str, str | None]],
                        packages: Iterable[str],
                        scheduler_packages: Iterable[str] = SCHEDULER_PACKAGES,
                        ) -> list[VersionDifference]:
    """The packages whose versions differ between this process and others.

    Parameters
    ----------
    here : mapping
        Package name -> this process's version (None: not installed).
    elsewhere : mapping
        Process (``"worker tcp://..."`` or ``"scheduler tcp://..."``) -> its versions.
    packages : iterable of str
        The packages compared (``"python"``: major.minor only).
    scheduler_packages : iterable of str
        The packages compared on a process whose name starts with ``"scheduler"``.

    Returns
    -------
    list of VersionDifference
        One per differing package, in the order of ``packages``.
    """
    on_scheduler = set(scheduler_packages)
    differences = []
    for package in packages:
        mine = _comparable(package, here.get(package))
        differing = {where: versions.get(package)
                     for where, versions in elsewhere.items()
                     if (package in on_scheduler or not where.startswith("scheduler"))
                     and _comparable(package, versions.get(package)) != mine}
        if differing:
            differences.append(VersionDifference(package, here.get(package), differing))
    return differences


def version_error(differences: list[VersionDifference]) -> WorkerVersionError:
    """The WorkerVersionError naming every difference and the fix."""
    lines = "\n".join(f"  {difference.describe()}" for difference in differences)
    return WorkerVersionError(
        f"The dask cluster runs other package versions than this process:\n{lines}\n"
        f"Install the same versions on the workers (and the scheduler) as here, e.g. "
        f"with the same environment on a shared file system or `pip install` of these "
        f"versions, then restart them. Nothing was simulated.")


def reported_versions(report: Mapping[str, Any]) -> dict[str, str | None]:
    """The package versions of one process's ``get_versions`` report."""
    return dict(report.get("packages") or {})


def threads_error(threads: Mapping[str, int]) -> WorkerThreadsError:
    """The WorkerThreadsError naming the workers of several threads and the fix."""
    listed = ", ".join(f"{address} ({n} threads)" for address, n in sorted(threads.items()))
    return WorkerThreadsError(
        f"Dask workers with more than one thread: {listed}. A worker of modelfit simulates "
        f"one chunk at a time (it keeps one prepared simulation per fit, which two threads "
        f"would run at once, giving wrong results). Start the workers with one thread "
        f"each and one process per core: `dask worker ADDRESS --nthreads 1 --nworkers N` "
        f"(N: the cores of the machine). Nothing was simulated.")


def check_workers(client, checked: frozenset[str] = frozenset()) -> frozenset[str]:
    """Refuse a cluster whose scheduler or workers are unfit for a fit.

    The workers not in ``checked`` (addresses) must run one thread each and the
    versions of :func:`checked_packages` that this process runs (the scheduler,
    those of :data:`SCHEDULER_PACKAGES`); otherwise a WorkerThreadsError or a
    WorkerVersionError names each culprit. Returns the addresses checked now and
    before.
    """
    info = client.scheduler_info()
    workers = info.get("workers", {})
    new = {address for address in workers if address not in checked}
    if not new and checked:
        return checked
    threads = {address: workers[address].get("nthreads", 1) for address in new
               if workers[address].get("nthreads", 1) != 1}
    if threads:
        raise threads_error(threads)
    packages = checked_packages()
    reports = client.get_versions(packages=[p for p in packages if p != PYTHON])
    elsewhere = {f"worker {address}": reported_versions(report)
                 for address, report in (reports.get("workers") or {}).items()
                 if address in new}
    elsewhere[f"scheduler {info.get('address', '')}"] = reported_versions(
        reports.get("scheduler") or {})
    differences = version_differences(reported_versions(reports["client"]), elsewhere,
                                      packages)
    if differences:
        raise version_error(differences)
    return frozenset(checked | new)


# -- a lost scheduler ----------------------------------------------------------------------
def scheduler_lost(client, timeout_s: float) -> bool:
    """Whether ``client`` lost its scheduler (waiting up to ``timeout_s`` seconds while
    dask tries to reconnect)."""
    if client is None:
        return True
    deadline = time.monotonic() + timeout_s
    while client.status == "connecting" and time.monotonic() < deadline:
        time.sleep(0.05)
    return client.status != "running"


Method = TypeVar("Method", bound=Callable[..., Any])


def reports_scheduler_loss(run: Method) -> Method:
    """Make a failure of ``run`` (a method of a simulation whose ``backend`` has
    ``client``, ``scheduler_address``, ``timeout_s`` and ``shutdown()``) that comes
    from a lost scheduler a SchedulerLostError saying how to resume.

    The backend lets go of the dead client, so that its next ``prepare`` connects
    again (or starts a new cluster); the rounds finished before stay in the fit's
    storage.
    """
    @functools.wraps(run)
    def reporting(simulation, *args, **kwargs):
        backend = simulation.backend
        address = backend.scheduler_address
        if backend.client is None:
            raise SchedulerLostError(_lost_message(address, "was closed earlier (a lost "
                                                            "scheduler or shutdown())"))
        try:
            return run(simulation, *args, **kwargs)
        except Exception as exc:
            if not scheduler_lost(backend.client, backend.timeout_s):
                raise
            with contextlib.suppress(Exception):  # what is left of a dead cluster
                backend.shutdown()
            raise SchedulerLostError(_lost_message(
                address, f"stopped answering (no answer within {backend.timeout_s:g} s; "
                         f"{type(exc).__name__}: {str(exc)[:200]})")) from exc
    return reporting  # type: ignore[return-value]


def _lost_message(address: str | None, what: str) -> str:
    return (f"The dask scheduler at {address or '(unknown address)'} {what}. Every round "
            f"finished before is kept in the fit's storage: to go on, start the cluster "
            f"again and call fit(..., resume=True) with the same storage and study "
            f"(storage='sqlite:///...', study=...) on a new fitter; it runs the missing "
            f"rounds only. Without a storage, the fitter's results() hold the finished "
            f"rounds.")
