"""The manual's API reference as data: read from the manual once, carried in tests/.

The module-level names of brian2modelfitting's API reference chapter ("3.1
brian2modelfitting package" of the manual, ``../shared/seeds/001_*.txt`` next to the
repository), with their documented parameters, and the methods documented under
each class. ``tests/data/api_reference.json`` holds what this module reads from the
manual, so that tests/test_api_reference.py runs where the manual is absent; the
test there compares the file with the manual whenever the manual is present.

Regenerate the file after a change of the parser or of the manual::

    .venv/bin/python tests/api_reference.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
HEADING = "3.1 brian2modelfitting package"
DATA_FILE = Path(__file__).resolve().parent / "data" / "api_reference.json"

Parameters = list[tuple[str, bool]]
"""``[(parameter, has_default), ...]`` in the documented order."""

_ENTRY = re.compile(r"^\s*(?:class\s+)?brian2modelfitting\.(\w+)\.(\w+)(.*)$")
_METHOD = re.compile(r"^\s?([a-z_]\w*)(\(.*)$")
_PROSE_CALLS = {"func"}
"""Calls at the start of a line that are prose, not methods (``func(parameters, ...)``
in the description of ``callback``)."""


def manual_text() -> str | None:
    """The manual's text (the seed holding the API reference chapter), or None."""
    if not SEEDS.is_dir():
        return None
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(errors="replace")
        if HEADING in text:
            return text
    return None


def parse_api_reference(text: str) -> dict[tuple[str, str], Parameters]:
    """``(module, name) -> parameters`` from the API reference chapter.

    Signatures wrap over several lines in the PDF's text, breaking words with a
    hyphen (``in-`` / ``put_var``); defaults use typographic quotes (``’DE’``),
    which do not matter since only the names and whether there is a default are kept.
    """
    lines = text.split(HEADING, 1)[1].splitlines()
    found: dict[tuple[str, str], Parameters] = {}
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


def parse_api_methods(text: str) -> dict[tuple[str, str, str], Parameters]:
    """``(module, class, method) -> parameters``: the methods documented under each
    class of the API reference chapter."""
    lines = text.split(HEADING, 1)[1].splitlines()
    found: dict[tuple[str, str, str], Parameters] = {}
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


def _parameters(signature: str) -> Parameters:
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


def from_manual(text: str) -> dict:
    """What the data file holds, read from the manual's ``text``."""
    return {
        "names": [{"module": module, "name": name, "parameters": parameters}
                  for (module, name), parameters in sorted(parse_api_reference(text).items())],
        "methods": [{"module": module, "class": cls, "method": method,
                     "parameters": parameters}
                    for (module, cls, method), parameters
                    in sorted(parse_api_methods(text).items())],
    }


def _as_tuples(parameters) -> Parameters:
    return [(name, bool(has_default)) for name, has_default in parameters]


def load(data: dict | None = None) -> tuple[dict[tuple[str, str], Parameters],
                                           dict[tuple[str, str, str], Parameters]]:
    """The names and the methods, from the data file (or from ``data``, as
    :func:`from_manual` returns it)."""
    data = json.loads(DATA_FILE.read_text()) if data is None else data
    names = {(e["module"], e["name"]): _as_tuples(e["parameters"]) for e in data["names"]}
    methods = {(e["module"], e["class"], e["method"]): _as_tuples(e["parameters"])
               for e in data["methods"]}
    return names, methods


def write(text: str, path: Path = DATA_FILE) -> None:
    """Write what :func:`from_manual` reads, one name or method per line."""
    data = from_manual(text)
    lines = ["{"]
    for key in ("names", "methods"):
        entries = ",\n".join("  " + json.dumps(entry) for entry in data[key])
        lines.append(f' "{key}": [\n{entries}\n ]' + ("," if key == "names" else ""))
    lines.append("}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    manual = manual_text()
    if manual is None:
        sys.exit(f"The manual (a seed with {HEADING!r}) is not in {SEEDS}.")
    write(manual)
    names, methods = load()
    print(f"wrote {DATA_FILE}: {len(names)} names, {len(methods)} methods")
