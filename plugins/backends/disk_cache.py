"""Files of the code cache (see :mod:`.brian2_code_cache`): where, how written, when trusted.

One entry a file, ``<directory>/<kind>/<sha256 of kind and key text>.pickle``:
a header (``MAGIC``), the sha256 of the payload, and the payload: the key
text's length and UTF-8 bytes, then the pickled value. An entry is unpickled
only if the header, the digest and the key text all match, so a truncated,
damaged or colliding file is a miss.

Values are pickled, and unpickling can run code: entries are read only from a
directory that belongs to the user and that others cannot write to (checked
without following links; modelfit creates its folders 0o700 and never changes
the mode of one it did not create), and only from regular files the user owns,
opened with ``O_NOFOLLOW``. Writes go to a temporary file in
the entry's directory, renamed into place with ``os.replace``, so readers in
other processes see the old entry or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import struct
import tempfile
import warnings
from pathlib import Path

CACHE_DIR_VARIABLE = "MODELFIT_CACHE_DIR"
SWITCH_VARIABLE = "MODELFIT_CACHE"
OFF_VALUES = frozenset({"off", "0", "false", "no", "disable", "disabled"})
FORMAT_VERSION = 2
"""2: the key text before the pickle, compared before unpickling (1: inside it)."""
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
    """Pickled values in ``directory/<kind>/<sha256 of the key text>.pickle``.

    Trust. The directory and each kind's folder are checked without following
    symbolic links (``lstat``): a link, a folder of another user, or one that
    others may write to is neither read nor written; modelfit never changes the
    mode of a folder it did not create (folders it creates are 0o700). Entries
    are opened with ``O_NOFOLLOW`` and must be regular files of this user. An
    entry's key text is stored before its pickle and compared before anything
    is unpickled.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._trusted: bool | None = None  # decided when first needed
        self._uid = os.getuid() if hasattr(os, "getuid") else None
        self._warned = False

    def _owned(self, stat_result) -> bool:
        return self._uid is None or stat_result.st_uid == self._uid

    def _folder_problem(self, folder: Path) -> str | None:
        """Why ``folder`` may not hold entries (checked with lstat), or None."""
        try:
            info = os.lstat(folder)
        except OSError as exc:
            return f"it cannot be examined ({exc.strerror or exc})"
        if stat.S_ISLNK(info.st_mode):
            return "it is a symbolic link (the cache is never followed elsewhere)"
        if not stat.S_ISDIR(info.st_mode):
            return "it is not a folder"
        if not self._owned(info):
            return "it belongs to another user"
        if self._uid is not None and info.st_mode & 0o022:
            return (f"others may write to it (mode {stat.S_IMODE(info.st_mode):o}; modelfit "
                    f"does not change the mode of a folder it did not create)")
        return None

    def _refuse(self, folder: Path, problem: str) -> bool:
        if not self._warned:
            warnings.warn(f"modelfit's code cache {folder} is neither read nor written: "
                          f"{problem}. Set {CACHE_DIR_VARIABLE} to a folder of your own, or "
                          f"{SWITCH_VARIABLE}=off.", RuntimeWarning, stacklevel=3)
            self._warned = True
        return False

    def trusted(self, create: bool = False) -> bool:
        """Whether the directory is this user's own; created (0o700) if ``create``."""
        if self._trusted is not None:
            return self._trusted
        try:
            os.lstat(self.directory)
        except FileNotFoundError:
            if not create:
                return False  # nothing to read yet; decided when first written
            try:
                self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.mkdir(self.directory, 0o700)
            except FileExistsError:
                pass  # made meanwhile (by another process): checked below like any other
            except OSError:
                self._trusted = False
                return False
        except OSError:
            self._trusted = False
            return False
        problem = self._folder_problem(self.directory)
        self._trusted = problem is None or self._refuse(self.directory, problem)
        return self._trusted

    def _kind_folder(self, kind: str, create: bool) -> Path | None:
        folder = self.directory / kind
        if create:
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                pass
            except OSError:
                return None
        problem = self._folder_problem(folder)
        if problem is None:
            return folder
        if create or os.path.lexists(folder):
            self._refuse(folder, problem)
        return None

    def path(self, kind: str, text: str) -> Path:
        """The file of the entry for ``text``."""
        digest = hashlib.sha256(f"{kind}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.directory / kind / f"{digest}.pickle"

    def get(self, kind: str, text: str, default=None):
        """The value stored for ``text``, or ``default`` (missing, foreign, damaged)."""
        if not self.trusted() or self._kind_folder(kind, create=False) is None:
            return default
        try:
            descriptor = os.open(self.path(kind, text), os.O_RDONLY | _NOFOLLOW)
        except OSError:  # missing, or a symbolic link (ELOOP)
            return default
        try:
            with os.fdopen(descriptor, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not self._owned(info) or not stat.S_ISREG(info.st_mode):
                    return default
                data = handle.read()
        except OSError:
            return default
        if len(data) <= HEADER_SIZE + _LENGTH.size or not data.startswith(MAGIC):
            return default
        payload = data[HEADER_SIZE:]
        if hashlib.sha256(payload).digest() != data[len(MAGIC):HEADER_SIZE]:
            return default
        (length,) = _LENGTH.unpack_from(payload)
        key = payload[_LENGTH.size:_LENGTH.size + length]
        if key != _key_bytes(text):  # compared before anything is unpickled
            return default
        try:
            return pickle.loads(payload[_LENGTH.size + length:])
        except Exception:  # noqa: BLE001 - a damaged entry is a miss, whatever it raises
            return default

    def put(self, kind: str, text: str, value) -> bool:
        """Store ``value`` for ``text``; False (and nothing written) if that fails."""
        try:
            pickled = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an unpicklable value stays in memory only
            return False
        if not self.trusted(create=True):
            return False
        folder = self._kind_folder(kind, create=True)
        if folder is None:
            return False
        key = _key_bytes(text)
        payload = _LENGTH.pack(len(key)) + key + pickled
        path = self.path(kind, text)
        temporary = None
        try:
            # mkstemp: O_CREAT | O_EXCL, mode 0o600, in a folder checked to be ours
            descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=folder)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(temporary, path)  # replaces a planted link itself, never its target
            return True
        except OSError:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
            return False


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LENGTH = struct.Struct(">Q")
"""The length of the key text, before it in an entry's payload."""


def _key_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


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
