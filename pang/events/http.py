"""The events endpoint: ``pang events serve`` (a WSGI app, served by waitress, or over TLS by a small threaded server).

Routes::

    POST /api/events                    pang's JSON: one object, or a list of up to PANG_EVENTS_MAX_BATCH
    POST /api/webhooks/github|argocd|jenkins   the tool's own body (pang.events.webhooks)
    GET  /api/events?since=1h&service=&type=&text=&from=&to=&limit=
    GET  /healthz                       no auth: says whether the process is up, nothing about the data

Every answer is JSON. Errors are ``{"error": "...", "field": "..."}`` with 400
(not JSON), 401 (auth), 404, 405, 411 (no length), 413 (body over
PANG_EVENTS_MAX_BODY_BYTES, judged from Content-Length before reading and
again while reading), 415 (not application/json), 422 (an event is not
valid; ``field`` names it, ``[2].service`` in a list) or 503 (OpenSearch did
not take it). A request writes all its events or none: every event of a list
is validated before any is written, and a retry after a 503 is safe because
ids are idempotent.

Auth: ``Authorization: Bearer PANG_EVENTS_TOKEN`` or HTTP basic with
PANG_EVENTS_USERNAME/PASSWORD (either passes when both are set). GitHub
cannot send a custom header, so a ``deployment_status`` delivery may instead
prove itself with ``X-Hub-Signature-256`` (HMAC-SHA256 of the body keyed with
the token, GitHub's webhook *secret*). Secrets are compared with
:func:`hmac.compare_digest`. Without any auth configured the server binds to
loopback only and refuses another address.

TLS: waitress speaks plain HTTP only. With PANG_EVENTS_TLS_CERT/KEY set the
same app is served by :class:`_TLSServer` (the standard library's wsgiref
and :mod:`ssl`), one TLS handshake per connection in a bounded pool of
worker threads, with a socket timeout, so a slow or silent client holds one
worker for at most PANG_EVENTS_TIMEOUT seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import orjson

from pang.events.schema import EventError, EventIn, parse_event
from pang.events.store import EventStoreError, TimelineQuery, query_events, write_events
from pang.events.webhooks import PROVIDERS, map_webhook
from pang.settings import LOOPBACK_HOSTS, Settings

__all__ = ["EventsApp", "EventsServeError", "EventsServer", "check_serving", "make_server"]

_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Content", 503: "Service Unavailable"}
_READ_CHUNK = 64 * 1024


class EventsServeError(RuntimeError):
    """The endpoint cannot start as configured (auth, TLS, address); one line for a person."""


class _HttpError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status, self.field, self.headers = status, field, list(headers)


Writer = Callable[[Settings, list[EventIn]], list[dict[str, Any]]]


def _write(settings: Settings, events: list[EventIn]) -> list[dict[str, Any]]:
    return write_events(settings, events, received=datetime.now(UTC))


class EventsApp:
    """The WSGI application; ``writer`` is where validated events go (OpenSearch unless a test says otherwise)."""

    def __init__(self, settings: Settings, *, writer: Writer = _write) -> None:
        self.settings = settings
        self.writer = writer
        self._token = settings.events_token.get_secret_value().encode() if settings.events_token else None
        self._basic: tuple[bytes, bytes] | None = None
        if settings.events_username and settings.events_password:
            self._basic = (settings.events_username.encode(), settings.events_password.get_secret_value().encode())

    @property
    def has_auth(self) -> bool:
        return bool(self._token or self._basic)

    # -- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            status, body, headers = self._route(environ)
        except _HttpError as exc:
            status, body, headers = exc.status, {"error": str(exc), "field": exc.field}, exc.headers
        payload = orjson.dumps(body)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"), *headers,
        ])
        return [payload]

    def _route(self, environ: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/healthz":
            self._allow(method, ("GET", "HEAD"))
            return 200, {"ok": True}, []
        if path == "/api/events":
            self._allow(method, ("GET", "POST"))
            self._authorize(environ, None)
            if method == "GET":
                return 200, self._list(environ), []
            return self._post_events(self._json(environ))
        if path.startswith("/api/webhooks/"):
            provider = path.removeprefix("/api/webhooks/").strip("/")
            if provider not in PROVIDERS:
                raise _HttpError(404, f"no webhook {provider[:40]!r}; pang maps {', '.join(PROVIDERS)}", "provider")
            self._allow(method, ("POST",))
            raw = self._body(environ) if provider == "github" else None
            self._authorize(environ, raw)
            return self._post_webhook(provider, environ, raw)
        raise _HttpError(404, f"no such path {path[:100]!r}; see /api/events, /api/webhooks/<github|argocd|jenkins>, /healthz")

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise _HttpError(405, f"{method} is not allowed here; use {' or '.join(allowed)}", None,
                             [("Allow", ", ".join(allowed))])

    # -- auth ------------------------------------------------------------------------------------

    def _authorize(self, environ: dict[str, Any], raw: bytes | None) -> None:
        if not self.has_auth:
            return  # only ever on loopback (check_serving)
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if self._token and scheme == "bearer" and hmac.compare_digest(value.strip().encode(), self._token):
            return
        if self._basic and scheme == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
            except ValueError:
                user, password = b"", b""
            user_ok = hmac.compare_digest(user, self._basic[0])
            password_ok = hmac.compare_digest(password, self._basic[1])
            if user_ok and password_ok:
                return
        signature = environ.get("HTTP_X_HUB_SIGNATURE_256", "")
        if self._token and raw is not None and signature.startswith("sha256="):
            expected = "sha256=" + hmac.new(self._token, raw, hashlib.sha256).hexdigest()
            if hmac.compare_digest(signature.encode(), expected.encode()):
                return
        why = "wrong credentials" if header or signature else "credentials required"
        challenge = [("WWW-Authenticate", 'Bearer realm="pang events"')]
        if self._basic:
            challenge.append(("WWW-Authenticate", 'Basic realm="pang events", charset="UTF-8"'))
        raise _HttpError(401, f"{why}: send Authorization: Bearer <PANG_EVENTS_TOKEN>"
                         + (" or HTTP basic auth" if self._basic else ""), "Authorization", challenge)

    # -- bodies ----------------------------------------------------------------------------------

    def _body(self, environ: dict[str, Any]) -> bytes:
        limit = self.settings.events_max_body_bytes
        ctype = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
            raise _HttpError(415, f"Content-Type must be application/json (got {ctype[:60] or 'none'})", "Content-Type")
        length_text = environ.get("CONTENT_LENGTH") or ""
        if not length_text.strip():
            raise _HttpError(411, "a Content-Length is required", "Content-Length")
        try:
            length = int(length_text)
        except ValueError:
            raise _HttpError(400, "Content-Length is not a number", "Content-Length") from None
        if length < 0:
            raise _HttpError(400, "Content-Length is negative", "Content-Length")
        if length > limit:
            raise _HttpError(413, f"the body is {length:,} bytes; the limit is {limit:,} (PANG_EVENTS_MAX_BODY_BYTES)", None)
        stream = environ["wsgi.input"]
        chunks, got = [], 0
        while got < length:  # bounded by length <= limit
            chunk = stream.read(min(_READ_CHUNK, length - got))
            if not chunk:
                raise _HttpError(400, f"the body ended after {got:,} of {length:,} bytes", None)
            got += len(chunk)
            if got > limit:  # a stream that returns more than asked for
                raise _HttpError(413, f"the body is over the limit of {limit:,} bytes (PANG_EVENTS_MAX_BODY_BYTES)", None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, environ: dict[str, Any], raw: bytes | None = None) -> Any:
        raw = self._body(environ) if raw is None else raw
        if not raw.strip():
            raise _HttpError(400, "the body is empty; send a JSON object", None)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _HttpError(400, f"the body is not JSON: {str(exc)[:200]}", None) from None

    # -- handlers --------------------------------------------------------------------------------

    def _post_events(self, data: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        items = data if isinstance(data, list) else [data]
        if not items:
            raise _HttpError(422, "the list is empty; send at least one event", None)
        if len(items) > self.settings.events_max_batch:
            raise _HttpError(413, f"{len(items)} events in one request; the limit is {self.settings.events_max_batch} "
                             "(PANG_EVENTS_MAX_BATCH)", None)
        events = []
        for i, item in enumerate(items):  # all of them first: a list is written whole or not at all
            try:
                events.append(parse_event(item))
            except EventError as exc:
                where = f"[{i}]" if isinstance(data, list) else ""
                field = f"{where}.{exc.field}" if where and exc.field else (where or exc.field)
                raise _HttpError(422, f"{where} {exc}".strip() if where else str(exc), field) from None
        return self._store(events)

    def _post_webhook(self, provider: str, environ: dict[str, Any], raw: bytes | None) -> tuple[int, Any, list[tuple[str, str]]]:
        data = self._json(environ, raw)
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        try:
            result = map_webhook(provider, headers, data)
        except EventError as exc:
            raise _HttpError(422, f"{provider}: {exc}", exc.field) from None
        if result.ignored:
            return 200, {"written": [], "ignored": result.ignored}, []
        return self._store(result.events)

    def _store(self, events: list[EventIn]) -> tuple[int, Any, list[tuple[str, str]]]:
        try:
            docs = self.writer(self.settings, events)
        except EventStoreError as exc:
            raise _HttpError(503, f"{exc}; nothing to undo, the same request may be sent again", None,
                             [("Retry-After", "5")]) from None
        return 201, {"written": [d["event"]["id"] for d in docs]}, []

    def _list(self, environ: dict[str, Any]) -> dict[str, Any]:
        from pang.indexer.timerange import TimeRangeError, parse_time_range

        qs = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=False, max_num_fields=50)

        def one(name: str) -> str | None:
            values = qs.get(name)
            return values[-1] if values else None

        try:
            window = parse_time_range(one("since"), one("from"), one("to"))
        except TimeRangeError as exc:
            raise _HttpError(400, str(exc), "since") from None
        try:
            limit = int(one("limit") or 200)
        except ValueError:
            raise _HttpError(400, "limit must be a number", "limit") from None
        try:
            q = TimelineQuery(start=window.start, end=window.end, services=tuple(qs.get("service", ())),
                              types=tuple(qs.get("type", ())), text=one("text") or "", size=limit)
        except ValueError as exc:
            field = "type" if "type" in str(exc) else "limit" if "size" in str(exc) else "text"
            raise _HttpError(400, str(exc), field) from None
        try:
            page = query_events(self.settings, q)
        except EventStoreError as exc:
            raise _HttpError(503, str(exc), None, [("Retry-After", "5")]) from None
        return {"from": window.start.isoformat(), "to": window.end.isoformat(), "total": page.total,
                "counts": page.counts, "events": page.rows}


# --- serving ---------------------------------------------------------------------------------------


class EventsServer(Protocol):
    port: int
    url: str

    def run(self) -> None: ...
    def close(self) -> None: ...


def check_serving(settings: Settings, host: str) -> list[str]:
    """Refuse a configuration that would expose the endpoint unprotected; returns notes to print."""
    notes = []
    if bool(settings.events_username) != bool(settings.events_password):
        raise EventsServeError("set both PANG_EVENTS_USERNAME and PANG_EVENTS_PASSWORD, or neither")
    if bool(settings.events_tls_cert) != bool(settings.events_tls_key):
        raise EventsServeError("set both PANG_EVENTS_TLS_CERT and PANG_EVENTS_TLS_KEY, or neither")
    for path in (settings.events_tls_cert, settings.events_tls_key):
        if path is not None and not path.is_file():
            raise EventsServeError(f"TLS file {path} does not exist")
    has_auth = bool(settings.events_token or (settings.events_username and settings.events_password))
    if not has_auth:
        if host not in LOOPBACK_HOSTS:
            raise EventsServeError(f"refusing to listen on {host} without auth: set PANG_EVENTS_TOKEN "
                                   "(or PANG_EVENTS_USERNAME/PASSWORD), or listen on 127.0.0.1")
        notes.append("no PANG_EVENTS_TOKEN or PANG_EVENTS_USERNAME/PASSWORD: no auth, so listening on loopback only")
    if not settings.events_tls_cert:
        notes.append("plain HTTP (set PANG_EVENTS_TLS_CERT/KEY for HTTPS, or put a TLS proxy in front)")
    return notes


class _Handler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # one line per webhook delivery on stderr would be noise
        pass


class _TLSServer(WSGIServer):
    """wsgiref over TLS with a bounded pool: the handshake happens in the worker, never in the accept loop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: Any, context: ssl.SSLContext, threads: int, timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.set_app(app)
        self._context, self._timeout = context, timeout
        self._slots = threading.BoundedSemaphore(threads * 4)  # running plus waiting connections
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pang-events")

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(timeout=self._timeout):
            self.shutdown_request(request)
            return
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: socket.socket, client_address: Any) -> None:
        try:
            request.settimeout(self._timeout)
            try:
                tls = self._context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            try:
                self.finish_request(tls, client_address)
            except (OSError, ssl.SSLError):
                pass
            finally:
                try:
                    tls.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                tls.close()
        finally:
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _TLSEventsServer:
    def __init__(self, server: _TLSServer, host: str) -> None:
        self._server = server
        self.port = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"https://{shown}:{self.port}"

    def run(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _WaitressEventsServer:
    def __init__(self, server: Any, host: str) -> None:
        self._server = server
        self.port = int(server.effective_port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            self._server.run()
        except OSError:  # the listening socket closed under asyncore's select: a close() from another thread
            if not self._stopped.is_set():
                raise

    def close(self) -> None:
        self._stopped.set()
        self._server.close()


def make_server(settings: Settings, *, host: str | None = None, port: int | None = None,
                app: EventsApp | None = None) -> EventsServer:
    """A bound server (``run()`` blocks until ``close()``); refuses an unprotected non-loopback address."""
    host = host or settings.events_host
    port = settings.events_port if port is None else port
    check_serving(settings, host)
    app = app or EventsApp(settings)
    if settings.events_tls_cert and settings.events_tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(settings.events_tls_cert), str(settings.events_tls_key))
        except (ssl.SSLError, OSError) as exc:
            raise EventsServeError(f"cannot load the TLS certificate and key: {exc}") from None
        try:
            server = _TLSServer((host, port), app, context, settings.events_threads, settings.events_timeout)
        except OSError as exc:
            raise EventsServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        return _TLSEventsServer(server, host)
    from waitress import create_server

    try:
        server = create_server(
            app, host=host, port=port, threads=settings.events_threads, ident="pang",
            channel_timeout=settings.events_timeout, connection_limit=max(16, settings.events_threads * 8),
            # waitress's own ceiling sits above ours so that the app answers 413 in JSON; beyond it waitress does.
            max_request_body_size=settings.events_max_body_bytes * 2, clear_untrusted_proxy_headers=True,
        )
    except OSError as exc:
        raise EventsServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return _WaitressEventsServer(server, host)
