"""The status page's arithmetic on crafted alerts and incidents: month edges, DST, overlaps, still open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pang.events.status import Interval, availability, component_status, intervals_from_events, month_bounds
from pang.settings import StatusComponent

TZ = "Europe/Berlin"
PAYMENT = StatusComponent(services=["payment"], signals=["payments"])


def T(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def crit(ident: str, start: datetime, end: datetime | None, **kw: object) -> Interval:
    return Interval(ident, "alert", start, end, "critical", services=("payment",), **kw)  # type: ignore[arg-type]


def test_month_bounds_follow_the_business_calendar_and_dst() -> None:
    start, end = month_bounds(2026, 10, TZ)
    assert start == T(2026, 9, 30, 22) and end == T(2026, 10, 31, 23)  # CEST at the start, CET at the end
    assert (end - start) == timedelta(days=31, hours=1)  # October has the extra hour of the DST change
    start, end = month_bounds(2026, 3, TZ)
    assert end - start == timedelta(days=31) - timedelta(hours=1)


def test_a_dst_month_counts_its_extra_hour() -> None:
    start, end = month_bounds(2026, 10, TZ)
    total, bad, _ = availability([crit("a", T(2026, 10, 10, 12), T(2026, 10, 10, 13))], start, end, now=T(2027, 1, 1))
    assert total == 31 * 1440 + 60 and bad == 60
    assert 1 - bad / total == pytest.approx(1 - 60 / 44_700)


def test_partial_minutes_count_whole_and_overlaps_count_once() -> None:
    start, end = month_bounds(2026, 11, TZ)
    ivs = [
        crit("a", T(2026, 11, 5, 10, 0, 30), T(2026, 11, 5, 10, 2, 10)),    # touches 10:00, 10:01, 10:02
        crit("b", T(2026, 11, 5, 10, 1), T(2026, 11, 5, 10, 5)),            # 10:01-10:04, overlapping a
        crit("c", T(2026, 11, 5, 11, 0), T(2026, 11, 5, 11, 0, 1)),         # one second: one minute
    ]
    total, bad, ids = availability(ivs, start, end, now=T(2027, 1, 1))
    assert bad == 5 + 1 and ids == ["a", "b", "c"] and total == 30 * 1440


def test_an_interval_across_a_month_edge_is_split_between_the_months() -> None:
    oct_start, oct_end = month_bounds(2026, 10, TZ)
    nov_start, nov_end = month_bounds(2026, 11, TZ)
    iv = [crit("edge", oct_end - timedelta(minutes=10), oct_end + timedelta(minutes=25))]
    assert availability(iv, oct_start, oct_end, now=T(2027, 1, 1))[1] == 10
    assert availability(iv, nov_start, nov_end, now=T(2027, 1, 1))[1] == 25


def test_an_open_incident_counts_up_to_now_and_the_current_month_only_so_far() -> None:
    start, end = month_bounds(2026, 12, TZ)
    now = start + timedelta(days=1, minutes=30, seconds=20)
    inc = Interval("inc-1", "incident", start + timedelta(days=1), None, "major", services=("payment",))
    total, bad, ids = availability([inc], start, end, now=now)
    assert total == 1440 + 31 and bad == 31 and ids == ["inc-1"]


def test_warnings_do_not_lower_availability_but_degrade_the_state() -> None:
    now = T(2026, 11, 20, 12)
    warn = Interval("w", "alert", now - timedelta(minutes=5), None, "warning", signal="payments")
    st = component_status("payment", PAYMENT, [warn], [], now=now, tz=TZ)
    assert st.state == "degraded" and [m.bad_minutes for m in st.months] == [0, 0, 0]
    assert st.months[-1].alerts == 1 and [m.label for m in st.months] == ["2026-09", "2026-10", "2026-11"]


def test_state_is_degraded_while_an_alert_is_open_down_during_an_incident_and_ok_after() -> None:
    now = T(2026, 11, 20, 12)
    iv = crit("x", now - timedelta(minutes=10), None)
    assert component_status("payment", PAYMENT, [iv], [], now=now, tz=TZ).state == "degraded"
    inc = Interval("inc", "incident", now - timedelta(minutes=3), None, "major", component="payment")
    assert component_status("payment", PAYMENT, [iv, inc], [], now=now, tz=TZ).state == "down"
    done = crit("x", now - timedelta(minutes=10), now - timedelta(minutes=1))
    st = component_status("payment", PAYMENT, [done], [], now=now, tz=TZ)
    assert st.state == "ok" and st.months[-1].bad_minutes == 9


def test_only_the_components_alerts_count() -> None:
    now = T(2026, 11, 20, 12)
    other = Interval("o", "alert", now - timedelta(hours=1), now, "critical", services=("cart",), signal="orders")
    deploys = [(now - timedelta(days=1), ("payment",)), (now - timedelta(days=2), ("cart",))]
    st = component_status("payment", PAYMENT, [other], deploys, now=now, tz=TZ)
    assert st.state == "ok" and st.months[-1].bad_minutes == 0 and st.months[-1].deploys == 1


def test_intervals_pair_opened_and_resolved_documents_by_alert_id() -> None:
    docs = [
        {"@timestamp": "2026-11-05T10:03:00.000Z", "pang": {"type": "alert"}, "event": {"action": "alert.opened", "start": "2026-11-05T10:03:00Z"},
         "alert": {"id": "a1", "severity": "critical", "signal": "orders"}, "message": "orders dropped"},
        {"@timestamp": "2026-11-05T10:20:00.000Z", "pang": {"type": "alert"}, "event": {"action": "alert.resolved", "end": "2026-11-05T10:20:00Z"},
         "alert": {"id": "a1", "severity": "critical", "signal": "orders"}},
        {"@timestamp": "2026-11-06T09:00:00.000Z", "pang": {"type": "alert"}, "event": {"action": "alert.opened"},
         "alert": {"id": "a2", "severity": "warning", "kind": "errors"}, "service": {"name": ["payment", "gateway"]}},
        {"@timestamp": "2026-11-07T09:00:00.000Z", "pang": {"type": "incident"}, "event": {"action": "incident.opened"},
         "incident": {"id": "i1", "severity": "major", "component": "payment", "state": "open"}},
    ]
    ivs = {iv.id: iv for iv in intervals_from_events(docs)}
    assert ivs["a1"].end == T(2026, 11, 5, 10, 20) and ivs["a1"].signal == "orders"
    assert ivs["a2"].end is None and ivs["a2"].services == ("payment", "gateway")
    assert ivs["i1"].kind == "incident" and ivs["i1"].concerns("payment", PAYMENT) and ivs["i1"].critical


def test_percent_never_rounds_downtime_up_to_a_clean_hundred() -> None:
    from pang.events.status import percent

    assert percent(1.0) == "100.00%" and percent(1 - 1 / 44_700) == "99.99%" and percent(None) == "–"
    assert percent(0.95) == "95.00%"
