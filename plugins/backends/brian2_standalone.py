"""Brian 2 C++ standalone backend: the model compiled once, its binary re-run per round.

Preparing a :class:`~modelfit_core.contracts.simulation.SimulationSpec` writes and
compiles one C++ project (Brian's ``cpp_standalone`` device) in its own
directory. Each round then runs that binary again with the round's parameter
values, through Brian's ``run_args`` (``device.run(run_args={group.gl: values})``,
Brian >= 2.6): the values are written to a file that the binary reads before the
simulation starts; nothing is generated or compiled again.

Several prepared simulations live in one process, each with its own project:
every one gets a *private* ``CPPStandaloneDevice`` instance (not Brian's
process-wide ``cpp_standalone`` device), made the active device only while its
objects are created, built and run, after which the device that was active
before (runtime, or the one chosen with ``set_device('cpp_standalone')``) is
active again with its options. So several fitters, ``generate()`` and
``refine()`` calls (always runtime mode) can be mixed in one script, and
``set_device('cpp_standalone')`` in a script only selects this backend
(see :class:`modelfit_core.fitting.fitter.Fitter`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import weakref

import numpy as np
from brian2 import Network, prefs, second
from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
from brian2.devices.device import get_device
from brian2.utils.logger import BrianLogger

from modelfit_core.contracts.errors import ConfigurationError, SimulationError
from modelfit_core.contracts.simulation import SimulationResult, SimulationSpec

from ..cores import available_cores
from .brian2_model import apply_string_initializers, build_group, collect_result, device_active
from .brian2_standalone_rerun import run_arg_values, run_binary

_THREADS_PREF = "devices.cpp_standalone.openmp_threads"


class _WithoutOpenMPWarning(logging.Filter):
    """Hides Brian's "OpenMP code is not yet well tested" warning: the backend, not the
    user, chose OpenMP (brian2modelfitting builds single-threaded and never shows it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.endswith(".openmp")


@contextlib.contextmanager
def _openmp_threads(threads: int):
    """Brian's OpenMP preference for the code generated and built in the block."""
    previous = prefs[_THREADS_PREF]
    prefs[_THREADS_PREF] = threads
    hidden = _WithoutOpenMPWarning()
    handler = BrianLogger.console_handler
    chosen_here = previous <= 0 and threads > 0
    if chosen_here and handler is not None:
        handler.addFilter(hidden)
    try:
        yield
    finally:
        prefs[_THREADS_PREF] = previous
        if handler is not None:
            handler.removeFilter(hidden)


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class StandaloneSimulation:
    """A compiled C++ project for one spec; see :class:`Brian2StandaloneBackend`."""

    def __init__(self, spec: SimulationSpec, threads: int, project_dir: str,
                 remove_on_close: bool):
        self.spec = spec
        self.threads = threads
        self.project_dir = project_dir
        self.device = CPPStandaloneDevice()
        self.runs = 0
        self._finalizer = (weakref.finalize(self, _remove_tree, project_dir)
                           if remove_on_close else None)
        openmp = 0 if threads <= 1 else threads  # one thread: no OpenMP at all
        with device_active(self.device), _openmp_threads(openmp):
            # Group names of their own, so that runtime groups of the same spec
            # (generate(), refine()) keep their stable names and cached code.
            self.group, self.monitors = build_group(spec, name=f"{spec.name}_cpp*")
            network = Network(self.group, *self.monitors.values())
            # Values given on the command line (run_args) are applied here: after
            # the constants and numeric initial values, before the initial values
            # given as expressions, which may use the parameters.
            self.device.apply_run_args()
            apply_string_initializers(self.group, spec)
            network.run(spec.duration * second, namespace={})
            try:
                self.device.build(directory=project_dir, compile=True, run=False,
                                  with_output=False)
            except RuntimeError as exc:
                raise SimulationError(
                    f"Building the C++ standalone project in {project_dir} failed: {exc} "
                    f"(a C++ compiler and make are needed; Brian's compiler settings are "
                    f"in brian2.prefs.codegen.cpp)") from exc
        self._network = network
        # the values set on the command line in each round
        self._views = {name: self.group.state(name) for name in spec.parameter_names}
        if spec.uses_iteration:
            self._views["iteration"] = self.group.state("iteration")

    def _run_args(self, parameters, iteration: float) -> dict:
        n_traces = self.spec.n_traces
        run_args = {}
        for name in self.spec.parameter_names:
            values = np.repeat(np.asarray(parameters[name], dtype=float), n_traces)
            if values.shape != (self.spec.n_neurons,):
                raise ConfigurationError(
                    f"Expected {self.spec.n_samples} values for {name!r}, got "
                    f"{np.asarray(parameters[name]).size}.")
            run_args[self._views[name]] = run_arg_values(self._views[name], values)
        if self.spec.uses_iteration:
            run_args[self._views["iteration"]] = float(iteration)
        return run_args

    def run(self, parameters, iteration: float = 0.0) -> SimulationResult:
        """Run the compiled binary with these parameter sets (SI arrays, n_samples each)."""
        if self.device is None:
            raise SimulationError("This standalone simulation was closed.")
        run_args = self._run_args(parameters, iteration)
        with device_active(self.device):
            run_binary(self.device, run_args, self.project_dir)
            self.runs += 1
            return collect_result(self.group, self.monitors, self.spec)

    def close(self) -> None:
        """Forget the Brian objects; remove the project unless it is kept."""
        self.device = None
        self.group = None
        self.monitors = {}
        self._network = None
        self._views = {}
        if self._finalizer is not None:
            self._finalizer()


class Brian2StandaloneBackend:
    """Simulate with Brian 2's C++ standalone device, compiled once per prepared model.

    Parameters
    ----------
    threads : int, optional
        OpenMP threads of the compiled simulation. Default: Brian's
        ``prefs.devices.cpp_standalone.openmp_threads`` if the script set it
        (> 0), else every core this process may use. ``1`` builds without OpenMP.
    directory : str, optional
        Folder under which each prepared model gets its own project folder.
        Default: the ``directory`` given to ``set_device('cpp_standalone',
        directory=...)`` if that device is active, else a temporary folder.
    keep : bool, optional
        Keep the project folders after the fit (default: only when a
        ``directory`` was given or found).
    """

    name = "cpp_standalone"
    simulates_running_sums = True  # running_sums: the gradient optimizer's rounds

    def __init__(self, threads: int | None = None, directory: str | None = None,
                 keep: bool | None = None):
        if threads is None:
            preferred = int(prefs[_THREADS_PREF])
            threads = preferred if preferred > 0 else available_cores()
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) \
                or threads < 1:
            raise ConfigurationError(f"threads must be a positive integer; got {threads!r}.")
        self.threads = int(threads)
        if directory is None:
            active = get_device()
            if isinstance(active, CPPStandaloneDevice):
                directory = (active.build_options or {}).get("directory")
        self.directory = None if directory is None else os.fspath(directory)
        self.keep = (self.directory is not None) if keep is None else bool(keep)

    def prepare(self, spec: SimulationSpec) -> StandaloneSimulation:
        """Write and compile the project for ``spec`` (tens of seconds the first time)."""
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
        project_dir = tempfile.mkdtemp(prefix=f"{spec.name}_", dir=self.directory)
        try:
            return StandaloneSimulation(spec, self.threads, project_dir,
                                        remove_on_close=not self.keep)
        except BaseException:
            if not self.keep:
                _remove_tree(project_dir)
            raise

    def single_run_backend(self):
        """Single runs (``generate``, ``refine``) simulate in runtime mode, as the manual
        says: a compilation per run would cost more than the run."""
        from .brian2_runtime import Brian2RuntimeBackend
        return Brian2RuntimeBackend()

    def __repr__(self):
        where = f", directory={self.directory!r}" if self.directory else ""
        return f"Brian2StandaloneBackend(threads={self.threads}{where})"
