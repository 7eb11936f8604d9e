"""The steady-state page's URL, its time range (business-local "today") and its links to the search page (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pang.dashboards import urlstate
from pang.dashboards.steady_url import (
    MAX_SPAN,
    SteadyState,
    alert_search_href,
    from_query,
    resolve_range,
    to_query,
)
from pang.indexer.timerange import TimeRangeError, parse_time_range

NOW = datetime(2026, 11, 26, 17, 12, 41, 500_000, tzinfo=UTC)


def test_a_url_round_trips_and_the_default_page_has_an_empty_query() -> None:
    state = SteadyState(signal="payments", since="12h", cycles=("last_week", "yesterday"))
    assert to_query(state) == "?signal=payments&since=12h&cycle=last_week&cycle=yesterday"
    assert from_query(to_query(state)) == state
    absolute = SteadyState(signal="orders", start="2026-11-26T10:00Z", end="2026-11-26T12:00Z")
    assert from_query(to_query(absolute)) == absolute
    assert to_query(SteadyState()) == ""
    assert from_query("").effective_since == "3h" and from_query("").is_live
    assert not absolute.is_live


def test_junk_in_the_url_is_bounded_and_ignored() -> None:
    state = from_query("?signal=" + "x" * 1000 + "&since=1h&from=&evil=1&cycle=a&cycle=a&cycle=" + "c" * 500)
    assert state.signal == "x" * 100
    assert state.cycles == ("a", "c" * 60)
    assert state.since == "1h" and state.start is None
    assert from_query("?since=1h&signal=" + "y" * 5000 + "&cycle=late").cycles == ()  # past the bound: cut off
    many = from_query("?" + "&".join(f"cycle=c{i}" for i in range(100)))
    assert len(many.cycles) == 10
    assert from_query("?from=2026-11-26T10:00Z&since=1h").since is None  # an absolute start wins


def test_a_quick_range_ends_with_the_last_complete_minute() -> None:
    start, end = resolve_range(SteadyState(since="3h"), timezone="Europe/Berlin", now=NOW)
    assert end == datetime(2026, 11, 26, 17, 12, tzinfo=UTC)
    assert end - start == timedelta(hours=3)
    start, end = resolve_range(SteadyState(since="7d"), timezone="UTC", now=NOW)
    assert end - start == timedelta(days=7)


@pytest.mark.parametrize(("zone", "now", "midnight"), [
    # 00:30 in Berlin (CET, UTC+1) is still the 26th in UTC: today began at 23:00 UTC the day before.
    ("Europe/Berlin", datetime(2026, 11, 26, 23, 30, tzinfo=UTC), datetime(2026, 11, 26, 23, 0, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 7, 1, 12, 0, tzinfo=UTC), datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),  # CEST
    ("UTC", datetime(2026, 11, 26, 23, 30, tzinfo=UTC), datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 26, 3, 0, tzinfo=UTC), datetime(2026, 11, 25, 5, 0, tzinfo=UTC)),
])
def test_today_is_the_business_local_day(zone: str, now: datetime, midnight: datetime) -> None:
    start, end = resolve_range(SteadyState(since="today"), timezone=zone, now=now)
    assert start == midnight
    assert end == now.replace(second=0, microsecond=0)


def test_today_just_after_midnight_is_still_a_range() -> None:
    now = datetime(2026, 11, 26, 23, 0, 20, tzinfo=UTC)  # 00:00:20 in Berlin
    start, end = resolve_range(SteadyState(since="today"), timezone="Europe/Berlin", now=now)
    assert end - start == timedelta(minutes=1)


def test_an_absolute_range_covers_whole_minutes() -> None:
    state = SteadyState(start="2026-11-26T10:00:30Z", end="2026-11-26T12:00:10Z")
    assert resolve_range(state, timezone="UTC", now=NOW) == (
        datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 26, 12, 1, tzinfo=UTC))
    start, end = resolve_range(SteadyState(start="now-6h"), timezone="UTC", now=NOW)
    assert (start, end) == (datetime(2026, 11, 26, 11, 12, tzinfo=UTC), datetime(2026, 11, 26, 17, 12, tzinfo=UTC))


@pytest.mark.parametrize(("state", "words"), [
    (SteadyState(start="yesterday"), "not a start time"),
    (SteadyState(start="2026-11-26T12:00Z", end="2026-11-26T10:00Z"), "before the end"),
    (SteadyState(since="30d"), f"longer than {MAX_SPAN.days} days"),
    (SteadyState(since="soon"), "not a duration"),
    # the year 9999's last minute cannot be rounded up: a range error, not OverflowError (issue 16)
    (SteadyState(start="2026-11-26T10:00Z", end="9999-12-31T23:59:59Z"), f"longer than {MAX_SPAN.days} days"),
    (SteadyState(start="9999-12-31T23:59:30Z", end="9999-12-31T23:59:59Z"), "before the end"),
])
def test_ranges_nobody_can_draw_are_refused_in_words(state: SteadyState, words: str) -> None:
    with pytest.raises(TimeRangeError, match=words):
        resolve_range(state, timezone="UTC", now=NOW)


def test_an_alerts_search_link_is_the_search_pages_url_for_its_window() -> None:
    opened = datetime(2026, 11, 26, 16, 4, tzinfo=UTC)
    resolved = datetime(2026, 11, 26, 16, 14, tzinfo=UTC)
    href = alert_search_href(opened, resolved, NOW)
    assert href.startswith("/search?")
    search = urlstate.from_query(href.removeprefix("/search"))
    assert search.levels == ("ERROR",) and search.text == ""
    window = parse_time_range(start=search.start, end=search.end, now=NOW)
    assert window.start == opened - timedelta(minutes=5)
    assert window.end == resolved + timedelta(minutes=1)

    still_open = urlstate.from_query(alert_search_href(opened, None, NOW).removeprefix("/search"))
    assert parse_time_range(start=still_open.start, end=still_open.end, now=NOW).end == (NOW + timedelta(minutes=1)).replace(microsecond=0)
