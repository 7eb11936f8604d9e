"""Time ranges as people type them: durations, now-relative and ISO times, UTC, half-open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pang.indexer.timerange import QUICK_RANGES, TimeRange, TimeRangeError, parse_time_range

NOW = datetime(2026, 11, 24, 10, 0, 0, 123_456, tzinfo=UTC)
NOW_MS = NOW.replace(microsecond=123_000)


def test_default_is_the_last_15_minutes_in_whole_milliseconds() -> None:
    tr = parse_time_range(now=NOW)
    assert tr.end == NOW_MS and tr.start == NOW_MS - timedelta(minutes=15)
    assert tr.end_ms - tr.start_ms == 15 * 60 * 1000


@pytest.mark.parametrize(("since", "span"), [("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)),
                                             ("1h", timedelta(hours=1)), ("24h", timedelta(days=1)), ("7d", timedelta(days=7)),
                                             (" 2W ", timedelta(weeks=2))])
def test_since(since: str, span: timedelta) -> None:
    tr = parse_time_range(since, now=NOW)
    assert (tr.start, tr.end) == (NOW_MS - span, NOW_MS)


def test_quick_ranges_are_valid_durations_shortest_first() -> None:
    spans = [parse_time_range(value, now=NOW).seconds for value, _label in QUICK_RANGES]
    assert spans == sorted(spans) and spans[0] == 15 * 60 and spans[-1] == 7 * 86400
    assert all(label.startswith("Last") for _v, label in QUICK_RANGES)


def test_absolute_and_now_relative_times() -> None:
    tr = parse_time_range(start="2026-11-24T08:00:00", end="2026-11-24T09:30:00.5+01:00", now=NOW)
    assert tr.start == datetime(2026, 11, 24, 8, tzinfo=UTC)  # no zone: UTC
    assert tr.end == datetime(2026, 11, 24, 8, 30, 0, 500_000, tzinfo=UTC)
    assert parse_time_range(start="now-2h", end="now-1h", now=NOW) == TimeRange(NOW_MS - timedelta(hours=2), NOW_MS - timedelta(hours=1))
    # a start alone runs until now; "Z" and a date alone are accepted
    tr = parse_time_range(start="2026-11-24", now=NOW)
    assert tr == TimeRange(datetime(2026, 11, 24, tzinfo=UTC), NOW_MS)
    assert parse_time_range(start="2026-11-24T09:00:00Z", now=NOW).start == datetime(2026, 11, 24, 9, tzinfo=UTC)
    # since counts back from an explicit end
    assert parse_time_range("1h", end="2026-11-24T06:00Z", now=NOW).start == datetime(2026, 11, 24, 5, tzinfo=UTC)


def test_now_without_zone_is_taken_as_utc() -> None:
    local = datetime(2026, 11, 24, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time_range("1h", now=local).end == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert parse_time_range("1h", now=datetime(2026, 11, 24, 10)).end == datetime(2026, 11, 24, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"since": "0m"}, "not a duration"),
        ({"since": "1q"}, "not a duration"),
        ({"since": "-1h"}, "not a duration"),
        ({"start": "yesterday"}, "not a start time"),
        ({"start": "now", "end": "now-1h"}, "must be before"),
        ({"start": "now-1h", "end": "now-1h"}, "must be before"),
        ({"since": "1h", "start": "now-2h"}, "not both"),
        ({"since": "99999w"}, "ten years"),
    ],
)
def test_errors_are_sentences(kwargs: dict[str, str], words: str) -> None:
    with pytest.raises(TimeRangeError) as info:
        parse_time_range(**kwargs, now=NOW)
    assert words in str(info.value) and "Traceback" not in str(info.value)


@given(st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=40)))
def test_any_input_gives_a_range_or_a_time_range_error(since: str | None, start: str | None, end: str | None) -> None:
    try:
        tr = parse_time_range(since, start, end, now=NOW)
    except TimeRangeError:
        return
    assert tr.start < tr.end and tr.start.tzinfo is not None and tr.start.microsecond % 1000 == 0


def test_adjacent_ranges_share_their_edge() -> None:
    first = parse_time_range(start="2026-11-24T08:00Z", end="2026-11-24T09:00Z", now=NOW)
    second = parse_time_range(start="2026-11-24T09:00Z", end="2026-11-24T10:00Z", now=NOW)
    assert first.end == second.start and first.end_ms == second.start_ms
