"""Files of the code cache (see :mod:`.brian2_code_cache`): where, how written, when trusted.

One entry a file, ``<directory>/<kind>/<sha256 of kind and key text>.pickle``:
a header (``MAGIC``), the sha256 of the payload, and the payload, the pickled
``(key text, value)``. An entry is returned only if the header, the digest and
the key text all match, so a truncated, damaged or colliding file is a miss.

Values are pickled, and unpickling can run code: entries are read only from a
directory that belongs to the user (mode 0o700, made so if others could write
to it) and only from files the user owns. Writes go to a temporary file in
the entry's directory, renamed into place with ``os.replace``, so readers in
other processes see the old entry or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path

CACHE_DIR_VARIABLE = "MODELFIT_CACHE_DIR"
SWITCH_VARIABLE = "MODELFIT_CACHE"
OFF_VALUES = frozenset({"off", "0", "false", "no", "disable", "disabled"})
FORMAT_VERSION = 1
MAGIC = b"modelfit-brian2-cache %d\n" % FORMAT_VERSION
HEADER_SIZE = len(MAGIC) + 32  # the magic line, then the payload's sha256
MISSING = object()
"""What :meth:`DiskStore.get` and :class:`PersistentCache` use for "no entry"."""


def is_disabled() -> bool:
    """Whether ``MODELFIT_CACHE`` turns the disk cache off (off, 0, false, no)."""
    return os.environ.get(SWITCH_VARIABLE, "").strip().lower() in OFF_VALUES


def cache_root() -> Path:
    """``$MODELFIT_CACHE_DIR``, or ``~/.cache/modelfit`` (under ``$XDG_CACHE_HOME`` if set)."""
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "modelfit"


class DiskStore:
    """Pickled values in ``directory/<kind>/<sha256 of the key text>.pickle``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._trusted: bool | None = None  # decided when first needed
        self._uid = os.getuid() if hasattr(os, "getuid") else None

    def _owned(self, stat_result) -> bool:
        return self._uid is None or stat_result.st_uid == self._uid

    def trusted(self, create: bool = False) -> bool:
        """Whether the directory is this user's own; created (0o700) if ``create``."""
        if self._trusted is not None:
            return self._trusted
        try:
            info = os.stat(self.directory)
        except FileNotFoundError:
            if not create:
                return False  # nothing to read yet; decided when first written
            try:
                self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.directory.mkdir(mode=0o700, exist_ok=True)
                info = os.stat(self.directory)
            except OSError:
                self._trusted = False
                return False
        except OSError:
            self._trusted = False
            return False
        if not self._owned(info):
            warnings.warn(f"modelfit's code cache {self.directory} belongs to another user; "
                          f"it is neither read nor written (set {CACHE_DIR_VARIABLE} to a "
                          f"directory of your own, or {SWITCH_VARIABLE}=off).", RuntimeWarning,
                          stacklevel=2)
            self._trusted = False
            return False
        if self._uid is not None and info.st_mode & 0o077:
            try:
                os.chmod(self.directory, 0o700)
            except OSError:
                self._trusted = False
                return False
        self._trusted = True
        return True

    def path(self, kind: str, text: str) -> Path:
        """The file of the entry for ``text``."""
        digest = hashlib.sha256(f"{kind}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.directory / kind / f"{digest}.pickle"

    def get(self, kind: str, text: str, default=None):
        """The value stored for ``text``, or ``default`` (missing, foreign, damaged)."""
        if not self.trusted():
            return default
        try:
            with open(self.path(kind, text), "rb") as handle:
                if not self._owned(os.fstat(handle.fileno())):
                    return default
                data = handle.read()
        except OSError:
            return default
        if len(data) <= HEADER_SIZE or not data.startswith(MAGIC):
            return default
        payload = data[HEADER_SIZE:]
        if hashlib.sha256(payload).digest() != data[len(MAGIC):HEADER_SIZE]:
            return default
        try:
            stored_text, value = pickle.loads(payload)
        except Exception:  # noqa: BLE001 - a damaged entry is a miss, whatever it raises
            return default
        return value if stored_text == text else default

    def put(self, kind: str, text: str, value) -> bool:
        """Store ``value`` for ``text``; False (and nothing written) if that fails."""
        try:
            payload = pickle.dumps((text, value), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an unpicklable value stays in memory only
            return False
        if not self.trusted(create=True):
            return False
        path = self.path(kind, text)
        temporary = None
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(temporary, path)
            return True
        except OSError:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
            return False


class PersistentCache(dict):
    """A function's in-memory cache (a dict from keys to results), backed by a store.

    Brian's ``cached`` wrapper only asks ``key in cache``, reads ``cache[key]``
    and sets ``cache[key] = value``: here a key missing in memory is looked up
    on disk by ``in``, and a value set is also written to disk.

    Parameters
    ----------
    key_text : callable
        key -> the text the entry is stored under, or None to keep it in memory.
    accepts : callable
        value -> whether it may be stored.
    """

    def __init__(self, initial, store: DiskStore, kind: str, key_text, accepts):
        super().__init__(initial)
        self.store, self.kind = store, kind
        self._key_text, self._accepts = key_text, accepts
        self._texts: dict = {}  # key -> text, for keys looked up but not found

    def __contains__(self, key):
        if dict.__contains__(self, key):
            return True
        text = self._key_text(key)
        if text is None:
            return False
        value = self.store.get(self.kind, text, MISSING)
        if value is MISSING:
            self._texts[key] = text
            return False
        dict.__setitem__(self, key, value)
        return True

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        text = self._texts.pop(key, None)
        if text is None:
            text = self._key_text(key)
        if text is not None and self._accepts(value):
            self.store.put(self.kind, text, value)
