"""``fit(..., dashboard=True)``: the dashboard of the fit being run.

The dashboard is a plugin of the ``dashboards`` kind (``Dashboard`` protocol),
found through the fitter's registry like any other part: the core never
imports it. Its ``start`` serves the fit's database from another process, so
that the pages cost the fit nothing but what the database reads cost SQLite.
"""

from __future__ import annotations

from typing import Any

from modelfit_core.contracts.errors import ArgumentTypeError, ConfigurationError
from modelfit_core.contracts.protocols import Dashboard
from modelfit_core.registry.parts import DEFAULT_NAMES


def watch_with_dashboard(parts, store, dashboard: Any, current: Any = None) -> Any:
    """Start the dashboard that ``fit(dashboard=...)`` asks for, and print its address.

    Parameters
    ----------
    parts : Parts
        The fitter's parts: their registry finds the plugin.
    store : StudyStorage or None
        The fitter's storage: its study is served.
    dashboard : bool, str or Dashboard
        False or None: none (the one already running, if any, goes on); True:
        the default dashboard plugin (``"web"``); a plugin name; or a plugin
        object (e.g. one made with options such as ``port``).
    current : optional
        What an earlier ``fit()`` started (reused while it runs, for True or the
        same plugin name).

    Returns
    -------
    The running dashboard (with ``url`` and ``stop()``), or ``current``.
    """
    if dashboard is None or dashboard is False:
        return current
    if store is None:
        raise ConfigurationError(
            "dashboard=True shows the fit's study as its rounds are stored, and this "
            "fitter has no storage: create it with storage='sqlite:///fit.db' (and "
            "study='name'), or leave dashboard out.")
    url, study = getattr(store, "url", None), getattr(store, "study", None)
    if not isinstance(url, str) or not isinstance(study, str):
        raise ConfigurationError(
            f"The dashboard serves studies of a database (storage='sqlite:///fit.db'); "
            f"the storage {store!r} names none (it has no url and study).")
    if dashboard is True:
        dashboard = DEFAULT_NAMES["dashboards"]
    if isinstance(dashboard, str):
        if current is not None and getattr(current, "running", False):
            return current
        dashboard = parts.make("dashboards", dashboard)
    if not isinstance(dashboard, Dashboard):
        raise ArgumentTypeError(
            f"dashboard must be True, a dashboard plugin's name (see modelfit plugins) or "
            f"an object with serve() and start(); got {dashboard!r}.")
    running = dashboard.start(url, study=study)
    print(f"modelfit dashboard: {running.url} (study {study!r}; it stops when this "
          f"Python process ends)", flush=True)
    return running
