"""The ``web`` dashboard plugin: the class the ``modelfit.dashboards`` entry point names.

Light to import (the registry imports it to check its methods): Starlette,
uvicorn, Jinja2 and plotly are imported when it serves.
"""

from __future__ import annotations

from modelfit_core.contracts.errors import ArgumentTypeError


class WebDashboard:
    """Pages about the studies of a fit database, served read-only over HTTP.

    Parameters
    ----------
    host : str
        Address to listen on; the default serves this machine only. ``"0.0.0.0"``
        serves the network: anyone who can reach the port sees the studies.
    port : int, optional
        Port to listen on; default 8080 for :meth:`serve` and any free port
        for :meth:`start`; 0 means any free port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        if not isinstance(host, str) or not host:
            raise ArgumentTypeError(f"host must be a host name or address such as "
                                    f"'127.0.0.1'; got {host!r}.")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 <= port <= 65535):
            raise ArgumentTypeError(f"port must be an integer from 0 to 65535 (0: any free "
                                    f"port); got {port!r}.")
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return f"WebDashboard(host={self.host!r}, port={self.port!r})"

    def serve(self, storage: str, study: str | None = None) -> None:
        """Serve until Ctrl-C, printing the address first."""
        from modelfit_plugins.dashboard import server
        from modelfit_plugins.dashboard.app import create_app
        from modelfit_plugins.dashboard.study_reader import DatabaseReader
        DatabaseReader(storage).check()  # an unusable database is an error now, not a page
        sock = server.bind(self.host, server.DEFAULT_PORT if self.port is None else self.port)
        app = create_app(storage, default_study=study,
                         allowed_hosts=server.allowed_hosts(self.host))
        url = server.url_of(sock, self.host, study)
        server.serve_foreground(app, sock, announce=f"modelfit dashboard: serving {storage} "
                                                    f"read-only at {url} (Ctrl-C to stop)")

    def start(self, storage: str, study: str | None = None):
        """Serve from a background process; returns its handle (``url``, ``stop()``)."""
        from modelfit_plugins.dashboard import server
        return server.start_background(storage, self.host,
                                       0 if self.port is None else self.port, study)
