"""Running a built C++ standalone project again, with new values on its command line.

A C++ standalone project is generated and compiled once. Every later run of
its binary takes new values of variables through Brian's ``run_args``
(``device.run(run_args={variable view: values})``, Brian >= 2.6): Brian writes
them to files that the binary reads where ``device.apply_run_args()`` was
queued, before the simulation starts. Nothing is generated or compiled again.

Both users of a standalone binary run it here: the ``cpp_standalone``
backend's rounds (:mod:`.brian2_standalone`) and the manual's
``CPPStandaloneSimulator`` / ``run_again`` (:mod:`.brian2_manual_simulator`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Mapping

import numpy as np
from brian2 import Quantity

from modelfit_core.contracts.errors import SimulationError

from .brian2_model import forget_stop_request, interrupted, stop_requested


def run_arg_values(view, values) -> Quantity:
    """``values`` (SI numbers, one per element or one for all) as the run argument of
    the variable ``view`` (checked against its size)."""
    variable = view.variable
    array = np.asarray(values, dtype=variable.dtype).ravel()
    if array.size == 1:
        array = np.full(variable.size, array.item(), dtype=variable.dtype)
    if array.shape != (variable.size,):
        raise ValueError(f"{variable.name!r} has {variable.size} value(s); got "
                         f"{np.size(values)}.")
    return Quantity(array, dim=view.dim)


def run_binary(device, run_args: Mapping[Any, Any], project_dir: str) -> None:
    """Run the built project of ``device`` (the active device) once with ``run_args``.

    The previous run's result files are removed first (rewriting them makes
    ext4 flush each one on close, which can double the time of a short run),
    and this run's value files afterwards.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C stopped the binary, or it simulated less than the whole run: a
        cut simulation must never be read as a complete one.
    SimulationError
        The binary failed.
    """
    _clear_results(device)
    forget_stop_request()
    try:
        device.run(run_args=dict(run_args), with_output=False)
    except RuntimeError as exc:
        if stop_requested():  # Ctrl-C reached the binary too, and it died of it
            raise interrupted("the standalone binary") from exc
        raise SimulationError(f"The standalone binary in {project_dir} failed: "
                              f"{exc}") from exc
    finally:
        _forget_run_arg_files(device, project_dir)
    # Ctrl-C in a terminal reaches the binary, whose own handler ends the
    # simulation early and writes what it has; Ctrl-C to this process alone
    # only sets Brian's stop flag here. Neither result may be read.
    if stop_requested() or _completed_fraction(device, project_dir) < 1.0:
        raise interrupted("the standalone binary")


def _completed_fraction(device, project_dir: str) -> float:
    """The part of the simulated time the binary completed (its last_run_info.txt,
    written anew by every run: the previous one's is removed first)."""
    path = os.path.join(device.results_dir, "last_run_info.txt")
    try:
        with open(path) as info:
            return float(info.read().split()[1])
    except (OSError, IndexError, ValueError) as exc:
        raise SimulationError(f"The standalone binary in {project_dir} did not "
                              f"report how much it simulated ({path}: {exc}).") from exc


def _clear_results(device) -> None:
    folder = device.results_dir
    if folder and os.path.isdir(folder):
        for entry in os.scandir(folder):
            if entry.is_file():
                with contextlib.suppress(OSError):
                    os.remove(entry.path)


def _forget_run_arg_files(device, project_dir: str) -> None:
    """The files written for this run's values (static_arrays/init_*.dat)."""
    folder = os.path.join(project_dir, "static_arrays")
    for name in device.run_args_arrays:
        for path in (os.path.join(folder, name), os.path.join(folder, name + ".lock")):
            with contextlib.suppress(OSError):
                os.remove(path)
