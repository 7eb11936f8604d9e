"""Physical lines to log events (stack traces stay with their log line), with byte offsets.

The tailer reads lines and their byte offsets and feeds them in file order;
``Multiline`` answers the events each line completed. An event is a run of
lines: its ``start`` is the first line's start offset and its ``end`` the last
line's end (exclusive, newline included), so consecutive events are
contiguous and, after ``flush()``, cover exactly the bytes fed. The event being
assembled is not finished until a line that starts a new event arrives, the
caller sees no new line for ``flush_timeout`` seconds (``flush_due``), or the
file ends (``flush``); the caller must never checkpoint past
``pending_start``.

Default rules (Filebeat-like, for Java, Python and most text layouts)
    A line *continues* the pending event when it

    - is blank, or starts with a space or a tab (Java's ``\\tat ...`` frames,
      ``\\t... 12 more``, Python's indented frames and ``^^^^`` markers);
    - starts with ``Caused by:`` or ``Suppressed:``, or is ``... N more`` /
      ``... N common frames omitted``;
    - is ``Traceback (most recent call last):`` (Python's ``logger.exception``
      writes it after the log line), or, after a traceback's exception line,
      ``During handling of the above exception...`` / ``The above exception was
      the direct cause...`` (the blank lines around them are blank lines);
    - is the first non-indented line after a traceback's frames and looks like
      an exception line (``ValueError: bad``, ``KeyboardInterrupt``);
    - is a Java-style exception header: ``^[\\w$.]+(Exception|Error|Throwable)(: .*)?$``
      (``java.lang.IllegalStateException: boom`` right after the log line).

    Every other line starts a new event; a line starting with a digit (a
    timestamp) always does.

``start_pattern`` (Filebeat's ``negate: true, match: after``)
    A line in which the regex is found (``re.search``; anchor it with ``^``)
    starts a new event; every other line, blank ones included, continues the
    pending event.

In both modes
    A JSON line -- starts with ``{`` and ends with ``}`` -- is a whole event
    by itself: it ends the pending event and is returned at once (no waiting
    for the next line). A line starting with ``{`` but not ending with ``}``
    is an ordinary line. A continuation line with nothing
    pending (the file's first line, or after a JSON line) starts an event.

    Trailing blank lines are left out of an event's ``text`` (their bytes are
    still in its offsets). An event can be all blank (``text == ""``): it is
    still returned so offsets stay contiguous; the caller skips shipping it.

Limits
    ``max_lines`` (500) and ``max_bytes`` (256 KiB, counted as ``end - start``
    of the kept lines): a line that would pass either is dropped from the text,
    as is every later line of the same event, but still consumed (``end`` and
    ``lines`` advance) and the event is flagged ``truncated``. A first line
    longer than ``max_bytes`` is cut to ``max_bytes`` UTF-8 bytes (truncated).

``lines`` counts the physical lines consumed, dropped ones included. Lines may
be given with or without their ``\\n``/``\\r\\n``; it is removed. ``now`` is any
monotonic clock in seconds, the caller's.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Event", "Multiline"]


class Event(NamedTuple):
    text: str
    start: int  # byte offset of the first line
    end: int  # byte offset after the last line (exclusive, newline included)
    lines: int  # physical lines consumed, dropped ones included
    truncated: bool  # lines were dropped (max_lines / max_bytes)


_NONE, _IN_TB, _AFTER_EXC = 0, 1, 2
_PY_TB = "Traceback (most recent call last):"
_CONT_PREFIXES = ("Caused by:", "Suppressed:")
_PY_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_RE_MORE = re.compile(r"\.\.\. \d+ (?:more|common frames omitted)")
_RE_JAVA_EXC = re.compile(r"[\w$.]+(?:Exception|Error|Throwable)(?:: .*)?", re.DOTALL)
_RE_PY_EXC_LINE = re.compile(r"[A-Za-z_][\w.]*(?::.*)?", re.DOTALL)
_DIGITS = frozenset("0123456789")


def _cut(line: str, max_bytes: int) -> str:
    """The longest prefix of ``line`` that fits ``max_bytes`` UTF-8 bytes (a split character is dropped)."""
    return line.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")


class Multiline:
    """Groups physical lines into events; see the module docstring for the rules."""

    __slots__ = (
        "max_lines", "max_bytes", "flush_timeout", "_start_re",
        "_parts", "_start", "_end", "_nlines", "_bytes", "_trunc", "_last", "_tb",
    )

    def __init__(
        self,
        *,
        start_pattern: str | re.Pattern[str] | None = None,
        max_lines: int = 500,
        max_bytes: int = 256 * 1024,
        flush_timeout: float = 1.0,
    ) -> None:
        if max_lines < 1 or max_bytes < 1 or flush_timeout < 0:
            raise ValueError("max_lines and max_bytes must be >= 1 and flush_timeout >= 0")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.flush_timeout = flush_timeout
        self._start_re = re.compile(start_pattern) if isinstance(start_pattern, str) else start_pattern
        self._parts: list[str] | None = None  # the pending event's kept lines; None: nothing pending
        self._start = 0
        self._end = 0
        self._nlines = 0
        self._bytes = 0
        self._trunc = False
        self._last = 0.0
        self._tb = _NONE

    @property
    def pending_start(self) -> int | None:
        """Start offset of the event still being assembled (never checkpoint past it); None if none."""
        return None if self._parts is None else self._start

    def feed(self, line: str, start: int, end: int, now: float) -> list[Event]:
        """Consume one line (bytes ``[start, end)`` of the file); return the events it completed, in order."""
        if line and line[-1] == "\n":
            line = line[:-1]
        if line and line[-1] == "\r":
            line = line[:-1]
        out: list[Event] = []
        is_json = line[:1] == "{" and (line[-1] == "}" or line.rstrip()[-1] == "}")
        if self._parts is not None:
            if not is_json and self._continues(line):
                self._add(line, start, end, now)
                return out
            out.append(self._finish())
        if is_json:
            size = end - start
            if size > self.max_bytes:
                out.append(Event(_cut(line, self.max_bytes), start, end, 1, True))
            else:
                out.append(Event(line, start, end, 1, False))
            return out
        self._begin(line, start, end, now)
        return out

    def flush_due(self, now: float) -> list[Event]:
        """The pending event, if no line arrived for ``flush_timeout`` seconds."""
        if self._parts is not None and now - self._last >= self.flush_timeout:
            return [self._finish()]
        return []

    def flush(self) -> list[Event]:
        """Whatever is pending (the file was closed, or shutdown)."""
        if self._parts is not None:
            return [self._finish()]
        return []

    # ------------------------------------------------------------------ internals

    def _continues(self, line: str) -> bool:
        if self._start_re is not None:
            return self._start_re.search(line) is None
        if not line:
            return True
        c = line[0]
        if c == " " or c == "\t":
            return True
        if c in _DIGITS:
            return False
        tb = self._tb
        if tb == _IN_TB:  # the first non-indented line after the frames: the exception line
            if _RE_PY_EXC_LINE.fullmatch(line) is not None:
                self._tb = _AFTER_EXC
                return True
            return False
        if line.startswith(_PY_TB):
            self._tb = _IN_TB
            return True
        if line.startswith(_CONT_PREFIXES):
            return True
        if tb == _AFTER_EXC and line.startswith(_PY_CHAIN):
            return True
        if c == "." and _RE_MORE.match(line) is not None:
            return True
        return _RE_JAVA_EXC.fullmatch(line) is not None

    def _begin(self, line: str, start: int, end: int, now: float) -> None:
        size = end - start
        trunc = False
        if size > self.max_bytes:
            line = _cut(line, self.max_bytes)
            trunc = True
        self._parts = [line]
        self._start = start
        self._end = end
        self._nlines = 1
        self._bytes = size
        self._trunc = trunc
        self._last = now
        self._tb = _IN_TB if self._start_re is None and line.startswith(_PY_TB) else _NONE

    def _add(self, line: str, start: int, end: int, now: float) -> None:
        self._nlines += 1
        self._end = end
        self._last = now
        if self._trunc:
            return
        size = end - start
        parts = self._parts
        assert parts is not None
        if len(parts) >= self.max_lines or self._bytes + size > self.max_bytes:
            self._trunc = True
            return
        parts.append(line)
        self._bytes += size

    def _finish(self) -> Event:
        parts = self._parts
        assert parts is not None
        n = len(parts)
        if n == 1:
            text = parts[0]
        else:
            while n > 1 and (not parts[n - 1] or parts[n - 1].isspace()):
                n -= 1
            text = "\n".join(parts if n == len(parts) else parts[:n])
        self._parts = None
        self._tb = _NONE
        return Event(text, self._start, self._end, self._nlines, self._trunc)
