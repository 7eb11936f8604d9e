"""DuckDB over the archive, with nothing downloaded at run time.

The archive is opened as a pyarrow dataset (hive partitions ``dataset``,
``dt``, ``hour``) and registered in DuckDB as the view ``logs``: DuckDB pushes
filters and projections into it, so ``WHERE dt = '2026-11-24' AND hour = 10``
reads only that hour's files. pyarrow's own S3 filesystem does the reading, so
DuckDB never needs its httpfs extension (which it would try to download).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pang.archive.store import open_store
from pang.settings import Settings

PARTITIONS = pa.schema([("dataset", pa.string()), ("dt", pa.string()), ("hour", pa.int32())])


def dataset(settings: Settings) -> ds.Dataset:
    fs, root = open_store(settings).arrow()
    from pang.archive.schema import SCHEMA

    return ds.dataset(
        root, filesystem=fs, format="parquet",
        schema=pa.schema([*SCHEMA, *PARTITIONS]),  # also for an empty archive
        partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
        exclude_invalid_files=False,  # names starting with _ or . (manifests, temp files) are skipped
    )


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``logs`` view over the archive."""
    con = duckdb.connect()
    con.execute("SET autoload_known_extensions = false")  # never try to download anything
    con.execute("SET autoinstall_known_extensions = false")
    con.register("logs", dataset(settings))
    return con


def query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` against the archive; returns column names and rows."""
    con = connect(settings)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return names, cur.fetchall()
    finally:
        con.close()
