"""Meta-tests: every hook, plugin kind and entry point is documented and tested.

Fails when someone adds a hook to ``modelfit_core/contracts/hookspecs.py``, an entry point
to ``pyproject.toml`` or a contract check to ``modelfit_core/testing.py`` without
saying so in the docs, or without a test that uses it. "Tested" means run: every
hook is called by a real small fit (a recording hook plugin below), and every
built-in plugin goes through the contract check of its kind
(tests/test_plugin_contracts.py, whose cases :func:`checked_plugins` lists).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import tomllib
import types
from pathlib import Path

import pytest

from modelfit_core import hookimpl, testing
from modelfit_core.contracts import hookspecs, protocols
from modelfit_core.contracts.kinds import KINDS, PROJECT
from modelfit_core.fitting.pipeline import Pipeline

from conftest import BOUNDS
from test_plugin_contracts import checked_plugins

ROOT = Path(__file__).resolve().parents[1]
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
USER_DOCS = {path.relative_to(ROOT).as_posix(): path.read_text()
             for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
TESTS = {path.name: path.read_text() for path in sorted((ROOT / "tests").glob("*.py"))
         if path.name not in ("test_meta.py", "conftest.py")}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY_POINTS = {name: reference for group, entries in PYPROJECT["project"]["entry-points"].items()
                if group.startswith("modelfit.") and group not in ("modelfit.exports",
                                                                   "modelfit.services")
                for name, reference in entries.items()}
"""The built-in plugin classes, by entry-point name (all kinds)."""
EXAMPLE = ROOT / "examples" / "plugins" / "modelfit-example"
HOOKS = sorted(name for name in vars(hookspecs)
               if hasattr(getattr(hookspecs, name), f"{PROJECT}_spec"))


def _module_of(reference: str) -> str:
    """``"pkg.module:attr [extra]"`` -> ``"pkg.module"``."""
    return reference.split("[")[0].strip().split(":")[0]


def _tests_mentioning(*needles: str) -> list[str]:
    return [name for name, text in TESTS.items() if any(n in text for n in needles)]


def test_the_hookspecs_are_found():
    assert len(HOOKS) >= 9
    for kind in KINDS:
        assert kind.hook in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert hook in CONTRIBUTING, f"CONTRIBUTING.md does not name the hook {hook}"
    assert any(hook in text for text in USER_DOCS.values()), (
        f"neither the README nor docs/*.md names the hook {hook}")


def recording_plugin(calls: list[str]) -> types.ModuleType:
    """A hook plugin implementing every hookspec, each appending its name to ``calls``
    (registration hooks register nothing)."""
    plugin = types.ModuleType("hook_recorder")
    for hook in HOOKS:
        arguments = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
        registers = hook in hookspecs.REGISTRATION_HOOKS
        source = (f"def {hook}({arguments}):\n    calls.append({hook!r})\n"
                  + ("    return {}\n" if registers else ""))
        namespace = {"calls": calls}
        exec(source, namespace)  # noqa: S102 - a function with the hookspec's arguments
        setattr(plugin, hook, hookimpl(namespace[hook]))
    return plugin


def test_every_hook_is_called_by_a_small_fit(make_fitter, tmp_path):
    """A stored fit of two rounds calls every hook of hookspecs.py: the registration
    hooks when its parts are looked up, the lifecycle hooks as it runs."""
    calls: list[str] = []
    pipe = Pipeline.from_names(metric="mse", feedback=None, seed=1,  # no optimizer: chosen
                               plugins=[recording_plugin(calls)],
                               storage=f"sqlite:///{tmp_path / 'fit.db'}", study="hooks")
    fitter = make_fitter(pipeline=pipe, n_samples=4)
    fitter.fit(n_rounds=2, **BOUNDS)
    never = sorted(set(HOOKS) - set(calls))
    assert not never, f"hooks that a fit never calls: {never}"
    assert calls.count("modelfit_round_finished") == 2


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_every_plugin_kind_has_a_guide_and_a_test(kind):
    protocol = kind.protocol.__name__
    assert getattr(protocols, protocol) is kind.protocol
    assert f"`{protocol}`" in CONTRIBUTING, f"CONTRIBUTING.md does not explain {protocol}"
    for method in kind.required:
        assert method in CONTRIBUTING, f"CONTRIBUTING.md does not name {protocol}.{method}"
    singular = kind.singular
    assert re.search(rf"^### .*\b{singular}\b", CONTRIBUTING, re.I | re.M), (
        f"CONTRIBUTING.md has no section on writing a {singular} plugin")
    assert checked_plugins()[kind.name], f"no {singular} plugin is run by a contract check"


def test_every_protocol_is_in_the_guide():
    names = [name for name, value in vars(protocols).items()
             if isinstance(value, type) and getattr(value, "_is_protocol", False)]
    assert names
    for name in names:
        assert name in CONTRIBUTING, f"CONTRIBUTING.md does not mention the protocol {name}"


@pytest.mark.parametrize("check", [name for name in testing.__all__
                                   if name.startswith("check_")])
def test_every_contract_check_is_documented_and_tested(check):
    assert f"{check}(" in CONTRIBUTING, f"CONTRIBUTING.md does not show {check}()"
    assert _tests_mentioning(f"{check}("), f"no test calls {check}()"


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_is_documented(name):
    found = [doc for doc, text in USER_DOCS.items() if f"`{name}`" in text]
    assert found, (f"the entry point {name!r} of pyproject.toml is named (as `{name}`) "
                   f"neither in the README's plugin table nor in docs/*.md")


ENTRY_POINT_KINDS = {name: group.split(".", 1)[1]
                     for group, entries in PYPROJECT["project"]["entry-points"].items()
                     if group.startswith("modelfit.") and group not in ("modelfit.exports",
                                                                   "modelfit.services")
                     for name in entries}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_goes_through_its_contract_check(name):
    kind = ENTRY_POINT_KINDS[name]
    assert name in checked_plugins()[kind], (
        f"the {kind} plugin {name!r} is not run through the contract check of its kind in "
        f"tests/test_plugin_contracts.py")


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_names_an_existing_class(name):
    module = _module_of(ENTRY_POINTS[name])
    assert importlib.util.find_spec(module) is not None, (
        f"the entry point {name!r} names {module}, which does not exist")
    attribute = ENTRY_POINTS[name].split("[")[0].strip().partition(":")[2]
    assert attribute and isinstance(getattr(importlib.import_module(module), attribute), type)


def test_built_in_plugins_are_declared_only_by_entry_points():
    """No built-in plugin module registers through a hook: the entry points are the one
    declaration (a registration hook there would never be called)."""
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        assert "def modelfit_register_" not in path.read_text(), path


def test_the_example_distribution_is_documented():
    example = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    readme = (EXAMPLE / "README.md").read_text()
    entries = {name: reference for group, entries in example["project"]["entry-points"].items()
               if group.startswith("modelfit") for name, reference in entries.items()}
    assert entries
    for name, reference in entries.items():
        assert f"`{name}`" in readme and f"`{name}`" in USER_DOCS["docs/plugins.md"], name
        assert (EXAMPLE / "src" / (_module_of(reference).replace(".", "/") + ".py")).exists()
    assert "examples/plugins/modelfit-example" in CONTRIBUTING
