"""Hostile-input probe: try many bad, hostile and unlucky inputs, class by class, and
count the BAD outcomes (a raw traceback, a hang, or a silently wrong result).

Run: ``.venv/bin/python benchmarks/hostile_inputs.py [CLASS ...] [--show N]``

Each class generates its cases from a few hostile values crossed with every place
they can go (every column of a study database, every key of a config file, ...).
An outcome is OK when modelfit answers as its documentation says: a modelfit
error of the promised type (a ``StorageError`` for a database, a
``ConfigurationError`` for a config file, exit status 2 from the CLI), or the
promised warning; everything else is BAD and counted. The figures go in the
report of issue 26 (before and after).

Nothing here simulates except the few ``data_identity`` and ``manual`` cases, on
a two-parameter passive model of 200 steps.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("MODELFIT_CACHE_DIR", tempfile.mkdtemp(prefix="modelfit-probe-cache-"))

from modelfit_core.contracts.errors import (ConfigurationError, ModelfitError,  # noqa: E402
                                            StorageError)

HANG_S = 8


def run_case(call, expect, limit=HANG_S):
    """``(ok, what happened)`` for one case, run in a forked child (a hang inside C
    code, e.g. SQLite opening a FIFO, cannot be interrupted in-process).

    ``expect`` is an exception type (raised = OK, anything else or nothing = BAD),
    ``"warning"`` (a warning = OK), ``"no-error"`` (returning = OK; a modelfit
    error is OK too; any other exception or a hang is BAD), or a callable judging
    the value returned and what was printed.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report one JSON line, leave without cleanup
        os.close(reader)
        try:
            verdict = _judged(call, expect)
        except BaseException as exc:  # noqa: BLE001
            verdict = (False, f"probe failure {type(exc).__name__}: {exc}")
        os.write(writer, json.dumps(verdict).encode())
        os._exit(0)
    os.close(writer)
    deadline = time.monotonic() + limit
    chunks = []
    import select
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(reader)
            return False, f"hang (> {limit} s)"
        ready, _, _ = select.select([reader], [], [], left)
        if ready:
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(reader)
    os.waitpid(pid, 0)
    if not chunks:
        return False, "crashed (no verdict)"
    ok, what = json.loads(b"".join(chunks))
    return bool(ok), str(what)


def _judged(call, expect):
    caught: list = []
    out, err = io.StringIO(), io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                value = call()
    except BaseException as exc:  # noqa: BLE001 - classifying is the point
        if isinstance(expect, type) and isinstance(exc, expect):
            return True, type(exc).__name__
        if expect == "no-error" and isinstance(exc, ModelfitError):
            return True, type(exc).__name__
        if expect == "warning" and isinstance(exc, ModelfitError):
            return False, f"refused: {type(exc).__name__}"
        return False, f"{type(exc).__name__}: {str(exc)[:100]}"
    if expect == "warning":  # modelfit's own warnings (not libraries' deprecations)
        caught = [w for w in caught if not issubclass(
            w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))]
        return (bool(caught), "warned" if caught else "no warning")
    if expect == "no-error":
        return True, "returned"
    if callable(expect) and not isinstance(expect, type):
        return expect(value, out.getvalue(), err.getvalue())
    return False, "accepted silently"


# -- shared material -----------------------------------------------------------------------
def description(n_samples=3):
    from brian2 import farad, siemens, volt

    from modelfit_core.model.parameters import ParameterSpace
    from modelfit_core.results.study_description import StudyDescription
    space = ParameterSpace(names=("gl", "C"), dims=(siemens.dim, farad.dim),
                           lower=np.array([1e-9, 1e-11]), upper=np.array([1e-7, 5e-10]))
    return StudyDescription(space=space, n_samples=n_samples, error_dim=(volt ** 2).dim,
                            output_names=("v",), optimizer="probe", metric="mse")


def good_database(path: Path, rounds=2):
    from modelfit_core.contracts.protocols import WorkerActivity
    from modelfit_core.results.history import RoundRecord
    from modelfit_core.results.storage import FitStore
    store = FitStore(path, "s")
    store.start(description(), restart=False)
    rng = np.random.default_rng(0)
    with store.session() as write:
        for index in range(rounds):
            params = rng.uniform([1e-9, 1e-11], [1e-7, 5e-10], size=(3, 2))
            errors = rng.uniform(0, 1, 3)
            write(RoundRecord(index=index, parameters=params, errors=errors,
                              diverged=np.zeros(3, bool), objective_errors={"v": errors},
                              told_errors=errors, iteration=index, duration_s=1.0,
                              workers=(WorkerActivity("tcp://a", 0.5, 2, 1),
                                       WorkerActivity("tcp://b", 0.4, 1, 1))), None)
    store.close()


def cli(*argv):
    from modelfit_core.tools.cli import main
    return main(list(argv))


def cli_exit_2(value, out, err):
    return (value == 2 and "Traceback" not in err,
            f"exit {value}" + ("" if value == 2 else f": {(out + err)[-100:]!r}"))


# -- classes -------------------------------------------------------------------------------
GARBAGE = ["not json", "", "[", "{", "null", "true", "1", "-1", "1e400", '"text"', "[]",
           "[1]", "[1, 2, 3]", '["a", "b"]', '{"a": 1}', "[[1, 2]]", "[null, null]",
           '["gl", "gl"]', "[" * 20000 + "]" * 20000, "NaN", "[NaN, Infinity]",
           b"\x00\xff", None, 3.5, -5, 2 ** 62, "[1e308, -1e308]", "[0,0,0,0,0,0,0]",
           "[[0,0,0,0,0,0,0],[0,0,0,0,0,0,0]]", '{"v": "x"}', '{"v": [1]}']
COLUMNS = {"studies": ["parameter_names", "parameter_units", "lower", "upper", "error_unit",
                       "output_names", "n_samples", "objective_names", "optimizer_rounds",
                       "first_iteration", "name"],
           "evaluations": ["parameters", "error", "diverged", "objective_errors", "told",
                           "objectives", "told_objectives", "round", "sample"],
           "rounds": ["duration_s", "iteration", "round", "optimizer_state"],
           "round_workers": ["round", "worker", "busy_s", "n_samples", "chunks"]}


def class_db_rows(work: Path):
    """Garbage in each column of a study database, read by read_results, the CLI and
    fit(resume=True)'s loading: a StorageError (exit 2) or a correct reading."""
    template = work / "good.db"
    good_database(template)
    n = 0
    for table, columns in COLUMNS.items():
        for column in columns:
            for k, value in enumerate(GARBAGE):
                n += 1
                path = work / f"rows{n}.db"
                shutil.copy(template, path)
                with sqlite3.connect(path) as connection:
                    try:
                        connection.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = "
                                           f"(SELECT min(rowid) FROM {table})", (value,))
                    except sqlite3.Error:
                        continue  # a constraint refused it: nothing to read
                connection.close()
                label = f"{table}.{column}={str(value)[:20]!r}"

                def resume(path=path):
                    from modelfit_core.results.storage import FitStore
                    store = FitStore(path, "s")
                    try:
                        return store.load_for_resume(description())
                    finally:
                        store.close()

                from modelfit_core.results.storage import read_results
                yield f"read_results {label}", (lambda p=path: read_results(p)), "no-error"
                yield f"cli results {label}", (lambda p=path: cli("results", str(p))), \
                    lambda v, o, e: (v in (0, 2) and "Traceback" not in e, f"exit {v}")
                yield f"resume {label}", resume, "no-error"


SCHEMA_EXTRAS = {
    "trigger": "CREATE TRIGGER t AFTER INSERT ON evaluations BEGIN DELETE FROM rounds; END",
    "view": "CREATE VIEW v AS SELECT * FROM evaluations",
    "index": "CREATE INDEX i ON evaluations (error)",
    "table": "CREATE TABLE extra (x)",
    "column": "ALTER TABLE studies ADD COLUMN extra TEXT",
    "temp trigger on studies": "CREATE TRIGGER t2 BEFORE UPDATE ON studies BEGIN "
                               "SELECT RAISE(ABORT, 'x'); END",
}


def class_schema_extras(work: Path):
    """Objects modelfit never creates: not a modelfit schema, refused."""
    template = work / "good.db"
    good_database(template)
    from modelfit_core.results.database import open_for_reading, open_for_writing
    for name, statement in SCHEMA_EXTRAS.items():
        path = work / f"extra-{name.replace(' ', '_')}.db"
        shutil.copy(template, path)
        with sqlite3.connect(path) as connection:
            connection.execute(statement)
        connection.close()
        yield f"open_for_reading {name}", lambda p=path: open_for_reading(p)[0].close(), \
            StorageError
        yield f"open_for_writing {name}", lambda p=path: open_for_writing(p).close(), \
            StorageError
        yield f"cli results {name}", lambda p=path: cli("results", str(p)), cli_exit_2


def project(work: Path, name: str) -> Path:
    from config_project import passive_config, write_project
    folder = work / name
    folder.mkdir()
    currents = np.zeros((2, 50))
    currents[:, 10:40] = 2e-10
    return write_project(folder, passive_config(2, 1), currents, np.full((2, 50), -70.0))


def build(folder: Path):
    """What ``modelfit fit`` does before anything is compiled: read, build, bound."""
    from modelfit_core.tools.config import build_fitter, load_config
    fitter, bounds = build_fitter(load_config(folder / "fit.toml"))
    fitter.problem.parameter_space(bounds)
    fitter.problem.check_units(fitter.problem.resolve_namespace(0))
    return fitter


def _set_key(text: str, section: str, key: str, value: str) -> str:
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            break
        if lines[i].split("=")[0].strip() == key:
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


CONFIG_VALUES = {
    # key: hostile TOML values, each of which must be refused with a ConfigurationError
    ("model", "param_init"): ['{ v = "nan*mV" }', "{ v = nan }", "{ v = inf }",
                              '{ v = "unknown_name*mV" }', '{ v = "v_rest + 2*mV" }',
                              '{ w = "-70*mV" }', '{ v = "1e400*mV" }', '{ v = "0*mV/0" }'],
    ("model", "refractory"): ['"nan*ms"', '"inf*ms"', '"-1*ms"', '"unknown > 1"'],
    ("model", "constants"): ['{ El = nan }', '{ El = "inf*mV" }', '{ El = "x" }'],
    ("model", "file"): ['"missing.txt"', '"."', '"bad\\u0000name"', '"' + "a" * 5000 + '"'],
    ("data", "dt"): ["nan", "inf", '"nan*ms"', '"0*ms"', '"-1*ms"', '"1e400*ms"'],
    ("data", "input"): ['"missing.csv"', '"."', '"in\\u0000put.csv"', '"' + "a" * 5000 + '"',
                        '"/dev/zero"', '"fifo.csv"', '"object.npy"', '"truncated.npy"',
                        '"folder.npy"', '"nan.npy"', '"text.csv"'],
    ("data", "output"): ['"missing.csv"', '"/dev/zero"', '"object.npy"', '"truncated.npy"'],
    ("fit", "metric_options"): ['{ normalization = "mV" }', "{ normalization = nan }",
                                "{ normalization = inf }", '{ t_start = "nan*ms" }',
                                "{ t_start = -1 }", '{ normalization = "text" }'],
    ("fit", "storage"): ['"sqlite:///bad\\u0000.db"', '"' + "a" * 5000 + '.db"',
                         '"http://x/y.db"'],
    ("bounds", "gl"): ['["nan*nS", "1*nS"]', '["1*nS", "inf*nS"]', '["5*nS", "1*nS"]',
                       '["1*mV", "2*mV"]'],
}


def _prepare_files(folder: Path):
    np.save(folder / "object.npy", np.array([{"a": 1}, None], dtype=object),
            allow_pickle=True)
    np.save(folder / "nan.npy", np.full((2, 50), np.nan))
    (folder / "truncated.npy").write_bytes((folder / "nan.npy").read_bytes()[:90])
    (folder / "folder.npy").mkdir()
    (folder / "text.csv").write_text("a,b\nx,y\n")
    os.mkfifo(folder / "fifo.csv")


def class_config_files(work: Path):
    """Bad config files and values: a ConfigurationError naming the key, no hang."""
    n = 0
    for (section, key), values in CONFIG_VALUES.items():
        for value in values:
            n += 1
            folder = project(work, f"cfg{n}")
            _prepare_files(folder)
            config = folder / "fit.toml"
            config.write_text(_set_key(config.read_text(), section, key, value))
            if key == "file":  # a model given by a file instead of equations
                text = config.read_text().split("equations = '''")
                rest = text[1].split("'''", 1)[1]
                config.write_text(text[0] + rest)
            yield f"[{section}] {key} = {value[:40]}", lambda f=folder: build(f), \
                ConfigurationError
    whole_files = {
        "deep TOML": "[fit]\nx = " + "[" * 3000 + "]" * 3000 + "\n",
        "deep inline table": "[fit]\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "BOM": "\ufeff" + "[fit]\nn_rounds = 1\n",
        "binary": "\x00\x01\x02",
    }
    for name, text in whole_files.items():
        n += 1
        folder = project(work, f"cfg{n}")
        (folder / "fit.toml").write_text(text)
        yield f"file: {name}", lambda f=folder: build(f), ConfigurationError
    n += 1
    folder = project(work, f"cfg{n}")
    (folder / "fit.toml").unlink()
    (folder / "fit.toml").mkdir()
    yield "config is a folder", lambda f=folder: build(f), ConfigurationError
    n += 1
    folder = project(work, f"cfg{n}")
    os.unlink(folder / "fit.toml")
    os.mkfifo(folder / "fit.toml")
    yield "config is a FIFO", lambda f=folder: build(f), ConfigurationError


def class_cli_files(work: Path):
    """What the CLI is given instead of a database or an output folder: exit 2, no hang."""
    template = work / "good.db"
    good_database(template)
    fifo = work / "fifo.db"
    os.mkfifo(fifo)
    afile = work / "afile"
    afile.write_text("x")
    cases = {
        "FIFO as database": ("results", str(fifo)),
        "/dev/zero as database": ("results", "/dev/zero"),
        "folder as database": ("results", str(work)),
        "missing database": ("results", str(work / "missing.db")),
        "NUL in database path": ("results", "a\x00b.db"),
        "long database path": ("results", "a" * 5000 + ".db"),
        "--output onto a file": ("results", str(template), "--output", str(afile)),
        "--output under a file": ("results", str(template), "--output", str(afile / "x")),
        "--output with NUL": ("results", str(template), "--output", "o\x00ut"),
        "unknown study": ("results", str(template), "--study", "nope"),
        "dashboard on a FIFO": ("dashboard", str(fifo), "--port", "0"),
    }
    for name, argv in cases.items():
        yield name, lambda a=argv: cli(*a), cli_exit_2


HOSTILE_NAMES = ["evil\x1b[2J", "cr\rname", "bidi\u202eeman", "bell\x07", "nl\nname",
                 "tab\tname", "del\x7f", "c1\x9bname", "zw\u200bname", "rlo\u2067x"]


def _raw_controls(text: str) -> list[str]:
    import unicodedata
    allowed = {"\n", "\t"}
    return [c for c in text if c not in allowed and (unicodedata.category(c) in ("Cc", "Cf"))]


def class_printed_names(work: Path):
    """User-written names printed by the CLI: never a raw control character."""
    from brian2 import farad, siemens, volt

    from modelfit_core.model.parameters import ParameterSpace
    from modelfit_core.results.history import RoundRecord
    from modelfit_core.results.storage import FitStore
    from modelfit_core.results.study_description import StudyDescription
    for k, name in enumerate(HOSTILE_NAMES):
        for where in ("study", "parameter", "objective", "db path"):
            path = work / (f"names{k}{where}.db" if where != "db path"
                           else f"n{k}{name.replace(chr(0), '')}.db")
            study = name if where == "study" else "s"
            pname = name if where == "parameter" else "gl"
            objectives = (name, "other") if where == "objective" else ()
            space = ParameterSpace(names=(pname, "C"), dims=(siemens.dim, farad.dim),
                                   lower=np.array([1e-9, 1e-11]),
                                   upper=np.array([1e-7, 5e-10]))
            try:
                store = FitStore(path, study)
            except (OSError, ModelfitError):
                continue
            store.start(StudyDescription(space=space, n_samples=2, error_dim=(volt ** 2).dim,
                                         output_names=("v",), optimizer="p", metric="m",
                                         objectives=objectives), restart=False)
            with store.session() as write:
                obj = {o: np.array([1.0, 2.0]) for o in objectives}
                write(RoundRecord(index=0, parameters=np.array([[2e-9, 2e-11], [3e-9, 3e-11]]),
                                  errors=np.array([1.0, 2.0]), diverged=np.zeros(2, bool),
                                  told_errors=np.array([[1.0, 2.0], [2.0, 1.0]])
                                  if objectives else np.array([1.0, 2.0]),
                                  objectives=obj), None)
            store.close()

            def judge(value, out, err):
                bad = _raw_controls(out + err)
                return (not bad, f"raw {bad!r}" if bad else "escaped")
            yield f"{where} {name!r}", lambda p=path: cli("results", str(p)), judge


def class_cache_links(work: Path):
    """A planted symlink in the cache: never followed, never chmod-ed, never written through."""
    from modelfit_plugins.backends.disk_cache import DiskStore
    cases = []
    # 1. the cache folder itself is a symlink to a folder of the attacker's choosing
    victim = work / "victim"
    victim.mkdir(mode=0o755)
    link = work / "cache-link"
    link.symlink_to(victim)

    def folder_link():
        store = DiskStore(link)
        store.put("k", "text", {"x": 1})
        mode = victim.stat().st_mode & 0o777
        return (mode == 0o755 and not any(victim.rglob("*.pickle")),
                f"victim mode {mode:o}, files {[p.name for p in victim.rglob('*')]}")
    cases.append(("cache folder is a symlink", folder_link))

    # 2. an existing folder with group/other bits that modelfit did not create
    shared = work / "shared-cache"
    shared.mkdir(mode=0o775)
    os.chmod(shared, 0o775)

    def foreign_mode():
        DiskStore(shared).put("k", "t", 1)
        mode = shared.stat().st_mode & 0o777
        return mode == 0o775, f"mode {mode:o}"
    cases.append(("chmod of a folder modelfit did not create", foreign_mode))

    # 3. a kind folder is a symlink
    base = work / "cache3"
    store = DiskStore(base)
    store.put("k", "t", 1)
    target = work / "elsewhere"
    target.mkdir()
    shutil.rmtree(base / "k")
    (base / "k").symlink_to(target)

    def kind_link():
        DiskStore(base).put("k", "t2", 2)
        files = list(target.iterdir())
        return not files, f"written through the link: {files}"
    cases.append(("kind folder is a symlink", kind_link))

    # 4. an entry is a symlink to a file elsewhere (read through it?)
    base4 = work / "cache4"
    s4 = DiskStore(base4)
    s4.put("k", "t", 1)
    entry = s4.path("k", "t")
    copy = work / "entry-copy"
    shutil.copy(entry, copy)
    entry.unlink()
    entry.symlink_to(copy)

    def entry_link():
        value = DiskStore(base4).get("k", "t", "miss")
        return value == "miss", f"read through the link: {value!r}"
    cases.append(("entry is a symlink", entry_link))

    # 5. the key text is checked before unpickling: a valid entry whose key differs
    import hashlib
    import pickle
    import struct

    from modelfit_plugins.backends import disk_cache
    base5 = work / "cache5"
    s5 = DiskStore(base5)
    marker = work / "unpickled"

    class Touch:
        def __reduce__(self):
            return (Path.touch, (marker,))
    # written in the entry format of the store (format 2: key text, then the pickle;
    # format 1 pickled the key text together with the value)
    if disk_cache.FORMAT_VERSION >= 2:
        key = b"another key"
        payload = struct.pack(">Q", len(key)) + key + pickle.dumps(Touch())
    else:
        payload = pickle.dumps(("another key", Touch()))
    path5 = s5.path("k", "t")
    path5.parent.mkdir(parents=True, mode=0o700)
    os.chmod(base5, 0o700)
    path5.write_bytes(disk_cache.MAGIC + hashlib.sha256(payload).digest() + payload)

    def key_first():
        DiskStore(base5).get("k", "t", None)
        return not marker.exists(), "unpickled before the key was checked" \
            if marker.exists() else "key checked first"
    cases.append(("key text checked before unpickling", key_first))

    # 6. a parent of the default cache folder is a symlink planted in a shared root
    root = work / "root6"
    root.mkdir(mode=0o777)
    os.chmod(root, 0o777)
    victim6 = work / "victim6"
    victim6.mkdir(mode=0o755)
    (root / "brian2-x").symlink_to(victim6)

    def planted_in_root():
        DiskStore(root / "brian2-x").put("k", "t", 1)
        mode = victim6.stat().st_mode & 0o777
        return (mode == 0o755 and not any(victim6.rglob("*.pickle")),
                f"victim mode {mode:o}")
    cases.append(("entry folder planted in a shared root", planted_in_root))
    for name, check in cases:
        yield name, check, lambda v, o, e: v


def _passive(n_steps=100):
    from conftest import PASSIVE_MODEL
    from brian2 import amp, mV, ms
    currents = np.zeros((1, n_steps))
    currents[0, 10:80] = 2e-10
    return PASSIVE_MODEL, currents * amp, np.full((1, n_steps), -70.0) * mV, 0.1 * ms


def _fitter(**changes):
    from brian2 import mV
    from modelfit_core import TraceFitter
    model, inp, out, dt = _passive()
    options = dict(model=model, input={"I": inp}, output={"v": out}, dt=dt, n_samples=2,
                   param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
    options.update(changes)
    return TraceFitter(**options)


def class_nan_inf(work: Path):
    """NaN/inf in metric options, refractory, param_init: an error naming the option."""
    from brian2 import mV, ms
    from modelfit_core import MSEMetric
    from modelfit_core.registry.parts import Parts
    bad = [np.nan, np.inf, -np.inf]
    for value in bad:
        yield f"MSEMetric(normalization={value})", \
            lambda v=value: MSEMetric(normalization=v), ConfigurationError
        yield f"MSEMetric(t_start={value}*ms)", \
            lambda v=value: MSEMetric(t_start=v * ms), ConfigurationError
        for option in ("delta", "time"):
            opts = {"delta": 1 * ms, "time": 1 * ms}
            opts[option] = value * ms
            yield f"GammaFactor({option}={value})", \
                lambda o=opts: Parts.lazy_default().make("metrics", "gamma_factor", o), \
                ConfigurationError
        yield f"param_init v={value}", lambda v=value: _fitter(param_init={"v": v * mV}), \
            ConfigurationError
        yield f"refractory={value}*ms", \
            lambda v=value: _fitter(threshold="v > -50*mV", reset="v = -70*mV",
                                    refractory=v * ms), ConfigurationError
        yield f"param_init 'v={value}' as text", \
            lambda v=value: _fitter(param_init={"v": f"{v}*mV"}), ConfigurationError


def class_unit_slips(work: Path):
    """Values a thousand times off: a warning before the fit (not an error)."""
    from brian2 import amp, mV, ms, second, volt
    model, inp, out, dt = _passive()
    cases = {
        "mV numbers as volt": dict(output={"v": np.full((1, 100), -70.0) * volt}),
        "nA numbers as amp": dict(input={"I": np.where(inp > 0, 0.2, 0) * amp}),
        "dt in seconds meant ms": dict(dt=0.1 * second),
        "param_init mV as volt": dict(param_init={"v": -70 * volt}),
        "output in microvolt as mV": dict(output={"v": np.full((1, 100), -70e3) * mV}),
        "dt tiny": dict(dt=1e-6 * ms),
    }
    for name, change in cases.items():
        yield name, lambda c=change: _fitter(**c), "warning"


def class_dask_address(work: Path):
    """An unreachable scheduler: a clear error naming the address, within seconds."""
    from modelfit_core.registry.parts import Parts
    for address in ("tcp://127.0.0.1:1", "tcp://10.255.255.1:8786", "nonsense://x",
                    "tcp://no-such-host.invalid:8786"):
        def make(a=address):
            backend = Parts.lazy_default().make("backends", "dask", {"address": a})
            # the address is used when the backend first runs a batch
            backend._ensure_client()
            try:
                return backend
            finally:
                backend.shutdown()
        yield f"dask address {address}", make, ModelfitError


def class_manual(work: Path):
    """brian2modelfitting's behaviours, as the manual and its own tests have them."""
    from brian2 import mV, ms, second
    from modelfit_core import MSEMetric
    from modelfit_core.registry.parts import Parts

    def penalty_units():
        from brian2 import nS, pF
        f = _fitter(penalty="gl")  # siemens added to mV**2 errors
        f.fit(n_rounds=1, optimizer=None, metric=MSEMetric(), gl=[1 * nS, 100 * nS],
              C=[10 * pF, 500 * pF])
        return f
    yield "penalty in other units than the error", penalty_units, ModelfitError

    def gamma_warns():
        metric = Parts.lazy_default().make("metrics", "gamma_factor",
                                           {"delta": 10 * ms, "time": 1 * second})
        # 60 spikes in 1 s: 2 * 10 ms * 60 Hz = 1.2, accepted by the reference
        metric.validate_data([np.linspace(0.01, 0.99, 60) * second])
        return metric
    yield "GammaFactor 2*delta*rate >= 1 warns", gamma_warns, "warning"

    def use_units_false():
        metric = MSEMetric(normalization=2.0)
        return metric
    yield "MSEMetric(normalization=2.0) (use_units=False)", use_units_false, "no-error"

    def wrong_kind():
        gamma = Parts.lazy_default().make("metrics", "gamma_factor", {"delta": 1 * ms, "time": 1 * second})
        f = _fitter()
        from brian2 import nS, pF
        f.fit(n_rounds=1, optimizer=None, metric=gamma, gl=[1 * nS, 100 * nS],
              C=[10 * pF, 500 * pF])

    def type_and_modelfit(exc):
        return isinstance(exc, TypeError) and isinstance(exc, ModelfitError)

    class TypeAndModelfit(TypeError):
        pass

    def check_wrong_kind():
        try:
            wrong_kind()
        except BaseException as exc:  # noqa: BLE001
            return type_and_modelfit(exc), type(exc).__name__
        return False, "accepted"
    yield "spike metric on traces: TypeError and modelfit error", check_wrong_kind, \
        lambda v, o, e: v

    def reserved(name):
        model = f"""
dv/dt = ({name}*(-70*mV - v) + I)/C : volt
{name} : siemens (constant)
C : farad (constant)
"""
        return _fitter(model=model)
    for name in ("error", "errors", "round", "diverged", "objective_errors",
                 "objective_errors_normalized", "error_v", "normalized_error_v",
                 "objective_a"):
        yield f"parameter named {name!r}", lambda n=name: reserved(n), ConfigurationError

    def param_init_unknown():
        return _fitter(param_init={"v": -70 * mV, "w": 1 * mV})
    yield "param_init for a non-variable", param_init_unknown, ConfigurationError

    def disable_typo():
        from modelfit_core.registry.plugin_registry import Registry
        return Registry(disable=["nevergrad_typo"])
    yield "disable_plugins typo", disable_typo, "warning"


def class_data_identity(work: Path):
    """A resumed fit with other data: refused, listing what differs."""
    from brian2 import amp, mV, ms, nS, pF, volt
    from modelfit_core import Pipeline
    model, inp, out, dt = _passive()
    base = dict(model=model, input={"I": inp}, output={"v": out}, dt=dt, n_samples=2,
                param_init={"v": -70 * mV}, namespace={"El": -70 * mV})
    bounds = dict(gl=[1 * nS, 100 * nS], C=[10 * pF, 500 * pF])
    db = work / "identity.db"
    pipe = Pipeline.from_names(optimizer="nevergrad", metric="mse", backend="runtime",
                               feedback=None, seed=1, storage=f"sqlite:///{db}",
                               study="same")
    pipe.trace_fitter(**base).fit(n_rounds=1, **bounds)
    changes = {
        "dt": dict(dt=0.05 * ms),
        "other output": dict(output={"v": out + 1 * mV}),
        "other input": dict(input={"I": inp * 2}),
        "more traces": dict(input={"I": np.vstack([np.asarray(inp)] * 2) * amp},
                            output={"v": np.vstack([np.asarray(out)] * 2) * volt}),
        "namespace value": dict(namespace={"El": -60 * mV}),
    }
    for name, change in changes.items():
        def resume(c=change):
            fitter = pipe.trace_fitter(**{**base, **c})
            fitter.fit(n_rounds=2, resume=True, **bounds)
        yield f"resume with {name}", resume, StorageError


CLASSES = {
    "db_rows": class_db_rows,
    "schema_extras": class_schema_extras,
    "config_files": class_config_files,
    "cli_files": class_cli_files,
    "printed_names": class_printed_names,
    "cache_links": class_cache_links,
    "nan_inf": class_nan_inf,
    "unit_slips": class_unit_slips,
    "dask_address": class_dask_address,
    "manual": class_manual,
    "data_identity": class_data_identity,
}


def main(argv):
    show = 3
    if "--show" in argv:
        show = int(argv[argv.index("--show") + 1])
        del argv[argv.index("--show"):argv.index("--show") + 2]
    chosen = argv or list(CLASSES)
    totals = {}
    started = time.perf_counter()
    for name in chosen:
        work = Path(tempfile.mkdtemp(prefix=f"probe-{name}-"))
        cases = bad = 0
        reasons = Counter()
        examples = defaultdict(list)
        t0 = time.perf_counter()
        try:
            for label, call, expect in CLASSES[name](work):
                ok, what = run_case(call, expect)
                cases += 1
                if not ok:
                    bad += 1
                    key = what.split(":")[0]
                    reasons[key] += 1
                    examples[key].append(f"{label}: {what}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        totals[name] = (cases, bad, time.perf_counter() - t0)
        print(f"{name:<15}{cases:>6} cases {bad:>6} BAD  ({time.perf_counter() - t0:.1f} s)",
              flush=True)
        for key, count in reasons.most_common():
            print(f"    {count:>5} x {key}")
            for example in examples[key][:show]:
                print(f"          {example[:160]!r}")
    n_cases = sum(c for c, _, _ in totals.values())
    n_bad = sum(b for _, b, _ in totals.values())
    print(f"{'total':<15}{n_cases:>6} cases {n_bad:>6} BAD  "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
