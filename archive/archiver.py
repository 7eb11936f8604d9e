"""Archiving closed hours: OpenSearch -> Parquet (zstd, sorted by time) -> the object store, exactly once.

A window is archived from one point in time: its exact count and its rows
come from the same snapshot, and the manifest is written only when the rows
written equal that count. Names are deterministic (``part-0.parquet`` ...), so
a second run replaces objects instead of adding copies; a run killed midway
leaves either the old objects or none (writes are atomic; an interrupted S3
multipart upload is aborted and never visible) and no manifest, so the next
run does the window again. A window whose count in OpenSearch no longer
matches its manifest (late documents) is archived again.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from pang.archive.layout import Window, hour_floor, parse_window_key
from pang.archive.schema import SCHEMA_VERSION, STORAGE_SCHEMA, compression_options, parquet_options, to_table
from pang.archive.store import ObjectStore, S3Store, open_store
from pang.indexer.windows import hourly_counts, read_window
from pang.settings import Settings

# Logs, and the business rollups of the steady state (long retention: the archive keeps them past the index).
LOG_DATASETS = ("app", "syslog", "business")


@dataclass
class WindowResult:
    window: Window
    rows: int
    bytes: int
    seconds: float


@dataclass
class RunResult:
    archived: list[WindowResult] = field(default_factory=list)
    skipped: int = 0  # already archived with the same count
    expired: int = 0


class CountMismatch(RuntimeError):
    pass


def manifests(store: ObjectStore) -> dict[Window, dict[str, Any]]:
    """Every archived window and its manifest."""
    out: dict[Window, dict[str, Any]] = {}
    for key, _size in store.list():
        if key.endswith("/_manifest.json"):
            window = parse_window_key(key)
            data = store.get_bytes(key)
            if window and data:
                out[window] = orjson.loads(data)
    return out


def archived_check(settings: Settings) -> Callable[[str, datetime, int], bool]:
    """For retention: is this hour archived with exactly this many rows?"""
    done = {(w.dataset, w.start): m.get("rows") for w, m in manifests(open_store(settings)).items()}
    return lambda dataset, hour, count: done.get((dataset, hour)) == count


def pending_windows(
    settings: Settings,
    store: ObjectStore,
    *,
    datasets: Iterable[str] = LOG_DATASETS,
    grace: timedelta,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> tuple[list[tuple[Window, int]], int]:
    """Closed windows (their end plus ``grace`` is past) that have no manifest or a stale count."""
    now = now or datetime.now(UTC)
    done = manifests(store)
    todo: list[tuple[Window, int]] = []
    skipped = 0
    for ds in datasets:
        for hour, count in sorted(hourly_counts(settings, ds, start, end).items()):
            window = Window(ds, hour)
            if window.end + grace > now:
                continue
            manifest = done.get(window)
            if manifest and manifest.get("rows") == count:
                skipped += 1
                continue
            todo.append((window, count))
    return todo, skipped


def archive_window(
    settings: Settings,
    store: ObjectStore,
    window: Window,
    *,
    zstd_level: int = 3,
    row_group_rows: int = 128 * 1024,
    part_rows: int = 4_000_000,
    on_rows: Callable[[int], None] | None = None,
) -> WindowResult:
    """Write one window's parts and then its manifest; raises :class:`CountMismatch` if rows are missing."""
    started = time.monotonic()
    read = read_window(settings, window.dataset, window.start, window.end)
    parts: list[dict[str, Any]] = []
    rows = 0
    min_ts = max_ts = None
    with tempfile.TemporaryDirectory(prefix="pang-archive-") as tmp:
        writer: pq.ParquetWriter | None = None
        part_path: Path | None = None
        part_rows_now = 0

        def close_part() -> None:
            nonlocal writer, part_path, part_rows_now
            if writer is None or part_path is None:
                return
            writer.close()
            key = window.part(len(parts))
            digest = hashlib.sha256(part_path.read_bytes()).hexdigest()
            size = part_path.stat().st_size
            store.put_file(key, part_path)
            parts.append({"key": key, "rows": part_rows_now, "bytes": size, "sha256": digest})
            part_path.unlink()
            writer, part_path, part_rows_now = None, None, 0

        buffer: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal writer, part_path, part_rows_now, rows, min_ts, max_ts
            if not buffer:
                return
            table = to_table(buffer)
            buffer.clear()
            if writer is None:
                part_path = Path(tmp) / f"part-{len(parts)}.parquet"
                # dictionaries for keywords and templates, delta encoding for times, statistics where
                # a filter can use them, sorted by @timestamp (see pang.archive.schema)
                writer = pq.ParquetWriter(
                    part_path, STORAGE_SCHEMA, **compression_options(zstd_level), **parquet_options(),
                )
            writer.write_table(table, row_group_size=row_group_rows)
            ts = table.column("@timestamp")
            first, last = ts[0].as_py(), ts[-1].as_py()
            min_ts = first if min_ts is None else min(min_ts, first)
            max_ts = last if max_ts is None else max(max_ts, last)
            rows += table.num_rows
            part_rows_now += table.num_rows
            if on_rows:
                on_rows(table.num_rows)
            if part_rows_now >= part_rows:
                close_part()

        for hit in read.hits:
            buffer.append(hit)
            if len(buffer) >= row_group_rows:
                flush()
        flush()
        close_part()
    if rows != read.total:
        raise CountMismatch(f"{window}: wrote {rows} rows, OpenSearch counted {read.total}; not marked archived")
    # Parts of an earlier, larger run of this window that this run did not overwrite.
    keep = {p["key"] for p in parts}
    stale = [k for k, _ in store.list(window.prefix) if k.endswith(".parquet") and k not in keep]
    store.delete(stale)
    manifest = {
        "dataset": window.dataset,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "rows": rows,
        "min_timestamp": min_ts.isoformat() if min_ts else None,
        "max_timestamp": max_ts.isoformat() if max_ts else None,
        "schema_version": SCHEMA_VERSION,
        "parts": parts,
        "archived_at": datetime.now(UTC).isoformat(),
    }
    store.put_bytes(window.manifest, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return WindowResult(window, rows, sum(p["bytes"] for p in parts), time.monotonic() - started)


def run(
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    datasets: Iterable[str] = LOG_DATASETS,
    grace: timedelta | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunResult:
    """Archive every closed, not yet archived window in ``[start, end)``."""
    store = open_store(settings)
    if isinstance(store, S3Store):
        store.abort_stale_uploads()
    grace = grace if grace is not None else timedelta(seconds=settings.archive_grace_seconds)
    todo, skipped = pending_windows(settings, store, datasets=datasets, grace=grace,
                                    start=hour_floor(start) if start else None, end=end)
    result = RunResult(skipped=skipped)
    from pang.archive.lifecycle import expire_local

    result.expired = expire_local(settings, store)
    for i, (window, count) in enumerate(todo):
        if progress:
            progress(str(window), i, count)
        result.archived.append(archive_window(settings, store, window, zstd_level=settings.archive_zstd_level))
    return result
