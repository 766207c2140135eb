"""A disk cache for Brian 2's symbolic work, so that a new process does not redo it.

Brian 2 keeps the results of its costly symbolic steps in memory only
(:func:`brian2.utils.caching.cached`), so every new process repeats them even
when the model is the same. On the tutorial's Hodgkin–Huxley model that was
most of the first round (~0.45 s of 0.55–0.75 s; a later round takes 0.08–0.1 s):

* ``StateUpdateMethod.apply_stateupdater``: the integration method applied to
  the equations with sympy (~0.17 s for exponential Euler);
* ``make_statements``: the abstract code turned into statements, with sympy's
  loop-invariant optimisation (~0.1 s);
* the compiler-flag probes of ``brian2.codegen.cpp_prefs.has_flag`` (a compiler
  run per flag, 0.13–0.2 s);
* ``Equations.get_substituted_expressions`` (every equation parsed by sympy
  again, ~0.04 s) and ``parse_string_equations``.

:func:`install` puts a dictionary that also reads and writes entries on disk
(:class:`~.disk_cache.PersistentCache`) in place of Brian's in-memory caches
of the first two and of the flag probes, so Brian's code asks its dictionary as
before and may get its answer from the disk; ``get_substituted_expressions``
(which keeps its result on the Equations object) is wrapped. Cython's compiled
extensions stay in Brian's own cache (``~/.cython/brian_extensions``). The
files themselves (format, trust, atomic writes): :mod:`.disk_cache`.

Keys. Brian makes a key of the function's arguments (``_hashable``: variables
by their description, without the group they belong to; equations, constants'
values, units, dtypes, the method's name). An entry's file name is the sha256 of
a canonical text of that key (:func:`stable_text`), written by the function's
name and a context: Brian's preferences that the function reads and the
integration methods Brian registers. A key holding anything without a stable
text (a user's own :class:`~brian2.Function`, a method given as an object, a
sympy expression) stays in memory only, as without this module. Versions that
change the results (Brian, sympy, numpy, Python, this format) name the
directory; compiler-flag entries are also keyed by the compiler (its path, size
and time stamp, and the ``CC``/``CXX``/``*FLAGS`` environment), Python's build
configuration and the machine's architecture.

Location: ``$MODELFIT_CACHE_DIR/brian2-<versions>``, or
``~/.cache/modelfit/brian2-<versions>`` (``$XDG_CACHE_HOME`` if set);
``MODELFIT_CACHE=off`` turns it off. Deleting the folder clears it.

Safety. Values are pickled: an entry could run code when it is read, so the
cache must be trusted. It is the user's own directory, written by modelfit
only: created with mode 0o700, checked without following symbolic links, and
neither read nor written when it (or a kind's folder, or an entry) is a link,
is owned by another user or is writable by others; modelfit never changes the
mode of a folder it did not create. Entries are opened with ``O_NOFOLLOW``; the
stored key text is compared before anything is unpickled. Writes go to a
temporary file in the same directory and are renamed into place
(``os.replace``), so concurrent processes never see half an entry; an entry
that is truncated, corrupted or unreadable is ignored (and rewritten), never an
error.

:func:`install` also registers :func:`freeze_heap_at_exit`, which spares a
fitting script the interpreter's last garbage collections (0.5–1 s).
"""

from __future__ import annotations

import atexit
import gc
import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

from .disk_cache import (CACHE_DIR_VARIABLE, FORMAT_VERSION, MISSING, SWITCH_VARIABLE,
                         DiskStore, PersistentCache, cache_root, is_disabled)

__all__ = ["CACHE_DIR_VARIABLE", "SWITCH_VARIABLE", "NoStableText", "cache_directory",
           "install", "installed", "is_disabled", "stable_text", "versions_label"]

BUILTIN_METHODS = ("linear", "exact", "independent", "exponential_euler", "euler", "rk2",
                   "rk4", "milstein", "heun")
"""Integration methods whose results may be stored: Brian's own, while registered as
Brian registers them (a user's method of the same name would otherwise share entries)."""

_COMPILER_ENVIRONMENT = ("CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS",
                         "LDSHARED", "AR", "ARFLAGS", "ARCHFLAGS")
_COMPILER_CONFIG = ("CC", "CXX", "CFLAGS", "CCSHARED", "LDSHARED", "SHLIB_SUFFIX", "AR",
                    "ARFLAGS")


class NoStableText(TypeError):
    """A key holds an object whose text would not be the same in another process."""


def versions_label() -> str:
    """What names the cache directory: the versions that change the cached results."""
    import brian2
    import numpy
    import sympy
    return (f"brian2-{brian2.__version__}-sympy{sympy.__version__}-numpy{numpy.__version__}"
            f"-py{platform.python_version()}-{sys.implementation.name}-f{FORMAT_VERSION}")


def cache_directory() -> Path:
    """The directory this process's Brian, sympy, numpy and Python read and write."""
    return cache_root() / versions_label()


# --- canonical text of Brian's cache keys ------------------------------------------

def _type_text(obj: type) -> str:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    found = sys.modules.get(module) if isinstance(module, str) else None
    for part in (name or "<lambda>").split("."):
        found = getattr(found, part, None)
    if found is not obj:  # a local or dynamically made class has no stable name
        raise NoStableText(f"class {obj!r}")
    return f"T{module}:{name}"


class _TextMaker:
    """:func:`stable_text`, with the tables it needs built once."""

    def __init__(self):
        import numpy
        from brian2.core.functions import DEFAULT_FUNCTIONS
        from brian2.equations.codestrings import Expression, Statements
        from brian2.units.fundamentalunits import Dimension
        self.numpy = numpy
        self.dimension = Dimension
        self.code_strings = (Expression, Statements)
        # Brian's default functions are module-level objects, compared by identity in
        # Brian's keys; they are named by their place in DEFAULT_FUNCTIONS instead.
        self.functions = {id(function): (name, function)
                          for name, function in DEFAULT_FUNCTIONS.items()}

    def text(self, obj) -> str:
        parts: list[str] = []
        self._add(obj, parts)
        return "".join(parts)

    def _add(self, obj, parts: list[str]) -> None:
        kind = type(obj)
        if kind is str:
            parts.append("s" + repr(obj))
        elif kind is tuple or kind is list:
            parts.append("(")
            for element in obj:
                self._add(element, parts)
                parts.append(",")
            parts.append(")")
        elif kind is bool or kind is int or obj is None:
            parts.append(f"{kind.__name__}:{obj!r}")
        elif kind is float:
            parts.append(f"f{obj!r}")
        elif kind is frozenset or kind is set:
            parts.append("{" + ",".join(sorted(self.text(element) for element in obj)) + "}")
        elif kind is self.dimension:
            parts.append(f"D{tuple(float(x) for x in obj._dims)!r}")
        elif isinstance(obj, self.numpy.dtype):
            parts.append(f"dtype:{obj.str}")
        elif isinstance(obj, self.numpy.generic):
            parts.append(f"np.{obj.dtype.str}:{obj.item()!r}")
        elif isinstance(obj, type):
            parts.append(_type_text(obj))
        elif kind in self.code_strings:
            parts.append(f"{kind.__name__}:{obj.code!r}")
        else:
            known = self.functions.get(id(obj))
            if known is None or known[1] is not obj:
                raise NoStableText(f"{kind.__module__}.{kind.__qualname__}")
            parts.append(f"F{known[0]}")


_TEXT_MAKER: _TextMaker | None = None


def stable_text(key) -> str:
    """A text of one of Brian's cache keys that is the same in every process.

    Raises :class:`NoStableText` for anything without one (objects compared by
    identity, such as a user's own Function, or unknown types).
    """
    global _TEXT_MAKER
    if _TEXT_MAKER is None:
        _TEXT_MAKER = _TextMaker()
    return _TEXT_MAKER.text(key)


class BrianDefaults:
    """What Brian defines at import and its symbolic steps read besides their arguments.

    Expressions are read with Brian's default functions and constants and
    integrated with the methods Brian registers; a script that adds or replaces
    one of those (rare) neither reads nor writes entries, since another script
    could use the same names for something else.
    """

    def __init__(self):
        import brian2.stateupdaters as stateupdaters
        from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
        from brian2.core.preferences import prefs
        from brian2.stateupdaters.base import StateUpdateMethod

        self.prefs = prefs
        self.registered = StateUpdateMethod.stateupdaters
        self.tables = [(table, dict(table)) for table in (DEFAULT_FUNCTIONS, DEFAULT_CONSTANTS)]
        self.methods = {name: method for name in BUILTIN_METHODS
                        if (method := getattr(stateupdaters, name, None)) is not None}

    def expressions(self) -> str | None:
        """Context of anything that reads expressions (functions, constants)."""
        for table, snapshot in self.tables:
            if len(table) != len(snapshot) or any(snapshot.get(name) is not value
                                                  for name, value in table.items()):
                return None
        return "defaults"

    def state_updaters(self) -> str | None:
        """Context of ``apply_stateupdater``: the registered methods are Brian's own."""
        if self.expressions() is None:
            return None
        for name, method in self.registered.items():
            if name.startswith("gsl"):
                continue  # GSL's results are objects tied to a device: never stored
            if self.methods.get(name) is not method:
                return None
        return "methods:" + ",".join(sorted(self.methods))

    def statements(self) -> str | None:
        """Context of ``make_statements``: the preferences it reads."""
        if self.expressions() is None:
            return None
        try:
            return (f"loop_invariant_optimisations:"
                    f"{bool(self.prefs['codegen.loop_invariant_optimisations'])}"
                    f";float:{stable_text(self.prefs['core.default_float_dtype'])}"
                    f";int:{stable_text(self.prefs['core.default_integer_dtype'])}")
        except (KeyError, NoStableText):
            return None


def entry_texts(context):
    """key -> the text of the entry: the context, then the key's stable text."""
    def key_text(key):
        prefix = context()
        if prefix is None:
            return None
        try:
            return prefix + "\n" + stable_text(key)
        except (NoStableText, RecursionError):
            return None
    return key_text


def _cached_targets(defaults: BrianDefaults):
    """(kind, Brian's cached function, context, accepts) for each cached step;
    ``context()`` is the text of the state the function reads besides its
    arguments, or None when entries may not be shared under that state."""
    from brian2.codegen import translation
    from brian2.codegen.statements import Statement
    from brian2.equations import equations
    from brian2.stateupdaters.base import StateUpdateMethod

    def is_statements(value):
        return (isinstance(value, tuple) and len(value) == 2 and
                all(isinstance(part, list) and all(type(s) is Statement for s in part)
                    for part in value))

    return [
        ("apply_stateupdater", StateUpdateMethod.apply_stateupdater, defaults.state_updaters,
         lambda value: type(value) is str),
        ("make_statements", translation.make_statements, defaults.statements, is_statements),
        ("parse_string_equations", equations.parse_string_equations, lambda: "",
         lambda value: type(value) is dict),
    ]


def _persist_substituted_expressions(store: DiskStore, defaults: BrianDefaults) -> None:
    """``Equations.get_substituted_expressions``, read from and written to ``store``.

    Brian keeps its result on the Equations object only; computing it parses
    every equation with sympy again (~40 ms for the HH model, as much as
    unpickling sympy expressions would cost). The stored list holds strings
    and Expressions, which unpickle without sympy. Brian's check against
    several calls of a stateful function (``rand() - rand()``) is still made,
    on the same expressions as Brian checks.
    """
    from brian2.equations.codestrings import Expression
    from brian2.equations.equations import SUBEXPRESSION, Equations
    from brian2.parsing.sympytools import check_expression_for_multiple_stateful_functions
    from brian2.utils.caching import _hashable

    original = Equations.get_substituted_expressions
    if getattr(original, "modelfit_code_cache", False):
        return
    kind = "substituted_expressions"

    entry_text = entry_texts(defaults.expressions)

    def key_text(equations):
        try:
            return entry_text(_hashable(equations))
        except TypeError:  # Brian's own key cannot be made either
            return None

    def well_formed(value):
        return (type(value) is list and
                all(type(item) is tuple and len(item) == 2 and type(item[0]) is str and
                    type(item[1]) is Expression for item in value))

    def get_substituted_expressions(self, variables=None, include_subexpressions=False):
        if getattr(self, "_substituted_expressions", False) is None:
            text = key_text(self)
            loaded = store.get(kind, text, MISSING) if text is not None else MISSING
            if loaded is not MISSING and well_formed(loaded):
                checked = variables or {}
                for equation in self.ordered:
                    if equation.expr is not None:
                        check_expression_for_multiple_stateful_functions(equation.expr.code,
                                                                         checked)
                for name, expression in loaded:
                    if name in self and self[name].type == SUBEXPRESSION:
                        check_expression_for_multiple_stateful_functions(expression.code,
                                                                         checked)
                self._substituted_expressions = loaded
            else:
                result = original(self, variables, include_subexpressions)
                if text is not None:
                    store.put(kind, text, list(self._substituted_expressions))
                return result
        return original(self, variables, include_subexpressions)

    get_substituted_expressions.__wrapped__ = original
    get_substituted_expressions.__doc__ = original.__doc__
    get_substituted_expressions.modelfit_code_cache = True
    Equations.get_substituted_expressions = get_substituted_expressions


def _compiler_text(compiler_exe: str) -> str:
    """What identifies a compiler: its command, the file it runs and the environment."""
    parts = [f"command:{compiler_exe}", f"machine:{platform.machine()}"]
    program = compiler_exe.split()[0] if compiler_exe.split() else ""
    found = shutil.which(program) if program else None
    if found:
        real = os.path.realpath(found)
        info = os.stat(real)
        parts.append(f"program:{real}:{info.st_size}:{info.st_mtime_ns}")
    else:
        parts.append(f"program:{program}:not found")
    parts += [f"env {name}={os.environ.get(name)!r}" for name in _COMPILER_ENVIRONMENT]
    parts += [f"config {name}={sysconfig.get_config_var(name)!r}" for name in _COMPILER_CONFIG]
    return "\n".join(parts)


class CompilerFlagCache(PersistentCache):
    """``cpp_prefs._compiler_flag_compatibility``: (compiler command, flag) -> bool."""

    def __init__(self, initial, store: DiskStore):
        super().__init__(initial, store, "compiler_flags", key_text=self._flag_text,
                         accepts=lambda value: type(value) is bool)
        self._compilers: dict[str, str] = {}

    def _flag_text(self, key):
        if not (isinstance(key, tuple) and len(key) == 2 and
                all(isinstance(part, str) for part in key)):
            return None
        compiler_exe, flag = key
        if compiler_exe not in self._compilers:
            try:
                self._compilers[compiler_exe] = _compiler_text(compiler_exe)
            except OSError:
                return None
        return f"{self._compilers[compiler_exe]}\nflag:{flag!r}"


def _persist_templates(store: DiskStore) -> None:
    """Brian's code templates, compiled by jinja2 in every process (~15 ms): jinja's
    own bytecode cache, kept in ``store`` (jinja checks the template's source
    checksum and its bytecode version when it loads an entry)."""
    import jinja2

    class TemplateBytecode(jinja2.BytecodeCache):
        def load_bytecode(self, bucket):
            data = store.get("templates", f"jinja2 {jinja2.__version__}\n{bucket.key}", None)
            if type(data) is bytes:
                bucket.bytecode_from_string(data)

        def dump_bytecode(self, bucket):
            store.put("templates", f"jinja2 {jinja2.__version__}\n{bucket.key}",
                      bucket.bytecode_to_string())

    bytecode = TemplateBytecode()
    for module, name in (("brian2.codegen.runtime.cython_rt", "CythonCodeObject"),
                         ("brian2.codegen.runtime.numpy_rt", "NumpyCodeObject"),
                         ("brian2.devices.cpp_standalone.codeobject", "CPPStandaloneCodeObject")):
        environment = getattr(getattr(getattr(sys.modules.get(module), name, None),
                                      "templater", None), "env", None)
        if isinstance(environment, jinja2.Environment) and environment.bytecode_cache is None:
            environment.bytecode_cache = bytecode


def _persist_extension_suffix(store: DiskStore) -> None:
    """The file suffix of compiled extensions, which Brian's Cython extension manager
    asks setuptools for (a Distribution and a build_ext set up, ~20 ms) in every
    process, only to name the files of its own cache."""
    manager_module = sys.modules.get("brian2.codegen.runtime.cython_rt.extension_manager")
    manager = getattr(manager_module, "cython_extension_manager", None)
    if manager is None or "_so_ext" in vars(manager):
        return
    setuptools = sys.modules.get("setuptools")
    text = (f"python:{sys.executable}\n{sys.version}\n"
            f"setuptools:{getattr(setuptools, '__version__', None)}\n"
            f"SETUPTOOLS_EXT_SUFFIX={os.environ.get('SETUPTOOLS_EXT_SUFFIX')!r}\n"
            f"EXT_SUFFIX={sysconfig.get_config_var('EXT_SUFFIX')!r}\n"
            f"platform:{sysconfig.get_platform()}")
    suffix = store.get("extension_suffix", text, None)
    if type(suffix) is str:
        manager._so_ext = suffix
        return
    try:
        suffix = manager.so_ext  # Brian's own answer, found once
    except Exception:  # noqa: BLE001 - Brian reports it where it needs the suffix
        return
    if type(suffix) is str:
        store.put("extension_suffix", text, suffix)


def freeze_heap_at_exit() -> None:
    """Skip the garbage collections of the interpreter's exit (once per process).

    At exit CPython collects garbage over every object still alive: with
    Brian, sympy, scipy and nevergrad loaded, 0.5–1 s of a fitting script
    spent after its last line. ``gc.freeze()`` run then (an ``atexit``
    handler) moves them all out of the collector's sight; nothing is frozen
    while the program runs, so no memory is held back. ``atexit`` handlers
    registered earlier (``weakref.finalize``, Brian's and dask's clean-ups)
    still run after it, and the process's memory goes back to the system
    anyway.
    """
    global _FREEZE_REGISTERED
    if not _FREEZE_REGISTERED:
        atexit.register(gc.freeze)
        _FREEZE_REGISTERED = True


_FREEZE_REGISTERED = False
_INSTALLED: DiskStore | None | bool = None  # None: not yet; False: switched off


def install() -> DiskStore | None:
    """Back Brian's caches of symbolic work by the disk cache (once per process).

    Called by the Brian backends before they generate code. Returns the store,
    or None when ``MODELFIT_CACHE=off``. What Brian already holds in memory
    is kept (and not written). Also registers :func:`freeze_heap_at_exit`
    (cache or not).
    """
    global _INSTALLED
    if _INSTALLED is not None:
        return _INSTALLED or None
    freeze_heap_at_exit()
    if is_disabled():
        _INSTALLED = False
        return None
    store = DiskStore(cache_directory())
    defaults = BrianDefaults()
    for kind, function, context, accepts in _cached_targets(defaults):
        original = getattr(function, "__wrapped__", None)
        current = getattr(original, "_cache", None)
        if type(current) is not dict:  # not Brian's cached() as we know it: leave it be
            continue
        cache = PersistentCache(current, store, kind, entry_texts(context), accepts)
        original._cache = cache
        function._cache = cache
    from brian2.codegen import cpp_prefs
    if type(getattr(cpp_prefs, "_compiler_flag_compatibility", None)) is dict:
        cpp_prefs._compiler_flag_compatibility = CompilerFlagCache(
            cpp_prefs._compiler_flag_compatibility, store)
    _persist_substituted_expressions(store, defaults)
    _persist_templates(store)
    _persist_extension_suffix(store)
    _INSTALLED = store
    return store


def installed() -> DiskStore | None:
    """The store :func:`install` put in place, if any."""
    return _INSTALLED or None
