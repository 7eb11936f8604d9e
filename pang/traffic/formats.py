"""Log lines in the layouts real services write, one layout per service.

Each service of the shop logs the way its stack does by default, so pang's
parser meets the mix it meets in production (see ``shippers/parse/lines.py``):

========  ===================================  ==========================================
service   stack, layout                        what pang reads out of it
========  ===================================  ==========================================
gateway   Go reverse proxy, JSON access log    ``@timestamp``, level, ``http.*``, ``url.path``, ``trace.id``
search    Spring Boot 3, default text layout   timestamp, level, thread, logger; stack traces
cart      logback classic text                 timestamp, level, thread, logger; stack traces
order     Java with ecs-logging (JSON)         ECS keys as written, ``error.stack_trace``
payment   Go with zap (JSON, ISO time)         ``ts``, ``level``, ``msg``, ``trace_id``, ``stacktrace``
shipment  log4j2 text                          timestamp, ``[thread] LEVEL logger -``; stack traces
========  ===================================  ==========================================

Business events (``event.action``: ``order.placed``, ``payment.approved``,
``payment.failed``) are only written by the JSON services (order, payment),
the way services that emit business events do: a key, not a phrase. Times are
UTC (containers run in UTC); the text layouts write no zone, which pang reads
as UTC. A Java stack trace follows its log line as continuation lines (an
exception header, ``\\tat`` frames, ``Caused by:``, ``\\t... N more``), which
pang's default multiline rules keep in one document with its line.

Everything here is pure string building, cheap enough for tens of thousands of
lines a second: a minute's timestamp prefix is formatted once (:class:`Stamp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["STYLES", "Failure", "Stamp", "render"]

# service -> layout
STYLES: dict[str, str] = {
    "gateway": "access_json",
    "search": "spring",
    "cart": "logback",
    "order": "ecs_json",
    "payment": "zap_json",
    "shipment": "log4j2",
}

LOGGERS: dict[str, str] = {
    "gateway": "gateway.proxy",
    "search": "c.s.search.SearchController",
    "cart": "com.shop.cart.CartService",
    "order": "com.shop.order.OrderService",
    "payment": "payment.checkout",
    "shipment": "com.shop.shipment.ShipmentService",
}


@dataclass(frozen=True)
class Failure:
    """An exception to render: its type and message, the frames, and an optional cause."""

    type: str
    message: str
    frames: tuple[str, ...]
    cause: Failure | None = None
    more: int = 0  # "... N more" after the cause's frames

    def java(self) -> str:
        """The text Java's ``printStackTrace`` writes (without a trailing newline)."""
        lines = [f"{self.type}: {self.message}"]
        lines += [f"\tat {f}" for f in self.frames]
        c = self.cause
        while c is not None:
            lines.append(f"Caused by: {c.type}: {c.message}")
            lines += [f"\tat {f}" for f in c.frames]
            if c.more:
                lines.append(f"\t... {c.more} more")
            c = c.cause
        return "\n".join(lines)

    def go(self) -> str:
        """A Go stack as zap's ``stacktrace`` key holds it: function, then ``\\tfile:line``."""
        out: list[str] = []
        for f in self.frames:
            func, _, where = f.partition("(")
            out.append(func)
            out.append(f"\t/app/{where.rstrip(')')}")
        return "\n".join(out)


class Stamp:
    """A minute's timestamp prefixes, formatted once; ``off`` is seconds into the minute (0 <= off < 60)."""

    __slots__ = ("iso_prefix", "text_prefix")

    def __init__(self, minute: datetime) -> None:
        m = minute.astimezone(UTC)
        self.iso_prefix = m.strftime("%Y-%m-%dT%H:%M:")
        self.text_prefix = m.strftime("%Y-%m-%d %H:%M:")

    @staticmethod
    def _parts(off: float) -> tuple[int, int]:
        ms = int(off * 1000)
        if ms > 59_999:
            ms = 59_999
        return ms // 1000, ms % 1000

    def iso(self, off: float) -> str:
        s, ms = self._parts(off)
        return f"{self.iso_prefix}{s:02d}.{ms:03d}Z"

    def text(self, off: float, sep: str = ",") -> str:
        s, ms = self._parts(off)
        return f"{self.text_prefix}{s:02d}{sep}{ms:03d}"


def _kv(fields: dict[str, Any] | None) -> str:
    if not fields:
        return ""
    return "".join(f" {k}={v}" for k, v in fields.items())


def render(
    service: str,
    stamp: Stamp,
    off: float,
    level: str,
    message: str,
    trace: str | None = None,
    *,
    thread: str = "main",
    fields: dict[str, Any] | None = None,
    failure: Failure | None = None,
    action: str | None = None,
) -> str:
    """One log event of ``service`` in its layout (a Java stack trace makes it several lines).

    ``fields`` are the event's own values (JSON keys, or ``key=value`` after
    the message in text layouts); ``action`` is a business event's name and is
    only written by JSON layouts.
    """
    style = STYLES[service]
    logger = LOGGERS[service]
    if style == "ecs_json":
        doc: dict[str, Any] = {"@timestamp": stamp.iso(off), "log.level": level, "message": message, "log.logger": logger}
        if trace:
            doc["trace.id"] = trace
        if action:
            doc["event.action"] = action
        if fields:
            doc.update(fields)
        if failure is not None:
            doc["error.type"] = failure.type
            doc["error.message"] = failure.message
            doc["error.stack_trace"] = failure.java()
        return orjson.dumps(doc).decode()
    if style == "zap_json":
        doc = {"level": level.lower(), "ts": stamp.iso(off), "logger": logger, "msg": message}
        if trace:
            doc["trace_id"] = trace
        if action:
            doc["event.action"] = action
        if fields:
            doc.update(fields)
        if failure is not None:
            doc["error"] = f"{failure.message}"
            doc["stacktrace"] = failure.go()
        return orjson.dumps(doc).decode()
    if style == "access_json":
        doc = {"@timestamp": stamp.iso(off), "log.level": level.lower(), "message": message}
        if trace:
            doc["trace.id"] = trace
        if fields:
            doc.update(fields)
        return orjson.dumps(doc).decode()
    tail = _kv(fields) + (f" trace_id={trace}" if trace and style != "spring" else "")
    if style == "spring":
        # Spring Boot 3's layout; the correlation ids ride in the application-name bracket
        corr = f"[{service},{trace},{trace[:16]}]" if trace else f"[{service},,]"
        head = f"{stamp.iso(off)} {level:>5} 1 --- {corr} [{thread:>15.15}] {logger:<40} : {message}{tail}"
    elif style == "logback":
        head = f"{stamp.text(off, ',')} {level:<5} [{thread}] {logger} - {message}{tail}"
    else:  # log4j2
        head = f"{stamp.text(off, '.')} [{thread}] {level:<5} {logger} - {message}{tail}"
    if failure is not None:
        return head + "\n" + failure.java()
    return head
