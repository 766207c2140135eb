"""The public modules' ``__all__``: written out, the same whatever is installed.

``modelfit_core`` and ``modelfit_core.compat.*`` list their names in the source;
the ``TYPE_CHECKING`` imports that type checkers read name the same objects as the
lazy lookups Python runs; every class and export of modelfit's own plugins is
offered; a name whose plugin cannot be used here is a stand-in that says why, so
``from modelfit_core import *`` never breaks; third-party names are found but not
in ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import modelfit_core
from modelfit_core import PluginLoadError
from modelfit_core.public_names import UnavailableName, offered_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PUBLIC_MODULES = ["modelfit_core", "modelfit_core.testing",
                  *(f"modelfit_core.compat.{name}" for name in
                    importlib.import_module("modelfit_core.compat").MODULES)]


def _source(module: str) -> ast.Module:
    path = Path(importlib.import_module(module).__file__)
    return ast.parse(path.read_text())


def _written_all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no __all__ = [...] in the module")


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """name -> module of the imports in ``if TYPE_CHECKING:`` blocks."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
                for alias in statement.names:
                    found[alias.asname or alias.name] = statement.module
    return found


def _own_plugin_objects() -> dict[str, str]:
    """Python name -> module of every class and export modelfit's entry points declare."""
    found = {}
    for group, entries in PYPROJECT["project"]["entry-points"].items():
        if group.startswith("modelfit.") and group != "modelfit.services":  # the core's own
            for reference in entries.values():
                module, _, attribute = reference.split("[")[0].strip().partition(":")
                found[attribute] = module
    return found


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_is_written_out_and_is_what_python_sees(module):
    written = _written_all(_source(module))
    assert len(written) == len(set(written)), "a name is listed twice"
    assert list(importlib.import_module(module).__all__) == written


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_type_checkers_see_every_name_of_all(module):
    """Each name of ``__all__`` is defined or imported in the module, or imported for
    type checkers; what they import is what Python finds on first use."""
    tree = _source(module)
    typed = _type_checking_imports(tree)
    value = importlib.import_module(module)
    for name in _written_all(tree):
        if name in typed:
            target = getattr(importlib.import_module(typed[name]), name)
            assert getattr(value, name) is target, (module, name, typed[name])
        else:
            assert name in vars(value) or name == "__version__", (
                f"{module}.{name} is neither defined there nor imported for type checkers")


def test_the_package_offers_every_class_and_export_of_modelfits_plugins():
    own = _own_plugin_objects()
    assert {"MSEMetric", "NevergradOptimizer", "Inferencer", "calc_bounds"} <= set(own)
    typed = _type_checking_imports(_source("modelfit_core"))
    for name, module in own.items():
        assert name in modelfit_core.__all__, name
        assert typed.get(name) == module, (f"{name} is imported for type checkers from "
                                           f"{typed.get(name)}, its entry point says {module}")


def test_the_lazy_core_names_are_the_typed_ones():
    typed = _type_checking_imports(_source("modelfit_core"))
    core = {name: module for name, module in typed.items()
            if module.startswith("modelfit_core.")}
    lazy = vars(modelfit_core)["_CORE_NAMES"]
    assert core == lazy


STAR_IMPORT = textwrap.dedent("""
    import json, sys
    import modelfit_core
    from modelfit_core import *
    from modelfit_core.compat.metric import *
    names = dict(globals())
    try:
        FeatureMetric([], [])
    except ImportError as exc:
        error = type(exc).__name__ + ": " + str(exc)
    print(json.dumps({"all": modelfit_core.__all__,
                      "bound": sorted(n for n in modelfit_core.__all__ if n in names),
                      "stand_ins": sorted(n for n, v in names.items()
                                          if type(v).__name__ == "UnavailableName"),
                      "error": error,
                      "libraries": sorted({"efel", "sbi", "torch"} & set(sys.modules))}))
""")


def test_all_and_star_imports_do_not_depend_on_the_usable_plugins():
    """With the eFEL and sbi plugins disabled, ``__all__`` is unchanged, star imports bind
    every name, and those plugins' names are stand-ins that raise what to do."""
    completed = subprocess.run([sys.executable, "-c", STAR_IMPORT], capture_output=True,
                               text=True, timeout=120, cwd=ROOT,
                               env={**os.environ, "MODELFIT_DISABLE_PLUGINS": "efel,sbi"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    assert found["all"] == list(modelfit_core.__all__)
    assert found["bound"] == sorted(modelfit_core.__all__)
    assert found["stand_ins"] == ["FeatureMetric", "Inferencer"]
    assert found["error"].startswith("PluginLoadError: FeatureMetric cannot be used")
    assert "MODELFIT_DISABLE_PLUGINS" in found["error"]
    assert found["libraries"] == []


def test_a_stand_in_raises_the_registrys_error_when_used():
    missing = PluginLoadError("eFEL is not installed: pip install 'modelfit-brian2[efel]'")

    def find(name):
        raise missing

    stand_in = offered_name("modelfit_core", "FeatureMetric", ["FeatureMetric"], find)
    assert isinstance(stand_in, UnavailableName)
    assert "pip install 'modelfit-brian2[efel]'" in repr(stand_in)
    with pytest.raises(PluginLoadError, match=r"FeatureMetric cannot be used: eFEL") as info:
        stand_in(stim_times=[])
    assert info.value.__cause__ is missing
    with pytest.raises(PluginLoadError, match="FeatureMetric cannot be used"):
        class Subclass(stand_in):  # noqa: F841 - a class statement asks __mro_entries__
            pass
    with pytest.raises(PluginLoadError):
        stand_in.get_features  # noqa: B018
    assert not hasattr(stand_in, "__wrapped__")  # inspect and pytest probe such names
    # a name that is not offered: the registry's error, or AttributeError
    with pytest.raises(PluginLoadError):
        offered_name("modelfit_core", "Other", ["FeatureMetric"], find)
    with pytest.raises(AttributeError, match="Other"):
        offered_name("modelfit_core", "Other", ["FeatureMetric"], lambda name: None)
