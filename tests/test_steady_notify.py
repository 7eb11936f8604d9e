"""Alert notices: webhooks against a real local HTTP server (retries, refusals, Slack shape) and events-* on the real node."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pang.indexer.client import client
from pang.settings import Settings
from pang.steady.alerts import Alert, AlertChange
from pang.steady.notify import Notifier, WebhookSender, alert_message, write_alert_events


class Receiver:
    """A real HTTP server on a free loopback port that answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None, *, delay: float = 0.0, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.headers = headers or {}
        self.requests: list[tuple[float, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((time.monotonic(), dict(self.headers), json.loads(body)))
                if outer.delay:
                    time.sleep(outer.delay)
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                for k, v in outer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_alert(signal: str = "orders", *, resolved: bool = False) -> Alert:
    opened = datetime(2026, 10, 14, 15, 4, tzinfo=UTC)  # 17:04 in Berlin (CEST)
    alert = Alert(
        id=f"{signal}:2026-10-14T15:04Z",
        signal=signal,
        direction="drop",
        severity="critical",
        opened=opened,
        resolved=opened + timedelta(minutes=16) if resolved else None,
        evidence={"observed": 612.0, "expected": 985.0, "lower": 890.0, "upper": 1080.0,
                  "cycles": {"last_week": 990.0, "2_weeks_ago": 975.0}},
    )
    return alert


def sender(url: str, fmt: str = "json", **kw: Any) -> WebhookSender:
    kw.setdefault("timeout", 10.0)
    kw.setdefault("backoff", 0.05)
    return WebhookSender([url], fmt, tz="Europe/Berlin", **kw).start()


def test_503_twice_then_200_is_delivered_once_after_three_attempts() -> None:
    with Receiver([503, 503]) as rx:
        s = sender(rx.url, backoff=0.3)
        s.submit("opened", make_alert())
        assert s.drain(10)
        s.stop()
    assert len(rx.requests) == 3
    assert s.stats.delivered == 1 and s.stats.failed == 0 and s.stats.retries == 2
    bodies = [r[2] for r in rx.requests]
    assert all(b == bodies[0] for b in bodies)  # the same notice each time
    assert bodies[0]["event"] == "alert.opened"
    assert bodies[0]["alert"]["signal"] == "orders" and bodies[0]["alert"]["evidence"]["expected"] == 985.0
    assert "dropped 38% below expected (612 vs 985/min) since 17:04 CEST" in bodies[0]["message"]
    # exponential backoff: the second wait is longer than the first
    t = [r[0] for r in rx.requests]
    assert t[1] - t[0] >= 0.29 and t[2] - t[1] >= 0.59


def test_a_400_is_not_retried_and_counts_as_failed() -> None:
    with Receiver([400]) as rx:
        s = sender(rx.url)
        s.submit("opened", make_alert())
        assert s.drain(10)
        s.stop()
    assert len(rx.requests) == 1
    assert s.stats.failed == 1 and s.stats.delivered == 0 and s.stats.retries == 0
    assert "400" in s.stats.last_error


def test_429_waits_at_least_its_retry_after() -> None:
    with Receiver([429], headers={"Retry-After": "1"}) as rx:
        s = sender(rx.url)
        s.submit("opened", make_alert())
        assert s.drain(10)
        s.stop()
    assert len(rx.requests) == 2 and s.stats.delivered == 1
    assert rx.requests[1][0] - rx.requests[0][0] >= 0.95


def test_an_unreachable_webhook_gives_up_within_its_time_bound() -> None:
    with Receiver() as rx:
        url = rx.url
    # the server is closed: every attempt is refused
    s = sender(url, timeout=1.0, backoff=0.1)
    started = time.monotonic()
    s.submit("opened", make_alert())
    assert s.drain(10)
    s.stop()
    assert time.monotonic() - started < 3
    assert s.stats.failed == 1 and s.stats.delivered == 0 and s.stats.retries >= 2


def test_a_slow_receiver_never_blocks_submit() -> None:
    with Receiver(delay=1.5) as rx:
        s = sender(rx.url)
        started = time.monotonic()
        for _ in range(5):
            s.submit("opened", make_alert())
        assert time.monotonic() - started < 0.2
        s.stop()


def test_a_full_queue_drops_and_counts() -> None:
    with Receiver(delay=0.5) as rx:
        s = sender(rx.url, queue_size=2)
        for _ in range(6):
            s.submit("opened", make_alert())
        assert s.stats.dropped >= 3
        s.stop()


def test_slack_format_has_text_and_blocks() -> None:
    alert = make_alert("orders<&>")
    with Receiver() as rx:
        s = sender(rx.url, "slack")
        s.submit("opened", alert)
        s.submit("resolved", replace(alert, resolved=alert.opened + timedelta(minutes=16)))
        assert s.drain(10)
        s.stop()
    opened, resolved = (r[2] for r in rx.requests)
    assert rx.requests[0][1]["Content-Type"] == "application/json"
    assert set(opened) == {"text", "blocks"}
    assert "dropped 38% below expected" in opened["text"] and "orders&lt;&amp;&gt;" in opened["text"]
    assert "<&>" not in opened["text"]  # would be read as a link or mention by Slack
    kinds = [b["type"] for b in opened["blocks"]]
    assert kinds[0] == "header" and "section" in kinds
    fields = next(b["fields"] for b in opened["blocks"] if "fields" in b)
    assert any("985/min" in f["text"] for f in fields) and all(f["type"] == "mrkdwn" for f in fields)
    assert "back within its expected band since 17:20 CEST" in resolved["text"]


def test_message_reads_in_the_business_time_zone() -> None:
    alert = make_alert()
    assert alert_message("opened", alert, tz="UTC").endswith("since 15:04 UTC")
    assert alert_message("opened", alert, tz="Europe/Berlin").endswith("since 17:04 CEST")
    spike = replace(alert, direction="spike", evidence={**alert.evidence, "observed": 1400.0})
    assert "orders rose 42% above expected (1,400 vs 985/min)" in alert_message("opened", spike, tz="UTC")


# --- events-* on the real node --------------------------------------------------------------------------


@pytest.fixture
def settings(stack_settings: Settings) -> Iterator[Settings]:
    yield stack_settings


def _events(settings: Settings, alert_id: str) -> list[dict[str, Any]]:
    es = client(settings)
    es.indices.refresh(index="events-*")
    hits = es.search(index="events-*", body={"query": {"term": {"alert.id": alert_id}}, "sort": [{"@timestamp": "asc"}], "size": 10})
    return [h["_source"] | {"_id": h["_id"]} for h in hits["hits"]["hits"]]


def test_alert_changes_become_events_once_each(stack_settings: Settings, unique: str) -> None:
    from pang.settings import StatusComponent

    settings = stack_settings.model_copy(update={"status_components": {
        "orders": StatusComponent(services=[f"order-{unique}"], signals=[f"orders_{unique}"])}})
    alert = make_alert(f"orders_{unique}")
    resolved = replace(alert, resolved=alert.opened + timedelta(minutes=16))
    changes = [AlertChange("opened", alert), AlertChange("resolved", resolved)]
    assert write_alert_events(settings, changes) == 2
    write_alert_events(settings, changes)  # again: same ids, nothing doubles
    docs = _events(settings, alert.id)
    assert [d["event"]["action"] for d in docs] == ["alert.opened", "alert.resolved"]
    opened, closed = docs
    assert opened["@timestamp"] == "2026-10-14T15:04:00Z" and closed["@timestamp"] == "2026-10-14T15:20:00Z"
    assert opened["event"]["kind"] == "alert" and opened["event"]["dataset"] == "events"
    assert opened["rule"]["name"] == f"orders_{unique}"
    assert opened["alert"]["state"] == "open" and closed["alert"]["state"] == "resolved"
    assert opened["alert"]["observed"] == 612.0 and opened["alert"]["expected"] == 985.0
    assert opened["alert"]["severity"] == "critical"
    assert opened["alert"]["evidence"]["cycles"]["last_week"] == 990.0
    assert "dropped 38% below expected" in opened["message"]
    assert opened["_id"] == f"{alert.id}:opened" == opened["event"]["id"]
    # the timeline and the status page see it as an alert of the order component's service
    assert opened["pang"]["type"] == "alert" and opened["alert"]["signal"] == f"orders_{unique}"
    assert opened["service"]["name"] == f"order-{unique}" and opened["alert"]["kind"] == "steady"
    # the timeline's full-text search finds it
    es = client(settings)
    found = es.search(index="events-*", body={"query": {"bool": {"filter": [
        {"match": {"message": "orders dropped"}}, {"term": {"rule.name": f"orders_{unique}"}}]}}})
    assert found["hits"]["total"]["value"] == 1


def test_notifier_writes_the_event_and_posts_the_webhook(stack_settings: Settings, unique: str) -> None:
    with Receiver([502]) as rx:
        settings = stack_settings.model_copy(update={"steady_webhooks": [rx.url], "steady_webhook_backoff": 0.05})
        n = Notifier(settings)
        alert = make_alert(f"payments_{unique}")
        n.notify([AlertChange("opened", alert)])
        n.close(drain=10)
    assert n.webhooks.stats.delivered == 1 and len(rx.requests) == 2
    assert [d["event"]["action"] for d in _events(settings, alert.id)] == ["alert.opened"]


def test_webhook_urls_are_checked_and_masked_in_config_show() -> None:
    from pang.settings import SettingsError, describe_settings, load_settings

    secret = "https://hooks.example.com/services/T000/B000/s3cr3t"
    shown = describe_settings(load_settings(steady_webhooks=[secret]))["PANG_STEADY_WEBHOOKS"]
    assert "s3cr3t" not in shown and "*" in shown
    assert WebhookSender.from_settings(load_settings(steady_webhooks=[secret])).urls == [secret]
    with pytest.raises(SettingsError, match="PANG_STEADY_WEBHOOKS: expected an http"):
        load_settings(steady_webhooks=["hooks.example.com/x"])
