"""Every module-level name of brian2modelfitting's API reference, checked against modelfit.

The names and their documented parameters are read from the manual's API
reference chapter ("3.1 brian2modelfitting package" of the seed text next to
the repository); a hand-written list stands in when the seed is absent. Each
name must be importable from ``modelfit_core`` (``from modelfit_core import *``
included) and from ``modelfit_core.compat.<module>``, be callable, accept the
documented parameters, and have a row in docs/compatibility.md. The behaviour
of the compat layer's helpers is tested in tests/test_compat_helpers.py.
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

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
HEADING = "3.1 brian2modelfitting package"
DOC = ROOT / "docs" / "compatibility.md"

HAND_LIST = {
    "fitter": ["Fitter", "OnlineTraceFitter", "SpikeFitter", "TraceFitter", "get_full_namespace",
               "get_param_dic", "get_sensitivity_equations", "get_sensitivity_init",
               "get_spikes", "setup_fit"],
    "inferencer": ["Inferencer", "calc_prior", "configure_simulator", "get_full_namespace",
                   "get_param_dict"],
    "metric": ["FeatureMetric", "GammaFactor", "MSEMetric", "Metric", "SpikeMetric",
               "TraceMetric", "calc_eFEL", "firing_rate", "get_gamma_factor",
               "normalize_weights"],
    "optimizer": ["NevergradOptimizer", "Optimizer", "SkoptOptimizer", "calc_bounds"],
    "simulator": ["CPPStandaloneSimulator", "RuntimeSimulator", "Simulator",
                  "initialize_neurons", "initialize_parameter", "run_again",
                  "set_parameter_value", "set_states"],
    "tests": ["run"],
    "utils": ["ProgressBar", "callback_none", "callback_setup", "callback_text", "make_dic"],
}
"""The API reference's module-level names, by module (used when the seed is absent)."""

NOT_IN_STAR_IMPORT = {("tests", "run"): "it would hide Brian's run() after `from brian2 import *`"}

SIGNATURE_DIFFERENCES: dict[str, str] = {}
"""Documented in docs/compatibility.md as 'differs'; the check is expected to fail."""

PLUGIN_LIBRARIES = ("nevergrad", "skopt", "sklearn", "efel", "sbi", "torch", "dask",
                    "distributed", "cma", "pymoo", "tqdm")


# -- reading the API reference -----------------------------------------------------------
_ENTRY = re.compile(r"^\s*(?:class\s+)?brian2modelfitting\.(\w+)\.(\w+)(.*)$")


def _seed_text() -> str | None:
    if not SEEDS.is_dir():
        return None
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(errors="replace")
        if HEADING in text:
            return text
    return None


def parse_api_reference(text: str) -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """``(module, name) -> [(parameter, has_default), ...]`` from the API reference chapter.

    Signatures wrap over several lines in the PDF's text, breaking words with a
    hyphen (``in-`` / ``put_var``); defaults use typographic quotes (``’DE’``),
    which do not matter since only the names and whether there is a default are kept.
    """
    lines = text.split(HEADING, 1)[1].splitlines()
    found: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    index = 0
    while index < len(lines):
        match = _ENTRY.match(lines[index])
        index += 1
        if not match:
            continue
        module, name, rest = match.groups()
        signature = rest.strip()
        if signature and not signature.startswith("("):
            continue  # "brian2modelfitting.fitter module" and the like
        signature, index = _joined(signature, lines, index)
        found[(module, name)] = _parameters(signature)
    return found


_METHOD = re.compile(r"^\s?([a-z_]\w*)(\(.*)$")
_PROSE_CALLS = {"func"}
"""Calls at the start of a line that are prose, not methods (``func(parameters, ...)``
in the description of ``callback``)."""


def _parameters(signature: str) -> list[tuple[str, bool]]:
    inner = signature[1:signature.rindex(")")] if signature else ""
    parameters = []
    for part in inner.split(","):
        if part.strip():
            parameter, equals, _ = part.partition("=")
            parameters.append((parameter.strip(), bool(equals)))
    return parameters


def _joined(signature: str, lines: list[str], index: int) -> tuple[str, int]:
    """A signature wrapped over lines, hyphenated words joined; and the next line."""
    while signature.count("(") > signature.count(")") and index < len(lines):
        following = lines[index].strip()
        index += 1
        if re.search(r"[A-Za-z_]-$", signature):
            signature = signature[:-1] + following
        else:
            signature = f"{signature} {following}"
    return signature, index


def parse_api_methods(text: str) -> dict[tuple[str, str, str], list[tuple[str, bool]]]:
    """``(module, class, method) -> [(parameter, has_default), ...]``: the methods
    documented under each class of the API reference chapter."""
    lines = text.split(HEADING, 1)[1].splitlines()
    found: dict[tuple[str, str, str], list[tuple[str, bool]]] = {}
    owner = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        entry = _ENTRY.match(line)
        if entry:
            owner = entry.groups()[:2] if line.lstrip().startswith("class ") else None
            continue
        match = _METHOD.match(line)
        if owner is None or not match or match.group(1) in _PROSE_CALLS:
            continue
        signature, index = _joined(match.group(2).strip(), lines, index)
        found[(*owner, match.group(1))] = _parameters(signature)
    return found


SEED_TEXT = _seed_text()
PARSED = parse_api_reference(SEED_TEXT) if SEED_TEXT is not None else None
METHODS = parse_api_methods(SEED_TEXT) if SEED_TEXT is not None else {}
NAMES = sorted(PARSED) if PARSED is not None else sorted(
    (module, name) for module, names in HAND_LIST.items() for name in names)


def _ids(pairs):
    return [f"{module}.{name}" for module, name in pairs]


def test_the_seed_and_the_hand_list_agree():
    if PARSED is None:
        pytest.skip(f"the manual's text is not in {SEEDS} (only the hand-written list is "
                    f"checked)")
    assert len(PARSED) >= 40, "the API reference chapter was not parsed"
    hand = {(module, name) for module, names in HAND_LIST.items() for name in names}
    assert set(PARSED) == hand
    # wrapped, hyphenated signatures are joined
    assert ("input_var", True) in PARSED[("fitter", "Fitter")]
    assert [p for p, _ in PARSED[("utils", "callback_text")]][-1] == "additional_info"
    assert PARSED[("simulator", "RuntimeSimulator")] == []


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
    if PARSED is None:
        pytest.skip(f"the manual's text is not in {SEEDS}")
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


def test_every_documented_method_was_read():
    if PARSED is None:
        pytest.skip(f"the manual's text is not in {SEEDS}")
    assert len(METHODS) >= 80, "the API reference's methods were not parsed"
    assert METHODS[("fitter", "TraceFitter", "optimization_iter")] == [
        ("optimizer", False), ("metric", False), ("penalty", False)]
    assert ("online_error", True) in METHODS[("fitter", "Fitter", "setup_neuron_group")]


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
