"""The timeline's URL (``/events?since=1h&service=cart&type=deployment&q=rollback``) and its links (pure).

As on the other pages the URL is the single source of truth, so "what changed
in the last hour?" pasted into an incident channel opens the same view. Every
row links onward: to its logs (the search page on that service and window), to
its alert's evidence (the steady-state page around the alert) and to the
change itself (the deploy's diff link).

Everything read from a URL is user input: bounded, unknown parameters ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from pang.dashboards.steady_url import SteadyState
from pang.dashboards.steady_url import to_query as steady_query
from pang.dashboards.urlstate import SearchState
from pang.dashboards.urlstate import to_query as search_query
from pang.events.schema import EVENT_TYPES
from pang.indexer.timerange import TimeRange, parse_time_range

MAX_VALUE = 200
MAX_VALUES = 30
MAX_TEXT = 500
MAX_QUERY_STRING = 8_000
DEFAULT_SINCE = "1h"

QUICK_RANGES: list[tuple[str, str]] = [
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("3h", "Last 3 hours"),
    ("12h", "Last 12 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
]

# A deploy's logs: from a little before it to the minutes its effect shows in.
DEPLOY_BEFORE = timedelta(minutes=5)
DEPLOY_AFTER = timedelta(minutes=20)
ALERT_BEFORE = timedelta(minutes=5)
ALERT_AFTER = timedelta(minutes=1)
STEADY_MARGIN = timedelta(minutes=45)


@dataclass(frozen=True)
class TimelineState:
    since: str | None = None
    start: str | None = None
    end: str | None = None
    services: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    text: str = ""

    @property
    def effective_since(self) -> str | None:
        if self.since:
            return self.since
        return None if self.start else DEFAULT_SINCE

    def with_since(self, since: str) -> TimelineState:
        return replace(self, since=_bounded(since), start=None, end=None)

    def with_range(self, start: str | None, end: str | None) -> TimelineState:
        start, end = _bounded(start), _bounded(end)
        if not start:
            return replace(self, since=None, start=None, end=None)
        return replace(self, since=None, start=start, end=end)

    def time_range(self, now: datetime | None = None) -> TimeRange:
        """``[start, end)``; raises :class:`~pang.indexer.timerange.TimeRangeError` with a sentence."""
        since = self.effective_since
        return parse_time_range(since=since, start=None if since else self.start, end=None if since else self.end, now=now)


def to_query(state: TimelineState) -> str:
    pairs: list[tuple[str, str]] = []
    if state.start:
        pairs.append(("from", state.start))
        if state.end:
            pairs.append(("to", state.end))
    elif state.since:
        pairs.append(("since", state.since))
    pairs += [("service", s) for s in state.services]
    pairs += [("type", t) for t in state.types]
    if state.text:
        pairs.append(("q", state.text))
    return "?" + urlencode(pairs) if pairs else ""


def from_query(search: str | None) -> TimelineState:
    params = parse_qs((search or "")[:MAX_QUERY_STRING].removeprefix("?"), keep_blank_values=False)
    start = _first(params, "from")
    return TimelineState(
        since=None if start else _first(params, "since"),
        start=start,
        end=_first(params, "to") if start else None,
        services=_many(params, "service"),
        types=tuple(t for t in _many(params, "type") if t in EVENT_TYPES),
        text=(_first(params, "q", MAX_TEXT) or ""),
    )


# --- links from a row ----------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _services(doc: dict[str, Any]) -> tuple[str, ...]:
    name = (doc.get("service") or {}).get("name")
    if name is None:
        return ()
    return (name,) if isinstance(name, str) else tuple(str(n) for n in name)


def logs_href(doc: dict[str, Any], *, now: datetime) -> str:
    """The search page on the event's services and window (errors only for an alert)."""
    at = _parse(doc["@timestamp"])
    ev = doc.get("event") or {}
    if (doc.get("pang") or {}).get("type") == "alert":
        opened = _parse(ev.get("start") or doc["@timestamp"])
        ended = _parse(ev["end"]) if ev.get("end") else None
        start, end = opened - ALERT_BEFORE, min(now, (ended or now)) + ALERT_AFTER
        state = SearchState(start=_iso(start), end=_iso(end), services=_services(doc), levels=("ERROR",))
    else:
        state = SearchState(start=_iso(at - DEPLOY_BEFORE), end=_iso(min(at + DEPLOY_AFTER, max(now, at + timedelta(minutes=1)))),
                            services=_services(doc))
    return "/search" + search_query(state)


def evidence_href(doc: dict[str, Any], *, now: datetime) -> str | None:
    """For a business-signal alert: the steady-state page around it (band, expected, the alert shaded)."""
    alert = doc.get("alert") or {}
    if (doc.get("pang") or {}).get("type") != "alert" or alert.get("kind") == "errors":
        return None
    signal = alert.get("signal") or (doc.get("rule") or {}).get("name")
    if not signal:
        return None
    ev = doc.get("event") or {}
    opened = _parse(ev.get("start") or doc["@timestamp"])
    ended = _parse(ev["end"]) if ev.get("end") else None
    end = min(now, (ended or now) + STEADY_MARGIN)
    return "/steady" + steady_query(SteadyState(signal=str(signal), start=_iso(opened - STEADY_MARGIN), end=_iso(end)))


def change_href(doc: dict[str, Any]) -> str | None:
    """The change itself (a deploy's diff or build link), only if it is an http(s) URL."""
    url = (doc.get("event") or {}).get("url")
    if isinstance(url, str) and (url.startswith("https://") or url.startswith("http://")) and len(url) <= 2000:
        return url
    return None


def _bounded(value: str | None, limit: int = MAX_VALUE) -> str | None:
    value = (value or "").strip()[:limit]
    return value or None


def _first(params: dict[str, list[str]], key: str, limit: int = MAX_VALUE) -> str | None:
    values = params.get(key)
    return _bounded(values[0], limit) if values else None


def _many(params: dict[str, list[str]], key: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for raw in params.get(key, [])[: MAX_VALUES * 4]:
        value = _bounded(raw)
        if value:
            seen.setdefault(value, None)
        if len(seen) >= MAX_VALUES:
            break
    return tuple(seen)
