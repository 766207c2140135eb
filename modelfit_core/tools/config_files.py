"""The files a configuration names (``modelfit fit CONFIG.toml``): the config file
itself, the model file, the data arrays, the output folder; each checked before it is
opened, so that a FIFO, a device (``/dev/zero``), a folder, a NUL character or a
path too long for the file system is a message naming the key and its line, never a
hang, a memory blow-up or a raw ``OSError``."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from modelfit_core.contracts.errors import ConfigurationError

FitConfig = Any
"""A :class:`modelfit_core.tools.config.FitConfig` (its ``path``, ``get`` and ``error``;
not imported: config imports this module)."""


def shown(text: str) -> str:
    """``text`` quoted for a message, cut after 60 characters."""
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def output_directory(config: FitConfig, override: str | Path | None = None) -> Path:
    """The folder ``modelfit fit`` writes to, created now so a fit never runs in vain.

    ``override`` (``--output``) is relative to the working directory, ``[fit]
    output_dir`` to the configuration file.

    Raises
    ------
    ConfigError or ConfigurationError
        If the folder is a file, lies under a file, or cannot be created or written.
    """
    if override is not None:
        path = Path(override)
    else:
        path = Path(config.get("fit", "output_dir", "results"))
        if not path.is_absolute():
            path = config.path.parent / path
    problem = unusable_folder(path)
    if problem is None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = f"cannot be created ({exc.strerror or exc})"
    if problem is None:
        return path
    if override is not None:
        raise ConfigurationError(f"--output {path}: {problem}; choose another folder.")
    raise config.error("fit", "output_dir", f"{path} {problem}; choose another folder "
                       f"(or pass --output).")


def unusable_folder(path: Path) -> str | None:
    """Why ``path`` cannot be (made) a writable folder, or None."""
    if "\x00" in str(path):
        return "cannot be created: the path holds a NUL character"
    try:
        return _unusable_existing(path)
    except OSError as exc:  # a name too long for the file system, a loop of links
        return f"cannot be created ({exc.strerror or exc})"


def _unusable_existing(path: Path) -> str | None:
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                return "exists and is a file" if folder == path else \
                    f"cannot be created: {folder} is a file"
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"cannot be written: no write permission on {folder}"
            return None
    return None


MAX_CONFIG_BYTES = 10 * 2 ** 20
"""A configuration file is a few kilobytes: anything over 10 MiB is not one."""


def shown_path(path: Path) -> str:
    """A path quoted for a message, cut after 60 characters."""
    return shown(str(path))


def unreadable_file(path: Path, max_bytes: int | None = None) -> str | None:
    """Why ``path`` cannot be read as a data file, or None: checked without opening it,
    so that a FIFO, a device (``/dev/zero``) or a folder never blocks nor fills memory."""
    text = str(path)
    if "\x00" in text:
        return "the path holds a NUL character"
    try:
        info = path.stat()
    except FileNotFoundError:
        return "the file does not exist"
    except OSError as exc:  # name too long, a file where a folder should be, permissions
        return exc.strerror or str(exc)
    if stat.S_ISDIR(info.st_mode):
        return "it is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file (a FIFO, a device or a socket)"
    if max_bytes is not None and info.st_size > max_bytes:
        return f"it holds {info.st_size} bytes, more than the {max_bytes} accepted"
    if not os.access(path, os.R_OK):
        return "no read permission"
    return None


def _data_path(config: FitConfig, section: str, key: str) -> Path:
    """The file named by ``[section] key``, relative to the config file, checked."""
    name = config.get(section, key)
    path = config.path.parent / name
    problem = unreadable_file(path)
    if problem is not None:
        raise config.error(section, key, f"cannot read {shown(str(name))}: {problem}.")
    return path.resolve()


def read_model_file(config: FitConfig) -> str:
    """The equations of ``[model] file``, relative to the config file."""
    path = _data_path(config, "model", "file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise config.error("model", "file", f"cannot read {shown_path(path)}: {exc}") \
            from None


def read_array(config: FitConfig, key: str) -> np.ndarray:
    """An (n_traces, n_steps) array from CSV (tutorial layout) or .npy, relative to the file.

    Raises
    ------
    ConfigError
        A missing file, a folder, a FIFO or device, a truncated or pickled (object)
        ``.npy``, a CSV that is not numbers; naming the key and its line.
    """
    path = _data_path(config, "data", key)
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise config.error("data", key, f"cannot read {shown_path(path)} as a .npy "
                               f"array of numbers: {exc}") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
            raise config.error("data", key, f"{shown_path(path)} holds "
                               f"{getattr(array, 'dtype', type(array).__name__)} values, "
                               f"not numbers.")
        return array.astype(float)
    import pandas as pd
    try:
        return pd.read_csv(path, index_col=0).to_numpy(dtype=float)
    except Exception as exc:  # pandas raises many types for a bad file
        raise config.error("data", key, f"cannot read {shown_path(path)} as CSV: {exc}") \
            from exc
