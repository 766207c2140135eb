"""Brian 2 runtime backend: one vectorised NeuronGroup, compiled once.

Before the first run, :meth:`brian2.Network.run` for no time at all generates
and compiles the code (the Cython extensions side by side:
:mod:`.brian2_parallel_build`). Every run then reuses those code objects and
steps the clock directly, skipping what ``Network.run`` redoes every time
although nothing changed: code generation for every object, a full
``gc.collect()`` (which costs more than the simulation itself once nevergrad
and sympy objects fill the heap) and two layers of Python calls per step.
Results are identical; ``tests/test_runtime_backend.py`` checks it.

Ctrl-C stops a simulation early (Brian's SIGINT handler, which the stepping
loop honours as ``Network.run`` does); a run that did not reach the end raises
KeyboardInterrupt instead of returning a cut result (``tests/test_interruptions.py``).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from brian2 import Network, second
from brian2.codegen.runtime.cython_rt import CythonCodeObject
from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
from brian2.core import network as brian_network_module
from brian2.devices.device import runtime_device

from modelfit_core.contracts.errors import ConfigurationError, SimulationError
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec

from .brian2_code_cache import install as install_code_cache
from .brian2_model import (apply_string_initializers, build_group, collect_result,
                           device_active, interrupted, set_parameters, stop_on_interrupt,
                           stop_requested)
from .brian2_parallel_build import parallel_cython_builds, settle_code_objects

_CODE_TARGETS = {"cython": CythonCodeObject, "numpy": NumpyCodeObject}


def _is_arithmetic_error(exc: BaseException) -> bool:
    """Whether ``exc`` or one of its causes is a ZeroDivisionError/FloatingPointError."""
    while exc is not None:
        if isinstance(exc, (ZeroDivisionError, FloatingPointError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _compiled_main(codeobj):
    """The compiled 'run' block's entry point, or None if the block is empty."""
    compiled = getattr(codeobj, "compiled_code", {}).get("run")
    if compiled is None:
        return None
    if hasattr(compiled, "main"):  # Cython: a module with main(namespace)
        return compiled.main
    return lambda namespace, codeobj=codeobj: codeobj.run_block("run")


class _NoCollectGC:
    """Stands in for the ``gc`` module inside ``brian2.core.network`` during a run."""

    @staticmethod
    def collect(*_args, **_kwargs):
        return 0


@contextlib.contextmanager
def _without_brian_gc():
    # Network.run calls gc.collect() only to warn about objects created but
    # not added to a network; ours are all in the network.
    original = brian_network_module.gc
    brian_network_module.gc = _NoCollectGC
    try:
        yield
    finally:
        brian_network_module.gc = original


class RuntimeSimulation:
    """A prepared runtime simulation; see :class:`Brian2RuntimeBackend`.

    ``check_cython``, if given, is called with whether Cython works, once Brian's
    test compilation has been built together with this simulation's extensions
    (the simulation was prepared with Cython before knowing); if it does not, the
    simulation is prepared again with numpy code.
    """

    def __init__(self, spec: SimulationSpec, codeobj_class, check_cython=None):
        self.spec = spec
        self._check_cython = check_cython
        self._numpy_twin: RuntimeSimulation | None = None
        self._build_network(codeobj_class)

    def _build_network(self, codeobj_class) -> None:
        self.codeobj_class = codeobj_class
        # A stable name (Brian appends _1, _2 only if taken) keeps the generated
        # code, and so Brian's on-disk compilation cache, the same across runs.
        # Runtime device even after set_device('cpp_standalone'): generate() and
        # refine() always simulate in runtime mode, as the manual says.
        with device_active(runtime_device):
            self.group, self.monitors = build_group(self.spec, codeobj_class=codeobj_class,
                                                    name=f"{self.spec.name}*")
            self.network = Network(self.group, *self.monitors.values())
            self.network.store("modelfit_initial")
        self._compiled = False

    def run(self, parameters, iteration: float = 0.0) -> SimulationResult:
        """Simulate every parameter set; values are SI arrays of length n_samples.

        Cython code stops the whole batch at a division by zero in any neuron.
        Such a batch is re-run with numpy code, where the offending neurons get
        inf/NaN (scored as diverged) and the others their normal result.
        """
        try:
            return self._run(parameters, iteration)
        except Exception as exc:
            if self.codeobj_class is NumpyCodeObject or not _is_arithmetic_error(exc):
                raise
        if self._numpy_twin is None:
            warnings.warn("A division by zero stopped the compiled simulation of a batch; "
                          "re-running such batches with numpy code so that only the "
                          "parameter sets concerned are marked as diverged.",
                          RuntimeWarning, stacklevel=2)
            self._numpy_twin = RuntimeSimulation(self.spec, NumpyCodeObject)
        with np.errstate(all="ignore"):
            return self._numpy_twin._run(parameters, iteration)

    def _run(self, parameters, iteration: float) -> SimulationResult:
        with device_active(runtime_device):
            return self._run_on_device(parameters, iteration)

    def _run_on_device(self, parameters, iteration: float) -> SimulationResult:
        if not self._compiled:
            self._compile()  # before the values: it may prepare a new (numpy) network
        spec = self.spec
        self.network.restore("modelfit_initial")
        set_parameters(self.group, spec, parameters)
        if spec.uses_iteration:
            self.group.variables["iteration"].set_value(iteration)
        apply_string_initializers(self.group, spec)
        self._step_compiled()
        return collect_result(self.group, self.monitors, spec)

    def _compile(self) -> None:
        """Generate and compile the network's code objects: ``Network.run`` for no time
        at all; the steps are then taken by :meth:`_step_compiled`, as in later rounds."""
        # the network's Cython extensions compile side by side (a new model or cache)
        with _without_brian_gc(), parallel_cython_builds():
            self.network.run(0 * second, namespace={})
            if self._check_cython is not None and not self._cython_works():
                return self._compile()  # again, with numpy code
            settle_code_objects(self._code_objects())
        if stop_requested():  # Ctrl-C while Brian prepared the run
            raise interrupted("the preparation of this round's simulation")
        self._compiled = True

    def _cython_works(self) -> bool:
        """Brian's test compilation, built in the same batch as the network's extensions
        (run last, it starts the batch); without Cython, prepare again with numpy."""
        works = CythonCodeObject.is_available()
        self._check_cython, check = None, self._check_cython
        check(works)
        if not works:
            self._build_network(NumpyCodeObject)
        return works

    def _code_objects(self) -> list:
        objects = [obj for obj in self.network.sorted_objects if obj.active]
        return [codeobj for obj in objects for codeobj in obj._code_objects]

    def _step_compiled(self) -> None:
        """The loop of ``Network.run`` for one clock, reusing compiled code objects."""
        clock = self.group.clock
        timestep = clock.variables["timestep"].get_value()
        t = clock.variables["t"].get_value()
        dt = clock.variables["dt"].get_value()
        code_objects = self._code_objects()
        for codeobj in code_objects:
            codeobj.before_run()
        # What CodeObject.__call__ does, minus two layers of Python calls per step.
        steps = [(codeobj.nonconstant_values, codeobj.namespace, main)
                 for codeobj in code_objects
                 if (main := _compiled_main(codeobj)) is not None]
        start = int(timestep[0])
        end = start + self.spec.n_steps
        # Ctrl-C then stops the loop between two steps, as it stops Network.run
        with stop_on_interrupt():
            try:
                for step in range(start, end):
                    if stop_requested():
                        break
                    for nonconstant, namespace, main in steps:
                        for name, getter in nonconstant:
                            namespace[name] = getter()
                        main(namespace)
                    timestep[0] = step + 1
                    t[0] = (step + 1) * dt[0]
            except Exception as exc:
                raise SimulationError(f"The simulation failed at t = {t[0] * 1e3:.3f} ms: "
                                      f"{type(exc).__name__}: {exc}") from exc
        for codeobj in code_objects:
            codeobj.after_run()
        if stop_requested() or int(timestep[0]) < end:
            raise interrupted("the simulation of this round")

    def close(self) -> None:
        self.network = None
        self.group = None
        self.monitors = {}
        if self._numpy_twin is not None:
            self._numpy_twin.close()


class Brian2RuntimeBackend:
    """Simulate in this process with Brian 2's runtime device.

    Parameters
    ----------
    codegen_target : {"cython", "numpy"}
        Cython compiles once (cached on disk) and runs fastest; numpy needs
        no compiler. Default: cython when a compiler is available.
    """

    name = "runtime"
    simulates_running_sums = True  # running_sums: the gradient optimizer's rounds

    def __init__(self, codegen_target: str | None = None):
        if codegen_target is not None and codegen_target not in _CODE_TARGETS:
            raise ConfigurationError(
                f"Unknown codegen_target {codegen_target!r} for the runtime backend; "
                f"use one of {sorted(_CODE_TARGETS)}.")
        self._chosen_target = codegen_target

    @property
    def codegen_target(self) -> str:
        """The code generation target; by default found out when first needed (Brian
        compiles a test program to see whether Cython works)."""
        if self._chosen_target is None:
            install_code_cache()  # the compiler-flag probes of the check are kept on disk
            self._cython_checked(CythonCodeObject.is_available())
        return self._chosen_target

    def _cython_checked(self, works: bool) -> None:
        self._chosen_target = "cython" if works else "numpy"

    def prepare(self, spec: SimulationSpec) -> RuntimeSimulation:
        """A simulation of ``spec``. Before Cython is known to work, it is prepared
        with Cython and Brian's test compilation is built with its extensions, side by
        side (on a new machine the test alone takes 1-1.5 s); numpy if it fails."""
        if self._chosen_target is None:
            install_code_cache()
            return RuntimeSimulation(spec, CythonCodeObject, check_cython=self._cython_checked)
        return RuntimeSimulation(spec, _CODE_TARGETS[self._chosen_target])

    def __repr__(self):
        target = self._chosen_target or "cython if available, else numpy"
        return f"Brian2RuntimeBackend(codegen_target={target!r})"
