"""/metrics and /healthz of pang's long-running processes (the agent, the steady-state runner).

One WSGI app: Prometheus text from a collector that reads the process's own
counters at scrape time, and a health check whose JSON body says why.

Each connection gets its own thread and a socket timeout: wsgiref's server
alone handles one connection at a time without a timeout, so a single client
that connects and sends nothing (a port scan, a half-open probe) would hold
/healthz until a liveness probe restarted a healthy process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

IDLE_TIMEOUT = 10.0  # seconds a connection may stay silent (Prometheus scrapes and probes take milliseconds)


class _Quiet(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT  # StreamRequestHandler puts it on the socket: a silent client is dropped

    def log_message(self, *args: Any) -> None:  # scrapes every few seconds would flood the log
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a connection still open at exit does not hold the process
    block_on_close = False


def metrics_server(host: str, port: int, collector: Any, health: Callable[[], tuple[bool, dict[str, Any]]], *,
                   idle_timeout: float = IDLE_TIMEOUT) -> WSGIServer:
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

    handler = type("_Handler", (_Quiet,), {"timeout": idle_timeout})
    return make_server(host, port, app, server_class=_ThreadingServer, handler_class=handler)
