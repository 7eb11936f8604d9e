"""The steady-state loop end to end on the real node: logs -> rollups -> model -> alert in events-* and a webhook -> resolved."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pang.indexer.client import client
from pang.settings import Settings
from pang.steady.rollups import read_rollups, write_rollups
from pang.steady.runner import Runner, state_path, status
from pang.steady.signals import signals_from
from pang.steady.view import steady_view
from tests.helpers import free_port
from tests.test_steady_notify import Receiver
from tests.test_steady_rollups import index_events

pytestmark = pytest.mark.stack

RATE = 300  # orders per minute: a 60% drop is plain at this rate within the K-of-N window
T0 = datetime(2025, 6, 18, 8, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Berlin: no calendar peak near


def poisson(rng: random.Random, lam: float) -> int:
    return max(0, round(rng.gauss(lam, lam**0.5)))


def test_run_loop_opens_delivers_and_resolves_an_alert(stack_settings: Settings, unique: str, tmp_path: Path) -> None:
    orders, payments = f"orders_{unique}", f"payments_{unique}"
    o_action, p_action = f"t{unique}.order.placed", f"t{unique}.payment.approved"
    rng = random.Random(5)
    with Receiver() as rx:
        settings = stack_settings.model_copy(update={
            "state_dir": tmp_path,
            "steady_signals": {orders: o_action, payments: p_action},
            "steady_ratios": {},
            "steady_history_weeks": 2,
            "steady_min_cycles": 2,
            "steady_lag_seconds": 60.0,
            "steady_webhooks": [rx.url],
            "steady_webhook_backoff": 0.05,
        })
        signals = signals_from(settings)
        # History as rollups (two weeks of a steady rate): the runner reads it, never the logs for it.
        logs_from = T0 - timedelta(minutes=20)
        hist_start = logs_from - timedelta(weeks=2, hours=3)
        history = {orders: {}, payments: {}}
        t = hist_start
        while t < logs_from:
            history[orders][t] = poisson(rng, RATE)
            history[payments][t] = poisson(rng, RATE * 0.9)
            t += timedelta(minutes=1)
        write_rollups(settings, history)

        # The last 20 minutes and the next 35 as log documents; orders drop by 60% over [T0+5, T0+17).
        drop = (T0 + timedelta(minutes=5), T0 + timedelta(minutes=17))
        events: list[tuple[datetime, str]] = []
        log_counts: dict[datetime, int] = {}
        t = logs_from
        while t < T0 + timedelta(minutes=40):
            n = poisson(rng, RATE * (0.4 if drop[0] <= t < drop[1] else 1.0))
            log_counts[t] = n
            events += [(t + timedelta(milliseconds=rng.randrange(60_000)), o_action) for _ in range(n)]
            events += [(t + timedelta(milliseconds=rng.randrange(60_000)), p_action) for _ in range(poisson(rng, RATE * 0.9))]
            t += timedelta(minutes=1)
        index_events(settings, events, f"shop-{unique}")

        runner = Runner(settings)
        try:
            changes = []
            for minute in range(0, 40):  # one pass per minute, as the loop would
                changes += runner.step(now=T0 + timedelta(minutes=minute, seconds=61))
            assert runner.notifier.webhooks.drain(10)
        finally:
            runner.shutdown()

        # the rollups written from the logs equal the documents
        stored = read_rollups(settings, logs_from, T0 + timedelta(minutes=39), signals)[orders]
        assert stored == {m: float(n) for m, n in log_counts.items() if m < T0 + timedelta(minutes=39)}

        # one alert: a drop of orders, opened within 3 minutes of the drop's start, resolved after it ended
        assert [(c.kind, c.alert.signal) for c in changes] == [("opened", orders), ("resolved", orders)]
        alert = changes[1].alert
        assert alert.direction == "drop"
        assert drop[0] <= alert.opened <= drop[0] + timedelta(minutes=3)
        # back in band once the longest window no longer holds a dropped minute, then M minutes in band
        settle = max(runner.config.windows) - 1 + settings.steady_alert_m
        assert drop[1] + timedelta(minutes=settings.steady_alert_m) <= alert.resolved <= drop[1] + timedelta(minutes=settle + 2)

        es = client(settings)
        es.indices.refresh(index="events-*")
        docs = [h["_source"] for h in es.search(index="events-*", body={
            "query": {"term": {"rule.name": orders}}, "sort": [{"@timestamp": "asc"}]})["hits"]["hits"]]
        assert [d["event"]["action"] for d in docs] == ["alert.opened", "alert.resolved"]
        assert docs[0]["alert"]["id"] == alert.id and docs[0]["alert"]["observed"] < docs[0]["alert"]["expected"]

        posted = [r[2] for r in rx.requests]
        assert [p["event"] for p in posted] == ["alert.opened", "alert.resolved"]
        assert posted[0]["alert"]["signal"] == orders and "dropped" in posted[0]["message"]

    # the dashboard's view of the same window: points, the alert shaded, earlier cycles aligned
    view = steady_view(settings, orders, T0 - timedelta(minutes=10), T0 + timedelta(minutes=39), now=T0 + timedelta(hours=1))
    assert [p.minute for p in view.points] == [T0 + timedelta(minutes=m) for m in range(-10, 39)]
    assert [p.observed for p in view.points] == [float(log_counts[p.minute]) for p in view.points]
    assert [a.id for a in view.alerts] == [alert.id] and view.alerts[0].resolved == alert.resolved
    assert view.alerts[0].direction == "drop" and view.alerts[0].severity == alert.severity
    week = dict(view.cycles["last_week"])
    assert week[T0] == float(history[orders][T0 - timedelta(days=7)])
    assert dict(view.cycles["yesterday"])[T0] == float(history[orders][T0 - timedelta(days=1)])
    assert [m for m, _ in view.cycles["first_of_last_month"]] == [p.minute for p in view.points]
    assert steady_view(settings, orders, T0, T0 + timedelta(minutes=5), now=T0 + timedelta(hours=1)).alerts == []  # before it opened

    # the state survives: a new runner continues after the last judged minute, with nothing open
    saved = json.loads(state_path(settings).read_text())
    assert saved["next_minute"] == "2025-06-18T08:39:00Z"
    rows = {r.signal: r for r in status(settings, now=T0 + timedelta(minutes=39, seconds=61))}
    assert rows[orders].alert is None and rows[orders].state == "ok"
    assert rows[orders].observed == log_counts[T0 + timedelta(minutes=38)]
    assert rows[orders].lower < RATE < rows[orders].upper and not rows[orders].low_confidence


def test_pang_steady_run_serves_metrics_and_stops_on_sigterm(stack_settings: Settings, unique: str, tmp_path: Path) -> None:
    port = free_port(taken=set())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
    env.update({
        "PANG_STATE_DIR": str(tmp_path),
        "PANG_CACHE_DIR": str(stack_settings.cache_dir),
        "PANG_OPENSEARCH_URL": stack_settings.opensearch_url,
        "PANG_STEADY_HTTP_PORT": str(port),
        "PANG_STEADY_INTERVAL": "0.5",
        "PANG_STEADY_SIGNALS": json.dumps({f"orders_{unique}": f"t{unique}.order.placed"}),
        "PANG_STEADY_RATIOS": "{}",
    })
    proc = subprocess.Popen([sys.executable, "-m", "pang.cli", "steady", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and health is None:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:] if proc.stdout else ""
            health = _get_json(f"http://127.0.0.1:{port}/healthz")
            time.sleep(0.1)
        assert health is not None and health["status"] == "ok"
        deadline = time.monotonic() + 20
        metrics = ""
        while time.monotonic() < deadline and "pang_steady_passes_total 0.0" in (metrics or "pang_steady_passes_total 0.0"):
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            time.sleep(0.2)
        assert "pang_steady_passes_total" in metrics and "pang_steady_webhooks_failed_total 0.0" in metrics
        assert f'pang_steady_alert_open{{direction="",severity="",signal="orders_{unique}"}} 0.0' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        printed = proc.stdout.read().decode() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}" in printed
        assert (tmp_path / "steady" / "alerts.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def test_first_run_backfills_rollups_from_the_logs_it_finds(stack_settings: Settings, unique: str, tmp_path: Path) -> None:
    orders = f"orders_{unique}"
    action = f"t{unique}.order.placed"
    settings = stack_settings.model_copy(update={
        "state_dir": tmp_path, "steady_signals": {orders: action}, "steady_ratios": {},
        "steady_history_weeks": 1, "steady_min_cycles": 1, "steady_lag_seconds": 60.0,
    })
    rng = random.Random(9)
    now = datetime(2025, 7, 9, 12, 0, 30, tzinfo=UTC)
    logs_from = now - timedelta(days=3, minutes=7, seconds=20)  # logs began mid-minute, three days ago
    events: list[tuple[datetime, str]] = []
    t = logs_from
    while t < now:
        events.append((t, action))
        t += timedelta(seconds=rng.uniform(5, 40))
    later = f"t{unique}.payment.approved"  # a signal configured only after the first run
    index_events(settings, events + [(ts + timedelta(seconds=1), later) for ts, _ in events[::2]], f"shop-{unique}")

    runner = Runner(settings)
    try:
        runner.step(now=now)
    finally:
        runner.shutdown()

    first_whole = logs_from.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = datetime(2025, 7, 9, 11, 59, tzinfo=UTC)  # 60 s lag: 11:59 is not complete at 12:00:30
    got = read_rollups(settings, logs_from - timedelta(days=1), now, signals_from(settings))[orders]
    counts: dict[datetime, float] = {}
    for ts, _ in events:
        m = ts.replace(second=0, microsecond=0)
        counts[m] = counts.get(m, 0) + 1
    want = {first_whole + timedelta(minutes=i): float(counts.get(first_whole + timedelta(minutes=i), 0))
            for i in range(int((end - first_whole) / timedelta(minutes=1)))}
    assert got == want  # every minute since the logs began, 0 where none; nothing before them (unknown, not 0)
    assert runner.stats.backfilled > 0 and json.loads(state_path(settings).read_text())["next_minute"] == "2025-07-09T11:59:00Z"

    # a signal added to the settings later gets its history at the next start
    payments = f"payments_{unique}"
    settings2 = settings.model_copy(update={"steady_signals": {orders: action, payments: later}})
    runner = Runner(settings2)
    try:
        runner.step(now=now + timedelta(minutes=1))
    finally:
        runner.shutdown()
    got2 = read_rollups(settings2, logs_from - timedelta(days=1), now, signals_from(settings2))[payments]
    assert min(got2) == first_whole and len(got2) == len(want) + 1
    shifted = [ts + timedelta(seconds=1) for ts, _ in events[::2]]
    assert sum(got2.values()) == sum(1 for ts in shifted if first_whole <= ts < end + timedelta(minutes=1))
