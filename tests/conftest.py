"""Shared fixtures: an isolated plugin registry and one small, fast passive model.

Every simulation in the suite uses the same model text (``PASSIVE_MODEL``) so
that Brian compiles its Cython code once (it is cached on disk afterwards).
The "recorded" traces are simulated by the runtime backend with the known
parameters ``TRUE_PARAMS``.
"""

import gc
import os
import shutil
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from brian2 import amp, mV, ms, nS, pF

from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import Registry

PASSIVE_MODEL = """
dv/dt = (gl*(El - v) + I)/C : volt
gl : siemens (constant)
C : farad (constant)
"""
"""A passive membrane; ``El`` comes from the caller's namespace, ``I`` is the input."""

El = -70 * mV
DT = 0.1 * ms
N_TRACES, N_STEPS = 2, 200
TRUE_PARAMS = {"gl": 10 * nS, "C": 50 * pF}  # time constant 5 ms
BOUNDS = {"gl": [1 * nS, 100 * nS], "C": [10 * pF, 500 * pF]}


def pytest_configure(config):
    """The suite's own code cache (plugins/backends/brian2_code_cache.py), shared by its
    workers and removed at the end: the user's ~/.cache/modelfit is left as found."""
    if "MODELFIT_CACHE_DIR" not in os.environ:
        os.environ["MODELFIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="modelfit-test-cache-")
        config.modelfit_cache_dir = os.environ["MODELFIT_CACHE_DIR"]


def pytest_unconfigure(config):
    folder = getattr(config, "modelfit_cache_dir", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def step_currents():
    """Two current steps (0.2 nA and 0.4 nA), shape (N_TRACES, N_STEPS), in amp."""
    currents = np.zeros((N_TRACES, N_STEPS))
    currents[0, 20:150] = 0.2e-9
    currents[1, 50:180] = 0.4e-9
    return currents * amp


@pytest.fixture
def registry():
    """Only the plugins shipped with modelfit, whatever else is installed."""
    return Registry(distributions=[DISTRIBUTION])


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """``fake_distribution(name, entry_points, modules={}, requires=(), extras=())`` writes
    a real distribution (a ``*.dist-info`` folder with METADATA and entry_points.txt,
    plus module files) to a folder on ``sys.path``, which ``importlib.metadata`` reads
    exactly as an installed package. ``entry_points`` maps groups to {name: value}."""
    written = []

    def install(name, entry_points, modules=None, requires=(), extras=()):
        info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
        metadata += [f"Provides-Extra: {extra}" for extra in extras]
        metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
        (info / "METADATA").write_text("\n".join(metadata) + "\n")
        (info / "entry_points.txt").write_text("".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
            for group, entries in entry_points.items()))
        for module, source in (modules or {}).items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            written.append(module)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    for module in written:
        sys.modules.pop(module, None)


@pytest.fixture(scope="session")
def passive_data():
    """Input currents and the membrane potential they evoke with ``TRUE_PARAMS``."""
    from modelfit_core import TraceFitter

    currents = step_currents()
    placeholder = np.zeros((N_TRACES, N_STEPS)) * mV
    fitter = TraceFitter(model=PASSIVE_MODEL, input={"I": currents},
                         output={"v": placeholder}, dt=DT, n_samples=1,
                         param_init={"v": El})
    voltage = fitter.generate(params=TRUE_PARAMS)
    assert voltage.shape == (N_TRACES, N_STEPS)
    assert np.isfinite(np.asarray(voltage)).all()
    return {"I": currents, "v": voltage}


@pytest.fixture
def make_fitter(passive_data):
    """``make_fitter(**overrides)`` -> a TraceFitter of the passive model and data.

    ``El`` is found in this module's namespace, as Brian's ``run()`` would.
    """
    from modelfit_core import TraceFitter

    def factory(**overrides):
        options = dict(model=PASSIVE_MODEL, input={"I": passive_data["I"]},
                       output={"v": passive_data["v"]}, dt=DT, n_samples=4,
                       param_init={"v": El})
        options.update(overrides)
        return TraceFitter(**options)

    return factory


@pytest.fixture
def numpy_target():
    """Brian's numpy code generation for a test's own tiny networks (data made with
    Brian's run(), monitors read by modelfit): nothing to compile with Cython."""
    from brian2 import prefs
    previous = prefs.codegen.target
    prefs.codegen.target = "numpy"
    yield
    prefs.codegen.target = previous


def release_brian_objects():
    """Free Brian groups kept alive by reference cycles (e.g. a traceback held by
    ``pytest.raises``), so that the next group gets the same stable name and reuses
    the compiled code instead of compiling a ``modelfit_fit_1`` twin.
    ``gc.collect()`` costs a few tenths of a second, so only when a group is alive."""
    from brian2 import NeuronGroup
    from brian2.core.names import Nameable

    if any(isinstance(ref(), NeuronGroup) for ref in list(Nameable.__instances__())):
        gc.collect()


@pytest.fixture(autouse=True)
def _release_brian_objects():
    # At set-up, not tear-down: pytest holds the previous test's fixture values
    # (and so its fitters) until its tear-down is complete.
    release_brian_objects()
