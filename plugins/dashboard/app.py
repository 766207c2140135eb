"""The dashboard's web application (Starlette): pages, JSON for their plots, static files.

Pages are HTML rendered by Jinja2 with autoescaping; the plots are drawn in
the browser by plotly.js from JSON the page fetches (``/api/...``). Every
user-written text (study, parameter and output names, equations, reprs)
reaches the page escaped by Jinja2 or as ``textContent`` set by the page's
script, and plot labels are escaped for plotly (:func:`plot_data.label`).
Each response carries a Content-Security-Policy that allows scripts from this
server only (no inline script), so even text that escaped all that could not
run.

A request that fails (the database gone, damaged, or holding what modelfit
never writes) is answered with the error, as a page or as JSON; the server
goes on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from modelfit_core.contracts.errors import ModelfitError

from modelfit_plugins.dashboard import plot_data
from modelfit_plugins.dashboard.display_units import SECOND, format_value, unit_symbol
from modelfit_plugins.dashboard.study_reader import DatabaseReader, StudyNotFound, age_text

HERE = Path(__file__).parent
LOG = logging.getLogger("modelfit.dashboard")
POLL_INTERVAL_MS = 400
"""How often an open page asks whether the study changed (one indexed query)."""
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
     b"form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def _plotly_js() -> tuple[bytes, str]:
    """plotly.js as the plotly package ships it, and its version."""
    from plotly.offline import get_plotlyjs
    text = get_plotlyjs()
    version = text[:200].split("plotly.js v", 1)[-1].split()[0] if "plotly.js v" in \
        text[:200] else hashlib.sha256(text.encode()).hexdigest()[:12]
    return text.encode(), version


def create_app(storage: str, *, default_study: str | None = None,
               allowed_hosts: list[str] | None = None, prewarm: bool = True):
    """The Starlette application serving the fit database ``storage`` read-only.

    Parameters
    ----------
    storage : str
        ``sqlite:///fit.db`` or a path.
    default_study : str, optional
        The study ``/`` leads to first (``modelfit dashboard --study``).
    allowed_hosts : list of str, optional
        Host names requests may be addressed to (a page of another site
        cannot reach this server through DNS rebinding); None: any.
    prewarm : bool
        Read every study in a background thread as the server starts.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.routing import Route
    from starlette.templating import Jinja2Templates

    import pandas  # noqa: F401 (the bulk reader's parser: imported now, not by a request)
    reader = DatabaseReader(storage)
    if prewarm:  # read every study once now, so that the first page finds them read
        threading.Thread(target=_prewarm, args=(reader,), daemon=True).start()
    environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                              autoescape=select_autoescape(["html"], default=True))
    templates = Jinja2Templates(env=environment)
    plotly_bytes, plotly_version = _plotly_js()
    plotly_gzip = gzip.compress(plotly_bytes, compresslevel=6)
    static_files = {path.name: path.read_bytes() for path in (HERE / "static").iterdir()
                    if path.suffix in (".js", ".css")}
    asset_version = hashlib.sha256(b"".join(static_files[k] for k in sorted(static_files))) \
        .hexdigest()[:10]

    class SafeJSON(JSONResponse):
        def render(self, content) -> bytes:
            return json.dumps(_safe(content), allow_nan=False, separators=(",", ":"),
                              ensure_ascii=False).encode("utf-8")

    def page(request, template: str, status_code: int = 200, **context):
        context.update(database=str(reader.path), plotly_version=plotly_version,
                       asset_version=asset_version, poll_ms=POLL_INTERVAL_MS)
        return templates.TemplateResponse(request, template, context,
                                          status_code=status_code,
                                          headers={"cache-control": "no-store"})

    def error_page(request, message: str, status_code: int):
        return page(request, "error.html", status_code=status_code, message=message)

    def api_error(message: str, status_code: int):
        return SafeJSON({"error": message}, status_code=status_code,
                        headers={"cache-control": "no-store"})

    def guarded(handler, json_api: bool):
        """Answer any failure with its message (the server keeps serving)."""
        def endpoint(request: Request):
            try:
                return handler(request)
            except StudyNotFound as exc:
                message = f"There is no study {exc.args[0]!r} in {reader.path}."
                return api_error(message, 404) if json_api else error_page(request, message,
                                                                           404)
            except (ModelfitError, ValueError, TypeError, OverflowError, KeyError,
                    IndexError, OSError, MemoryError) as exc:
                message = f"{exc}" if isinstance(exc, ModelfitError) else \
                    f"The fit database {reader.path} holds what this dashboard cannot read " \
                    f"({type(exc).__name__}: {exc})."
                LOG.warning("%s: %s", request.url.path, message)
                return api_error(message, 503) if json_api else error_page(request, message,
                                                                           503)
        return endpoint

    def name_of(request, key: str = "name") -> str:
        name = request.query_params.get(key)
        if name is None:
            raise StudyNotFound("(none given)")
        return name

    # -- pages -------------------------------------------------------------------------
    def studies_page(request):
        if default_study is not None and request.query_params.get("all") is None:
            return RedirectResponse(f"/study?{_query(name=default_study)}", status_code=307)
        summaries = reader.summaries()
        return page(request, "studies.html", studies=[_summary_row(s) for s in summaries])

    def study_page(request):
        name = name_of(request)
        with reader.connection() as connection:
            cache = reader.cache(connection, name)
            details = reader.details(connection, name)
        return page(request, "study.html", name=name,
                    description=_description(cache.info, details),
                    multiobjective=len(cache.info.objective_names) >= 2,
                    parameters=list(enumerate(cache.info.parameter_names)))

    def compare_page(request):
        names = [name_of(request, "a"), name_of(request, "b")]
        descriptions = []
        with reader.connection() as connection:
            for name in names:
                cache = reader.cache(connection, name)
                descriptions.append(_description(cache.info, reader.details(connection, name)))
        return page(request, "compare.html", names=names, descriptions=descriptions)

    # -- JSON --------------------------------------------------------------------------
    def studies_api(request):
        return SafeJSON({"studies": [_summary_row(s) for s in reader.summaries()]},
                        headers={"cache-control": "no-store"})

    def status_api(request):
        name = name_of(request)
        with reader.connection() as connection:
            cache = reader.cache(connection, name)
            status = reader.status(connection, name)
        return SafeJSON(_status(cache, status), headers={"cache-control": "no-store"})

    def study_api(request):
        """Everything a study page draws; with ``parts=light``, only what follows every
        round of a running fit (status, error per round, best parameters)."""
        name = name_of(request)
        light = request.query_params.get("parts") == "light"
        with reader.connection() as connection:
            cache = reader.cache(connection, name)
            status = reader.status(connection, name)
            if not light:
                details = reader.details(connection, name)
                traced = reader.traced_points(connection, name)
                best_point = traced[-1] if traced else None
                recordings, simulated, unreadable_traces = reader.traces(connection, name,
                                                                         best_point)
        with cache.lock:
            info, evaluations = cache.info, cache.evaluations
            body = dict(cache.cached("light", lambda: {
                "rounds": plot_data.rounds_plot(evaluations),
                "best": plot_data.best_table(info, evaluations),
                "unreadable": evaluations.unreadable,
                "error_axis": plot_data.error_axis(info, evaluations.errors[
                    evaluations.usable]),
                "workers": plot_data.workers_plot(cache.workers, cache.round_times)}))
            if not light:
                body.update(cache.cached(("heavy", tuple(traced)), lambda: {
                    "parameters": plot_data.parameter_plots(info, evaluations, traced),
                    "pareto": plot_data.pareto_plot(info, evaluations, traced)}))
        body["status"] = _status(cache, status)
        if not light:
            body.update(traces=plot_data.trace_plots(details, recordings, simulated),
                        traces_of=list(best_point) if best_point else None,
                        n_traced=len(traced), unreadable_traces=unreadable_traces,
                        names=[plot_data.label(n) for n in info.parameter_names])
        return SafeJSON(body, headers={"cache-control": "no-store"})

    def pairs_api(request):
        name = name_of(request)
        text = request.query_params.get("p", "")
        chosen = [int(p) for p in text.split(",") if p.strip().isdigit()][:20]
        with reader.connection() as connection:
            cache = reader.cache(connection, name)
            traced = reader.traced_points(connection, name)
        with cache.lock:
            if not chosen:
                chosen = list(range(min(3, len(cache.info.parameter_names))))
            body = cache.cached(("pairs", tuple(chosen), tuple(traced)),
                                lambda: plot_data.pair_plots(cache.info, cache.evaluations,
                                                             chosen, traced))
        return SafeJSON(body, headers={"cache-control": "no-store"})

    def point_api(request):
        name = name_of(request)
        try:
            point = (int(request.query_params["round"]), int(request.query_params["sample"]))
        except (KeyError, ValueError):
            return api_error("round and sample must be integers", 400)
        with reader.connection() as connection:
            cache = reader.cache(connection, name)
            details = reader.details(connection, name)
            recordings, simulated, _ = reader.traces(connection, name, point)
        with cache.lock:
            info, evaluations = cache.info, cache.evaluations
            k = evaluations.index_of(*point)
            if k is None:
                return api_error(f"No evaluation {point} in study {name!r}.", 404)
            rows = [{"name": n, "value": format_value(float(v), d)}
                    for n, v, d in zip(info.parameter_names, evaluations.params[k], info.dims)]
            error = format_value(float(evaluations.errors[k]), info.error_dim)
            diverged = bool(evaluations.diverged[k])
        return SafeJSON({"round": point[0], "sample": point[1], "parameters": rows,
                         "error": error, "diverged": diverged,
                         "traces": plot_data.trace_plots(details, recordings, simulated)
                         if simulated else None}, headers={"cache-control": "no-store"})

    # -- static ------------------------------------------------------------------------
    def plotly_js(request):
        headers = {"cache-control": "public, max-age=31536000, immutable",
                   "content-type": "text/javascript; charset=utf-8"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(plotly_gzip, headers={**headers, "content-encoding": "gzip",
                                                  "vary": "accept-encoding"})
        return Response(plotly_bytes, headers=headers)

    def static(request):
        name = request.path_params["name"]
        if name not in static_files:
            return Response("not found", status_code=404, media_type="text/plain")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(static_files[name], headers={
            "content-type": f"{kind}; charset=utf-8", "cache-control": "public, max-age=3600"})

    routes = [
        Route("/", guarded(studies_page, False)),
        Route("/study", guarded(study_page, False)),
        Route("/compare", guarded(compare_page, False)),
        Route("/api/studies", guarded(studies_api, True)),
        Route("/api/status", guarded(status_api, True)),
        Route("/api/study", guarded(study_api, True)),
        Route("/api/pairs", guarded(pairs_api, True)),
        Route("/api/point", guarded(point_api, True)),
        Route(f"/static/plotly-{plotly_version}.min.js", plotly_js),
        Route("/static/{name}", static),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.reader = reader
    return app


def _prewarm(reader) -> None:
    try:
        reader.summaries()
    except Exception as exc:  # the first request reports it
        LOG.warning("could not read %s: %s", reader.path, exc)


def _query(**values: str) -> str:
    from urllib.parse import urlencode
    return urlencode(values)


def _summary_row(summary) -> dict:
    return {"name": summary.name, "model": summary.model, "state": summary.state,
            "detail": summary.detail, "rounds": summary.rounds,
            "evaluations": summary.evaluations,
            "best_error": format_value(summary.best_error, summary.error_dim)
            if summary.best_error is not None else "—",
            "last_update": age_text(summary.last_update), "problem": summary.problem,
            "href": f"/study?{_query(name=summary.name)}"}


def _status(cache, status) -> dict:
    usable = cache.evaluations.usable
    best = float(cache.evaluations.errors[usable].min()) if usable.any() else None
    return {"state": status.state, "detail": status.detail, "rounds": cache.n_rounds,
            "evaluations": len(cache.evaluations), "last_round": cache.last_round,
            "last_update": cache.last_update, "last_update_text": age_text(cache.last_update),
            "best_error": format_value(best, cache.info.error_dim) if best is not None
            else "—", "since": status.since}


def _description(info, details: dict[str, str]) -> dict:
    """The study's description as text for the page (escaped there by Jinja2)."""
    bounds = [(name, format_value(lo, d), format_value(hi, d), unit_symbol(d) or "1")
              for name, lo, hi, d in zip(info.parameter_names, info.lower, info.upper,
                                         info.dims)]
    rows = [("optimizer", info.optimizer), ("optimizer class", info.optimizer_class),
            ("seed", info.seed), ("metric", info.metric),
            ("backend", details.get("backend", "not recorded")),
            ("samples per round", "" if info.n_samples is None else str(info.n_samples)),
            ("outputs", ", ".join(info.output_names)),
            ("objectives", ", ".join(info.objective_names) or "one error"),
            ("time step", format_value(_float(details.get("dt")), SECOND)
             if details.get("dt") else "not recorded"),
            ("recorded traces", details.get("n_traces", "not recorded")),
            ("written by", f"modelfit {details['modelfit']}" if "modelfit" in details
             else "an earlier modelfit")]
    return {"model": info.model, "bounds": bounds, "rows": rows}


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None

