"""Plugin discovery: entry points, lookup by name, errors, lazy imports, the CLI."""

import importlib.metadata
import json
import subprocess
import sys
import textwrap
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfit_core import hookimpl
from modelfit_core.contracts.errors import (DuplicatePluginError, PluginContractError,
                                            PluginLoadError, UnknownPluginError)
from modelfit_core.contracts.kinds import KINDS
from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import Registry

BUILT_IN = {
    "optimizers": ["nevergrad"],
    "metrics": ["mse"],
    "backends": ["runtime"],
    "feedback": ["text", "progressbar"],
}
CORE_ENTRY_POINTS = ["runtime", "nevergrad", "mse", "text", "progressbar"]


class _DummyMetric:
    """Stands for a metric class; the registry never instantiates it."""

    def calc(self, model_results, data_results, dt):  # the Metric protocol's method
        raise NotImplementedError


def metric_plugin(module_name, names, cls=_DummyMetric):
    """A plugin module, built in code, registering ``names`` as metrics."""
    module = types.ModuleType(module_name)

    @hookimpl
    def modelfit_register_metrics():
        return {name: cls for name in names}

    module.modelfit_register_metrics = modelfit_register_metrics
    return module


@pytest.mark.parametrize("kind,name", [(kind, name) for kind, names in BUILT_IN.items()
                                       for name in names])
def test_built_in_plugins_are_found_by_name(registry, kind, name):
    """Every plugin shipped with modelfit is registered through its entry point."""
    cls = registry.lookup(kind, name)
    assert isinstance(cls, type)
    assert name in registry.names(kind)
    assert registry.statuses[registry.provider(kind, name)].loaded


def test_built_in_classes_are_the_plugin_classes(registry):
    from modelfit_plugins.backends.brian2_runtime import Brian2RuntimeBackend
    from modelfit_plugins.feedback.progressbar import ProgressBarFeedback
    from modelfit_plugins.feedback.text import TextFeedback
    from modelfit_plugins.metrics.mse import MSEMetric
    from modelfit_plugins.optimizers.nevergrad_optimizer import NevergradOptimizer

    assert registry.lookup("optimizers", "nevergrad") is NevergradOptimizer
    assert registry.lookup("metrics", "mse") is MSEMetric
    assert registry.lookup("backends", "runtime") is Brian2RuntimeBackend
    assert registry.lookup("feedback", "text") is TextFeedback
    assert registry.lookup("feedback", "progressbar") is ProgressBarFeedback


def test_unknown_name_lists_installed_names_and_suggests_closest(registry):
    with pytest.raises(UnknownPluginError) as info:
        registry.lookup("optimizers", "nevergard")
    message = str(info.value)
    assert "'nevergard'" in message
    assert "Did you mean 'nevergrad'?" in message
    assert "nevergrad, " in message.split("Installed optimizers: ")[1]


def test_unknown_name_is_a_key_error_with_a_readable_message(registry):
    """UnknownPluginError derives from KeyError but does not repr() its message."""
    with pytest.raises(KeyError) as info:
        registry.lookup("metrics", "msee")
    assert str(info.value).startswith("No metric plugin named 'msee'.")
    assert "Did you mean 'mse'?" in str(info.value)


def test_unknown_name_without_close_match_gives_no_suggestion(registry):
    with pytest.raises(UnknownPluginError) as info:
        registry.lookup("backends", "zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert "runtime" in str(info.value)


def test_unknown_kind_lists_the_kinds(registry):
    with pytest.raises(UnknownPluginError, match="optimizers, metrics, backends"):
        registry.lookup("optimiser", "nevergrad")


def test_unknown_feedback_message_spells_the_kind(registry):
    """Regression: the singular was once built as kind[:-1] ('feedbac', 'inferenc')."""
    with pytest.raises(UnknownPluginError) as info:
        registry.lookup("feedback", "progresbar")
    assert str(info.value).startswith("No feedback plugin named 'progresbar'.")
    assert "Did you mean 'progressbar'?" in str(info.value)
    with pytest.raises(UnknownPluginError, match="No inference plugin named 'x'"):
        registry.lookup("inference", "x")


def test_plugin_module_registered_in_code_is_found(registry):
    plugin = metric_plugin("my_lab_metrics", ["my_metric"])
    registry.register(plugin)
    assert registry.lookup("metrics", "my_metric") is _DummyMetric
    assert registry.provider("metrics", "my_metric") == "my_lab_metrics"
    assert registry.statuses["my_lab_metrics"].distribution == "(registered in code)"
    # the entry-point plugins are still there
    assert "mse" in registry.names("metrics")


def test_plugin_passed_to_constructor_is_found():
    plugin = metric_plugin("constructor_plugin", ["other_metric"])
    registry = Registry(load_entrypoints=False, plugins=[plugin])
    assert registry.names("metrics") == ["other_metric"]
    assert registry.names("optimizers") == []


def test_duplicate_name_raises_naming_both_plugins(registry):
    registry.register(metric_plugin("shadowing_plugin", ["mse"]))
    with pytest.raises(DuplicatePluginError) as info:
        registry.lookup("metrics", "mse")
    message = str(info.value)
    assert "'mse'" in message
    assert "shadowing_plugin" in message
    assert registry.statuses["mse"].name in message  # the entry point "mse"
    assert "MODELFIT_DISABLE_PLUGINS" in message


def test_disable_plugins_environment_variable_hides_a_plugin(monkeypatch):
    monkeypatch.setenv("MODELFIT_DISABLE_PLUGINS", "mse")
    registry = Registry(distributions=["modelfit-brian2"])
    assert "mse" not in registry.names("metrics")
    assert "mse" not in registry.statuses
    assert "nevergrad" in registry.names("optimizers")
    with pytest.raises(UnknownPluginError):
        registry.lookup("metrics", "mse")


def test_disable_argument_hides_a_plugin_and_allows_a_replacement():
    registry = Registry(distributions=["modelfit-brian2"], disable=["mse"],
                        plugins=[metric_plugin("replacement", ["mse"])])
    assert registry.lookup("metrics", "mse") is _DummyMetric


def test_distribution_filter_excludes_other_distributions():
    registry = Registry(distributions=["no-such-distribution"])
    assert registry.statuses == {}
    assert registry.names("metrics") == []


def test_broken_entry_point_does_not_break_the_others(fake_distribution, capsys):
    """A class whose module is missing is reported (with a pip hint) when it is looked
    up, the rest still load; a hook plugin whose import fails is reported at once."""
    fake_distribution("modelfit-broken", {
        "modelfit.optimizers": {"broken": "modelfit_no_such_package.plugin:Optimizer"},
        "modelfit": {"broken_hooks": "modelfit_no_such_package.hooks"}})
    registry = Registry()
    assert "broken" in registry.names("optimizers")  # known from the metadata alone
    with pytest.raises(PluginLoadError, match="missing package 'modelfit_no_such_package'"):
        registry.lookup("optimizers", "broken")
    status = registry.statuses["broken"]
    assert not status.loaded and status.missing_package == "modelfit_no_such_package"
    assert "pip install modelfit_no_such_package" in status.describe()
    assert not registry.statuses["broken_hooks"].loaded
    assert "nevergrad" in registry.names("optimizers")
    with pytest.raises(UnknownPluginError, match="failed to load: broken"):
        registry.lookup("optimizers", "nevergard")

    from modelfit_core.tools import cli
    assert cli.main(["plugins"]) == 0
    assert cli.main(["plugins", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "broken" in out and "FAILED" in out


def test_a_missing_extra_is_named_before_anything_is_imported(fake_distribution):
    """The registry reads which extra a class needs from the distribution's metadata:
    listing says so, and lookup names the extra without importing the module."""
    fake_distribution(
        "modelfit-needs-extra", {"modelfit.metrics": {"fancy": "mf_fancy:FancyMetric [fancy]"}},
        modules={"mf_fancy": "raise AssertionError('imported although a package is missing')"},
        requires=['modelfit-no-such-library>=1; extra == "fancy"'], extras=["fancy"])
    registry = Registry()
    status = registry.statuses["fancy"]
    assert not status.loaded and status.missing_package == "modelfit-no-such-library"
    assert "pip install 'modelfit-needs-extra[fancy]'" in status.describe()
    with pytest.raises(PluginLoadError, match=r"modelfit-needs-extra\[fancy\]"):
        registry.lookup("metrics", "fancy")
    assert "mf_fancy" not in sys.modules
    import modelfit_core
    modelfit_core._registry = None  # the module's registry is rebuilt with this distribution
    try:
        assert "FancyMetric" not in modelfit_core.__all__  # star imports stay possible
    finally:
        modelfit_core._registry = None


def test_class_entries_are_checked_when_first_used(fake_distribution):
    fake_distribution("modelfit-lazy", {
        "modelfit.metrics": {"half": "mf_lazy:NoCalc", "lazy_metric": "mf_lazy:LazyMetric"},
        "modelfit.optimizers": {"nevergrad": "mf_lazy:LazyMetric"}}, modules={"mf_lazy": """
        class NoCalc:
            pass

        class LazyMetric:
            def calc(self, model, data, dt): ...
        """})
    registry = Registry()
    assert {"half", "lazy_metric"} <= set(registry.names("metrics"))
    assert "mf_lazy" not in sys.modules
    assert registry.lookup("metrics", "lazy_metric").__name__ == "LazyMetric"
    assert registry.statuses["lazy_metric"].imported
    with pytest.raises(PluginContractError, match=r"no calc\(\)"):
        registry.lookup("metrics", "half")
    assert not registry.statuses["half"].loaded
    # a name another distribution registers too: unusable, both named, without importing
    with pytest.raises(DuplicatePluginError) as info:
        registry.lookup("optimizers", "nevergrad")
    assert f"'nevergrad' (distribution '{DISTRIBUTION}')" in str(info.value)
    assert "'modelfit-lazy:nevergrad' (distribution 'modelfit-lazy')" in str(info.value)


def test_discovery_imports_no_plugin():
    """Listing plugins, dir(), __all__ and a default Pipeline import no plugin library,
    and only the chosen plugins' modules; modelfit plugins imports none. The hook
    plugins (the ``modelfit`` group) are registered, so imported, with the registry:
    they must import nothing heavy."""
    code = textwrap.dedent("""
        import sys, json
        import modelfit_core
        from modelfit_core.registry.plugin_registry import Registry
        registry = Registry()
        names = {kind.name: registry.names(kind.name) for kind in KINDS}
        listed = dir(modelfit_core) + list(modelfit_core.__all__)
        statuses = registry.statuses
        before = sorted(m for m in sys.modules if m.startswith("modelfit_plugins."))
        from modelfit_core import Pipeline
        Pipeline.from_names()
        after = sorted(m for m in sys.modules if m.startswith("modelfit_plugins."))
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {
            "nevergrad", "skopt", "sklearn", "efel", "sbi", "torch", "dask", "distributed",
            "cma", "pymoo", "pandas"})
        print(json.dumps({"before": before, "after": after, "heavy": heavy,
                          "listed": "NevergradOptimizer" in listed}))
    """).replace("KINDS", "modelfit_core.contracts.kinds.KINDS")
    completed = subprocess.run([sys.executable, "-c", "import modelfit_core.contracts.kinds\n"
                                + code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout.splitlines()[-1])
    assert found["listed"]
    hook_plugins = {"modelfit_plugins", "modelfit_plugins.backends",
                    "modelfit_plugins.backends.brian2_device", "modelfit_plugins.optimizers",
                    "modelfit_plugins.optimizers.gradient_default"}
    assert set(found["before"]) <= hook_plugins
    assert set(found["after"]) <= hook_plugins | {"modelfit_plugins", "modelfit_plugins.cores",
                                   "modelfit_plugins.optimizers",
                                   "modelfit_plugins.optimizers.pymoo_optimizer",
                                   "modelfit_plugins.optimizers.pymoo_methods",
                                   "modelfit_plugins.optimizers.bounds",
                                   "modelfit_plugins.metrics", "modelfit_plugins.metrics.mse",
                                   "modelfit_plugins.backends",
                                   "modelfit_plugins.backends.brian2_runtime",
                                   "modelfit_plugins.backends.brian2_model",
                                   "modelfit_plugins.backends.brian2_code_cache",
                                   "modelfit_plugins.backends.brian2_parallel_build",
                                   "modelfit_plugins.backends.disk_cache",
                                   "modelfit_plugins.feedback",
                                   "modelfit_plugins.feedback.text",
                                   "modelfit_plugins.feedback.workers_busy"}, found["after"]
    assert found["heavy"] == []


def test_exports_are_found_by_name():
    import modelfit_core
    from modelfit_core import calc_bounds, firing_rate, get_gamma_factor

    assert {"calc_bounds", "firing_rate", "get_gamma_factor"} <= set(modelfit_core.__all__)
    assert firing_rate.__module__ == "modelfit_plugins.metrics.gamma_factor"
    assert callable(calc_bounds) and callable(get_gamma_factor)


_identifiers = st.from_regex(r"[^\W\d]\w{0,20}", fullmatch=True).filter(str.isidentifier)


@settings(max_examples=60, deadline=None)
@given(name=_identifiers)
def test_any_identifier_round_trips_as_metric_name(name):
    cls = type("GeneratedMetric", (_DummyMetric,), {})
    plugin = metric_plugin(f"plugin_for_{name}", [name], cls=cls)
    registry = Registry(load_entrypoints=False, plugins=[plugin])
    assert registry.lookup("metrics", name) is cls
    assert registry.names("metrics") == [name]
    assert registry.find_class("GeneratedMetric") is cls


def test_lazy_attributes_resolve_to_plugin_classes(registry):
    from modelfit_core import MSEMetric, NevergradOptimizer, TraceFitter
    from modelfit_core.fitting.trace_fitter import TraceFitter as CoreTraceFitter

    assert NevergradOptimizer is registry.lookup("optimizers", "nevergrad")
    assert MSEMetric is registry.lookup("metrics", "mse")
    assert TraceFitter is CoreTraceFitter


def test_star_import_names_include_plugin_classes():
    import modelfit_core

    names = modelfit_core.__all__
    for name in ("NevergradOptimizer", "MSEMetric", "TraceFitter", "Pipeline",
                 "ConfigurationError", "hookimpl"):
        assert name in names


def test_unknown_attribute_raises_attribute_error():
    import modelfit_core

    with pytest.raises(AttributeError, match="NoSuchThing"):
        modelfit_core.NoSuchThing  # noqa: B018
    assert not hasattr(modelfit_core, "_private_missing")


def test_importing_the_package_loads_neither_brian2_nor_nevergrad():
    code = "import modelfit_core, sys; print('brian2' in sys.modules, 'nevergrad' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "False"]


def test_cli_plugins_lists_every_entry_point(capsys):
    from modelfit_core.tools import cli

    assert cli.main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["entry", "point"]
    entry_points = {ep.name for kind in KINDS
                    for ep in importlib.metadata.entry_points(group=kind.entry_point_group)}
    assert set(CORE_ENTRY_POINTS) <= entry_points

    def row_of(name):
        rows = [line for line in lines[1:] if line.startswith(name)
                and line[len(name):].lstrip().split()[0] in ("ok", "FAILED")]
        assert len(rows) == 1, (name, lines)
        return rows[0], rows[0][len(name):].split()[0]

    for name in CORE_ENTRY_POINTS:
        row, state = row_of(name)
        assert state == "ok", row
        assert row.rstrip().endswith(DISTRIBUTION)
    # optional plugins are ok, or FAILED with an install hint on the next line
    for name in entry_points - set(CORE_ENTRY_POINTS):
        row, state = row_of(name)
        if state == "FAILED":
            assert "pip install" in lines[lines.index(row) + 1]
    assert "optimizer 'nevergrad'" in row_of("nevergrad")[0]
    assert "metric 'mse'" in row_of("mse")[0]
    assert "backend 'runtime'" in row_of("runtime")[0]


def test_cli_plugins_keeps_long_names_apart(fake_distribution, capsys):
    from modelfit_core.tools import cli

    fake_distribution("modelfit-long", {"modelfit.metrics": {
        "plugin_with_a_long_name": "modelfit_core.contracts.metric_bases:TraceMetric"}})
    assert cli.main(["plugins"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("plugin_with_a_long_name")]
    assert rows[0].split()[:2] == ["plugin_with_a_long_name", "ok"]


def test_cli_plugins_spells_feedback(capsys):
    """Regression: the listing once said "feedbac 'text'"."""
    from modelfit_core.tools import cli

    cli.main(["plugins"])
    assert "feedback 'text'" in capsys.readouterr().out
