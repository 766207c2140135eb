"""Brian's Cython extensions built side by side (plugins/backends/brian2_parallel_build.py).

The batching is tested with plain build functions (threads that must meet to
pass); one test compiles a real network into an empty Cython cache.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from brian2 import NeuronGroup, Network, StateMonitor, ms, prefs
from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager

from modelfit_plugins.backends.brian2_parallel_build import (DeferredExtension, ExtensionBatch,
                                                             parallel_cython_builds,
                                                             settle_code_objects)


class Built:
    def __init__(self, code):
        self.code = code

    def main(self):
        return self.code


def test_requests_alike_share_one_build():
    calls = []
    batch = ExtensionBatch(lambda code, **options: calls.append(code) or Built(code), 2)
    first = batch.defer("a", compiler="gcc")
    assert batch.defer("a", compiler="gcc") is first
    other = batch.defer("a", compiler="clang")
    assert calls == []  # nothing is built before a stand-in is used
    assert first.main() == "a" and other.main() == "a"
    assert sorted(calls) == ["a", "a"] and batch.built_together == [2]


def test_the_first_use_builds_every_pending_request_side_by_side():
    meeting = threading.Barrier(3, timeout=10)  # passes only if three builds run at once

    def build(code, **options):
        meeting.wait()
        return Built(code)

    batch = ExtensionBatch(build, 3)
    stand_ins = [batch.defer(code) for code in "xyz"]
    assert stand_ins[2].main() == "z"
    assert [s.main() for s in stand_ins] == ["x", "y", "z"]
    assert batch.built_together == [3]


def test_a_failed_build_is_raised_by_its_own_stand_in_only():
    def build(code, **options):
        if code == "bad":
            raise RuntimeError("compiler error in bad")
        return None if code == "empty" else Built(code)

    batch = ExtensionBatch(build, 2)
    good, bad, empty = batch.defer("good"), batch.defer("bad"), batch.defer("empty")
    with pytest.raises(RuntimeError, match="compiler error in bad"):
        bad.main()
    assert good.main() == "good"
    assert not empty and empty.resolve() is None  # Brian skips a block built as None
    assert good


def test_an_interrupted_batch_is_built_again_when_asked_again():
    interrupts = [KeyboardInterrupt()]

    def build(code, **options):
        if interrupts:
            raise interrupts.pop()
        return Built(code)

    batch = ExtensionBatch(build, 1)
    stand_in = batch.defer("a")
    with pytest.raises(KeyboardInterrupt):
        stand_in.resolve()
    assert stand_in.main() == "a"


def test_builds_print_nothing_unless_one_fails(capfd):
    def build(code, **options):
        os.write(1, f"compiling {code}\n".encode())
        os.write(2, f"warning in {code}\n".encode())
        if code == "bad":
            raise RuntimeError("failed")
        return Built(code)

    before = os.fstat(1).st_ino, os.fstat(2).st_ino
    batch = ExtensionBatch(build, 2)
    batch.defer("a"), batch.defer("b")
    batch.build_pending()
    assert capfd.readouterr() == ("", "")
    batch.defer("c"), batch.defer("bad")
    batch.build_pending()
    shown = capfd.readouterr().err
    assert "compiling c" in shown and "warning in bad" in shown
    assert (os.fstat(1).st_ino, os.fstat(2).st_ino) == before
    assert prefs["logging.std_redirection"] is True


def test_brian_builds_as_usual_outside_the_block_and_with_one_worker():
    with parallel_cython_builds(workers=1) as batch:
        assert batch is None and "create_extension" not in vars(cython_extension_manager)
    with pytest.raises(ValueError):
        with parallel_cython_builds(workers=2) as batch:
            assert cython_extension_manager.create_extension == batch.defer
            with parallel_cython_builds(workers=2) as nested:
                assert nested is None  # one batch at a time
            raise ValueError
    assert "create_extension" not in vars(cython_extension_manager)


def test_a_network_compiled_into_an_empty_cache_runs_as_with_numpy(tmp_path):
    model = """dv/dt = (-v + I) / (5*ms) : 1
               dI/dt = -I / (2*ms) : 1"""

    def traces(target):
        group = NeuronGroup(3, model, method="exact", codeobj_class=target, name="pb_group*")
        group.I = [0.5, 1.0, 2.0]
        monitor = StateMonitor(group, "v", record=True, codeobj_class=target)
        network = Network(group, monitor)
        with parallel_cython_builds(workers=2) as batch:
            network.run(2 * ms)
        settle_code_objects(c for obj in network.objects for c in obj._code_objects)
        compiled = [m for obj in network.objects for c in obj._code_objects
                    for m in c.compiled_code.values()]
        return monitor.v[:], batch, compiled

    from brian2.codegen.runtime.cython_rt import CythonCodeObject
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    previous = prefs["codegen.runtime.cython.cache_dir"]
    prefs["codegen.runtime.cython.cache_dir"] = str(tmp_path)
    try:
        cython_v, batch, compiled = traces(CythonCodeObject)
    finally:
        prefs["codegen.runtime.cython.cache_dir"] = previous
    numpy_v, _, _ = traces(NumpyCodeObject)
    assert batch.built_together == [2]  # the state updater and the monitor
    assert len(list(tmp_path.glob("*.so"))) == 2
    assert not any(isinstance(module, DeferredExtension) for module in compiled)
    np.testing.assert_allclose(cython_v, numpy_v, rtol=1e-12)


# -- the runtime backend ------------------------------------------------------------------
BACKEND_PROGRAM = """
import sys, tempfile
import numpy as np
from brian2 import amp, get_dimensions, prefs
prefs["codegen.runtime.cython.cache_dir"] = tempfile.mkdtemp()
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from modelfit_core.contracts.simulation import InputSignal, SimulationSpec
from modelfit_plugins.backends import brian2_parallel_build
from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend

batches = []
build_pending = brian2_parallel_build.ExtensionBatch.build_pending
def recording(batch):
    before = len(batch.built_together)
    build_pending(batch)
    batches.extend(batch.built_together[before:])
brian2_parallel_build.ExtensionBatch.build_pending = recording

spec = SimulationSpec(model="dv/dt = (-v + gl*I*ohm)/(5*ms) : volt\\ngl : 1 (constant)",
                      parameter_names=("gl",), n_samples=2, n_traces=1, n_steps=20, dt=1e-4,
                      inputs={"I": InputSignal(values=np.ones((1, 20)), dim=get_dimensions(amp))},
                      record=("v",), param_init={}, namespace={}, name="pb_backend")
backend = Brian2RuntimeBackend()
simulation = backend.prepare(spec)
v = simulation.run({"gl": np.array([1.0, 2.0])}).traces["v"][:, 0, -1]
print(backend.codegen_target, simulation.codeobj_class is NumpyCodeObject, batches,
      [round(float(x), 6) for x in v / (1 - np.exp(-1.9e-3 / 5e-3))])
"""


def run_backend(tmp_path, **environment):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", BACKEND_PROGRAM], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **environment},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1], done.stderr


def test_brians_cython_check_is_built_with_the_first_networks_extensions(tmp_path):
    shown, _ = run_backend(tmp_path)
    # the test compilation, the state updater and the monitor in one batch
    assert shown == "cython False [3] [1.0, 2.0]"


def test_without_a_working_compiler_the_simulation_falls_back_to_numpy(tmp_path):
    shown, messages = run_backend(tmp_path, CC="/nonexistent/cc", CXX="/nonexistent/c++")
    assert shown.startswith("numpy True") and shown.endswith("[1.0, 2.0]")
    assert "Cannot use Cython" in messages
