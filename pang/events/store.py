"""Writing events to ``events-*`` and reading a window of them back (the timeline, ``pang events list``).

Writes go through the bulk client with the event's id as ``_id`` and the
daily index of its own ``@timestamp``: posting the same event again
overwrites it in place, so a retried webhook or a re-run demo never adds a
row. A write either lands whole or raises :class:`EventStoreError`; the
HTTP endpoint turns that into a 5xx with nothing half-written (one event is
one document).

Reads are one ``_search`` per page: filters on ``[start, end)``, services,
types and free text, the counts per type over the same filters (minus the
type filter, so the counts say what the other types would show), newest
first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pang.events.schema import EVENT_TYPES, EventIn, iso_ms
from pang.settings import Settings

__all__ = ["DeployMark", "EventPage", "EventStoreError", "TimelineQuery", "deploy_marks", "query_events", "services_of", "write_documents", "write_events"]

INDEX_PATTERN = "events-*"
MAX_PAGE = 1000


class EventStoreError(RuntimeError):
    """OpenSearch did not take (or could not answer for) the events; the message is for a person."""


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _parse(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def write_documents(settings: Settings, docs: Iterable[dict[str, Any]], *, refresh: bool = False) -> int:
    """Index ECS event documents under their ``event.id``; returns how many were written."""
    from pang.indexer.client import connection
    from pang.indexer.naming import index_for
    from pang.shippers.sink.bulk import BulkClient, BulkError, encode_action

    actions = []
    for doc in docs:
        ev_id = doc.get("event", {}).get("id")
        if not ev_id:
            raise EventStoreError("an event document without event.id cannot be written idempotently")
        actions.append(encode_action(index_for("events", _parse(doc["@timestamp"])), str(ev_id), orjson.dumps(doc)))
    if not actions:
        return 0
    bulk = BulkClient(connection(settings), maxsize=1)
    try:
        result = bulk.post(actions, refresh=refresh)
    except BulkError as exc:
        raise EventStoreError(f"events not written: {exc}") from None
    finally:
        bulk.close()
    if result.retry or result.rejected:
        reasons = "; ".join(r for _, _, r in result.rejected[:3]) or "the node is busy, try again"
        raise EventStoreError(f"{len(result.retry) + len(result.rejected)} event(s) not written: {reasons}")
    return len(actions)


def write_events(settings: Settings, events: Iterable[EventIn], *, refresh: bool = False,
                 received: datetime | None = None) -> list[dict[str, Any]]:
    """Index posted events; returns the documents written (each with its ``event.id``)."""
    now = received or datetime.now(UTC)
    docs = [ev.document(now) for ev in events]
    write_documents(settings, docs, refresh=refresh)
    return docs


@dataclass(frozen=True)
class TimelineQuery:
    """A window of the timeline: ``[start, end)``, optional services, types and free text."""

    start: datetime
    end: datetime
    services: Sequence[str] = ()
    types: Sequence[str] = ()
    text: str = ""
    actions: Sequence[str] = ()
    size: int = 200

    def __post_init__(self) -> None:
        if not _utc(self.start) < _utc(self.end):
            raise ValueError("the start of the range must be before its end")
        bad = [t for t in self.types if t not in EVENT_TYPES]
        if bad:
            raise ValueError(f"unknown event type {bad[0]!r}; expected one of {', '.join(EVENT_TYPES)}")
        if not 1 <= self.size <= MAX_PAGE:
            raise ValueError(f"size must be 1 to {MAX_PAGE}")
        if len(self.text) > 500:
            raise ValueError("the text filter is longer than 500 characters")


@dataclass
class EventPage:
    rows: list[dict[str, Any]]          # _source of each event, newest first (``_id`` and ``_index`` added)
    total: int                          # events matching all filters
    counts: dict[str, int] = field(default_factory=dict)  # per pang.type, over every filter but the type one
    services: dict[str, int] = field(default_factory=dict)  # per service.name, over every filter but the service one


def _base_filters(q: TimelineQuery) -> list[dict[str, Any]]:
    flt: list[dict[str, Any]] = [{"range": {"@timestamp": {"gte": iso_ms(q.start), "lt": iso_ms(q.end)}}}]
    if q.actions:
        flt.append({"terms": {"event.action": list(q.actions)}})
    if q.text.strip():
        # simple_query_string never raises on user syntax and runs no scripts; the fields are fixed here.
        flt.append({"simple_query_string": {
            "query": q.text, "fields": ["message", "service.name", "user.name", "deployment.*", "alert.id", "rule.name"],
            "default_operator": "and", "lenient": True,
        }})
    return flt


def query_events(settings: Settings, q: TimelineQuery) -> EventPage:
    """Events in the window, newest first, with counts per type and per service.

    The type counts ignore the type filter and the service counts the service
    filter (as facets do), so each says what choosing another value would show.
    """
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import NotFoundError, TransportError

    from pang.indexer.client import client

    by_service = [{"terms": {"service.name": list(q.services)}}] if q.services else []
    by_type = [{"terms": {"pang.type": list(q.types)}}] if q.types else []
    body = {
        "size": q.size,
        "track_total_hits": True,
        "query": {"bool": {"filter": _base_filters(q)}},
        "post_filter": {"bool": {"filter": by_service + by_type}},
        "sort": [{"@timestamp": {"order": "desc"}}, {"event.id": {"order": "asc", "unmapped_type": "keyword"}}],
        "aggs": {
            "types": {"filter": {"bool": {"filter": by_service}},
                      "aggs": {"t": {"terms": {"field": "pang.type", "size": len(EVENT_TYPES) + 5, "missing": "other"}}}},
            "services": {"filter": {"bool": {"filter": by_type}},
                         "aggs": {"s": {"terms": {"field": "service.name", "size": 100}}}},
        },
    }
    try:
        answer = client(settings).search(index=INDEX_PATTERN, body=body, params={"ignore_unavailable": "true",
                                                                                   "allow_no_indices": "true"})
    except NotFoundError:
        return EventPage([], 0, {})
    except OSConnectionError:
        raise EventStoreError(f"OpenSearch at {settings.display_opensearch_url} is not answering") from None
    except TransportError as exc:
        raise EventStoreError(f"OpenSearch refused the events query: {exc.error}") from None
    rows = []
    for hit in answer["hits"]["hits"]:
        src = dict(hit["_source"])
        src["_id"], src["_index"] = hit["_id"], hit["_index"]
        rows.append(src)
    aggs = answer.get("aggregations", {})
    counts = {b["key"]: b["doc_count"] for b in aggs.get("types", {}).get("t", {}).get("buckets", [])}
    services = {b["key"]: b["doc_count"] for b in aggs.get("services", {}).get("s", {}).get("buckets", [])}
    return EventPage(rows, int(answer["hits"]["total"]["value"]), counts, services)


def services_of(doc: dict[str, Any]) -> list[str]:
    """``service.name`` as a list (one role is stored as a string, several as an array)."""
    name = (doc.get("service") or {}).get("name")
    if name is None:
        return []
    return [name] if isinstance(name, str) else [str(n) for n in name]


@dataclass(frozen=True)
class DeployMark:
    """A moment a version took all traffic (DEPLOY_ALL started) or was rolled back: a vertical line on charts."""

    at: datetime
    service: str
    label: str          # "deploy cart 2026.11.24-1007" / "rollback cart"
    rollback: bool = False


def deploy_marks(settings: Settings, start: datetime, end: datetime, services: Sequence[str] = (), *, limit: int = 50) -> list[DeployMark]:
    """The deploys and rollbacks in ``[start, end)`` (of ``services`` if given), oldest first.

    Reads ``events-*``; an unreachable cluster gives no marks rather than
    failing the chart they decorate (the chart's own query reports the outage).
    """
    phases = [
        {"bool": {"filter": [{"term": {"deployment.phase": "DEPLOY_ALL"}}, {"term": {"event.outcome": "started"}}]}},
        {"bool": {"filter": [{"term": {"deployment.phase": "ROLLBACK"}}, {"term": {"event.outcome": "success"}}]}},
    ]
    flt: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"gte": iso_ms(start), "lt": iso_ms(end)}}},
        {"term": {"pang.type": "deployment"}},
        {"bool": {"should": phases, "minimum_should_match": 1}},
    ]
    if services:
        flt.append({"terms": {"service.name": list(services)}})
    try:
        from pang.indexer.client import client

        answer = client(settings).search(index=INDEX_PATTERN, body={
            "size": limit, "query": {"bool": {"filter": flt}}, "sort": [{"@timestamp": "asc"}],
            "_source": ["@timestamp", "service", "deployment"],
        }, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    except Exception:  # noqa: BLE001 - decoration only
        return []
    marks = []
    for hit in answer["hits"]["hits"]:
        src = hit["_source"]
        dep = src.get("deployment") or {}
        rollback = dep.get("phase") == "ROLLBACK"
        for service in services_of(src):
            version = dep.get("to_version") or ""
            label = f"rollback {service}" if rollback else f"deploy {service} {version}".strip()
            marks.append(DeployMark(_parse(src["@timestamp"]), service, label, rollback))
    return marks
