"""``modelfit fit CONFIG.toml``: a whole fit described in a TOML file.

Example (all sections; see docs/distributed_and_storage.md, "Command line")::

    [model]
    equations = '''
    dv/dt = (gl*(El - v) + I)/C : volt
    gl : siemens (constant)
    C : farad (constant)
    '''
    method = "exact"
    param_init = { v = "-70*mV" }
    constants = { El = "-70*mV" }

    [data]
    input = "input.csv"        # CSV (one row per trace, first column an index) or .npy
    input_variable = "I"
    input_unit = "amp"
    output = "output.csv"
    output_variable = "v"
    output_unit = "mV"
    dt = "0.1*ms"

    [fit]
    n_samples = 30
    n_rounds = 10
    optimizer = "nevergrad"
    optimizer_options = { method = "DE" }
    metric = "mse"
    backend = "runtime"
    seed = 1
    # objectives = "features"   # a Pareto front (docs/multiobjective.md); optimizer "nsga2"
    storage = "sqlite:///fit.db"
    # dashboard = true           # serve the study's pages while it runs (docs/dashboard.md)
    output_dir = "results"

    [bounds]
    gl = ["1*nS", "50*nS"]
    C = ["50*pF", "500*pF"]

Every problem is reported with the key and its line before anything runs.

Values are read as data, never executed:

* Quantities (``dt``, ``input_unit``, ``output_unit``, ``[bounds]``,
  ``constants``) are TOML numbers or strings of numbers, Brian unit names
  (``mV``, ``nS``, ``msiemens``, ``ms``, ``second``, ``um``...), ``*``, ``/``,
  ``**`` with a number as exponent (``mV**-1``), parentheses and signs:
  ``"0.1*ms"``, ``"-70*mV"``, ``"2.5e-3*siemens/cm**2"`` (grammar in
  :mod:`modelfit_core.tools.quantities`). Anything else is an error.
* ``param_init`` values and ``refractory`` may also be expressions that Brian
  reads itself (``"v_rest + 2*mV"``, ``"rand()*mV"``, ``"v > -40*mV"``):
  names, numbers, arithmetic, comparisons, ``and``/``or``/``not`` and Brian's
  functions; no attributes, subscripts, strings, lambdas or keyword arguments.
* String values of ``metric_options`` (also inside lists and tables) are plain
  names (``"mean"``, ``"AP_amplitude"``), kept as text, or quantities.
* ``n_samples`` and ``n_rounds`` are integers >= 1, ``seed`` an integer >= 0,
  ``*_options`` tables; ``feedback`` a name or ``false``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError, StorageError
from modelfit_core.model.namespace import identifiers_in
from modelfit_core.tools.config_files import (MAX_CONFIG_BYTES, read_array, read_model_file,
                                              shown_path, unreadable_file)
from modelfit_core.tools.config_files import shown as _shown
from modelfit_core.tools.quantities import (QuantityError, check_brian_expression, known_units,
                                            parse_quantity)
from modelfit_core.registry.parts import DEFAULT_NAMES, Parts

SECTIONS = {
    "model": {"equations", "file", "method", "threshold", "reset", "refractory",
              "param_init", "constants"},
    "data": {"input", "input_variable", "input_unit", "output", "output_variable",
             "output_unit", "dt"},
    "fit": {"kind", "n_samples", "n_rounds", "optimizer", "optimizer_options", "metric",
            "metric_options", "backend", "backend_options", "seed", "storage", "study",
            "output_dir", "feedback", "objectives", "dashboard"},
    "bounds": None,
}
REQUIRED = {"data": ("input", "output", "dt", "input_variable", "output_variable"),
            "fit": ("n_rounds",)}
QUANTITY_HELP = ("write a number times Brian units, e.g. \"0.1*ms\", \"-70*mV\" or "
                 "\"2e-3*siemens/cm**2\" (numbers, unit names, * / ** and parentheses only)")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ -]*", re.ASCII)


class ConfigError(ConfigurationError):
    """A problem in a configuration file, with the key and line it concerns."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TEXT = (lambda v: isinstance(v, str), "a string")
_TABLE = (lambda v: isinstance(v, dict), "a table, e.g. { method = \"DE\" }")
_QUANTITY = (lambda v: isinstance(v, str) or _number(v), f"a quantity; {QUANTITY_HELP}")
TYPES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "model": {"equations": _TEXT, "file": _TEXT, "method": _TEXT, "threshold": _TEXT,
              "reset": _TEXT, "param_init": _TABLE, "constants": _TABLE,
              "refractory": (lambda v: isinstance(v, str) or v is False,
                             "a time such as \"2*ms\", a condition such as "
                             "\"v > -40*mV\", or false")},
    "data": {"input": _TEXT, "output": _TEXT, "input_variable": _TEXT,
             "output_variable": _TEXT, "input_unit": _QUANTITY, "output_unit": _QUANTITY,
             "dt": _QUANTITY},
    "fit": {"n_samples": (lambda v: _integer(v) and v >= 1,
                          "an integer >= 1 (parameter sets simulated per round)"),
            "n_rounds": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
            "seed": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
            "kind": (lambda v: v in ("trace", "spike"), "\"trace\" or \"spike\""),
            "objectives": (lambda v: v in ("separate", "features"),
                           "\"separate\" or \"features\" (several objectives)"),
            "dashboard": (lambda v: isinstance(v, bool) or (isinstance(v, dict) and set(v)
                                                               <= {"host", "port"}),
                          "true, false, or a table { host = \"127.0.0.1\", port = 8080 }"),
            "feedback": (lambda v: isinstance(v, str) or v is False,
                         "a feedback name (\"text\", \"progressbar\") or false"),
            "optimizer_options": _TABLE, "metric_options": _TABLE, "backend_options": _TABLE,
            "optimizer": _TEXT, "metric": _TEXT, "backend": _TEXT, "storage": _TEXT,
            "study": _TEXT, "output_dir": _TEXT},
}


@attrs.define
class FitConfig:
    """A parsed configuration file: its path, text (for line numbers) and data."""

    path: Path
    text: str
    data: dict

    def line_of(self, section: str, key: str | None = None) -> int | None:
        """1-based line of ``[section]`` (or of ``key`` inside it) in the file."""
        lines = self.text.splitlines()
        in_section = False
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_section = stripped.strip("[] ") == section
                if in_section and key is None:
                    return number
                continue
            if in_section and key is not None and re.match(rf"{re.escape(key)}\s*=", stripped):
                return number
        return None

    def error(self, section: str, key: str | None, message: str,
              item: str | None = None) -> ConfigError:
        """A ConfigError naming the file, ``[section] key`` (``key.item`` inside a
        table) and its line."""
        line = None
        if key is not None and item is not None:  # [model.param_init] v = or param_init.v =
            line = self.line_of(f"{section}.{key}", item) or \
                self.line_of(section, f"{key}.{item}")
        line = line or self.line_of(section, key)
        where = f"[{section}]" + (f" {key}" if key else "") + (f".{item}" if item else "")
        at = f" (line {line})" if line else ""
        return ConfigError(f"{self.path}: {where}{at}: {message}")

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """The value of ``key`` in ``[section]``, or ``default``."""
        return self.data.get(section, {}).get(key, default)


def load_config(path: str | Path) -> FitConfig:
    """Read and check a config file: known sections and keys, their types, required keys.

    Raises
    ------
    ConfigError
        Naming the key and its line, for the first problem found.
    """
    path = Path(path)
    problem = unreadable_file(path, MAX_CONFIG_BYTES)
    if problem is not None:
        raise ConfigError(f"Cannot read config file {shown_path(path)}: {problem}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"Cannot read config file {shown_path(path)}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML for modelfit: arrays or tables nested "
                          f"too deep.") from None
    config = FitConfig(path=path, text=text, data=data)
    for section, content in data.items():
        if section not in SECTIONS:
            raise config.error(section, None, f"unknown section; use "
                               f"{', '.join(f'[{s}]' for s in SECTIONS)}.")
        if not isinstance(content, dict):
            raise config.error(section, None, f"{section} must be a section [{section}], "
                               f"not a value.")
        allowed = SECTIONS[section]
        if allowed is not None:
            for key in content:
                if key not in allowed:
                    raise config.error(section, key, f"unknown key; [{section}] takes "
                                       f"{', '.join(sorted(allowed))}.")
    for section, keys in REQUIRED.items():
        for key in keys:
            if config.get(section, key) is None:
                raise config.error(section, None, f"missing required key {key!r}.")
    for section, types in TYPES.items():
        for key, (accepts, expected) in types.items():
            value = config.get(section, key)
            if value is not None and not accepts(value):
                raise config.error(section, key, f"must be {expected}; got {value!r} "
                                   f"({_toml_type(value)}).")
    if not config.get("model", "equations") and not config.get("model", "file"):
        raise config.error("model", None, "give the model as equations = \'\'\'...\'\'\' or "
                           "file = 'model.txt'.")
    if not data.get("bounds"):
        raise config.error("bounds", None, "no [bounds]: give name = [lower, upper] for each "
                           "fitted parameter.")
    for name, pair in data["bounds"].items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise config.error("bounds", name, "give [lower, upper], e.g. [\"1*nS\", \"50*nS\"].")
    return config


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return next((text for kind, text in names.items() if isinstance(value, kind)),
                type(value).__name__)


def quantity(config: FitConfig, section: str, key: str, text: Any, item: str | None = None):
    """Read ``"0.1*ms"`` (or a TOML number) as a quantity, without evaluating any code.

    Raises
    ------
    ConfigError
        If ``text`` is not a number times Brian units; names the key and line.
    """
    if _number(text):
        if not np.isfinite(text):
            raise config.error(section, key, f"{text!r} is not a finite number.", item)
        return text
    if not isinstance(text, str):
        raise config.error(section, key, f"expected a quantity, got {text!r} "
                           f"({_toml_type(text)}); {QUANTITY_HELP}.", item)
    try:
        value = parse_quantity(text)
    except QuantityError as exc:
        raise config.error(section, key, f"cannot read {_shown(text)} as a quantity: {exc}; "
                           f"{QUANTITY_HELP}.", item) from None
    return _finite(config, section, key, text, value, item)


def _finite(config: FitConfig, section: str, key: str, text: Any, value, item=None):
    """``value`` if every number in it is finite (NaN or inf make a fit meaningless)."""
    try:
        finite = bool(np.isfinite(np.asarray(value, dtype=float)).all())
    except (TypeError, ValueError):
        return value
    if not finite:
        raise config.error(section, key, f"{_shown(str(text))} is not a finite value; NaN "
                           f"or inf would make every simulation meaningless.", item)
    return value


def brian_value(config: FitConfig, section: str, key: str, value: Any,
                item: str | None = None):
    """A quantity, or a string Brian will read as an expression (``"v_rest + 2*mV"``).

    Raises
    ------
    ConfigError
        If ``value`` is neither; names the key and line.
    """
    if not isinstance(value, str):
        return quantity(config, section, key, value, item)
    try:
        return _finite(config, section, key, value, parse_quantity(value), item)
    except QuantityError as not_quantity:
        names = identifiers_in(value)
        if names <= set(known_units()) or names & {"nan", "inf", "NaN", "Inf"}:
            # numbers and units only (or NaN/inf): a constant that is not a finite value
            raise config.error(section, key, f"cannot read {_shown(value)}: "
                               f"{not_quantity}; give a finite value such as \"-70*mV\".",
                               item) from None
        try:
            return check_brian_expression(value)
        except QuantityError as not_expression:
            raise config.error(
                section, key, f"cannot read {_shown(value)}: it is not a quantity "
                f"({not_quantity}) nor an expression for Brian ({not_expression}). Use a "
                f"quantity such as \"-70*mV\" or an expression of names, numbers, "
                f"operators and Brian's functions such as \"v_rest + 2*mV*rand()\".",
                item) from None


def option_value(config: FitConfig, key: str, value: Any, item: str):
    """A ``[fit] metric_options`` value: plain names stay text, other strings are
    quantities; lists and tables are read element by element."""
    if isinstance(value, list):
        return [option_value(config, key, v, f"{item}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: option_value(config, key, v, f"{item}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return _finite(config, "fit", key, value, value, item) if _number(value) else value
    if _PLAIN_NAME.fullmatch(value) and "__" not in value:
        return value
    try:
        return _finite(config, "fit", key, value, parse_quantity(value), item)
    except QuantityError as exc:
        raise config.error("fit", key, f"cannot read {_shown(value)}: option strings are "
                           f"plain names (letters, digits, _ and -) or quantities, and as a "
                           f"quantity: {exc}; {QUANTITY_HELP}.", item) from None


def dashboard_of(config: FitConfig):
    """What ``[fit] dashboard`` asks ``fit()`` for: False, True, or the web dashboard
    with the table's options (host, port)."""
    value = config.get("fit", "dashboard", False)
    if isinstance(value, bool):
        if value and not config.get("fit", "storage"):
            raise config.error("fit", "dashboard", "the dashboard shows the fit's database: "
                               "add storage = \"sqlite:///fit.db\" to [fit]")
        return value
    if not config.get("fit", "storage"):
        raise config.error("fit", "dashboard", "the dashboard shows the fit's database: add "
                           "storage = \"sqlite:///fit.db\" to [fit]")
    try:
        return Parts.lazy_default().make("dashboards", DEFAULT_NAMES["dashboards"], value)
    except ConfigurationError as exc:
        raise config.error("fit", "dashboard", str(exc)) from exc


def build_fitter(config: FitConfig):
    """The fitter (via a Pipeline) and the bounds described by ``config``.

    Every value is checked here, before anything is compiled or simulated.
    """
    from modelfit_core.fitting.pipeline import Pipeline
    model = config.get("model", "equations")
    if model is None:
        model = read_model_file(config)
    units = {key: quantity(config, "data", key, config.get("data", key, "1"))
             for key in ("input_unit", "output_unit")}
    dt = quantity(config, "data", "dt", config.get("data", "dt"))
    namespace = {k: quantity(config, "model", "constants", v, k)
                 for k, v in (config.get("model", "constants") or {}).items()}
    param_init = {k: brian_value(config, "model", "param_init", v, k)
                  for k, v in (config.get("model", "param_init") or {}).items()}
    bounds: dict[str, Any] = {name: [quantity(config, "bounds", name, v) for v in pair]
                              for name, pair in config.data["bounds"].items()}
    refractory = config.get("model", "refractory", False)
    if isinstance(refractory, str):
        refractory = brian_value(config, "model", "refractory", refractory)
    fit = dict(config.data.get("fit", {}))
    metric_options = {k: option_value(config, "metric_options", v, k)
                      for k, v in (fit.get("metric_options") or {}).items()}
    inputs = read_array(config, "input") * units["input_unit"]
    outputs = read_array(config, "output") * units["output_unit"]
    if fit.get("storage"):  # relative database paths are relative to the config file
        from modelfit_core.results.storage import database_path
        try:
            location = database_path(fit["storage"])
            if "\x00" in str(location):
                raise ConfigurationError("the path holds a NUL character")
            if not location.is_absolute():
                fit["storage"] = f"sqlite:///{(config.path.parent / location).resolve()}"
        except (ConfigurationError, OSError, ValueError) as exc:
            raise config.error("fit", "storage", f"cannot use {_shown(fit['storage'])}: "
                               f"{exc}") from None
    feedback = fit.get("feedback", "progressbar")
    if fit.get("objectives"):  # a multi-objective fit: NSGA-II unless named
        fit.setdefault("optimizer", "nsga2")
    try:
        pipe = Pipeline.from_names(
            optimizer=fit.get("optimizer"), metric=fit.get("metric", "mse"),
            backend=fit.get("backend", "runtime"),
            feedback=None if feedback is False else feedback,
            optimizer_options=fit.get("optimizer_options"), metric_options=metric_options,
            backend_options=fit.get("backend_options"), seed=fit.get("seed"),
            storage=fit.get("storage"), study=fit.get("study"))
    except (ConfigurationError, StorageError) as exc:
        key = "storage" if isinstance(exc, StorageError) else None
        raise config.error("fit", key, str(exc)) from exc
    kind = fit.get("kind", "trace")
    make = pipe.trace_fitter if kind == "trace" else pipe.spike_fitter
    output_variable = config.get("data", "output_variable")
    output = {output_variable: outputs} if kind == "trace" else \
        [np.asarray(row)[np.isfinite(row)] * units["output_unit"] for row in outputs]
    try:
        fitter = make(model=model, input={config.get("data", "input_variable"): inputs},
                      output=output, dt=dt, n_samples=fit.get("n_samples", 30),
                      method=config.get("model", "method"),
                      threshold=config.get("model", "threshold"),
                      reset=config.get("model", "reset"), refractory=refractory,
                      param_init=param_init, namespace=namespace)
        # a config's names are all in it: the initial values' expressions checked now
        fitter.problem.check_initial_expressions(fitter.problem.resolve_namespace())
    except StorageError as exc:
        raise config.error("fit", "storage", str(exc)) from exc
    except ConfigurationError as exc:  # the fitter's own checks: name the key they concern
        section, key = _key_of(str(exc))
        raise config.error(section, key, str(exc)) from exc
    return fitter, bounds


_KEYS_IN_MESSAGES = (("param_init", "model"), ("refractory", "model"),
                     ("threshold", "model"), ("reset", "model"), ("method", "model"),
                     ("dt", "data"), ("input", "data"), ("output", "data"))


def _key_of(message: str) -> tuple[str, str | None]:
    """The ``[section] key`` a fitter's error message is about (the first key named in
    it), or the model section for the equations themselves."""
    found = [(message.find(key), key, section) for key, section in _KEYS_IN_MESSAGES
             if re.search(rf"\b{key}\b", message)]
    if not found:
        return "model", None
    _, key, section = min(found)
    return section, key
