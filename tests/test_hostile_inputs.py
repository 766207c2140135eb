"""Issue 26's catalogue: one test (or Hypothesis property) per class of hostile input.

Every file modelfit reads fails cleanly (damaged database rows and schemas,
config files, the CLI's arguments), user-written names are printed escaped, the
code cache never follows a planted link, meaningless values are refused up
front, likely unit slips warn, a resumed study is the same study, and ported
scripts behave as the manual says. The measuring stick of the classes is
``benchmarks/hostile_inputs.py``; these tests keep each class fixed, without
Brian simulations except one tiny resumed fit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import sqlite3
import struct
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from brian2 import amp, farad, ms, mV, second, siemens, volt
from config_project import passive_config, write_project
from conftest import BOUNDS, DT, PASSIVE_MODEL, El
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelfit_plugins.backends import disk_cache
from modelfit_plugins.backends.disk_cache import DiskStore
from test_bad_input import SpyBackend, fit_once, fitter_with

from modelfit_core import MSEMetric, Pipeline
from modelfit_core.contracts.errors import (
    ArgumentTypeError,
    ConfigurationError,
    ModelfitError,
    ParameterError,
    StorageError,
    UnknownPluginError,
)
from modelfit_core.model.parameters import ParameterSpace
from modelfit_core.model.unit_slips import UnitSlipWarning
from modelfit_core.registry.plugin_registry import Registry
from modelfit_core.results import database
from modelfit_core.results.history import RoundRecord
from modelfit_core.results.storage import FitStore, read_results
from modelfit_core.results.study_description import StudyDescription
from modelfit_core.tools import config as config_module
from modelfit_core.tools.cli import main
from modelfit_core.tools.terminal_text import escaped
from storage_helpers import damaged_copy

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def description(names=("gl", "C"), objectives=(), data=()):
    space = ParameterSpace(names=tuple(names), dims=(siemens.dim, farad.dim),
                           lower=np.array([1e-9, 1e-11]), upper=np.array([1e-7, 5e-10]))
    return StudyDescription(space=space, n_samples=3, error_dim=(volt ** 2).dim,
                            output_names=("v",), optimizer="opt", metric="mse",
                            objectives=tuple(objectives), data=tuple(data))


def write_study(path, study="s", **options):
    """A study of two rounds of three evaluations, written by FitStore (no simulation)."""
    store = FitStore(path, study)
    store.start(description(**options), restart=False)
    objectives = options.get("objectives", ())
    with store.session() as write:
        for index in range(2):
            errors = np.array([1.0, 2.0, 3.0]) + index
            write(RoundRecord(index=index, parameters=np.array([[2e-9, 2e-11]] * 3),
                              errors=errors, diverged=np.zeros(3, bool),
                              objective_errors={"v": errors},
                              told_errors=np.stack([errors, errors], 1) if objectives
                              else errors, iteration=index,
                              objectives={o: errors for o in objectives}), None)
    store.close()
    return path


@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("good") / "fit.db")


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


# -- damaged rows: a StorageError naming the file, the study, the row ---------------------
COLUMNS = [("studies", c) for c in ("parameter_names", "parameter_units", "lower", "upper",
                                    "error_unit", "output_names", "n_samples",
                                    "objective_names", "optimizer_rounds",
                                    "first_iteration", "data_identity")] + \
          [("evaluations", c) for c in ("parameters", "error", "diverged", "objective_errors",
                                        "told", "round", "sample")] + \
          [("rounds", c) for c in ("duration_s", "iteration", "round")]
JSON_ISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                        max_leaves=8).map(json.dumps)
HOSTILE_VALUES = (st.text(max_size=30) | st.binary(max_size=20)
                  | st.integers(-2 ** 63, 2 ** 63 - 1)
                  | st.floats() | st.none() | JSON_ISH
                  | st.sampled_from(["[" * 5000 + "]" * 5000, '["gl", "gl"]', "[1e400]",
                                     "[[0,0,0,0,0,0,0]]", "[0,0,0,0,0,0,0]"]))


@FAST
@given(place=st.sampled_from(COLUMNS), value=HOSTILE_VALUES)
def test_any_damaged_row_reads_correctly_or_is_a_storage_error(good_db, place, value):
    table, column = place
    with tempfile.TemporaryDirectory() as folder:
        path = damaged_copy(good_db, Path(folder) / "fit.db", table, column, value)
        if path is None:
            return  # a constraint refused the garbage: nothing to read
        with contextlib.suppress(StorageError):
            read_results(path)
        store = FitStore(path, "s")
        try:
            store.load_for_resume(description())
        except StorageError as exc:
            assert str(path) in str(exc)
        finally:
            store.close()
        status, _, err = run_cli("results", str(path))
        assert status in (0, 2) and "Traceback" not in err


def test_a_damaged_row_is_named(good_db, tmp_path):
    path = tmp_path / "fit.db"
    shutil.copy(good_db, path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE evaluations SET parameters = 'not json' WHERE round = 1 "
                           "AND sample = 2")
    connection.close()
    with pytest.raises(StorageError) as info:
        read_results(path)
    for words in (str(path), "study 's'", "round 1, sample 2", "parameters"):
        assert words in str(info.value)
    status, _, err = run_cli("results", str(path))
    assert status == 2 and "round 1, sample 2" in err


@pytest.mark.parametrize("statement", [
    "CREATE TRIGGER t AFTER INSERT ON evaluations BEGIN DELETE FROM rounds; END",
    "CREATE VIEW v AS SELECT * FROM evaluations",
    "CREATE INDEX i ON evaluations (error)",
    "CREATE TABLE extra (x)",
    "ALTER TABLE studies ADD COLUMN extra TEXT",
])
def test_a_schema_with_objects_modelfit_never_creates_is_refused(good_db, tmp_path, statement):
    path = tmp_path / "fit.db"
    shutil.copy(good_db, path)
    with sqlite3.connect(path) as connection:
        connection.execute(statement)
    connection.close()
    for open_it in (database.open_for_reading, database.open_for_writing):
        with pytest.raises(StorageError, match="never creates"):
            open_it(path)
    assert run_cli("results", str(path))[0] == 2


# -- schema version 4: the data identity ---------------------------------------------------
def test_a_version_3_database_is_read_and_migrated(tmp_path):
    path = write_study(tmp_path / "fit.db")
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE studies DROP COLUMN data_identity")
        connection.execute("DROP TABLE normal_equations")
        connection.execute("DROP TABLE round_workers")
        connection.execute("PRAGMA user_version = 3")
    connection.close()
    assert len(read_results(path)) == 6  # read as it is
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (3,)
    store = FitStore(path, "s")  # opened for writing: migrated
    stored = store.load_for_resume(description(data=[("dt", "0.0001 s")]))
    assert len(stored.records) == 2  # no identity recorded: not checked
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == \
        (database.SCHEMA_VERSION,)


def test_a_resume_with_other_data_lists_what_differs(tmp_path):
    path = write_study(tmp_path / "fit.db", data=[("dt", "0.0001 s"),
                                                  ("input I", "1x100 values, sha256 ab")])
    store = FitStore(path, "s")
    with pytest.raises(StorageError) as info:
        store.load_for_resume(description(data=[("dt", "5e-05 s"),
                                                ("input I", "1x100 values, sha256 cd")]))
    message = str(info.value)
    for words in ("data, dt: stored 0.0001 s, now 5e-05 s", "data, input I",
                  "another study= name", "restart=True"):
        assert words in message
    store.close()


def test_a_resumed_fit_with_other_recordings_or_constants_is_refused(passive_data, tmp_path):
    """The one simulating test: a tiny stored fit, resumed with other data."""
    db = tmp_path / "fit.db"
    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime",
                               feedback=None, seed=1, storage=f"sqlite:///{db}", study="s")
    base = dict(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                output={"v": passive_data["v"]}, dt=DT, n_samples=4,
                param_init={"v": El}, namespace={"El": El})
    pipe.trace_fitter(**base).fit(n_rounds=1, **BOUNDS)
    for change, words in (({"dt": DT / 2}, "data, dt"),
                          ({"output": {"v": passive_data["v"] + 1 * mV}}, "data, output v"),
                          ({"namespace": {"El": -60 * mV}}, "data, namespace El")):
        with pytest.raises(StorageError, match=words):
            pipe.trace_fitter(**{**base, **change}).fit(n_rounds=2, resume=True, **BOUNDS)
    resumed = pipe.trace_fitter(**base)
    resumed.fit(n_rounds=2, resume=True, **BOUNDS)  # the same data: continued
    assert len(resumed.history.rounds) == 2


# -- config files and CLI arguments ----------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    currents = np.zeros((2, 50))
    currents[:, 10:40] = 2e-10
    return write_project(tmp_path, passive_config(2, 1), currents, np.full((2, 50), -70.0))


def set_key(folder, section, key, value):
    path = folder / "fit.toml"
    lines = path.read_text().splitlines()
    start = lines.index(f"[{section}]")
    lines = [line for line in lines if not (line.split("=")[0].strip() == key
                                            and lines.index(line) > start)]
    lines.insert(start + 1, f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")


def build(folder):
    return config_module.build_fitter(config_module.load_config(folder / "fit.toml"))


@pytest.mark.parametrize("section,key,value,words", [
    ("data", "input", '"/dev/zero"', "not a regular file"),
    ("data", "input", '"fifo.csv"', "not a regular file"),
    ("data", "input", '"object.npy"', "numbers"),
    ("data", "input", '"truncated.npy"', ".npy"),
    ("data", "input", '"."', "folder"),
    ("data", "input", '"in\\u0000put.csv"', "NUL"),
    ("data", "output", '"' + "a" * 5000 + '.csv"', "too long"),
    ("fit", "storage", '"sqlite:///bad\\u0000.db"', "NUL"),
    ("fit", "storage", '"' + "a" * 5000 + '.db"', "too long"),
    ("model", "param_init", '{ v = "0*mV/0" }', "finite"),
    ("model", "param_init", '{ v = "nan*mV" }', "nan"),
    ("model", "param_init", '{ v = "v_rest + 2*mV" }', "v_rest"),
    ("fit", "metric_options", "{ normalization = nan }", "finite"),
    ("bounds", "gl", '["1*nS", "inf*nS"]', "inf"),
])
def test_bad_files_and_values_in_a_config_name_the_key(project, section, key, value, words):
    np.save(project / "object.npy", np.array([{"a": 1}, None], dtype=object),
            allow_pickle=True)
    np.save(project / "good.npy", np.zeros((2, 50)))
    (project / "truncated.npy").write_bytes((project / "good.npy").read_bytes()[:90])
    os.mkfifo(project / "fifo.csv")
    set_key(project, section, key, value)
    with pytest.raises(ConfigurationError) as info:
        build(project)
    assert f"[{section}]" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("text", ["[fit]\nx = " + "[" * 3000 + "]" * 3000,
                                  "\ufeff[fit]\nn_rounds = 1\n", "\x00\x01"])
def test_unreadable_config_text_is_a_config_error(tmp_path, text):
    (tmp_path / "fit.toml").write_text(text)
    with pytest.raises(ConfigurationError):
        config_module.load_config(tmp_path / "fit.toml")


def test_a_fifo_or_folder_as_config_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo.toml")
    for path in (tmp_path / "fifo.toml", tmp_path):
        with pytest.raises(ConfigurationError, match="not a regular file|folder"):
            config_module.load_config(path)


MEANINGLESS = st.sampled_from([float("nan"), float("inf"), float("-inf")])


@FAST
@given(value=MEANINGLESS | st.sampled_from(["nan*ms", "inf*mV", "1e400*mV", "0*mV/0"]))
def test_no_meaningless_value_passes_the_config_readers(project, value):
    config = config_module.load_config(project / "fit.toml")
    with pytest.raises(ConfigurationError, match=r"\[model\] param_init.v"):
        config_module.brian_value(config, "model", "param_init", value, "v")
    with pytest.raises(ConfigurationError):
        config_module.quantity(config, "data", "dt", value)
    if isinstance(value, float):
        with pytest.raises(ConfigurationError):
            config_module.option_value(config, "metric_options", value, "normalization")


@FAST
@given(name=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).map(lambda s: "unknown_" + s),
       template=st.sampled_from(["{} * mV", "-70*mV + {}", "{}", "v_rest_{} + 1*mV",
                                 "clip({}, -80*mV, 0*mV)"]))
def test_any_unknown_name_in_an_initial_expression_is_refused(spy, data, name, template):
    # names are resolved when the fit starts (a script may define them after creating
    # the fitter); refused then, before anything is simulated (the spy would say)
    expression = template.format(name)
    fitter = fitter_with(spy, data, param_init={"v": expression})
    with pytest.raises(ModelfitError, match=name):
        fit_once(fitter)


def test_cli_files_that_are_not_databases_or_folders(good_db, tmp_path):
    os.mkfifo(tmp_path / "fifo.db")
    afile = tmp_path / "afile"
    afile.write_text("x")
    started = time.monotonic()
    for argv in (("results", str(tmp_path / "fifo.db")), ("results", "/dev/zero"),
                 ("results", "a" * 5000 + ".db"), ("results", "a\x00b.db"),
                 ("results", str(good_db), "--output", str(afile)),
                 ("results", str(good_db), "--output", str(afile / "x"))):
        status, _, err = run_cli(*argv)
        assert status == 2 and "error:" in err, (argv, err)
    assert time.monotonic() - started < 20  # no hang


@pytest.mark.parametrize("where", ["study", "parameter", "objective"])
def test_user_written_names_are_printed_escaped(tmp_path, where):
    hostile = "evil\x1b[2J\r\u202e\x07\x9b"
    options = {"parameter": {"names": (hostile, "C")},
               "objective": {"objectives": (hostile, "other")}}.get(where, {})
    path = write_study(tmp_path / "fit.db", study=hostile if where == "study" else "s",
                       **options)
    status, out, err = run_cli("results", str(path))
    assert status == 0, err
    for raw in ("\x1b", "\r", "\u202e", "\x07", "\x9b"):
        assert raw not in out + err
    assert escaped(hostile) in out


def test_escaped_shows_every_control_and_format_character():
    assert escaped("a\x1b[2Jb\rc\u202ed\te") == "a\\x1b[2Jb\\rc\\u202ed\\te"
    assert escaped("line\nnext", keep_newlines=True) == "line\nnext"
    assert escaped("plain µS – ok") == "plain µS – ok"


# -- the code cache: checked through its system calls (no second user on this machine) -----
def test_a_symlinked_cache_folder_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)
    (tmp_path / "link").symlink_to(victim)
    with pytest.warns(RuntimeWarning, match="symbolic link"):
        assert not DiskStore(tmp_path / "link").put("k", "t", 1)
    assert victim.stat().st_mode & 0o777 == 0o755 and not any(victim.iterdir())


def test_a_symlinked_kind_folder_or_entry_is_never_followed(tmp_path):
    store = DiskStore(tmp_path / "cache")
    assert store.put("k", "t", 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    entry = store.path("k", "t")
    shutil.copy(entry, elsewhere / "copy")
    entry.unlink()
    entry.symlink_to(elsewhere / "copy")
    assert DiskStore(tmp_path / "cache").get("k", "t", "miss") == "miss"
    shutil.rmtree(tmp_path / "cache" / "k")
    (tmp_path / "cache" / "k").symlink_to(elsewhere)
    with pytest.warns(RuntimeWarning):
        assert not DiskStore(tmp_path / "cache").put("k", "t2", 2)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["copy"]


def test_the_key_text_is_compared_before_anything_is_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    store = DiskStore(tmp_path / "cache")
    assert store.put("k", "other", 0)  # makes the folders, 0o700
    key = b"another key"
    payload = struct.pack(">Q", len(key)) + key + pickle.dumps(_Touch(marker))
    store.path("k", "t").write_bytes(disk_cache.MAGIC + hashlib.sha256(payload).digest()
                                     + payload)
    assert DiskStore(tmp_path / "cache").get("k", "t", "miss") == "miss"
    assert not marker.exists()


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


# -- meaningless values, unit slips, the manual's behaviours --------------------------------
@pytest.fixture
def spy():
    return SpyBackend()


@pytest.fixture
def data(passive_data):
    return {"I": passive_data["I"], "v": passive_data["v"]}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_meaningless_values_are_refused_naming_the_option(spy, data, bad):
    from modelfit_core.registry.parts import Parts
    with pytest.raises(ConfigurationError, match="normalization"):
        MSEMetric(normalization=bad)
    with pytest.raises(ConfigurationError, match="delta"):
        Parts.lazy_default().make("metrics", "gamma_factor",
                                  {"delta": bad * ms, "time": 1 * second})
    with pytest.raises(ModelfitError, match="param_init"):
        fitter_with(spy, data, param_init={"v": bad * mV})
    with pytest.raises(ModelfitError, match="refractory"):
        fitter_with(spy, data, threshold="v > -50*mV", reset="v = -70*mV",
                    refractory=bad * ms)
    with pytest.raises(ArgumentTypeError, match="normalization"):
        MSEMetric(normalization="mV")


@pytest.mark.parametrize("change", [
    {"output": "volt"}, {"input": "amp"}, {"dt": 0.1 * second}, {"param_init": -70 * volt}])
def test_likely_unit_slips_warn_before_the_fit(spy, data, change):
    options = {}
    if "output" in change:
        options["output"] = {"v": np.asarray(data["v"]) * 1e3 * volt}
    if "input" in change:
        options["input"] = {"I": np.asarray(data["I"]) * 1e9 * amp}
    if "dt" in change:
        options["dt"] = change["dt"]
    if "param_init" in change:
        options["param_init"] = {"v": change["param_init"]}
    with pytest.warns(UnitSlipWarning):
        fitter_with(spy, data, **options)


def test_plausible_values_do_not_warn(spy, data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitSlipWarning)
        fitter_with(spy, data)


@pytest.mark.parametrize("name", ["error", "errors", "round", "diverged", "objective_errors",
                                  "error_v", "objective_x"])
def test_parameters_named_like_result_columns_are_refused(spy, data, name):
    model = PASSIVE_MODEL.replace("gl", name)
    with pytest.raises(ParameterError, match=repr(name)):
        fitter_with(spy, data, model=model)


def test_penalty_units_are_checked_against_the_error(spy, data):
    model = PASSIVE_MODEL + "dcost/dt = 1/ms : 1\n"
    fitter = fitter_with(spy, data, model=model, penalty="cost",
                         param_init={"v": El, "cost": 0})
    with pytest.raises(ModelfitError, match="penalty='cost'"):
        fit_once(fitter)  # refused before anything is simulated (the spy would say)


def test_a_metric_of_the_wrong_kind_is_a_type_error(spy, data):
    from modelfit_core.registry.parts import Parts
    gamma = Parts.lazy_default().make("metrics", "gamma_factor",
                                      {"delta": 1 * ms, "time": 1 * second})
    with pytest.raises(TypeError) as info:
        fit_once(fitter_with(spy, data), metric=gamma)
    assert isinstance(info.value, ModelfitError)


def test_disable_plugins_typos_warn_and_a_disabled_plugin_says_so():
    with pytest.warns(UserWarning, match="nevergrd"):
        Registry(disable=["nevergrd"])
    registry = Registry(disable=["nevergrad"])
    with pytest.raises(UnknownPluginError, match="disabled"):
        registry.lookup("optimizers", "nevergrad")


def test_gamma_factor_with_a_long_delta_warns_as_the_reference_accepts_it():
    from modelfit_core.registry.parts import Parts
    metric = Parts.lazy_default().make("metrics", "gamma_factor",
                                       {"delta": 10 * ms, "time": 1 * second})
    with pytest.warns(UserWarning, match="2·delta·rate"):
        metric.validate_data([np.linspace(0.01, 0.99, 60)])


def test_an_unreachable_dask_scheduler_is_a_clear_error_within_seconds():
    pytest.importorskip("distributed")
    from modelfit_plugins.backends.dask_backend import connect
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="tcp://127.0.0.1:1"):
        connect("tcp://127.0.0.1:1", timeout_s=2)
    assert time.monotonic() - started < 10
    with pytest.raises(ConfigurationError, match="scheme"):
        connect("nonsense://x")


def test_a_first_round_that_diverges_entirely_stops_naming_the_cause(passive_data, tmp_path):
    """Every parameter set blows up (an unstable term): the fit stops after the first
    round, stored, with a SimulationError naming the output and the step."""
    from modelfit_core.contracts.errors import SimulationError
    unstable = PASSIVE_MODEL.replace("+ I)/C", "+ I)/C + (v - El)*100/ms")
    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime",
                               backend_options={"codegen_target": "numpy"}, feedback=None,
                               seed=1, storage=f"sqlite:///{tmp_path / 'fit.db'}", study="s")
    fitter = pipe.trace_fitter(model=unstable, input={"I": passive_data["I"]},
                               output={"v": passive_data["v"]}, dt=DT, n_samples=4,
                               param_init={"v": -60 * mV}, namespace={"El": El},
                               method="euler")
    with pytest.raises(SimulationError) as info:
        fitter.fit(n_rounds=5, **BOUNDS)
    message = str(info.value)
    assert "first round diverged" in message and "'v'" in message and "step" in message
    assert len(read_results(tmp_path / "fit.db", "s")) == 30  # the round is kept


def test_use_units_false_adds_plain_number_errors_as_the_manual_says(spy, data):
    """Two outputs in different units with plain-number normalizations: refused with
    units, accepted (a sum of SI values) with use_units=False."""
    from modelfit_core.contracts.units import UnitMismatchError
    model = PASSIVE_MODEL + "dw/dt = (gl*(El - v) - w)/ms : amp\n"
    outputs = {"v": data["v"], "w": np.zeros(np.shape(data["v"])) * amp}
    metric = {"v": MSEMetric(normalization=2.0), "w": MSEMetric(normalization=3.0)}
    with pytest.raises(UnitMismatchError):
        fit_once(fitter_with(spy, data, model=model, output=outputs,
                             param_init={"v": El, "w": 0 * amp}), metric=metric)
    with pytest.raises(AssertionError, match="simulated"):  # every check passed
        fit_once(fitter_with(spy, data, model=model, output=outputs, use_units=False,
                             param_init={"v": El, "w": 0 * amp}), metric=metric)


def test_compat_methods_with_wrong_arguments_name_them_before_any_round(data):
    from modelfit_core import NevergradOptimizer, TraceFitter
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": data["I"]},
                         output={"v": data["v"]}, dt=DT, n_samples=4, param_init={"v": El})
    optimizer = NevergradOptimizer(seed=1)
    fitter.fit(optimizer, MSEMetric(), n_rounds=0, callback=None, **BOUNDS)
    for args, words in (((None, None), "optimizer"),
                        ((NevergradOptimizer(seed=2), None), "optimizer"),
                        ((optimizer, MSEMetric()), "metric")):
        with pytest.raises(ModelfitError, match=words):
            fitter.optimization_iter(*args)
    assert not fitter.history.rounds  # nothing was run or stored
    with pytest.raises(ArgumentTypeError, match="n_neurons"):
        fitter.setup_neuron_group(None, {"El": El})
    with pytest.raises(ArgumentTypeError, match="namespace"):
        fitter.setup_neuron_group(4, "El")
    with pytest.raises(ConfigurationError, match="output_var"):
        fitter.setup_simulator("net", 4, "nope", {"v": El})


def test_a_name_defined_after_the_fitter_is_found_when_the_fit_starts(spy, data):
    """As Brian's run() (and brian2modelfitting): names are resolved at fit()."""
    fitter = fitter_with(spy, data, param_init={"v": "v_later + 0*mV"})
    v_later = -70 * mV  # noqa: F841 - found in this frame by fit()
    with pytest.raises(AssertionError, match="simulated"):  # every check passed
        fitter.fit(n_rounds=1, callback=None, **BOUNDS)


def test_a_spike_fit_without_a_metric_is_a_type_error_as_in_the_reference():
    """brian2modelfitting's SpikeFitter.fit(metric=None) raises TypeError ('You can only
    use SpikeMetric child metric with SpikeFitter'): there is no default spike metric."""
    from brian2 import nS, pF

    from modelfit_core import SpikeFitter
    from modelfit_core.contracts.errors import ArgumentTypeError

    fitter = SpikeFitter(model="dv/dt = (gl*(-70*mV - v) + I)/C : volt\n"
                               "gl : siemens (constant)\nC : farad (constant)",
                         input={"I": np.full((1, 50), 1e-9) * amp},
                         output=[np.array([0.002])], dt=0.1 * ms, n_samples=2,
                         threshold="v > -50*mV", reset="v = -70*mV",
                         param_init={"v": -70 * mV})
    with pytest.raises(ArgumentTypeError, match="GammaFactor") as raised:
        fitter.fit(optimizer="random", metric=None, n_rounds=1,
                   gl=[1 * nS, 10 * nS], C=[10 * pF, 100 * pF])
    assert isinstance(raised.value, TypeError)
