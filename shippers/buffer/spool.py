"""The disk spool: where syslog messages and metric samples wait for OpenSearch.

Inputs that cannot re-read their source (a UDP datagram, a TCP stream, a
metric sample) acknowledge a message once it is written here: a record is
handed to the kernel with ``os.write`` before the next message is read, so a
killed agent loses nothing it accepted (``fsync`` every ``fsync_interval``
covers a host crash too).

Records get consecutive sequence numbers under the spool's *epoch*, a random
id made when the spool folder is created. ``(agent id, epoch, seq)`` is the
document id, so a replay after a crash overwrites itself, and a lost state
folder starts a new epoch instead of overwriting older documents.

Layout: ``<dir>/epoch``, ``<dir>/acked`` (highest sequence acknowledged) and
segment files ``<first seq>.seg`` of framed records
``[u32 length][u32 crc32][u64 seq][payload]``. A torn record at the end (a
crash mid-write) is cut off on open; segments wholly acknowledged are deleted.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
import time
import zlib
from pathlib import Path

HEADER = struct.Struct(">IIQ")


class SpoolFull(Exception):
    """The spool reached ``max_bytes``; the caller pushes back (TCP) or counts a drop (UDP)."""


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int = 1 << 30, segment_bytes: int = 64 << 20, fsync_interval: float = 1.0) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.dir.mkdir(parents=True, exist_ok=True)
        epoch_file = self.dir / "epoch"
        if not epoch_file.exists():
            _atomic_write(epoch_file, secrets.token_hex(6).encode())
        self.epoch = epoch_file.read_text().strip()
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self.acked = int((self.dir / "acked").read_text() or 0) if (self.dir / "acked").exists() else 0
        self._segments: list[tuple[int, Path]] = sorted(
            (int(p.stem), p) for p in self.dir.glob("*.seg") if p.stem.isdigit()
        )
        self.next_seq = self.acked + 1
        self._bytes = 0
        for _first, path in self._segments:
            last = self._recover(path)
            if last:
                self.next_seq = max(self.next_seq, last + 1)
            self._bytes += path.stat().st_size
        self._fd: int | None = None
        self._active_size = 0
        self._last_fsync = time.monotonic()
        # reader cursor
        self._read_seq = self.acked + 1
        self._read_seg = 0
        self._read_off = 0

    # --- writing ---------------------------------------------------------------------------

    def append(self, payloads: list[bytes]) -> int:
        """Write records in one system call; returns the first sequence number. Raises SpoolFull."""
        with self._lock:
            size = sum(HEADER.size + len(p) for p in payloads)
            if self._bytes + size > self.max_bytes and self._bytes > 0:
                raise SpoolFull(f"spool {self.dir} holds {self._bytes} bytes (limit {self.max_bytes})")
            if self._fd is None or self._active_size >= self.segment_bytes:
                self._roll()
            first = self.next_seq
            parts = []
            for payload in payloads:
                parts.append(HEADER.pack(len(payload), zlib.crc32(payload), self.next_seq))
                parts.append(payload)
                self.next_seq += 1
            data = b"".join(parts)
            assert self._fd is not None
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            self._active_size += len(data)
            self._bytes += len(data)
            now = time.monotonic()
            if now - self._last_fsync >= self.fsync_interval:
                os.fsync(self._fd)
                self._last_fsync = now
            self._readable.notify_all()
            return first

    def _roll(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        path = self.dir / f"{self.next_seq:020d}.seg"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._active_size = os.fstat(self._fd).st_size
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((self.next_seq, path))

    # --- reading -------------------------------------------------------------------------------

    def read(self, max_bytes: int, timeout: float = 0.0) -> list[tuple[int, bytes]]:
        """Records after the last one read, up to about ``max_bytes``; waits up to ``timeout`` for one."""
        with self._lock:
            if self._read_seq >= self.next_seq and timeout > 0:
                self._readable.wait(timeout)
            out: list[tuple[int, bytes]] = []
            total = 0
            while self._read_seq < self.next_seq and total < max_bytes and self._read_seg < len(self._segments):
                path = self._segments[self._read_seg][1]
                with open(path, "rb") as fh:
                    fh.seek(self._read_off)
                    while total < max_bytes:
                        head = fh.read(HEADER.size)
                        if len(head) < HEADER.size:
                            break
                        length, crc, seq = HEADER.unpack(head)
                        payload = fh.read(length)
                        self._read_off += HEADER.size + length
                        if seq >= self._read_seq:
                            out.append((seq, payload))
                            total += HEADER.size + length
                            self._read_seq = seq + 1
                if total < max_bytes and self._read_seg < len(self._segments) - 1:
                    self._read_seg += 1
                    self._read_off = 0
                else:
                    break
            return out

    def rewind(self) -> None:
        """Read again from the first unacknowledged record (after a failed send was abandoned)."""
        with self._lock:
            self._read_seq = self.acked + 1
            self._read_seg, self._read_off = 0, 0

    def ack(self, seq: int) -> None:
        """Everything up to ``seq`` is in OpenSearch: persist that and delete finished segments."""
        with self._lock:
            if seq <= self.acked:
                return
            self.acked = seq
            _atomic_write(self.dir / "acked", str(seq).encode())
            while len(self._segments) > 1 and self._segments[1][0] <= seq + 1:
                _first, path = self._segments.pop(0)
                self._bytes -= path.stat().st_size
                path.unlink(missing_ok=True)
                if self._read_seg == 0:
                    self._read_off = 0  # the reader had finished that segment; start the next one
                else:
                    self._read_seg -= 1

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def pending(self) -> int:
        return self.next_seq - 1 - self.acked

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    # --- recovery ----------------------------------------------------------------------------

    @staticmethod
    def _recover(path: Path) -> int:
        """Cut a torn record off the end of ``path``; returns the last valid sequence number (0 if none)."""
        last = 0
        good = 0
        with open(path, "rb") as fh:
            while True:
                head = fh.read(HEADER.size)
                if len(head) < HEADER.size:
                    break
                length, crc, seq = HEADER.unpack(head)
                payload = fh.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                good += HEADER.size + length
                last = seq
        if good < path.stat().st_size:
            with open(path, "r+b") as fh:
                fh.truncate(good)
        return last


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
