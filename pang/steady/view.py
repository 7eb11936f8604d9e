"""What the steady-state page draws: one signal over a range, against its expectation, with alerts and earlier cycles.

The page redraws every ~30 s during the demo, and each draw needs weeks to
months of per-minute history (the model's look-back) before the range. Past
days of rollups never change once their minutes are complete, so they are
read from ``metrics-business-*`` once and kept in a small in-process cache
per day; each redraw reads only the days that are still filling (today) and
what the cache has not seen. A 24 h view after the first draw reads about a
day of minutes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pang.indexer.client import client
from pang.indexer.naming import pattern_for
from pang.settings import Settings
from pang.steady.alerts import Alert
from pang.steady.model import Point, evaluate, model_config
from pang.steady.rollups import MINUTE, count_signals, read_counts, utc_minute
from pang.steady.runner import config_for, history_spans, series_for
from pang.steady.signals import Signal, signals_from

CYCLES = ("yesterday", "last_week", "first_of_last_month")
MAX_RANGE = timedelta(days=31)  # a view wider than a month is not a minute-by-minute picture any more
ALERT_LOOKBACK = timedelta(days=7)  # an alert that opened this long before the range may still be open in it
MINUTES_PER_DAY = 1440  # UTC days: no DST
CACHE_DAYS = 1500  # day-series (one signal, one UTC day: 1,440 floats) kept in memory


class ViewError(ValueError):
    """A request the page cannot draw (unknown signal, bad range); ``str()`` is a sentence for people."""


@dataclass(frozen=True)
class SteadyView:
    signal: str
    points: list[Point]  # every minute of [start, end)
    alerts: list[Alert]  # alerts of this signal overlapping [start, end)
    cycles: dict[str, list[tuple[datetime, float | None]]]  # name -> (minute of [start, end), earlier value)


# --- history cache ----------------------------------------------------------------------------------------


class _DayCache:
    """Per-UTC-day series of stored counts, for days that are over and have a rollup for every minute.

    Such a day never changes again (rollups are written for complete minutes
    only); a day with gaps is read again each time, since a runner catching up
    may still fill it.
    """

    def __init__(self, max_days: int = CACHE_DAYS) -> None:
        self.max_days = max_days
        self._days: OrderedDict[tuple[str, str, date], dict[datetime, float]] = OrderedDict()
        self._lock = threading.Lock()

    def counts(self, settings: Settings, names: Iterable[str], start: datetime, end: datetime, stable_before: datetime) -> dict[str, dict[datetime, float]]:
        """Counts of ``names`` over ``[start, end)``: cached days as they are, the rest read (and cached if stable)."""
        names = sorted(set(names))
        key0 = settings.opensearch_url
        days = _days(start, end)
        out: dict[str, dict[datetime, float]] = {n: {} for n in names}
        missing: list[date] = []
        with self._lock:
            for d in days:
                got = [self._days.get((key0, n, d)) for n in names]
                if any(g is None for g in got):
                    missing.append(d)
                    continue
                for n, g in zip(names, got, strict=True):
                    self._days.move_to_end((key0, n, d))
                    out[n].update(g)  # type: ignore[arg-type]
        for lo, hi in _spans(missing):  # days cached for some names but not others are read for all
            read = read_counts(settings, max(start, _at(lo)), min(end, _at(hi)), names)
            for n in names:
                out[n].update(read[n])
            with self._lock:
                d = lo
                while d < hi:
                    whole = _at(d) >= start and _at(d + timedelta(days=1)) <= end
                    if whole and _at(d + timedelta(days=1)) <= stable_before:
                        for n in names:
                            day = {m: v for m, v in read[n].items() if m.date() == d}
                            if len(day) == MINUTES_PER_DAY:  # a day with gaps may still be filled in: read it again
                                self._days[(key0, n, d)] = day
                    d += timedelta(days=1)
                while len(self._days) > self.max_days:
                    self._days.popitem(last=False)
        return out

    def clear(self) -> None:
        with self._lock:
            self._days.clear()


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _days(start: datetime, end: datetime) -> list[date]:
    d, last = start.date(), (end - MINUTE).date()
    out = []
    while d <= last:
        out.append(d)
        d += timedelta(days=1)
    return out


def _spans(days: list[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days as ``[first, last + 1 day)``."""
    spans: list[tuple[date, date]] = []
    for d in days:
        if spans and spans[-1][1] == d:
            spans[-1] = (spans[-1][0], d + timedelta(days=1))
        else:
            spans.append((d, d + timedelta(days=1)))
    return spans


_cache = _DayCache()


# --- earlier cycles ---------------------------------------------------------------------------------------


def _local_shift(minute: datetime, tz: ZoneInfo, days: int) -> datetime:
    """The same wall-clock time ``days`` earlier in the business's zone (DST keeps 17:04 at 17:04)."""
    local = minute.astimezone(tz)
    earlier = (local.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=tz)
    return utc_minute(earlier.astimezone(UTC))


def _month_shift(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Days between the 1st of the month nearest the range and the 1st of the month before it."""
    mid = (start + (end - start) / 2).astimezone(tz)
    this_first = date(mid.year, mid.month, 1)
    next_first = date(mid.year + (mid.month == 12), mid.month % 12 + 1, 1)
    anchor = next_first if (next_first - mid.date()) < (mid.date() - this_first) else this_first
    prev_first = date(anchor.year - (anchor.month == 1), (anchor.month - 2) % 12 + 1, 1)
    return (anchor - prev_first).days


def cycle_minutes(start: datetime, end: datetime, tz: str) -> dict[str, list[tuple[datetime, datetime]]]:
    """For each cycle, ``(minute of [start, end), the earlier minute it is compared with)``.

    ``first_of_last_month`` aligns the 1st of the month nearest the range with
    the 1st of the month before, so a view of the 1st at 00:00 shows last
    month's 1st at 00:00.
    """
    zone = ZoneInfo(tz)
    shifts = {"yesterday": 1, "last_week": 7, "first_of_last_month": _month_shift(start, end, zone)}
    minutes = []
    t = utc_minute(start)
    while t < end:
        minutes.append(t)
        t += MINUTE
    return {name: [(m, _local_shift(m, zone, days)) for m in minutes] for name, days in shifts.items()}


# --- alerts from events-* ---------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def read_alerts(settings: Settings, signal: str, start: datetime, end: datetime) -> list[Alert]:
    """Alerts of ``signal`` overlapping ``[start, end)``, rebuilt from their opened/resolved events."""
    body = {
        "size": 1000,
        "sort": [{"@timestamp": "asc"}],
        "query": {"bool": {"filter": [
            {"term": {"rule.name": signal}},
            {"term": {"event.kind": "alert"}},
            {"range": {"@timestamp": {"gte": (start - ALERT_LOOKBACK).isoformat(), "lt": (end + ALERT_LOOKBACK).isoformat()}}},
        ]}},
    }
    try:
        hits = client(settings).search(index=pattern_for("events"), body=body,
                                       params={"ignore_unavailable": "true", "allow_no_indices": "true"})["hits"]["hits"]
    except Exception as exc:
        raise ViewError(f"cannot read alerts from OpenSearch: {type(exc).__name__}") from None
    opened: dict[str, dict[str, Any]] = {}
    resolved: dict[str, datetime] = {}
    for h in hits:
        src = h["_source"]
        a = src.get("alert") or {}
        action = (src.get("event") or {}).get("action")
        if action == "alert.opened":
            opened[str(a.get("id"))] = src
        elif action == "alert.resolved":
            when = _parse_time((src.get("event") or {}).get("end") or src.get("@timestamp"))
            if when:
                resolved[str(a.get("id"))] = when
    out = []
    for alert_id, src in opened.items():
        a = src.get("alert") or {}
        began = _parse_time((src.get("event") or {}).get("start") or src.get("@timestamp"))
        ended = resolved.get(alert_id)
        if began is None or began >= end or (ended is not None and ended <= start):
            continue
        out.append(Alert(
            id=alert_id, signal=signal, direction=a.get("direction") or ("drop" if "drop" in (src.get("tags") or []) else "spike"),
            severity=a.get("severity") or "warning", opened=began, resolved=ended, evidence=a.get("evidence") or {},
        ))
    return out


# --- the view ---------------------------------------------------------------------------------------------


def _signal(settings: Settings, name: str) -> tuple[Signal, list[Signal]]:
    signals = signals_from(settings)
    for s in signals:
        if s.name == name:
            return s, signals
    raise ViewError(f"unknown signal {name[:80]!r}; configured: {', '.join(s.name for s in signals)}")


def steady_view(settings: Settings, signal: str, start: datetime, end: datetime, *, now: datetime | None = None) -> SteadyView:
    """``signal`` over ``[start, end)``: each minute against its expectation, the alerts, and the earlier cycles."""
    start, end = utc_minute(start), utc_minute(end)
    if start >= end:
        raise ViewError("the range is empty: its start must come before its end")
    if end - start > MAX_RANGE:
        raise ViewError(f"the range is {(end - start).days} days long; pick at most {MAX_RANGE.days} days")
    sig, signals = _signal(settings, signal)
    config = model_config(settings)
    now = now or datetime.now(UTC)
    stable_before = utc_minute(now - timedelta(seconds=settings.steady_lag_seconds)) - timedelta(minutes=5)
    names = count_signals([sig], among=signals)
    counts: dict[str, dict[datetime, float]] = {n: {} for n in names}
    for lo, hi in history_spans(config, start, end):
        for n, got in _cache.counts(settings, names, lo, hi, stable_before).items():
            counts[n].update(got)
    series = series_for(counts, sig)
    points = evaluate(series, start, end, config_for(config, sig))
    cycles = {
        name: [(m, _value(series, earlier)) for m, earlier in pairs]
        for name, pairs in cycle_minutes(start, end, settings.business_timezone).items()
    }
    return SteadyView(signal=sig.name, points=points, alerts=read_alerts(settings, sig.name, start, end), cycles=cycles)


def _value(series: Mapping[datetime, float], minute: datetime) -> float | None:
    return series[minute] if minute in series else None


def clear_cache() -> None:
    """Forget cached history (tests; after rollups of past days were rewritten)."""
    _cache.clear()
