"""Syslog over TCP: cutting a byte stream into messages (RFC 6587), with bounded memory.

Two framings exist and senders mix them up, so the framing is detected per
message from its first byte:

* a digit: octet counting, ``<length> SP <length bytes>`` (RFC 6587 3.4.1,
  RFC 5425). A count that is not digits followed by a space, or is larger than
  ``10 * max_bytes``, is not a count: that message is read as newline-framed
  instead (so ``2026-11-26T10:00:00 host app: msg`` lines, which start with a
  digit, still come through).
* anything else (normally ``<``): non-transparent framing (RFC 6587 3.4.2),
  the message ends at LF; a CR before the LF is dropped. A NUL ends a message
  too: Python's ``logging.handlers.SysLogHandler`` over TCP terminates each
  message with NUL and sends no LF, and rsyslog and syslog-ng can be told to
  accept that; a NUL inside a message therefore splits it in two, nothing is
  lost.

Empty messages (blank lines, an LF after an octet-counted frame, ``0 ``) are
skipped. A message longer than ``max_bytes`` is cut to its first
``max_bytes`` bytes and flagged ``truncated``; the rest of it is discarded as
it arrives, so the buffer never holds more than about ``max_bytes`` plus the
chunk being fed. ``feed`` and ``flush`` never raise.
"""

from __future__ import annotations

import re

__all__ = ["SyslogFramer"]

_DELIM = re.compile(rb"[\n\x00]")
_SP = 0x20
_CR = 0x0D


class SyslogFramer:
    """Per-connection state: ``feed`` the bytes as they arrive, ``flush`` on close."""

    __slots__ = ("max_bytes", "_buf", "_skip", "_discard_line", "_scanned", "_max_count", "_max_digits")

    def __init__(self, max_bytes: int = 64 * 1024) -> None:
        self.max_bytes = max(1, int(max_bytes))
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized octet-counted frame still to throw away
        self._discard_line = False  # throwing away an oversized newline frame up to its LF/NUL
        self._scanned = 0  # bytes of the pending newline frame known to hold no delimiter
        self._max_count = 10 * self.max_bytes
        self._max_digits = len(str(self._max_count))

    @property
    def buffered(self) -> int:
        """Bytes held between calls (bounded by about ``max_bytes``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """The messages that ``data`` completes, each with its ``truncated`` flag."""
        out: list[tuple[bytes, bool]] = []
        try:
            if data:
                self._buf += data
                self._drain(out)
        except Exception:  # never take the connection down: drop the state, keep what was framed
            self._reset()
        return out

    def flush(self) -> list[tuple[bytes, bool]]:
        """On connection close: the last message if it had no terminator (a cut-off
        octet-counted frame comes back flagged ``truncated``)."""
        out: list[tuple[bytes, bool]] = []
        try:
            buf = self._buf
            if buf and not self._skip and not self._discard_line:
                frame, truncated = bytes(buf), False
                count = self._octet_count(0)
                if isinstance(count, tuple):
                    frame, truncated = frame[count[1]:], True
                elif frame.endswith(b"\r"):
                    frame = frame[:-1]
                if len(frame) > self.max_bytes:
                    frame, truncated = frame[: self.max_bytes], True
                if frame:
                    out.append((frame, truncated))
        except Exception:
            pass
        self._reset()
        return out

    def _reset(self) -> None:
        self._buf = bytearray()
        self._skip = 0
        self._discard_line = False
        self._scanned = 0

    def _octet_count(self, pos: int) -> tuple[int, int] | None | bool:
        """At a digit: (length, start of the message) for a valid count, False if it is
        not a count (newline framing), None if more bytes are needed to tell."""
        buf = self._buf
        n = len(buf)
        end = min(n, pos + self._max_digits + 1)
        j = pos
        while j < end and 0x30 <= buf[j] <= 0x39:
            j += 1
        if j == end:
            return None if end == n and j - pos <= self._max_digits else False
        if buf[j] != _SP or j == pos:
            return False
        length = int(buf[pos:j])
        if length > self._max_count:
            return False
        return length, j + 1

    def _drain(self, out: list[tuple[bytes, bool]]) -> None:
        buf = self._buf
        n = len(buf)
        pos = 0
        max_bytes = self.max_bytes
        while pos < n:
            if self._skip:
                k = min(self._skip, n - pos)
                pos += k
                self._skip -= k
                continue
            if self._discard_line:
                m = _DELIM.search(buf, pos)
                if m is None:
                    pos = n
                    break
                pos = m.end()
                self._discard_line = False
                continue
            first = buf[pos]
            if 0x30 <= first <= 0x39:
                count = self._octet_count(pos)
                if count is None:
                    break  # wait for the rest of the count
                if count is not False:
                    length, start = count  # type: ignore[misc]
                    if length <= max_bytes:
                        if n - start < length:
                            break
                        if length:
                            out.append((bytes(buf[start:start + length]), False))
                        pos = start + length
                    else:
                        if n - start < max_bytes:
                            break
                        out.append((bytes(buf[start:start + max_bytes]), True))
                        pos = start + max_bytes
                        self._skip = length - max_bytes
                    continue
            # Newline framing. A message of max_bytes may be followed by CR LF: look that far.
            window = pos + max_bytes + 2
            m = _DELIM.search(buf, pos + self._scanned, window)
            if m is None:
                if n >= window:  # no end within max_bytes (+ CR): oversized
                    out.append((bytes(buf[pos:pos + max_bytes]), True))
                    pos = window
                    self._scanned = 0
                    self._discard_line = True
                    continue
                self._scanned = n - pos
                break
            i = m.start()
            self._scanned = 0
            end = i - 1 if i > pos and buf[i - 1] == _CR else i
            if end - pos > max_bytes:
                out.append((bytes(buf[pos:pos + max_bytes]), True))
            elif end > pos:
                out.append((bytes(buf[pos:end]), False))
            pos = i + 1
        if pos:
            del buf[:pos]
