"""One log event's text to the ECS fields that can be read out of it.

``parse_line(text)`` runs for every event the file-tailing sidecar reads, so it
is written for CPython's hot path: precompiled regexes, the cheapest test
first (the first character decides JSON or not and which timestamp layout to
try), orjson for JSON, small caches for timestamp conversion, and no work on
multiline analysis unless the text has a newline. It does no I/O and never
raises: whatever goes wrong, the answer is at least ``{"message": text}``.

The agent adds ``service.name``, ``host.*``, ``log.file.path``,
``log.offset``, ``event.dataset`` and a fallback ``@timestamp`` itself; this
module returns only what the text says. The result is nested the way the index
templates are (``{"log": {"level": "ERROR"}}``, never ``"log.level"`` keys) and
never holds ``None`` values.

Rules and decisions
-------------------

JSON lines
    A line whose first character is ``{`` and that orjson parses to an
    *object* is structured; anything else (``[1,2]``, ``"str"``, ``12``,
    invalid JSON, nesting deeper than orjson allows) is plain text. The object,
    minus the fields promoted to ECS, is kept whole under ``app`` with its JSON
    values untouched (``null`` included; integers past 64 bits arrive as
    floats from orjson). Each ECS field is looked up in its ECS dotted spelling
    (``"log.level"``), then its nested one (``{"log": {"level": ...}}``), then
    the library spellings below, in that order; the first spelling whose value
    has a usable type wins and is removed from ``app``; other spellings of the
    same field stay in ``app`` (nothing is lost). A value of the wrong type is
    never promoted. Promoted fields get the mapping's types: keyword fields are
    strings (numbers become strings; booleans, objects and arrays are not
    promoted), ``http.response.status_code`` is an int, ``@timestamp`` the ISO
    string below. Nested ECS objects that promotion left empty are removed
    from ``app``.

    ==========================  ============================================================
    ECS field                   library spellings, in order
    ==========================  ============================================================
    ``@timestamp``              ``timestamp``, ``time``, ``ts``, ``asctime``
    ``message``                 ``msg``, ``log`` (Docker json-file), ``event`` (see below)
    ``log.level``               ``level``, ``severity``, ``levelname``, ``lvl``
    ``log.logger``              ``logger``, ``logger_name``, ``name`` (only with a level)
    ``trace.id``                ``trace_id``, ``traceId``, ``traceid``
    ``span.id``                 ``span_id``, ``spanId``, ``spanid``
    ``transaction.id``          ``transaction_id``, ``transactionId``
    ``service.name``            ``service`` (a string), ``service_name``
    ``service.version``         ``service_version``
    ``error.message``           ``error`` (a string: logrus, zap, zerolog)
    ``error.type``              ``error_type``, ``exc_type``
    ``error.stack_trace``       ``stack_trace``, ``exc_info``, ``stacktrace``, ``stack``, ``exception``
    ``http.request.method``     ``method`` (only an HTTP method, kept as written)
    ``http.response.status_code`` ``status``, ``status_code`` (100-599; the ECS name 100-999)
    ``url.path``                ``path`` (only a string starting with ``/``)
    ``user.id``                 ``user_id``, ``userId``
    ``event.action``            ``action``, ``event`` (an action-like string)
    ==========================  ============================================================

    ``message``: a JSON line with none of its spellings keeps the raw line as
    ``message``, so full-text search still finds it.

    ``event`` is structlog's message key and also the usual key of a business
    event's name. The rule: a string that looks like an action name --
    lower-case words joined by dots, at least one dot,
    ``^[a-z0-9_-]+(\\.[a-z0-9_-]+)+$``, e.g. ``order.placed``,
    ``payment.approved`` -- becomes ``event.action``; any other string
    (``"user logged in"``, ``"startup"``) is a message candidate after
    ``message``/``msg``/``log``. An object under ``event`` is the ECS nested
    spelling (``event.action`` inside it).

    ``name`` is the logger only when the object also has a level (it then looks
    like a logging record, as python-json-logger writes it): ``name`` is too
    common a business key otherwise. Stack traces may also be lists of strings
    (joined by newlines); when no ``error.type`` is given, it is read from the
    stack trace itself (Java header or Python's last exception line).

Levels (``log.level``)
    Upper-cased as written, with one exception: ``WARNING`` becomes ``WARN``
    (``Warning``, ``warning`` too). ``CRITICAL``, ``FATAL``, ``SEVERE``,
    ``NOTICE``, ``PANIC`` are kept. pino/bunyan numeric levels 10-60 map to
    TRACE, DEBUG, INFO, WARN, ERROR, FATAL; other numbers and strings longer
    than 32 characters are not promoted.

Timestamps (``@timestamp``)
    Always an ISO 8601 UTC string with milliseconds and ``Z``
    (``2026-11-24T10:00:00.123Z``); left out when none was found or it is not
    a valid date. Digits past milliseconds are truncated. A timestamp
    **without a zone is taken as UTC**. Epoch numbers are told apart by size:
    1e8-1e11 seconds, up to 1e14 milliseconds, up to 1e17 microseconds, up to
    1e20 nanoseconds (smaller numbers, e.g. a ``time`` that is a duration, are
    not timestamps). syslog's ``Nov 24 10:00:00`` has no year: the current
    UTC year is used, or the previous one when that would put the event more
    than a day in the future (a December line read in January).

Plain text
    ``message`` is the whole text, always. The first line is examined:
    a leading timestamp (ISO-like ``2026-11-24 10:00:00,123``,
    ``2026-11-24T10:00:00.123+01:00``, Go's ``2026/11/24 10:00:00``, also
    inside a leading ``[``), syslog's ``Nov 24 10:00:00``, an access log's
    ``[24/Nov/2026:10:00:00 +0000]``, logfmt ``ts=``/``time=``, or else an ISO
    timestamp within the first 64 characters. The level comes from the known
    layouts (log4j/logback ``LEVEL [thread] logger -``, log4j2 ``[thread]
    LEVEL logger -``, Spring Boot, Python ``LEVEL:name:msg``,
    ``asctime LEVEL name: msg`` and ``asctime - name - LEVEL - msg``, which
    also give ``log.logger`` and ``process.thread.name``), then logfmt
    ``level=``/``lvl=``/``severity=`` (any case), then the first standalone
    upper-case level word in the first 80 characters. nginx/Apache common and
    combined lines give ``http.request.method``, ``url.original`` (and
    ``url.path``, the part before ``?``, when it starts with ``/``),
    ``http.response.status_code``, ``http.response.bytes``,
    ``client.address`` and ``client.ip`` (only when it is a valid IP
    address); no level is guessed for them.

Stack traces (text with a newline)
    ``message`` keeps the whole text; ``error.stack_trace`` gets the text from
    the first stack-trace line on: Python's first ``Traceback (most recent
    call last):`` line (chained exceptions included), or the Java/.NET/Node
    exception header line before the first ``at ...`` frame (the frame itself
    when there is no recognisable header). ``error.type``/``error.message``
    come from the Java header (``Exception in thread "main" java.lang.X: msg``
    or ``java.lang.X: msg``; the outermost exception, not the ``Caused by:``
    root) or from Python's exception line after the *last* traceback (the one
    that was finally raised; an exception group's ``ExceptionGroup: ...``).
"""

from __future__ import annotations

import ipaddress
import re
import time
from datetime import datetime, timedelta
from typing import Any

import orjson

__all__ = ["parse_line", "normalize_level", "LEVEL_WORDS"]

LEVEL_WORDS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "SEVERE", "CRITICAL", "FATAL", "PANIC")
_LEVELS_RE = "(?:TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|SEVERE|CRITICAL|FATAL|PANIC)"

# --------------------------------------------------------------------------- timestamps

_EPOCH = datetime(1970, 1, 1)
_ONE_DAY = 86400.0

# ISO-like and Go's layout; the zone is optional (and then UTC). A zone after a
# space must be a full +hhmm/+hh:mm or UTC/GMT, so "10:00:00 +12 items" stays text.
_TS_ISO = (
    r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?:(Z|z|[+-]\d\d(?::?\d\d)?)|\s([+-]\d\d:?\d\d|UTC|GMT))?"
)
_RE_TS_ISO = re.compile(_TS_ISO, re.ASCII)  # ASCII: "\d" must not take other scripts' digits
_RE_SYSLOG_TS = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\b", re.ASCII)
_RE_NUMBER = re.compile(r"\d{9,20}(?:\.\d{1,9})?", re.ASCII)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# prefix caches ("2026-11-24T10:00:00" per second-and-zone key); cleared when large
_iso_cache: dict[str, str | None] = {}
_epoch_cache: dict[int, str | None] = {}
_CACHE_MAX = 4096


def _ms(frac: str | None) -> str:
    if not frac:
        return ".000Z"
    n = len(frac)
    if n >= 3:
        return "." + frac[:3] + "Z"
    return "." + frac + ("00" if n == 1 else "0") + "Z"


def _utc_prefix(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: str | None) -> str | None:
    """The UTC "YYYY-MM-DDTHH:MM:SS" of a local time and its zone, or None when invalid."""
    try:
        dt = datetime(y, mo, d, h, mi, s)
        if zone and zone[0] in "+-":
            zh = int(zone[1:3])
            zm = int(zone[-2:]) if len(zone) > 3 else 0
            if zh > 23 or zm > 59:
                return None
            off = timedelta(hours=zh, minutes=zm)
            dt = dt - off if zone[0] == "+" else dt + off
        return dt.isoformat()
    except (ValueError, OverflowError):
        return None


def _ts_iso_match(m: re.Match[str]) -> str | None:
    """@timestamp from a match of ``_RE_TS_ISO`` (cached per second and zone)."""
    g = m.groups()
    zone = g[7] or g[8]
    key = m.string[m.start() : m.end(6)]
    if zone:
        key += zone
    prefix = _iso_cache.get(key, "")
    if prefix == "":
        prefix = _utc_prefix(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5]), zone)
        if len(_iso_cache) >= _CACHE_MAX:
            _iso_cache.clear()
        _iso_cache[key] = prefix
    if prefix is None:
        return None
    frac = g[6]
    if frac is None:
        return prefix + ".000Z"
    if len(frac) >= 3:
        return prefix + "." + frac[:3] + "Z"
    return prefix + _ms(frac)


def _ts_epoch(x: int | float) -> str | None:
    """@timestamp from an epoch number in seconds, millis, micros or nanos (told apart by size)."""
    if x != x or x < 1e8 or x >= 1e20:  # NaN, durations, small counters, absurd values
        return None
    if x < 1e11:
        ms = round(x * 1000) if type(x) is float else x * 1000
    elif x < 1e14:
        ms = round(x)
    elif x < 1e17:
        ms = int(x) // 1000
    else:
        ms = int(x) // 1_000_000
    sec, rem = divmod(int(ms), 1000)
    prefix = _epoch_cache.get(sec, "")
    if prefix == "":
        try:
            prefix = (_EPOCH + timedelta(seconds=sec)).isoformat()
        except OverflowError:
            prefix = None
        if len(_epoch_cache) >= _CACHE_MAX:
            _epoch_cache.clear()
        _epoch_cache[sec] = prefix
    if prefix is None:
        return None
    return "%s.%03dZ" % (prefix, rem)


def _ts_string(s: str) -> str | None:
    """@timestamp from a timestamp string: ISO-like (the whole string) or an epoch number."""
    m = _RE_TS_ISO.match(s)
    if m is not None:
        end = m.end()
        if end == len(s) or s[end] == "[":  # Java's ZonedDateTime adds "[Europe/Paris]"
            return _ts_iso_match(m)
        return None
    if _RE_NUMBER.fullmatch(s):
        return _ts_epoch(float(s) if "." in s else int(s))
    return None


def _ts_syslog(m: re.Match[str], now: float | None) -> str | None:
    """@timestamp of syslog's "Nov 24 10:00:00": no year, so this year, or last year if that is in the future."""
    t = time.time() if now is None else now
    year = time.gmtime(t).tm_year
    key = "%s %d" % (m.group(0), year)
    prefix = _iso_cache.get(key, "")
    if prefix == "":
        mo = _MONTHS[m.group(1)]
        d, h, mi, s = int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5))
        prefix = _utc_prefix(year, mo, d, h, mi, s, None)
        if prefix is not None:
            try:
                future = (datetime.fromisoformat(prefix) - _EPOCH).total_seconds() - t > _ONE_DAY
            except ValueError:  # pragma: no cover - prefix comes from isoformat
                future = False
            if future:
                prefix = _utc_prefix(year - 1, mo, d, h, mi, s, None)
        if len(_iso_cache) >= _CACHE_MAX:
            _iso_cache.clear()
        _iso_cache[key] = prefix
    if prefix is None:
        return None
    return prefix + _ms(m.group(6))


# --------------------------------------------------------------------------- levels

_PINO_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}
_LEVEL_CACHE: dict[str, str] = {}
for _w in LEVEL_WORDS:
    _n = "WARN" if _w == "WARNING" else _w
    for _v in (_w, _w.lower(), _w.capitalize()):
        _LEVEL_CACHE[_v] = _n


def normalize_level(value: Any) -> str | None:
    """``log.level`` from a string or pino number: upper-cased, ``WARNING`` -> ``WARN``; None if unusable."""
    if type(value) is str:
        n = _LEVEL_CACHE.get(value)
        if n is not None:
            return n
        v = value.strip().upper()
        if not v or len(v) > 32:
            return None
        return "WARN" if v == "WARNING" else v
    if type(value) is int:
        return _PINO_LEVELS.get(value)
    return None


# --------------------------------------------------------------------------- JSON

# field ids and where each lands in the document
(F_TS, F_MSG, F_LEVEL, F_LOGGER, F_TRACE, F_SPAN, F_TXN, F_SVC, F_SVCVER, F_ERRMSG, F_ERRTYPE,
 F_STACK, F_METHOD, F_STATUS, F_PATH, F_USER, F_ACTION) = range(17)
_PATHS: dict[int, tuple[str, ...]] = {
    F_TS: ("@timestamp",), F_MSG: ("message",), F_LEVEL: ("log", "level"), F_LOGGER: ("log", "logger"),
    F_TRACE: ("trace", "id"), F_SPAN: ("span", "id"), F_TXN: ("transaction", "id"),
    F_SVC: ("service", "name"), F_SVCVER: ("service", "version"),
    F_ERRMSG: ("error", "message"), F_ERRTYPE: ("error", "type"), F_STACK: ("error", "stack_trace"),
    F_METHOD: ("http", "request", "method"), F_STATUS: ("http", "response", "status_code"),
    F_PATH: ("url", "path"), F_USER: ("user", "id"), F_ACTION: ("event", "action"),
}

_HTTP_METHODS = frozenset(
    ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PROPFIND", "PURGE")
)
_RE_ACTION = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")


def _c_str(v: Any) -> str | None:  # keyword: non-empty string, or a number as a string
    t = type(v)
    if t is str:
        return v if v else None
    if t is int or t is float:
        return str(v)
    return None


def _c_text(v: Any) -> str | None:  # message-like text: any string, numbers as strings
    t = type(v)
    if t is str:
        return v
    if t is int or t is float:
        return str(v)
    return None


def _c_ts(v: Any) -> str | None:
    t = type(v)
    if t is str:
        return _ts_string(v)
    if t is int or t is float:
        return _ts_epoch(v)
    return None


def _c_status(v: Any, lo: int = 100, hi: int = 999) -> int | None:
    t = type(v)
    if t is str and len(v) == 3 and v.isascii() and v.isdigit():
        v = int(v)
    elif t is float and v.is_integer():
        v = int(v)
    elif t is not int:
        return None
    return v if lo <= v <= hi else None


def _c_status_alias(v: Any) -> int | None:
    return _c_status(v, 100, 599)


def _c_method_alias(v: Any) -> str | None:
    return v if type(v) is str and v.upper() in _HTTP_METHODS else None


def _c_path_alias(v: Any) -> str | None:
    return v if type(v) is str and v[:1] == "/" else None


def _c_stack(v: Any) -> str | None:
    t = type(v)
    if t is str:
        return v if v else None
    if t is list and v and all(type(x) is str for x in v):
        return "\n".join(v)
    return None


_action_cache: dict[str, bool] = {}


def _is_action(v: str) -> bool:
    """Whether structlog's ``event`` value is an action name (``order.placed``); cached, names repeat."""
    r = _action_cache.get(v)
    if r is None:
        r = _RE_ACTION.fullmatch(v) is not None
        if len(v) <= 64:
            if len(_action_cache) >= _CACHE_MAX:
                _action_cache.clear()
            _action_cache[v] = r
    return r


def _c_action_event(v: Any) -> str | None:  # structlog's "event": an action only when it looks like one
    return v if type(v) is str and _is_action(v) else None


def _c_message_event(v: Any) -> str | None:
    return v if type(v) is str and not _is_action(v) else None


# top-level key -> list of (field, rank, converter); lower rank wins
_ALIASES: dict[str, list[tuple[int, int, Any]]] = {}


def _alias(key: str, field: int, rank: int, conv: Any) -> None:
    _ALIASES.setdefault(key, []).append((field, rank, conv))


# rank 0: ECS dotted spelling, 1: ECS nested spelling (in _NESTED), 2+: library spellings
for _k, _f, _cv in (
    ("@timestamp", F_TS, _c_ts), ("message", F_MSG, _c_text), ("log.level", F_LEVEL, normalize_level),
    ("log.logger", F_LOGGER, _c_str), ("trace.id", F_TRACE, _c_str), ("span.id", F_SPAN, _c_str),
    ("transaction.id", F_TXN, _c_str), ("service.name", F_SVC, _c_str), ("service.version", F_SVCVER, _c_str),
    ("error.message", F_ERRMSG, _c_text), ("error.type", F_ERRTYPE, _c_str), ("error.stack_trace", F_STACK, _c_stack),
    ("http.request.method", F_METHOD, _c_str), ("http.response.status_code", F_STATUS, _c_status),
    ("url.path", F_PATH, _c_str), ("user.id", F_USER, _c_str), ("event.action", F_ACTION, _c_str),
):
    _alias(_k, _f, 0, _cv)
for _f, _keys, _cv in (
    (F_TS, ("timestamp", "time", "ts", "asctime"), _c_ts),
    (F_MSG, ("msg", "log"), _c_text),
    (F_LEVEL, ("level", "severity", "levelname", "lvl"), normalize_level),
    (F_LOGGER, ("logger", "logger_name"), _c_str),
    (F_TRACE, ("trace_id", "traceId", "traceid"), _c_str),
    (F_SPAN, ("span_id", "spanId", "spanid"), _c_str),
    (F_TXN, ("transaction_id", "transactionId"), _c_str),
    (F_SVC, ("service", "service_name"), _c_str),
    (F_SVCVER, ("service_version",), _c_str),
    (F_ERRMSG, ("error",), _c_text),
    (F_ERRTYPE, ("error_type", "exc_type"), _c_str),
    (F_STACK, ("stack_trace", "exc_info", "stacktrace", "stack", "exception"), _c_stack),
    (F_METHOD, ("method",), _c_method_alias),
    (F_STATUS, ("status", "status_code"), _c_status_alias),
    (F_PATH, ("path",), _c_path_alias),
    (F_USER, ("user_id", "userId"), _c_str),
    (F_ACTION, ("action",), _c_str),
):
    for _i, _k in enumerate(_keys):
        _alias(_k, _f, 2 + _i, _cv)
_alias("name", F_LOGGER, 9, _c_str)  # after every level spelling: taken only when a level was found
_alias("event", F_ACTION, 9, _c_action_event)
_alias("event", F_MSG, 9, _c_message_event)

# ECS nested spelling: root -> [(path inside root, field, converter)]
_NESTED: dict[str, list[tuple[tuple[str, ...], int, Any]]] = {
    "log": [(("level",), F_LEVEL, normalize_level), (("logger",), F_LOGGER, _c_str)],
    "trace": [(("id",), F_TRACE, _c_str)],
    "span": [(("id",), F_SPAN, _c_str)],
    "transaction": [(("id",), F_TXN, _c_str)],
    "service": [(("name",), F_SVC, _c_str), (("version",), F_SVCVER, _c_str)],
    "error": [(("message",), F_ERRMSG, _c_text), (("type",), F_ERRTYPE, _c_str), (("stack_trace",), F_STACK, _c_stack)],
    "http": [(("request", "method"), F_METHOD, _c_str), (("response", "status_code"), F_STATUS, _c_status)],
    "url": [(("path",), F_PATH, _c_str)],
    "user": [(("id",), F_USER, _c_str)],
    "event": [(("action",), F_ACTION, _c_str)],
}
_NESTED_SPECS = {root: tuple((path[:-1], path[-1], field, conv) for path, field, conv in specs) for root, specs in _NESTED.items()}


def _put(doc: dict[str, Any], field: int, v: Any) -> None:
    path = _PATHS[field]
    n = len(path)
    if n == 1:
        doc[path[0]] = v
        return
    sub = doc.get(path[0])
    if sub is None:
        sub = doc[path[0]] = {}
    if n == 3:
        sub2 = sub.get(path[1])
        if sub2 is None:
            sub2 = sub[path[1]] = {}
        sub2[path[2]] = v
    else:
        sub[path[1]] = v


def _from_json(obj: dict[str, Any], text: str) -> dict[str, Any]:
    # Candidates (rank, field, converter, container, key, chain): one pass over the object's keys
    # for the flat spellings, and a walk into the ECS objects it has for the nested ones. The
    # chain, (parent, key) steps from obj down to a nested container, removes containers that
    # promotion emptied ({"log": {}}).
    found = []
    for key in obj:
        specs = _ALIASES.get(key)
        if specs is not None:
            for field, rank, conv in specs:
                found.append((rank, field, conv, obj, key, None))
        nspecs = _NESTED_SPECS.get(key)
        if nspecs is not None:
            sub = obj[key]
            if type(sub) is dict:
                for parents, last, field, conv in nspecs:
                    container = sub
                    chain = ((obj, key),)
                    for part in parents:
                        nxt = container.get(part)
                        if type(nxt) is not dict:
                            container = None
                            break
                        chain += ((container, part),)
                        container = nxt
                    if container is not None and last in container:
                        found.append((1, field, conv, container, last, chain))

    doc: dict[str, Any] = {"message": text}  # replaced by the promoted message, if any
    if not found:
        if obj:
            doc["app"] = obj
        return doc
    if len(found) > 1:
        found.sort(key=_rank)
    done = 0  # bit mask of promoted fields
    for _rank_, field, conv, container, key, chain in found:
        bit = 1 << field
        if done & bit or key not in container:  # promoted already, or the key went to another field
            continue
        if field == F_LOGGER and key == "name" and not done & _LEVEL_BIT:
            continue
        v = conv(container[key])
        if v is None:
            continue
        done |= bit
        del container[key]
        if chain is not None:
            for parent, pkey in reversed(chain):
                child = parent[pkey]
                if child:
                    break
                del parent[pkey]
        if field == F_MSG:
            doc["message"] = v
        else:
            _put(doc, field, v)

    if done & _STACK_BIT and not done & _ERRTYPE_BIT:
        _, etype, emsg = _stack_info(doc["error"]["stack_trace"], whole=True)
        if etype:
            err = doc["error"]
            err["type"] = etype
            if emsg and not done & _ERRMSG_BIT:
                err["message"] = emsg
    if obj:
        doc["app"] = obj
    return doc


def _rank(c: tuple[Any, ...]) -> int:
    return c[0]


_LEVEL_BIT, _STACK_BIT, _ERRTYPE_BIT, _ERRMSG_BIT = 1 << F_LEVEL, 1 << F_STACK, 1 << F_ERRTYPE, 1 << F_ERRMSG


# --------------------------------------------------------------------------- plain text

# After a leading timestamp: the layouts that also name the logger (and thread).
_RE_LAYOUT = re.compile(
    r"\]?\s{1,64}(?:"
    rf"(?P<l1>{_LEVELS_RE})\s{{1,64}}\[(?P<t1>[^\]]{{0,256}})\]\s{{1,64}}(?P<g1>\S{{1,256}})\s{{1,64}}-\s"  # log4j/logback: LEVEL [thread] logger -
    rf"|\[(?P<t2>[^\]]{{0,256}})\]\s{{1,64}}(?P<l2>{_LEVELS_RE})\s{{1,64}}(?P<g2>\S{{1,256}})\s{{1,64}}-\s"  # log4j2: [thread] LEVEL logger -
    rf"|(?P<l3>{_LEVELS_RE})\s{{1,64}}\d{{1,10}}\s{{1,64}}---\s{{1,64}}(?:\[[^\]]{{0,256}}\]\s{{1,64}})?\[\s{{0,64}}(?P<t3>[^\]]{{0,256}})\]\s{{1,64}}(?P<g3>\S{{1,256}})\s{{1,64}}:\s"  # Spring Boot
    rf"|(?P<l4>{_LEVELS_RE})\s{{1,64}}(?P<g4>[\w$.\-]{{1,256}}):\s"  # python: asctime LEVEL name: msg
    rf"|-\s{{1,64}}(?P<g5>[\w$.\-]{{1,256}})\s{{1,64}}-\s{{1,64}}(?P<l5>{_LEVELS_RE})\s{{1,64}}-\s"  # python: asctime - name - LEVEL - msg
    r")"
)
_RE_PY_DEFAULT = re.compile(rf"({_LEVELS_RE}):([^:\s]{{0,256}}):")  # ERROR:root:msg
# No leading \b: a literal alternation lets the regex engine skip ahead fast; the preceding
# character is checked by hand (3x faster than \b...\b on CPython 3.11).
_RE_LEVEL_WORD = re.compile(rf"({_LEVELS_RE})(?!\w)")


def _level_word(first: str) -> str | None:
    """The first standalone upper-case level word in the first 80 characters."""
    pos = 0
    while True:
        m = _RE_LEVEL_WORD.search(first, pos, 80)
        if m is None:
            return None
        s = m.start()
        if s == 0:
            return m.group(1)
        prev = first[s - 1]
        if not (prev.isalnum() or prev == "_"):
            return m.group(1)
        pos = m.end()


_RE_LOGFMT_LEVEL = re.compile(r"(?:^|\s)(?:level|lvl|severity)=\"?([A-Za-z]+)")
_RE_LOGFMT_TS = re.compile(r"(?:^|\s)(?:ts|time|timestamp)=(?:\"([^\"]*)\"|(\S+))")
_RE_ACCESS = re.compile(
    r"(\S+) \S+ (?:\S+|\"[^\"]*\") \[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\] "
    r"\"(?:([A-Z]{3,10}) (\S+)(?: [^\"]*)?|[^\"]*)\" (\d{3}) (\d{1,18}|-)",
    re.ASCII,
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_RE_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}", re.ASCII)
_DIGITS = frozenset("0123456789")
_SYSLOG_FIRST = frozenset("JFMASOND")


def _access(first: str, doc: dict[str, Any]) -> bool:
    m = _RE_ACCESS.match(first)
    if m is None:
        return False
    addr, day, mon, year, h, mi, s, zone, method, url, status, nbytes = m.groups()
    mo = _MONTHS.get(mon)
    if mo is not None:
        key = m.string[m.start(2) : m.end(8)]
        prefix = _iso_cache.get(key, "")
        if prefix == "":
            prefix = _utc_prefix(int(year), mo, int(day), int(h), int(mi), int(s), zone)
            if len(_iso_cache) >= _CACHE_MAX:
                _iso_cache.clear()
            _iso_cache[key] = prefix
        if prefix is not None:
            doc["@timestamp"] = prefix + ".000Z"
    client: dict[str, Any] = {"address": addr}
    if _RE_IPV4.fullmatch(addr) is not None:
        client["ip"] = addr
    elif ":" in addr and "%" not in addr:  # IPv6 (a zone id would not fit the ip type)
        try:
            ipaddress.IPv6Address(addr)
            client["ip"] = addr
        except ValueError:
            pass
    doc["client"] = client
    response: dict[str, Any] = {"status_code": int(status)}
    if nbytes != "-":
        response["bytes"] = int(nbytes)
    if method is not None:
        doc["http"] = {"request": {"method": method}, "response": response}
        q = url.find("?")
        path = url if q < 0 else url[:q]
        doc["url"] = {"original": url, "path": path} if path[:1] == "/" else {"original": url}
    else:
        doc["http"] = {"response": response}
    return True


def _from_text(text: str, now: float | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"message": text}
    nl = text.find("\n")
    first = text if nl < 0 else text[:nl]
    c = first[:1]
    ts = level = logger = thread = None
    access = False

    if c in _DIGITS or c == "[":
        m = _RE_TS_ISO.match(first, 1 if c == "[" else 0)
        if m is not None:
            ts = _ts_iso_match(m)
            lm = _RE_LAYOUT.match(first, m.end())
            if lm is not None:
                # groups: l1 t1 g1 | t2 l2 g2 | l3 t3 g3 | l4 g4 | g5 l5
                g = lm.groups()
                level = g[0] or g[4] or g[6] or g[9] or g[12]
                logger = g[2] or g[5] or g[8] or g[10] or g[11]
                thread = g[1] or g[3] or g[7]
                if thread is not None:
                    thread = thread.strip() or None
    elif c in _SYSLOG_FIRST:
        m = _RE_SYSLOG_TS.match(first)
        if m is not None:
            ts = _ts_syslog(m, now)
    if ts is None and level is None:
        if c.isupper():
            pm = _RE_PY_DEFAULT.match(first)
            if pm is not None:
                level = pm.group(1)
                logger = pm.group(2) or None
        if level is None and '] "' in first:
            access = _access(first, doc)
            if access:
                ts = doc.get("@timestamp")
    if level is None and not access and "=" in first:
        head = first[:1024]
        if "level=" in head or "lvl=" in head or "severity=" in head:
            lm2 = _RE_LOGFMT_LEVEL.search(first, 0, 1024)
            if lm2 is not None:
                level = lm2.group(1)
        if ts is None:
            tm = _RE_LOGFMT_TS.search(first, 0, 1024)
            if tm is not None:
                ts = _ts_string(tm.group(1) if tm.group(1) is not None else tm.group(2))
    if level is None and not access:
        level = _level_word(first)
    if ts is None and not access:
        # an ISO timestamp further in ("[ERROR] 2026-11-24 10:00:00 ...", "web.1 | 2026-..."): its
        # first colon is 13 characters after its start; trying the first few colons is much
        # cheaper than a regex search over the whole head
        p = first.find(":", 13, 64)
        tries = 4
        while p >= 0 and tries:
            m = _RE_TS_ISO.match(first, p - 13)
            if m is not None:
                ts = _ts_iso_match(m)
                break
            p = first.find(":", p + 1, 64)
            tries -= 1

    if ts is not None:
        doc["@timestamp"] = ts
    if level is not None:
        lv = normalize_level(level)
        if lv is not None:
            log: dict[str, Any] = {"level": lv}
            if logger:
                log["logger"] = logger
            doc["log"] = log
    elif logger:
        doc["log"] = {"logger": logger}
    if thread:
        doc["process"] = {"thread": {"name": thread}}

    if nl >= 0:
        stack, etype, emsg = _stack_info(text)
        if stack is not None:
            err: dict[str, Any] = {"stack_trace": stack}
            if etype:
                err["type"] = etype
            if emsg:
                err["message"] = emsg
            doc["error"] = err
    return doc


# --------------------------------------------------------------------------- stack traces

_PY_TB = "Traceback (most recent call last):"
_RE_JAVA_AT = re.compile(r"^[ \t]+at (?:[\w$.<>/\[\]`-]+\(|.*:\d+(?::\d+)?\)?$)", re.MULTILINE)
_RE_JAVA_HEADER = re.compile(r"(?:Exception in thread \"[^\"]*\" )?([A-Za-z_$][\w$]*(?:\.[\w$]+)*)(?::\s?(.*))?")
# The lookbehind makes a search start only at the start of a name: without it, a long run of word
# characters costs quadratic backtracking.
_RE_JAVA_TYPE_IN = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*(?:\.[\w$]+)*(?:Exception|Error|Throwable))(?::\s?(.*))?$")
_RE_PY_EXC = re.compile(r"([A-Za-z_][\w.]*)(?::\s?(.*))?")
_RE_PY_GROUP_EXC = re.compile(r"[ \t]*\| ([A-Za-z_][\w.]*)(?::\s?(.*))?")
_EXC_SUFFIXES = ("Exception", "Error", "Throwable", "Failure", "Fault")


def _py_exception(text: str, tb_at: int) -> tuple[str | None, str | None]:
    """Type and message of the exception raised last: the first non-indented line after the last traceback."""
    last = text.rfind("\n" + _PY_TB)
    pos = last + 1 if last >= 0 else (0 if text.startswith(_PY_TB) else -1)
    if pos >= 0:
        for line in text[pos + len(_PY_TB) :].split("\n"):
            if not line or line[0] in " \t":
                continue
            m = _RE_PY_EXC.fullmatch(line.rstrip("\r"))
            if m is not None:
                return m.group(1), m.group(2) or None
            return None, None
        return None, None
    # an exception group traceback ("  + Exception Group Traceback ...") is indented throughout
    for line in text[tb_at:].split("\n")[1:]:
        m = _RE_PY_GROUP_EXC.fullmatch(line.rstrip("\r"))
        if m is not None:
            return m.group(1), m.group(2) or None
    return None, None


def _stack_info(text: str, whole: bool = False) -> tuple[str | None, str | None, str | None]:
    """(stack_trace, error.type, error.message) of a multiline event; Nones when there is no stack trace.

    ``whole``: the text is a stack trace already (a JSON ``stack_trace`` field); only type and message are read.
    """
    i = text.find(_PY_TB)
    if i >= 0:
        start = text.rfind("\n", 0, i) + 1
        etype, emsg = _py_exception(text, start)
        return text[start:], etype, emsg
    m = _RE_JAVA_AT.search(text)
    if m is None:
        if whole:  # a header line alone ("java.lang.X: msg"), e.g. a JSON error.stack_trace of one line
            first = text.split("\n", 1)[0]
            hm = _RE_JAVA_TYPE_IN.match(first)
            if hm is not None:
                return text, hm.group(1), hm.group(2) or None
        return None, None, None
    at = m.start()
    if at == 0:
        return text, None, None
    prev_start = text.rfind("\n", 0, at - 1) + 1
    header = text[prev_start : at - 1].rstrip("\r")
    hm = _RE_JAVA_HEADER.fullmatch(header)
    if hm is not None and ("." in hm.group(1) or hm.group(1).endswith(_EXC_SUFFIXES)):
        return text[prev_start:], hm.group(1), hm.group(2) or None
    hm = _RE_JAVA_TYPE_IN.search(header, max(0, len(header) - 1024))  # "... failed: java.lang.X: msg" on the log line
    if hm is not None:
        return text[at:], hm.group(1), hm.group(2) or None
    return text[at:], None, None


# --------------------------------------------------------------------------- entry point


def parse_line(text: str, *, now: float | None = None) -> dict[str, Any]:
    """ECS fields of one log event's text (see the module docstring for the rules). Never raises.

    ``now`` (epoch seconds) only decides the year of syslog's year-less timestamps; default: the clock.
    """
    try:
        if text[:1] == "{":
            try:
                obj = orjson.loads(text)
            except ValueError:  # orjson.JSONDecodeError, also for lone surrogates
                obj = None
            if type(obj) is dict:
                return _from_json(obj, text)
        return _from_text(text, now)
    except Exception:  # a bug must cost a document its fields, never the pipeline
        return {"message": text if isinstance(text, str) else str(text)}
