"""The archive's Parquet schema: the ECS fields people filter on, typed; messages as templates and variables.

Two schemas, one for people and one for the files:

* :data:`SCHEMA` is what people query (the ``logs`` view of
  :mod:`pang.archive.query`) and what rehydrate reads: ``@timestamp``, ``_id``,
  ``message``, structs with the ECS fields (``log.level``, ``service.name``,
  ``trace.id``, ``agent.id``, ...), ``tags`` and ``extra``, the rest of the
  document as JSON, so a new field never changes the schema.
* :data:`STORAGE_SCHEMA` is what the Parquet files hold. It is built for size
  (the archive's target: no bigger than ``zstd -19 --long`` of the raw text,
  half of gzip JSON lines):

  - ``@timestamp`` and ``event.ingested`` are timestamps (delta encoded);
  - ``_id`` is not stored when it is what pang's agent gives a file event,
    ``file_event_id(log.file.fingerprint, log.offset)`` (rebuilt on reading: in
    Python, and by a function that :func:`duckdb_setup` registers in DuckDB);
  - ``_id``, ``trace.id`` and ``span.id`` are 16- or 8-byte binaries when they
    are lower-case hex of that length (``*_bin``), else text (``*_text``); so is
    a message's first 32-digit hex variable (``message_hex``, a trace id in the
    text);
  - ``message`` and ``extra`` are split the CLP way into a *template*
    (dictionary encoded: few distinct values) and its *variables* (every run
    of letters and digits that holds a digit), joined by ``\\x1f``. In a
    message, a value that the document also holds elsewhere is stored once:
    the template says where ``@timestamp`` (as ``YYYY-MM-DD HH:MM:SS`` or with a
    ``T``, and its milliseconds), ``trace.id``, ``span.id``, ``log.level``,
    ``log.logger``, ``process.thread.name`` and a trailing
    ``error.stack_trace`` go, and a variable equal to one of ``extra``'s is a
    reference to it (a JSON line kept whole as its message repeats its fields);
  - keywords (level, logger, service, host, agent, thread, path) are
    dictionary encoded.

  Every transformation is exact: :func:`to_documents` gives back the documents
  that :func:`to_table` was given, value for value (a value of an unexpected
  type stays in ``extra`` as it was). :data:`DUCKDB_MACROS` and
  :func:`duckdb_view` decode the same in SQL, so ``SELECT message FROM logs``
  reads like the original.

``SCHEMA_VERSION`` is written into every manifest (3: no ``_id`` for file
events, ``log.file.fingerprint``, ``message_hex``, zstd options of
:func:`compression_options`; files of versions 1 and 2 stay readable).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

# The _id pang's agent gives a file event: a hash of its stream's fingerprint and its offset.
from pang.shippers.source.files import event_id as file_event_id

SCHEMA_VERSION = 3

_str = pa.string()
_ts = pa.timestamp("ms", tz="UTC")

_LOG = pa.struct([pa.field("level", _str), pa.field("logger", _str), pa.field("offset", pa.int64()),
                  pa.field("file", pa.struct([pa.field("path", _str), pa.field("fingerprint", _str)]))])
_SERVICE = pa.struct([pa.field("name", _str), pa.field("version", _str), pa.field("environment", _str)])
_HOST = pa.struct([pa.field("name", _str)])
_EVENT = pa.struct([pa.field("dataset", _str), pa.field("action", _str), pa.field("ingested", _ts)])
_ERROR = pa.struct([pa.field("type", _str), pa.field("message", _str), pa.field("stack_trace", _str)])
_AGENT = pa.struct([pa.field("id", _str), pa.field("name", _str), pa.field("type", _str), pa.field("version", _str)])
_PROCESS = pa.struct([pa.field("thread", pa.struct([pa.field("name", _str)]))])

# What people query (the ``logs`` view) and what rehydrate reads.
SCHEMA = pa.schema([
    pa.field("@timestamp", _ts, nullable=False),
    pa.field("_id", _str, nullable=False),
    pa.field("message", _str),
    pa.field("log", _LOG),
    pa.field("service", _SERVICE),
    pa.field("host", _HOST),
    pa.field("event", _EVENT),
    pa.field("trace", pa.struct([pa.field("id", _str)])),
    pa.field("span", pa.struct([pa.field("id", _str)])),
    pa.field("error", _ERROR),
    pa.field("agent", _AGENT),
    pa.field("process", _PROCESS),
    pa.field("tags", pa.list_(_str)),
    pa.field("extra", _str),  # JSON of every other field
])

# What the Parquet files hold.
STORAGE_SCHEMA = pa.schema([
    pa.field("@timestamp", _ts, nullable=False),
    # _id: neither column when it is file_event_id(log.file.fingerprint, log.offset) (pang's file events)
    pa.field("_id_bin", pa.binary(16)),  # another 32-character lower-case hex _id
    pa.field("_id_text", _str),  # any other _id
    pa.field("message_template", _str),
    pa.field("message_vars", _str),
    pa.field("message_hex", pa.binary(16)),  # the message's first 32-digit lower-case hex variable (a trace id)
    pa.field("log", _LOG),
    pa.field("service", _SERVICE),
    pa.field("host", _HOST),
    pa.field("event", _EVENT),
    pa.field("trace", pa.struct([pa.field("id_bin", pa.binary(16)), pa.field("id_text", _str)])),
    pa.field("span", pa.struct([pa.field("id_bin", pa.binary(8)), pa.field("id_text", _str)])),
    pa.field("error", _ERROR),
    pa.field("agent", _AGENT),
    pa.field("process", _PROCESS),
    pa.field("tags", pa.list_(_str)),
    pa.field("extra_template", _str),
    pa.field("extra_vars", _str),
])

# How the archive is read: the stored columns, plus those of schema version 1 files (``_id``,
# ``message``, ``extra``, ``trace.id`` as text), which stay readable next to newer ones.
READ_SCHEMA = pa.schema([
    *(f if f.name != "trace" else pa.field("trace", pa.struct([*f.type, pa.field("id", _str)])) for f in STORAGE_SCHEMA),
    pa.field("_id", _str),
    pa.field("message", _str),
    pa.field("extra", _str),
])

# Low-cardinality columns: dictionary encoding makes them small and fast to filter.
DICTIONARY_COLUMNS = [
    "log.level", "log.logger", "log.file.path", "log.file.fingerprint", "service.name", "service.version", "service.environment",
    "host.name", "event.dataset", "event.action", "error.type", "agent.id", "agent.name", "agent.type",
    "agent.version", "process.thread.name", "message_template", "extra_template",
]
# Encodings of the other columns that beat the default (PLAIN then zstd).
COLUMN_ENCODINGS = {
    "@timestamp": "DELTA_BINARY_PACKED",  # sorted: small deltas
    "event.ingested": "DELTA_BINARY_PACKED",
    "message_vars": "DELTA_LENGTH_BYTE_ARRAY",  # lengths apart from the bytes
    "extra_vars": "DELTA_LENGTH_BYTE_ARRAY",
}
# Min/max statistics only where a filter can use them.
STATISTICS_COLUMNS = [
    "@timestamp", "log.level", "log.logger", "log.offset", "log.file.path", "log.file.fingerprint", "service.name",
    "service.version",
    "service.environment", "host.name", "event.dataset", "event.action", "event.ingested", "error.type",
    "agent.id", "agent.name", "agent.type", "agent.version", "process.thread.name",
]


# Columns of many distinct values: a higher zstd level shrinks them for a little more write CPU (reads
# cost the same); the rest are dictionaries, timestamps and random ids, which a higher level does not help.
HIGH_LEVEL_COLUMNS = ["message_vars", "extra_vars", "message_template", "extra_template", "log.offset",
                      "error.message", "error.stack_trace"]
HIGH_LEVEL = 9
# One page per column chunk of variables (zstd compresses a page at a time: whole stack traces repeat
# across a row group); row groups (128 Ki rows) are what time filters skip.
DATA_PAGE_BYTES = 16 << 20


def compression_options(level: int = 3) -> dict[str, Any]:
    """The writer's zstd options: ``level`` (``PANG_ARCHIVE_ZSTD_LEVEL``), at least :data:`HIGH_LEVEL` where it pays."""
    return {"compression": "zstd", "data_page_size": DATA_PAGE_BYTES,
            "compression_level": {c: max(level, HIGH_LEVEL) if c in HIGH_LEVEL_COLUMNS else level for c in _leaf_paths()}}


def _leaf_paths() -> list[str]:
    out: list[str] = []

    def walk(prefix: str, t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            for f in t:
                walk(f"{prefix}.{f.name}", f.type)
        else:
            out.append(prefix)

    for f in STORAGE_SCHEMA:
        walk(f.name, f.type)
    return out


def parquet_options() -> dict[str, Any]:
    """The ``pyarrow.parquet.ParquetWriter`` options of the archive's files (compression apart)."""
    import pyarrow.parquet as pq

    return {
        "use_dictionary": DICTIONARY_COLUMNS,
        "column_encoding": COLUMN_ENCODINGS,
        "write_statistics": STATISTICS_COLUMNS,
        "sorting_columns": [pq.SortingColumn(0)],  # @timestamp, ascending
    }


# --- templates and variables ---------------------------------------------------------------

# Characters a template may hold besides text; a message holding any of \x10-\x1f is stored whole.
WHOLE = "\x10"  # the template of a message stored whole: its "variables" are the message itself
VAR = "\x11"  # the next variable
TRACE_ID = "\x12"  # trace.id
TS_SPACE = "\x13"  # @timestamp as YYYY-MM-DD HH:MM:SS (UTC)
TS_T = "\x14"  # @timestamp as YYYY-MM-DDTHH:MM:SS (UTC)
TS_MS = "\x15"  # @timestamp's milliseconds, three digits
STACK_TRACE = "\x16"  # error.stack_trace (only at the end)
SPAN_ID = "\x17"  # span.id
THREAD = "\x18"  # process.thread.name
LOGGER = "\x19"  # log.logger
LEVEL = "\x1a"  # log.level
REF = "\x1b"  # a variable "\x1bN": extra's variable N (0-based)
HEX = "\x1c"  # a variable: the row's message_hex as 32 lower-case hex digits
SEP = "\x1f"  # between variables

_RESERVED = re.compile("[\x10-\x1f]")
# A variable: a run of letters and digits that holds a digit (possessive: linear time).
_VAR_RE = re.compile(r"((?<![0-9A-Za-z])[A-Za-z]*+[0-9][0-9A-Za-z]*+)")
# (placeholder, field) in the order they are put in; decoding goes backwards.
_FIELDS = ((TRACE_ID, "trace"), (SPAN_ID, "span"), (LOGGER, "logger"), (THREAD, "thread"), (LEVEL, "level"))
_MIN_LEN = {"trace": 8, "span": 8, "logger": 3, "thread": 3, "level": 3}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def split_text(s: str) -> tuple[str, str | None]:
    """``s`` as a template and its variables (None: no variable); ``s`` holds none of \\x10-\\x1f."""
    parts = _VAR_RE.split(s)
    if len(parts) == 1:
        return s, None
    return VAR.join(parts[0::2]), SEP.join(parts[1::2])


def join_text(template: str, variables: str | None, refs: list[str] | None = None, hex_value: bytes | None = None) -> str:
    """The inverse of :func:`split_text`; ``refs`` resolves ``\\x1bN`` variables, ``hex_value`` a :data:`HEX` one."""
    if variables is None:
        return template
    values = variables.split(SEP)
    if refs is not None and REF in variables:
        values = [refs[int(v[1:])] if v[:1] == REF else v for v in values]
    if hex_value is not None:
        values = [hex_value.hex() if v == HEX else v for v in values]
    lits = template.split(VAR)
    out = [""] * (2 * len(lits) - 1)
    out[0::2] = lits
    out[1::2] = values
    return "".join(out)


def encode_message(message: str, ts_ms: int, fields: dict[str, str | None], stack_trace: str | None,
                   extra_vars: str | None) -> tuple[str, str | None, bytes | None]:
    """A message as (template, variables, hex); ``fields``: the document's trace, span, logger, thread, level.

    The first variable of 32 lower-case hex digits that is not a reference is
    stored as 16 bytes (``hex``; the variable is then :data:`HEX`): as text,
    zstd spends ~4.5 bits on each hex digit among the other variables' characters.
    """
    if _RESERVED.search(message):
        return WHOLE, message, None
    s = message
    if stack_trace and len(stack_trace) >= 16 and s.endswith(stack_trace):
        s = s[: len(s) - len(stack_trace)] + STACK_TRACE
    for mark, name in _FIELDS:
        value = fields.get(name)
        if value and len(value) >= _MIN_LEN[name] and value in s and not _RESERVED.search(value):
            s = s.replace(value, mark)
    sec, frac = divmod(ts_ms, 1000)
    rendered = _render(sec)
    i = s.find(rendered[:10])
    if i >= 0 and s[i + 10 : i + 11] in (" ", "T") and s[i + 11 : i + 19] == rendered[11:]:
        mark = TS_SPACE if s[i + 10] == " " else TS_T
        end = i + 19
        if s[end : end + 1] in (".", ",") and s[end + 1 : end + 4] == f"{frac:03d}":
            mark += s[end] + TS_MS
            end += 4
        s = s[:i] + mark + s[end:]
    template, variables = split_text(s)
    if variables is None:
        return template, None, None
    values = variables.split(SEP)
    if extra_vars:
        index: dict[str, int] = {}
        for n, v in enumerate(extra_vars.split(SEP)):
            if len(v) >= 3:
                index.setdefault(v, n)
        if index:
            values = [REF + str(index[v]) if v in index else v for v in values]
    raw = None
    for n, v in enumerate(values):
        if len(v) == 32 and (raw := _hex(v, 16)) is not None:
            values[n] = HEX
            break
    return template, SEP.join(values), raw


def decode_message(template: str, variables: str | None, ts_ms: int, fields: dict[str, str | None],
                   stack_trace: str | None, extra_vars: str | None, hex_value: bytes | None = None) -> str:
    """The inverse of :func:`encode_message`."""
    if template == WHOLE:
        return variables or ""
    s = join_text(template, variables, extra_vars.split(SEP) if extra_vars and variables and REF in variables else None,
                  hex_value)
    if TS_SPACE in s or TS_T in s or TS_MS in s:
        sec, frac = divmod(ts_ms, 1000)
        rendered = _render(sec)
        s = s.replace(TS_SPACE, rendered.replace("T", " ")).replace(TS_T, rendered).replace(TS_MS, f"{frac:03d}")
    for mark, name in reversed(_FIELDS):
        if mark in s:
            s = s.replace(mark, fields.get(name) or "")
    if STACK_TRACE in s:
        s = s.replace(STACK_TRACE, stack_trace or "")
    return s


# --- documents to columns ------------------------------------------------------------------

_SECONDS: dict[str, int | None] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds (None: not canonical)
_RENDERED: dict[int, str] = {}  # epoch seconds -> "YYYY-MM-DDTHH:MM:SS"


def _second(prefix: str) -> int | None:
    sec = _SECONDS.get(prefix, -1)
    if sec == -1:
        try:
            t = datetime.fromisoformat(prefix + "+00:00")
            sec = int((t - _EPOCH).total_seconds())
            if _render(sec) != prefix:
                sec = None
        except ValueError:
            sec = None
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[prefix] = sec
    return sec


def _render(sec: int) -> str:
    text = _RENDERED.get(sec)
    if text is None:
        t = _EPOCH + timedelta(seconds=sec)
        text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        if len(_RENDERED) > 100_000:
            _RENDERED.clear()
        _RENDERED[sec] = text
    return text


def iso_ms(ms: int) -> str:
    """``2026-11-24T10:00:00.123Z``: how pang writes timestamps."""
    sec, frac = divmod(ms, 1000)
    return f"{_render(sec)}.{frac:03d}Z"


def canonical_ms(value: Any) -> int | None:
    """Epoch milliseconds of a timestamp written as :func:`iso_ms` writes it, else None."""
    if type(value) is not str or len(value) != 24 or value[23] != "Z" or value[19] != "." or not value[20:23].isdigit():
        return None
    sec = _second(value[:19])
    return None if sec is None else sec * 1000 + int(value[20:23])


def parse_ts(value: Any) -> datetime:
    """A document's ``@timestamp`` (ISO 8601 string, or epoch milliseconds) as a UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _EPOCH + timedelta(milliseconds=value)
    if isinstance(value, str) and value.isdigit():
        return _EPOCH + timedelta(milliseconds=int(value))
    t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _hex(value: str, nbytes: int) -> bytes | None:
    """The bytes of ``value`` if it is exactly ``2 * nbytes`` lower-case hex digits."""
    if len(value) == 2 * nbytes:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return None
        if raw.hex() == value:
            return raw
    return None


def _derived_id(log: dict[str, Any] | None) -> str | None:
    """The ``_id`` that ``log.file.fingerprint`` and ``log.offset`` give, if both are there."""
    fp = ((log or {}).get("file") or {}).get("fingerprint")
    offset = (log or {}).get("offset")
    return None if fp is None or offset is None else file_event_id(fp, offset)


def _is_int64(v: Any) -> bool:
    return type(v) is int and -(2**63) <= v < 2**63


# Keyword fields: (top-level key, sub-keys typed as strings).
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "service": ("name", "version", "environment"),
    "host": ("name",),
    "error": ("type", "message", "stack_trace"),
    "agent": ("id", "name", "type", "version"),
}


def _take_strings(src: dict[str, Any], key: str, subs: tuple[str, ...], allowed: frozenset[str],
                  extra: dict[str, Any]) -> dict[str, Any] | None:
    """The string sub-fields of ``src[key]``; whatever else it holds goes to ``extra[key]``."""
    obj = src.pop(key)
    if type(obj) is dict and obj:
        if obj.keys() <= allowed and all(type(v) is str for v in obj.values()):
            return obj  # the usual case: nothing else
        out = {}
        rest = dict(obj)
        for s in subs:
            if type(rest.get(s)) is str:
                out[s] = rest.pop(s)
        if not out:
            extra[key] = obj
            return None
        if rest:
            extra[key] = rest
        return out
    extra[key] = obj
    return None


_LOG_KEYS = {"level", "logger", "offset", "file"}
_FILE_KEYS = frozenset({"path", "fingerprint"})


def _take_log(log: Any, extra: dict[str, Any]) -> dict[str, Any] | None:
    if type(log) is not dict or not log:
        extra["log"] = log
        return None
    f = log.get("file")
    if (log.keys() <= _LOG_KEYS and type(log.get("level", "")) is str and type(log.get("logger", "")) is str
            and _is_int64(log.get("offset", 0)) and (f is None and "file" not in log
                                                   or type(f) is dict and f and f.keys() <= _FILE_KEYS
                                                   and all(type(v) is str for v in f.values()))):
        return log  # the usual case
    rest = dict(log)
    out: dict[str, Any] = {}
    for k in ("level", "logger"):
        if type(rest.get(k)) is str:
            out[k] = rest.pop(k)
    if _is_int64(rest.get("offset")):
        out["offset"] = rest.pop("offset")
    if type(f) is dict and (kept := {k: f[k] for k in ("path", "fingerprint") if type(f.get(k)) is str}):
        out["file"] = kept
        if len(f) > len(kept):
            rest["file"] = {k: v for k, v in f.items() if k not in kept}
        else:
            del rest["file"]
    if rest:
        extra["log"] = rest
    return out


def to_columns(hits: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column lists for :data:`STORAGE_SCHEMA` from OpenSearch hits (``_id`` and ``_source``)."""
    cols: dict[str, list[Any]] = {f.name: [] for f in STORAGE_SCHEMA}
    c_ts, c_idb, c_idt = cols["@timestamp"], cols["_id_bin"], cols["_id_text"]
    c_mt, c_mv, c_et, c_ev = cols["message_template"], cols["message_vars"], cols["extra_template"], cols["extra_vars"]
    c_mh = cols["message_hex"]
    c_log, c_event, c_trace, c_span = cols["log"], cols["event"], cols["trace"], cols["span"]
    c_proc, c_tags, c_error = cols["process"], cols["tags"], cols["error"]
    keyword_cols = [(k, subs, frozenset(subs), cols[k]) for k, subs in _KEYWORDS.items()]
    dumps = orjson.dumps
    for hit in hits:
        src = dict(hit["_source"])
        extra: dict[str, Any] = {}
        raw_ts = src.pop("@timestamp")
        ms = canonical_ms(raw_ts)
        if ms is None:  # kept as written too
            ms = (parse_ts(raw_ts) - _EPOCH) // _MS
            extra["@timestamp"] = raw_ts
        c_ts.append(ms)
        doc_id = hit["_id"]
        log = _take_log(src.pop("log"), extra) if "log" in src else None
        c_log.append(log)
        if log is not None and doc_id == _derived_id(log):
            c_idb.append(None)  # rebuilt from the fingerprint and offset
            c_idt.append(None)
        else:
            b = _hex(doc_id, 16)
            c_idb.append(b)
            c_idt.append(None if b is not None else doc_id)
        for key, subs, allowed, col in keyword_cols:
            col.append(_take_strings(src, key, subs, allowed, extra) if key in src else None)

        ev = None
        if "event" in src:
            event = src.pop("event")
            if type(event) is dict and event:
                ev = {}
                rest = None
                for k, v in event.items():
                    if (k == "dataset" or k == "action") and type(v) is str:
                        ev[k] = v
                    elif k == "ingested" and (ing := canonical_ms(v)) is not None:
                        ev[k] = ing
                    else:
                        if rest is None:
                            rest = {}
                        rest[k] = v
                if rest:
                    extra["event"] = rest
            else:
                extra["event"] = event
        c_event.append(ev)

        trace_id = span_id = None
        if "trace" in src:
            obj = src.pop("trace")
            if type(obj) is dict and type(obj.get("id")) is str:
                trace_id = obj["id"]
                b = _hex(trace_id, 16)
                c_trace.append({"id_bin": b} if b is not None else {"id_text": trace_id})
                if len(obj) > 1:
                    extra["trace"] = {k: v for k, v in obj.items() if k != "id"}
            else:
                extra["trace"] = obj
                c_trace.append(None)
        else:
            c_trace.append(None)
        if "span" in src:
            obj = src.pop("span")
            if type(obj) is dict and type(obj.get("id")) is str:
                span_id = obj["id"]
                b = _hex(span_id, 8)
                c_span.append({"id_bin": b} if b is not None else {"id_text": span_id})
                if len(obj) > 1:
                    extra["span"] = {k: v for k, v in obj.items() if k != "id"}
            else:
                extra["span"] = obj
                c_span.append(None)
        else:
            c_span.append(None)

        thread = None
        if "process" in src:
            proc = src.pop("process")
            th = proc.get("thread") if type(proc) is dict else None
            if type(th) is dict and type(th.get("name")) is str:
                thread = th["name"]
                if len(proc) > 1 or len(th) > 1:
                    rest = dict(proc)
                    if len(th) > 1:
                        rest["thread"] = {k: v for k, v in th.items() if k != "name"}
                    else:
                        del rest["thread"]
                    extra["process"] = rest
            else:
                extra["process"] = proc
        c_proc.append({"thread": {"name": thread}} if thread is not None else None)

        if "tags" in src:
            tags = src.pop("tags")
            if type(tags) is list and tags and all(type(t) is str for t in tags):
                c_tags.append(tags)
            else:
                c_tags.append(None)
                extra["tags"] = tags
        else:
            c_tags.append(None)

        message = src.pop("message") if type(src.get("message")) is str else None
        if src:
            extra.update(src)  # everything else, and a message that is not a string
        if extra:
            et, evars = split_text(dumps(extra).decode())
        else:
            et = evars = None
        c_et.append(et)
        c_ev.append(evars)
        if message is not None:
            error = c_error[-1]
            fields = {"trace": trace_id, "span": span_id, "logger": log.get("logger") if log else None,
                      "thread": thread, "level": log.get("level") if log else None}
            mt, mv, mh = encode_message(message, ms, fields, error.get("stack_trace") if error else None, evars)
        else:
            mt = mv = mh = None
        c_mt.append(mt)
        c_mv.append(mv)
        c_mh.append(mh)
    return cols


def to_table(hits: list[dict[str, Any]]) -> pa.Table:
    """The rows of :data:`STORAGE_SCHEMA` for these hits, in their order."""
    return pa.Table.from_pydict(to_columns(hits), schema=STORAGE_SCHEMA)


# --- columns to documents ------------------------------------------------------------------


def to_documents(table: pa.Table) -> list[tuple[str, dict[str, Any]]]:
    """Back from rows to (``_id``, document): what rehydrate sends to OpenSearch.

    ``table`` holds rows as the files store them (:data:`STORAGE_SCHEMA`, or
    a schema version 1 file), as the dataset reads them (:data:`READ_SCHEMA`),
    or as the ``logs`` view gives them (:data:`SCHEMA`).
    """
    out = []
    for row in table.to_pylist():
        ms = (row["@timestamp"].astimezone(UTC) - _EPOCH) // _MS
        extra_vars = row.get("extra_vars")
        extra_text = row.get("extra")
        if extra_text is None and row.get("extra_template") is not None:
            extra_text = join_text(row["extra_template"], extra_vars)
        doc: dict[str, Any] = orjson.loads(extra_text) if extra_text else {}
        raw_ts = doc.pop("@timestamp", None)  # a timestamp pang does not write this way, as it was
        doc["@timestamp"] = raw_ts if raw_ts is not None else iso_ms(ms)

        log = row.get("log") or {}
        error = row.get("error") or {}
        thread = ((row.get("process") or {}).get("thread") or {}).get("name")
        trace, span = _id_of(row.get("trace")), _id_of(row.get("span"))
        doc_id = row.get("_id")
        if doc_id is None:
            if row.get("_id_bin") is not None:
                doc_id = row["_id_bin"].hex()
            elif row.get("_id_text") is not None:
                doc_id = row["_id_text"]
            else:
                doc_id = _derived_id(log)
        message = row.get("message")
        if message is None and row.get("message_template") is not None:
            fields = {"trace": trace, "span": span, "logger": log.get("logger"), "thread": thread, "level": log.get("level")}
            message = decode_message(row["message_template"], row.get("message_vars"), ms, fields,
                                     error.get("stack_trace"), extra_vars, row.get("message_hex"))
        if message is not None:
            doc["message"] = message

        typed: dict[str, Any] = {}
        lv = {k: log[k] for k in ("level", "logger", "offset") if log.get(k) is not None}
        file = {k: v for k, v in (log.get("file") or {}).items() if v is not None}
        if file:
            lv["file"] = file
        typed["log"] = lv
        for key, subs in _KEYWORDS.items():
            obj = row.get(key) or {}
            typed[key] = {s: obj[s] for s in subs if obj.get(s) is not None}
        event = row.get("event") or {}
        ev = {k: event[k] for k in ("dataset", "action") if event.get(k) is not None}
        if event.get("ingested") is not None:
            ev["ingested"] = iso_ms((event["ingested"].astimezone(UTC) - _EPOCH) // _MS)
        typed["event"] = ev
        typed["trace"] = {"id": trace} if trace is not None else {}
        typed["span"] = {"id": span} if span is not None else {}
        typed["process"] = {"thread": {"name": thread}} if thread is not None else {}
        for key, value in typed.items():
            if value:
                doc[key] = _deep_merge(doc[key], value) if isinstance(doc.get(key), dict) else value
        if row.get("tags"):
            doc["tags"] = row["tags"]
        out.append((doc_id, doc))
    return out


def _id_of(value: dict[str, Any] | None) -> str | None:
    """``trace.id`` or ``span.id`` from its stored or viewed struct."""
    if not value:
        return None
    if value.get("id") is not None:
        return value["id"]
    if value.get("id_bin") is not None:
        return value["id_bin"].hex()
    return value.get("id_text")


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


# --- the same decoding in DuckDB -----------------------------------------------------------

DUCKDB_MACROS = [
    # template and variables to text (a variable \x1bN is refs[N], 0-based; a variable \x1c is h as hex);
    # vars + \x1f: one more, empty
    """CREATE OR REPLACE MACRO pang_join(t, v, refs, h) AS CASE
        WHEN v IS NULL THEN t
        WHEN refs IS NULL AND h IS NULL THEN list_aggregate(list_transform(
            list_zip(string_split(t, chr(17)), string_split(v || chr(31), chr(31))),
            lambda p: p[1] || p[2]), 'string_agg', '')
        ELSE list_aggregate(list_transform(
            list_zip(string_split(t, chr(17)),
                     list_transform(string_split(v || chr(31), chr(31)),
                                    lambda x: CASE WHEN x[1] = chr(27) THEN refs[CAST(x[2:] AS INTEGER) + 1]
                                                   WHEN x = chr(28) THEN lower(hex(h)) ELSE x END)),
            lambda p: p[1] || p[2]), 'string_agg', '')
    END""",
    # the row's values in a message template (see encode_message); each one computed only when used
    """CREATE OR REPLACE MACRO pang_fill(t, ts, trace_id, span_id, logger, thread, level, stack_trace) AS CASE
        WHEN NOT regexp_matches(t, '[\x12-\x1a]') THEN t
        ELSE replace(replace(replace(replace(replace(replace(replace(replace(replace(t,
            chr(19), CASE WHEN contains(t, chr(19)) THEN strftime(timezone('UTC', ts), '%Y-%m-%d %H:%M:%S') ELSE '' END),
            chr(20), CASE WHEN contains(t, chr(20)) THEN strftime(timezone('UTC', ts), '%Y-%m-%dT%H:%M:%S') ELSE '' END),
            chr(21), CASE WHEN contains(t, chr(21)) THEN strftime(timezone('UTC', ts), '%g') ELSE '' END),
            chr(26), coalesce(level, '')),
            chr(24), coalesce(thread, '')),
            chr(25), coalesce(logger, '')),
            chr(23), CASE WHEN contains(t, chr(23)) THEN coalesce(span_id, '') ELSE '' END),
            chr(18), CASE WHEN contains(t, chr(18)) THEN coalesce(trace_id, '') ELSE '' END),
            chr(22), coalesce(stack_trace, ''))
    END""",
    # a message from its template, variables and the row's other fields
    """CREATE OR REPLACE MACRO pang_message(t, v, ts, trace_id, span_id, logger, thread, level, stack_trace, extra_vars, h) AS CASE
        WHEN t IS NULL THEN NULL
        WHEN t = chr(16) THEN v
        ELSE pang_join(pang_fill(t, ts, trace_id, span_id, logger, thread, level, stack_trace), v,
                       CASE WHEN contains(v, chr(27)) THEN string_split(extra_vars, chr(31)) END, h)
    END""",
    """CREATE OR REPLACE MACRO pang_hex_id(b, t) AS coalesce(t, lower(hex(b)))""",
]


def _file_event_ids(fingerprints: pa.Array, offsets: pa.Array) -> pa.Array:
    """``pang_file_event_id`` in DuckDB: :func:`file_event_id` over Arrow vectors (NULL in, NULL out)."""
    return pa.array([None if f is None or o is None else file_event_id(f, o)
                     for f, o in zip(fingerprints.to_pylist(), offsets.to_pylist(), strict=True)], pa.string())


def duckdb_setup(con: Any) -> None:
    """The macros of :data:`DUCKDB_MACROS` and the ``pang_file_event_id(fingerprint, offset)`` function.

    The function is Python (xxhash: DuckDB has no XXH3-128), so only a
    connection set up here can give the ``_id`` of rows that do not store it;
    the view calls it only when a query reads ``_id``.
    """
    from duckdb import sqltypes

    for sql in DUCKDB_MACROS:
        con.execute(sql)
    con.create_function("pang_file_event_id", _file_event_ids, [sqltypes.VARCHAR, sqltypes.BIGINT], sqltypes.VARCHAR,
                        type="arrow", null_handling="special", side_effects=False)


def duckdb_view(source: str, name: str = "logs", partitions: tuple[str, ...] = (),
                columns: dict[str, str] | None = None) -> str:
    """SQL creating the view ``name`` with :data:`SCHEMA`'s columns over ``source``.

    ``columns`` maps the source's columns to their DuckDB types; None means all
    of :data:`READ_SCHEMA`. A source read with ``union_by_name`` has only the
    columns its files have: those of schema version 2 (``message_template``,
    ``_id_bin``, ...), of version 1 (``message``, ``_id``, ``extra``,
    ``trace.id`` as text, taken as they are), or both.
    """

    def has(column: str, field: str | None = None) -> bool:
        if columns is None:
            return True
        if column not in columns:
            return False
        return field is None or re.search(rf'[(,]\s*"?{field}"?\s', columns[column]) is not None

    def first(*exprs: str | None, null: str = "NULL::VARCHAR") -> str:
        found = [e for e in exprs if e]
        return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})" if found else null

    v2 = has("message_template")
    trace_id = first("trace.id" if has("trace", "id") else None,
                     "pang_hex_id(trace.id_bin, trace.id_text)" if has("trace", "id_bin") else None)
    span_id = "pang_hex_id(span.id_bin, span.id_text)" if has("span") else "NULL::VARCHAR"
    thread = "process.thread.name" if has("process") else "NULL::VARCHAR"
    message_hex = "message_hex" if has("message_hex") else "NULL::BLOB"
    message = first("message" if has("message") else None, f"""pang_message(message_template, message_vars,
            "@timestamp", {trace_id}, {span_id}, log.logger, {thread}, log.level, error.stack_trace, extra_vars,
            {message_hex})""" if v2 else None)
    doc_id = first('"_id"' if has("_id") else None, 'pang_hex_id("_id_bin", "_id_text")' if has("_id_bin") else None,
                   "pang_file_event_id(log.file.fingerprint, log.offset)" if has("log", "fingerprint") else None)
    event = "event" if has("event", "ingested") else (
        "{'dataset': event.dataset, 'action': event.action, 'ingested': NULL::TIMESTAMPTZ}" if has("event") else "NULL")
    missing = {"agent": "STRUCT(id VARCHAR, name VARCHAR, type VARCHAR, version VARCHAR)",
               "process": "STRUCT(thread STRUCT(name VARCHAR))"}
    passed = ", ".join(c if has(c) else f"NULL::{missing[c]} AS {c}" for c in ("agent", "process"))
    keep = "".join(f', "{p}"' for p in partitions)
    return f"""CREATE OR REPLACE VIEW {name} AS SELECT
        "@timestamp",
        {doc_id} AS "_id",
        {message} AS message,
        log, service, host,
        {event} AS event,
        CASE WHEN trace IS NULL THEN NULL ELSE {{'id': {trace_id}}} END AS trace,
        {f"CASE WHEN span IS NULL THEN NULL ELSE {{'id': {span_id}}} END" if has("span") else "NULL::STRUCT(id VARCHAR)"} AS span,
        error, {passed}, tags,
        {first("extra" if has("extra") else None, "pang_join(extra_template, extra_vars, NULL, NULL::BLOB)" if v2 else None)} AS extra{keep}
    FROM {source}"""
