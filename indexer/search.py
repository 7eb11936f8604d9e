"""Searching logs. User text never becomes a raw query or a script.

The text goes to ``simple_query_string``, which has no syntax errors by
design (bad syntax degrades to terms) and no scripting, over ``message`` by
default. Issue-level features (filters, paging with a point in time,
histograms, highlighting) grow here; the CLI and dashboards only call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pang.indexer.client import client
from pang.indexer.naming import pattern_for
from pang.settings import Settings

MAX_QUERY_CHARS = 2000
MAX_PAGE = 500


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[dict[str, Any]]
    by_service: dict[str, int]
    took_ms: int


def build_query(text: str, *, service: str | None = None) -> dict[str, Any]:
    """The query body for user ``text`` (bounded in length) and optional filters."""
    text = text.strip()[:MAX_QUERY_CHARS]
    must: list[dict[str, Any]] = (
        [{"simple_query_string": {"query": text, "fields": ["message"], "default_operator": "and"}}] if text else []
    )
    filters: list[dict[str, Any]] = [{"term": {"service.name": service}}] if service else []
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def search(settings: Settings, text: str, *, dataset: str = "app", service: str | None = None, size: int = 10) -> SearchResult:
    """Newest matching documents first, the exact total and a count per service."""
    body = {
        "query": build_query(text, service=service),
        "size": max(0, min(size, MAX_PAGE)),
        "sort": [{"@timestamp": "desc"}],
        "track_total_hits": True,
        "aggs": {"by_service": {"terms": {"field": "service.name", "size": 50}}},
    }
    answer = client(settings).search(index=pattern_for(dataset), body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    return SearchResult(
        total=int(answer["hits"]["total"]["value"]),
        hits=[h["_source"] for h in answer["hits"]["hits"]],
        by_service={b["key"]: int(b["doc_count"]) for b in answer["aggregations"]["by_service"]["buckets"]} if "aggregations" in answer else {},
        took_ms=int(answer.get("took", 0)),
    )
