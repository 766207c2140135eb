"""``python -m modelfit_plugins.dashboard STORAGE``: the background server that
``fit(dashboard=True)`` starts (see :mod:`modelfit_plugins.dashboard.server`).

Prints ``MODELFIT_DASHBOARD_URL <address>`` once it listens, then serves until
terminated or until the process ``--parent`` ends.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelfit_plugins.dashboard")
    parser.add_argument("storage")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--study", default=None)
    parser.add_argument("--parent", type=int, default=None)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    from modelfit_plugins.dashboard import server
    from modelfit_plugins.dashboard.app import create_app
    sock = server.bind(args.host, args.port)
    app = create_app(args.storage, allowed_hosts=server.allowed_hosts(args.host))
    url = server.url_of(sock, args.host, args.study)
    print(f"{server.READY_LINE}{url}", flush=True)
    sys.stdout = sys.stderr  # the parent reads one line only
    server.serve_foreground(app, sock, parent_pid=args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
