"""Counting and reading time windows of a dataset: what the archive and retention need from OpenSearch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pang.indexer.client import client
from pang.indexer.naming import pattern_for
from pang.settings import Settings

IGNORE = {"ignore_unavailable": "true", "allow_no_indices": "true"}


def _range(start: datetime | None, end: datetime | None) -> dict[str, Any]:
    r: dict[str, Any] = {"format": "strict_date_optional_time"}
    if start:
        r["gte"] = start.astimezone(UTC).isoformat()
    if end:
        r["lt"] = end.astimezone(UTC).isoformat()
    return {"range": {"@timestamp": r}}


def hourly_counts(settings: Settings, dataset: str, start: datetime | None = None, end: datetime | None = None) -> dict[datetime, int]:
    """Documents per UTC hour (hours with none are absent)."""
    body = {
        "size": 0,
        "query": _range(start, end),
        "aggs": {"h": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1h", "min_doc_count": 1, "time_zone": "UTC"}}},
    }
    answer = client(settings).search(index=pattern_for(dataset), body=body, params=IGNORE)
    buckets = answer.get("aggregations", {}).get("h", {}).get("buckets", [])
    return {datetime.fromtimestamp(b["key"] / 1000, UTC): int(b["doc_count"]) for b in buckets}


@dataclass
class WindowRead:
    """A consistent read of one window: ``total`` and ``hits`` come from the same point in time."""

    total: int
    hits: Iterator[dict[str, Any]]


def read_window(settings: Settings, dataset: str, start: datetime, end: datetime, *, page: int = 5000) -> WindowRead:
    """All documents of ``[start, end)`` sorted by ``@timestamp`` then ``_doc``, with their exact count.

    ``_doc`` is the tie-break because it is stable inside one point in time and free;
    sorting on ``_id`` would load it into the heap as fielddata.
    """
    es = client(settings)
    pit = es.transport.perform_request(
        "POST", f"/{pattern_for(dataset)}/_search/point_in_time", params={"keep_alive": "5m", **IGNORE}
    )["pit_id"]
    query = _range(start, end)
    first = es.transport.perform_request("POST", "/_search", body={
        "size": 0, "track_total_hits": True, "query": query, "pit": {"id": pit, "keep_alive": "5m"},
    })
    total = int(first["hits"]["total"]["value"])

    def hits() -> Iterator[dict[str, Any]]:
        after = None
        try:
            while True:
                body: dict[str, Any] = {
                    "size": page, "query": query, "pit": {"id": pit, "keep_alive": "5m"},
                    "sort": [{"@timestamp": "asc"}, {"_doc": "asc"}], "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                got = es.transport.perform_request("POST", "/_search", body=body)["hits"]["hits"]
                if not got:
                    return
                yield from got
                after = got[-1]["sort"]
        finally:
            try:
                es.transport.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": pit})
            except Exception:
                pass

    return WindowRead(total, hits())
