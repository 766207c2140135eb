"""Serving the dashboard with uvicorn: in this process, or in a background one.

``modelfit dashboard`` serves in the foreground until Ctrl-C.
``fit(dashboard=True)`` starts another Python process (``python -m
modelfit_plugins.dashboard``) so that serving pages never holds the fit's
interpreter; that process runs at a lower CPU priority, in its own session
(Ctrl-C in the fit's terminal does not stop it), and ends when the process
that started it ends (checked every second), or with :meth:`BackgroundDashboard.stop`.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import select
import socket
import subprocess
import sys
import threading
import time

from modelfit_core.contracts.errors import ConfigurationError

DEFAULT_PORT = 8080
"""Where ``modelfit dashboard`` listens unless told otherwise (as optuna-dashboard)."""
READY_LINE = "MODELFIT_DASHBOARD_URL "
"""What the background process prints once it listens, followed by its address."""
START_TIMEOUT_S = 120.0
BACKGROUND_NICENESS = 5
"""How much lower the background server's CPU priority is than the fit's."""


class DashboardError(ConfigurationError):
    """The dashboard cannot be served as asked (a port in use, a host not found)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str] | None:
    """Host names a request may carry: this machine's names when serving on loopback
    (DNS rebinding cannot reach the server); any when serving on a network."""
    if not is_loopback(host):
        return None
    return ["127.0.0.1", "localhost", "::1", "[::1]", host]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a clear error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DashboardError(f"Cannot serve the dashboard on host {host!r}: {exc}. Use "
                             f"--host 127.0.0.1 (this machine only) or an address of this "
                             f"machine.") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise DashboardError(
            f"Cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}. "
            f"Another program (another dashboard?) may be using port {port}: pass --port "
            f"with another number, or --port 0 for any free port.") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str, study: str | None = None) -> str:
    from urllib.parse import urlencode
    port = sock.getsockname()[1]
    shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    shown = f"[{shown}]" if ":" in shown else shown
    base = f"http://{shown}:{port}/"
    return base + (f"study?{urlencode({'name': study})}" if study else "")


def make_server(app, sock: socket.socket):
    import uvicorn
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2, server_header=False)
    return uvicorn.Server(config)


def serve_foreground(app, sock: socket.socket, announce: str | None = None,
                     parent_pid: int | None = None) -> None:
    """Serve until Ctrl-C (or until ``parent_pid`` is gone); print ``announce`` first."""
    server = make_server(app, sock)
    if parent_pid is not None:
        threading.Thread(target=_stop_with_parent, args=(server, parent_pid),
                         daemon=True).start()
    if announce:
        print(announce, flush=True)
    server.run(sockets=[sock])


def _stop_with_parent(server, parent_pid: int) -> None:
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True
            return
        time.sleep(1.0)


class ServerThread:
    """A server in a thread of this process (tests and benchmarks): ``url``, ``stop()``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        self.server = make_server(app, self.sock)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and self.thread.is_alive() and time.time() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class BackgroundDashboard:
    """The dashboard served by another process: its address, and how to stop it."""

    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self.url = url
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop serving (also done when this process exits)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<modelfit dashboard {self.url} ({state})>"


def start_background(storage: str, host: str, port: int,
                     study: str | None) -> BackgroundDashboard:
    """Start ``python -m modelfit_plugins.dashboard`` and wait until it listens."""
    command = [sys.executable, "-m", "modelfit_plugins.dashboard", str(storage),
               "--host", host, "--port", str(port), "--parent", str(os.getpid()),
               "--nice", str(BACKGROUND_NICENESS)]
    if study is not None:
        command += ["--study", study]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith(READY_LINE):
                # what it writes later goes to stderr; its stderr is drained in a thread
                threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
                return BackgroundDashboard(process, line[len(READY_LINE):].strip())
            if not line and process.poll() is not None:
                break
        elif process.poll() is not None:
            break
    process.kill()
    _, error = process.communicate(timeout=10)
    message = (error or "").strip().splitlines()
    raise DashboardError("The dashboard could not be started"
                         + (f": {message[-1]}" if message else
                            f" within {START_TIMEOUT_S:.0f} s") + ".")


def _drain(stream) -> None:
    for line in stream:
        sys.stderr.write(f"[modelfit dashboard] {line}")
