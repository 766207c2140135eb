"""``modelfit fit CONFIG.toml``: a whole fit described in a TOML file.

Example (all sections; see docs/cli.md)::

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
    storage = "sqlite:///fit.db"
    output_dir = "results"

    [bounds]
    gl = ["1*nS", "50*nS"]
    C = ["50*pF", "500*pF"]

Every problem is reported with the key and its line before anything runs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from modelfit_core.contracts.errors import ConfigurationError

SECTIONS = {
    "model": {"equations", "file", "method", "threshold", "reset", "refractory",
              "param_init", "constants"},
    "data": {"input", "input_variable", "input_unit", "output", "output_variable",
             "output_unit", "dt"},
    "fit": {"kind", "n_samples", "n_rounds", "optimizer", "optimizer_options", "metric",
            "metric_options", "backend", "backend_options", "seed", "storage", "study",
            "output_dir", "feedback"},
    "bounds": None,
}
REQUIRED = {"data": ("input", "output", "dt", "input_variable", "output_variable"),
            "fit": ("n_rounds",)}


class ConfigError(ConfigurationError):
    """A problem in a configuration file, with the key and line it concerns."""


@attrs.define
class FitConfig:
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

    def error(self, section: str, key: str | None, message: str) -> ConfigError:
        line = self.line_of(section, key)
        where = f"[{section}]" + (f" {key}" if key else "")
        at = f" (line {line})" if line else ""
        return ConfigError(f"{self.path}: {where}{at}: {message}")

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.data.get(section, {}).get(key, default)


def load_config(path: str | Path) -> FitConfig:
    """Read and check a config file: known sections and keys, required keys present."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    config = FitConfig(path=path, text=text, data=data)
    for section, content in data.items():
        if section not in SECTIONS:
            raise config.error(section, None, f"unknown section; use "
                               f"{', '.join(f'[{s}]' for s in SECTIONS)}.")
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
    if not config.get("model", "equations") and not config.get("model", "file"):
        raise config.error("model", None, "give the model as equations = '''...''' or "
                           "file = 'model.txt'.")
    if not data.get("bounds"):
        raise config.error("bounds", None, "no [bounds]: give name = [lower, upper] for each "
                           "fitted parameter.")
    return config


def quantity(config: FitConfig, section: str, key: str, text: Any):
    """Evaluate ``"0.1*ms"`` with Brian's units (and nothing else) in scope."""
    if isinstance(text, (int, float)):
        return text
    from brian2.core.namespace import DEFAULT_UNITS
    try:
        return eval(str(text), {"__builtins__": {}}, dict(DEFAULT_UNITS))
    except Exception as exc:
        raise config.error(section, key, f"cannot read {text!r} as a quantity ({exc}); "
                           f"write e.g. \"0.1*ms\".") from exc


def read_array(config: FitConfig, key: str) -> np.ndarray:
    """An (n_traces, n_steps) array from CSV (tutorial layout) or .npy, relative to the file."""
    name = config.get("data", key)
    path = (config.path.parent / name).resolve()
    if not path.exists():
        raise config.error("data", key, f"file {path} does not exist.")
    if path.suffix == ".npy":
        return np.load(path)
    import pandas as pd
    try:
        return pd.read_csv(path, index_col=0).to_numpy(dtype=float)
    except Exception as exc:
        raise config.error("data", key, f"cannot read {path} as CSV: {exc}") from exc


def build_fitter(config: FitConfig):
    """The fitter (via a Pipeline) and the bounds described by ``config``."""
    from modelfit_core.fitting.pipeline import Pipeline
    model = config.get("model", "equations")
    if model is None:
        model = (config.path.parent / config.get("model", "file")).read_text()
    units = {key: quantity(config, "data", key, config.get("data", key, "1"))
             for key in ("input_unit", "output_unit")}
    inputs = read_array(config, "input") * units["input_unit"]
    outputs = read_array(config, "output") * units["output_unit"]
    dt = quantity(config, "data", "dt", config.get("data", "dt"))
    namespace = {k: quantity(config, "model", "constants", v)
                 for k, v in (config.get("model", "constants") or {}).items()}
    param_init = {k: quantity(config, "model", "param_init", v)
                  for k, v in (config.get("model", "param_init") or {}).items()}
    bounds = {}
    for name, pair in config.data["bounds"].items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise config.error("bounds", name, "give [lower, upper], e.g. [\"1*nS\", \"50*nS\"].")
        bounds[name] = [quantity(config, "bounds", name, v) for v in pair]
    refractory = config.get("model", "refractory", False)
    if isinstance(refractory, str) and re.fullmatch(r"[-+0-9.eE]+\s*\*\s*\w+", refractory):
        refractory = quantity(config, "model", "refractory", refractory)
    fit = dict(config.data.get("fit", {}))
    if fit.get("storage"):  # relative database paths are relative to the config file
        from modelfit_core.results.storage import database_path
        location = database_path(fit["storage"])
        if not location.is_absolute():
            fit["storage"] = f"sqlite:///{(config.path.parent / location).resolve()}"
    try:
        pipe = Pipeline.from_names(
            optimizer=fit.get("optimizer", "nevergrad"), metric=fit.get("metric", "mse"),
            backend=fit.get("backend", "runtime"), feedback=fit.get("feedback", "progressbar"),
            optimizer_options=fit.get("optimizer_options"),
            metric_options={k: quantity(config, "fit", "metric_options", v)
                            if isinstance(v, str) and "*" in v else v
                            for k, v in (fit.get("metric_options") or {}).items()},
            backend_options=fit.get("backend_options"), seed=fit.get("seed"),
            storage=fit.get("storage"), study=fit.get("study"))
    except ConfigurationError as exc:
        raise config.error("fit", None, str(exc)) from exc
    kind = fit.get("kind", "trace")
    if kind not in ("trace", "spike"):
        raise config.error("fit", "kind", "use \"trace\" or \"spike\".")
    make = pipe.trace_fitter if kind == "trace" else pipe.spike_fitter
    output_variable = config.get("data", "output_variable")
    output = {output_variable: outputs} if kind == "trace" else \
        [np.asarray(row)[np.isfinite(row)] * units["output_unit"] for row in outputs]
    fitter = make(model=model, input={config.get("data", "input_variable"): inputs},
                  output=output, dt=dt, n_samples=int(fit.get("n_samples", 30)),
                  method=config.get("model", "method"),
                  threshold=config.get("model", "threshold"),
                  reset=config.get("model", "reset"), refractory=refractory,
                  param_init=param_init, namespace=namespace)
    return fitter, bounds
