"""Tailing log files: discovery, identity across rotation, and reading to the end of every file.

Identity. A file's *stream* is recognised by a fingerprint of its first bytes
(up to ``head_bytes``), never by path or inode alone:

* same device and inode, same head: the same file (also after a rename);
* other inode, same head, and the bytes before the acknowledged offset match
  too: a copy of the stream (logrotate's copytruncate, a move across
  devices); it resumes at the acknowledged offset, so lines the original lost
  to truncation are read from the copy;
* anything else is a new stream. A look-alike (same head, different tail)
  gets a new key, so its event ids cannot collide with the older stream's.

A file is not identified before it holds one complete line, because the head
of an empty or half-written file says nothing. Rotated or deleted files stay
open until read to their end (plus ``rotate_wait`` for late writes).

Events carry their stream key and start offset; ``event_id`` hashes the two,
so a re-read always produces the same ``_id``.
"""

from __future__ import annotations

import collections
import errno
import glob
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import xxhash

from pang.shippers.buffer.checkpoints import StreamState
from pang.shippers.parse.multiline import Event, Multiline

TAIL_BYTES = 1024


def event_id(key: str, offset: int) -> str:
    return xxhash.xxh3_128_hexdigest(f"{key}:{offset}")


def _hash(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def service_from_path(path: str, pattern: str) -> str:
    """The first folder under the glob's fixed prefix: /pang/logs/app/<service>/x.log -> service."""
    fixed: list[str] = []
    for part in PurePosixPath(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    rel = PurePosixPath(path).parts[len(fixed):]
    if len(rel) >= 2:
        return rel[0]
    return PurePosixPath(path).stem.split(".")[0] or "unknown"


@dataclass
class FileEvent:
    """One log event from a file, with what the document and checkpoint need."""

    text: str
    key: str
    start: int
    path: str
    service: str
    truncated: bool
    invalid_utf8: bool


@dataclass
class TailedFile:
    fd: int
    path: str
    pattern: str
    dev: int
    inode: int
    service: str
    multiline: Multiline
    stream: StreamState | None = None
    read_pos: int = 0
    buf: bytearray = field(default_factory=bytearray)
    buf_start: int = 0
    skipping: bool = False  # inside a line longer than the limit: discard bytes up to its newline
    long_line_start: int = -1
    # (line start, truncated, invalid UTF-8) of flagged lines not yet in an emitted event
    flags: collections.deque[tuple[int, bool, bool]] = field(default_factory=collections.deque)
    hold: int | None = None  # start of an event handed out but maybe not yet in a sealed batch
    tail: bytes = b""  # the last TAIL_BYTES consumed: the checkpoint hash of a file that is gone
    last_data: float = field(default_factory=time.monotonic)
    gone_since: float | None = None

    @property
    def safe_offset(self) -> int:
        """Everything before this offset is in an emitted event (or was blank)."""
        marks = [self.buf_start, self.multiline.pending_start, self.hold, self.long_line_start if self.skipping else None]
        return min(m for m in marks if m is not None)


@dataclass
class FileTailerStats:
    lines: int = 0
    bytes: int = 0
    truncated_lines: int = 0
    invalid_utf8: int = 0
    rotations: int = 0
    truncations: int = 0
    opened: int = 0
    closed: int = 0


class FileTailer:
    """Finds files matching globs and yields their events; single-threaded by design (one reader)."""

    def __init__(
        self,
        patterns: list[str],
        streams: dict[str, StreamState],
        *,
        start_at_end: bool = False,
        max_line_bytes: int = 256 * 1024,
        max_open_files: int = 1024,
        head_bytes: int = 1024,
        read_chunk: int = 1 << 20,
        rotate_wait: float = 5.0,
        close_inactive: float = 300.0,
        multiline: Callable[[], Multiline] = Multiline,
    ) -> None:
        self.patterns = patterns
        self.streams = streams  # shared with the checkpoint store; only offsets there are acknowledged ones
        self.start_at_end = start_at_end
        self.max_line_bytes = max_line_bytes
        self.max_open_files = max_open_files
        self.head_bytes = head_bytes
        self.read_chunk = read_chunk
        self.rotate_wait = rotate_wait
        self.close_inactive = close_inactive
        self.new_multiline = multiline
        self.files: dict[tuple[int, int], TailedFile] = {}
        self.stats = FileTailerStats()
        self._first_scan = True
        self._final: dict[str, tuple[int, str, bool]] = {}  # streams that ended since the last snapshot

    # --- discovery ---------------------------------------------------------------------

    def scan(self) -> None:
        """Open new files matching the globs; notice renames and deletions of open ones."""
        seen: dict[tuple[int, int], tuple[str, str]] = {}
        for pattern in self.patterns:
            for path in glob.iglob(pattern, recursive=True):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not os.path.isfile(path):
                    continue
                seen.setdefault((st.st_dev, st.st_ino), (path, pattern))
        now = time.monotonic()
        for ident, tf in self.files.items():
            if ident in seen:
                tf.path = seen[ident][0]
                tf.gone_since = None
            elif tf.gone_since is None:
                tf.gone_since = now  # renamed out of the globs, or deleted: read to the end, then close
        for ident, (path, pattern) in seen.items():
            if ident not in self.files and len(self.files) < self.max_open_files:
                self._open(path, pattern, ident)
        self._first_scan = False

    def _open(self, path: str, pattern: str, ident: tuple[int, int]) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ident:
            os.close(fd)
            return
        tf = TailedFile(fd, path, pattern, st.st_dev, st.st_ino, service_from_path(path, pattern), self.new_multiline())
        self.files[ident] = tf
        self.stats.opened += 1
        self._identify(tf, st.st_size)

    def _identify(self, tf: TailedFile, size: int) -> None:
        """Bind ``tf`` to a known stream or a new one, once it holds a complete line."""
        head = os.pread(tf.fd, self.head_bytes, 0)
        if b"\n" not in head and len(head) < self.head_bytes:
            return  # not identifiable yet; retried on every poll
        head_len = len(head)
        holders = {id(f.stream): f for f in self.files.values() if f.stream is not None and f is not tf}
        candidates = [s for s in self.streams.values() if s.head_len <= head_len and _hash(head[: s.head_len]) == s.key.split("~")[0]]
        for s in candidates:  # 1. the same file (inode) with the same head
            if (s.dev, s.inode) == (tf.dev, tf.inode) and id(s) not in holders and not s.finished:
                self._bind(tf, s, s.offset)
                return
        for s in candidates:
            holder = holders.get(id(s))
            if holder is not None:
                if self._same_content(holder, tf, size):
                    # A copy of a stream whose original is still open (copytruncate before the
                    # truncation was seen): adopt it once the original has ended, so nothing is read twice.
                    return
                continue  # a look-alike of a live stream: a stream of its own
            if s.offset > size:
                continue
            # 2. a copy: same head and the same bytes before the acknowledged offset
            before = os.pread(tf.fd, min(TAIL_BYTES, s.offset), max(0, s.offset - TAIL_BYTES))
            if _hash(before) == s.tail_hash:
                if s.finished or (s.dev, s.inode) != (tf.dev, tf.inode):
                    self.stats.rotations += 1
                s.finished = False
                s.dev, s.inode, s.path = tf.dev, tf.inode, tf.path
                self._bind(tf, s, s.offset)
                return
        key = _hash(head)
        n = 0
        while (key if n == 0 else f"{key}~{n}") in self.streams:
            n += 1
        state = StreamState(
            key=key if n == 0 else f"{key}~{n}", head_len=head_len, offset=0, tail_hash=_hash(b""),
            path=tf.path, dev=tf.dev, inode=tf.inode, updated=time.time(),
        )
        self.streams[state.key] = state
        start = size if (self.start_at_end and self._first_scan) else 0
        if start:
            start = self._line_start_at_or_before(tf, start)
            state.offset = start
            state.tail_hash = _hash(os.pread(tf.fd, min(TAIL_BYTES, start), max(0, start - TAIL_BYTES)))
        self._bind(tf, state, start)

    def _line_start_at_or_before(self, tf: TailedFile, pos: int) -> int:
        """Start reading a file 'at the end' on a line boundary, not inside a half line."""
        back = os.pread(tf.fd, min(pos, 65536), max(0, pos - 65536))
        nl = back.rfind(b"\n")
        return pos - len(back) + nl + 1 if nl >= 0 else pos

    @staticmethod
    def _same_content(original: TailedFile, other: TailedFile, other_size: int) -> bool:
        """Whether ``other`` holds what was read from ``original`` (or the original shrank: unknown yet)."""
        if not FileTailer._head_intact(original):
            return True  # truncated and written again: the reader will notice and end the stream
        p = min(original.read_pos, other_size)
        n = min(TAIL_BYTES, p)
        if n == 0:
            return True
        mine = os.pread(original.fd, n, p - n)
        if len(mine) < n:
            return True  # the original was truncated under us: wait for the reader to notice
        return mine == os.pread(other.fd, n, p - n)

    @staticmethod
    def _head_intact(tf: TailedFile) -> bool:
        """The file still begins as its stream did (not truncated and rewritten past our offset)."""
        s = tf.stream
        if s is None:
            return True
        return _hash(os.pread(tf.fd, s.head_len, 0)) == s.key.split("~")[0]

    def _bind(self, tf: TailedFile, state: StreamState, offset: int) -> None:
        tf.stream = state
        tf.read_pos = tf.buf_start = offset
        tf.buf.clear()
        state.path, state.dev, state.inode = tf.path, tf.dev, tf.inode

    # --- reading -------------------------------------------------------------------------

    def poll(self, budget_bytes: int = 8 << 20) -> Iterator[FileEvent]:
        """Read what is new in every open file (up to ``budget_bytes`` in all) and yield events."""
        now = time.monotonic()
        for tf in list(self.files.values()):
            if tf.stream is None:
                try:
                    self._identify(tf, os.fstat(tf.fd).st_size)
                except OSError:
                    pass
                if tf.stream is None:
                    if tf.gone_since is not None and now - tf.gone_since > self.rotate_wait:
                        self._close(tf)
                    continue
            if not self._head_intact(tf):
                # Truncated and already written again beyond our offset (copytruncate under load):
                # the size check alone would read the new content as if it continued the old.
                yield from self._truncated(tf)
                continue
            got = 0
            while budget_bytes > 0:
                chunk = os.pread(tf.fd, min(self.read_chunk, budget_bytes), tf.read_pos)
                if not chunk:
                    break
                got += len(chunk)
                budget_bytes -= len(chunk)
                yield from self._consume(tf, chunk)
            if got:
                tf.last_data = now
                self.stats.bytes += got
                continue
            yield from self._at_eof(tf, now)
        for tf in list(self.files.values()):
            yield from self._emit(tf, tf.multiline.flush_due(time.monotonic()))

    def _consume(self, tf: TailedFile, chunk: bytes) -> Iterator[FileEvent]:
        tf.read_pos += len(chunk)
        tf.tail = chunk[-TAIL_BYTES:] if len(chunk) >= TAIL_BYTES else (tf.tail + chunk)[-TAIL_BYTES:]
        data = chunk
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                rest = data[pos:]
                if tf.skipping:
                    pass  # still inside an over-long line
                elif len(tf.buf) + len(rest) > self.max_line_bytes:
                    yield from self._long_line(tf, rest)
                else:
                    tf.buf += rest
                return
            piece = data[pos:nl]
            end_offset = tf.read_pos - len(data) + nl + 1
            pos = nl + 1
            if tf.skipping:
                tf.skipping = False
                tf.buf_start = end_offset
                continue
            if tf.buf:
                tf.buf += piece
                line_bytes = bytes(tf.buf)
                tf.buf.clear()
            else:
                line_bytes = piece
            truncated = False
            if len(line_bytes) > self.max_line_bytes:
                line_bytes, truncated = line_bytes[: self.max_line_bytes], True
            start = tf.buf_start
            tf.buf_start = end_offset
            yield from self._line(tf, line_bytes, start, end_offset, truncated)

    def _long_line(self, tf: TailedFile, rest: bytes) -> Iterator[FileEvent]:
        """A line past the limit: emit its first ``max_line_bytes`` now, skip the rest up to its newline."""
        line = (bytes(tf.buf) + rest)[: self.max_line_bytes]
        tf.buf.clear()
        start = tf.buf_start
        tf.skipping = True
        tf.long_line_start = start
        yield from self._line(tf, line, start, start + self.max_line_bytes, True)
        tf.long_line_start = tf.read_pos  # the emitted part is safe; the skipped part holds no event

    def _line(self, tf: TailedFile, raw: bytes, start: int, end: int, truncated: bool) -> Iterator[FileEvent]:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
            invalid = False
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            invalid = True
            self.stats.invalid_utf8 += 1
        self.stats.lines += 1
        if truncated:
            self.stats.truncated_lines += 1
        if not text or text.isspace():
            # Blank lines carry nothing, but they may sit inside a stack trace
            if tf.multiline.pending_start is None:
                return
        if truncated or invalid:
            tf.flags.append((start, truncated, invalid))
        yield from self._emit(tf, tf.multiline.feed(text, start, end, time.monotonic()))

    def _emit(self, tf: TailedFile, events: list[Event]) -> Iterator[FileEvent]:
        # While an event is out with the consumer, the checkpoint must not pass its start.
        for ev in events:
            tf.hold = ev.start
            fe = self._event(tf, ev)
            if fe.text.strip():  # an all-blank event only keeps offsets contiguous
                yield fe
        tf.hold = None

    def _event(self, tf: TailedFile, ev: Event) -> FileEvent:
        truncated, invalid = ev.truncated, False
        while tf.flags and tf.flags[0][0] < ev.end:  # the flags of the lines inside this event
            _start, t, i = tf.flags.popleft()
            truncated, invalid = truncated or t, invalid or i
        assert tf.stream is not None
        return FileEvent(ev.text, tf.stream.key, ev.start, tf.path, tf.service, truncated, invalid)

    def _at_eof(self, tf: TailedFile, now: float) -> Iterator[FileEvent]:
        try:
            size = os.fstat(tf.fd).st_size
        except OSError:
            size = tf.read_pos
        if size < tf.read_pos:  # truncated (copytruncate, or `> file`): the stream ends here
            yield from self._truncated(tf)
            return
        idle = now - tf.last_data
        if tf.gone_since is not None and now - tf.gone_since > self.rotate_wait and idle > self.rotate_wait:
            yield from self._finish(tf)
            self._close(tf)
        elif tf.gone_since is None and idle > self.close_inactive and tf.multiline.pending_start is None and not tf.buf:
            self._close(tf)  # reopened by the next scan if it changes; the checkpoint says where to resume

    def _truncated(self, tf: TailedFile) -> Iterator[FileEvent]:
        """End the file's stream; what is in the file now is a new stream, identified on the next poll."""
        self.stats.truncations += 1
        yield from self._finish(tf)
        tf.stream = None
        tf.read_pos = tf.buf_start = 0
        tf.tail = b""
        tf.buf.clear()
        tf.flags.clear()
        tf.multiline = self.new_multiline()

    def _finish(self, tf: TailedFile) -> Iterator[FileEvent]:
        """The file will not grow any more: emit a final unterminated line and any pending event."""
        if tf.buf and not tf.skipping:
            raw = bytes(tf.buf)
            tf.buf.clear()
            start = tf.buf_start
            tf.buf_start = tf.read_pos
            yield from self._line(tf, raw, start, tf.read_pos, False)
        yield from self._emit(tf, tf.multiline.flush())
        tf.skipping = False
        tf.buf_start = tf.read_pos
        if tf.stream is not None:
            # Committed with the batch holding these last events; the bytes may be gone by then.
            self._final[tf.stream.key] = (tf.read_pos, _hash(tf.tail), True)

    def _close(self, tf: TailedFile) -> None:
        try:
            os.close(tf.fd)
        except OSError as exc:  # pragma: no cover - EBADF only if closed twice
            if exc.errno != errno.EBADF:
                raise
        self.files.pop((tf.dev, tf.inode), None)
        self.stats.closed += 1

    def flush_all(self) -> Iterator[FileEvent]:
        """At shutdown: emit pending multiline events (complete lines only; partial lines wait for a restart)."""
        for tf in list(self.files.values()):
            yield from self._emit(tf, tf.multiline.flush())

    # --- checkpoints -------------------------------------------------------------------

    def snapshot(self) -> dict[str, tuple[int, str, bool]]:
        """Per stream: the safe offset, the hash of the bytes before it, and whether it is finished.

        Taken when a batch is sealed; applied to the checkpoint once that batch and all before
        it were acknowledged.
        """
        out: dict[str, tuple[int, str, bool]] = {}
        for tf in self.files.values():
            s = tf.stream
            if s is None:
                continue
            safe = tf.safe_offset
            try:
                before = os.pread(tf.fd, min(TAIL_BYTES, safe), max(0, safe - TAIL_BYTES))
            except OSError:
                before = b""
            out[s.key] = (safe, _hash(before), False)
        out.update(self._final)
        self._final.clear()
        return out

    def lag_bytes(self) -> dict[str, int]:
        """Per file path: bytes written but not yet read (what the /metrics lag gauge shows)."""
        lag = {}
        for tf in list(self.files.values()):  # called from the HTTP thread
            try:
                lag[tf.path] = max(0, os.fstat(tf.fd).st_size - tf.read_pos)
            except OSError:
                continue
        return lag

    def close(self) -> None:
        for tf in list(self.files.values()):
            self._close(tf)
