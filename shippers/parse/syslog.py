"""Syslog messages to ECS documents: RFC 5424, RFC 3164 and what real senders make of them.

``parse_syslog(raw, received=..., peer=...)`` is pure (no I/O, no clock) and
never raises: any bytes give a document with ``@timestamp``, ``message`` and
``event.original``. It runs once per message, so every pattern is compiled at
import time and the work per call is a handful of anchored regex matches.

Formats, tried in this order after an optional ``<PRI>`` (0..191):

* RFC 5424: ``<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]``
  with ``-`` for any absent field, RFC 3339 timestamps (fraction and zone
  offset optional; a leap second ``:60`` becomes ``:59``), any number of
  structured-data elements (``\\"``, ``\\\\`` and ``\\]`` unescaped in values,
  other backslashes kept; a PARAM-NAME repeated inside one element, which RFC
  5424 allows, gives a list of values), and an optional UTF-8 BOM before MSG.
  A malformed structured-data part is not dropped: it stays in ``message``.
* RFC 3164 (BSD): ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG``. The day may
  be padded by a space or not; a year after the day (``Nov 26 2026 10:00:00``,
  as some network devices send) and fractional seconds are accepted. The
  hostname may be missing (``<PRI>Mmm dd hh:mm:ss sshd[42]: ...``): a first
  word that looks like a tag (``name:``, ``name[pid]`` or ``name[pid]:``) is
  taken as the tag. A word counts as a tag only with a colon or a ``[pid]``;
  otherwise the rest of the line is the message and there is no appname.
* rsyslog's RFC 3339 variant: an ISO timestamp instead of the BSD one
  (``RSYSLOG_ForwardFormat``: ``<PRI>2026-11-26T10:00:00.123+01:00 host tag: msg``).
* No PRI at all (``RSYSLOG_FileFormat`` and ``RSYSLOG_TraditionalFileFormat``
  lines, relays that strip it): parsed when a BSD or ISO timestamp starts the
  line. The document then has no priority, facility, severity or
  ``log.level``: RFC 3164 lets a relay assume ``<13>``, but an invented level
  would mislead a search for errors.
* A valid PRI followed by anything else (Python's ``SysLogHandler`` sends
  ``<PRI>message\\x00``, with no timestamp or host) gives the priority fields
  and the rest as ``message``; RFC 3164 (4.3.2) says to treat it so.

Anything else is tagged ``pang.parse_error`` and the whole text is the message.

Decisions:

* Time zones. An RFC 3164 timestamp carries no zone; it is taken as **UTC**
  (the sender's zone is unknowable here; a host that logs local time should
  be configured to send RFC 5424 or the RFC 3339 format). An ISO timestamp
  without an offset is UTC too.
* Year inference. RFC 3164 has no year. The message gets received's year (in
  UTC), unless its month is 6 or more months after received's month (then
  the year before: ``Dec 31 23:59:59`` received on 1 January) or more than 6
  months before it (then the year after: ``Jan 1 00:00:01`` received on 31
  December, from a sender whose clock runs a little ahead). Logs are rarely
  from the future, so a tie goes to the past.
* ``@timestamp`` is UTC, millisecond precision (truncated, never rounded up
  into the next second), with ``Z``. It falls back to ``received`` when the
  message has no usable timestamp (``-``, none, or an impossible date).
* ``message`` loses trailing NUL, CR and LF (``SysLogHandler`` appends NUL;
  rsyslog's protocol-23 format appends LF); ``event.original`` keeps every
  decoded byte.
* Input over ``max_bytes`` is cut there (tag ``pang.truncated``); a UTF-8
  sequence split by the cut is dropped rather than reported as invalid.
  Invalid UTF-8 elsewhere is replaced with U+FFFD (tag ``pang.invalid_utf8``).
* ``peer`` (``"ip"``, ``"ip:port"`` or ``"[ipv6]:port"``) gives
  ``client.address`` (the port stripped) and, when it is an IP address,
  ``client.ip``.
"""

from __future__ import annotations

import codecs
import functools
import ipaddress
import operator
import re
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["parse_syslog", "FACILITY_NAMES", "SEVERITY_NAMES"]

FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITY_NAMES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")

TAG_PARSE_ERROR = "pang.parse_error"
TAG_TRUNCATED = "pang.truncated"
TAG_INVALID_UTF8 = "pang.invalid_utf8"

# priority -> (facility code, facility name, severity code, severity name)
_PRI_INFO = tuple((p >> 3, FACILITY_NAMES[p >> 3], p & 7, SEVERITY_NAMES[p & 7]) for p in range(192))

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}

# Digits are written [0-9], not \d: \d takes any script's digits ("٢٠٢٦"), which int() reads but
# which must not reach @timestamp or an index name. (Not re.ASCII: \S must still treat Unicode
# spaces as spaces in host names and tags.)
# RFC 3339 date-time; groups: year, month, day, hour, minute, second, fraction, zone.
_ISO_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_ISO_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
_ISO_T = _ISO_DATE + "[Tt]" + _ISO_TIME
_ISO_T_OR_SPACE = _ISO_DATE + "[Tt ]" + _ISO_TIME

_PRI = re.compile(r"<([0-9]{1,3})>")
# VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID, then SP or the end.
_HEADER_5424 = re.compile(
    r"([1-9][0-9]{0,2}) (?:-|" + _ISO_T + r") (\S+) (\S+) (\S+) (\S+)(?= |\Z)"
)
_SD_ELEMENT = re.compile(
    r'\[([^\s="\]]{1,64})((?: +[^\s="\]]{1,64}="[^"\\]*(?:\\[\s\S][^"\\]*)*")*) *\]'
)
_SD_PARAM = re.compile(r'([^\s="\]]{1,64})="([^"\\]*(?:\\[\s\S][^"\\]*)*)"')
# RFC 5424 6.3.3: only \", \\ and \] are escapes; any other backslash is a literal one.
_sd_unescape = functools.partial(re.compile(r'\\(["\\\]])').sub, operator.itemgetter(1))
# Mmm dd [yyyy] hh:mm:ss[.frac], then spaces or the end.
_TS_BSD = re.compile(
    r"((?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)) {1,2}([0-9]{1,2})(?: ([0-9]{4}))?"
    r" ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?: +|\Z)"
)
_TS_ISO = re.compile(_ISO_T_OR_SPACE + r"(?: +|\Z)")
# TAG[PID]: as in "sshd[42]: ", "kernel: ", "postfix/smtpd[7]: ", "CRON[9] ".
_TAG = re.compile(r"([^\s\[\]:]{1,128})(?:\[([^\s\[\]]{0,128})\])?(:)?(?: |\Z)")
_HOST = re.compile(r"(\S{1,255})(?: +|\Z)")

_LINE_END = "\x00\r\n"
_LEAD = " \t\r\n\x00"
_EPOCH = datetime(1970, 1, 1)
_UTC_ZONES = frozenset(("Z", "z", "+00:00", "-00:00", "+0000", "-0000"))
_OFFSETS: dict[str, timedelta] = {}


def _fmt(dt: datetime) -> str:
    """A UTC datetime (naive, or aware with its wall clock already in UTC) as ``@timestamp``."""
    return dt.isoformat(timespec="milliseconds")[:23] + "Z"


def _offset(tz: str) -> timedelta | None:
    """What to add to a wall-clock time with zone ``tz`` (``+hh:mm``/``+hhmm``) to get UTC; None if invalid."""
    off = _OFFSETS.get(tz)
    if off is None:
        hours, minutes = int(tz[1:3]), int(tz[-2:])
        if hours > 23 or minutes > 59:
            return None
        off = timedelta(hours=hours, minutes=minutes)
        off = _OFFSETS[tz] = -off if tz[0] == "+" else off  # at most 2 * 2 * 24 * 60 valid keys
    return off


def _received_ts(received: datetime) -> str:
    try:
        off = received.utcoffset()
        return _fmt(received - off if off else received)
    except Exception:  # not a datetime, or out of range: the epoch marks it rather than raising
        return _fmt(_EPOCH)


def _iso_time(m: re.Match[str], first: int) -> str | None:
    """``@timestamp`` from an RFC 3339 match whose year is group ``first``; None if impossible."""
    y, mo, d, hh, mi, ss, frac, tz = m.group(first, first + 1, first + 2, first + 3, first + 4,
                                            first + 5, first + 6, first + 7)
    try:
        if ss == "60":  # leap second
            ss = "59"
        dt = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss), int(frac[:6].ljust(6, "0")) if frac else 0)
        if tz and tz not in _UTC_ZONES:
            off = _offset(tz)
            return None if off is None else _fmt(dt + off)
        # Already UTC: the digits are the answer (the datetime above only validated them).
        return f"{y}-{mo}-{d}T{hh}:{mi}:{ss}.{frac[:3].ljust(3, '0') if frac else '000'}Z"
    except (ValueError, OverflowError):
        return None


def _bsd_time(m: re.Match[str], received: datetime) -> str | None:
    month = _MONTHS[m.group(1).lower()]
    day, year, hh, mi, ss, frac = m.group(2, 3, 4, 5, 6, 7)
    try:
        if year:
            y = int(year)
        else:
            off = received.utcoffset()
            rec = received - off if off else received  # UTC wall clock
            # No year in the message: the one that puts it at most 5 months after received, or
            # 6 months before (by month): December received in January is last year's, January
            # received in December (a sender's clock a little ahead) next year's.
            y = rec.year
            delta = month - rec.month
            if delta >= 6:
                y -= 1
            elif delta < -6:
                y += 1
        sec = int(ss)
        if sec == 60:
            sec = 59
        return _fmt(datetime(y, month, int(day), int(hh), int(mi), sec, int(frac[:6].ljust(6, "0")) if frac else 0))
    except (ValueError, OverflowError, TypeError):
        return None


def _structured_data(s: str, pos: int) -> tuple[dict[str, dict[str, Any]], int] | None:
    """SD elements starting at ``s[pos] == '['``; the parsed dict and the end, or None if malformed."""
    sd: dict[str, dict[str, Any]] = {}
    n = len(s)
    match = _SD_ELEMENT.match
    while pos < n and s[pos] == "[":
        m = match(s, pos)
        if m is None:
            return None
        params = sd.setdefault(m.group(1), {})
        body = m.group(2)
        if body:
            for pm in _SD_PARAM.finditer(body):
                name, value = pm.group(1, 2)
                if "\\" in value:
                    value = _sd_unescape(value)
                old = params.get(name)
                if old is None:
                    params[name] = value
                elif isinstance(old, list):
                    old.append(value)
                else:
                    params[name] = [old, value]
        pos = m.end()
    return sd, pos


@functools.lru_cache(maxsize=4096)
def _peer(peer: str) -> tuple[str, str | None]:
    """(client.address, client.ip or None) for ``ip``, ``ip:port``, ``[ipv6]:port`` or a name."""
    addr = peer.strip()
    if addr.startswith("["):
        end = addr.find("]")
        if end > 0:
            addr = addr[1:end]
    elif addr.count(":") == 1:
        addr = addr.rsplit(":", 1)[0]
    try:
        ip = str(ipaddress.ip_address(addr.split("%", 1)[0]))
    except ValueError:
        ip = None
    return addr, ip


def _decode(raw: bytes, max_bytes: int, tags: list[str]) -> str:
    if len(raw) > max_bytes:
        tags.append(TAG_TRUNCATED)
        raw = raw[: max(max_bytes, 0)]
        # final=False: an incomplete sequence at the cut is left out, not counted as invalid.
        try:
            return codecs.utf_8_decode(raw, "strict", False)[0]
        except UnicodeDecodeError:
            tags.append(TAG_INVALID_UTF8)
            return codecs.utf_8_decode(raw, "replace", False)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        tags.append(TAG_INVALID_UTF8)
        return raw.decode("utf-8", "replace")


def parse_syslog(
    raw: bytes,
    *,
    received: datetime,
    peer: str | None = None,
    max_bytes: int = 64 * 1024,
) -> dict[str, Any]:
    """One syslog message (UDP datagram or TCP frame) as an ECS document; never raises."""
    tags: list[str] = []
    text = ""
    try:
        if not isinstance(raw, bytes):
            raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        text = _decode(raw, max_bytes, tags)
        doc = _parse(text, received)
    except Exception:  # a bug must not lose the message: keep it whole, flagged
        doc = None
        if not text:
            try:
                text = bytes(raw).decode("utf-8", "replace")
            except Exception:
                text = repr(raw)
    if doc is None:
        tags.append(TAG_PARSE_ERROR)
        doc = {
            "@timestamp": _received_ts(received),
            "message": text.rstrip(_LINE_END),
            "event": {"original": text, "dataset": "syslog"},
        }
    if peer:
        try:
            address, ip = _peer(peer)
            doc["client"] = {"address": address, "ip": ip} if ip else {"address": address}
        except Exception:
            pass
    if tags:
        doc["tags"] = tags
    return doc


def _parse(text: str, received: datetime) -> dict[str, Any] | None:
    """The document for decoded text, or None when it is neither RFC 5424 nor RFC 3164."""
    s = text.rstrip(_LINE_END)
    n = len(s)
    pos = 0
    while pos < n and s[pos] in _LEAD:
        pos += 1

    syslog: dict[str, Any] = {}
    log: dict[str, Any] = {}
    pri: int | None = None
    m = _PRI.match(s, pos)
    if m is not None:
        value = int(m.group(1))
        if value < 192:
            pri = value
            pos = m.end()
            fac, fac_name, sev, sev_name = _PRI_INFO[pri]
            log["level"] = sev_name
            syslog["priority"] = pri
            syslog["facility"] = {"code": fac, "name": fac_name}
            syslog["severity"] = {"code": sev, "name": sev_name}

    timestamp: str | None = None
    hostname = None
    message: str

    h = _HEADER_5424.match(s, pos) if pri is not None else None
    if h is not None:
        # RFC 5424
        syslog["version"] = int(h.group(1))
        if h.group(2) is not None:
            timestamp = _iso_time(h, 2)
        hostname, app, procid, msgid = h.group(10, 11, 12, 13)
        if hostname == "-":
            hostname = None
        if app != "-":
            syslog["appname"] = app
        if procid != "-":
            syslog["procid"] = procid
        if msgid != "-":
            syslog["msgid"] = msgid
        pos = h.end() + 1  # past the SP before SD (or past the end)
        if pos >= n:
            message = ""
        elif s[pos] == "-" and (pos + 1 == n or s[pos + 1] == " "):
            message = s[pos + 2:]
        elif s[pos] == "[" and (parsed := _structured_data(s, pos)) is not None and (
            parsed[1] == n or s[parsed[1]] == " "
        ):
            if parsed[0]:
                syslog["structured_data"] = parsed[0]
            message = s[parsed[1] + 1:]
        else:  # no or malformed structured data: keep the rest as the message
            message = s[pos:]
        if message.startswith("\ufeff"):
            message = message[1:]
    else:
        # RFC 3164 and its variants
        start = pos
        while start < n and s[start] == " ":  # "<13> Nov 26 ..." from some devices
            start += 1
        t = _TS_BSD.match(s, start)
        if t is not None:
            timestamp = _bsd_time(t, received)
        else:
            t = _TS_ISO.match(s, start)
            if t is not None:
                timestamp = _iso_time(t, 1)
        if t is None:
            if pri is None:
                return None
        else:
            pos = t.end()
            tag = _TAG.match(s, pos)
            if tag is None or (tag.group(2) is None and tag.group(3) is None):
                host = _HOST.match(s, pos)
                if host is not None:
                    hostname = host.group(1)
                    pos = host.end()
                    tag = _TAG.match(s, pos)
            if tag is not None and (tag.group(2) is not None or tag.group(3) is not None):
                syslog["appname"] = tag.group(1)
                if tag.group(2):
                    syslog["procid"] = tag.group(2)
                pos = tag.end()
        message = s[pos:]

    if timestamp is None:
        timestamp = _received_ts(received)
    doc: dict[str, Any] = {"@timestamp": timestamp, "message": message, "log": log}
    if hostname:
        syslog["hostname"] = hostname
        doc["host"] = {"hostname": hostname}
    if syslog:
        log["syslog"] = syslog
    if not log:
        del doc["log"]
    doc["event"] = {"original": text, "dataset": "syslog"}
    return doc
