"""The dask backend's clusters (issue 25): a running scheduler by its address, a
LocalCluster, dask-jobqueue's batch queues (their job scripts, without submitting
anything), workers of other package versions refused, a scheduler lost mid-fit."""

import importlib.util
import subprocess
import sys
import time

import cloudpickle
import numpy as np
import pytest
from brian2 import ms, mV
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfit_core import ConfigurationError, Pipeline
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results.storage import list_studies, read_results

pytest.importorskip("distributed")
from dask.distributed import LocalCluster  # noqa: E402

from modelfit_plugins.backends import dask_clusters  # noqa: E402
from modelfit_plugins.backends.dask_backend import DaskBackend  # noqa: E402
from modelfit_plugins.backends.dask_clusters import (  # noqa: E402
    AllWorkersLostError, JOBQUEUE_CLASSES, NoWorkersError, SchedulerLostError, WorkerThreadsError,
    WorkerVersionError, client_of, jobqueue_cluster, version_differences, version_error,
    wait_for_first_worker)

from passive_membrane import BOUNDS, MODEL, recordings  # noqa: E402


def imported_jobqueue():
    """dask_jobqueue as the backend imports it (its SIGINT handler left out: importing it
    plainly would take Ctrl-C from Brian in this test process, for every later test)."""
    if importlib.util.find_spec("dask_jobqueue") is None:
        pytest.skip("dask-jobqueue is not installed")
    return dask_clusters.import_jobqueue()

# the helpers below run on the workers, which cannot import this test module
cloudpickle.register_pickle_by_value(sys.modules[__name__])

REGISTRY = Registry(distributions=["modelfit-brian2"])
LOCAL_SCHEDULER = {"host": "127.0.0.1", "dashboard_address": None}
"""Keeps the schedulers the tests start on the loopback interface, without a dashboard."""


def small_cluster(n_workers=1, **options):
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, host="127.0.0.1", **options)


def fitter_on(backend, storage=None, callback=None, n_samples=6):
    currents, v = recordings(300)
    pipe = Pipeline.from_names(seed=5, feedback=callback, backend=backend, registry=REGISTRY,
                               storage=storage, study="s" if storage else None)
    return pipe.trace_fitter(model=MODEL, input={"I": currents}, output={"v": v},
                             dt=0.1 * ms, n_samples=n_samples, param_init={"v": -70 * mV},
                             namespace={"El": -70 * mV})


# -- options: refused before anything starts -------------------------------------------------
def test_an_unknown_cluster_kind_names_the_known_ones_and_the_closest():
    with pytest.raises(ConfigurationError) as info:
        DaskBackend(cluster="slrum", jobs=1)
    message = str(info.value)
    assert "Did you mean 'slurm'?" in message
    assert all(repr(kind) in message for kind in ("local", "slurm", "pbs", "sge", "lsf"))


@pytest.mark.parametrize("options, expected", [
    (dict(address="tcp://127.0.0.1:8786", cluster="slurm", jobs=1), "both say where"),
    (dict(cluster="slurm"), "neither"),
    (dict(cluster="slurm", jobs=2, adapt={"maximum": 4}), "not both"),
    (dict(cluster="pbs", jobs=0), "positive integer"),
    (dict(cluster="slurm", jobs=1, n_workers=4), "cores and memory in cluster_options"),
    (dict(jobs=2), "batch-queue cluster"),
    (dict(address="tcp://127.0.0.1:8786", cluster_options={"cores": 2}), "runs already"),
])
def test_contradicting_cluster_options_are_refused(options, expected):
    with pytest.raises(ConfigurationError, match=expected):
        DaskBackend(**options)


def test_workers_of_several_threads_are_refused_with_the_reason():
    with pytest.raises(WorkerThreadsError, match="n_workers"):
        DaskBackend(n_workers=2, threads_per_worker=2)
    with pytest.raises(WorkerThreadsError, match="processes=4"):
        jobqueue_cluster("slurm", {"cores": 4, "processes": 2, "memory": "4GB"})


def test_a_missing_dask_jobqueue_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # what an absent package is
    with pytest.raises(ConfigurationError, match=r"pip install 'modelfit-brian2\[jobqueue\]'"):
        DaskBackend(cluster="slurm", jobs=1)


def test_the_batch_queue_kinds_are_dask_jobqueues_classes():
    dask_jobqueue = imported_jobqueue()
    for kind, name in JOBQUEUE_CLASSES.items():
        assert issubclass(getattr(dask_jobqueue, name), dask_jobqueue.JobQueueCluster), kind


# -- dask-jobqueue: the job a batch queue would run -----------------------------------------
@pytest.mark.parametrize("kind, directive", [("slurm", "#SBATCH -p short"),
                                             ("pbs", "#PBS -q short"),
                                             ("sge", "#$ -q short"),
                                             ("lsf", "#BSUB -q short")])
def test_a_batch_job_runs_single_threaded_workers_of_this_python(kind, directive):
    """Built, never submitted: a jobqueue cluster submits jobs only when scaled."""
    imported_jobqueue()
    cluster = jobqueue_cluster(kind, {"cores": 3, "memory": "6GB", "walltime": "01:00:00",
                                      "queue": "short", "scheduler_options": LOCAL_SCHEDULER})
    try:
        script = cluster.job_script()
        assert directive in script
        command = next(line for line in script.splitlines() if "dask_worker" in line)
        assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker "
                                  f"{cluster.scheduler_address} ")
        assert "--nthreads 1 " in command and "--nworkers 3 " in command
        assert not cluster.workers  # nothing submitted
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_worker_started_by_the_slurm_job_command_imports_brian_and_fits(tmp_path):
    """The worker command of a SLURM job script, run here as the job would run it:
    the worker joins, passes the checks, gets Brian imported by the backend's
    WorkerPlugin, and the fit equals the runtime backend's."""
    imported_jobqueue()
    cluster = jobqueue_cluster("slurm", {"cores": 1, "memory": "2GB",
                                         "scheduler_options": LOCAL_SCHEDULER,
                                         "local_directory": str(tmp_path)})
    command = next(line for line in cluster.job_script().splitlines() if "dask_worker" in line)
    backend = DaskBackend(client=client_of(cluster))
    worker = subprocess.Popen(command.split(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        backend.client.wait_for_workers(1, timeout=120)
        backend._ensure_client()
        (threads,) = backend.client.nthreads().values()
        assert threads == 1
        assert list(backend.client.run(brian_imported).values()) == [True]
        fitter = fitter_on(backend)
        fitter.fit(n_rounds=2, **BOUNDS)
        reference = fitter_on("runtime")
        reference.fit(n_rounds=2, **BOUNDS)
        assert fitter.results(format="dataframe").equals(reference.results(format="dataframe"))
    finally:
        backend.shutdown()
        cluster.close()
        worker.terminate()
        worker.wait(timeout=60)


def test_no_worker_in_time_says_where_to_look():
    """What a fit says when its batch jobs bring no worker (a scheduler without any)."""
    cluster = LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                           dashboard_address=None)
    client = client_of(cluster)
    try:
        with pytest.raises(NoWorkersError, match=r"slurm jobs .* within 0.5 s.*job_script"):
            wait_for_first_worker(client, "slurm", timeout_s=0.5)
    finally:
        client.close()
        cluster.close()


def brian_imported():
    return "brian2" in sys.modules


# -- a LocalCluster ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_local_cluster_has_single_threaded_workers_with_the_memory_limit():
    backend = DaskBackend(n_workers=2, memory_limit="1GiB")
    try:
        client = backend._ensure_client()
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1, 1]
        assert [w["memory_limit"] for w in workers] == [2**30, 2**30]
    finally:
        backend.shutdown()


# -- versions -----------------------------------------------------------------------------------
PACKAGES = ("python", "modelfit-brian2", "brian2", "numpy", "dask", "distributed")
versions = st.text("0123456789.abrc", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(here=st.fixed_dictionaries({p: versions for p in PACKAGES}),
       changes=st.dictionaries(st.tuples(st.sampled_from(["worker tcp://a:1", "worker tcp://b:2"]),
                                         st.sampled_from(PACKAGES)),
                               st.none() | versions, max_size=6))
def test_every_differing_version_is_named_and_equal_ones_pass(here, changes):
    elsewhere = {"worker tcp://a:1": dict(here), "worker tcp://b:2": dict(here)}
    assert version_differences(here, elsewhere, PACKAGES) == []
    for (worker, package), version in changes.items():
        elsewhere[worker][package] = version

    def same(package, a, b):
        if package == "python" and a is not None and b is not None:
            return a.split(".")[:2] == b.split(".")[:2]
        return a == b
    expected = {(worker, package) for (worker, package), version in changes.items()
                if not same(package, here[package], version)}
    differences = version_differences(here, elsewhere, PACKAGES)
    assert {(w, d.package) for d in differences for w in d.elsewhere} == expected
    if differences:
        message = str(version_error(differences))
        for difference in differences:
            line = next(line for line in message.splitlines()
                        if line.strip().startswith(f"{difference.package}: here"))
            assert f"here {here[difference.package]}" in line
            for worker, version in difference.elsewhere.items():
                assert f"{worker}: {'not installed' if version is None else version}" in line
        assert "Install the same versions" in message


def test_python_patch_releases_agree_and_the_scheduler_is_compared_on_dasks_packages():
    here = {"python": "3.11.7.final.0", "brian2": "2.9.0", "dask": "2026.11.0"}
    others = {"worker tcp://a:1": {"python": "3.11.9.final.0", "brian2": "2.9.0",
                                   "dask": "2026.11.0"},
              "scheduler tcp://s:1": {"python": "3.11.2.final.0", "dask": "2026.11.0"}}
    assert version_differences(here, others, list(here)) == []
    others["scheduler tcp://s:1"]["dask"] = "2025.1.0"
    others["worker tcp://a:1"]["python"] = "3.12.1.final.0"
    assert [(d.package, dict(d.elsewhere)) for d in version_differences(here, others, here)] \
        == [("python", {"worker tcp://a:1": "3.12.1.final.0"}),
            ("dask", {"scheduler tcp://s:1": "2025.1.0"})]


def put_first_on_path(folder):
    sys.path.insert(0, folder)


def fake_distribution(folder, name, version):
    """A dist-info folder that makes ``importlib.metadata`` report ``version``."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


@pytest.mark.slow
def test_a_worker_of_another_modelfit_version_is_refused_when_it_joins(tmp_path):
    """A worker that joins an already checked cluster is checked at the next prepare:
    its modelfit (a distribution first on its sys.path) differs, and the fit stops
    naming it before anything is simulated."""
    from importlib.metadata import version
    cluster = small_cluster(n_workers=1)
    backend = DaskBackend(address=cluster.scheduler_address)
    try:
        started = time.perf_counter()
        backend._ensure_client()  # connect, check the first worker
        connected_s = time.perf_counter() - started
        first = set(backend.client.scheduler_info()["workers"])
        cluster.scale(2)
        backend.client.wait_for_workers(2, timeout=120)
        (late,) = set(backend.client.scheduler_info()["workers"]) - first
        fake = str(fake_distribution(tmp_path / "fake", "modelfit-brian2", "0.0.1"))
        backend.client.run(put_first_on_path, fake, workers=[late])
        fitter = fitter_on(backend, storage=f"sqlite:///{tmp_path / 'fit.db'}")
        with pytest.raises(WorkerVersionError) as info:
            fitter.fit(n_rounds=2, **BOUNDS)
        message = str(info.value)
        assert f"modelfit-brian2: here {version('modelfit-brian2')}; worker {late}: 0.0.1" \
            in message
        assert str(next(iter(first))) not in message  # the first worker agrees
        assert "Install the same versions on the workers" in message
        assert fitter.current_fit is None or not fitter.current_fit.history.rounds
        database = tmp_path / "fit.db"
        assert not database.exists() or "s" not in list_studies(database) or \
            len(read_results(database, "s")) == 0
        print(f"connect and check one worker: {connected_s:.3f} s")
    finally:
        backend.shutdown()
        cluster.close()


@pytest.mark.slow
def test_a_cluster_whose_workers_run_several_threads_is_refused():
    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                           dashboard_address=None, host="127.0.0.1")
    backend = DaskBackend(address=cluster.scheduler_address)
    try:
        with pytest.raises(WorkerThreadsError, match=r"\(2 threads\).*--nthreads 1"):
            backend._ensure_client()
    finally:
        backend.shutdown()
        cluster.close()


# -- a lost scheduler ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_lost_scheduler_stops_the_fit_promptly_and_resume_completes_it(tmp_path):
    """The scheduler closed after round 2: a SchedulerLostError naming it within the
    backend's timeout, rounds 1-2 stored; resumed on a new cluster, the fit ends as an
    uninterrupted one."""
    database = tmp_path / "fit.db"
    n_rounds, n_samples = 4, 6
    cluster = small_cluster()
    address = cluster.scheduler_address
    events = {}

    def close_the_cluster_after_round_2(*_args):
        events["rounds"] = events.get("rounds", 0) + 1
        if events["rounds"] == 2:
            cluster.close()
            events["closed"] = time.monotonic()
        return False

    backend = DaskBackend(address=address, timeout_s=3)
    fitter = fitter_on(backend, storage=f"sqlite:///{database}",
                       callback=close_the_cluster_after_round_2, n_samples=n_samples)
    try:
        with pytest.raises(SchedulerLostError) as info:
            fitter.fit(n_rounds=n_rounds, **BOUNDS)
        waited = time.monotonic() - events["closed"]
    finally:
        backend.shutdown()
        cluster.close()
    message = str(info.value)
    assert address in message and "resume=True" in message and "same storage" in message
    assert waited < 30, waited
    assert len(read_results(database, "s")) == 2 * n_samples

    cluster = small_cluster()
    backend = DaskBackend(address=cluster.scheduler_address)
    try:
        resumed = fitter_on(backend, storage=f"sqlite:///{database}", n_samples=n_samples)
        resumed.fit(n_rounds=n_rounds, resume=True, **BOUNDS)
        resumed_results = resumed.results(format="dataframe")
    finally:
        backend.shutdown()
        cluster.close()
    uninterrupted = fitter_on("runtime", n_samples=n_samples)
    uninterrupted.fit(n_rounds=n_rounds, **BOUNDS)
    assert resumed_results.equals(uninterrupted.results(format="dataframe"))
    assert len(read_results(database, "s")) == n_rounds * n_samples
    print(f"scheduler lost: error after {waited:.1f} s")


def test_the_backend_keeps_dask_clusters_names_importable():
    from modelfit_plugins.backends import dask_backend
    assert dask_backend.connect is dask_clusters.connect
    assert dask_backend.unguarded_main_hidden is dask_clusters.unguarded_main_hidden
    assert np.isfinite(dask_backend.CONNECT_TIMEOUT_S)


def test_a_batch_queue_leaves_ctrl_c_to_brian():
    """Importing dask-jobqueue sets SIGINT to exit the process at once; a fit on a batch
    queue keeps Brian's handler, so Ctrl-C still stops it after the round (in a fresh
    process: the import sets the handler only once)."""
    script = (
        "import signal, brian2\n"
        "from modelfit_plugins.backends.dask_clusters import jobqueue_cluster\n"
        "jobqueue_cluster('slurm', {'cores': 1, 'memory': '1GB'})\n"
        "print(type(signal.getsignal(signal.SIGINT)).__module__)\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-1] == "brian2"


@pytest.mark.slow
def test_a_cluster_left_without_workers_stops_the_fit_with_its_rounds_kept(tmp_path):
    """Every worker gone after round 2 (a cluster of fixed size, batch jobs past their
    walltime): the round does not wait for ever; after workers_timeout_s an
    AllWorkersLostError says how to go on, and rounds 1-2 are stored."""
    database = tmp_path / "fit.db"
    cluster = small_cluster(n_workers=2)
    rounds = []

    def remove_every_worker_after_round_2(*_args):
        rounds.append(time.monotonic())
        if len(rounds) == 2:
            cluster.scale(0)
        return False

    backend = DaskBackend(address=cluster.scheduler_address, workers_timeout_s=3)
    fitter = fitter_on(backend, storage=f"sqlite:///{database}",
                       callback=remove_every_worker_after_round_2)
    try:
        with pytest.raises(AllWorkersLostError, match="resume=True") as info:
            fitter.fit(n_rounds=4, **BOUNDS)
        waited = time.monotonic() - rounds[-1]
    finally:
        backend.shutdown()
        cluster.close()
    assert "no worker for 3 s" in str(info.value)
    assert 3 <= waited < 30, waited
    assert len(read_results(database, "s")) == 2 * 6
