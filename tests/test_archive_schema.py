"""The archive's schema, without servers: every document comes back exactly, from Parquet and from DuckDB.

Property tests (hypothesis) over documents shaped like pang's (ECS fields,
templates, ids, timestamps) and over anything else JSON can hold (wrong
types, nulls, empty objects, control characters): doc -> ``to_table`` ->
``to_documents`` is the identity, also through a Parquet file written with
the archive's writer options and through the ``logs`` view in DuckDB, whose
SQL macros must decode exactly as the Python code does.
"""

from __future__ import annotations

import string
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.archive import schema as S
from pang.shippers.source.files import event_id as file_event_id

# --- strategies ---------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hex32 = st.binary(min_size=16, max_size=16).map(bytes.hex)
hex16 = st.binary(min_size=8, max_size=8).map(bytes.hex)
# Not only pang's spelling: upper-case hex, other lengths, any text.
any_id = st.one_of(hex32, hex16, hex32.map(str.upper), st.text(min_size=1, max_size=40))
timestamps_ms = st.integers(
    int((datetime(1, 1, 2, tzinfo=UTC) - _EPOCH).total_seconds() * 1000),
    int((datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH).total_seconds() * 1000),
)
words = st.sampled_from(["Order", "placed", "order_id=", "payment", "declined", " ", "-", ":", ",", ".", "\n", "\t", "=",
                         "[", "]", "{", "}", '"', "INFO", "ERROR", "http-nio-8080-exec-", "ms", "é", "日本", "\x00", "\x7f"])
reserved = st.sampled_from([chr(c) for c in range(0x10, 0x20)])


def _rendered(ms: int) -> list[str]:
    """The ways a log line writes its timestamp (and wrong ones)."""
    iso = S.iso_ms(ms)
    day, hms, frac = iso[:10], iso[11:19], iso[20:23]
    return [iso, f"{day} {hms},{frac}", f"{day} {hms}.{frac}", f"{day}T{hms}.{frac}123Z", f"{day} {hms}", f"{day}T{hms}",
            f"{day} {hms},{(int(frac) + 1) % 1000:03d}", day]


def _string_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a string, sometimes another JSON value (which the schema must keep as it was)."""
    return st.one_of(strategy, strategy, strategy, json_values)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    ms = draw(timestamps_ms)
    doc: dict[str, Any] = {}
    ts = draw(st.sampled_from(["canonical"] * 6 + ["no ms", "offset", "epoch"]))
    iso = S.iso_ms(ms)
    doc["@timestamp"] = {"canonical": iso, "no ms": iso[:19] + "Z", "offset": iso[:23] + "+00:00", "epoch": ms}[ts]
    fields: dict[str, str] = {}

    def maybe(key: str, value: st.SearchStrategy[Any]) -> None:
        if draw(st.booleans()):
            doc[key] = draw(value)

    trace = draw(any_id)
    span = draw(any_id)
    level = draw(st.sampled_from(["INFO", "WARN", "ERROR", "DEBUG", "I", "info"]))
    logger = draw(st.sampled_from(["com.shop.checkout.OrderService", "payments", "x", "shop.cart"]))
    thread = draw(st.sampled_from(["http-nio-8080-exec-12", "main", "pool-3-thread-1", "exec-1"]))
    if draw(st.booleans()):
        log: dict[str, Any] = {"level": draw(_string_or(st.just(level))), "logger": draw(_string_or(st.just(logger))),
                               "offset": draw(st.one_of(st.integers(0, 2**40), json_values)),
                               "file": draw(st.one_of(st.just({"path": "/pang/logs/app/x/app.log"}),
                                                      st.builds(lambda fp: {"path": "/pang/logs/app/x/app.log", "fingerprint": fp},
                                                                st.one_of(hex32, st.text(max_size=34))),
                                                      st.dictionaries(st.sampled_from(["path", "fingerprint", "inode"]), json_values)))}
        for k in draw(st.sets(st.sampled_from(sorted(log)))):
            del log[k]
        if draw(st.booleans()):
            log.update(draw(st.dictionaries(st.sampled_from(["origin", "syslog", "level"]), json_values, max_size=2)))
        doc["log"] = log if draw(st.integers(0, 9)) else draw(json_values)
        fields.update(level=level, logger=logger)
    for key, subs in (("service", ("name", "version", "environment")), ("host", ("name", "ip")),
                      ("agent", ("id", "name", "type", "version")), ("error", ("type", "message", "stack_trace"))):
        if draw(st.booleans()):
            obj = {s: draw(_string_or(st.text(max_size=12))) for s in draw(st.sets(st.sampled_from(subs)))}
            doc[key] = obj if draw(st.integers(0, 9)) else draw(json_values)
    stack = None
    if draw(st.booleans()):
        stack = "java.lang.IllegalStateException: order ORD-1A2B is bad\n\tat a.b.C(C.java:12)\n\tat d.E(E.java:3)"
        doc.setdefault("error", {})
        if isinstance(doc["error"], dict):
            doc["error"]["stack_trace"] = stack
    if draw(st.booleans()):
        ev = {k: v for k, v in {"dataset": "app", "action": draw(_string_or(st.just("order.placed"))),
                                "ingested": draw(st.one_of(st.builds(S.iso_ms, timestamps_ms), json_values))}.items()
              if draw(st.booleans())}
        doc["event"] = ev if draw(st.integers(0, 9)) else draw(json_values)
    if draw(st.booleans()):
        doc["trace"] = {"id": trace} if draw(st.integers(0, 5)) else draw(st.one_of(json_values, st.just({"id": trace, "x": 1})))
        fields["trace"] = trace
    if draw(st.booleans()):
        doc["span"] = {"id": span} if draw(st.integers(0, 5)) else draw(json_values)
        fields["span"] = span
    if draw(st.booleans()):
        doc["process"] = {"thread": {"name": thread}} if draw(st.integers(0, 5)) else draw(
            st.one_of(json_values, st.just({"thread": {"name": thread, "id": 7}, "pid": 1})))
        fields["thread"] = thread
    maybe("tags", st.one_of(st.lists(st.text(max_size=8), max_size=3), json_values))
    app = draw(st.dictionaries(st.sampled_from(["order_id", "amount", "customer_id", "qty", "nested", "x"]),
                               st.one_of(json_values, hex16, st.integers(0, 10**9).map(lambda n: f"ORD-{n:08X}")), max_size=5))
    if app or draw(st.booleans()):
        doc["app"] = app
    maybe("labels", json_values)
    if draw(st.integers(0, 9)):
        pieces = st.one_of(words, st.integers(0, 10**12).map(str), hex16, hex32, st.text(max_size=6),
                           st.sampled_from(_rendered(ms)), st.sampled_from(sorted(fields.values()) or ["-"]),
                           st.sampled_from([str(v) for v in app.values()] or ["-"]), reserved)
        message = "".join(draw(st.lists(pieces, max_size=12)))
        if stack is not None and draw(st.booleans()):
            message += "\n" + stack
        doc["message"] = message if draw(st.integers(0, 9)) else draw(json_values)
    doc_id = draw(any_id)
    log = doc.get("log")
    fp = log.get("file", {}).get("fingerprint") if isinstance(log, dict) and isinstance(log.get("file"), dict) else None
    if isinstance(fp, str) and type(log.get("offset")) is int and draw(st.integers(0, 3)):
        doc_id = file_event_id(fp, log["offset"])  # the agent's id, which the files do not store
    return doc_id, doc


def _hits(docs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    # OpenSearch gives back the JSON that was sent: the same values, as JSON parses them
    return [{"_id": i, "_source": orjson.loads(orjson.dumps(d))} for i, d in docs]


def _expected(docs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(h["_id"], h["_source"]) for h in _hits(docs)]


batches = st.lists(documents(), min_size=1, max_size=8)

# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_documents_round_trip_exactly(docs: list[tuple[str, dict[str, Any]]]) -> None:
    table = S.to_table(_hits(docs))
    assert table.schema == S.STORAGE_SCHEMA
    assert S.to_documents(table) == _expected(docs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_round_trip_through_a_parquet_file_and_the_duckdb_view(docs: list[tuple[str, dict[str, Any]]]) -> None:
    """As the archiver writes and as ``pang archive query`` / rehydrate read: the SQL decodes like Python."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part-0.parquet"
        with pq.ParquetWriter(path, S.STORAGE_SCHEMA, compression="zstd", **S.parquet_options()) as writer:
            writer.write_table(S.to_table(_hits(docs)))
        assert S.to_documents(pq.read_table(path)) == _expected(docs)
        assert _through_view(pads.dataset(tmp, format="parquet", schema=S.READ_SCHEMA)) == _expected(docs)


def _through_view(dataset: pads.Dataset) -> list[tuple[str, dict[str, Any]]]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'America/New_York'")  # the macros must not depend on the session's zone
        con.register("logs_stored", dataset)
        S.duckdb_setup(con)
        con.execute(S.duckdb_view("logs_stored"))
        columns = ", ".join(f'"{f.name}"' for f in S.SCHEMA)  # what rehydrate selects
        table = con.sql(f"SELECT {columns} FROM logs").to_arrow_table()
    finally:
        con.close()
    assert table.column_names == S.SCHEMA.names
    return S.to_documents(table)


@settings(max_examples=500, deadline=None)
@given(st.text(), st.data())
def test_messages_round_trip(message: str, data: st.DataObject) -> None:
    ms = data.draw(timestamps_ms)
    fields = {k: data.draw(st.one_of(st.none(), st.text(max_size=10), hex32)) for k in ("trace", "span", "logger", "thread", "level")}
    if data.draw(st.booleans()):
        message = data.draw(st.sampled_from(_rendered(ms))) + message
    if data.draw(st.booleans()):
        message += "".join(data.draw(st.lists(st.sampled_from([v for v in fields.values() if v] or ["x"]), max_size=3)))
    stack = message[len(message) - data.draw(st.integers(0, len(message))):] if data.draw(st.booleans()) else None
    extra_vars = S.split_text(data.draw(st.text(alphabet="ab12 ", max_size=20)) + message[:8])[1]
    if data.draw(st.booleans()):
        message += " trace_id=" + data.draw(hex32)
    template, variables, raw = S.encode_message(message, ms, fields, stack, extra_vars)
    assert S.decode_message(template, variables, ms, fields, stack, extra_vars, raw) == message


@given(st.text().filter(lambda t: not any("\x10" <= c <= "\x1f" for c in t)), json_values)
def test_templates_and_variables(text: str, value: Any) -> None:
    template, variables = S.split_text(text)
    assert S.join_text(template, variables) == text
    if variables is not None:
        assert all(v and v.isalnum() and any(c.isdigit() for c in v) for v in variables.split(S.SEP))
    # extra is JSON, which never holds the characters templates reserve (they are escaped)
    assert not any("\x10" <= c <= "\x1f" for c in orjson.dumps({"v": value, str(value): text}).decode())


# --- the layout, by example -----------------------------------------------------------------


def test_what_the_files_hold_for_a_typical_line() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    text = f"2029-06-01 10:00:00,123 INFO  [http-nio-8080-exec-3] com.shop.checkout.OrderService - Order placed order_id=ORD-1234ABCD trace={trace}"
    doc = {"@timestamp": "2029-06-01T10:00:00.123Z", "message": text,
           "log": {"level": "INFO", "logger": "com.shop.checkout.OrderService", "file": {"path": "/p/app.log"}, "offset": 42},
           "process": {"thread": {"name": "http-nio-8080-exec-3"}}, "trace": {"id": trace},
           "event": {"dataset": "app", "ingested": "2029-06-01T10:00:01.000Z"},
           "agent": {"id": "a1b2c3d4e5f60718", "name": "pang", "type": "pang", "version": "0.1.0"}, "app": {"order_id": "ORD-1234ABCD"}}
    doc_id = "d6ea4c7c6c17dd619a18a112cda57329"
    row = S.to_table([{"_id": doc_id, "_source": doc}]).to_pylist()[0]
    assert row["_id_bin"] == bytes.fromhex(doc_id) and row["_id_text"] is None
    assert row["trace"] == {"id_bin": bytes.fromhex(trace), "id_text": None}
    # the timestamp, level, thread, logger and trace id are stored once, in their own columns
    assert row["message_template"] == f"{S.TS_SPACE},{S.TS_MS} {S.LEVEL}  [{S.THREAD}] {S.LOGGER} - Order placed order_id=ORD-{S.VAR} trace={S.TRACE_ID}"
    assert row["message_vars"] == S.REF + "0"  # the same order id as app.order_id's variable
    assert row["extra_template"] == '{"app":{"order_id":"ORD-' + S.VAR + '"}}' and row["extra_vars"] == "1234ABCD"
    assert row["event"]["ingested"] == datetime(2029, 6, 1, 10, 0, 1, tzinfo=UTC)
    assert S.to_documents(S.to_table([{"_id": doc_id, "_source": doc}])) == [(doc_id, doc)]


# The layout of schema version 1 files.
_V1 = pa.schema([
    pa.field("@timestamp", pa.timestamp("ms", tz="UTC"), nullable=False), pa.field("_id", pa.string(), nullable=False),
    pa.field("message", pa.string()), pa.field("log", S.STORAGE_SCHEMA.field("log").type),
    pa.field("service", S.STORAGE_SCHEMA.field("service").type), pa.field("host", pa.struct([pa.field("name", pa.string())])),
    pa.field("event", pa.struct([pa.field("dataset", pa.string()), pa.field("action", pa.string())])),
    pa.field("trace", pa.struct([pa.field("id", pa.string())])), pa.field("error", S.STORAGE_SCHEMA.field("error").type),
    pa.field("tags", pa.list_(pa.string())), pa.field("extra", pa.string()),
])


def _v1_file_row() -> tuple[dict[str, Any], dict[str, Any]]:
    """A row as schema version 1 wrote it, and its document."""
    doc = {"@timestamp": "2029-06-01T09:59:59.999Z", "message": "old line 1", "log": {"level": "INFO"},
           "trace": {"id": "ab" * 16}, "event": {"dataset": "app", "ingested": "2029-06-01T10:00:00.500Z"},
           "agent": {"id": "x"}, "app": {"n": 1}}
    row = {"@timestamp": datetime(2029, 6, 1, 9, 59, 59, 999000, tzinfo=UTC), "_id": "old-1", "message": "old line 1",
           "log": {"level": "INFO", "logger": None, "offset": None, "file": None}, "service": None, "host": None,
           "event": {"dataset": "app", "action": None}, "trace": {"id": "ab" * 16}, "error": None, "tags": None,
           "extra": orjson.dumps({"event": {"ingested": "2029-06-01T10:00:00.500Z"}, "agent": {"id": "x"}, "app": {"n": 1}}).decode()}
    return row, doc


def test_view_reads_schema_version_1_files_next_to_newer_ones(tmp_path: Path) -> None:
    """Hours archived before the upgrade stay as they were (same count, so not archived again)."""
    row, old = _v1_file_row()
    (tmp_path / "hour=09").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=_V1), tmp_path / "hour=09" / "part-0.parquet")
    new = {"@timestamp": "2029-06-01T10:00:00.000Z", "message": "new line 2", "trace": {"id": "cd" * 16}}
    (tmp_path / "hour=10").mkdir()
    pq.write_table(S.to_table([{"_id": "new-2", "_source": new}]), tmp_path / "hour=10" / "part-0.parquet")
    dataset = pads.dataset(tmp_path, format="parquet", schema=S.READ_SCHEMA)
    assert sorted(_through_view(dataset)) == [("new-2", new), ("old-1", old)]
    assert sorted(S.to_documents(dataset.to_table())) == [("new-2", new), ("old-1", old)]


# The layout of schema version 2 files: no message_hex, no log.file.fingerprint, every _id stored.
_V2 = pa.schema([
    f if f.name != "log" else pa.field("log", pa.struct([*(g for g in f.type if g.name != "file"),
                                                         pa.field("file", pa.struct([pa.field("path", pa.string())]))]))
    for f in S.STORAGE_SCHEMA if f.name != "message_hex"
])


def _v2_table(doc_id: str, doc: dict[str, Any]) -> pa.Table:
    """A row as schema version 2 wrote it (``doc`` has no fingerprint and no 32-digit hex in its message)."""
    rows = S.to_table([{"_id": doc_id, "_source": doc}]).to_pylist()
    for row in rows:
        assert row.pop("message_hex") is None
        if row["log"] and row["log"]["file"]:
            assert row["log"]["file"].pop("fingerprint") is None
        row["_id_text"] = doc_id  # v2 stored every id
    return pa.Table.from_pylist(rows, schema=_V2)


def test_query_connect_on_a_local_archive_of_any_schema_versions(tmp_path: Path) -> None:
    """``pang archive query`` and rehydrate on a file:// archive: DuckDB's own reader, whatever files are there."""
    from pang.archive.query import connect
    from pang.settings import Settings

    old_row, old_doc = _v1_file_row()
    v2_doc = {"@timestamp": "2029-06-01T10:00:00.000Z", "message": "new line 2", "trace": {"id": "cd" * 16},
              "span": {"id": "ef" * 8}, "agent": {"id": "a"}, "process": {"thread": {"name": "main"}},
              "log": {"file": {"path": "/p/app.log"}, "offset": 7}}
    fp = "5dfbd3d12c4a3698aa2ca1af6a107b75"
    v3_doc = {"@timestamp": "2029-06-01T11:00:00.000Z", "message": "new line 3 trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
              "log": {"file": {"path": "/p/app.log", "fingerprint": fp}, "offset": 99}}
    v3_id = file_event_id(fp, 99)
    columns = ", ".join(f'"{f.name}"' for f in S.SCHEMA)
    paths = {"v1": "dataset=app/dt=2029-06-01/hour=09/part-0.parquet", "v2": "dataset=app/dt=2029-06-01/hour=10/part-0.parquet",
             "v3": "dataset=app/dt=2029-06-01/hour=11/part-0.parquet"}
    tables = {"v1": pa.Table.from_pylist([old_row], schema=_V1), "v2": _v2_table("new-2", v2_doc),
              "v3": S.to_table([{"_id": v3_id, "_source": v3_doc}])}
    docs = {"v1": ("old-1", old_doc), "v2": ("new-2", v2_doc), "v3": (v3_id, v3_doc)}
    for case in ("empty", "v1", "v2", "v3", "v1_v2", "v2_v3", "v1_v2_v3"):
        versions = [] if case == "empty" else case.split("_")
        root = tmp_path / case
        root.mkdir()
        for v in versions:
            (root / paths[v]).parent.mkdir(parents=True)
            pq.write_table(tables[v], root / paths[v])
        con = connect(Settings(archive_url=root.as_uri(), state_dir=tmp_path / "state"))
        try:
            table = con.sql(f'SELECT {columns}, hour FROM logs ORDER BY "_id"').to_arrow_table()
            assert table.column_names == [*S.SCHEMA.names, "hour"], case
            assert sorted(S.to_documents(table)) == sorted(docs[v] for v in versions), case
            assert con.sql("SELECT count(*) FROM logs WHERE dt = '2029-06-01' AND hour = 10").fetchall() == [(int("v2" in case),)]
            if "v3" in versions:  # the id the files do not hold, computed by pang's connection
                assert con.sql('SELECT "_id", log.file.fingerprint, log.offset FROM logs WHERE hour = 11').fetchall() == [(v3_id, fp, 99)]
        finally:
            con.close()


def test_the_agents_file_ids_are_not_stored_and_come_back() -> None:
    """_id = hash(fingerprint, offset) is left out of the files; any other id (spool, foreign) is kept."""
    fp = "5dfbd3d12c4a3698aa2ca1af6a107b75"
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    doc = {"@timestamp": "2029-06-01T10:00:00.123Z", "message": f"2029-06-01 10:00:00,123 INFO x - paid trace_id={trace}",
           "log": {"level": "INFO", "file": {"path": "/p/app.log", "fingerprint": fp}, "offset": 42}}
    hits = [{"_id": file_event_id(fp, 42), "_source": doc},  # the agent's id for this line
            {"_id": "agent-7-1700000000-12", "_source": doc},  # a spool id
            {"_id": file_event_id(fp, 43), "_source": doc}]  # not this line's: kept
    rows = S.to_table(hits).to_pylist()
    assert (rows[0]["_id_bin"], rows[0]["_id_text"]) == (None, None)
    assert (rows[1]["_id_bin"], rows[1]["_id_text"]) == (None, "agent-7-1700000000-12")
    assert rows[2]["_id_bin"] == bytes.fromhex(file_event_id(fp, 43))
    # a 32-digit hex variable of the message is stored as 16 bytes
    assert rows[0]["message_hex"] == bytes.fromhex(trace) and rows[0]["message_vars"].endswith(S.HEX)
    assert S.to_documents(S.to_table(hits)) == [(h["_id"], h["_source"]) for h in hits]


def test_timestamps_pang_does_not_write_are_kept_as_written() -> None:
    for ts, expected in (("2029-06-01T10:00:00Z", datetime(2029, 6, 1, 10, tzinfo=UTC)),
                         ("2029-06-01T12:00:00.5+02:00", datetime(2029, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)),
                         (1_906_624_800_000, datetime(2030, 6, 2, 10, tzinfo=UTC)),
                         ("0999-01-02T03:04:05.006Z", datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))):
        doc = {"@timestamp": ts, "message": f"at {ts} x"}
        table = S.to_table([{"_id": "a", "_source": doc}])
        assert table.column("@timestamp")[0].as_py() == expected
        assert S.to_documents(table) == [("a", doc)]
    assert S.canonical_ms("0999-01-02T03:04:05.006Z") is not None  # a 4-digit year, as DuckDB writes it


def test_schema_version_and_layout_constants() -> None:
    assert S.SCHEMA_VERSION == 3
    stored = {".".join(p) for p in _paths(S.STORAGE_SCHEMA)}
    assert set(S.DICTIONARY_COLUMNS) <= stored
    assert set(S.COLUMN_ENCODINGS) <= stored and not set(S.COLUMN_ENCODINGS) & set(S.DICTIONARY_COLUMNS)
    assert set(S.STATISTICS_COLUMNS) <= stored
    assert set(string.ascii_letters + string.digits).isdisjoint(S.VAR + S.SEP + S.REF + S.WHOLE)


def _paths(schema: pa.Schema) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(prefix: tuple[str, ...], t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            for f in t:
                walk((*prefix, f.name), f.type)
        else:
            out.append(prefix)

    for f in schema:
        walk((f.name,), f.type)
    return out
