"""DuckDB over the archive, with nothing downloaded at run time.

``logs_stored`` holds the rows as the files store them
(:data:`pang.archive.schema.READ_SCHEMA`: messages as templates and
variables, binary ids; older files' columns too), with the hive partitions
``dataset``, ``dt`` and ``hour``. A local archive is read by DuckDB's own
Parquet reader; an S3 archive is opened as a pyarrow dataset registered in
DuckDB, so pyarrow's own S3 filesystem does the reading and DuckDB never needs
its httpfs extension (which it would try to download).

The view ``logs`` over it has the columns people expect
(:data:`pang.archive.schema.SCHEMA`): ``message``, ``_id``, ``trace.id``,
``span.id`` and ``extra`` are rebuilt by the SQL macros of
:data:`pang.archive.schema.DUCKDB_MACROS` and, for the ``_id`` of file events
that the files do not store, a Python function registered on the connection
(only when a query reads them);
every other column is passed through. Filters and projections go through the
view into the scan, so ``WHERE dt = '2026-11-24' AND hour = 10`` reads only
that hour's files.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pang.archive.schema import duckdb_setup, duckdb_view
from pang.archive.store import FileStore, open_store
from pang.settings import Settings

PARTITIONS = pa.schema([("dataset", pa.string()), ("dt", pa.string()), ("hour", pa.int32())])


def dataset(settings: Settings) -> ds.Dataset:
    """The archive's files as a pyarrow dataset: stored columns plus the hive partitions."""
    fs, root = open_store(settings).arrow()
    from pang.archive.schema import READ_SCHEMA

    return ds.dataset(
        root, filesystem=fs, format="parquet",
        schema=pa.schema([*READ_SCHEMA, *PARTITIONS]),  # also for an empty archive, and older files
        partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
        exclude_invalid_files=False,  # names starting with _ or . (manifests, temp files) are skipped
    )


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``logs`` view over the archive (and ``logs_stored``, the rows as stored)."""
    con = duckdb.connect()
    con.execute("SET autoload_known_extensions = false")  # never try to download anything
    con.execute("SET autoinstall_known_extensions = false")
    duckdb_setup(con)
    columns = _register_stored(con, settings)
    con.execute(duckdb_view("logs_stored", "logs", partitions=tuple(PARTITIONS.names), columns=columns))
    return con


def _register_stored(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, str] | None:
    """``logs_stored``: the archive's rows; returns its columns' types (None: all of READ_SCHEMA).

    A local archive is read by DuckDB's own Parquet reader, which reads only the
    struct fields a query uses (a count by ``service.name`` over a day: ~10x
    faster than through a pyarrow dataset); ``union_by_name`` lets files of
    older schema versions sit next to newer ones. An S3 archive goes through
    the pyarrow dataset (DuckDB would need its httpfs extension).
    """
    store = open_store(settings)
    if isinstance(store, FileStore):
        files = (store.root / "**" / "*.parquet").as_posix().replace("'", "''")
        try:
            con.execute(
                f"CREATE VIEW logs_stored AS SELECT * FROM read_parquet('{files}', hive_partitioning = true, "
                "union_by_name = true, hive_types = {'dataset': VARCHAR, 'dt': VARCHAR, 'hour': INTEGER})"
            )
            return {name: type_ for name, type_, *_ in con.execute("DESCRIBE logs_stored").fetchall()}
        except duckdb.IOException:  # no file yet: the empty dataset below has the columns
            con.execute("DROP VIEW IF EXISTS logs_stored")
    con.register("logs_stored", dataset(settings))
    return None


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` against the archive; returns column names and rows."""
    con = connect(settings)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return names, cur.fetchall()
    finally:
        con.close()
