"""Sending batches: a few threads post pre-encoded ``_bulk`` bodies, retry what can succeed, dead-letter the rest.

Backpressure is the queue: ``submit`` blocks when ``queue_batches`` batches
wait, so a slow or unreachable node slows the readers instead of growing
memory. Memory is bounded by (queue + threads) x batch bytes.

Retries are item-level: after a ``_bulk`` answer only the items that got 429
or 5xx go again, with exponential backoff and full jitter; whole-request
failures (connection refused, 5xx, 429) retry the whole remainder. Nothing is
ever given up while the agent runs: an unreachable node is an outage to wait
out, not a reason to drop data. The loop is written here rather than with
tenacity because what is retried shrinks between attempts and the wait must
end at once on a hard stop.

Rejected items (mapping errors and other 4xx) go to ``deadletter-YYYY.MM.DD``
with the reason, the target index and id, and the original document, so
``pang deadletter replay`` can send them again after a fix.

A batch is *done* when each of its items was indexed or dead-lettered; its
``on_done`` runs then, and inputs commit checkpoints in batch order through
:class:`OrderedCommits`.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import xxhash

from pang.indexer.naming import index_for
from pang.shippers.sink.bulk import BulkClient, BulkError, encode_action


@dataclass
class Batch:
    actions: list[bytes]
    nbytes: int
    dataset: str
    on_done: Callable[[], None] = lambda: None


@dataclass
class SinkStats:
    """Counters the agent exposes on /metrics."""

    shipped: dict[str, int] = field(default_factory=dict)  # by dataset
    resent: int = 0  # items that overwrote an existing _id (a re-send after a restart or retry)
    retries: dict[str, int] = field(default_factory=dict)  # by reason
    rejected: int = 0
    deadlettered: int = 0
    deadletter_file: int = 0
    requests: int = 0
    request_seconds: float = 0.0
    in_flight: int = 0
    last_success: float = 0.0
    last_error: str = ""


class OrderedCommits:
    """Applies commit payloads in the order batches were sealed, once each is done."""

    def __init__(self, commit: Callable[[Any], None]) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._next_ticket = 0
        self._next_commit = 0
        self._done: dict[int, Any] = {}

    def ticket(self) -> int:
        with self._lock:
            t = self._next_ticket
            self._next_ticket += 1
            return t

    def done(self, ticket: int, payload: Any) -> None:
        with self._lock:
            self._done[ticket] = payload
            while self._next_commit in self._done:
                self._commit(self._done.pop(self._next_commit))
                self._next_commit += 1

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._next_ticket - self._next_commit


class Sender:
    def __init__(
        self,
        bulk: BulkClient,
        *,
        threads: int = 3,
        queue_batches: int = 4,
        max_backoff: float = 30.0,
        deadletter_file: Callable[[bytes], None] | None = None,
    ) -> None:
        self.bulk = bulk
        self.max_backoff = max_backoff
        self.stats = SinkStats()
        self._stats_lock = threading.Lock()
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=queue_batches)
        self._hard_stop = threading.Event()
        self._deadletter_file = deadletter_file
        self._threads = [threading.Thread(target=self._run, name=f"pang-sender-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    def submit(self, batch: Batch, timeout: float | None = None) -> None:
        """Queue a batch; blocks while the queue is full (backpressure)."""
        self._queue.put(batch, timeout=timeout)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted batch is done; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return self._queue.unfinished_tasks == 0

    def stop(self) -> None:
        """Stop at once: pending retries are abandoned (their checkpoints were not committed)."""
        self._hard_stop.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
        for t in self._threads:
            t.join(timeout=5)

    # --- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._hard_stop.is_set():
            batch = self._queue.get()
            if batch is None:
                self._queue.task_done()
                return
            try:
                with self._stats_lock:
                    self.stats.in_flight += 1
                if self._send(batch.actions, batch.dataset, self._deadletter):
                    batch.on_done()
            finally:
                with self._stats_lock:
                    self.stats.in_flight -= 1
                self._queue.task_done()

    def _count(self, name: str, key: str | None = None, n: int = 1) -> None:
        with self._stats_lock:
            if key is None:
                setattr(self.stats, name, getattr(self.stats, name) + n)
            else:
                d = getattr(self.stats, name)
                d[key] = d.get(key, 0) + n

    def _send(self, actions: list[bytes], dataset: str, on_rejected: Callable[[list[tuple[bytes, int, str]]], bool]) -> bool:
        """Post until every item is indexed or handed to ``on_rejected``; False only on a hard stop."""
        pending = actions
        attempt = 0
        while pending:
            if self._hard_stop.is_set():
                return False
            started = time.monotonic()
            try:
                result = self.bulk.post(pending)
            except BulkError as exc:
                self._count("retries", "status_" + str(exc.status) if exc.status else "connection")
                self.stats.last_error = str(exc)[:300]
                if exc.status == 413 and len(pending) > 1:
                    # Too large for the node: split rather than retry the same body forever.
                    half = len(pending) // 2
                    if not self._send(pending[:half], dataset, on_rejected):
                        return False
                    pending = pending[half:]
                    continue
                self._sleep(attempt)
                attempt += 1
                continue
            with self._stats_lock:
                self.stats.requests += 1
                self.stats.request_seconds += time.monotonic() - started
                self.stats.last_success = time.time()
                self.stats.shipped[dataset] = self.stats.shipped.get(dataset, 0) + len(result.ok)
                self.stats.resent += len(result.ok) - result.created
            if result.rejected:
                self._count("rejected", n=len(result.rejected))
                if not on_rejected([(pending[pos], status, reason) for pos, status, reason in result.rejected]):
                    return False
            if result.retry:
                self._count("retries", "item_retry", len(result.retry))
                pending = [pending[pos] for pos in result.retry]
                self._sleep(attempt)
                attempt += 1
            else:
                pending = []
        return True

    def _sleep(self, attempt: int) -> None:
        delay = random.uniform(0, min(self.max_backoff, 0.1 * (2 ** min(attempt, 16))))
        self._hard_stop.wait(max(0.05, delay))

    def _deadletter(self, items: list[tuple[bytes, int, str]]) -> bool:
        """Index rejected items into the dead-letter index (retried like any batch)."""
        now = datetime.now(UTC)
        actions = []
        for action, status, reason in items:
            meta_line, _, doc = action.partition(b"\n")
            meta = orjson.loads(meta_line).get("index", {})
            target, doc_id = meta.get("_index", "?"), meta.get("_id", "")
            record = {
                "@timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"rejected by {target}: {reason}",
                "error": {"message": reason, "type": reason.split(":", 1)[0], "code": str(status)},
                "event": {"dataset": "deadletter", "kind": "pipeline_error", "original": doc.rstrip(b"\n").decode("utf-8", "replace")},
                "pang": {"deadletter": {"index": target, "id": doc_id, "status": status}},
            }
            # One record per rejected document: a second rejection of it overwrites the first.
            dl_id = xxhash.xxh3_128_hexdigest(f"{target}/{doc_id}")
            actions.append(encode_action(index_for("deadletter", now), dl_id, orjson.dumps(record)))
        if not self._send(actions, "deadletter", self._deadletter_to_file):
            return False
        self._count("deadlettered", n=len(items))
        return True

    def _deadletter_to_file(self, items: list[tuple[bytes, int, str]]) -> bool:
        """Last resort for a dead letter the node refuses too: the local file, counted."""
        for action, _status, _reason in items:
            if self._deadletter_file:
                self._deadletter_file(action)
            self._count("deadletter_file")
        return True
