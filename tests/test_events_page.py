"""The timeline (/events) and status (/status) pages in real headless Chromium, on events in the real node.

The events are what pang writes: a rollout's phases from the traffic
generator's :class:`~pang.traffic.incidents.Deployment` (the same code the demo
uses), a steady-state alert written by the notifier, an error-rate alert that
names two services, and a config change. Service and signal names are unique
per run, and every page is opened filtered on them, so other tests' events
never show.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from pang.settings import Settings, StatusComponent
from tests.browser import ThreadServer, screenshot

pytestmark = pytest.mark.stack

MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Events:
    settings: Settings
    cart: str
    order: str
    signal: str
    deploy_at: datetime
    alert_id: str
    error_alert_id: str
    old_alert_opened: datetime


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _alert_doc(alert_id: str, action: str, at: datetime, opened: datetime, *, severity: str, signal: str | None = None,
               services: list[str] | None = None, message: str) -> dict:  # type: ignore[type-arg]
    doc = {
        "@timestamp": _iso(at), "message": message, "pang": {"type": "alert"},
        "event": {"dataset": "events", "kind": "alert", "action": action, "id": f"{alert_id}:{action}", "start": _iso(opened),
                  **({"end": _iso(at)} if action == "alert.resolved" else {})},
        "alert": {"id": alert_id, "severity": severity, "state": "open" if action == "alert.opened" else "resolved",
                  "kind": "steady" if signal else "errors", **({"signal": signal} if signal else {})},
        "rule": {"name": signal or "errors"},
    }
    if services:
        doc["service"] = {"name": services}
    return doc


@pytest.fixture(scope="module")
def events(stack_settings: Settings) -> Events:
    from pang.events.schema import EventIn
    from pang.events.store import write_documents
    from pang.traffic.incidents import Deployment

    uid = uuid.uuid4().hex[:6]
    cart, order, signal = f"cart-{uid}", f"order-{uid}", f"orders{uid}"
    settings = stack_settings.model_copy(update={
        "status_components": {f"orders-{uid}": StatusComponent(services=[order], signals=[signal], title=f"Orders {uid}"),
                              f"cart-{uid}": StatusComponent(services=[cart], title=f"Cart {uid}")},
        "service_neighbours": {order: [cart], cart: [order]},
    })
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    deploy_at = now - 25 * MIN          # DEPLOY_ALL started: its phases run from 40 minutes ago to 21 minutes ago
    dep = Deployment(f"deploy-{cart}", cart, deploy_at, "2026.11.20-0900", "2026.12.02-1000")
    docs = dep.events()
    opened = deploy_at + 3 * MIN
    alert_id = f"steady-{signal}-1"
    docs.append(_alert_doc(alert_id, "alert.opened", opened, opened, severity="critical", signal=signal, services=[order],
                           message=f"{signal} dropped 48% below expected (900 vs 1,750/min)"))
    error_alert_id = f"errors-{uid}-1"
    docs.append(_alert_doc(error_alert_id, "alert.opened", deploy_at + 2 * MIN, deploy_at + 2 * MIN, severity="warning",
                           services=[order, "gateway"], message=f"{order} and 1 other: error count up"))
    config = EventIn(type="config", service=[order], timestamp=now - 50 * MIN, actor="ops.bot",
                     message=f"{order}: connection pool 50 -> 20")
    outside = EventIn(type="config", service=[order], timestamp=now - 3 * timedelta(hours=1), actor="ops.bot",
                      message=f"{order}: older change, outside the last hour")
    docs += [config.document(), outside.document()]
    # An alert of earlier this month, resolved after 30 minutes: the month's availability is below 100%.
    local = now.astimezone(ZoneInfo(settings.business_timezone))
    month_start = local.replace(day=1, hour=0, minute=0).astimezone(UTC)
    old_opened = max(month_start + 10 * MIN, now - timedelta(days=1))
    old_id = f"steady-{signal}-0"
    docs.append(_alert_doc(old_id, "alert.opened", old_opened, old_opened, severity="critical", signal=signal, message="earlier drop"))
    docs.append(_alert_doc(old_id, "alert.resolved", old_opened + 30 * MIN, old_opened, severity="critical", signal=signal,
                           message="earlier drop resolved"))
    write_documents(settings, docs, refresh=True)
    return Events(settings, cart, order, signal, deploy_at, alert_id, error_alert_id, old_opened)


@pytest.fixture(scope="module")
def server(events: Events) -> Iterator[ThreadServer]:
    from pang.dashboards.app import create_app

    with ThreadServer(create_app(events.settings).server) as srv:
        yield srv


def test_the_last_hour_shows_the_rollout_and_the_alerts_with_counts_and_links(page: Page, server: ThreadServer, events: Events) -> None:
    page.goto(f"{server.url}/events?since=1h&service={events.cart}&service={events.order}")
    counts = page.locator("#events-counts")
    # 12 phase events (6 phases, started and done), 2 alerts, 1 config change inside the hour; the older change is not
    expect(counts).to_have_text("Deployment: 12 / Alert: 2 / Config: 1")
    rows = page.locator(".event-row:not(.event-header)")
    expect(rows).to_have_count(15)
    times = [t for t in rows.locator(".col-time").all_inner_texts()]
    assert times == sorted(times, reverse=True), "newest first"
    expect(page.locator(".event-row", has_text="older change")).to_have_count(0)

    # A deploy row: role, type, phase/outcome/actor as its message, the local time, links to its logs and its diff.
    deploy = rows.filter(has_text="DEPLOY_ALL started")
    expect(deploy).to_have_count(1)
    expect(deploy.locator(".col-service")).to_have_text(events.cart)
    expect(deploy.locator(".col-type")).to_have_text("Deployment")
    expect(deploy.locator(".col-message")).to_contain_text("2026.12.02-1000")
    local = events.deploy_at.astimezone(ZoneInfo(events.settings.business_timezone))
    expect(deploy.locator(".col-time")).to_have_text(local.strftime("%Y-%m-%d %H:%M:%S %Z"))
    logs = parse_qs(urlsplit(deploy.get_by_role("link", name="logs").get_attribute("href") or "").query)
    assert logs["service"] == [events.cart]
    assert datetime.fromisoformat(logs["from"][0].replace("Z", "+00:00")) == events.deploy_at - timedelta(minutes=5)
    assert (deploy.get_by_role("link", name="diff").get_attribute("href") or "").startswith("https://git.example.com/")

    # The steady-state alert links to its evidence; the error-rate alert names both services.
    alert = rows.filter(has_text="dropped 48%")
    evidence = alert.get_by_role("link", name="evidence").get_attribute("href") or ""
    assert evidence.startswith("/steady?") and parse_qs(urlsplit(evidence).query)["signal"] == [events.signal]
    expect(rows.filter(has_text="error count up").locator(".col-service")).to_have_text(f"{events.order}, gateway")
    # under each open alert: what changed in the hour before it (the cart rollout: order's neighbour)
    expect(page.locator(".changes-before").first).to_contain_text(f"{events.cart}")
    expect(page.locator(".changes-before").first).to_contain_text("DEPLOY_ALL started")
    screenshot(page, "dash-events-last-hour")

    # The type filter narrows the rows, keeps every count, and lives in the URL.
    page.locator("#events-type label", has_text="Alert").locator("input").check()
    page.wait_for_url(re.compile(r"[?&]type=alert"))
    expect(rows).to_have_count(2)
    url = page.url
    other = page.context.new_page()
    other.goto(url)
    expect(other.locator(".event-row:not(.event-header)")).to_have_count(2)
    expect(other.locator("#events-type label", has_text="Alert").locator("input")).to_be_checked()
    other.close()

    # Free text finds the config change; the evidence link opens the steady-state page.
    page.goto(f"{server.url}/events?since=1h&service={events.order}&q=pool")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("connection pool 50 -> 20")


def test_an_absolute_range_and_quick_range_round_trip(page: Page, server: ThreadServer, events: Events) -> None:
    start = (events.deploy_at - 16 * MIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (events.deploy_at - 12 * MIN).strftime("%Y-%m-%dT%H:%M:%SZ")
    page.goto(f"{server.url}/events?from={start}&to={end}&service={events.cart}")
    # [deploy-16, deploy-12): STAGE started (-15) and success (-13), CANARY started (-13)
    expect(page.locator(".event-row:not(.event-header)")).to_have_count(3)
    expect(page.locator("#events-from")).to_have_value(start)
    page.get_by_role("button", name="Last hour").click()
    page.wait_for_url(re.compile(r"[?&]since=1h"))
    expect(page.locator("#events-counts")).to_have_text("Deployment: 12")


def test_the_status_page_shows_the_component_degraded_then_recovered(page: Page, server: ThreadServer, events: Events) -> None:
    from pang.events.store import write_documents

    uid = events.order.removeprefix("order-")
    page.goto(f"{server.url}/status")
    state = page.locator(f"#status-state-orders-{uid}")
    expect(state).to_have_text("degraded")
    expect(page.locator(f"#status-state-cart-{uid}")).to_have_text("ok")
    month = datetime.now(UTC).astimezone(ZoneInfo(events.settings.business_timezone)).strftime("%Y-%m")
    figure = page.locator(f"#status-orders-{uid}-{month}")
    expect(figure).not_to_have_text("100.00%")
    title = figure.get_attribute("title") or ""
    assert "inside an open critical alert or incident" in title and f"steady-{events.signal}-0" in title
    screenshot(page, "dash-status-degraded")

    now = datetime.now(UTC)
    write_documents(events.settings, [
        _alert_doc(events.alert_id, "alert.resolved", now, events.deploy_at + 3 * MIN, severity="critical", signal=events.signal,
                   message="back within its band"),
        _alert_doc(events.error_alert_id, "alert.resolved", now, events.deploy_at + 2 * MIN, severity="warning",
                   services=[events.order, "gateway"], message="errors back to normal"),
    ], refresh=True)
    page.reload()
    expect(state).to_have_text("ok")


def test_the_search_histogram_marks_the_deploy(page: Page, server: ThreadServer, events: Events) -> None:
    page.goto(f"{server.url}/search?since=1h&service={events.cart}")
    expect(page.locator("#search-total")).to_be_visible()
    expect(page.locator("#search-histogram .js-plotly-plot")).to_be_attached()
    page.wait_for_function("() => (document.querySelector('#search-histogram .js-plotly-plot').layout.shapes || []).length > 0")
    shapes = page.evaluate("""() => (document.querySelector('#search-histogram .js-plotly-plot').layout.shapes || [])
                              .map(s => ({name: s.name, x0: s.x0}))""")
    deploys = [s for s in shapes if s["name"] == "deploy"]
    assert len(deploys) == 1, shapes
    assert datetime.fromisoformat(deploys[0]["x0"]).replace(tzinfo=UTC) == events.deploy_at
