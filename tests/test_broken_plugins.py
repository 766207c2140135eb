"""Broken plugins: reported by name and distribution, the others still load.

Broken plugins are real distributions: ``*.dist-info`` folders with an
``entry_points.txt``, written to a temporary folder put on ``sys.path``, which
``importlib.metadata`` reads exactly as it reads installed packages.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from modelfit_core.contracts.errors import DuplicatePluginError, UnknownPluginError
from modelfit_core.registry.entry_points import DISTRIBUTION
from modelfit_core.registry.plugin_registry import PluginContractError, Registry


BROKEN = {
    # distribution: (entry points, {module: source})
    "modelfit-needs-lib": ({"needs_lib": "mf_broken_needs_lib"},
                           {"mf_broken_needs_lib": "import modelfit_no_such_library\n"}),
    "modelfit-crashes": ({"crashes": "mf_broken_crashes"},
                         {"mf_broken_crashes": "raise RuntimeError('boom at import')\n"}),
    "modelfit-wrong-shape": ({"wrong_shape": "mf_broken_shapes"}, {"mf_broken_shapes": """
        from modelfit_core import hookimpl

        class HalfOptimizer:                 # no initialize(), no recommend()
            def ask(self, n_samples): ...
            def tell(self, parameters, errors): ...

        class FeaturesOnly:                  # no calc()
            def get_features(self, model, data, dt): ...
            def get_errors(self, features): ...

        class GoodMetric:
            def calc(self, model, data, dt): ...

        class Silent:                        # instances are not callable
            pass

        class NoPrepare:
            name = "noprepare"

        class NoInfer:
            pass

        @hookimpl
        def modelfit_register_optimizers():
            return {"half": HalfOptimizer}

        @hookimpl
        def modelfit_register_metrics():
            return {"features_only": FeaturesOnly, "good_metric": GoodMetric}

        @hookimpl
        def modelfit_register_feedback():
            return {"silent": Silent}

        @hookimpl
        def modelfit_register_backends():
            return {"noprepare": NoPrepare}

        @hookimpl
        def modelfit_register_inference():
            return {"noinfer": NoInfer}
    """}),
    "modelfit-duplicate": ({"shadow": "mf_broken_shadow"}, {"mf_broken_shadow": """
        from modelfit_core import hookimpl

        class OtherMSE:
            def calc(self, model, data, dt): ...

        @hookimpl
        def modelfit_register_metrics():
            return {"mse": OtherMSE}
    """}),
    "modelfit-name-clash": ({"nevergrad": "mf_broken_clash"}, {"mf_broken_clash": """
        from modelfit_core import hookimpl

        class Quiet:
            def __call__(self, params, errors, best_params, best_error, index, info=None):
                return False

        @hookimpl
        def modelfit_register_feedback():
            return {"quiet": Quiet}
    """}),
    "modelfit-typo": ({"typo": "mf_broken_typo"}, {"mf_broken_typo": """
        from modelfit_core import hookimpl

        class Opt:
            def initialize(self, parameter_names, popsize, rounds, **bounds): ...
            def ask(self, n_samples): ...
            def tell(self, parameters, errors): ...
            def recommend(self): ...

        @hookimpl
        def modelfit_register_optimizer():   # singular: pluggy would never call it
            return {"typo_opt": Opt}
    """}),
    "modelfit-bad-arguments": ({"bad_arguments": "mf_broken_arguments"}, {"mf_broken_arguments": """
        from modelfit_core import hookimpl

        @hookimpl
        def modelfit_best_improved(fitter, best_parameters):   # no such argument
            pass
    """}),
    "modelfit-raises": ({"raises": "mf_broken_raises"}, {"mf_broken_raises": """
        from modelfit_core import hookimpl

        @hookimpl
        def modelfit_register_metrics():
            raise KeyError("no configuration")
    """}),
}


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Installs the BROKEN distributions (dist-info + modules) in a folder on sys.path."""
    for dist, (entry_points, modules) in BROKEN.items():
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            "[modelfit]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield list(BROKEN)
    for module in [m for _, modules in BROKEN.values() for m in modules]:
        sys.modules.pop(module, None)


def test_broken_plugins_are_reported_and_the_others_still_load(broken_plugins):
    registry = Registry(distributions=[DISTRIBUTION, *broken_plugins])
    statuses = registry.statuses
    # the built-ins are all there and usable
    for kind, name in (("optimizers", "nevergrad"), ("backends", "runtime"),
                       ("feedback", "text"), ("metrics", "gamma_factor")):
        registry.lookup(kind, name)
    assert statuses["nevergrad"].loaded and statuses["nevergrad"].distribution == DISTRIBUTION

    # import errors: the missing package, or the exception, with the distribution
    assert statuses["needs_lib"].distribution == "modelfit-needs-lib"
    assert "missing package 'modelfit_no_such_library'" in statuses["needs_lib"].describe()
    assert statuses["crashes"].describe() == "not loaded: RuntimeError: boom at import"

    # wrong Protocol shapes: each class rejected with a message naming the plugin,
    # its distribution and the missing methods; the good class of the same plugin works
    shape = statuses["wrong_shape"]
    assert not shape.loaded and len(shape.problems) == 5
    for kind, name, missing in (("optimizers", "half", "initialize(), recommend()"),
                                ("metrics", "features_only", "calc()"),
                                ("feedback", "silent", "__call__()"),
                                ("backends", "noprepare", "prepare()"),
                                ("inference", "noinfer", "infer()")):
        with pytest.raises(PluginContractError) as info:
            registry.lookup(kind, name)
        message = str(info.value)
        assert "plugin 'wrong_shape' (distribution 'modelfit-wrong-shape')" in message
        assert f"has no {missing}" in message
        assert any(message == p for p in shape.problems)
    assert registry.lookup("metrics", "good_metric").__name__ == "GoodMetric"

    # the same name twice: that name is unusable (both named), every other one works
    with pytest.raises(DuplicatePluginError) as info:
        registry.lookup("metrics", "mse")
    message = str(info.value)
    assert f"'mse' (distribution '{DISTRIBUTION}')" in message
    assert "'shadow' (distribution 'modelfit-duplicate')" in message
    assert "MODELFIT_DISABLE_PLUGINS=shadow" in message
    assert not statuses["shadow"].loaded and not statuses["mse"].loaded
    assert Registry(distributions=[DISTRIBUTION, *broken_plugins], disable=["shadow"]
                    ).lookup("metrics", "mse").__name__ == "MSEMetric"

    # an entry-point name that another distribution uses too: both load, the
    # built-in keeps the plain name, the other is 'distribution:name'
    assert statuses["nevergrad"].distribution == DISTRIBUTION
    assert statuses["modelfit-name-clash:nevergrad"].loaded
    assert registry.provider("feedback", "quiet") == "modelfit-name-clash:nevergrad"

    # a misspelt hook, a hook with arguments pluggy does not know, a hook that raises
    assert "PluginValidationError" in statuses["bad_arguments"].describe()
    assert "best_parameters" in statuses["bad_arguments"].describe()
    assert "did you mean modelfit_register_optimizers()" in statuses["typo"].describe()
    assert "modelfit_register_metrics() failed: KeyError" in statuses["raises"].describe()

    # an unknown name's message lists what failed
    with pytest.raises(UnknownPluginError) as info:
        registry.lookup("optimizers", "nevergard")
    assert "Did you mean 'nevergrad'?" in str(info.value)
    assert "crashes (not loaded: RuntimeError: boom at import)" in str(info.value)


def test_cli_lists_broken_plugins_with_their_distribution(broken_plugins, capsys):
    from modelfit_core.tools import cli

    assert cli.main(["plugins"]) == 0
    assert cli.main(["plugins", "--strict"]) == 1
    out = capsys.readouterr().out.split("entry point")[1]  # the first listing
    lines = out.splitlines()
    rows = {line.split()[0]: (line, lines[k + 1] if k + 1 < len(lines) else "")
            for k, line in enumerate(lines) if line and not line[0].isspace()}
    for name, dist in (("needs_lib", "modelfit-needs-lib"), ("crashes", "modelfit-crashes"),
                       ("wrong_shape", "modelfit-wrong-shape"), ("shadow", "modelfit-duplicate"),
                       ("typo", "modelfit-typo")):
        row, detail = rows[name]
        assert row.split()[1] == "FAILED" and row.rstrip().endswith(dist), row
        assert detail.strip(), f"no reason printed for {name}"
    assert "pip install modelfit_no_such_library" in rows["needs_lib"][1]
    assert rows["runtime"][0].split()[1] == "ok"
    assert rows["text"][0].split()[1] == "ok"
