"""Per-minute business counts: computed from the logs by aggregation, kept as rollups in ``metrics-business-*``.

The logs hold every ``order.placed`` line for days; the model needs months of
per-minute counts. So each minute is counted once, by OpenSearch (a ``filters``
aggregation with one filter per signal, each with a 1-minute
``date_histogram``: one request per range chunk, never a document scan), and
the counts are kept as small documents with long retention. The logs can then
age out and be archived while the history stays.

A rollup document is ``{"@timestamp": minute, "event": {"dataset": "business",
"kind": "metric"}, "business": {"metric": name, "count": n, "window": "1m"}}``
with ``_id`` ``<name>:<minute ISO>`` in the UTC day's ``metrics-business-*``
index, so writing a minute again (a restart, a re-computed late minute)
overwrites it. Only counts are stored; a ratio signal (``payment_failure_ratio``
= ``payment_failures/payments``) is derived when read, and a minute whose
denominator is 0 has no ratio value rather than 0.

Reads and writes are chunked so that one answer stays well under the node's
``search.max_buckets`` and one ``_bulk`` body under a few MB; writes are
pre-encoded bytes through :class:`pang.shippers.sink.bulk.BulkClient`.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pang.indexer.client import client, connection
from pang.indexer.naming import index_for, pattern_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, BulkError
from pang.steady.signals import Signal

MINUTE = timedelta(minutes=1)
BUCKET_BUDGET = 40_000  # buckets per answer; the node refuses above search.max_buckets (65,535 by default)
MAX_CHUNK = timedelta(days=7)
BULK_DOCS = 10_000  # rollup documents per _bulk request (~1.8 MB)
WRITE_ATTEMPTS = 6
SENDERS = 2  # _bulk requests in flight while the next body is encoded


class RollupError(RuntimeError):
    """OpenSearch could not count or store rollups; ``str()`` says why in one line."""


# --- time helpers ---------------------------------------------------------------------------------


def utc_minute(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime floored to its minute (naive means UTC)."""
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return t.replace(second=0, microsecond=0)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _from_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def minutes_between(start: datetime, end: datetime) -> Iterator[datetime]:
    t = utc_minute(start)
    end = utc_minute(end)
    while t < end:
        yield t
        t += MINUTE


def _chunks(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    t = start
    while t < end:
        yield t, min(end, t + size)
        t += size


def _chunk_size(series: int) -> timedelta:
    minutes = max(60, BUCKET_BUDGET // max(1, series))
    return min(MAX_CHUNK, timedelta(minutes=minutes))


def _daily(datasets: str | Iterable[str], start: datetime, end: datetime) -> str:
    """The daily indices of the datasets covering ``[start, end)``, comma-joined (missing ones are ignored)."""
    out = []
    for dataset in [datasets] if isinstance(datasets, str) else datasets:
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        names = []
        while day < end:
            names.append(index_for(dataset, day))
            day += timedelta(days=1)
        out.append(",".join(names) if len(names) <= 64 else pattern_for(dataset))
    return ",".join(out)


# --- which counts a set of signals needs ------------------------------------------------------------


def count_signals(signals: Iterable[Signal], among: Iterable[Signal] | None = None) -> dict[str, str]:
    """``name -> event.action`` of every count the signals need (a ratio needs its numerator and denominator).

    A ratio's parts are looked up by name in ``among`` (default: ``signals`` themselves).
    """
    signals = list(signals)
    by_name = {s.name: s for s in (list(among) if among is not None else signals)}
    needed: dict[str, str] = {}
    for s in signals:
        if s.action:
            needed[s.name] = s.action
            continue
        for part in (s.numerator, s.denominator):
            base = by_name.get(part or "")
            if base is None or not base.action:
                raise ValueError(f"signal {s.name}: {part!r} is not a count signal (ratios divide two counts)")
            needed[base.name] = base.action
    return needed


def with_ratios(counts: Mapping[str, Mapping[datetime, float]], signals: Iterable[Signal]) -> dict[str, dict[datetime, float]]:
    """The requested signals' series: counts as they are, ratios divided minute by minute.

    A minute where the denominator is 0 or either count is missing has no ratio value.
    """
    out: dict[str, dict[datetime, float]] = {}
    for s in signals:
        if s.action:
            out[s.name] = dict(counts.get(s.name, {}))
            continue
        num, den = counts.get(s.numerator or "", {}), counts.get(s.denominator or "", {})
        out[s.name] = {m: num[m] / d for m, d in den.items() if d and m in num}
    return out


# --- computing from the logs ---------------------------------------------------------------------------


def compute_rollups(
    settings: Settings, start: datetime, end: datetime, signals: Iterable[Signal], *, datasets: Iterable[str] | None = None,
) -> dict[str, dict[datetime, int]]:
    """Per-minute counts of every count signal (and ratio parts) over ``[start, end)``, from the logs.

    The logs are ``logs-app-*`` unless ``steady_log_datasets`` (or ``datasets``) says otherwise.

    Every minute of the range has a value: a minute without a matching document
    is 0 (the caller asks only for complete minutes). One aggregation request
    per chunk of the range; a partial answer (failed shards, timeout) raises
    :class:`RollupError` instead of passing lost documents off as a drop.
    """
    start, end = utc_minute(start), utc_minute(end)
    log_sets = list(datasets if datasets is not None else settings.steady_log_datasets)
    actions = count_signals(signals)
    out: dict[str, dict[datetime, int]] = {name: {} for name in actions}
    if not actions or start >= end:
        return out
    es = client(settings)
    for lo, hi in _chunks(start, end, _chunk_size(len(actions))):
        body = {
            "size": 0,
            "track_total_hits": False,
            "query": {"bool": {"filter": [
                {"range": {"@timestamp": {"gte": _ms(lo), "lt": _ms(hi), "format": "epoch_millis"}}},
                {"terms": {"event.action": sorted(set(actions.values()))}},
            ]}},
            "aggs": {"s": {
                "filters": {"filters": {name: {"term": {"event.action": action}} for name, action in actions.items()}},
                "aggs": {"m": {"date_histogram": {
                    "field": "@timestamp", "fixed_interval": "1m", "min_doc_count": 1,
                    "hard_bounds": {"min": _ms(lo), "max": _ms(hi)},  # max is exclusive
                }}},
            }},
        }
        answer = _search(es, _daily(log_sets, lo, hi), body)
        buckets = ((answer.get("aggregations") or {}).get("s") or {}).get("buckets") or {}
        for name in actions:
            series = out[name]
            for minute in minutes_between(lo, hi):
                series[minute] = 0
            for b in (buckets.get(name) or {}).get("m", {}).get("buckets", ()):
                series[_from_ms(b["key"])] = int(b["doc_count"])
    return out


def _search(es: Any, index: str, body: dict[str, Any], what: str = "count business events") -> dict[str, Any]:
    try:
        answer = es.search(index=index, body=body, params={
            "ignore_unavailable": "true", "allow_no_indices": "true", "request_cache": "true",
        })
    except Exception as exc:
        raise RollupError(f"cannot {what}: {_short(exc)}") from None
    shards = answer.get("_shards") or {}
    if answer.get("timed_out") or shards.get("failed"):
        reason = ""
        failures = shards.get("failures") or []
        if failures:
            reason = ": " + str((failures[0].get("reason") or {}).get("reason", ""))[:200]
        raise RollupError(f"partial answer from OpenSearch ({shards.get('failed', 0)} shard(s) failed{reason}); counts not trusted")
    return answer


def _short(exc: Exception) -> str:
    from opensearchpy.exceptions import ConnectionError as OSConnectionError, ConnectionTimeout

    if isinstance(exc, ConnectionTimeout):
        return "OpenSearch did not answer in time (PANG_OPENSEARCH_TIMEOUT)"
    if isinstance(exc, OSConnectionError):
        return "OpenSearch is not answering (is it running? see PANG_OPENSEARCH_URL)"
    info = getattr(exc, "info", None)
    if isinstance(info, dict):
        err = info.get("error")
        if isinstance(err, dict):
            return f"{err.get('type', '')}: {str(err.get('reason', ''))[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def log_coverage(settings: Settings, signals: Iterable[Signal], *, datasets: Iterable[str] | None = None) -> tuple[datetime, datetime] | None:
    """The first and last minute holding a business event in the logs, or ``None`` without any."""
    actions = sorted(set(count_signals(signals).values()))
    body = {
        "size": 0, "track_total_hits": False,
        "query": {"terms": {"event.action": actions}},
        "aggs": {"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}},
    }
    patterns = ",".join(pattern_for(d) for d in (datasets if datasets is not None else settings.steady_log_datasets))
    answer = _search(client(settings), patterns, body)
    aggs = answer.get("aggregations") or {}
    first, last = (aggs.get("first") or {}).get("value"), (aggs.get("last") or {}).get("value")
    if first is None or last is None:
        return None
    return utc_minute(_from_ms(first)), utc_minute(_from_ms(last))


# --- storing --------------------------------------------------------------------------------------------


def _doc_id(name: str, minute: datetime) -> str:
    return f"{name}:{minute:%Y-%m-%dT%H:%MZ}"


class _Encoder:
    """Rollup ``_bulk`` actions as bytes; the parts that repeat per signal are encoded once."""

    def __init__(self) -> None:
        self._metric: dict[str, bytes] = {}

    def action(self, name: str, minute: datetime, count: int) -> bytes:
        metric = self._metric.get(name)
        if metric is None:
            metric = self._metric[name] = orjson.dumps(name)
        ts = f"{minute:%Y-%m-%dT%H:%M}:00Z".encode()
        index = index_for("business", minute).encode()
        doc_id = orjson.dumps(_doc_id(name, minute))
        return (
            b'{"index":{"_index":"%s","_id":%s}}\n'
            b'{"@timestamp":"%s","event":{"dataset":"business","kind":"metric"},'
            b'"business":{"metric":%s,"count":%d,"window":"1m"}}\n'
        ) % (index, doc_id, ts, metric, count)


def write_points(settings: Settings, points: Iterable[tuple[str, datetime, int]], *, refresh: bool = True) -> int:
    """Store ``(name, minute, count)`` rollups, streaming; returns how many were written.

    Two requests are in flight while the next body is encoded, so the node
    indexes while Python encodes (months of minutes in well under a minute).
    """
    bulk = BulkClient(connection(settings), maxsize=SENDERS)
    enc = _Encoder()
    written = 0
    in_flight: list[Future[int]] = []
    batch: list[bytes] = []
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="pang-rollups") as pool:
        try:
            for name, minute, count in points:
                batch.append(enc.action(name, utc_minute(minute), int(count)))
                if len(batch) >= BULK_DOCS:
                    if len(in_flight) >= SENDERS:
                        written += in_flight.pop(0).result()
                    in_flight.append(pool.submit(_post, bulk, batch))
                    batch = []
            if batch:
                in_flight.append(pool.submit(_post, bulk, batch))
            for future in in_flight:
                written += future.result()
        finally:
            for future in in_flight:
                future.cancel()
            pool.shutdown(wait=True)
            bulk.close()
    if refresh and written:
        refresh_rollups(settings)
    return written


def refresh_rollups(settings: Settings) -> None:
    """Make rollups just written visible to reads (the indices refresh every few seconds by themselves)."""
    try:
        client(settings).indices.refresh(index=pattern_for("business"), params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    except Exception as exc:
        raise RollupError(f"rollups written but not refreshed: {_short(exc)}") from None


def write_rollups(settings: Settings, rollups: Mapping[str, Mapping[datetime, float]], *, refresh: bool = True) -> int:
    """Store per-minute counts (``name -> minute -> count``) in ``metrics-business-*``; idempotent by id."""
    return write_points(
        settings, ((name, minute, int(n)) for name, series in rollups.items() for minute, n in sorted(series.items())),
        refresh=refresh,
    )


def _post(bulk: BulkClient, actions: list[bytes]) -> int:
    """One batch, retrying the items (or the request) OpenSearch asks to send again."""
    pending = actions
    for attempt in range(WRITE_ATTEMPTS):
        try:
            result = bulk.post(pending)
        except BulkError as exc:
            if not exc.retryable or attempt == WRITE_ATTEMPTS - 1:
                raise RollupError(f"cannot store rollups: {exc}") from None
            time.sleep(min(8.0, 0.25 * 2**attempt))
            continue
        if result.rejected:
            _, status, reason = result.rejected[0]
            raise RollupError(f"OpenSearch refused {len(result.rejected)} rollup(s) ({status}): {reason[:200]}")
        if not result.retry:
            return len(actions)
        pending = [pending[i] for i in result.retry]
        time.sleep(min(8.0, 0.25 * 2**attempt))
    raise RollupError(f"OpenSearch kept refusing {len(pending)} rollup(s) as busy; try again later")


# --- reading --------------------------------------------------------------------------------------------


def read_counts(settings: Settings, start: datetime, end: datetime, names: Iterable[str]) -> dict[str, dict[datetime, float]]:
    """Stored counts of ``names`` over ``[start, end)``; minutes without a rollup are absent (unknown, not 0)."""
    start, end = utc_minute(start), utc_minute(end)
    names = sorted(set(names))
    out: dict[str, dict[datetime, float]] = {name: {} for name in names}
    if not names or start >= end:
        return out
    es = client(settings)
    for lo, hi in _chunks(start, end, _chunk_size(len(names))):
        body = {
            "size": 0,
            "track_total_hits": False,
            "query": {"bool": {"filter": [
                {"range": {"@timestamp": {"gte": _ms(lo), "lt": _ms(hi), "format": "epoch_millis"}}},
                {"terms": {"business.metric": names}},
            ]}},
            "aggs": {"s": {
                "terms": {"field": "business.metric", "size": len(names)},
                "aggs": {"m": {
                    "date_histogram": {"field": "@timestamp", "fixed_interval": "1m", "min_doc_count": 1},
                    "aggs": {"n": {"max": {"field": "business.count"}}},
                }},
            }},
        }
        answer = _search(es, _daily("business", lo, hi), body, "read rollups")
        for sb in ((answer.get("aggregations") or {}).get("s") or {}).get("buckets", ()):
            series = out.get(sb["key"])
            if series is None:
                continue
            for b in sb["m"]["buckets"]:
                value = b["n"]["value"]
                if value is not None:
                    series[_from_ms(b["key"])] = float(value)
    return out


def read_rollups(settings: Settings, start: datetime, end: datetime, signals: Iterable[Signal]) -> dict[str, dict[datetime, float]]:
    """Every requested signal's per-minute values over ``[start, end)`` from ``metrics-business-*`` (ratios derived)."""
    signals = list(signals)
    return with_ratios(read_counts(settings, start, end, count_signals(signals)), signals)


def latest_rollup(settings: Settings, names: Iterable[str]) -> datetime | None:
    """The last minute with a stored rollup of any of ``names`` (where a restarted runner resumes)."""
    body = {
        "size": 0, "track_total_hits": False,
        "query": {"terms": {"business.metric": sorted(set(names))}},
        "aggs": {"last": {"max": {"field": "@timestamp"}}},
    }
    value = ((_search(client(settings), pattern_for("business"), body, "read rollups").get("aggregations") or {}).get("last") or {}).get("value")
    return None if value is None else utc_minute(_from_ms(value))


# --- history from the generator (the demo) -------------------------------------------------------------


def backfill_from_generator(
    settings: Settings, start: datetime, end: datetime, seed: int | None = None, *, signals: Iterable[Signal] | None = None,
) -> int:
    """Write the traffic generator's exact per-minute counts for ``[start, end)`` as rollups; returns documents written.

    The generator's counts equal what its logs hold, so this history and the
    rollups later computed from the shipped logs agree. A configured signal
    gets the generator's series whose ``event.action`` it counts.
    """
    from pang import traffic
    from pang.steady.signals import signals_from

    seed = traffic.DEFAULT_SEED if seed is None else seed
    wanted = count_signals(signals if signals is not None else signals_from(settings))
    by_action = {action: name for name, action in wanted.items()}
    rename = {gen: by_action[action] for gen, action in traffic.SIGNALS.items() if action in by_action}
    model = traffic.model_for(settings)
    points = (
        (rename[gen], minute, n)
        for minute, gen, n in traffic.rollups(utc_minute(start), utc_minute(end), seed, model=model)
        if gen in rename
    )
    return write_points(settings, points)
