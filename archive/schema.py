"""The archive's Parquet schema: the ECS fields people filter on, typed; everything else kept as JSON.

Typed columns make the archive small and fast (a real timestamp, dictionary
encoded keywords) and let DuckDB read ``service.name`` as a struct field, the
same path as in OpenSearch. The rest of a document (an application's ``app.*``
fields, whatever a future parser adds) goes into ``extra`` as a JSON string,
so a new field never changes the schema and never breaks a reader.
``SCHEMA_VERSION`` is written into every manifest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

SCHEMA_VERSION = 1

_str = pa.string()

SCHEMA = pa.schema([
    pa.field("@timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("_id", _str, nullable=False),
    pa.field("message", _str),
    pa.field("log", pa.struct([
        pa.field("level", _str),
        pa.field("logger", _str),
        pa.field("offset", pa.int64()),
        pa.field("file", pa.struct([pa.field("path", _str)])),
    ])),
    pa.field("service", pa.struct([pa.field("name", _str), pa.field("version", _str), pa.field("environment", _str)])),
    pa.field("host", pa.struct([pa.field("name", _str)])),
    pa.field("event", pa.struct([pa.field("dataset", _str), pa.field("action", _str)])),
    pa.field("trace", pa.struct([pa.field("id", _str)])),
    pa.field("error", pa.struct([pa.field("type", _str), pa.field("message", _str), pa.field("stack_trace", _str)])),
    pa.field("tags", pa.list_(_str)),
    pa.field("extra", _str),  # JSON of every other field
])

# Low-cardinality columns: dictionary encoding makes them small and fast to filter.
DICTIONARY_COLUMNS = [
    "log.level", "log.logger", "log.file.path", "service.name", "service.version", "service.environment",
    "host.name", "event.dataset", "event.action", "error.type",
]

# (top-level key, sub-keys taken into its struct); the rest of that object goes to ``extra``.
_STRUCTS: dict[str, tuple[str, ...]] = {
    "service": ("name", "version", "environment"),
    "host": ("name",),
    "event": ("dataset", "action"),
    "trace": ("id",),
    "error": ("type", "message", "stack_trace"),
}


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def to_columns(hits: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column lists for :data:`SCHEMA` from OpenSearch hits (``_id`` and ``_source``)."""
    cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    for hit in hits:
        src = dict(hit["_source"])
        cols["@timestamp"].append(parse_ts(src.pop("@timestamp")))
        cols["_id"].append(hit["_id"])
        cols["message"].append(src.pop("message", None))
        extra: dict[str, Any] = {}
        log = src.pop("log", None) or {}
        log_file = log.get("file") or {}
        cols["log"].append({
            "level": log.get("level"), "logger": log.get("logger"), "offset": log.get("offset"),
            "file": {"path": log_file.get("path")},
        })
        rest_log = {k: v for k, v in log.items() if k not in ("level", "logger", "offset", "file")}
        rest_file = {k: v for k, v in log_file.items() if k != "path"}
        if rest_file:
            rest_log["file"] = rest_file
        if rest_log:
            extra["log"] = rest_log
        for key, subs in _STRUCTS.items():
            obj = src.pop(key, None) or {}
            if not isinstance(obj, dict):
                extra[key] = obj
                obj = {}
            cols[key].append({s: _text(obj.get(s)) for s in subs})
            rest = {k: v for k, v in obj.items() if k not in subs}
            if rest:
                extra[key] = rest
        tags = src.pop("tags", None)
        cols["tags"].append([str(t) for t in tags] if isinstance(tags, list) else None)
        extra.update(src)
        cols["extra"].append(orjson.dumps(extra).decode() if extra else None)
    return cols


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)


def to_table(hits: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pydict(to_columns(hits), schema=SCHEMA)


def to_documents(table: pa.Table) -> list[tuple[str, dict[str, Any]]]:
    """Back from rows to (``_id``, document): what rehydrate sends to OpenSearch."""
    out = []
    for row in table.to_pylist():
        doc: dict[str, Any] = orjson.loads(row["extra"]) if row.get("extra") else {}
        doc["@timestamp"] = row["@timestamp"].isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if row["message"] is not None:
            doc["message"] = row["message"]
        for key in ("log", "service", "host", "event", "trace", "error"):
            value = _prune(row.get(key))
            if value:
                doc[key] = _deep_merge(doc.get(key, {}), value)
        if row.get("tags"):
            doc["tags"] = row["tags"]
        out.append((row["_id"], doc))
    return out


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {}}
    return value


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out
