"""Every module-level name of brian2modelfitting's API reference, checked against modelfit.

The names, their documented parameters and the methods documented under each class
come from the manual's API reference chapter, carried in tests/data/api_reference.json
(tests/api_reference.py reads the manual; the first test compares the file with the
manual when the manual is next to the repository). Each name must be importable
from ``modelfit_core`` (``from modelfit_core import *`` included) and from
``modelfit_core.compat.<module>``, be callable, accept the documented parameters,
and have a row in docs/compatibility.md. The behaviour of the compat layer's helpers
is tested in tests/test_compat_helpers.py.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelfit_core
from api_reference import SEEDS, from_manual, load, manual_text, parse_api_reference

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compatibility.md"

NOT_IN_STAR_IMPORT = {("tests", "run"): "it would hide Brian's run() after `from brian2 import *`"}

SIGNATURE_DIFFERENCES: dict[str, str] = {}
"""Documented in docs/compatibility.md as 'differs'; the check is expected to fail."""

PLUGIN_LIBRARIES = ("nevergrad", "skopt", "sklearn", "efel", "sbi", "torch", "dask",
                    "distributed", "cma", "pymoo", "tqdm")

PARSED, METHODS = load()
NAMES = sorted(PARSED)


def _ids(pairs):
    return [f"{module}.{name}" for module, name in pairs]


def test_the_data_file_is_what_the_manual_says():
    """tests/data/api_reference.json is the manual's API reference as tests/api_reference.py
    reads it (regenerate it with ``python tests/api_reference.py``)."""
    text = manual_text()
    if text is None:
        pytest.skip(f"the manual is not in {SEEDS}: the data file stands in for it")
    assert load(from_manual(text)) == (PARSED, METHODS), (
        "tests/data/api_reference.json differs from the manual: run "
        "`python tests/api_reference.py`")
    # the parser on what the PDF's text does: wrapped, hyphenated signatures are joined
    parsed = parse_api_reference(text)
    assert ("input_var", True) in parsed[("fitter", "Fitter")]


def test_the_data_file_holds_the_whole_reference():
    assert len(PARSED) == 43 and len(METHODS) >= 100
    assert {module for module, _ in PARSED} == {"fitter", "inferencer", "metric", "optimizer",
                                                "simulator", "tests", "utils"}
    assert ("input_var", True) in PARSED[("fitter", "Fitter")]
    assert [p for p, _ in PARSED[("utils", "callback_text")]][-1] == "additional_info"
    assert PARSED[("simulator", "RuntimeSimulator")] == []
    assert METHODS[("fitter", "TraceFitter", "optimization_iter")] == [
        ("optimizer", False), ("metric", False), ("penalty", False)]
    assert ("online_error", True) in METHODS[("fitter", "Fitter", "setup_neuron_group")]


# -- importable, callable, documented parameters ------------------------------------------
def _compat(module: str):
    return importlib.import_module(f"modelfit_core.compat.{module}")


@pytest.mark.parametrize("module, name", NAMES, ids=_ids(NAMES))
def test_the_name_is_importable_and_callable(module, name):
    value = getattr(_compat(module), name)
    assert callable(value)
    assert name in _compat(module).__all__
    if (module, name) in NOT_IN_STAR_IMPORT:
        assert name not in modelfit_core.__all__
        return
    assert getattr(modelfit_core, name) is value
    assert name in modelfit_core.__all__


def _accepts_documented_parameters(value, documented: list[tuple[str, bool]]) -> list[str]:
    """What a call written from the documented signature would get wrong (``value``: a
    callable, or its signature)."""
    signature = value if isinstance(value, inspect.Signature) else inspect.signature(value)
    parameters = signature.parameters.values()
    problems = []
    if any(p.startswith("**") for p, _ in documented) and \
            not any(p.kind is p.VAR_KEYWORD for p in parameters):
        problems.append("takes no **keywords")
    named = [p for p, _ in documented if not p.startswith("*")]
    try:
        signature.bind_partial(**{p: None for p in named})
    except TypeError as exc:
        problems.append(f"keywords {named}: {exc}")
    required = [p for p, has_default in documented if not has_default
                and not p.startswith("*")]
    try:
        bound = signature.bind(*range(len(required)))
        if list(bound.arguments)[:len(required)] != required:
            problems.append(f"positional order {list(bound.arguments)} instead of {required}")
    except TypeError as exc:
        problems.append(f"called with the documented required arguments {required}: {exc}")
    return problems


@pytest.mark.parametrize("module, name", NAMES, ids=_ids(NAMES))
def test_the_signature_accepts_the_documented_parameters(module, name):
    problems = _accepts_documented_parameters(getattr(_compat(module), name),
                                              PARSED[(module, name)])
    if name in SIGNATURE_DIFFERENCES:
        assert problems, (f"{name} now accepts the documented parameters: remove it from "
                          f"SIGNATURE_DIFFERENCES and update docs/compatibility.md")
        return
    assert not problems, problems


def _unbound_signature(function):
    """The signature of a method as called on an instance (without ``self``)."""
    signature = inspect.signature(function)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@pytest.mark.parametrize("module, name, method", sorted(METHODS),
                         ids=[".".join(key) for key in sorted(METHODS)])
def test_every_documented_method_accepts_the_documented_parameters(module, name, method):
    cls = getattr(_compat(module), name)
    function = inspect.getattr_static(cls, method, None)
    assert function is not None, f"{name} has no {method}"
    if isinstance(function, property):
        pytest.fail(f"{name}.{method} is a property, documented as a method")
    if isinstance(function, staticmethod):
        signature = inspect.signature(function.__func__)
    elif isinstance(function, classmethod):
        signature = _unbound_signature(function.__func__)
    else:
        signature = _unbound_signature(function)
    problems = _accepts_documented_parameters(signature, METHODS[(module, name, method)])
    assert not problems, problems


def test_star_import_binds_every_name_and_no_plugin_library():
    code = textwrap.dedent(f"""
        import json, sys
        from modelfit_core import *
        names = {json.dumps(sorted({n for m, n in NAMES if (m, n) not in NOT_IN_STAR_IMPORT}))}
        libraries = {PLUGIN_LIBRARIES!r}
        print(json.dumps({{
            "missing": [n for n in names if n not in globals()],
            "loaded": sorted(l for l in libraries if l in sys.modules)}}))
        """)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"missing": [], "loaded": []}


def test_compat_modules_offer_plugin_names_of_their_kind_only():
    metric = _compat("metric")
    assert metric.firing_rate is modelfit_core.firing_rate
    assert metric.MSEMetric is modelfit_core.MSEMetric
    with pytest.raises(AttributeError, match="NevergradOptimizer"):
        metric.NevergradOptimizer  # noqa: B018 - an optimizer is not a metric
    with pytest.raises(AttributeError):
        _compat("optimizer").firing_rate  # noqa: B018
    assert _compat("inferencer").get_full_namespace is _compat("fitter").get_full_namespace


# -- docs/compatibility.md ----------------------------------------------------------------
_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|(.*)\|\s*$")


def _doc_rows() -> dict[tuple[str, str], str]:
    text = DOC.read_text()
    section = text.split("## Module-level names", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            name, module, status, _notes = match.groups()
            rows[(module, name)] = status
    return rows


def test_the_compatibility_table_lists_every_name_and_only_existing_ones():
    rows = _doc_rows()
    assert set(rows) == set(NAMES)
    assert set(rows.values()) <= {"same", "extended", "differs"}
    for module, name in rows:
        assert callable(getattr(_compat(module), name)), (module, name)
    for name in SIGNATURE_DIFFERENCES:
        assert any(rows[key] == "differs" for key in rows if key[1] == name), name
    assert rows[("tests", "run")] == "differs"
    assert "## Methods and behaviours" in DOC.read_text()
