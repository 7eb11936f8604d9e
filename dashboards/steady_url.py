"""The steady-state page's URL (``/steady?signal=orders&since=3h``), its time range, and links to search (pure).

As on the search page the URL is the single source of truth: a link pasted
into an incident channel opens the same signal, range and cycle lines. A range
is either relative (``since``: a quick range such as ``3h`` or ``today``; the
page refreshes itself) or absolute (``from``/``to``: it stays put).

Everything read from a URL is user input: bounded, unknown parameters ignored;
times are checked by :mod:`pang.indexer.timerange`, whose messages the page
shows in its error banner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from pang.dashboards.urlstate import SearchState
from pang.dashboards.urlstate import to_query as search_query
from pang.indexer.timerange import TimeRangeError, parse_duration, parse_instant

MAX_VALUE = 200
MAX_QUERY_STRING = 4_000
MAX_CYCLES = 10
DEFAULT_SINCE = "3h"
TODAY = "today"
MAX_SPAN = timedelta(days=14)  # 20,000 minutes per line: beyond that the browser, not the question, is the limit
MINUTE = timedelta(minutes=1)

# (value for ``since``, label), shortest first; "today" is the business's local day so far.
QUICK_RANGES: list[tuple[str, str]] = [
    ("3h", "Last 3 hours"),
    ("12h", "Last 12 hours"),
    (TODAY, "Today"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
]

# The search page's window around an alert: from a little before it opened to just after it ended.
SEARCH_BEFORE = timedelta(minutes=5)
SEARCH_AFTER = timedelta(minutes=1)
SEARCH_LEVEL = "ERROR"


@dataclass(frozen=True)
class SteadyState:
    """What a person asked for: a signal, a range (relative ``since`` or absolute ``start``/``end``), cycle lines."""

    signal: str | None = None            # None: the first configured signal
    since: str | None = None             # None with start: absolute; both None: DEFAULT_SINCE
    start: str | None = None
    end: str | None = None
    cycles: tuple[str, ...] = ()

    @property
    def effective_since(self) -> str | None:
        if self.since:
            return self.since
        return None if self.start else DEFAULT_SINCE

    @property
    def is_live(self) -> bool:
        """A relative range moves with time, so the page refreshes it; an absolute one does not."""
        return self.effective_since is not None

    def with_since(self, since: str) -> SteadyState:
        return replace(self, since=_bounded(since), start=None, end=None)

    def with_range(self, start: str | None, end: str | None) -> SteadyState:
        start, end = _bounded(start), _bounded(end)
        if not start:
            return replace(self, since=None, start=None, end=None)
        return replace(self, since=None, start=start, end=end)


def to_query(state: SteadyState) -> str:
    """``?signal=orders&since=3h&cycle=last_week``: stable order, ``""`` for the default page."""
    pairs: list[tuple[str, str]] = []
    if state.signal:
        pairs.append(("signal", state.signal))
    if state.start:
        pairs.append(("from", state.start))
        if state.end:
            pairs.append(("to", state.end))
    elif state.since:
        pairs.append(("since", state.since))
    pairs += [("cycle", c) for c in state.cycles]
    return "?" + urlencode(pairs) if pairs else ""


def from_query(search: str | None) -> SteadyState:
    """The state a query string describes; tolerant of junk, bounded in size."""
    params = parse_qs((search or "")[:MAX_QUERY_STRING].removeprefix("?"), keep_blank_values=False)
    start = _first(params, "from")
    cycles: dict[str, None] = {}
    for raw in params.get("cycle", [])[: MAX_CYCLES * 4]:
        value = _bounded(raw, 60)
        if value:
            cycles.setdefault(value, None)
    return SteadyState(
        signal=_first(params, "signal", 100),
        since=None if start else _first(params, "since"),
        start=start,
        end=_first(params, "to") if start else None,
        cycles=tuple(cycles)[:MAX_CYCLES],
    )


def resolve_range(state: SteadyState, *, timezone: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` in whole UTC minutes; a relative range ends with the last complete minute.

    ``today`` starts at the business's local midnight (``timezone``), whatever
    the UTC date is. Raises :class:`TimeRangeError` with a sentence for people.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    since = state.effective_since
    if since:
        end = _floor(now)
        if since == TODAY:
            local = now.astimezone(ZoneInfo(timezone))
            start = _floor(local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC))
        else:
            start = _floor(end - parse_duration(since))
    else:
        start = _floor(parse_instant(state.start or "", now=now, what="start"))
        end = _ceil(parse_instant(state.end, now=now, what="end")) if state.end else _floor(now)
    if end - start < MINUTE:
        # "today" a few seconds after midnight, or a start in the future
        if since == TODAY:
            start = end - MINUTE
        else:
            raise TimeRangeError(f"the start ({_iso(start)}) must be at least a minute before the end ({_iso(end)})")
    if end - start > MAX_SPAN:
        raise TimeRangeError(f"the range is longer than {MAX_SPAN.days} days; pick a shorter one")
    return start, end


def alert_search_href(opened: datetime, resolved: datetime | None, now: datetime) -> str:
    """The search page for the logs around an alert: errors from 5 min before it opened to 1 min after it ended."""
    end = (resolved or now) + SEARCH_AFTER
    start = opened - SEARCH_BEFORE
    state = SearchState(start=_iso(start), end=_iso(end), levels=(SEARCH_LEVEL,))
    return "/search" + search_query(state)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def _ceil(t: datetime) -> datetime:
    floored = _floor(t)
    if floored == t:
        return floored
    try:
        return floored + MINUTE
    except OverflowError:  # the last minute of year 9999: keep it, so the range checks say what is wrong
        return floored


def _bounded(value: str | None, limit: int = MAX_VALUE) -> str | None:
    value = (value or "").strip()[:limit]
    return value or None


def _first(params: dict[str, list[str]], key: str, limit: int = MAX_VALUE) -> str | None:
    values = params.get(key)
    return _bounded(values[0], limit) if values else None
