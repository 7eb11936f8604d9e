"""Time ranges for searches: what a person types (``1h``, ``now-15m``, an ISO time) as two UTC instants.

A range is half-open, ``[start, end)``: the search filters ``gte start`` and
``lt end``, so two adjacent ranges never count a document twice and a
histogram's buckets tile the range exactly. Instants are truncated to whole
milliseconds, the precision of OpenSearch's ``date`` fields, so the bound the
node compares with is exactly the bound shown to the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["QUICK_RANGES", "TimeRange", "TimeRangeError", "parse_duration", "parse_time_range"]

DEFAULT_SINCE = "15m"
MAX_SPAN = timedelta(days=3660)  # ten years: beyond that a typo is likelier than a wish

# (value for ``since``, label for people), shortest first.
QUICK_RANGES: list[tuple[str, str]] = [
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("4h", "Last 4 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,7})\s*([smhdw])")
_NOW = re.compile(r"now(?:\s*-\s*(\d{1,7})\s*([smhdw]))?")


class TimeRangeError(ValueError):
    """A time or range that cannot be used; ``str()`` is a sentence for people."""


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in UTC, ``start < end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise TimeRangeError("a time range needs time-zone-aware instants")
        if not self.start < self.end:
            raise TimeRangeError(f"the range is empty: {_show(self.start)} is not before {_show(self.end)}")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def start_ms(self) -> int:
        return _epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return _epoch_ms(self.end)

    def __str__(self) -> str:
        return f"{_show(self.start)} to {_show(self.end)}"


def parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` as a positive timedelta."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise TimeRangeError(f"{_clip(text)!r} is not a duration; use a number and a unit, e.g. 30s, 15m, 1h, 24h or 7d")
    span = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    if span > MAX_SPAN:
        raise TimeRangeError(f"{_clip(text)!r} is longer than ten years")
    return span


def parse_time_range(
    since: str | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    now: datetime | None = None,
) -> TimeRange:
    """The range a person asked for; the last 15 minutes when nothing is given.

    ``since`` is a duration back from now (or from ``end``). ``start``/``end``
    are ISO 8601 (no zone means UTC), ``now`` or ``now-<duration>``; a start
    without an end runs until now. ``since`` together with ``start`` is refused
    as ambiguous.
    """
    now = _ms(now.astimezone(UTC) if now and now.tzinfo else (now.replace(tzinfo=UTC) if now else datetime.now(UTC)))
    if since is not None and start is not None:
        raise TimeRangeError("give either a duration (since) or a start time, not both")
    t_end = parse_instant(end, now=now, what="end") if end is not None else now
    if start is not None:
        t_start = parse_instant(start, now=now, what="start")
    else:
        try:
            t_start = t_end - parse_duration(since if since is not None else DEFAULT_SINCE)
        except OverflowError:
            raise TimeRangeError(f"the range reaches before year 1 (end {_show(t_end)})") from None
    if not t_start < t_end:
        raise TimeRangeError(f"the start ({_show(t_start)}) must be before the end ({_show(t_end)})")
    if t_end - t_start > MAX_SPAN:
        raise TimeRangeError("the range is longer than ten years")
    return TimeRange(t_start, t_end)


def parse_instant(text: str, *, now: datetime, what: str = "time") -> datetime:
    """One instant: ``now``, ``now-1h`` or ISO 8601 (UTC when no zone is given), whole milliseconds."""
    value = text.strip()
    m = _NOW.fullmatch(value.lower())
    if m:
        if m.group(1) is None:
            return now
        try:
            return now - parse_duration(m.group(1) + m.group(2))
        except OverflowError:
            raise TimeRangeError(f"{_clip(value)!r} reaches before year 1") from None
    if len(value) > 64:
        raise TimeRangeError(f"the {what} time is too long to be a time")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        return _ms(parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        raise TimeRangeError(
            f"{_clip(value)!r} is not a {what} time; use ISO 8601 (e.g. 2026-11-24T10:00:00Z), now or now-1h"
        ) from None


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def _epoch_ms(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _show(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
