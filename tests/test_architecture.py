"""The architecture rules of docs/architecture.md that import-linter cannot see.

import-linter (``lint-imports``, contracts in pyproject.toml) checks the
direction of imports between the core's layers, that the core imports no
plugin and no plugin library, and that no package has an import cycle; it runs
here (the one run of ``make test``). These tests add what is about names rather
than imports: no private name crosses a module, the core never tells plugins
apart by their class names, and it names plugin modules only for type checkers.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"modelfit_core": ROOT / "modelfit_core", "modelfit_plugins": ROOT / "plugins"}


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for folder in PACKAGES.values():
        for path in sorted(folder.rglob("*.py")):
            trees[path.relative_to(ROOT).as_posix()] = ast.parse(path.read_text(), str(path))
    return trees


MODULES = _modules()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, module globals, attributes
    assigned on ``self``/``cls`` and attrs fields."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if _private(name)}


DEFINED = {path: _defined_private_names(tree) for path, tree in MODULES.items()}
OURS = set().union(*DEFINED.values())


def test_the_architecture_linter_keeps_its_contracts():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a test requirement: pip install -e '.[test]'"
    completed = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert {c["type"] for c in contracts["contracts"]} >= {"layers", "forbidden",
                                                           "acyclic_siblings"}


@pytest.mark.parametrize("path", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(path):
    offending = [f"line {node.lineno}: from {node.module} import {alias.name}"
                 for node in ast.walk(MODULES[path]) if isinstance(node, ast.ImportFrom)
                 and (node.level > 0 or (node.module or "").split(".")[0] in PACKAGES)
                 for alias in node.names if _private(alias.name)]
    assert not offending, f"{path} imports private names: {offending}"


@pytest.mark.parametrize("path", sorted(MODULES))
def test_no_private_attribute_of_another_module_is_used(path):
    """``thing._name`` is only allowed on ``self``/``cls``, or for a private name this
    module defines itself (a class of the module handling its own instances).
    Private names that modelfit does not define (Brian's internals) are not ours."""
    offending = []
    for node in ast.walk(MODULES[path]):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if node.attr in OURS and node.attr not in DEFINED[path]:
            offending.append(f"line {node.lineno}: .{node.attr}")
    assert not offending, f"{path} uses private names of other modules: {offending}"


def _built_in_class_names() -> set[str]:
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "entry-points"]
    names = set()
    for group, entries in entry_points.items():
        # exports and services are found by their entry-point names, as plugins are
        if group.startswith("modelfit") and group not in ("modelfit.exports",
                                                           "modelfit.services"):
            for reference in entries.values():
                if reference.startswith("modelfit_core."):  # the core's own (SQLite storage)
                    continue
                attribute = reference.split("[")[0].strip().partition(":")[2]
                if attribute:
                    names.add(attribute.split(".")[-1])
    return names


def _public_name_lists(tree: ast.Module) -> set[int]:
    """ids of the string nodes of a module's ``__all__ = [...]``: the names it offers,
    plugin classes included (modelfit_core/__init__.py, compat), which tell nothing apart."""
    return {id(element) for node in tree.body if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple)) for element in node.value.elts}


def test_the_core_never_names_a_plugin_class():
    """Capabilities, not class names: no string in the core is a built-in plugin's class
    (except in a public module's ``__all__``, which lists what it offers)."""
    classes = _built_in_class_names()
    assert {"MSEMetric", "NevergradOptimizer"} <= classes
    offending = []
    for path, tree in MODULES.items():
        if not path.startswith("modelfit_core/"):
            continue
        offered = _public_name_lists(tree)
        for node in ast.walk(tree):
            if id(node) in offered:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in classes:
                offending.append(f"{path}:{node.lineno}: {node.value!r}")
            # a plugin module by name (the bare package name may appear: frames of
            # modelfit's own code are skipped when looking for the user's namespace)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith("modelfit_plugins."):
                offending.append(f"{path}:{node.lineno}: {node.value!r}")
    assert not offending, offending


def _type_checking_blocks(tree: ast.Module) -> list[ast.If]:
    return [node for node in tree.body if isinstance(node, ast.If)
            and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]


def test_the_core_imports_plugin_modules_only_for_type_checkers():
    """modelfit_core/__init__.py and the compat modules import modelfit's own plugin
    classes in ``if TYPE_CHECKING:`` blocks (never run), so that type checkers see them;
    no other import of modelfit_plugins is in the core (pyproject.toml's import-linter
    contract ignores exactly these)."""
    found, offending = [], []
    for path, tree in MODULES.items():
        if not path.startswith("modelfit_core/"):
            continue
        typing_only = {id(node) for block in _type_checking_blocks(tree)
                       for node in ast.walk(block)}
        for node in ast.walk(tree):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if not any(m.split(".")[0] == "modelfit_plugins" for m in modules):
                continue
            public_face = path == "modelfit_core/__init__.py" or \
                path.startswith("modelfit_core/compat/")
            if id(node) in typing_only and public_face:
                found.append(path)
            else:
                offending.append(f"{path}:{node.lineno}")
    assert not offending, offending
    assert "modelfit_core/__init__.py" in found

