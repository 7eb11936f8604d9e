"""The search API and `pang search` against the real node: filters, facets, time edges, paging, highlighting,
histogram, follow, surrounding lines and errors people can read.

Every test writes documents whose message holds its own random word and searches for that word, so tests
sharing the session's node never see each other's documents.
"""

from __future__ import annotations

import base64
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pang.indexer.client import client
from pang.indexer.naming import index_for
from pang.indexer.search import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    SearchError,
    SearchRequest,
    SearchSyntaxError,
    build_body,
    follow,
    highlight_segments,
    histogram_interval,
    search,
    surrounding,
)
from pang.indexer.timerange import TimeRange, parse_time_range
from pang.settings import Settings
from tests.helpers import free_port
from tests.test_stack import _env

BASE = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def put(settings: Settings, docs: list[tuple[str, dict[str, Any]]], dataset: str = "app") -> None:
    """Index (id, document) pairs into their daily indices and make them searchable."""
    ops: list[dict[str, Any]] = []
    for doc_id, doc in docs:
        ts = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        ops += [{"index": {"_index": index_for(dataset, ts), "_id": doc_id}}, doc]
    answer = client(settings).bulk(body=ops, refresh=True)
    assert not answer["errors"], answer


def doc(word: str, t: datetime, *, service: str = "shop", level: str = "INFO", host: str = "h1", text: str = "",
        **extra: Any) -> dict[str, Any]:
    return {"@timestamp": iso(t), "message": f"{text} {word}".strip(), "service": {"name": service},
            "log": {"level": level}, "host": {"name": host}, **extra}


# --------------------------------------------------------------------------- pure


def test_histogram_interval_gives_30_to_120_buckets() -> None:
    for seconds in [60, 5 * 60, 15 * 60, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400]:
        step = histogram_interval(seconds)
        assert 30 <= seconds / step <= 120, (seconds, step)
    assert histogram_interval(400 * 86400) % 86400 == 0 and 400 * 86400 / histogram_interval(400 * 86400) <= 120


def test_highlight_segments_split_matches_from_plain_text() -> None:
    frag = f"a [b]{HIGHLIGHT_START}declined{HIGHLIGHT_END} c {HIGHLIGHT_START}x{HIGHLIGHT_END}"
    assert highlight_segments(frag) == [("a [b]", False), ("declined", True), (" c ", False), ("x", True)]
    assert highlight_segments("plain") == [("plain", False)]
    assert highlight_segments(f"{HIGHLIGHT_START}open") == [("open", True)]  # unterminated: still no marker chars


def test_one_request_carries_hits_total_histogram_facets_and_highlight() -> None:
    tr = TimeRange(BASE, BASE + timedelta(hours=1))
    body = build_body(SearchRequest(time=tr, text="declined", services=("payment",), levels=("error",)))
    assert body["track_total_hits"] is True and body["highlight"]["pre_tags"] == [HIGHLIGHT_START]
    assert body["query"]["bool"]["filter"][0]["range"]["@timestamp"] == {"gte": tr.start_ms, "lt": tr.end_ms, "format": "epoch_millis"}
    assert body["post_filter"]["bool"]["filter"] == [{"terms": {"service.name": ["payment"]}}, {"terms": {"log.level": ["ERROR"]}}]
    aggs = body["aggs"]
    # the histogram applies every filter; each facet every filter but its own
    assert len(aggs["histogram"]["filter"]["bool"]["filter"]) == 2
    assert aggs["service.name"]["filter"]["bool"]["filter"] == [{"terms": {"log.level": ["ERROR"]}}]
    assert aggs["log.level"]["filter"]["bool"]["filter"] == [{"terms": {"service.name": ["payment"]}}]
    assert "pit" not in body  # the first page opens no point in time


# --------------------------------------------------------------------------- against the node



@pytest.mark.stack
def test_filters_and_facets(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    docs = []
    for i in range(60):
        svc = ("payment", "cart", "order")[i % 3]
        lvl = ("ERROR", "INFO", "WARN", "INFO", "DEBUG")[i % 5]
        docs.append((f"{unique}-{i}", doc(word, BASE + timedelta(seconds=i * 30), service=f"{svc}-{unique}", level=lvl, host=f"h{i % 4}")))
    put(stack_settings, docs)
    tr = TimeRange(BASE, BASE + timedelta(hours=1))
    src = [d for _i, d in docs]

    def expect(pred: Any) -> int:
        return sum(1 for d in src if pred(d))

    page = search(stack_settings, SearchRequest(time=tr, text=word, services=(f"payment-{unique}",), levels=("error", "Warn"), size=500))
    want = expect(lambda d: d["service"]["name"] == f"payment-{unique}" and d["log"]["level"] in ("ERROR", "WARN"))
    assert page.total == len(page.hits) == want > 0
    assert all(h.source["service"]["name"] == f"payment-{unique}" and h.source["log"]["level"] in ("ERROR", "WARN") for h in page.hits)
    stamps = [h.source["@timestamp"] for h in page.hits]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    # the service facet ignores the service filter (other services still counted), not the level filter
    assert page.facets["service.name"] == {
        f"{s}-{unique}": expect(lambda d, s=s: d["service"]["name"] == f"{s}-{unique}" and d["log"]["level"] in ("ERROR", "WARN"))
        for s in ("payment", "cart", "order")
    }
    assert page.facets["log.level"] == {
        lvl: n for lvl in ("ERROR", "INFO", "WARN", "DEBUG")
        if (n := expect(lambda d, lvl=lvl: d["service"]["name"] == f"payment-{unique}" and d["log"]["level"] == lvl))
    }
    assert sum(page.facets["host.name"].values()) == page.total
    # hosts and the query language agree with the filter arguments
    by_host = search(stack_settings, SearchRequest(time=tr, text=word, hosts=("h1", "h2"), size=0))
    assert by_host.total == expect(lambda d: d["host"]["name"] in ("h1", "h2")) and by_host.hits == []
    by_text = search(stack_settings, SearchRequest(time=tr, text=f"{word} (host:h1 OR host:h2)", size=0))
    assert by_text.total == by_host.total


@pytest.mark.stack
def test_time_range_is_half_open_at_the_edges(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    start, end = BASE + timedelta(hours=2), BASE + timedelta(hours=3)
    ms = timedelta(milliseconds=1)
    at = {"before": start - ms, "start": start, "after-start": start + ms, "before-end": end - ms, "end": end}
    put(stack_settings, [(f"{unique}-{k}", doc(word, t)) for k, t in at.items()])

    def ids(tr: TimeRange) -> set[str]:
        return {h.id.split("-", 1)[1] for h in search(stack_settings, SearchRequest(time=tr, text=word, size=50)).hits}

    assert ids(TimeRange(start, end)) == {"start", "after-start", "before-end"}
    assert ids(TimeRange(end, end + timedelta(hours=1))) == {"end"}  # the next range takes the end, once
    assert ids(TimeRange(start - timedelta(hours=1), start)) == {"before"}
    # the same through the parser's ISO times
    tr = parse_time_range(start=iso(start), end=iso(end))
    assert search(stack_settings, SearchRequest(time=tr, text=word)).total == 3


@pytest.mark.stack
def test_histogram_covers_the_range_and_sums_to_the_total(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    start = BASE + timedelta(hours=4)
    offsets = [0, 1, 2, 61, 300, 301, 1799, 3599]  # seconds into the hour; a gap in the middle
    put(stack_settings, [(f"{unique}-{i}", doc(word, start + timedelta(seconds=s), service="a" if i % 2 else "b"))
                         for i, s in enumerate(offsets)])
    tr = TimeRange(start, start + timedelta(hours=1))
    page = search(stack_settings, SearchRequest(time=tr, text=word, services=("a",)))
    assert page.total == 4 and sum(b.count for b in page.histogram) == page.total
    assert page.interval_seconds == 30 and 30 <= len(page.histogram) <= 121
    starts = [b.start for b in page.histogram]
    assert starts[0] <= start and starts[-1] + timedelta(seconds=page.interval_seconds) >= tr.end
    assert all(b - a == timedelta(seconds=30) for a, b in zip(starts, starts[1:]))  # empty buckets included
    assert sum(1 for b in page.histogram if b.count == 0) >= len(page.histogram) - 4


@pytest.mark.stack
def test_highlighting_marks_matches_only(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    t = BASE + timedelta(hours=5)
    put(stack_settings, [(f"{unique}-1", doc(word, t, text="[red]card[/red] payment declined by issuer for")),
                         (f"{unique}-2", doc(word, t + timedelta(seconds=1), text="payment approved"))])
    page = search(stack_settings, SearchRequest(time=TimeRange(t, t + timedelta(minutes=1)), text=f'{word} "payment declined"'))
    assert page.total == 1
    segments = highlight_segments(page.hits[0].highlight["message"][0])
    assert [s for s, m in segments if m] == ["payment", "declined", word]
    assert "".join(s for s, _m in segments) == page.hits[0].source["message"]  # whole message, nothing lost or added
    none = search(stack_settings, SearchRequest(time=TimeRange(t, t + timedelta(minutes=1)), text=f"service.name:shop {word}"))
    assert all(set(h.highlight) <= {"message"} for h in none.hits)


def _open_pits(settings: Settings) -> int:
    return len(client(settings).transport.perform_request("GET", "/_search/point_in_time/_all").get("pits", []))


@pytest.mark.stack
def test_paging_has_no_gaps_or_repeats_while_documents_arrive(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    start = datetime(2025, 3, 10, 23, 30, tzinfo=UTC)  # the range spans two daily indices
    tr = TimeRange(start, start + timedelta(hours=1))
    original: list[tuple[str, dict[str, Any]]] = []
    for i in range(53):  # groups of three share a millisecond, so page edges fall inside ties
        original.append((f"{unique}-o{i}", doc(word, start + timedelta(seconds=(i // 3) * 97, milliseconds=5))))
    syslog_twins = [(f"{unique}-s{i}", doc(word, start + timedelta(seconds=i * 97, milliseconds=5))) for i in range(0, 18, 4)]
    put(stack_settings, original)
    put(stack_settings, syslog_twins, dataset="syslog")  # same milliseconds in another index
    request = SearchRequest(time=tr, text=word, datasets=("app", "syslog"), size=10)
    expected = {i for i, _d in original + syslog_twins}

    pits_before = _open_pits(stack_settings)
    page = search(stack_settings, request)
    assert page.total == len(expected) and page.cursor is not None
    assert _open_pits(stack_settings) == pits_before  # the first page holds no point in time
    seen = [h.id for h in page.hits]
    # newer documents inside the range arrive after the first page...
    late_newer = [(f"{unique}-n{i}", doc(word, start + timedelta(minutes=55, seconds=i))) for i in range(15)]
    put(stack_settings, late_newer)
    pages = 1
    while page.cursor:
        page = search(stack_settings, request, cursor=page.cursor)
        seen += [h.id for h in page.hits]
        pages += 1
        if pages == 2:  # ...and older ones while the point in time is open
            put(stack_settings, [(f"{unique}-x{i}", doc(word, start + timedelta(seconds=1 + i))) for i in range(5)])
    assert len(seen) == len(set(seen)), "a document came twice"
    assert set(seen) == expected, f"missing {expected - set(seen)}, unexpected {set(seen) - expected}"
    assert pages == -(-len(expected) // 10)
    assert _open_pits(stack_settings) == pits_before  # closed after the last page
    # a cursor only serves the search it came from
    first = search(stack_settings, request)
    other = SearchRequest(time=tr, text=word, datasets=("app",), size=10)
    with pytest.raises(SearchError, match="different search"):
        search(stack_settings, other, cursor=first.cursor)
    with pytest.raises(SearchError, match="not valid"):
        search(stack_settings, request, cursor="not-a-cursor")
    # a point in time that is gone (expired after 5 idle minutes) asks for a new search
    second = search(stack_settings, request, cursor=first.cursor)
    assert second.cursor is not None
    pit = json.loads(base64.urlsafe_b64decode(second.cursor + "=" * (-len(second.cursor) % 4)))["pit"]
    client(stack_settings).transport.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": [pit]})
    with pytest.raises(SearchError, match="expired"):
        search(stack_settings, request, cursor=second.cursor)


@pytest.mark.stack
def test_follow_yields_new_hits_once_oldest_first(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    now = datetime.now(UTC)
    put(stack_settings, [(f"{unique}-old", doc(word, now - timedelta(seconds=5)))])  # there before: not news
    request = SearchRequest(time=parse_time_range("15m"), text=word)
    got: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for hit in follow(stack_settings, request, poll_seconds=0.2, stop=stop):
                got.append(hit.id)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(1.0)
    t = datetime.now(UTC)
    put(stack_settings, [(f"{unique}-b", doc(word, t + timedelta(milliseconds=1))),
                         (f"{unique}-a1", doc(word, t)), (f"{unique}-a2", doc(word, t)),  # same millisecond
                         (f"{unique}-other", doc("unrelated", t))])
    deadline = time.monotonic() + 15
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    put(stack_settings, [(f"{unique}-late", doc(word, t - timedelta(seconds=10)))])  # indexed late, within the lag
    while len(got) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.6)  # a few more polls: nothing may come twice
    stop.set()
    thread.join(timeout=10)
    assert not errors and not thread.is_alive()
    assert sorted(got[:2]) == [f"{unique}-a1", f"{unique}-a2"] and got[2:] == [f"{unique}-b", f"{unique}-late"]


@pytest.mark.stack
def test_surrounding_lines_come_from_the_same_file_in_order(stack_settings: Settings, unique: str) -> None:
    t = BASE + timedelta(hours=6)
    path = f"/pang/logs/app/{unique}/app.log"

    def line(i: int, host: str, p: str = path) -> tuple[str, dict[str, Any]]:
        return (f"{unique}-{host}-{p[-5:]}-{i}",
                doc(f"line{i}", t + timedelta(seconds=i), host=host, log={"level": "INFO", "offset": i * 100, "file": {"path": p}}))

    put(stack_settings, [line(i, "h1") for i in range(30)] + [line(i, "h2") for i in range(30)]
        + [line(i, "h1", path + ".1") for i in range(30)])
    got = surrounding(stack_settings, index_for("app", t), f"{unique}-h1-p.log-15", before=5, after=3)
    assert [h.source["log"]["offset"] for h in got] == [1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800]
    assert {(h.source["host"]["name"], h.source["log"]["file"]["path"]) for h in got} == {("h1", path)}
    near_start = surrounding(stack_settings, index_for("app", t), f"{unique}-h1-p.log-1", before=5, after=1)
    assert [h.source["log"]["offset"] for h in near_start] == [0, 100, 200]
    with pytest.raises(SearchError, match="no document"):
        surrounding(stack_settings, index_for("app", t), f"{unique}-missing")


@pytest.mark.stack
def test_errors_read_as_sentences(stack_settings: Settings, unique: str) -> None:
    tr = TimeRange(BASE, BASE + timedelta(hours=1))
    down = stack_settings.model_copy(update={"opensearch_url": f"http://127.0.0.1:{free_port(taken=set())}"})
    with pytest.raises(SearchError, match="is not answering") as info:
        search(down, SearchRequest(time=tr, text="x"))
    assert down.opensearch_url in str(info.value)
    # a server that accepts the connection and never answers: the read times out, every time
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = stack_settings.model_copy(update={"opensearch_url": f"http://127.0.0.1:{silent.getsockname()[1]}",
                                                 "opensearch_timeout": 0.2})
        with pytest.raises(SearchError, match=r"timed out after .* narrow the time range"):
            search(mute, SearchRequest(time=tr, text="x"))
    with pytest.raises(SearchSyntaxError, match="unclosed quote at character 3") as syntax:
        search(stack_settings, SearchRequest(time=tr, text='a "b'))
    assert syntax.value.position == 2
    # a value the node cannot use for the field's mapped type: its 400 becomes a sentence
    day = datetime(2025, 2, 1, 12, tzinfo=UTC)
    es = client(stack_settings)  # an index whose mapping made a field a number (pang's template keeps app.* keywords)
    if not es.indices.exists(index=index_for("app", day)):
        es.indices.create(index=index_for("app", day), body={"mappings": {"properties": {"app": {"properties": {"amount": {"type": "long"}}}}}})
    put(stack_settings, [(f"{unique}-n", doc(f"w{unique}", day, app={"amount": 12}))])
    with pytest.raises(SearchError, match="OpenSearch refused the search: .*abc"):
        search(stack_settings, SearchRequest(time=TimeRange(day, day + timedelta(minutes=1)), text="app.amount:abc"))
    with pytest.raises(SearchError, match="unknown dataset"):
        search(stack_settings, SearchRequest(time=tr, datasets=("metrics",)))


# --------------------------------------------------------------------------- the command line


def _cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pang.cli", "search", *args], env=_env(settings),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.stack
def test_cli_prints_hits_json_and_errors(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    t = BASE + timedelta(hours=7)
    put(stack_settings, [(f"{unique}-{i}", doc(word, t + timedelta(seconds=i), service="payment" if i % 2 else "cart",
                                               text="[bold]markup[/bold] declined" if i == 3 else "ok"))
                         for i in range(8)])
    window = ["--from", iso(t), "--to", iso(t + timedelta(minutes=1))]
    as_json = _cli(stack_settings, word, *window, "--service", "payment", "--json")
    assert as_json.returncode == 0, as_json.stderr
    lines = [json.loads(x) for x in as_json.stdout.splitlines()]  # nothing but JSON documents on stdout
    assert [d["_id"] for d in lines] == [f"{unique}-{i}" for i in (7, 5, 3, 1)]
    assert all(d["_index"] == index_for("app", t) and d["service"]["name"] == "payment" for d in lines)

    human = _cli(stack_settings, f"{word} declined", *window, "--limit", "5")
    assert human.returncode == 0, human.stderr
    out = human.stdout.splitlines()
    assert len(out) == 2 and "[bold]markup[/bold] declined" in out[0] and "payment" in out[0]  # markup printed as text
    assert out[-1].startswith("1 of 1 hits (took ")
    limited = _cli(stack_settings, word, *window, "--limit", "3")
    assert limited.stdout.splitlines()[-1].startswith("3 of 8 hits")

    bad = _cli(stack_settings, f"{word} (", *window)
    assert bad.returncode == 2 and "pang: error: query syntax:" in bad.stderr and "Traceback" not in bad.stderr
    bad_time = _cli(stack_settings, word, "--since", "5x")
    assert bad_time.returncode == 2 and "not a duration" in bad_time.stderr
    down = {**_env(stack_settings), "PANG_OPENSEARCH_URL": f"http://127.0.0.1:{free_port(taken=set())}"}
    gone = subprocess.run([sys.executable, "-m", "pang.cli", "search", word], env=down, capture_output=True, text=True, timeout=60)
    assert gone.returncode == 1 and "is not answering" in gone.stderr and "Traceback" not in gone.stderr


@pytest.mark.stack
def test_cli_follow_tails_new_hits_until_ctrl_c(stack_settings: Settings, unique: str) -> None:
    word = f"w{unique}"
    now = datetime.now(UTC)
    put(stack_settings, [(f"{unique}-old", doc(word, now - timedelta(seconds=30)))])
    proc = subprocess.Popen([sys.executable, "-m", "pang.cli", "search", word, "--since", "5m", "--follow", "--json"],
                            env=_env(stack_settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        assert json.loads(lines.get(timeout=30))["_id"] == f"{unique}-old"  # the latest page first
        time.sleep(1.5)  # the first poll has run
        put(stack_settings, [(f"{unique}-new", doc(word, datetime.now(UTC)))])
        assert json.loads(lines.get(timeout=30))["_id"] == f"{unique}-new"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lines.empty()
