"""The core as a user's type checker sees it.

pyright (pinned in constraints.txt; which files and how strictly: ``[tool.pyright]`` in
pyproject.toml) checks modelfit_core with no error, and resolves every public name of
``modelfit_core``, ``modelfit_core.compat.*`` and ``modelfit_core.testing`` to its real
class or function (tests/typing/public_names.py reveals each), although Python resolves
them only when first used.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_NAMES = ROOT / "tests" / "typing" / "public_names.py"
PYRIGHT = shutil.which("pyright", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def report() -> dict:
    assert PYRIGHT is not None, "pyright is a test requirement: pip install -e '.[test]'"
    completed = subprocess.run(
        [PYRIGHT, "--outputjson", "--pythonpath", sys.executable], cwd=ROOT,
        capture_output=True, text=True, timeout=600)
    assert completed.stdout.strip().startswith("{"), completed.stdout[-3000:] + \
        completed.stderr[-3000:]
    return json.loads(completed.stdout)


def _located(diagnostic: dict) -> str:
    path = Path(diagnostic["file"]).relative_to(ROOT)
    return f"{path}:{diagnostic['range']['start']['line'] + 1}: {diagnostic['message']}"


def test_the_type_checker_finds_no_error_in_the_core(report):
    problems = [_located(d) for d in report["generalDiagnostics"]
                if d["severity"] in ("error", "warning")]
    assert not problems, "\n".join(problems)
    assert report["summary"]["filesAnalyzed"] >= 50


def _revealed(report) -> dict[str, str]:
    """Public name -> the type pyright reveals for it in tests/typing/public_names.py."""
    found = {}
    for diagnostic in report["generalDiagnostics"]:
        match = re.match(r'Type of "(.+)" is "(.*)"$', diagnostic["message"], re.S)
        if diagnostic["severity"] == "information" and match:
            found[match.group(1)] = match.group(2)
    return found


def test_every_public_name_has_its_real_type(report):
    revealed = _revealed(report)
    assert revealed, "pyright revealed nothing: is tests/typing in [tool.pyright] include?"
    vague = {name: text for name, text in revealed.items()
             if text in ("Unknown", "Any") or text.startswith("Unknown |")}
    assert not vague, f"names type checkers cannot see: {vague}"
    assert revealed["modelfit_core.TraceFitter"] == "type[TraceFitter]"
    assert revealed["modelfit_core.MSEMetric"] == "type[MSEMetric]"
    assert revealed["modelfit_core.compat.inferencer.Inferencer"] == "type[Inferencer]"


def _public_modules() -> list[str]:
    tree = ast.parse(PUBLIC_NAMES.read_text())
    return [alias.name for node in tree.body if isinstance(node, ast.Import)
            for alias in node.names]


def test_the_revealed_names_are_every_public_name():
    """tests/typing/public_names.py reveals each name of each public module's __all__."""
    modules = _public_modules()
    assert {"modelfit_core", "modelfit_core.compat.metric", "modelfit_core.testing"} <= \
        set(modules)
    from modelfit_core.compat import MODULES
    assert {f"modelfit_core.compat.{name}" for name in MODULES} <= set(modules)
    written = set(re.findall(r"^reveal_type\(([\w.]+)\)$", PUBLIC_NAMES.read_text(), re.M))
    expected = {f"{module}.{name}" for module in modules
                for name in importlib.import_module(module).__all__ if name != "__version__"}
    assert written == expected


def test_the_type_checker_finds_the_plugins_folder_under_its_installed_name():
    """The editable install maps modelfit_plugins onto plugins/ with an import hook that
    static checkers cannot follow; typecheck/modelfit_plugins is that mapping as a link."""
    link = ROOT / "typecheck" / "modelfit_plugins"
    assert link.is_symlink() and link.resolve() == (ROOT / "plugins").resolve()
