"""Telling people an alert opened or resolved: a document in ``events-*`` and a POST to each webhook.

The ``events-*`` document is what the event timeline and search see, next to
deploys and rollbacks, so "what changed at 17:04?" finds the alert too. Its
``_id`` is ``<alert id>:<opened|resolved>``: writing the same change twice
(a retry, a restart that replays a minute) overwrites it instead of doubling it.

Webhooks go out from one sender thread behind a bounded queue, so a slow or
dead receiver never holds up the steady-state loop: ``submit`` returns at once
(a full queue drops the notice and counts it). Each delivery retries connection
errors, 5xx and 429 with exponential backoff (tenacity, honouring a
``Retry-After``) within ``steady_webhook_timeout`` seconds; any other answer
(a 400: the receiver refuses the payload) will not get better by repeating it
and fails at once. Outcomes are counted in :class:`WebhookStats`, which the
runner exposes on /metrics.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson
import urllib3
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from pang.indexer.client import connection
from pang.indexer.naming import index_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, BulkError, encode_action

log = logging.getLogger("pang.steady.notify")

MAX_BACKOFF = 30.0  # seconds: the longest wait between two attempts
ATTEMPT_TIMEOUT = 10.0  # seconds one POST may take
MAX_ATTEMPTS = 12


class NotifyError(RuntimeError):
    """Alert events could not be stored; ``str()`` is one line."""


# --- what is said ---------------------------------------------------------------------------------


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(value: float | None, ratio: bool) -> str:
    if value is None:
        return "?"
    if ratio:
        return f"{value:.1%}"
    return f"{value:,.0f}/min"


def _clock(t: datetime, tz: str) -> str:
    local = _utc(t).astimezone(ZoneInfo(tz))
    return f"{local:%H:%M} {local.tzname()}"


def alert_as_json(alert: Any) -> dict[str, Any]:
    """The alert as plain JSON types (datetimes as ISO 8601 UTC), whatever dataclass shape it has."""
    if hasattr(alert, "to_dict"):
        return _jsonable(alert.to_dict())
    raw = asdict(alert) if is_dataclass(alert) else dict(vars(alert))
    return _jsonable(raw)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _figures(alert: Any) -> tuple[float | None, float | None]:
    """Observed and expected per minute (or the ratio) over the window that decided the alert.

    The tracker's evidence holds the window's sums (``window_observed``,
    ``window_expected``, ``window_minutes``) and the deciding minute alone
    (``observed``, ``expected``); the window is what the alert is about.
    """
    ev = getattr(alert, "evidence", None) or {}
    wo, we, w = _num(ev.get("window_observed")), _num(ev.get("window_expected")), _num(ev.get("window_minutes"))
    if wo is not None and we is not None and w:
        return wo / w, we / w
    return _num(ev.get("observed")), _num(ev.get("expected"))


def alert_message(kind: str, alert: Any, *, tz: str = "UTC", ratio: bool = False) -> str:
    """One sentence a person reads in a chat or the timeline.

    ``orders dropped 38% below expected (612 vs 985/min) since 17:04 CEST``.
    """
    observed, expected = _figures(alert)
    signal = str(alert.signal)
    if kind == "resolved":
        resolved = alert.resolved or alert.opened
        minutes = max(0, round((_utc(resolved) - _utc(alert.opened)).total_seconds() / 60))
        return (f"{signal} back within its expected band since {_clock(resolved, tz)} "
                f"({alert.direction} alert open {minutes} min, from {_clock(alert.opened, tz)})")
    verb = "dropped" if alert.direction == "drop" else "rose"
    where = "below" if alert.direction == "drop" else "above"
    if observed is not None and expected:
        size = f"{abs(observed - expected) / expected:.0%} "
    else:
        size = ""
    figures = f" ({_fmt(observed, ratio).removesuffix('/min')} vs {_fmt(expected, ratio)})" if observed is not None else ""
    return f"{signal} {verb} {size}{where} expected{figures} since {_clock(alert.opened, tz)}"


def alert_document(kind: str, alert: Any, *, tz: str = "UTC", ratio: bool = False) -> dict[str, Any]:
    """The ECS document for ``events-*``; ``@timestamp`` is when the change happened."""
    when = alert.resolved if kind == "resolved" and alert.resolved else alert.opened
    observed, expected = _figures(alert)
    doc: dict[str, Any] = {
        "@timestamp": _jsonable(when),
        "message": alert_message(kind, alert, tz=tz, ratio=ratio),
        "event": {
            "kind": "alert",
            "dataset": "events",
            "action": f"alert.{kind}",
            "id": document_id(kind, alert),
            "type": ["start"] if kind == "opened" else ["end"],
            "start": _jsonable(alert.opened),
            "severity": 3 if alert.severity == "critical" else 2,
        },
        "pang": {"type": "alert"},
        "rule": {"name": str(alert.signal), "id": f"steady.{alert.signal}"},
        "alert": {
            "id": str(alert.id),
            "kind": "steady",
            "signal": str(alert.signal),
            "state": "open" if kind == "opened" else "resolved",
            "severity": str(alert.severity),
            "direction": str(alert.direction),
            "expected": expected,
            "observed": observed,
            "evidence": _jsonable(getattr(alert, "evidence", {}) or {}),
        },
        "tags": ["steady", str(alert.direction)],
    }
    if kind == "resolved" and alert.resolved:
        doc["event"]["end"] = _jsonable(alert.resolved)
    return doc


def document_id(kind: str, alert: Any) -> str:
    return f"{alert.id}:{kind}"


def webhook_payload(kind: str, alert: Any, fmt: str, *, tz: str = "UTC", ratio: bool = False) -> dict[str, Any]:
    """``json``: the alert and the sentence; ``slack``: ``{"text", "blocks"}`` for an incoming webhook."""
    message = alert_message(kind, alert, tz=tz, ratio=ratio)
    if fmt != "slack":
        return {"event": f"alert.{kind}", "message": message, "alert": alert_as_json(alert)}
    observed, expected = _figures(alert)
    ev = getattr(alert, "evidence", None) or {}
    lower, upper = _num(ev.get("lower")), _num(ev.get("upper"))
    icon = ":white_check_mark:" if kind == "resolved" else (":rotating_light:" if alert.severity == "critical" else ":warning:")
    title = f"{alert.signal}: {alert.direction} alert {kind}"
    fields = [
        f"*Observed*\n{_fmt(observed, ratio)}",
        f"*Expected*\n{_fmt(expected, ratio)}",
        f"*Band*\n{_fmt(lower, ratio).removesuffix('/min')} to {_fmt(upper, ratio)}",
        f"*Severity*\n{_slack_escape(str(alert.severity))}",
    ]
    return {
        "text": f"{icon} {_slack_escape(message)}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {_slack_escape(message)}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert `{_slack_escape(str(alert.id))}` (pang steady)"}]},
        ],
    }


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn treats ``&``, ``<`` and ``>`` as control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- events-* -----------------------------------------------------------------------------------------


def signal_services(settings: Settings, signal: str) -> list[str]:
    """The services of the status components (``PANG_STATUS_COMPONENTS``) that list ``signal``."""
    return list(dict.fromkeys(s for comp in settings.status_components.values() if signal in comp.signals for s in comp.services))


def write_alert_events(settings: Settings, changes: Iterable[Any], *, ratios: Iterable[str] = (), refresh: bool = False) -> int:
    """Index one ``events-*`` document per change (idempotent ids); returns how many were written.

    Raises :class:`NotifyError` if OpenSearch refused any of them, so the caller judges the minutes again.
    """
    ratio_names = set(ratios)
    actions = []
    for change in changes:
        doc = alert_document(change.kind, change.alert, tz=settings.business_timezone, ratio=change.alert.signal in ratio_names)
        services = signal_services(settings, str(change.alert.signal))
        if services:  # the timeline's role filter and the status page find a business alert by its services
            doc["service"] = {"name": services if len(services) > 1 else services[0]}
        when = change.alert.resolved if change.kind == "resolved" and change.alert.resolved else change.alert.opened
        actions.append(encode_action(index_for("events", _utc(when)), document_id(change.kind, change.alert), orjson.dumps(doc)))
    if not actions:
        return 0
    bulk = BulkClient(connection(settings), maxsize=1)
    try:
        result = bulk.post(actions, refresh=refresh)
    except BulkError as exc:
        raise NotifyError(f"alert events not written: {exc}") from None
    finally:
        bulk.close()
    if result.retry or result.rejected:
        reasons = "; ".join(r for _, _, r in result.rejected[:3]) or "the node is busy"
        raise NotifyError(f"{len(result.retry) + len(result.rejected)} alert event(s) not written: {reasons}")
    return len(actions)


# --- webhooks -----------------------------------------------------------------------------------------


@dataclass
class WebhookStats:
    """What the sender did, read by the runner's /metrics."""

    delivered: int = 0
    failed: int = 0  # gave up: a refusal, or retries ran out of time
    retries: int = 0
    dropped: int = 0  # the queue was full
    last_error: str = ""
    by_status: dict[str, int] = field(default_factory=dict)  # answers seen, e.g. "200", "503", "error"


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Refused(Exception):
    pass


def redact(url: str) -> str:
    """A webhook URL for logs: Slack-style URLs carry their secret in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/..."


@dataclass(frozen=True)
class _Notice:
    url: str
    body: bytes
    what: str  # for logs: "alert.opened orders-2026..."


class WebhookSender:
    """One daemon thread posting notices from a bounded queue, with retries and a time bound per delivery."""

    def __init__(
        self,
        urls: Iterable[str],
        fmt: str = "json",
        *,
        tz: str = "UTC",
        ratios: Iterable[str] = (),
        timeout: float = 120.0,
        backoff: float = 1.0,
        queue_size: int = 256,
        ssl_context: Any = None,
    ) -> None:
        self.urls = list(urls)
        self.fmt = fmt
        self.tz = tz
        self.ratios = set(ratios)
        self.timeout = timeout
        self.backoff = backoff
        self.stats = WebhookStats()
        self._queue: queue.Queue[_Notice | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(
            num_pools=8, ssl_context=ssl_context, retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=ATTEMPT_TIMEOUT),
        )
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, ratios: Iterable[str] = ()) -> WebhookSender:
        urls = [u.get_secret_value() if isinstance(u, SecretStr) else str(u) for u in settings.steady_webhooks]
        return cls(urls, settings.steady_webhook_format, tz=settings.business_timezone, ratios=ratios,
                   timeout=settings.steady_webhook_timeout, backoff=settings.steady_webhook_backoff)

    def start(self) -> WebhookSender:
        if self._thread is None and self.urls:
            self._thread = threading.Thread(target=self._run, name="pang-steady-webhooks", daemon=True)
            self._thread.start()
        return self

    def submit(self, kind: str, alert: Any) -> None:
        """Queue the change for every webhook; never blocks (a full queue drops and counts)."""
        if not self.urls:
            return
        payload = webhook_payload(kind, alert, self.fmt, tz=self.tz, ratio=alert.signal in self.ratios)
        body = orjson.dumps(payload)
        for url in self.urls:
            notice = _Notice(url, body, f"alert.{kind} {alert.id}")
            with self._lock:
                try:
                    self._queue.put_nowait(notice)
                except queue.Full:
                    self.stats.dropped += 1
                    log.error("webhook queue full: %s to %s dropped", notice.what, redact(url))
                    continue
                self._pending += 1
                self._idle.clear()
        self.start()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued notices to be delivered or given up."""
        return self._idle.wait(timeout)

    def stop(self, drain: float = 0.0) -> None:
        if drain:
            self.drain(drain)
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout=ATTEMPT_TIMEOUT + 1)
        self._pool.clear()

    # --- the thread ---

    def _run(self) -> None:
        while not self._stop.is_set():
            notice = self._queue.get()
            if notice is None:
                break
            try:
                self._deliver(notice)
            except Exception as exc:  # never let one notice kill the thread
                self.stats.failed += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("webhook %s to %s failed", notice.what, redact(notice.url))
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._idle.set()

    def _deliver(self, notice: _Notice) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_delay(self.timeout) | stop_after_attempt(MAX_ATTEMPTS) | _stopping(self._stop),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            retrying(self._post, notice)
        except _Retryable as exc:
            self._give_up(notice, f"gave up after retries: {exc}")
        except _Refused as exc:
            self._give_up(notice, str(exc))
        else:
            self.stats.delivered += 1

    def _give_up(self, notice: _Notice, reason: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = reason
        log.error("webhook %s to %s not delivered: %s", notice.what, redact(notice.url), reason)

    def _post(self, notice: _Notice) -> None:
        try:
            resp = self._pool.request(
                "POST", notice.url, body=notice.body, headers={"Content-Type": "application/json"}, redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            self._seen("error")
            raise _Retryable(f"cannot reach {redact(notice.url)}: {type(exc).__name__}") from None
        self._seen(str(resp.status))
        if 200 <= resp.status < 300:
            return
        if resp.status == 429 or resp.status >= 500:
            raise _Retryable(f"{redact(notice.url)} answered {resp.status}", _retry_after(resp.headers.get("Retry-After")))
        raise _Refused(f"{redact(notice.url)} answered {resp.status}: {resp.data[:200]!r}")

    def _seen(self, status: str) -> None:
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1

    def _wait(self, state: RetryCallState) -> float:
        """Exponential from ``backoff``, at most MAX_BACKOFF; a longer Retry-After wins, within the time left."""
        wait = min(MAX_BACKOFF, self.backoff * 2 ** (state.attempt_number - 1))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after:
            wait = max(wait, min(exc.retry_after, MAX_BACKOFF))
        left = self.timeout - (state.seconds_since_start or 0.0)
        return max(0.0, min(wait, left))

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1


def _stopping(event: threading.Event) -> Callable[[RetryCallState], bool]:
    return lambda state: event.is_set()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for webhooks; the backoff applies


# --- both at once ----------------------------------------------------------------------------------


class Notifier:
    """The runner's one call per pass: events first (the record), then webhooks (the shout)."""

    def __init__(self, settings: Settings, *, ratios: Iterable[str] = ()) -> None:
        self.settings = settings
        self.ratios = set(ratios)
        self.webhooks = WebhookSender.from_settings(settings, ratios=self.ratios).start()
        self.events_written = 0

    def notify(self, changes: list[Any], *, refresh: bool = False) -> None:
        """Write the events (raises if OpenSearch refuses: the caller retries), then queue the webhooks."""
        if not changes:
            return
        self.events_written += write_alert_events(self.settings, changes, ratios=self.ratios, refresh=refresh)
        for change in changes:
            self.webhooks.submit(change.kind, change.alert)

    def close(self, drain: float = 10.0) -> None:
        self.webhooks.stop(drain=drain)


__all__ = [
    "NotifyError",
    "Notifier",
    "WebhookSender",
    "WebhookStats",
    "alert_as_json",
    "alert_document",
    "alert_message",
    "document_id",
    "redact",
    "webhook_payload",
    "write_alert_events",
]
