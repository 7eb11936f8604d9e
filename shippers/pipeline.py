"""The two pipelines of the agent: files to batches, and the spool to batches.

Each runs in one thread, builds batches bounded by bytes and time, and hands
them to the shared :class:`Sender` (blocking when it is busy: that is the
backpressure). Commits happen in batch order, once a batch is done:

* files: the checkpoint offsets captured when the batch was sealed; applied in
  the reader's own thread (it owns the checkpoint store) and written to disk at
  most every ``save_interval``;
* spool: the highest sequence number of the batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from pang.shippers.buffer.checkpoints import CheckpointStore
from pang.shippers.buffer.spool import Spool
from pang.shippers.documents import Enricher, now_iso
from pang.shippers.sink.sender import Batch, OrderedCommits, Sender
from pang.shippers.source.files import FileTailer

log = logging.getLogger("pang.ship")


class BatchBuilder:
    """Collects encoded actions until ``max_bytes`` or ``max_seconds`` since the first one."""

    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.actions: list[bytes] = []
        self.nbytes = 0
        self.first_at = 0.0

    def add(self, action: bytes) -> None:
        if not self.actions:
            self.first_at = time.monotonic()
        self.actions.append(action)
        self.nbytes += len(action)

    def full(self) -> bool:
        return self.nbytes >= self.max_bytes

    def due(self) -> bool:
        return bool(self.actions) and (self.nbytes >= self.max_bytes or time.monotonic() - self.first_at >= self.max_seconds)

    def take(self) -> tuple[list[bytes], int]:
        actions, nbytes = self.actions, self.nbytes
        self.actions, self.nbytes = [], 0
        return actions, nbytes


class FileInput:
    """Tails files into batches; commits checkpoints after acknowledgement."""

    def __init__(self, tailer: FileTailer, store: CheckpointStore, sender: Sender, enricher: Enricher, *,
                 batch_bytes: int, batch_seconds: float, scan_interval: float, save_interval: float = 0.1) -> None:
        self.tailer = tailer
        self.store = store
        self.sender = sender
        self.enricher = enricher
        self.builder = BatchBuilder(batch_bytes, batch_seconds)
        self.scan_interval = scan_interval
        self.save_interval = save_interval
        self._done: queue.SimpleQueue[dict[str, tuple[int, str, bool]]] = queue.SimpleQueue()
        self.commits = OrderedCommits(self._done.put)
        self._dirty = False
        self._last_save = 0.0
        self.stop_reading = threading.Event()
        self.errors = 0

    def run(self) -> None:
        """Read until asked to stop; then seal what was read so the drain can send it."""
        last_scan = 0.0
        while not self.stop_reading.is_set():
            now = time.monotonic()
            if now - last_scan >= self.scan_interval:
                self.tailer.scan()
                last_scan = now
            received = now_iso()
            produced = 0
            for ev in self.tailer.poll():
                self.builder.add(self.enricher.file_action(ev, received))
                produced += 1
                if self.builder.full():
                    self._seal()
                    received = now_iso()
            if self.builder.due():
                self._seal()
            self.apply_commits()
            if not produced:
                self.stop_reading.wait(0.05)
        for ev in self.tailer.flush_all():
            self.builder.add(self.enricher.file_action(ev, now_iso()))
        if self.builder.actions:
            self._seal()

    def _seal(self) -> None:
        actions, nbytes = self.builder.take()
        snapshot = self.tailer.snapshot()
        ticket = self.commits.ticket()
        batch = Batch(actions, nbytes, "app", on_done=lambda: self.commits.done(ticket, snapshot))
        self.apply_commits()  # keep the checkpoint close behind the acknowledgements
        while True:  # backpressure: wait for room, committing what gets done meanwhile
            try:
                self.sender.submit(batch, timeout=0.2)
                return
            except queue.Full:
                self.apply_commits()

    def apply_commits(self, force_save: bool = False) -> None:
        while True:
            try:
                snapshot = self._done.get_nowait()
            except queue.Empty:
                break
            now = time.time()
            for key, (offset, tail_hash, finished) in snapshot.items():
                state = self.store.streams.get(key)
                if state is None:
                    continue
                if offset >= state.offset or finished:
                    state.offset, state.tail_hash, state.updated = offset, tail_hash, now
                state.finished = state.finished or finished
            self._dirty = True
        if self._dirty and (force_save or time.monotonic() - self._last_save >= self.save_interval):
            self.store.save()
            self._dirty = False
            self._last_save = time.monotonic()


class SpoolInput:
    """Ships spool records in order; acknowledges the spool after each batch is done."""

    def __init__(self, spool: Spool, sender: Sender, enricher: Enricher, *, batch_bytes: int, batch_seconds: float) -> None:
        self.spool = spool
        self.sender = sender
        self.enricher = enricher
        self.batch_bytes = batch_bytes
        self.batch_seconds = batch_seconds
        self.commits = OrderedCommits(spool.ack)
        self.stop_reading = threading.Event()

    def run(self) -> None:
        while not self.stop_reading.is_set():
            self.ship_once(wait=self.batch_seconds)
        self.ship_once(wait=0)  # what was spooled before the stop

    def ship_once(self, wait: float) -> int:
        records = self.spool.read(self.batch_bytes, timeout=wait)
        if not records:
            return 0
        by_dataset: dict[str, list[bytes]] = {}
        for seq, payload in records:
            dataset, action = self.enricher.spool_action(self.spool.epoch, seq, payload)
            by_dataset.setdefault(dataset, []).append(action)
        last_seq = records[-1][0]
        ticket = self.commits.ticket()
        actions = [a for group in by_dataset.values() for a in group]
        dataset = next(iter(by_dataset)) if len(by_dataset) == 1 else "mixed"
        batch = Batch(actions, sum(map(len, actions)), dataset, on_done=lambda: self.commits.done(ticket, last_seq))
        self.sender.submit(batch)
        return len(records)


def spool_docs(spool: Spool, enricher: Enricher, dataset: str, docs: list[dict[str, Any]]) -> int:
    """Write documents of one dataset into the spool in one call; returns the first sequence number."""
    return spool.append([enricher.spool_record(dataset, d) for d in docs])
