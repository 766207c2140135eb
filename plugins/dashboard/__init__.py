"""The web dashboard: pages about the studies of a fit database, served read-only while
fits write it (``modelfit dashboard``, ``fit(dashboard=True)``; docs/dashboard.md).

Starlette (the web application) under uvicorn (the server), Jinja2 templates
with autoescaping, plotly.js from the plotly package (served by the app: the
pages fetch nothing from the internet). Registered as the ``web`` plugin of
the ``dashboards`` kind by an entry point, like every built-in plugin; the
core never imports it.

Modules:

* ``web_dashboard``: the plugin class (``serve``, ``start``), light to import;
* ``server``: binding the socket, serving with uvicorn, the background process;
* ``app``: the routes (pages and JSON) and the safety headers;
* ``study_reader``: reading a database read-only and tolerantly, with a cache
  that reads only the rounds added since the last request;
* ``plot_data``: what each plot is sent, aggregated and thinned on the server;
* ``display_units``: values and axes in the units a user reads.
"""
