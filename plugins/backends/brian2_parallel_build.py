"""Brian 2's Cython extensions of one network, compiled side by side on every core.

Brian's runtime device compiles the Cython extension of each code object while
the network prepares its first run, one after another. On an empty cache (a new
machine, a new model, a new Brian or Cython) that is most of a fit's first
round: on the tutorial's Hodgkin–Huxley model, the state updater and the state
monitor take about 2 s each, three quarters of it in the C++ compiler.

Inside :func:`parallel_cython_builds`, Brian's ``create_extension`` no longer
builds at once: it records the request and returns a stand-in
(:class:`DeferredExtension`). The first time any stand-in is used (at the
latest, the first time step of the run) every recorded request is built, in
threads: Cython's translation to C++, which holds the interpreter, one at a
time, and the C++ compilers, separate processes, side by side. Each build is
Brian's own ``create_extension`` (same module names, flags, on-disk cache and
file locks), so a cached extension is only loaded and the results are those of
a sequential build. Brian's per-build redirection of stdout/stderr, which
swaps the process's file descriptors and so cannot overlap, is replaced by one
redirection around the batch, shown when a build fails, as Brian shows it.

A stand-in resolves to Brian's module (or to ``None`` where Brian returns
``None``); :func:`settle_code_objects` puts the modules themselves back into
the code objects once the run has started.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from brian2 import prefs
from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager

from ..cores import available_cores

# the module itself (a plain import of it resolves to a same-named attribute)
_brian_extension_manager = importlib.import_module(
    "brian2.codegen.runtime.cython_rt.extension_manager")

__all__ = ["DeferredExtension", "ExtensionBatch", "parallel_cython_builds", "settle_code_objects"]

_ACTIVE = threading.Lock()  # one batch at a time replaces Brian's create_extension


class DeferredExtension:
    """Stands in for a compiled Cython module until its batch is built."""

    __slots__ = ("_batch", "_key", "_resolved", "_module", "_error")

    def __init__(self, batch: ExtensionBatch, key):
        self._batch = batch
        self._key = key
        self._resolved = False
        self._module = None
        self._error: BaseException | None = None

    def resolve(self):
        """Brian's module (None where Brian's build returned None); builds the batch."""
        if not self._resolved:
            self._batch.build_pending()
        if self._error is not None:
            raise self._error
        return self._module

    def __getattr__(self, name):
        return getattr(self.resolve(), name)

    def __bool__(self) -> bool:  # Brian skips a block whose build gave None
        return self.resolve() is not None


class ExtensionBatch:
    """Requests for Cython extensions, built together in ``workers`` threads.

    Parameters
    ----------
    build : callable
        ``build(code, **options)``: Brian's ``create_extension``.
    workers : int
        Threads building at the same time (the C++ compilers run side by side).
    """

    def __init__(self, build, workers: int):
        self.build_function = build
        self._workers = max(int(workers), 1)
        self._lock = threading.RLock()
        self._pending: dict = {}
        self._stand_ins: dict = {}
        self.built_together: list[int] = []
        """The size of each batch built so far (a record for tests and benchmarks)."""

    def defer(self, code, **options):
        """A stand-in for ``build(code, **options)``; requests alike share one."""
        key = (code, repr(sorted(options.items())))
        with self._lock:
            stand_in = self._stand_ins.get(key)
            if stand_in is None:
                stand_in = DeferredExtension(self, key)
                self._stand_ins[key] = stand_in
                self._pending[key] = (code, options)
            return stand_in

    def build_pending(self) -> None:
        """Build every request not built yet; each stand-in keeps its module or error."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            try:
                if len(pending) == 1 or self._workers == 1:
                    outcomes = {key: _outcome(self.build_function, *request)
                                for key, request in pending.items()}
                else:
                    outcomes = self._build_side_by_side(pending)
            except BaseException:  # Ctrl-C: nothing resolved, so all may be asked again
                self._pending = {**pending, **self._pending}
                raise
            self.built_together.append(len(pending))
            for key, (module, error) in outcomes.items():
                stand_in = self._stand_ins[key]
                stand_in._module, stand_in._error, stand_in._resolved = module, error, True

    def _build_side_by_side(self, pending: dict) -> dict:
        with _one_redirection() as captured, _brian_redirection_off(), \
                _one_cython_translation_at_a_time(), \
                ThreadPoolExecutor(min(self._workers, len(pending)),
                                   thread_name_prefix="modelfit-cython") as pool:
            futures = {key: pool.submit(_outcome, self.build_function, *request)
                       for key, request in pending.items()}
            outcomes = {key: future.result() for key, future in futures.items()}
            captured.failed = any(error is not None for _, error in outcomes.values())
        return outcomes


def _outcome(build, code, options):
    try:
        return build(code, **options), None
    except Exception as exc:  # kept for the code object that needs this module
        return None, exc


@contextlib.contextmanager
def parallel_cython_builds(workers: int | None = None):
    """Within this block, Brian's Cython extensions are built together on first use.

    Parameters
    ----------
    workers : int, optional
        Builds at the same time; default: the cores this process may use. With
        one, or while another thread holds such a block, Brian builds as usual.

    Yields
    ------
    ExtensionBatch or None
        The batch (None when Brian builds as usual). A request still pending when
        the block ends (a run stopped before its first step) is built when its
        stand-in is first used, if ever.
    """
    workers = available_cores() if workers is None else workers
    if workers < 2 or not _ACTIVE.acquire(blocking=False):
        yield None
        return
    had_own = "create_extension" in vars(cython_extension_manager)
    batch = ExtensionBatch(cython_extension_manager.create_extension, workers)
    cython_extension_manager.create_extension = batch.defer
    try:
        yield batch
    finally:
        if had_own:
            cython_extension_manager.create_extension = batch.build_function
        else:
            del cython_extension_manager.create_extension
        _ACTIVE.release()


def settle_code_objects(code_objects) -> None:
    """Put the built modules themselves in place of their stand-ins."""
    for codeobj in code_objects:
        compiled = getattr(codeobj, "compiled_code", None)
        if not isinstance(compiled, dict):
            continue
        for block, module in compiled.items():
            if isinstance(module, DeferredExtension):
                compiled[block] = module.resolve()


class _Captured:
    failed = False


@contextlib.contextmanager
def _one_redirection():
    """stdout/stderr (the file descriptors, as Brian's ``std_silent``) into one file,
    written out if a build failed, as Brian does."""
    if not prefs["logging.std_redirection"] or not prefs["logging.std_redirection_to_file"]:
        yield _Captured()
        return
    captured = _Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b", prefix="modelfit_cython_") as sink:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
        finally:
            os.close(saved[0])
            os.close(saved[1])
        if captured.failed:
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))


@contextlib.contextmanager
def _brian_redirection_off():
    previous = prefs["logging.std_redirection"]
    prefs["logging.std_redirection"] = False
    try:
        yield
    finally:
        prefs["logging.std_redirection"] = previous


class _SerializedCython:
    """Brian's ``Cython.Build`` with ``cythonize`` one call at a time: Cython's
    compiler keeps global state; the C++ compilers run after it, side by side."""

    def __init__(self, module):
        self._module = module
        self._lock = threading.Lock()

    def cythonize(self, *args, **kwargs):
        with self._lock:
            return self._module.cythonize(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._module, name)


@contextlib.contextmanager
def _one_cython_translation_at_a_time():
    original = _brian_extension_manager.Cython_Build
    _brian_extension_manager.Cython_Build = _SerializedCython(original)
    try:
        yield
    finally:
        _brian_extension_manager.Cython_Build = original
