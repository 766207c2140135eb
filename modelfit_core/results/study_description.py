"""What a study records about its fit, and how a resumed fit is checked against it.

A study holds one fit. Resuming continues it only with the same model,
metrics, ``n_samples``, parameters and bounds (floats compared exactly),
optimizer (class, ``repr`` and seed) and outputs, and the same data: the
recordings (a content hash of each), ``dt``, the namespace's values and the
metrics' ``t_start``/``t_weights``/``normalization`` (``data``); every
difference is listed. Studies written before schema version 4 recorded no
data identity: theirs is not checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from modelfit_core.model.parameters import ParameterSpace

_BASE_UNITS = ("m", "kg", "s", "A", "K", "mol", "cd")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def dimension_json(dim) -> str:
    """Dimensions as JSON exponents of the SI base units (exact, parseable back)."""
    return json.dumps([float(dim.get_dimension(base)) for base in _BASE_UNITS])


def dimension_from_json(text: str):
    """Inverse of :func:`dimension_json`."""
    from brian2.units.fundamentalunits import get_or_create_dimension
    return get_or_create_dimension(json.loads(text))


def stable_repr(thing: Any) -> str:
    """``repr()`` without memory addresses (``<Metric object at 0x7f...>``), which
    differ in every process."""
    return _ADDRESS.sub("", repr(thing))


@attrs.frozen
class StudyDescription:
    """What a study records about its fit when it starts.

    The ``repr`` fields are compared as text when a fit resumes: an optimizer or
    metric whose ``repr`` shows its options is checked more closely.
    """

    space: ParameterSpace
    n_samples: int
    error_dim: Any
    output_names: tuple[str, ...]
    optimizer: str
    """``repr()`` of the optimizer, without memory addresses."""
    metric: str
    """``repr()`` of the metric (or of the dict of metrics), without memory addresses."""
    model: str = ""
    """Equations, threshold, reset, refractoriness and method, as text."""
    optimizer_class: str = ""
    """``module.QualifiedName`` of the optimizer's class."""
    seed: str = "None"
    """``repr()`` of the optimizer's ``seed`` attribute (None if it has none)."""
    optimizer_rounds: int = 1
    """The ``rounds`` the optimizer was initialized with (a resumed fit repeats it)."""
    first_iteration: int = 0
    """Value of the model's ``iteration`` variable in the first round."""
    objectives: tuple[str, ...] = ()
    """With several objectives (``fit(objectives=...)``): their names, in order."""
    data: tuple[tuple[str, str], ...] = ()
    """What determines an error besides the model: ``(label, text)`` pairs such as
    ``("input I", "2x200 sha256 ...")``, ``("dt", "0.0001 s")``,
    ``("namespace El", "-0.07 m^2 kg s^-3 A^-1")`` (see
    :func:`modelfit_core.fitting.study_identity.data_identity`)."""

    def row(self) -> dict[str, Any]:
        """The columns of the ``studies`` table (but name, run_id and created)."""
        space = self.space
        return {"model": self.model, "parameter_names": json.dumps(list(space.names)),
                "parameter_units": json.dumps([dimension_json(d) for d in space.dims]),
                "lower": json.dumps([float(v) for v in space.lower]),
                "upper": json.dumps([float(v) for v in space.upper]),
                "n_samples": int(self.n_samples), "error_unit": dimension_json(self.error_dim),
                "output_names": json.dumps(list(self.output_names)),
                "optimizer_class": self.optimizer_class, "optimizer": self.optimizer,
                "optimizer_seed": self.seed, "optimizer_rounds": int(self.optimizer_rounds),
                "first_iteration": int(self.first_iteration), "metric": self.metric,
                "objective_names": json.dumps(list(self.objectives)),
                "data_identity": json.dumps(dict(self.data), sort_keys=True)}

    def data_differences(self, stored_text) -> list[str]:
        """How this fit's data differ from a study's stored ``data_identity`` (JSON,
        checked by :mod:`~modelfit_core.results.stored_rows`; '' or None: not
        recorded, nothing compared)."""
        return _data_differences(stored_text, dict(self.data))

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Each way this fit differs from the ``stored`` row of a study, as text."""
        now = self.row()
        out = []
        for key, label in (("model", "model"), ("metric", "metric"),
                           ("n_samples", "n_samples"), ("output_names", "outputs"),
                           ("parameter_names", "fitted parameters"),
                           ("optimizer_class", "optimizer class"),
                           ("optimizer", "optimizer"), ("optimizer_seed", "optimizer seed"),
                           ("objective_names", "objectives")):
            if stored.get(key, "[]") != now[key]:
                quoted = key in ("model", "metric", "optimizer", "optimizer_class")
                out.append(f"{label}: stored {_shown(stored[key], quoted)}, "
                           f"now {_shown(now[key], quoted)}")
        out += self.data_differences(stored.get("data_identity"))
        if stored["parameter_names"] == now["parameter_names"]:
            names = json.loads(now["parameter_names"])
            columns = [json.loads(stored[k]) for k in ("parameter_units", "lower", "upper")]
            mine = [json.loads(now[k]) for k in ("parameter_units", "lower", "upper")]
            for k, name in enumerate(names):
                if columns[0][k] != mine[0][k]:
                    out.append(f"unit of {name}: stored {dimension_from_json(columns[0][k])}, "
                               f"now {dimension_from_json(mine[0][k])}")
                # exact: a tolerance would hide a change of a few nanosiemens
                if (columns[1][k], columns[2][k]) != (mine[1][k], mine[2][k]):
                    out.append(f"bounds of {name} (SI): stored [{columns[1][k]!r}, "
                               f"{columns[2][k]!r}], now [{mine[1][k]!r}, {mine[2][k]!r}]")
        return out


def _data_differences(stored_text, now: dict[str, str]) -> list[str]:
    if not stored_text:  # a study written before schema version 4: nothing to compare
        return []
    stored = json.loads(stored_text)
    out = []
    for label in sorted(set(stored) | set(now)):
        before, after = stored.get(label, "(none)"), now.get(label, "(none)")
        if before != after:
            out.append(f"data, {label}: stored {before}, now {after}")
    return out


def _shown(value, quoted: bool) -> str:
    text = str(value)
    if "\n" in text:
        text = " | ".join(line.strip() for line in text.strip().splitlines())
    return repr(text) if quoted else text
