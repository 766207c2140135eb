"""The distribution ships what the checkout has: every package, the typing marker,
the license files, and one version."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_of_the_checkout_is_in_the_distribution():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts)
             for path in (ROOT / "modelfit_core").rglob("__init__.py")}
    found |= {"modelfit_plugins" + "".join("." + part for part in
                                           path.parent.relative_to(ROOT / "plugins").parts)
              for path in (ROOT / "plugins").rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["modelfit_core"]
    assert (ROOT / "modelfit_core" / "py.typed").exists()


def test_license_and_version_have_one_source():
    project = PYPROJECT["project"]
    assert project["name"] == "modelfit-brian2"
    assert project["license"] == "CECILL-2.1 OR MIT"
    assert all(list(ROOT.glob(pattern)) for pattern in project["license-files"])
    assert project["dynamic"] == ["version"] and "version" not in project
    import modelfit_core
    from importlib.metadata import version
    assert version("modelfit-brian2") == modelfit_core.__version__


def test_exact_pins_live_in_the_constraints_file():
    requirements = PYPROJECT["project"]["dependencies"] + [
        r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra]
    assert not [r for r in requirements if "==" in r], "exact pins belong in constraints.txt"
    pins = (ROOT / "constraints.txt").read_text()
    assert "brian2==" in pins and "torch==" in pins
    example = tomllib.loads((ROOT / "examples/plugins/modelfit-example/pyproject.toml")
                            .read_text())
    assert any(r.startswith("modelfit-brian2") for r in example["project"]["dependencies"])
