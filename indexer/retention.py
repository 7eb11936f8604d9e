"""Retention: delete daily indices past their age, but never one holding an hour the archive lacks.

The archive decides what "archived" means (a manifest whose row count equals
the hour's count in the index), so the check comes in as a function and the
indexer stays independent of the archive package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pang.indexer.client import client
from pang.indexer.naming import PREFIXES
from pang.settings import Settings

# (dataset, hour start, documents in that hour) -> archived?
IsArchived = Callable[[str, datetime, int], bool]


@dataclass
class RetentionResult:
    deleted: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # index -> hours not archived
    kept: list[str] = field(default_factory=list)


def index_day(name: str, prefix: str) -> datetime | None:
    suffix = name[len(prefix) + 1 :]
    try:
        return datetime.strptime(suffix, "%Y.%m.%d").replace(tzinfo=UTC)
    except ValueError:
        return None  # not a daily index of ours (e.g. logs-app-bench-...)


def retention(
    settings: Settings,
    is_archived: IsArchived,
    *,
    older_than_days: int,
    datasets: Iterable[str] = ("app", "syslog"),
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionResult:
    es = client(settings)
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=older_than_days)
    result = RetentionResult()
    for ds in datasets:
        prefix = PREFIXES[ds]
        names = sorted(es.indices.get(index=f"{prefix}-*", params={"ignore_unavailable": "true", "allow_no_indices": "true"}))
        for name in names:
            day = index_day(name, prefix)
            if day is None or (ds == "metrics" and name.startswith("metrics-business-")):
                continue
            if day + timedelta(days=1) > cutoff:
                result.kept.append(name)
                continue
            body = {"size": 0, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1h", "min_doc_count": 1}}}}
            buckets = es.search(index=name, body=body)["aggregations"]["h"]["buckets"]
            missing = [
                datetime.fromtimestamp(b["key"] / 1000, UTC).strftime("%Y-%m-%dT%H:00Z")
                for b in buckets
                if not is_archived(ds, datetime.fromtimestamp(b["key"] / 1000, UTC), int(b["doc_count"]))
            ]
            if missing:
                result.refused[name] = missing
                continue
            if not dry_run:
                es.indices.delete(index=name)
            result.deleted.append(name)
    return result
