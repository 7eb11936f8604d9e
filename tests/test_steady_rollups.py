"""Rollups on the real node: counts from aggregations equal the documents, stored and read back, ratios, generator backfill."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pang import traffic
from pang.indexer.client import client
from pang.indexer.naming import index_for
from pang.settings import Settings
from pang.steady import rollups as rollups_mod
from pang.steady.rollups import backfill_from_generator, compute_rollups, read_rollups, write_rollups
from pang.steady.signals import Signal

pytestmark = pytest.mark.stack


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def index_events(settings: Settings, events: list[tuple[datetime, str]], service: str) -> None:
    """Index app documents (one per event) into their daily logs-app index, the way the agent ships them."""
    es = client(settings)
    lines: list[dict[str, Any]] = []
    for i, (ts, action) in enumerate(events):
        lines.append({"index": {"_index": index_for("app", ts), "_id": f"{service}-{i}"}})
        lines.append({"@timestamp": _iso(ts), "message": f"{action} id={i}", "service": {"name": service},
                      "event": {"dataset": "app", "action": action}, "log": {"level": "INFO"}})
    for at in range(0, len(lines), 4000):
        answer = es.bulk(body=lines[at : at + 4000])
        assert not answer["errors"], answer["items"][:2]
    es.indices.refresh(index="logs-app-*")


def floor(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


@pytest.fixture
def signals(unique: str) -> list[Signal]:
    return [
        Signal(f"orders_{unique}", action=f"t{unique}.order.placed"),
        Signal(f"payments_{unique}", action=f"t{unique}.payment.approved"),
        Signal(f"ratio_{unique}", numerator=f"orders_{unique}", denominator=f"payments_{unique}"),
    ]


def crafted(signals: list[Signal], start: datetime, minutes: int, seed: int) -> list[tuple[datetime, str]]:
    """Events at random instants, plus one on each edge of every minute (:00.000 and :59.999), plus just outside."""
    rng = random.Random(seed)
    actions = [s.action for s in signals if s.action]
    events: list[tuple[datetime, str]] = []
    for m in range(minutes):
        minute = start + timedelta(minutes=m)
        if m % 7 == 3:
            continue  # an empty minute: must count as 0, not be missing
        for action in actions:
            for _ in range(rng.randint(0, 12)):
                events.append((minute + timedelta(milliseconds=rng.randrange(60_000)), action))
            if m % 2 == 0:
                events.append((minute, action))
                events.append((minute + timedelta(seconds=59, milliseconds=999), action))
    events.append((start - timedelta(milliseconds=1), actions[0]))  # before the range
    events.append((start + timedelta(minutes=minutes), actions[0]))  # the end is exclusive
    return events


def test_computed_rollups_equal_the_documents(stack_settings: Settings, signals: list[Signal], unique: str) -> None:
    start = datetime(2025, 3, 9, 23, 30, tzinfo=UTC)  # crosses midnight: two daily indices
    minutes = 70
    end = start + timedelta(minutes=minutes)
    events = crafted(signals, start, minutes, seed=1)
    # a document of another action in range is not counted
    events.append((start + timedelta(minutes=5), f"t{unique}.cart.viewed"))
    index_events(stack_settings, events, f"svc-{unique}")

    got = compute_rollups(stack_settings, start, end, signals)

    orders, payments = signals[0], signals[1]
    for s in (orders, payments):
        want = Counter(floor(ts) for ts, a in events if a == s.action and start <= ts < end)
        assert set(got[s.name]) == {start + timedelta(minutes=m) for m in range(minutes)}  # every minute present
        assert got[s.name] == {m: want.get(m, 0) for m in got[s.name]}
        assert sum(got[s.name].values()) == sum(want.values()) > 0
    empty = start + timedelta(minutes=3)
    assert got[orders.name][empty] == 0 and got[payments.name][empty] == 0


def test_long_ranges_are_chunked_and_still_exact(stack_settings: Settings, signals: list[Signal], monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2025, 3, 12, 22, 0, tzinfo=UTC)
    minutes = 240
    end = start + timedelta(minutes=minutes)
    events = crafted(signals, start, minutes, seed=2)
    index_events(stack_settings, events, "chunks")
    monkeypatch.setattr(rollups_mod, "BUCKET_BUDGET", 100)  # 60-minute chunks: 4 requests
    got = compute_rollups(stack_settings, start, end, signals[:1])
    want = Counter(floor(ts) for ts, a in events if a == signals[0].action and start <= ts < end)
    assert len(got[signals[0].name]) == minutes
    assert got[signals[0].name] == {m: want.get(m, 0) for m in got[signals[0].name]}


def test_rollups_are_stored_once_and_read_back_with_ratios(stack_settings: Settings, signals: list[Signal]) -> None:
    start = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
    orders, payments, ratio = signals
    counts = {
        orders.name: {start + timedelta(minutes=m): n for m, n in enumerate([10, 0, 7, 4])},
        payments.name: {start + timedelta(minutes=m): n for m, n in enumerate([20, 0, 0, 8])},
    }
    assert write_rollups(stack_settings, counts) == 8
    write_rollups(stack_settings, counts)  # again: overwrites, does not double

    es = client(stack_settings)
    stored = es.count(index="metrics-business-*", body={"query": {"term": {"business.metric": orders.name}}})["count"]
    assert stored == 4
    doc = es.get(index="metrics-business-2025.03.15", id=f"{orders.name}:2025-03-15T10:00Z")["_source"]
    assert doc["business"] == {"metric": orders.name, "count": 10, "window": "1m"}
    assert doc["event"] == {"dataset": "business", "kind": "metric"} and doc["@timestamp"] == "2025-03-15T10:00:00Z"

    back = read_rollups(stack_settings, start - timedelta(minutes=5), start + timedelta(minutes=10), signals)
    assert back[orders.name] == {m: float(n) for m, n in counts[orders.name].items()}
    assert back[payments.name] == {m: float(n) for m, n in counts[payments.name].items()}
    # 10/20, no value where payments were 0 (minutes 1 and 2), 4/8
    assert back[ratio.name] == {start: 0.5, start + timedelta(minutes=3): 0.5}
    # minutes never rolled up are missing, not 0
    assert start - timedelta(minutes=1) not in back[orders.name]


def test_backfill_from_generator_holds_the_generators_counts(stack_settings: Settings, unique: str) -> None:
    names = {"orders": f"g_orders_{unique}", "payments": f"g_payments_{unique}"}
    signals = [Signal(names["orders"], action="order.placed"), Signal(names["payments"], action="payment.approved")]
    start = datetime(2026, 9, 30, 20, 0, tzinfo=UTC)
    end = start + timedelta(hours=8)  # across a UTC day and the local 1st-of-the-month peak
    written = backfill_from_generator(stack_settings, start, end, 7, signals=signals)
    assert written == 2 * 8 * 60

    model = traffic.model_for(stack_settings)
    want: dict[str, dict[datetime, float]] = {n: {} for n in names.values()}
    for minute, signal, n in traffic.rollups(start, end, 7, model=model):
        if signal in names:
            want[names[signal]][minute] = float(n)
    got = read_rollups(stack_settings, start, end, signals)
    assert got == want
    peak = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # 00:00 on the 1st in Berlin
    assert got[names["orders"]][peak] > 3 * got[names["orders"]][peak - timedelta(minutes=30)]


def test_only_app_logs_count_unless_syslog_is_configured(stack_settings: Settings, unique: str) -> None:
    sig = [Signal(f"orders_{unique}", action=f"t{unique}.order.placed")]
    minute = datetime(2025, 3, 20, 9, 0, tzinfo=UTC)
    index_events(stack_settings, [(minute + timedelta(seconds=s), sig[0].action) for s in (1, 2, 3)], f"app-{unique}")
    es = client(stack_settings)
    es.index(index=index_for("syslog", minute), id=f"sys-{unique}", refresh=True,
             body={"@timestamp": _iso(minute + timedelta(seconds=5)), "event": {"dataset": "syslog", "action": sig[0].action}})
    assert compute_rollups(stack_settings, minute, minute + timedelta(minutes=1), sig)[sig[0].name] == {minute: 3}
    both = stack_settings.model_copy(update={"steady_log_datasets": ["app", "syslog"]})
    assert compute_rollups(both, minute, minute + timedelta(minutes=1), sig)[sig[0].name] == {minute: 4}
