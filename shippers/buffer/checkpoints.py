"""File checkpoints: how far each log stream has been acknowledged by OpenSearch.

A *stream* is the content of one log file, wherever it lives: it keeps its
identity when the file is renamed (rotation) or copied (copytruncate), so the
checkpoint is keyed by a fingerprint of the stream's first bytes, not by path
or inode. The checkpoint offset only moves after the node acknowledged every
event before it, so a crash re-sends at most what was in flight, and the
deterministic ids make that re-send overwrite itself.

The file is JSON, replaced atomically (write, fsync, rename), small enough to
rewrite in full: one entry per stream seen within ``forget_after`` seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson


@dataclass
class StreamState:
    """Everything remembered about one stream between runs."""

    key: str  # fingerprint of the first ``head_len`` bytes; part of every event id
    head_len: int
    offset: int  # acknowledged up to here (byte offset of the next unshipped event)
    tail_hash: str  # hash of the bytes just before ``offset``: tells a copy from a look-alike
    path: str
    dev: int
    inode: int
    updated: float
    finished: bool = False  # truncated or deleted after being read to its end


class CheckpointStore:
    """The set of :class:`StreamState` on disk; writes are atomic and rate-limited by the caller."""

    def __init__(self, path: Path, *, forget_after: float = 7 * 86400) -> None:
        self.path = path
        self.forget_after = forget_after
        self.streams: dict[str, StreamState] = {}
        self.existed = path.exists()
        if self.existed:
            self._load()

    def _load(self) -> None:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            # A corrupt checkpoint must not stop the agent; re-reading is safe (ids are deterministic).
            broken = self.path.with_suffix(f".corrupt-{int(time.time())}")
            os.replace(self.path, broken)
            raise CheckpointCorrupt(f"checkpoint file {self.path} was unreadable ({exc}); moved to {broken}") from None
        for item in raw.get("streams", []):
            state = StreamState(**item)
            self.streams[state.key] = state

    def save(self) -> None:
        now = time.time()
        keep = [asdict(s) for s in self.streams.values() if not (s.finished and now - s.updated > self.forget_after)]
        data = orjson.dumps({"version": 1, "streams": keep})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class CheckpointCorrupt(RuntimeError):
    pass
