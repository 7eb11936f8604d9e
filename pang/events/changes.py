""""What changed?" before an alert: the deploys and config changes of the hour before it opened, likeliest first.

The first question in an incident channel is what changed. A flat list of
every deploy of the last hour buries the one that matters under the ones of
services nobody is looking at, so the list is grouped:

1. changes on the *affected* services: an error-rate alert's ``service.name``;
   a steady-state alert's ``alert.signal`` mapped through
   ``settings.status_components`` to the services of every component that
   lists the signal (a drop in orders points at the order component's services);
2. changes on their *neighbours* (``settings.service_neighbours``, the call
   graph): a gateway change can break payments without touching payment;
3. everything else,

newest first within each group. :func:`order_changes` is the ordering alone
(pure, unit-tested); :func:`changes_before` reads the alert and the window
from OpenSearch. The window is ``[opened - window, opened]``: a deploy in the
very millisecond the alert opened is still a suspect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pang.events.store import EventStoreError, TimelineQuery, query_events, services_of
from pang.settings import Settings, StatusComponent

__all__ = ["CHANGE_TYPES", "Change", "ChangesError", "ChangesReport", "affected_services", "changes_before",
           "find_alert", "neighbours_of", "order_changes"]

CHANGE_TYPES = ("deployment", "config")
Group = Literal["affected", "neighbour", "other"]
_RANK: dict[str, int] = {"affected": 0, "neighbour": 1, "other": 2}


class ChangesError(RuntimeError):
    """No such alert, or OpenSearch could not answer; the message is for a person."""


@dataclass(frozen=True)
class Change:
    group: Group
    doc: dict[str, Any]  # the event's _source (with _id)

    @property
    def at(self) -> str:
        return str(self.doc.get("@timestamp", ""))


@dataclass(frozen=True)
class ChangesReport:
    alert_id: str
    opened: datetime
    start: datetime
    affected: list[str]
    neighbours: list[str]
    changes: list[Change]

    def as_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert_id, "opened": _iso(self.opened), "from": _iso(self.start),
            "affected": self.affected, "neighbours": self.neighbours,
            "changes": [{"group": c.group, **c.doc} for c in self.changes],
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def affected_services(alert_doc: Mapping[str, Any], components: Mapping[str, StatusComponent]) -> list[str]:
    """The services an alert is about: its own ``service.name``, plus those of components listing its signal."""
    out = list(services_of(dict(alert_doc)))
    signal = (alert_doc.get("alert") or {}).get("signal")
    if signal:
        for comp in components.values():
            if signal in comp.signals:
                out.extend(comp.services)
    return list(dict.fromkeys(out))


def neighbours_of(services: Iterable[str], graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Services one call away from any of ``services`` (either direction), not counting them."""
    own = set(services)
    out: list[str] = []
    for s in own:
        out.extend(graph.get(s, ()))
    for caller, callees in graph.items():  # a neighbour list may be one-sided; callers count too
        if own.intersection(callees):
            out.append(caller)
    return sorted({n for n in out if n not in own})


def order_changes(rows: Iterable[Mapping[str, Any]], affected: Iterable[str], neighbours: Iterable[str]) -> list[Change]:
    """Affected services' changes first, then neighbours', then the rest; newest first in each group."""
    hit, near = set(affected), set(neighbours)
    changes = []
    for row in rows:
        services = set(services_of(dict(row)))
        group: Group = "affected" if services & hit else "neighbour" if services & near else "other"
        changes.append(Change(group, dict(row)))
    # Newest first, then a stable tie-break on the id, so the order does not depend on the node's.
    changes.sort(key=lambda c: (str(c.doc.get("_id") or (c.doc.get("event") or {}).get("id") or "")))
    changes.sort(key=lambda c: c.at, reverse=True)
    changes.sort(key=lambda c: _RANK[c.group])
    return changes


def find_alert(settings: Settings, alert_id: str) -> dict[str, Any]:
    """The ``alert.opened`` document of ``alert_id`` (its ``_id`` form ``<id>:opened`` is accepted too)."""
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    from pang.indexer.client import client

    wanted = alert_id.strip().removesuffix(":opened")
    if not wanted or len(wanted) > 200:
        raise ChangesError("give the alert's id (as `pang steady alerts` or the timeline shows it)")
    body = {"size": 1, "query": {"bool": {"filter": [{"term": {"alert.id": wanted}},
                                                     {"term": {"event.action": "alert.opened"}}]}},
            "sort": [{"@timestamp": {"order": "desc"}}]}
    try:
        hits = client(settings).search(index="events-*", body=body,
                                       params={"ignore_unavailable": "true", "allow_no_indices": "true"})["hits"]["hits"]
    except OSConnectionError:
        raise ChangesError(f"OpenSearch at {settings.display_opensearch_url} is not answering") from None
    except TransportError as exc:
        raise ChangesError(f"OpenSearch refused the alert query: {exc.error}") from None
    if not hits:
        raise ChangesError(f"no alert opened with id {wanted[:80]!r} in events-*")
    return dict(hits[0]["_source"])


def _opened(doc: Mapping[str, Any]) -> datetime:
    text = (doc.get("event") or {}).get("start") or doc.get("@timestamp")
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def changes_before(settings: Settings, alert_id: str, window: timedelta = timedelta(hours=1)) -> ChangesReport:
    """The deploys and config changes in ``[opened - window, opened]`` of the alert, likeliest first."""
    alert = find_alert(settings, alert_id)
    opened = _opened(alert)
    start = opened - window
    affected = affected_services(alert, settings.status_components)
    near = neighbours_of(affected, settings.service_neighbours)
    # TimelineQuery is [start, end); one millisecond past the opening makes the end inclusive.
    q = TimelineQuery(start=start, end=opened + timedelta(milliseconds=1), types=CHANGE_TYPES, size=1000)
    try:
        page = query_events(settings, q)
    except EventStoreError as exc:
        raise ChangesError(str(exc)) from None
    return ChangesReport(str((alert.get("alert") or {}).get("id") or alert_id), opened, start, affected, near,
                         order_changes(page.rows, affected, near))
