"""Searching logs: one module behind ``pang search`` and the dashboards.

One page is ONE ``_search`` request carrying the hits, the exact total, the
histogram, the facets and the highlights, because a dashboard query must
answer within 1.2x of the node's own time. The user's text is parsed by
:mod:`pang.indexer.query` into an allow-listed query; it never reaches the
node as a query string or a script.

Facets are Kibana-like: a facet's counts ignore the filter on its own field
(with ``service=payment`` selected the service facet still shows the other
services), so the service/level/host filters go into ``post_filter`` and each
aggregation wraps the filters that apply to it. The total, the hits and the
histogram apply every filter, so the histogram's buckets sum to the total.

Paging: the first page needs no point in time (most searches never page, and
every PIT held open costs the node memory and counts against its limit of
open contexts). Its cursor records the timestamp of its last hit and the ids
shown at that millisecond; the second page opens a PIT, filters to
``@timestamp <= t`` minus those ids, and from there pages with
``search_after`` over ``[@timestamp desc, _index, _doc]``, which is stable
inside a PIT (pang's daily indices have one shard each). Documents that
arrive while paging with newer timestamps never show up in later pages, and
none that was there is skipped or repeated.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, SSLError, TransportError

from pang.indexer.client import client
from pang.indexer.naming import PREFIXES, index_for, pattern_for
from pang.indexer.query import QuerySyntaxError, parse_query
from pang.indexer.timerange import TimeRange
from pang.settings import Settings

__all__ = [
    "HIGHLIGHT_END", "HIGHLIGHT_START", "Bucket", "FACET_FIELDS", "Hit", "MAX_PAGE", "SearchError", "SearchPage",
    "SearchRequest", "SearchSyntaxError", "build_body", "follow", "highlight_segments", "histogram_interval",
    "search", "surrounding",
]

HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"
MAX_PAGE = 500
MAX_FILTER_VALUES = 100
FACET_SIZE = 20
FACET_FIELDS = ("service.name", "log.level", "host.name")
SEARCHABLE_DATASETS = ("app", "syslog", "rehydrated")
PIT_KEEP_ALIVE = "5m"
MAX_DAILY_INDICES = 31  # up to this many days, name the daily indices instead of the wildcard
FOLLOW_LAG = timedelta(seconds=30)  # how late (by its own timestamp) a document may become visible and still be followed
INTERVAL_LADDER = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
MAX_BUCKETS = 120

_FILTER_PATH = ",".join([
    "took", "timed_out", "pit_id", "_shards.failed", "_shards.failures", "hits.total.value",
    "hits.hits._index", "hits.hits._id", "hits.hits._source", "hits.hits.highlight", "hits.hits.sort", "aggregations",
])


class SearchError(Exception):
    """A search that could not be answered; ``str()`` is a message for people."""


class SearchSyntaxError(SearchError):
    """The query text is not a query; ``position`` is the 0-based character index of the problem."""

    def __init__(self, error: QuerySyntaxError) -> None:
        super().__init__(f"query syntax: {error}")
        self.position = error.position


@dataclass(frozen=True)
class SearchRequest:
    time: TimeRange
    text: str = ""
    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ("app",)
    size: int = 50


@dataclass(frozen=True)
class Hit:
    index: str
    id: str
    source: dict[str, Any]
    highlight: dict[str, list[str]] = field(default_factory=dict)
    sort: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int


@dataclass(frozen=True)
class SearchPage:
    total: int
    hits: list[Hit]
    histogram: list[Bucket]
    interval_seconds: int
    facets: dict[str, dict[str, int]]
    took_ms: int
    cursor: str | None


# --------------------------------------------------------------------------- pure parts


def histogram_interval(seconds: float) -> int:
    """The smallest interval of the ladder (1s ... 1d) giving at most 120 buckets; whole days beyond."""
    for step in INTERVAL_LADDER:
        if seconds / step <= MAX_BUCKETS:
            return step
    return 86400 * math.ceil(seconds / 86400 / MAX_BUCKETS)


def highlight_segments(fragment: str) -> list[tuple[str, bool]]:
    """``(text, is_match)`` pieces of a highlighted fragment, for rendering without markup injection."""
    out: list[tuple[str, bool]] = []
    rest = fragment
    while rest:
        start = rest.find(HIGHLIGHT_START)
        if start < 0:
            out.append((rest, False))
            break
        if start:
            out.append((rest[:start], False))
        end = rest.find(HIGHLIGHT_END, start + 1)
        if end < 0:
            end = len(rest)
        if end > start + 1:
            out.append((rest[start + 1:end], True))
        rest = rest[end + 1:]
    return [(text.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, ""), m) for text, m in out if text]


def _normalize_level(level: str) -> str:
    v = level.strip().upper()
    return "WARN" if v == "WARNING" else v


def _facet_filters(request: SearchRequest) -> dict[str, dict[str, Any]]:
    """field -> terms filter, for the facet fields the request filters on."""
    values = {
        "service.name": request.services,
        "log.level": tuple(_normalize_level(v) for v in request.levels),
        "host.name": request.hosts,
    }
    return {f: {"terms": {f: sorted(set(v))}} for f, v in values.items() if v}


def _time_filter(tr: TimeRange) -> dict[str, Any]:
    return {"range": {"@timestamp": {"gte": tr.start_ms, "lt": tr.end_ms, "format": "epoch_millis"}}}


def _and(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"filter": clauses}}


def build_body(
    request: SearchRequest,
    *,
    pit: str | None = None,
    after: list[Any] | None = None,
    upto_ms: int | None = None,
    exclude_ids: list[str] | None = None,
) -> dict[str, Any]:
    """The one ``_search`` body of a page (pure; raises :class:`SearchSyntaxError`)."""
    try:
        text_query = parse_query(request.text)
    except QuerySyntaxError as exc:
        raise SearchSyntaxError(exc) from None
    tr = request.time
    query: dict[str, Any] = {"bool": {"filter": [_time_filter(tr)]}}
    if "match_all" not in text_query:
        query["bool"]["must"] = [text_query]
    active = _facet_filters(request)
    post: list[dict[str, Any]] = list(active.values())
    if upto_ms is not None:  # paging restriction: applies to hits only, never to the counts
        post.append({"range": {"@timestamp": {"lte": upto_ms, "format": "epoch_millis"}}})
    if exclude_ids:
        post.append({"bool": {"must_not": [{"ids": {"values": exclude_ids}}]}})

    interval = histogram_interval(tr.seconds)
    histogram = {"date_histogram": {
        "field": "@timestamp", "fixed_interval": f"{interval}s", "min_doc_count": 0,
        "extended_bounds": {"min": tr.start_ms, "max": tr.end_ms - 1},
    }}

    def scoped(agg: dict[str, Any], skip: str | None) -> dict[str, Any]:
        clauses = [c for f, c in active.items() if f != skip]
        return {"filter": _and(clauses), "aggs": {"a": agg}} if clauses else agg

    aggs = {"histogram": scoped(histogram, None)}
    for f in FACET_FIELDS:
        aggs[f] = scoped({"terms": {"field": f, "size": FACET_SIZE}}, f)

    size = max(0, min(int(request.size), MAX_PAGE))
    body: dict[str, Any] = {
        "size": size,
        "query": query,
        "track_total_hits": True,
        "aggs": aggs,
        "sort": [{"@timestamp": {"order": "desc"}}] + ([{"_index": "asc"}, {"_doc": "asc"}] if pit else []),
    }
    if post:
        body["post_filter"] = _and(post)
    if request.text.strip():
        body["highlight"] = {
            "pre_tags": [HIGHLIGHT_START], "post_tags": [HIGHLIGHT_END], "require_field_match": True,
            "fields": {
                "message": {"number_of_fragments": 0},
                "error.message": {"number_of_fragments": 0},
                "error.stack_trace": {"fragment_size": 200, "number_of_fragments": 3},
            },
        }
    if pit:
        body["pit"] = {"id": pit, "keep_alive": PIT_KEEP_ALIVE}
    if after:
        body["search_after"] = after
    return body


def _indices(request: SearchRequest) -> str:
    """The daily indices the range touches (cheap for the node to resolve and skip), or the wildcard."""
    names: list[str] = []
    for dataset in dict.fromkeys(request.datasets):
        if dataset not in SEARCHABLE_DATASETS:
            raise SearchError(f"unknown dataset {dataset!r}; use one of {', '.join(SEARCHABLE_DATASETS)}")
        days = (request.time.end - timedelta(milliseconds=1)).date() - request.time.start.date()
        if dataset == "rehydrated" or days.days >= MAX_DAILY_INDICES:
            names.append(pattern_for(dataset))
            continue
        day = request.time.start
        while day.date() <= (request.time.end - timedelta(milliseconds=1)).date():
            names.append(index_for(dataset, day))
            day += timedelta(days=1)
    if not names:
        raise SearchError("no dataset to search; use app or syslog")
    return ",".join(names)


def _check(request: SearchRequest) -> None:
    for name, values in (("service", request.services), ("level", request.levels), ("host", request.hosts)):
        if len(values) > MAX_FILTER_VALUES:
            raise SearchError(f"too many {name} filters ({len(values)}); at most {MAX_FILTER_VALUES}")
        for v in values:
            if not isinstance(v, str) or not v or len(v) > 1024:
                raise SearchError(f"a {name} filter must be a non-empty text of at most 1024 characters")


def _fingerprint(request: SearchRequest) -> str:
    key = [request.time.start_ms, request.time.end_ms, request.text, sorted(request.services),
           sorted(_normalize_level(v) for v in request.levels), sorted(request.hosts), sorted(request.datasets)]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- cursors


@dataclass(frozen=True)
class _Cursor:
    fingerprint: str
    upto_ms: int
    ties: list[str]
    pit: str | None = None
    after: list[Any] | None = None
    shown: int = 0

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "fp": self.fingerprint, "t": self.upto_ms, "ties": self.ties, "pit": self.pit,
                          "after": self.after, "n": self.shown}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def decode(text: str, fingerprint: str) -> _Cursor:
        invalid = SearchError("the page cursor is not valid; start the search again")
        if not isinstance(text, str) or len(text) > 200_000:
            raise invalid
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cur = _Cursor(data["fp"], data["t"], data["ties"], data["pit"], data["after"], data["n"])
        except Exception:
            raise invalid from None
        ok = (
            isinstance(cur.fingerprint, str) and type(cur.upto_ms) is int and type(cur.shown) is int and cur.shown >= 0
            and isinstance(cur.ties, list) and len(cur.ties) <= MAX_PAGE and all(isinstance(t, str) for t in cur.ties)
            and (cur.pit is None or (isinstance(cur.pit, str) and len(cur.pit) < 100_000))
            and (cur.after is None or (isinstance(cur.after, list) and len(cur.after) == 3 and type(cur.after[0]) is int
                                       and isinstance(cur.after[1], str) and type(cur.after[2]) is int))
        )
        if not ok:
            raise invalid
        if cur.fingerprint != fingerprint:
            raise SearchError("this page cursor belongs to a different search (query, filters or time range changed); "
                              "start from the first page")
        return cur


# --------------------------------------------------------------------------- I/O


def _explain(exc: Exception, settings: Settings) -> SearchError:
    """A sentence for people from whatever the client raised."""
    url = settings.display_opensearch_url
    if isinstance(exc, ConnectionTimeout):
        return SearchError(f"search timed out after {settings.opensearch_timeout:g} s: narrow the time range or the query")
    if isinstance(exc, SSLError):
        return SearchError(f"TLS handshake with OpenSearch at {url} failed; check PANG_OPENSEARCH_CA_CERTS / _VERIFY_CERTS")
    if isinstance(exc, OSConnectionError):
        return SearchError(f"OpenSearch at {url} is not answering (is the stack up? `pang stack up`)")
    if isinstance(exc, TransportError):
        status = exc.status_code
        reason = _reason(exc)
        if status == 401:
            return SearchError(f"OpenSearch at {url} refused the credentials; check PANG_OPENSEARCH_USERNAME / _PASSWORD")
        if status == 403:
            return SearchError(f"OpenSearch at {url} does not allow this user to search these indices")
        if "search_context_missing" in json.dumps(exc.info, default=str) + str(exc.error):
            return SearchError("these results expired (more than 5 minutes since the last page); search again")
        if status == 429:
            return SearchError("OpenSearch is overloaded (too many requests); try again in a moment")
        if status in (502, 503, 504):
            return SearchError(f"OpenSearch at {url} is unavailable (HTTP {status}); try again in a moment")
        return SearchError(f"OpenSearch refused the search: {reason}" if reason else f"OpenSearch answered HTTP {status}")
    return SearchError(f"search failed: {type(exc).__name__}: {str(exc)[:300]}")


def _reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    err = info.get("error")
    if isinstance(err, dict):
        causes = err.get("root_cause") or []
        first = causes[0] if causes and isinstance(causes[0], dict) else err
        caused = err.get("caused_by") if isinstance(err.get("caused_by"), dict) else {}
        reason = first.get("reason") or caused.get("reason") or err.get("reason") or ""
        return str(reason)[:300]
    return str(err or exc.error or "")[:300]


def _call(settings: Settings, fn: Any, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except (TransportError, OSError) as exc:
        raise _explain(exc, settings) from exc


def _params() -> dict[str, str]:
    return {"ignore_unavailable": "true", "allow_no_indices": "true", "filter_path": _FILTER_PATH}


def _hits(answer: dict[str, Any]) -> list[Hit]:
    return [
        Hit(index=h["_index"], id=h["_id"], source=h.get("_source", {}), highlight=h.get("highlight", {}), sort=h.get("sort", []))
        for h in answer.get("hits", {}).get("hits", [])
    ]


def _agg(aggs: dict[str, Any], name: str) -> dict[str, Any]:
    agg = aggs.get(name, {})
    return agg.get("a", agg)


def _page_parts(answer: dict[str, Any]) -> tuple[list[Bucket], dict[str, dict[str, int]]]:
    shards = answer.get("_shards", {})
    if shards.get("failed") and shards.get("failures"):
        reason = (shards["failures"][0].get("reason") or {}).get("reason", "a shard failed")
        raise SearchError(f"OpenSearch could not search every index: {str(reason)[:300]}")
    aggs = answer.get("aggregations", {})
    histogram = [
        Bucket(datetime.fromtimestamp(b["key"] / 1000, UTC), int(b["doc_count"]))
        for b in _agg(aggs, "histogram").get("buckets", [])
    ]
    facets = {f: {str(b["key"]): int(b["doc_count"]) for b in _agg(aggs, f).get("buckets", [])} for f in FACET_FIELDS}
    return histogram, facets


def search(settings: Settings, request: SearchRequest, *, cursor: str | None = None) -> SearchPage:
    """A page of hits, newest first, with the exact total, the histogram and the facets, in one request.

    ``cursor`` (from the previous page) gives the next, older page; the page's own cursor is None at the end.
    """
    _check(request)
    es = client(settings)
    index = _indices(request)
    size = max(0, min(int(request.size), MAX_PAGE))
    if cursor is None:
        answer = _call(settings, es.search, index=index, body=build_body(request), params=_params())
        hits = _hits(answer)
        histogram, facets = _page_parts(answer)
        total = int(answer.get("hits", {}).get("total", {}).get("value", 0))
        next_cursor = None
        if size and len(hits) == size and total > len(hits):
            last = hits[-1].sort[0]
            ties = [h.id for h in hits if h.sort and h.sort[0] == last]
            next_cursor = _Cursor(_fingerprint(request), int(last), ties).encode()
        return SearchPage(total, hits, histogram, histogram_interval(request.time.seconds), facets,
                          int(answer.get("took", 0)), next_cursor)

    cur = _Cursor.decode(cursor, _fingerprint(request))
    pit = cur.pit
    if pit is None:
        opened = _call(settings, es.transport.perform_request, method="POST", url=f"/{index}/_search/point_in_time",
                       params={"keep_alive": PIT_KEEP_ALIVE, "ignore_unavailable": "true", "allow_no_indices": "true"})
        pit = opened["pit_id"]
    body = build_body(request, pit=pit, after=cur.after, upto_ms=cur.upto_ms, exclude_ids=cur.ties)
    params = {k: v for k, v in _params().items() if k != "ignore_unavailable" and k != "allow_no_indices"}
    answer = _call(settings, es.search, body=body, params=params)
    pit = answer.get("pit_id", pit)
    hits = _hits(answer)
    histogram, facets = _page_parts(answer)
    remaining = int(answer.get("hits", {}).get("total", {}).get("value", 0))  # the restricted total of this PIT
    shown = cur.shown + len(hits)
    next_cursor = None
    if size and len(hits) == size and shown < remaining:
        next_cursor = _Cursor(cur.fingerprint, cur.upto_ms, cur.ties, pit, hits[-1].sort, shown).encode()
    else:
        _close_pit(settings, pit)
    return SearchPage(sum(b.count for b in histogram), hits, histogram, histogram_interval(request.time.seconds),
                      facets, int(answer.get("took", 0)), next_cursor)


def _close_pit(settings: Settings, pit: str) -> None:
    try:
        client(settings).transport.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": [pit]})
    except Exception:
        pass  # it expires by itself after PIT_KEEP_ALIVE


# --------------------------------------------------------------------------- follow


def follow(
    settings: Settings,
    request: SearchRequest,
    *,
    poll_seconds: float = 1.0,
    stop: threading.Event | None = None,
) -> Iterator[Hit]:
    """Hits that arrive after the call, oldest first, each once, until ``stop`` is set.

    Each poll asks for documents at or after ``watermark - FOLLOW_LAG`` (the
    watermark is the newest timestamp seen, at least the start time), so a
    document indexed late still shows up if its own timestamp is at most
    ``FOLLOW_LAG`` older than the newest one; ids remembered over that window
    keep ties on the same millisecond and re-reads from being yielded twice.
    The request's time range is not used: following is open-ended.
    """
    stop = stop or threading.Event()
    es = client(settings)
    lag_ms = int(FOLLOW_LAG.total_seconds() * 1000)
    watermark = int(time.time() * 1000)
    seen: dict[str, int] = {}  # id -> timestamp ms, within the lag window
    first = True
    while not stop.is_set():
        low = watermark - lag_ms
        fresh: list[Hit] = []
        after: list[Any] | None = None
        while True:  # page through one poll's worth (rarely more than one page)
            body = _follow_body(request, low, after)
            answer = _call(settings, es.search, index=_follow_indices(request, low), body=body, params=_params())
            hits = _hits(answer)
            for h in hits:
                key = f"{h.index}/{h.id}"
                if key not in seen:
                    seen[key] = int(h.sort[0])
                    fresh.append(h)
            if len(hits) < MAX_PAGE or stop.is_set():
                break
            after = hits[-1].sort
        if not first:
            yield from fresh  # already oldest first
        first = False  # what was there when we started is not news
        if seen:
            watermark = max(watermark, max(seen.values()))
        floor = watermark - lag_ms
        seen = {k: t for k, t in seen.items() if t >= floor}
        stop.wait(poll_seconds)


def _follow_body(request: SearchRequest, low_ms: int, after: list[Any] | None) -> dict[str, Any]:
    try:
        text_query = parse_query(request.text)
    except QuerySyntaxError as exc:
        raise SearchSyntaxError(exc) from None
    filters: list[dict[str, Any]] = [{"range": {"@timestamp": {"gte": low_ms, "format": "epoch_millis"}}}]
    filters += list(_facet_filters(request).values())
    query: dict[str, Any] = {"bool": {"filter": filters}}
    if "match_all" not in text_query:
        query["bool"]["must"] = [text_query]
    body: dict[str, Any] = {
        "size": MAX_PAGE, "query": query, "track_total_hits": False,
        "sort": [{"@timestamp": {"order": "asc"}}, {"_index": "asc"}, {"_doc": "asc"}],
    }
    if request.text.strip():
        body["highlight"] = build_body(SearchRequest(time=request.time, text=request.text))["highlight"]
    if after:
        body["search_after"] = after
    return body


def _follow_indices(request: SearchRequest, low_ms: int) -> str:
    start = datetime.fromtimestamp(low_ms / 1000, UTC)
    end = max(datetime.now(UTC), start) + timedelta(hours=1)
    return _indices(SearchRequest(time=TimeRange(start, end), datasets=request.datasets))


# --------------------------------------------------------------------------- surrounding


def surrounding(settings: Settings, index: str, doc_id: str, *, before: int = 20, after: int = 20) -> list[Hit]:
    """The lines of the same file around a hit (same ``log.file.path``, ``host.name`` and agent), in file order.

    Lines are found by ``log.offset`` within a day either side of the hit's
    time, in one ``_msearch`` (lines before, lines after). A hit without a file
    and offset (syslog, for example) comes back alone.
    """
    before, after = max(0, min(before, MAX_PAGE)), max(0, min(after, MAX_PAGE))
    if not isinstance(index, str) or not _LOG_INDEX.fullmatch(index):
        # The name comes from the browser (a component id): anything but one of pang's daily log
        # indices would let a page visitor read other indices (.opendistro_security, _all, business rollups).
        raise SearchError("surrounding lines come only from pang's log indices (logs-app-, logs-syslog- or "
                          "rehydrated-YYYY.MM.DD)")
    es = client(settings)
    try:
        doc = es.get(index=index, id=doc_id)
    except NotFoundError:
        raise SearchError(f"no document {doc_id!r} in {index}") from None
    except (TransportError, OSError) as exc:
        raise _explain(exc, settings) from exc
    src = doc.get("_source", {})
    hit = Hit(index=doc["_index"], id=doc["_id"], source=src, highlight={}, sort=[])
    log = src.get("log") if isinstance(src.get("log"), dict) else {}
    path = (log.get("file") or {}).get("path") if isinstance(log.get("file"), dict) else None
    offset = log.get("offset")
    host = (src.get("host") or {}).get("name") if isinstance(src.get("host"), dict) else None
    if not isinstance(path, str) or type(offset) is not int:
        return [hit]
    same = [{"term": {"log.file.path": path}}]
    same.append({"term": {"host.name": host}} if isinstance(host, str) else {"bool": {"must_not": [{"exists": {"field": "host.name"}}]}})
    agent = (src.get("agent") or {}).get("id") if isinstance(src.get("agent"), dict) else None
    if isinstance(agent, str):
        same.append({"term": {"agent.id": agent}})
    ts = src.get("@timestamp")
    if isinstance(ts, str):
        same.append({"range": {"@timestamp": {"gte": f"{ts}||-1d", "lte": f"{ts}||+1d"}}})
    pattern = _pattern_of(index)

    def side(op: str, order: str, n: int) -> list[dict[str, Any]]:
        query = {"bool": {"filter": [*same, {"range": {"log.offset": {op: offset}}}]}}
        return [{"index": pattern, "ignore_unavailable": True, "allow_no_indices": True},
                {"size": n, "query": query, "sort": [{"log.offset": order}, {"_index": "asc"}]}]

    answer = _call(settings, es.msearch, body=[*side("lt", "desc", before), *side("gt", "asc", after)])
    sides: list[list[Hit]] = []
    for response in answer.get("responses", []):
        if "error" in response:
            raise SearchError(f"OpenSearch refused the search for surrounding lines: {str(response['error'])[:300]}")
        sides.append(_hits(response))
    lower, upper = (sides + [[], []])[:2]
    return [*reversed(lower[:before]), hit, *upper[:after]]


_LOG_INDEX = re.compile(
    "(?:" + "|".join(re.escape(PREFIXES[d]) for d in ("app", "syslog", "rehydrated")) + r")-[0-9]{4}\.[0-9]{2}\.[0-9]{2}"
)


def _pattern_of(index: str) -> str:
    """``logs-app-2026.11.24`` -> ``logs-app-*`` (the dataset's pattern); other names stay as they are."""
    for dataset, prefix in sorted(PREFIXES.items(), key=lambda kv: -len(kv[1])):
        if index.startswith(prefix + "-"):
            return pattern_for(dataset)
    return index
