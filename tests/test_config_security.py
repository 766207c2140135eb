"""Opening a configuration file never runs code; its values are typed at the door.

Quantities are read by ``modelfit_core.tools.quantities`` (numbers, Brian units,
``* / **``, parentheses, signs), strings for Brian by an allow-list of syntax.
Every classic Python sandbox escape must end in a ConfigError naming the key
and its line, and must leave no trace (the canary file).
"""

import json
import math
import os
import sqlite3

import numpy as np
import pytest
from brian2 import meter, msiemens, mV, ms, nS, psiemens, siemens
from brian2.core.namespace import DEFAULT_UNITS
from brian2.units.fundamentalunits import get_dimensions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfit_core.contracts.errors import ConfigurationError, ModelfitError
from modelfit_core.tools.cli import main
from modelfit_core.tools.config import (ConfigError, FitConfig, brian_value, build_fitter,
                                        load_config, option_value, quantity)
from modelfit_core.tools.quantities import QuantityError, check_brian_expression, parse_quantity

from config_project import passive_config, write_project

CONFIG = passive_config(n_samples=4, n_rounds=1)


@pytest.fixture
def project(tmp_path):
    currents = np.zeros((2, 100))
    currents[:, 10:] = 0.1e-9
    return write_project(tmp_path, CONFIG, currents, np.full((2, 100), -70.0))


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (JSON's escapes are TOML's, for ASCII)."""
    assert text.isascii()
    return json.dumps(text)


# Classic escapes from Python "sandboxes" built on eval() with empty builtins;
# {canary} is a file that exists only if a payload ran.
PAYLOADS = [
    "__import__('os').system('touch {canary}')",
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings']"
    "[0]()._module.__builtins__['__import__']('os').system('touch {canary}')",
    "().__class__.__bases__[0].__subclasses__()[0].__init__.__globals__",
    "(lambda: 0).__globals__['__builtins__']",
    "(lambda f: f)(1)*mV",
    "f\"{{__import__('os').system('touch {canary}')}}\"",
    "(x := 1)*mV",
    "mV.__class__.__mro__[-1].__subclasses__()",
    "open('{canary}', 'w').write('x')",
    "exec(\"import os; os.system('touch {canary}')\")",
    "eval('1')*mV",
    "getattr(mV, '__class__')",
    "globals()['__builtins__']",
    "1*mV if __import__('os').system('touch {canary}') else 2*mV",
    "mV.__reduce_ex__(2)",
    "breakpoint()",
    "[1]*mV",
    "{{}}.__class__",
    "mV.dim",
    "1*mV; import os",
    "1*mV\nimport os",
    "compile('1', '', 'eval')",
    "rand()*__import__",
    "exp(x=1)*mV",
    "[*mV]",
    "9**9**9**9",  # not an escape but a hang: exact integer powers
    "9**(9*9*9*9*9*9*9*9*9)*mV",
    "'\\x5f\\x5fimport\\x5f\\x5f'",
    "1*mV #.__class__",
]

# Where a config value becomes a quantity or reaches Brian: (old text, new text
# with {payload}, key searched for the line, key named in the message).
PLACES = {
    "dt": ('dt = "0.1*ms"', "dt = {payload}", "dt", "[data] dt"),
    "input_unit": ('input_unit = "amp"', "input_unit = {payload}", "input_unit",
                   "[data] input_unit"),
    "output_unit": ('output_unit = "mV"', "output_unit = {payload}", "output_unit",
                    "[data] output_unit"),
    "bound": ('gl = ["1*nS", "50*nS"]', 'gl = [{payload}, "50*nS"]', "gl", "[bounds] gl"),
    "constant": ('constants = { El = "-70*mV" }', "constants = {{ El = {payload} }}",
                 "constants", "[model] constants.El"),
    "param_init": ('param_init = { v = "-70*mV" }', "param_init = {{ v = {payload} }}",
                   "param_init", "[model] param_init.v"),
    "refractory": ("method = None", "refractory = {payload}", "refractory",
                   "[model] refractory"),
    "metric_option": ('feedback = "text"', 'feedback = "text"\n'
                      "metric_options = {{ t_start = {payload} }}", "metric_options",
                      "[fit] metric_options.t_start"),
}


def config_with(place: str, payload: str) -> str:
    old, new, _, _ = PLACES[place]
    text = CONFIG if place != "refractory" else CONFIG.replace(
        "param_init =", "method = None\nparam_init =")
    assert old in text
    return text.replace(old, new.format(payload=toml_string(payload)))


def line_of(text: str, key: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1)
                if line.strip().startswith(f"{key} ="))


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_sandbox_escapes_are_config_errors(project, place, payload):
    canary = project / "canary"
    text = config_with(place, payload.format(canary=canary))
    (project / "fit.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        build_fitter(load_config(project / "fit.toml"))
    message = str(info.value)
    assert PLACES[place][3] in message
    assert f"line {line_of(text, PLACES[place][2])}" in message
    assert not canary.exists()


def test_escapes_from_the_command_line_leave_no_trace(project, capsys):
    canary = project / "canary"
    payload = PAYLOADS[2].format(canary=canary)
    (project / "fit.toml").write_text(config_with("dt", payload))
    assert main(["fit", str(project / "fit.toml")]) == 2
    err = capsys.readouterr().err
    assert "[data] dt" in err and "Traceback" not in err
    assert not canary.exists()


@pytest.mark.parametrize("text, expected", [
    ("0.1*ms", 0.1 * ms), ("-70*mV", -70 * mV), ("2e-3", 2e-3), ("1.5E+2*nS", 150 * nS),
    (".5*ms", 0.5 * ms), ("mV**-1", mV ** -1), ("second**(-1)", 1 / (1000 * ms)),
    ("1/2*ms", 0.5 * ms), ("-2**2", -4.0), ("(2*nS)**2", (2 * nS) ** 2),
    ("2*(3*(4*mV))", 24 * mV), ("  -  -1 * mV ", 1 * mV), ("psiemens", psiemens),
    ("200*usiemens", 0.2 * msiemens), ("2.5e-3*siemens/cm**2", 25 * siemens / meter ** 2),
])
def test_accepted_quantities(text, expected):
    value = parse_quantity(text)
    assert get_dimensions(value) is get_dimensions(expected)
    assert float(value) == pytest.approx(float(expected))


@pytest.mark.parametrize("text, reason", [
    ("0.1*msec", "did you mean msecond"), ("mv", "did you mean mV"), ("1/0", "cannot compute"),
    ("2**3**2", "power cannot be raised"), ("mV**x", "exponent"), ("1e400", "too large"),
    ("(-8)**0.5", "finite real"), ("(" * 40 + "1" + ")" * 40, "nested deeper"),
    ("1" * 600, "longer than"), ("", "empty"), ("2 mV", "unexpected"), ("mV+1", "'+'"),
    ("1_000", "unexpected"), ("True", "not a Brian unit"), ("٣*mV", "character"),
])
def test_refused_quantities_say_why(text, reason):
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert reason in str(info.value)
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["v_rest + 2*mV", "rand()*mV", "-70*mV + 5*mV*randn()",
                                  "v > -40*mV", "tref", "not (v > 1) and t < 3*ms",
                                  "clip(v, -80*mV, 0*mV)", "x**2", "2**-n", "True"])
def test_brian_expressions_pass_unchanged(text):
    assert check_brian_expression(text) == text


def test_param_init_and_refractory_keep_brian_expressions(project):
    text = CONFIG.replace('param_init = { v = "-70*mV" }',
                          'param_init = { v = "El + 2*mV*rand()" }\nrefractory = "v > 0*mV"')
    (project / "fit.toml").write_text(text)
    fitter, _ = build_fitter(load_config(project / "fit.toml"))
    assert fitter.param_init == {"v": "El + 2*mV*rand()"}
    assert fitter.refractory == "v > 0*mV"
    text = CONFIG.replace('param_init = { v = "-70*mV" }',
                          'param_init = { v = "-70*mV" }\nrefractory = "2*ms"')
    (project / "fit.toml").write_text(text)
    fitter, _ = build_fitter(load_config(project / "fit.toml"))
    assert fitter.refractory == 2 * ms and fitter.param_init["v"] == -70 * mV


def test_metric_option_strings(project):
    config = load_config(project / "fit.toml")
    assert option_value(config, "metric_options", "mean", "combine") == "mean"
    assert option_value(config, "metric_options", "5*ms", "t_start") == 5 * ms
    assert option_value(config, "metric_options", ["AP_amplitude", ["1*ms", 2]], "x") == \
        ["AP_amplitude", [1 * ms, 2]]
    with pytest.raises(ConfigError, match=r"metric_options\.x\[1\]"):
        option_value(config, "metric_options", ["ok", "os.system"], "x")


# -- property tests -------------------------------------------------------------------
UNITS = ["mV", "nS", "uS", "msiemens", "ms", "second", "amp", "volt", "farad", "meter",
         "cm", "umetre", "pF", "nA", "Hz", "psiemens", "mmetre", "kohm", "siemens"]
numbers = st.one_of(st.integers(0, 10 ** 6).map(str),
                    st.floats(1e-12, 1e12).map(repr),
                    st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 999), st.integers(-20, 20)))
atoms = st.one_of(numbers, st.sampled_from(UNITS))


def _combine(children):
    return st.one_of(
        st.builds(lambda a, b: f"{a}*{b}", children, children),
        st.builds(lambda a, b: f"{a} / {b}", children, children),
        children.map(lambda a: f"({a})"),
        children.map(lambda a: f"-{a}"),
        children.map(lambda a: f"+ {a}"),
        st.builds(lambda a, n: f"({a})**{n}", children, st.integers(-3, 3)),
        st.builds(lambda a, n: f"({a})**({n})", children, st.sampled_from(["-1", "2", "0.5"])),
    )


well_formed = st.recursive(atoms, _combine, max_leaves=8)


def _brian_eval(text):
    # Only in this test, on generated texts of numbers, units and operators.
    return eval(text, {"__builtins__": {}}, dict(DEFAULT_UNITS))


@settings(max_examples=300, deadline=None)
@given(well_formed)
def test_well_formed_quantities_read_as_python_would(text):
    try:
        with np.errstate(all="ignore"):
            expected = _brian_eval(text)
        # Python's own arithmetic may give an exact integer beyond numpy's types
        finite = not isinstance(expected, complex) and \
            bool(np.all(np.isfinite(np.asarray(expected, dtype=float))))
    except (ArithmeticError, ValueError):
        finite = False
    if not finite:
        with pytest.raises(QuantityError):
            parse_quantity(text)
        return
    value = parse_quantity(text)
    assert get_dimensions(value) == get_dimensions(expected)
    assert math.isclose(float(np.asarray(value)), float(np.asarray(expected)),
                        rel_tol=1e-9, abs_tol=0)


DUMMY = FitConfig(path="fuzz.toml", text="[data]\ndt = 1\n", data={"data": {"dt": 1}})
grammar_soup = st.text(alphabet="0123456789.eE+-*/() mVnSsecond_ \t", max_size=80)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), grammar_soup))
def test_any_text_is_a_value_or_a_config_error(text):
    for read in (quantity, brian_value):
        try:
            read(DUMMY, "data", "dt", text)
        except ConfigError as exc:
            assert "[data] dt (line 2)" in str(exc)


FORBIDDEN = ["__", ".__class__", ".real", ".system", "[", "[0]", " lambda ", " import ",
             "lambda x: x", "import os"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.sampled_from(FORBIDDEN), st.text(max_size=30))
def test_attributes_subscripts_lambdas_imports_are_refused(before, forbidden, after):
    text = before + forbidden + after
    with pytest.raises(ConfigError):
        quantity(DUMMY, "data", "dt", text)
    with pytest.raises(ConfigError):
        brian_value(DUMMY, "data", "dt", text)


# -- types at the door ----------------------------------------------------------------
@pytest.mark.parametrize("old, new, key, message", [
    ("n_samples = 4", "n_samples = 10.7", "n_samples", "integer >= 1"),
    ("n_samples = 4", "n_samples = true", "n_samples", "a boolean"),
    ("n_samples = 4", "n_samples = 0", "n_samples", "integer >= 1"),
    ("n_samples = 4", "n_samples = -3", "n_samples", "integer >= 1"),
    ("n_samples = 4", 'n_samples = "4"', "n_samples", "a string"),
    ("n_rounds = 1", "n_rounds = 2.5", "n_rounds", "integer >= 1"),
    ("seed = 2", "seed = 1.5", "seed", "integer >= 0"),
    ("seed = 2", 'seed = "2"', "seed", "integer >= 0"),
    ("seed = 2", "seed = false", "seed", "a boolean"),
    ("seed = 2", "seed = -1", "seed", "integer >= 0"),
    ("seed = 2", 'seed = 2\noptimizer_options = "DE"', "optimizer_options", "a table"),
    ("seed = 2", "seed = 2\nmetric_options = [1, 2]", "metric_options", "a table"),
    ("seed = 2", 'seed = 2\nbackend_options = "x"', "backend_options", "a table"),
    ("seed = 2", 'seed = 2\nkind = "traces"', "kind", '"trace" or "spike"'),
    ('feedback = "text"', "feedback = 1", "feedback", "false"),
    ("seed = 2", 'seed = 2\noptimizer = ["nevergrad"]', "optimizer", "a string"),
    ('dt = "0.1*ms"', "dt = [0.1]", "dt", "a quantity"),
    ('dt = "0.1*ms"', "dt = true", "dt", "a quantity"),
    ('output_dir = "out"', "output_dir = 3", "output_dir", "a string"),
    ('param_init = { v = "-70*mV" }', 'param_init = "v"', "param_init", "a table"),
    ('param_init = { v = "-70*mV" }', 'param_init = { v = "-70*mV" }\nrefractory = 2',
     "refractory", "false"),
    ('gl = ["1*nS", "50*nS"]', 'gl = "1*nS"', "gl", "[lower, upper]"),
])
def test_wrong_types_name_key_and_line(project, old, new, key, message):
    text = CONFIG.replace(old, new)
    (project / "fit.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(project / "fit.toml")
    assert message in str(info.value) and key in str(info.value)
    assert f"line {line_of(text, key)}" in str(info.value)


@pytest.mark.parametrize("old, new, key", [
    ('gl = ["1*nS", "50*nS"]', 'gl = [true, "50*nS"]', "gl"),
    ('constants = { El = "-70*mV" }', "constants = { El = [1] }", "constants"),
    ('dt = "0.1*ms"', "dt = nan", "dt"),
])
def test_wrong_quantity_types_name_key_and_line(project, old, new, key):
    text = CONFIG.replace(old, new)
    (project / "fit.toml").write_text(text)
    with pytest.raises(ConfigError, match=rf"line {line_of(text, key)}"):
        build_fitter(load_config(project / "fit.toml"))


def test_section_written_as_a_value(project):
    (project / "fit.toml").write_text("bounds = 3\n" + CONFIG.replace("[bounds]\n", "[x]\n"))
    with pytest.raises(ConfigError, match="bounds"):
        load_config(project / "fit.toml")


# -- the output folder, before any simulation -----------------------------------------
def stored_rounds(project) -> int:
    with sqlite3.connect(project / "fit.db") as connection:
        return connection.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]


def test_output_dir_that_is_a_file_stops_before_the_fit(project, capsys):
    (project / "out").write_text("not a folder")
    assert main(["fit", str(project / "fit.toml")]) == 2
    err = capsys.readouterr().err
    assert str(project / "out") in err and "is a file" in err and "output_dir" in err
    assert stored_rounds(project) == 0


def test_output_option_under_a_file_stops_before_the_fit(project, capsys):
    (project / "blocker").write_text("")
    target = project / "blocker" / "results"
    assert main(["fit", str(project / "fit.toml"), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and str(project / "blocker") in err
    assert "Traceback" not in err
    assert stored_rounds(project) == 0


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions do not bind root")
def test_output_dir_that_cannot_be_written(project, capsys):
    locked = project / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["fit", str(project / "fit.toml"), "--output", str(locked / "x")]) == 2
    finally:
        locked.chmod(0o700)
    assert "cannot be written" in capsys.readouterr().err


def test_resume_without_storage_is_refused_before_the_fit(project, capsys):
    text = CONFIG.replace('storage = "sqlite:///fit.db"\n', "")
    (project / "fit.toml").write_text(text)
    assert main(["fit", str(project / "fit.toml"), "--resume"]) == 2
    assert 'storage = "sqlite:///fit.db"' in capsys.readouterr().err


def test_config_error_is_a_modelfit_value_error():
    assert issubclass(ConfigError, ModelfitError) and issubclass(ConfigError, ValueError)
