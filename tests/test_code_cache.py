"""The disk cache of Brian's symbolic work (``modelfit_plugins.backends.brian2_code_cache``).

Fits run in fresh interpreters (``WORKER``), since what the cache saves is the
work every new process repeats; each reports how often Brian's cached steps
were computed (misses), the compiler-flag probes, a digest of every generated
code object and the errors of the fit. The first fit of the module fixture
fills a cache folder; the tests work on copies of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from modelfit_plugins.backends import brian2_code_cache as code_cache
from modelfit_plugins.backends import disk_cache
from modelfit_plugins.backends.brian2_code_cache import NoStableText, stable_text
from modelfit_plugins.backends.disk_cache import HEADER_SIZE, MAGIC, DiskStore, PersistentCache

from conftest import PASSIVE_MODEL

WORKER = r"""
import hashlib, json, sys
import numpy as np
from brian2 import amp, mV, ms, nS, pF
from brian2.codegen import cpp_prefs, translation
from brian2.devices.device import RuntimeDevice
from brian2.equations.equations import Equations
from brian2.stateupdaters.base import StateUpdateMethod

# what would be computed in this process, counted below Brian's (and modelfit's) caches
generated, probes, substituted = [], [], [0]
code_object = RuntimeDevice.code_object
def recording(self, owner, name, *args, **kwargs):
    codeobj = code_object(self, owner, name, *args, **kwargs)
    blocks = "".join(f"{block}:{text}" for block, text in sorted(codeobj.code.items()))
    generated.append(name + ":" + hashlib.sha256(blocks.encode()).hexdigest())
    return codeobj
RuntimeDevice.code_object = recording
determine = cpp_prefs._determine_flag_compatibility
cpp_prefs._determine_flag_compatibility = lambda compiler, flag: probes.append(flag) or determine(compiler, flag)
substitute = Equations.get_substituted_expressions
def counting(self, *args, **kwargs):
    substituted[0] += self._substituted_expressions is None
    return substitute(self, *args, **kwargs)
Equations.get_substituted_expressions = counting
import jinja2
from brian2.codegen.runtime.cython_rt.extension_manager import CythonExtensionManager
compiled = {"templates": 0, "setuptools": 0}
compile_template, build_extension = jinja2.Environment.compile, CythonExtensionManager._get_build_extension
def compiling(self, *args, **kwargs):
    compiled["templates"] += 1
    return compile_template(self, *args, **kwargs)
def building(self, *args, **kwargs):
    compiled["setuptools"] += 1
    return build_extension(self, *args, **kwargs)
jinja2.Environment.compile, CythonExtensionManager._get_build_extension = compiling, building

from modelfit_core import TraceFitter
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend

class Grid:
    # a deterministic optimizer: the same points in every process
    def initialize(self, parameter_names, popsize, rounds, **bounds):
        self.bounds = [bounds[name] for name in parameter_names]
        return popsize
    def ask(self, n_samples):
        return [[lo + (hi - lo) * (k + 1) / (n_samples + 1) for lo, hi in self.bounds]
                for k in range(n_samples)]
    def tell(self, parameters, errors):
        pass
    def recommend(self):
        return [(lo + hi) / 2 for lo, hi in self.bounds]

def misses():
    return {"apply_stateupdater": StateUpdateMethod.apply_stateupdater._cache_statistics.misses,
            "make_statements": translation.make_statements._cache_statistics.misses}

currents = np.zeros((2, 200))
currents[0, 20:150], currents[1, 50:180] = 0.2e-9, 0.4e-9
target = -70e-3 + 2e-3 * (currents > 0)
reports = []
for case in json.loads(sys.argv[1]):
    before, probed, substituted[0] = misses(), len(probes), 0
    compiled.update(templates=0, setuptools=0)
    del generated[:]
    fitter = TraceFitter(model=case["model"], input={"I": currents * amp},
                         output={"v": target * 1e3 * mV}, dt=0.1 * ms, n_samples=4,
                         method=case["method"], param_init={"v": -70 * mV},
                         namespace={"El": case["El"] * mV},
                         backend=Brian2RuntimeBackend(codegen_target=case["target"]))
    fitter.fit(n_rounds=2, optimizer=Grid(), metric="mse", callback=None,
               gl=[1 * nS, 100 * nS], C=[10 * pF, 500 * pF])
    reports.append({"misses": {k: v - before[k] for k, v in misses().items()},
                    "probes": len(probes) - probed, "substituted": substituted[0],
                    "templates_compiled": compiled["templates"],
                    "setuptools_set_up": compiled["setuptools"],
                    "code": sorted(generated), "errors": [float(row["error"]) for row in
                               fitter.results(format="list", use_units=False)]})
print("REPORT " + json.dumps(reports))
"""

BASE = {"model": PASSIVE_MODEL, "method": "exponential_euler", "El": -70.0, "target": "cython"}
NUMPY_BASE = dict(BASE, target="numpy")  # nothing to compile for its variants


def run_fits(cache_dir: Path | None, cases, switch: str | None = None) -> list[dict]:
    env = dict(os.environ)
    env.pop(code_cache.SWITCH_VARIABLE, None)
    if cache_dir is not None:
        env[code_cache.CACHE_DIR_VARIABLE] = str(cache_dir)
    if switch is not None:
        env[code_cache.SWITCH_VARIABLE] = switch
    completed = subprocess.run([sys.executable, "-c", WORKER, json.dumps(cases)],
                               capture_output=True, text=True, env=env, timeout=300,
                               cwd=Path(__file__).parent)
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = [l for l in completed.stdout.splitlines() if l.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT "):])


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*.pickle"))


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory):
    """A cache folder after fits of BASE and NUMPY_BASE in a new process, and the
    report of BASE."""
    folder = tmp_path_factory.mktemp("filled") / "cache"
    report, _ = run_fits(folder, [BASE, NUMPY_BASE])
    return folder, report


@pytest.fixture
def cache_copy(filled_cache, tmp_path):
    folder, report = filled_cache
    copy = tmp_path / "cache"
    shutil.copytree(folder, copy)
    return copy, report


# --- fits in new processes ------------------------------------------------------------

def test_a_new_process_computes_what_it_finds_nothing_of(filled_cache):
    folder, first = filled_cache
    assert first["misses"]["apply_stateupdater"] >= 1
    assert first["misses"]["make_statements"] >= 1
    assert first["substituted"] >= 1
    assert first["templates_compiled"] >= 1
    kinds = {path.parent.name for path in entries(folder)}
    assert {"apply_stateupdater", "make_statements", "substituted_expressions",
            "parse_string_equations", "compiler_flags", "templates",
            "extension_suffix"} <= kinds
    versions, = [path.name for path in folder.iterdir()]
    assert versions == code_cache.versions_label()
    assert (folder / versions).stat().st_mode & 0o777 == 0o700


def test_the_second_process_generates_no_code_and_gets_the_same_results(cache_copy):
    folder, first = cache_copy
    second, = run_fits(folder, [BASE])
    assert second["misses"] == {"apply_stateupdater": 0, "make_statements": 0}
    assert second["substituted"] == 0
    assert second["probes"] == 0  # the compiler flags Brian checks are known
    assert second["templates_compiled"] == 0  # jinja2's bytecode of Brian's templates
    assert second["setuptools_set_up"] == 0  # the suffix of compiled extensions is known
    assert second["code"] == first["code"]
    assert second["errors"] == first["errors"]


def test_without_the_cache_nothing_is_written_and_the_results_are_the_same(filled_cache,
                                                                           tmp_path):
    _, cached = filled_cache
    unused = tmp_path / "unused"
    off, = run_fits(unused, [BASE], switch="off")
    assert not unused.exists()
    assert off["misses"]["apply_stateupdater"] >= 1
    assert off["code"] == cached["code"]
    assert off["errors"] == cached["errors"]


def test_a_changed_equation_method_or_constant_misses_the_cache(cache_copy):
    folder, _ = cache_copy
    cases = [NUMPY_BASE,
             dict(NUMPY_BASE, model=PASSIVE_MODEL.replace("(El - v)", "(El - v) * 1.5")),
             dict(NUMPY_BASE, method="euler"),
             dict(NUMPY_BASE, El=-60.0)]
    base, equation, method, constant = run_fits(folder, cases)
    assert base["misses"] == {"apply_stateupdater": 0, "make_statements": 0}
    for changed in (equation, method, constant):
        assert changed["misses"]["apply_stateupdater"] >= 1
        assert changed["misses"]["make_statements"] >= 1
        assert changed["errors"] != base["errors"]
    assert equation["substituted"] >= 1


def test_damaged_entries_are_ignored_and_rewritten(cache_copy):
    folder, first = cache_copy
    damaged = entries(folder)
    for k, path in enumerate(damaged):
        data = path.read_bytes()
        path.write_bytes([data[:len(data) // 2], b"", b"garbage" * 10,
                          data[:-1] + bytes([data[-1] ^ 0xFF])][k % 4])
    again, _ = run_fits(folder, [BASE, NUMPY_BASE])
    assert again["misses"]["apply_stateupdater"] >= 1
    assert again["code"] == first["code"]
    assert again["errors"] == first["errors"]
    store = DiskStore(next(folder.iterdir()))
    for path in damaged:
        data = path.read_bytes()
        payload = data[HEADER_SIZE:]
        assert hashlib.sha256(payload).digest() == data[len(MAGIC):HEADER_SIZE]
        (length,) = struct.unpack_from(">Q", payload)  # the key text, then the pickle
        text = payload[8:8 + length].decode("utf-8", "surrogatepass")
        assert store.get(path.parent.name, text, None) is not None


# --- the parts, in this process -------------------------------------------------------

def test_stable_texts_of_keys():
    import numpy as np
    from brian2 import Function, mV
    from brian2.core.functions import DEFAULT_FUNCTIONS
    from brian2.equations.codestrings import Expression
    from brian2.utils.caching import _hashable

    key = _hashable(({"b": 1, "a": (2.5, "x")}, -70 * mV, np.float64, np.dtype("int32"),
                     Expression("v + 1"), DEFAULT_FUNCTIONS["exp"], {3, 1, 2}, None, True))
    assert stable_text(key) == stable_text(_hashable(
        ({"a": (2.5, "x"), "b": 1}, -70 * mV, np.float64, np.dtype("int32"),
         Expression("v + 1"), DEFAULT_FUNCTIONS["exp"], {2, 3, 1}, None, True)))
    # a different value, type or dimension gives a different text
    assert stable_text((1,)) != stable_text((1.0,)) != stable_text((True,))
    assert stable_text(_hashable(-70 * mV)) != stable_text(_hashable(-70 * mV / mV))
    assert stable_text((np.float32(1.5),)) != stable_text((np.float64(1.5),))

    class Local:
        pass

    user_function = Function(lambda x: x, arg_units=[1], return_unit=1)
    for unstable in (object(), Local, user_function, (1, object())):
        with pytest.raises(NoStableText):
            stable_text(unstable)


def test_disk_store_round_trip_and_damage(tmp_path):
    store = DiskStore(tmp_path / "cache")
    assert store.get("kind", "key", "missing") == "missing"  # no folder yet, none made
    assert not (tmp_path / "cache").exists()
    assert store.put("kind", "key", {"value": [1, 2]})
    assert store.get("kind", "key") == {"value": [1, 2]}
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    path, = entries(tmp_path / "cache")
    # another key text stored under this file name (a collision) is not returned
    data = path.read_bytes()
    other = pickle.dumps(("other key", "other value"))
    path.write_bytes(MAGIC + hashlib.sha256(other).digest() + other)
    assert store.get("kind", "key", "missing") == "missing"
    path.write_bytes(data[:10])
    assert store.get("kind", "key", "missing") == "missing"
    assert not store.put("kind", "lambda", lambda: None)  # unpicklable: not stored
    assert len(entries(tmp_path / "cache")) == 1


def test_a_folder_of_another_user_is_neither_read_nor_written(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    DiskStore(folder).put("kind", "key", 1)
    store = DiskStore(folder)
    monkeypatch.setattr(store, "_uid", os.getuid() + 1)
    with pytest.warns(RuntimeWarning, match="belongs to another user"):
        assert store.get("kind", "key", "missing") == "missing"
    assert not store.put("kind", "other", 2)
    assert len(entries(folder)) == 1


def test_a_folder_others_may_write_to_is_refused_and_left_as_it_was(tmp_path):
    # modelfit never changes the mode of a folder it did not create
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    with pytest.warns(RuntimeWarning, match="others may write"):
        assert not DiskStore(folder).put("kind", "key", 1)
    assert folder.stat().st_mode & 0o777 == 0o777
    assert not any(folder.iterdir())


def test_concurrent_writers_and_readers_never_see_half_an_entry(tmp_path):
    folder = tmp_path / "cache"
    value = list(range(20000))
    seen, errors = [], []

    def write():
        store = DiskStore(folder)
        for _ in range(30):
            store.put("kind", "key", value)

    def read():
        store = DiskStore(folder)
        for _ in range(200):
            found = store.get("kind", "key", None)
            if found is not None:
                seen.append(found == value)

    threads = [threading.Thread(target=f) for f in (write, write, read, read)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert all(seen) and not errors
    assert [p.name for p in (folder / "kind").iterdir() if p.name.startswith(".tmp")] == []


def test_persistent_cache_answers_brians_questions(tmp_path):
    store = DiskStore(tmp_path / "cache")
    def cache(context):
        return PersistentCache({}, store, "f", key_text=code_cache.entry_texts(lambda: context),
                               accepts=lambda value: True)

    first = cache("ctx")
    key = ("code", frozenset({("x", 1.0)}))
    assert key not in first
    first[key] = "result"
    # a new process: an empty in-memory cache finds the entry on disk
    second = cache("ctx")
    assert key in second and second[key] == "result"
    # another context (Brian preferences, registered methods) does not share it
    assert key not in cache("other")
    assert key not in cache(None)
    # keys without a stable text stay in memory
    unstable = ("code", object())
    second[unstable] = "memory only"
    assert unstable in second
    assert unstable not in cache("ctx")


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "no"])
def test_the_switch(monkeypatch, value):
    monkeypatch.setenv(disk_cache.SWITCH_VARIABLE, value)
    assert disk_cache.is_disabled()


def test_the_location(monkeypatch, tmp_path):
    monkeypatch.setenv(code_cache.CACHE_DIR_VARIABLE, str(tmp_path))
    assert code_cache.cache_directory() == tmp_path / code_cache.versions_label()
    monkeypatch.delenv(code_cache.CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert disk_cache.cache_root() == tmp_path / "xdg" / "modelfit"
    import brian2
    import numpy
    import sympy
    for version in (brian2.__version__, sympy.__version__, numpy.__version__):
        assert version in code_cache.versions_label()


def test_compiler_flags_are_keyed_by_the_compiler(tmp_path, monkeypatch):
    store = DiskStore(tmp_path / "cache")
    flags = code_cache.CompilerFlagCache({}, store)
    flags[("c++", "-O3")] = True
    assert ("c++", "-O3") in code_cache.CompilerFlagCache({}, store)
    monkeypatch.setenv("CXXFLAGS", "-m32")
    assert ("c++", "-O3") not in code_cache.CompilerFlagCache({}, store)
    assert ("clang++", "-O3") not in code_cache.CompilerFlagCache({}, store)


def test_the_heap_is_frozen_at_exit_only(tmp_path):
    script = ("import gc\n"
              "from modelfit_plugins.backends.brian2_code_cache import freeze_heap_at_exit\n"
              "class Cycle:\n"
              "    def __del__(self): print('collected', flush=True)\n"
              "def garbage():\n"
              "    a = Cycle(); a.me = a\n"
              "freeze_heap_at_exit()\n"
              "garbage(); gc.collect()  # while running, garbage is collected as usual\n"
              "garbage()  # left for the exit's collection, which the frozen heap skips\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["collected"]


def test_a_users_method_function_or_preference_changes_the_context(monkeypatch):
    from brian2 import Function, prefs
    from brian2.core.functions import DEFAULT_FUNCTIONS
    from brian2.stateupdaters.base import StateUpdateMethod
    from brian2.stateupdaters.explicit import ExplicitStateUpdater

    defaults = code_cache.BrianDefaults()
    assert defaults.state_updaters() is not None and defaults.expressions() is not None
    statements = defaults.statements()
    # a method registered by a script may share its name with another script's method
    monkeypatch.setitem(StateUpdateMethod.stateupdaters, "my_euler",
                        ExplicitStateUpdater("x_new = x + dt * f(x, t)"))
    assert defaults.state_updaters() is None
    monkeypatch.delitem(StateUpdateMethod.stateupdaters, "my_euler")
    assert defaults.state_updaters() is not None
    monkeypatch.setitem(DEFAULT_FUNCTIONS, "my_f", Function(lambda x: x, arg_units=[1],
                                                            return_unit=1))
    assert defaults.expressions() is None and defaults.statements() is None
    monkeypatch.delitem(DEFAULT_FUNCTIONS, "my_f")
    previous = prefs["codegen.loop_invariant_optimisations"]
    try:
        prefs["codegen.loop_invariant_optimisations"] = not previous
        assert defaults.statements() not in (None, statements)
    finally:
        prefs["codegen.loop_invariant_optimisations"] = previous
    assert defaults.statements() == statements
