"""Loading a built-in plugin imports none of its libraries; using the plugin does.

Every :class:`~modelfit_core.registry.plugin_registry.Registry` loads the
built-in plugin modules, so a library imported at their module level would be
paid for (seconds for torch, sbi, nevergrad or dask) by every fit, whether or
not it uses the plugin, and a missing optional library would break the loading.
Each check runs in a fresh interpreter: this process has imported them all.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"

LIBRARIES = ("nevergrad", "skopt", "sklearn", "efel", "torch", "sbi", "dask", "distributed",
             "cma", "pymoo", "pandas", "matplotlib", "tqdm", "starlette", "uvicorn", "plotly")
"""Libraries that no plugin module may import when it is loaded."""

IMPORTED_ON_USE = {
    # modules that exist to hold what needs a library, and are imported only once
    # the library is wanted
    "modelfit_plugins.backends.dask_worker_setup":
        "imported on dask workers only (a WorkerPlugin needs distributed at import)",
    "modelfit_plugins.optimizers.skopt_models":
        "subclasses skopt's estimators; imported when a SkoptOptimizer is set up",
    "modelfit_plugins.optimizers.pymoo_de":
        "subclasses pymoo's DE; imported when a PymooOptimizer('DE') starts a fit",
}

LOADED = """
def loaded(libraries):
    return sorted(lib for lib in libraries
                  if any(m == lib or m.startswith(lib + ".") for m in sys.modules))
"""

IMPORT_EACH = """
import importlib, inspect, json, sys
""" + LOADED + """
libraries, modules = json.loads(sys.argv[1])
# allowed at module level; brian2 imports matplotlib itself (through pylab), so
# what brian2 loads is set aside rather than blamed on the first plugin module
import numpy, scipy, brian2, attrs, pluggy, modelfit_core  # noqa: E401,F401
baseline = loaded(libraries)
pulled = {}
for name in modules:
    before = set(loaded(libraries))
    module = importlib.import_module(name)
    for value in list(vars(module).values()):  # what the registry and help() look at
        if inspect.isclass(value) and value.__module__ == name and \
                not issubclass(value, BaseException):
            inspect.signature(value)
    pulled[name] = sorted(set(loaded(libraries)) - before)
print(json.dumps({"baseline": baseline, "pulled": pulled}))
"""

USES = [
    # (library, what first uses it); tqdm comes first because efel imports it
    ("tqdm", "from modelfit_plugins.feedback.progressbar import ProgressBarFeedback\n"
             "bar = ProgressBarFeedback(disable=True); bar.start(1); bar.finish()"),
    # the default NevergradOptimizer() imports nevergrad when the fit starts
    ("nevergrad", "from modelfit_plugins.optimizers.nevergrad_optimizer import "
                  "NevergradOptimizer\nNevergradOptimizer().initialize(['a'], 4, 1, a=[0, 1])"),
    ("skopt", "from modelfit_plugins.optimizers.skopt_optimizer import SkoptOptimizer\n"
              "SkoptOptimizer()"),
    ("efel", "from brian2 import ms\n"
             "from modelfit_plugins.metrics.efel_features import FeatureMetric\n"
             "FeatureMetric([(5 * ms, 10 * ms)], ['spike_count'])"),
]

USE_EACH = """
import json, sys
""" + LOADED + """
uses = json.loads(sys.argv[1])
import modelfit_core  # noqa: F401
seen = {}
for library, code in uses:
    before = library in loaded([library])
    exec(code)
    seen[library] = [before, library in loaded([library])]
print(json.dumps(seen))
"""


def plugin_modules() -> list[str]:
    """Every module under plugins/, by its import name (plugins/x/y.py: modelfit_plugins.x.y)."""
    names = []
    for path in sorted(PLUGINS.rglob("*.py")):
        parts = path.relative_to(PLUGINS).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("modelfit_plugins", *parts)))
    return names


def run_python(code: str, argument) -> dict:
    completed = subprocess.run([sys.executable, "-c", code, json.dumps(argument)],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_walk_finds_the_plugin_modules():
    modules = plugin_modules()
    assert "modelfit_plugins" in modules
    assert "modelfit_plugins.optimizers.nevergrad_optimizer" in modules
    assert set(IMPORTED_ON_USE) <= set(modules), "a skipped module no longer exists"


def test_loading_a_plugin_module_imports_no_plugin_library():
    modules = [name for name in plugin_modules() if name not in IMPORTED_ON_USE]
    report = run_python(IMPORT_EACH, [LIBRARIES, modules])
    assert set(report["baseline"]) <= {"matplotlib"}, (
        f"numpy, scipy, brian2, attrs, pluggy or modelfit_core import {report['baseline']}")
    offenders = {name: libraries for name, libraries in report["pulled"].items() if libraries}
    assert not offenders, "plugin modules that import a library when loaded: " + "; ".join(
        f"{name} imports {', '.join(libraries)}" for name, libraries in offenders.items())


def test_using_a_plugin_imports_its_library():
    # skopt and efel are extras: without them, their plugins cannot be used at all
    uses = [(library, code) for library, code in USES
            if importlib.util.find_spec(library) is not None]
    seen = run_python(USE_EACH, uses)
    assert set(seen) == {library for library, _ in uses}
    for library, (before, after) in seen.items():
        assert not before, f"{library} was imported before its plugin was used"
        assert after, f"using its plugin did not import {library}"
