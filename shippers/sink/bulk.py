"""``_bulk`` requests built from pre-encoded bytes and posted over a bare urllib3 pool.

opensearch-py's bulk helpers re-serialise every action and spend most of a
2-core machine's CPU doing it (about 8k docs/s measured); bodies assembled
from bytes that were encoded once, with orjson, and posted from a few
threads reach the node's own ceiling (42k+). So the sink never holds Python
dicts for a whole batch: documents are encoded as they are made and a batch
is a list of byte strings joined once.

The response is split per item, because ``_bulk`` answers 200 even when some
items failed: each item is ``ok``, ``retry`` (429, 5xx: send again) or
``rejected`` (a mapping error or another 4xx: will never succeed; dead-letter).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3

from pang.indexer.client import Connection

RETRYABLE_ITEM_STATUS = frozenset({429, 500, 502, 503, 504})


def encode_action(index: str, doc_id: str, source: bytes) -> bytes:
    """One ``index`` action and its source, newline-terminated, ready to concatenate."""
    return b'{"index":{"_index":"%s","_id":"%s"}}\n%s\n' % (index.encode(), doc_id.encode(), source)


def encode_doc(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


@dataclass
class BulkResult:
    """What happened to each action of one request, by position in the batch."""

    ok: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)  # (position, status, reason)
    created: int = 0  # items that were new (result "created"), the rest overwrote an existing _id


class BulkError(RuntimeError):
    """The request as a whole failed: connection error or a non-200 answer. ``retryable`` says what to do."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class BulkClient:
    """Posts pre-encoded ``_bulk`` bodies; thread-safe (urllib3 pools are)."""

    def __init__(self, conn: Connection, *, maxsize: int = 4) -> None:
        # Only what split_items reads comes back: parsing a 5,000-item answer is not free.
        self._url = conn.url + "/_bulk?filter_path=errors,items.*.status,items.*.result,items.*.error"
        self._headers = {**conn.headers, "Content-Type": "application/x-ndjson"}
        self._pool = urllib3.PoolManager(
            maxsize=maxsize,
            block=True,
            ssl_context=conn.ssl_context,
            timeout=urllib3.Timeout(connect=5.0, read=conn.timeout),
            retries=False,  # retries are the caller's, with backoff and item-level knowledge
        )

    def post(self, actions: Iterable[bytes], *, refresh: bool = False) -> BulkResult:
        """Send one request made of :func:`encode_action` chunks; split the answer per item."""
        body = b"".join(actions)
        url = self._url + ("&refresh=true" if refresh else "")
        try:
            resp = self._pool.request("POST", url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise BulkError(f"cannot reach OpenSearch: {exc}", retryable=True) from None
        if resp.status != 200:
            retryable = resp.status == 429 or resp.status >= 500
            raise BulkError(f"_bulk answered {resp.status}: {resp.data[:300]!r}", retryable=retryable, status=resp.status)
        data = resp.data
        if b'"errors":false' in data[:32]:
            # The common case: every item succeeded. Counting bytes beats parsing thousands of items.
            n = data.count(b'"status":')
            return BulkResult(ok=list(range(n)), created=data.count(b'"result":"created"'))
        return split_items(orjson.loads(data))

    def close(self) -> None:
        self._pool.clear()


def split_items(answer: dict[str, Any]) -> BulkResult:
    result = BulkResult()
    for pos, item in enumerate(answer.get("items", ())):
        outcome = next(iter(item.values()))
        status = int(outcome.get("status", 0))
        if 200 <= status < 300:
            result.ok.append(pos)
            if outcome.get("result") == "created":
                result.created += 1
        elif status in RETRYABLE_ITEM_STATUS:
            result.retry.append(pos)
        else:
            error = outcome.get("error") or {}
            reason = f"{error.get('type', 'error')}: {error.get('reason', '')}" if isinstance(error, dict) else str(error)
            result.rejected.append((pos, status, reason[:2000]))
    return result
