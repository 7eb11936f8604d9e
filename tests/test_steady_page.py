"""The steady-state page in real headless Chromium, on the demo's traffic in the session's real OpenSearch node.

The data is what the demo writes: the traffic generator's exact per-minute
order counts as rollups (``backfill_from_generator``) for the weeks the model
looks back on and today, with the demo's bad deploy laid over the last
minutes (orders down by half). The alert comes the way ``pang steady run``
makes it: the model evaluates the stored series, the alert tracker opens an
alert, and the notifier writes it to ``events-*``. The signal has a unique
name (it counts ``order.placed`` like ``orders``), so no other test's
rollups or alerts are seen.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from pang.settings import Settings
from tests.browser import ThreadServer, screenshot
from tests.helpers import free_port

pytestmark = pytest.mark.stack

MIN = timedelta(minutes=1)
DROP_MINUTES = 12          # the bad deploy has been on for this long when the page is opened
DROP = 0.5                 # orders down by half, as the demo's injected incident
HISTORY = timedelta(weeks=5)  # enough earlier weeks for a confident band (the model wants 3); less to write than months


@dataclass(frozen=True)
class Demo:
    settings: Settings
    signal: str
    end: datetime                # the first minute with no rollup yet
    drop_start: datetime
    alert_opened: datetime
    alert_resolved: datetime | None
    direction: str
    severity: str


def _utc_minute(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def demo(stack_settings: Settings) -> Demo:
    from pang import traffic
    from pang.steady.alerts import AlertTracker
    from pang.steady.model import evaluate, model_config
    from pang.steady.notify import write_alert_events
    from pang.steady.rollups import backfill_from_generator, read_rollups, write_rollups
    from pang.steady.signals import signals_from

    signal = f"orders{uuid.uuid4().hex[:8]}"
    settings = stack_settings.model_copy(update={"steady_signals": {signal: "order.placed"}, "steady_ratios": {}})
    (sig,) = [s for s in signals_from(settings) if s.name == signal]
    config = model_config(settings)
    end = _utc_minute(datetime.now(UTC))
    history_start = end - HISTORY
    assert backfill_from_generator(settings, history_start, end, signals=[sig]) > 0

    drop_start = end - DROP_MINUTES * MIN
    normal = {m: n for m, name, n in traffic.rollups(drop_start, end, traffic.DEFAULT_SEED, model=traffic.model_for(settings))
              if name == "orders"}
    write_rollups(settings, {signal: {m: round(n * DROP) for m, n in normal.items()}})

    # What `pang steady run` does with each complete minute: evaluate, track, write the alert events.
    judge_from = end - timedelta(hours=3)
    series = read_rollups(settings, history_start, end, [sig])[signal]
    assert series[end - MIN] == round(normal[end - MIN] * DROP)
    tracker = AlertTracker(config)
    changes = []
    for point in evaluate(series, judge_from, end, config):
        changes += tracker.update(signal, point)
    opened = [c.alert for c in changes if c.kind == "opened" and c.alert.opened >= drop_start]
    assert opened, f"the model raised no alert for a {DROP:.0%} drop over {DROP_MINUTES} minutes: {changes}"
    write_alert_events(settings, changes, refresh=True)
    alert = opened[-1]
    resolved = {c.alert.id: c.alert.resolved for c in changes if c.kind == "resolved"}
    return Demo(settings, signal, end, drop_start, alert.opened, resolved.get(alert.id), alert.direction, alert.severity)


@pytest.fixture(scope="module")
def server(demo: Demo) -> Iterator[ThreadServer]:
    from pang.dashboards.app import create_app

    with ThreadServer(create_app(demo.settings).server) as srv:
        yield srv


def _plot(pg: Page) -> dict:  # type: ignore[type-arg]
    """What plotly drew: trace names and fills, and the shapes (read from the graph's DOM node)."""
    return pg.evaluate("""() => {
        const gd = document.querySelector('#steady-graph .js-plotly-plot');
        return {
            traces: gd.data.map(t => ({name: t.name, fill: t.fill || null, n: (t.y || []).filter(v => v !== null).length})),
            shapes: (gd.layout.shapes || []).map(s => ({name: s.name, x0: s.x0, x1: s.x1, label: (s.label || {}).text})),
        };
    }""")


def _window(href: str) -> tuple[datetime, datetime, list[str]]:
    params = parse_qs(urlsplit(href).query)
    start, end = (datetime.fromisoformat(params[k][0].replace("Z", "+00:00")) for k in ("from", "to"))
    return start, end, params.get("level", [])


def test_the_page_shows_the_band_and_the_demo_incidents_alert(page: Page, server: ThreadServer, demo: Demo) -> None:
    page.goto(f"{server.url}/steady?signal={demo.signal}&since=3h")
    expect(page.locator("#steady-state")).to_have_text("alert")
    graph = page.locator("#steady-graph")
    expect(graph.locator(".js-plotly-plot")).to_be_attached()

    # The band: a filled area (a fill path drawn in the scatter layer) with a value for (nearly) every minute.
    expect(graph.locator("g.scatterlayer .js-fill").first).to_be_attached()
    drawn = _plot(page)
    band = [t for t in drawn["traces"] if t["fill"] == "tonexty"]
    assert len(band) == 1 and band[0]["n"] >= 170, drawn["traces"]
    observed = [t for t in drawn["traces"] if t["name"] == "observed"]
    assert observed and observed[0]["n"] >= 170
    legend = graph.locator("g.legend text.legendtext").all_text_contents()  # SVG text: no inner_text
    assert {"expected band", "expected", "observed", "alert"} <= set(legend), legend

    # The alert period is shaded from where it opened, inside the drop, and labelled with its direction.
    alerts = [s for s in drawn["shapes"] if s["name"] == "alert"]
    assert alerts, drawn["shapes"]
    shaded = alerts[-1]
    assert datetime.fromisoformat(shaded["x0"]).replace(tzinfo=UTC) == demo.alert_opened
    assert demo.drop_start <= demo.alert_opened < demo.end
    assert shaded["label"].startswith("drop · ")
    expect(graph.locator(".layer-below .shapelayer path").first).to_be_attached()

    # The status line and the alert list say the same, with numbers a person can check.
    expect(page.locator("#steady-current")).to_contain_text("/min")
    expect(page.locator("#steady-band")).to_contain_text("–")
    rows = page.locator("tr.steady-alert")
    row = rows.filter(has_text=f"{demo.alert_opened:%Y-%m-%d %H:%M} UTC")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("drop")
    expect(row).to_contain_text(demo.severity)
    expect(row).to_contain_text("open" if demo.alert_resolved is None else f"{demo.alert_resolved:%H:%M} UTC")
    screenshot(page, "dash-steady-band-and-alert")

    # Its link opens the search page on the errors of the alert's window.
    link = row.get_by_role("link", name="logs of this window")
    start, end, levels = _window(link.get_attribute("href") or "")
    assert start == demo.alert_opened - timedelta(minutes=5)
    assert end >= (demo.alert_resolved or demo.end) + MIN
    assert levels == ["ERROR"]
    link.click()
    page.wait_for_url(re.compile(r"/search\?"))
    expect(page.locator("#search-total")).to_be_visible()
    assert _window(page.url)[:2] == (start, end)
    expect(page.locator("#search-from")).to_have_value(start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    expect(page.locator("#search-level label", has_text="ERROR").locator("input")).to_be_checked()


def test_a_click_in_the_shaded_alert_period_opens_the_search_for_it(page: Page, server: ThreadServer, demo: Demo) -> None:
    page.goto(f"{server.url}/steady?signal={demo.signal}&since=3h")
    expect(page.locator("#steady-state")).to_have_text("alert")
    link = page.locator("tr.steady-alert").first.get_by_role("link", name="logs of this window")
    expected = _window(link.get_attribute("href") or "")
    area = page.locator("#steady-graph .nsewdrag").first.bounding_box()
    assert area is not None
    lo, hi = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in page.evaluate(
        "() => document.querySelector('#steady-graph .js-plotly-plot').layout.xaxis.range"))
    inside = demo.alert_opened + 2 * MIN  # a few minutes after the alert opened: inside its shaded period
    x = area["x"] + area["width"] * ((inside - lo) / (hi - lo))
    y = area["y"] + area["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/search\?"))
    assert _window(page.url)[:2] == expected[:2]
    expect(page.locator("#search-total")).to_be_visible()


def test_cycles_range_and_signal_live_in_the_url(page: Page, server: ThreadServer, demo: Demo) -> None:
    page.goto(f"{server.url}/steady?signal={demo.signal}&since=3h")
    expect(page.locator("#steady-state")).to_have_text("alert")
    page.locator("#steady-cycles label", has_text="last week").locator("input").check()
    page.wait_for_url(re.compile(r"[?&]cycle=last_week"))
    expect(page.locator("#steady-graph g.legend text.legendtext", has_text="last week")).to_have_count(1)
    drawn = _plot(page)
    last_week = [t for t in drawn["traces"] if t["name"] == "last week"]
    assert last_week and last_week[0]["n"] >= 170  # the backfill holds last week's counts

    page.locator("#steady-since").click()
    page.get_by_role("option", name="Last 12 hours").click()
    page.wait_for_url(re.compile(r"[?&]since=12h"))
    params = parse_qs(urlsplit(page.url).query)
    assert params["signal"] == [demo.signal] and params["cycle"] == ["last_week"]
    page.wait_for_function("""() => {
        const r = document.querySelector('#steady-graph .js-plotly-plot').layout.xaxis.range;
        return new Date(r[1] + 'Z') - new Date(r[0] + 'Z') === 12 * 3600 * 1000;
    }""")  # the chart was redrawn for the new range
    shown = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in page.locator("#steady-status .steady-range").inner_text().split(" to ")]
    assert shown[1] - shown[0] == timedelta(hours=12) and shown[1] >= demo.end
    screenshot(page, "dash-steady-12h-last-week")

    page.locator("#steady-since").click()
    page.get_by_role("option", name="Last 7 days").click()  # the widest quick range: 10,080 minutes per line
    page.wait_for_function("""() => {
        const gd = document.querySelector('#steady-graph .js-plotly-plot');
        const r = gd.layout.xaxis.range;
        return new Date(r[1] + 'Z') - new Date(r[0] + 'Z') === 7 * 86400 * 1000 && gd.data.length >= 5;
    }""")
    drawn = _plot(page)
    assert [t["n"] for t in drawn["traces"] if t["name"] == "observed"][0] >= 7 * 1440 - 10
    expect(page.locator("tr.steady-alert").filter(has_text=f"{demo.alert_opened:%Y-%m-%d %H:%M} UTC")).to_have_count(1)
    screenshot(page, "dash-steady-7d")


def test_errors_show_in_a_banner_not_a_broken_page(page: Page, server: ThreadServer, demo: Demo) -> None:
    page.goto(f"{server.url}/steady?signal=<b>nope</b>&since=3h")
    banner = page.locator("#steady-error")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("<b>nope</b>")  # named as text, never markup
    assert page.locator("#steady-error b").count() == 0
    page.goto(f"{server.url}/steady?signal={demo.signal}&from=yesterday")
    expect(banner).to_contain_text("yesterday")

    from pang.dashboards.app import create_app

    down_url = f"http://127.0.0.1:{free_port(taken=set())}"
    with ThreadServer(create_app(demo.settings.model_copy(update={"opensearch_url": down_url})).server) as down:
        page.goto(f"{down.url}/steady?signal={demo.signal}&since=3h")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(f"OpenSearch at {down_url} is not answering")
        screenshot(page, "dash-steady-cluster-down")


def test_a_relative_range_refreshes_itself(page: Page, server: ThreadServer, demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    from pang.dashboards import steady_page
    from pang.steady.rollups import write_rollups

    monkeypatch.setattr(steady_page, "REFRESH_MS", 1_000)  # the layout reads it per visit; 30 s in production
    page.goto(f"{server.url}/steady?signal={demo.signal}&since=3h")
    expect(page.locator("#steady-current")).to_contain_text("/min")
    assert page.locator("#steady-current").inner_text() != "7/min"
    write_rollups(demo.settings, {demo.signal: {demo.end - MIN: 7}})  # the newest minute, counted again
    expect(page.locator("#steady-current")).to_have_text("7/min")  # no reload, no click

    page.goto(f"{server.url}/steady?signal={demo.signal}&from={(demo.end - timedelta(hours=2)):%Y-%m-%dT%H:%MZ}")
    expect(page.locator("#steady-current")).to_have_text("7/min")
    write_rollups(demo.settings, {demo.signal: {demo.end - MIN: 8}})
    page.wait_for_timeout(3_000)  # an absolute range stays as it was drawn
    expect(page.locator("#steady-current")).to_have_text("7/min")
