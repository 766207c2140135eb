"""brian2modelfitting.tests: run the test suite from Python.

Not offered by ``from modelfit_core import *``: a script that also does
``from brian2 import *`` would lose Brian's ``run``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from modelfit_core.contracts.errors import ModelfitError

__all__ = ["run"]


class TestSuiteNotFoundError(ModelfitError, FileNotFoundError):
    """The test suite is not next to the package (it ships with the source, not the wheel)."""

    __test__ = False  # not a test class, whatever pytest's name patterns say


def default_test_directory() -> Path:
    """The ``tests`` folder of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "tests"


def run(args: Sequence[str] = (), directory: str | os.PathLike | None = None) -> bool:
    """Run modelfit's test suite with pytest; True if every test passed.

    Parameters
    ----------
    args : list of str, optional
        Further pytest arguments (``['-x', '-k', 'metric']``).
    directory : path, optional
        The tests to run; default: the ``tests`` folder of the source tree.

    Raises
    ------
    TestSuiteNotFoundError
        There is no such folder (e.g. modelfit was installed from a wheel).
    ImportError
        pytest is not installed (``pip install 'modelfit-brian2[test]'``).
    """
    try:
        import pytest
    except ImportError as exc:
        raise ImportError("Running the test suite requires pytest: "
                          "pip install 'modelfit-brian2[test]'.") from exc
    folder = default_test_directory() if directory is None else Path(directory)
    if not folder.is_dir():
        raise TestSuiteNotFoundError(f"No test suite at {folder}: the tests come with "
                                     f"modelfit's source tree, not with the installed wheel.")
    # on stderr, like pytest's own report
    sys.stderr.write(f'Running tests in "{folder}"\n')
    return pytest.main([str(folder), *args]) == 0
