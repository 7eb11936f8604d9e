"""The status page's figures: each component's state now and its availability per month.

A component (``PANG_STATUS_COMPONENTS``) is a set of services and business
signals. An alert concerns it when one of its services is among the alert's
``service.name`` or the alert's ``alert.signal`` is one of its signals; an
incident concerns it when it names the component or one of its services.

- **State now**: ``down`` while an incident of the component is open (people
  or the incident process declared it), ``degraded`` while any of its alerts
  is open (an alert is a measurement, not a verdict), else ``ok``.
- **Availability of a month** (the business's calendar month,
  ``PANG_BUSINESS_TIMEZONE``, so October in Berlin has 44,700 minutes):
  the share of the month's minutes not inside an open critical alert or
  incident of the component. A minute counts as inside when any part of it
  is (an alert open from 10:00:30 to 10:02:10 takes 10:00, 10:01 and 10:02);
  overlapping alerts count their minutes once; an alert still open counts up
  to now; the current month counts only its minutes up to now.

Everything here but :func:`collect` is pure, so the arithmetic is tested on
crafted intervals; :func:`collect` reads ``events-*`` once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pang.settings import Settings, StatusComponent

__all__ = [
    "ComponentStatus",
    "Interval",
    "MonthFigure",
    "availability",
    "collect",
    "component_status",
    "intervals_from_events",
    "month_bounds",
    "percent",
]

_MINUTE = timedelta(minutes=1)
State = Literal["ok", "degraded", "down"]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _parse(text: str) -> datetime:
    return _utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


@dataclass(frozen=True)
class Interval:
    """An alert or incident: open from ``start`` to ``end`` (``None``: still open)."""

    id: str
    kind: Literal["alert", "incident"]
    start: datetime
    end: datetime | None
    severity: str                     # critical | warning (alerts); the incident's own (counts as critical)
    services: tuple[str, ...] = ()
    signal: str | None = None
    component: str | None = None      # an incident may name its component directly
    title: str = ""

    @property
    def critical(self) -> bool:
        return self.kind == "incident" or self.severity == "critical"

    def concerns(self, name: str, comp: StatusComponent) -> bool:
        if self.component is not None and self.component == name:
            return True
        return bool(set(self.services) & set(comp.services)) or (self.signal is not None and self.signal in comp.signals)

    def open_at(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    """The local calendar month as UTC instants ``[start, end)`` (DST months are an hour longer or shorter)."""
    zone = ZoneInfo(tz)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _floor(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _ceil(t: datetime) -> datetime:
    f = _floor(t)
    return f if f == t else f + _MINUTE


@dataclass
class MonthFigure:
    """One month of one component."""

    label: str                    # "2026-10"
    start: datetime
    end: datetime                 # the month's end, or now for the current month
    minutes: int                  # minutes counted (the month, or the month so far)
    bad_minutes: int              # minutes inside an open critical alert or incident
    availability: float | None    # 0..1; None when no minute of the month has passed
    incidents: list[str] = field(default_factory=list)   # ids of the intervals behind bad_minutes
    alerts: int = 0               # alerts (any severity) that opened in the month
    deploys: int = 0              # rollouts (DEPLOY_ALL started) in the month

    def as_json(self) -> dict[str, Any]:
        return {"month": self.label, "minutes": self.minutes, "bad_minutes": self.bad_minutes,
                "availability": None if self.availability is None else round(self.availability, 6),
                "incidents": self.incidents, "alerts": self.alerts, "deploys": self.deploys}


def availability(intervals: Iterable[Interval], start: datetime, end: datetime, now: datetime) -> tuple[int, int, list[str]]:
    """``(minutes, bad_minutes, ids)`` of ``[start, min(end, now))`` for the critical ``intervals`` given.

    Minutes are whole UTC minutes; a partly covered minute is bad; overlaps count once.
    """
    start, end, now = _utc(start), _utc(end), _utc(now)
    stop = min(end, _ceil(now))
    if stop <= start:
        return 0, 0, []
    total = int((stop - start) / _MINUTE)
    spans: list[tuple[datetime, datetime, str]] = []
    for iv in intervals:
        if not iv.critical:
            continue
        a = max(_floor(iv.start), start)
        b = min(_ceil(iv.end if iv.end is not None else now), stop)
        if a < b:
            spans.append((a, b, iv.id))
    spans.sort()
    bad = 0
    ids: list[str] = []
    cur_a: datetime | None = None
    cur_b: datetime | None = None
    for a, b, ident in spans:
        ids.append(ident)
        if cur_b is None or a > cur_b:
            if cur_a is not None and cur_b is not None:
                bad += int((cur_b - cur_a) / _MINUTE)
            cur_a, cur_b = a, b
        elif b > cur_b:
            cur_b = b
    if cur_a is not None and cur_b is not None:
        bad += int((cur_b - cur_a) / _MINUTE)
    return total, bad, list(dict.fromkeys(ids))


@dataclass
class ComponentStatus:
    name: str
    title: str
    state: State
    open: list[Interval]
    months: list[MonthFigure]          # oldest first
    services: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "component": self.name, "title": self.title, "state": self.state,
            "services": list(self.services), "signals": list(self.signals),
            "open": [{"id": iv.id, "kind": iv.kind, "severity": iv.severity, "since": iv.start.isoformat().replace("+00:00", "Z"),
                      "title": iv.title} for iv in self.open],
            "months": [m.as_json() for m in self.months],
        }


def percent(value: float | None) -> str:
    """``99.95%``; a month with downtime never rounds up to 100%."""
    if value is None:
        return "–"
    shown = f"{value * 100:.2f}%"
    if value < 1 and shown == "100.00%":
        return "99.99%"
    return shown


def _months_back(now: datetime, tz: str, count: int) -> list[tuple[str, datetime, datetime]]:
    local = _utc(now).astimezone(ZoneInfo(tz))
    year, month = local.year, local.month
    out = []
    for _ in range(count):
        start, end = month_bounds(year, month, tz)
        out.append((f"{year:04d}-{month:02d}", start, end))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def component_status(
    name: str,
    comp: StatusComponent,
    intervals: Sequence[Interval],
    deploys: Sequence[tuple[datetime, tuple[str, ...]]],
    *,
    now: datetime,
    tz: str,
    months: int = 3,
) -> ComponentStatus:
    """State now and the last ``months`` months of one component (pure)."""
    now = _utc(now)
    mine = [iv for iv in intervals if iv.concerns(name, comp)]
    open_now = [iv for iv in mine if iv.open_at(now)]
    state: State = "down" if any(iv.kind == "incident" for iv in open_now) else ("degraded" if open_now else "ok")
    figures = []
    for label, start, end in _months_back(now, tz, months):
        total, bad, ids = availability(mine, start, end, now)
        figures.append(MonthFigure(
            label=label, start=start, end=min(end, now), minutes=total, bad_minutes=bad,
            availability=None if total == 0 else 1 - bad / total, incidents=ids,
            alerts=sum(1 for iv in mine if iv.kind == "alert" and start <= iv.start < end),
            deploys=sum(1 for at, services in deploys if start <= at < end and set(services) & set(comp.services)),
        ))
    return ComponentStatus(name, comp.title or name, state, open_now, figures, tuple(comp.services), tuple(comp.signals))


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def intervals_from_events(docs: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """Alert and incident intervals from ``events-*`` documents (opened + resolved pairs, by id)."""
    opened: dict[str, dict[str, Any]] = {}
    ended: dict[str, datetime] = {}
    for doc in docs:
        kind = (doc.get("pang") or {}).get("type")
        action = (doc.get("event") or {}).get("action", "")
        if kind == "alert" or action.startswith("alert."):
            ident = str((doc.get("alert") or {}).get("id") or "")
            if not ident:
                continue
            if action == "alert.resolved":
                ended[ident] = _parse(doc.get("event", {}).get("end") or doc["@timestamp"])
            else:
                prev = opened.get(ident)
                if prev is None or doc["@timestamp"] < prev["@timestamp"]:
                    opened[ident] = {**doc, "_kind": "alert"}
        elif kind == "incident":
            inc = doc.get("incident") or {}
            ident = str(inc.get("id") or "")
            if not ident:
                continue
            if inc.get("state") in ("resolved", "closed") or action in ("incident.resolved", "incident.closed"):
                ended[ident] = _parse(doc.get("event", {}).get("end") or doc["@timestamp"])
            elif ident not in opened or doc["@timestamp"] < opened[ident]["@timestamp"]:
                opened[ident] = {**doc, "_kind": "incident"}
    out = []
    for ident, doc in opened.items():
        alert = doc.get("alert") or {}
        inc = doc.get("incident") or {}
        start = _parse((doc.get("event") or {}).get("start") or doc["@timestamp"])
        out.append(Interval(
            id=ident, kind=doc["_kind"], start=start, end=ended.get(ident),
            severity=str(alert.get("severity") or inc.get("severity") or "critical"),
            services=_names((doc.get("service") or {}).get("name")),
            signal=alert.get("signal") or (doc.get("rule") or {}).get("name") if doc["_kind"] == "alert" else None,
            component=inc.get("component"),
            title=str(doc.get("message") or "")[:300],
        ))
    return sorted(out, key=lambda iv: iv.start)


def collect(settings: Settings, *, now: datetime | None = None, months: int = 3) -> list[ComponentStatus]:
    """Every configured component's status, from one read of ``events-*``."""
    from pang.events.store import EventStoreError
    from pang.indexer.client import client

    now = _utc(now or datetime.now(UTC))
    first = _months_back(now, settings.business_timezone, months)[0][1]
    lookback = first - timedelta(days=31)  # an alert opened before the window may still cover its first minutes
    body = {
        "size": 10_000,
        "query": {"bool": {"filter": [
            {"range": {"@timestamp": {"gte": lookback.isoformat(), "lte": now.isoformat()}}},
            {"bool": {"should": [
                {"terms": {"pang.type": ["alert", "incident"]}},
                {"bool": {"filter": [{"term": {"pang.type": "deployment"}}, {"term": {"deployment.phase": "DEPLOY_ALL"}},
                                     {"term": {"event.outcome": "started"}}]}},
            ], "minimum_should_match": 1}},
        ]}},
        "sort": [{"@timestamp": "asc"}],
        "_source": ["@timestamp", "pang", "event", "alert", "incident", "service", "rule", "message", "deployment"],
    }
    try:
        answer = client(settings).search(index="events-*", body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    except Exception as exc:  # noqa: BLE001 - one sentence for the page and the CLI
        from opensearchpy.exceptions import ConnectionError as OSConnectionError

        if isinstance(exc, OSConnectionError):
            raise EventStoreError(f"OpenSearch at {settings.display_opensearch_url} is not answering") from None
        raise EventStoreError(f"reading events failed: {exc}") from None
    docs = [h["_source"] for h in answer["hits"]["hits"]]
    intervals = intervals_from_events(d for d in docs if (d.get("pang") or {}).get("type") != "deployment")
    deploys = [(_parse(d["@timestamp"]), _names((d.get("service") or {}).get("name")))
               for d in docs if (d.get("pang") or {}).get("type") == "deployment"]
    return [component_status(name, comp, intervals, deploys, now=now, tz=settings.business_timezone, months=months)
            for name, comp in settings.status_components.items()]
