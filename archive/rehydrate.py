"""Rehydrate: load archived rows back into OpenSearch so old logs can be searched again.

Rows go to ``rehydrated-YYYY.MM.DD`` (by their own time) with their original
``_id``, so rehydrating the same range twice changes nothing, and a rehydrated
document never mixes with the live daily indices' retention.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import orjson
import pyarrow as pa

from pang.archive.query import connect
from pang.archive.schema import SCHEMA, to_documents
from pang.indexer.client import client, connection
from pang.indexer.naming import index_for, pattern_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action


class RehydrateError(RuntimeError):
    pass


def rehydrate(settings: Settings, start: datetime, end: datetime, *, where: str | None = None,
              batch: int = 5000, on_rows: Callable[[int], None] | None = None) -> int:
    """Index archived rows of ``[start, end)`` (and ``where``, DuckDB SQL) into ``rehydrated-*``; returns the count."""
    columns = ", ".join(f'"{f.name}"' for f in SCHEMA)
    sql = (
        f"SELECT {columns} FROM logs WHERE dataset IN ('app', 'syslog') AND dt BETWEEN ? AND ? "  # logs, not rollups
        'AND "@timestamp" >= ? AND "@timestamp" < ?'
        + (f" AND ({where})" if where else "")
        + ' ORDER BY "@timestamp"'
    )
    con = connect(settings)
    bulk = BulkClient(connection(settings))
    total = 0
    try:
        reader = con.sql(sql, params=[f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}", start, end]).to_arrow_reader(batch)
        for record_batch in reader:

            docs = to_documents(pa.Table.from_batches([record_batch]))
            actions = [
                encode_action(index_for("rehydrated", datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00"))), doc_id, orjson.dumps(d))
                for doc_id, d in docs
            ]
            result = bulk.post(actions)
            if result.rejected or result.retry:
                raise RehydrateError(f"{len(result.rejected)} rows refused, {len(result.retry)} to retry: {result.rejected[:1]}")
            total += len(actions)
            if on_rows:
                on_rows(len(actions))
    finally:
        con.close()
        bulk.close()
    if total:  # searchable at once: the point is to look at these rows again
        client(settings).indices.refresh(index=pattern_for("rehydrated"), params={"ignore_unavailable": "true"})
    return total
