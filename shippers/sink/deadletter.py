"""Dead letters: documents OpenSearch refused, kept with the reason, and sent again on request.

The sender writes them to ``deadletter-YYYY.MM.DD`` (see :mod:`sender`).
``pang deadletter list`` shows them; ``pang deadletter replay`` re-sends each
original document to the index and id it was meant for (after the mapping or
the data was fixed), and stamps ``pang.deadletter.replayed`` on those that
went through, so a second replay skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pang.indexer.client import connection
from pang.indexer.scan import scan
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action

PATTERN = "deadletter-*"


@dataclass
class ReplayResult:
    replayed: int = 0
    rejected_again: int = 0
    reasons: list[str] = field(default_factory=list)


def pending(settings: Settings, query: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Dead letters not replayed yet (hits with ``_index``, ``_id`` and ``_source``)."""
    must_not = [{"exists": {"field": "pang.deadletter.replayed"}}]
    q = {"bool": {"must": [query] if query else [], "must_not": must_not}}
    return scan(settings, PATTERN, q, sort=[{"@timestamp": "asc"}, {"_doc": "asc"}])


def replay(settings: Settings, query: dict[str, Any] | None = None, *, batch: int = 500) -> ReplayResult:
    """Re-send pending dead letters to their target index and id."""
    bulk = BulkClient(connection(settings))
    result = ReplayResult()
    hits: list[dict[str, Any]] = []

    def flush() -> None:
        actions = []
        for h in hits:
            dl = h["_source"]["pang"]["deadletter"]
            original = h["_source"]["event"]["original"].encode()
            actions.append(encode_action(dl["index"], dl["id"], original))
        answer = bulk.post(actions, refresh=True)
        stamps = []
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for pos in answer.ok:
            h = hits[pos]
            stamps.append(
                b'{"update":{"_index":"%s","_id":"%s"}}\n%s\n'
                % (h["_index"].encode(), h["_id"].encode(), orjson.dumps({"doc": {"pang": {"deadletter": {"replayed": now}}}}))
            )
        if stamps:
            bulk.post(stamps, refresh=True)
        result.replayed += len(answer.ok)
        result.rejected_again += len(answer.rejected) + len(answer.retry)
        result.reasons.extend(reason for _pos, _status, reason in answer.rejected[:5])
        hits.clear()

    for hit in pending(settings, query):
        hits.append(hit)
        if len(hits) >= batch:
            flush()
    if hits:
        flush()
    bulk.close()
    return result
