"""/metrics and /healthz of pang's long-running processes (the agent, the steady-state runner).

One WSGI app: Prometheus text from a collector that reads the process's own
counters at scrape time, and a health check whose JSON body says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # scrapes every few seconds would flood the log
        pass


def metrics_server(host: str, port: int, collector: Any, health: Callable[[], tuple[bool, dict[str, Any]]]) -> WSGIServer:
    """A bound (not yet serving) server; the caller runs ``serve_forever`` in a thread of its own."""
    registry = CollectorRegistry()
    registry.register(collector)
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":
            ok, body = health()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        return metrics_app(environ, start_response)

    return make_server(host, port, app, handler_class=_Quiet)
