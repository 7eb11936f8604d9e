"""Metrics input: host metrics from this machine (real psutil) and Prometheus scrapes of real HTTP servers.

The Prometheus servers run in this process on 127.0.0.1: prometheus_client's own
``start_http_server`` over a private registry with Tomcat-like metrics, and a
plain ``http.server`` that answers hand-written expositions and misbehaves on
purpose (500, garbage, oversized, slow, dripping, hanging up).
"""

from __future__ import annotations

import http.server
import itertools
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pang.indexer.templates import ECS_BASE, METRICS
from pang.shippers.source.metrics import (
    PSEUDO_DISKS,
    RESERVED_ROOTS,
    HostMetrics,
    PrometheusScraper,
    ScrapeError,
    exposition_to_documents,
    flatten_to_nested,
    iso_timestamp,
    metric_path,
    nest,
    resolve_paths,
)

NOW = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone.utc)
ENVELOPE = {"@timestamp", "event", "metricset", "host", "service", "labels"}


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        node = node[part]
    return node


def metric_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """A document's metric values by dotted path (the envelope left out)."""
    return {".".join(p): v for p, v in leaves({k: v for k, v in doc.items() if k not in ENVELOPE})}


def assert_well_formed(doc: dict[str, Any]) -> None:
    """Nested objects only (no dotted keys, no empty keys), and it survives JSON."""
    for path, _ in leaves(doc):
        for part in path:
            assert part and "." not in part and part.strip(), path
    assert orjson.loads(orjson.dumps(doc)) == doc


# --------------------------------------------------------------------------------------------
# Host metrics, real psutil
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_rounds() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    metrics = HostMetrics(period=10, host_name="test-host")
    first = metrics.collect(NOW)
    time.sleep(0.3)  # enough clock ticks for a CPU delta (100 Hz per core)
    second = metrics.collect(NOW + timedelta(seconds=10))
    assert not metrics.errors
    return first, second


def by_set(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["metricset"]["name"] == name]


def test_cpu_document_appears_on_the_second_collect(host_rounds):
    first, second = host_rounds
    assert by_set(first, "cpu") == []
    for name in ("memory", "load"):
        assert len(by_set(first, name)) == len(by_set(second, name)) == 1
    assert len(by_set(second, "cpu")) == 1


def test_envelope(host_rounds):
    first, second = host_rounds
    assert {d["@timestamp"] for d in first} == {"2026-11-24T10:00:00.123Z"}
    assert {d["@timestamp"] for d in second} == {"2026-11-24T10:00:10.123Z"}
    for doc in first + second:
        assert doc["event"] == {"dataset": "metrics", "module": "system"}
        assert doc["metricset"]["period"] == 10000
        assert doc["host"] == {"name": "test-host"}
        assert set(doc) == {"@timestamp", "event", "metricset", "host", "system"}
        assert_well_formed(doc)


def test_cpu_values(host_rounds):
    (doc,) = by_set(host_rounds[1], "cpu")
    cpu = doc["system"]["cpu"]
    cores = psutil.cpu_count()
    assert cpu["cores"] == cores
    assert 0 <= cpu["total"]["norm"]["pct"] <= 1
    assert 0 <= cpu["total"]["pct"] <= cores
    assert cpu["total"]["pct"] == pytest.approx(cpu["total"]["norm"]["pct"] * cores, abs=1e-3)
    states = [s for s in psutil.cpu_times()._fields if s not in ("guest", "guest_nice")]
    assert {"user", "system", "idle"} <= set(states)
    if hasattr(psutil.cpu_times(), "iowait"):
        assert "iowait" in cpu
    assert sum(cpu[s]["norm"]["pct"] for s in states) == pytest.approx(1, abs=0.01)
    busy = 1 - cpu["idle"]["norm"]["pct"] - cpu.get("iowait", {"norm": {"pct": 0}})["norm"]["pct"]
    assert cpu["total"]["norm"]["pct"] == pytest.approx(busy, abs=0.01)


def test_memory_values(host_rounds):
    (doc,) = by_set(host_rounds[1], "memory")
    mem = doc["system"]["memory"]
    assert mem["total"] == psutil.virtual_memory().total > 0
    assert mem["used"]["bytes"] + mem["free"] == mem["total"]
    assert 0 < mem["used"]["pct"] <= 1 and 0 < mem["actual"]["used"]["pct"] <= 1
    assert 0 < mem["actual"]["free"] <= mem["total"]
    assert mem["actual"]["used"]["bytes"] <= mem["used"]["bytes"]  # "actual" leaves the page cache out
    assert 0 <= mem["swap"]["used"]["pct"] <= 1


def test_load_values(host_rounds):
    (doc,) = by_set(host_rounds[1], "load")
    load = doc["system"]["load"]
    cores = psutil.cpu_count()
    assert load["cores"] == cores
    for window in ("1", "5", "15"):
        assert 0 <= load[window] < 100 * cores
        assert load["norm"][window] == pytest.approx(load[window] / cores, abs=1e-3)


def test_diskio_skips_pseudo_devices(host_rounds):
    docs = by_set(host_rounds[1], "diskio")
    counters = psutil.disk_io_counters(perdisk=True) or {}
    real = {n for n, c in counters.items() if any(c) and not any(re.fullmatch(p.replace("*", ".*"), n) for p in PSEUDO_DISKS)}
    assert {d["system"]["diskio"]["name"] for d in docs} == real
    for doc in docs:
        io = doc["system"]["diskio"]
        for key in ("read", "write"):
            assert isinstance(io[key]["count"], int) and io[key]["count"] >= 0
            assert isinstance(io[key]["bytes"], int) and io[key]["bytes"] >= 0


def test_filesystem_values(host_rounds):
    docs = by_set(host_rounds[1], "filesystem")
    mounts = [d["system"]["filesystem"]["mount_point"] for d in docs]
    assert "/" in mounts and len(mounts) == len(set(mounts))
    for doc in docs:
        fs = doc["system"]["filesystem"]
        assert fs["total"] > 0 and 0 <= fs["available"] <= fs["free"] <= fs["total"]
        assert fs["used"]["bytes"] + fs["free"] == fs["total"]
        assert 0 <= fs["used"]["pct"] <= 1
        assert fs["type"] not in ("proc", "sysfs", "tmpfs", "cgroup", "cgroup2", "devpts", "squashfs")


def test_network_interfaces(host_rounds):
    docs = by_set(host_rounds[1], "network")
    names = {d["system"]["network"]["name"] for d in docs}
    assert names and "lo" not in names
    for doc in docs:
        net = doc["system"]["network"]
        for direction in ("in", "out"):
            assert set(net[direction]) == {"bytes", "packets", "errors", "dropped"}
            assert all(isinstance(v, int) and v >= 0 for v in net[direction].values())
    if "lo" in psutil.net_io_counters(pernic=True):
        with_lo = HostMetrics(include_loopback=True, metricsets=["network"]).collect(NOW)
        assert "lo" in {d["system"]["network"]["name"] for d in with_lo}


def test_host_metrics_refuses_naive_time_and_unknown_sets():
    with pytest.raises(ValueError, match="timezone"):
        HostMetrics().collect(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown metricsets"):
        HostMetrics(metricsets=["cpu", "gpu"])
    assert iso_timestamp(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-01-01T00:00:00.000Z"


# --------------------------------------------------------------------------------------------
# Prometheus: prometheus_client's own server, Tomcat-like metrics
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tomcat() -> Iterator[dict[str, Any]]:
    registry = CollectorRegistry()
    requests = Counter("tomcat_requestCount", "Requests", ["name"], registry=registry)
    busy = Gauge("tomcat_currentThreadBusy", "Busy threads", ["name"], registry=registry)
    fullgc = Counter("jvm_gc_fullgc_time", "Full GC time (ms)", ["name"], registry=registry)
    latency = Histogram("http_server_requests_seconds", "Latency", registry=registry)
    requests.labels("http-nio-8080").inc(1234)
    requests.labels("ajp-nio-8009").inc(7)
    busy.labels("http-nio-8080").set(12)
    busy.labels("ajp-nio-8009").set(0)
    fullgc.labels("G1 Old Generation").inc(250)
    latency.observe(0.25)
    latency.observe(0.5)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}/metrics", "requests": requests}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_scrape_tomcat_groups_by_label_set(tomcat):
    scraper = PrometheusScraper(tomcat["url"], service="shop", timeout=5, max_bytes=1 << 20, host_name="web-1", period=15)
    docs = scraper.scrape(NOW)
    for doc in docs:
        assert_well_formed(doc)
        assert doc["@timestamp"] == "2026-11-24T10:00:00.123Z"
        assert doc["event"] == {"dataset": "metrics", "module": "prometheus"}
        assert doc["metricset"] == {"name": "prometheus", "period": 15000}
        assert doc["service"] == {"name": "shop"} and doc["host"] == {"name": "web-1"}
    by_labels = {tuple(sorted(d.get("labels", {}).items())): metric_fields(d) for d in docs}
    assert by_labels == {
        (("name", "http-nio-8080"),): {"tomcat.requestCount": 1234, "tomcat.currentThreadBusy": 12},
        (("name", "ajp-nio-8009"),): {"tomcat.requestCount": 7, "tomcat.currentThreadBusy": 0},
        (("name", "G1 Old Generation"),): {"jvm.gc.fullgc.time": 250},
        # `http` is an ECS object (http.request.bytes is a long): Prometheus's http_* go under prometheus.metrics.
        (): {"prometheus.metrics.http.server.requests.seconds.sum": 0.75, "prometheus.metrics.http.server.requests.seconds.count": 2},
    }
    # Integral values are ints (mapped long -> double), the rest floats.
    assert all(isinstance(v, int) for d in by_labels.values() for k, v in d.items() if not k.endswith(".sum"))
    assert scraper.stats.buckets_skipped == 15 and scraper.stats.documents == 4 and not scraper.stats.failures

    tomcat["requests"].labels("http-nio-8080").inc(6)  # a live server: the next scrape sees the change
    docs = scraper.scrape(NOW + timedelta(seconds=15))
    (http_doc,) = [d for d in docs if d.get("labels") == {"name": "http-nio-8080"}]
    assert http_doc["tomcat"]["requestCount"] == 1240
    assert scraper.stats.scrapes == 2


# --------------------------------------------------------------------------------------------
# Prometheus: hand-written expositions and misbehaving answers from a plain http.server
# --------------------------------------------------------------------------------------------

HISTOGRAMS = """\
# HELP rpc_duration_seconds RPC latency
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{method="get",le="0.1"} 3
rpc_duration_seconds_bucket{method="get",le="1"} 5
rpc_duration_seconds_bucket{method="get",le="+Inf"} 6
rpc_duration_seconds_sum{method="get"} 2.5
rpc_duration_seconds_count{method="get"} 6
# TYPE rpc_duration_seconds_created gauge
rpc_duration_seconds_created{method="get"} 1.7e+09
# TYPE queue_wait_seconds summary
queue_wait_seconds{quantile="0.5"} 0.01
queue_wait_seconds{quantile="0.99"} 0.2
queue_wait_seconds_sum 12.5
queue_wait_seconds_count 1000
"""

NONFINITE = """\
# TYPE temperature_celsius gauge
temperature_celsius{sensor="a"} NaN
temperature_celsius{sensor="b"} +Inf
temperature_celsius{sensor="c"} -Inf
temperature_celsius{sensor="d"} 21.5
up 1
"""

CONFLICTS = """\
a_b{x="1"} 1
a_b_c{x="2"} 2
jvm_memory_bytes 200
jvm_memory_bytes_used 100
host_name 3
prometheus_metrics_host_name 4
__weird__name 5
"""

OPENMETRICS = """\
# TYPE tomcat_requestCount counter
tomcat_requestCount_total{name="http"} 17
tomcat_requestCount_created{name="http"} 1.7e+09
# TYPE jvm_threads gauge
jvm_threads 42
# EOF
"""

TEXT = "text/plain; version=0.0.4; charset=utf-8"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def answer(self, status: int, body: bytes, content_type: str = TEXT) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path
        if path == "/histograms":
            self.answer(200, HISTOGRAMS.encode())
        elif path == "/nonfinite":
            self.answer(200, NONFINITE.encode())
        elif path == "/conflicts":
            self.answer(200, CONFLICTS.encode())
        elif path == "/openmetrics":
            self.answer(200, OPENMETRICS.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
        elif path.startswith("/size/"):  # a valid exposition of exactly N bytes
            n = int(path.rsplit("/", 1)[1])
            self.answer(200, b"up 1\n" + b"#" * (n - 6) + b"\n")
        elif path == "/chunked-big":  # no Content-Length: the limit must hold while reading
            self.send_response(200)
            self.send_header("Content-Type", TEXT)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(64):
                    chunk = b"# padding " + b"x" * 1000 + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client hung up, as it should
        elif path == "/500":
            self.answer(500, b"internal error\nwith a second line\n", "text/plain")
        elif path == "/garbage":
            self.answer(200, b"<html><body>Not metrics</body></html>\n", "text/html")
        elif path == "/latin1":
            self.answer(200, "temp\xe9rature 1\n".encode("latin-1"))
        elif path == "/slow":  # headers only after 1 s
            time.sleep(1.0)
            self.answer(200, b"up 1\n")
        elif path == "/drip":  # every byte on time, the whole body not
            self.send_response(200)
            self.send_header("Content-Type", TEXT)
            self.send_header("Content-Length", "4000")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"#" * 99 + b"\n")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif path == "/hangup":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.answer(404, b"no such page\n", "text/plain")


class EdgeServer(http.server.ThreadingHTTPServer):
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hanging up on purpose are fine
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def edge() -> Iterator[str]:
    server = EdgeServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def scraper(url: str, **kw: Any) -> PrometheusScraper:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_bytes", 1 << 20)
    return PrometheusScraper(url, service="svc", host_name="h", **kw)


def fields_by_labels(docs: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    for doc in docs:
        assert_well_formed(doc)
    return {tuple(sorted(d.get("labels", {}).items())): metric_fields(d) for d in docs}


def test_histograms_keep_sum_and_count_and_skip_buckets(edge):
    s = scraper(f"{edge}/histograms")
    assert fields_by_labels(s.scrape(NOW)) == {
        (("method", "get"),): {"rpc.duration.seconds.sum": 2.5, "rpc.duration.seconds.count": 6},
        (): {"queue.wait.seconds.sum": 12.5, "queue.wait.seconds.count": 1000},
    }
    assert s.stats.buckets_skipped == 5  # 3 buckets, 2 quantiles
    assert s.stats.created_skipped == 1


def test_histogram_buckets_on_request(edge):
    docs = scraper(f"{edge}/histograms", buckets=True).scrape(NOW)
    got = fields_by_labels(docs)
    assert got[(("le", "0.1"), ("method", "get"))] == {"rpc.duration.seconds.bucket": 3}
    assert got[(("le", "+Inf"), ("method", "get"))] == {"rpc.duration.seconds.bucket": 6}
    # a quantile sits on the summary's own name, which sum/count make an object: it becomes `.value`
    assert got[(("quantile", "0.99"),)] == {"queue.wait.seconds.value": 0.2}
    assert got[()] == {"queue.wait.seconds.sum": 12.5, "queue.wait.seconds.count": 1000}
    assert len(docs) == 7


def test_nan_and_infinities_are_dropped_and_counted(edge):
    s = scraper(f"{edge}/nonfinite")
    assert fields_by_labels(s.scrape(NOW)) == {
        (("sensor", "d"),): {"temperature.celsius": 21.5},
        (): {"up": 1},
    }
    assert s.stats.nonfinite_dropped == 3
    assert b"NaN" not in orjson.dumps(s.scrape(NOW))


def test_name_conflicts_are_resolved_once_per_scrape(edge):
    s = scraper(f"{edge}/conflicts")
    assert fields_by_labels(s.scrape(NOW)) == {
        # a_b is a number and (because of a_b_c, in another label set) an object: it moves to
        # a.b.value in every document of the scrape, so the field has one type in the index.
        (("x", "1"),): {"a.b.value": 1},
        (("x", "2"),): {"a.b.c": 2},
        (): {
            "jvm.memory.bytes.value": 200,
            "jvm.memory.bytes.used": 100,
            # host_name would overwrite host.name: moved, and then it shares its path with
            # prometheus_metrics_host_name; both are kept, in the order of their names.
            "prometheus.metrics.host.name.value": 3,
            "prometheus.metrics.host.name.value_2": 4,
            "prometheus.metrics.__weird__name": 5,  # a leading "_" would be an OpenSearch metadata name
        },
    }
    assert s.stats.paths_renamed == 4


def test_openmetrics_answer(edge):
    s = scraper(f"{edge}/openmetrics")
    assert fields_by_labels(s.scrape(NOW)) == {
        (("name", "http"),): {"tomcat.requestCount": 17},
        (): {"jvm.threads": 42},
    }
    assert s.stats.created_skipped == 1


def test_body_size_limit(edge):
    assert scraper(f"{edge}/size/1000", max_bytes=1000).scrape(NOW)  # exactly the limit: fine
    s = scraper(f"{edge}/size/1001", max_bytes=1000)
    with pytest.raises(ScrapeError, match="over the 1000-byte limit") as info:
        s.scrape(NOW)
    assert info.value.reason == "too_large"
    s.url = f"{edge}/chunked-big"  # no Content-Length: refused while reading
    s.max_bytes = 10_000
    with pytest.raises(ScrapeError, match="over the 10000-byte limit"):
        s.scrape(NOW)
    assert s.stats.failures == {"too_large": 2} and s.stats.scrapes == 2


@pytest.mark.parametrize(
    ("path", "reason", "message"),
    [
        ("/500", "http_status", "HTTP 500"),
        ("/nowhere", "http_status", "HTTP 404"),
        ("/garbage", "parse", "not a Prometheus exposition"),
        ("/latin1", "parse", "not UTF-8"),
        ("/hangup", "connection", ""),
    ],
)
def test_failures_raise_one_counted_scrape_error(edge, path, reason, message):
    s = scraper(f"{edge}{path}")
    for _ in range(2):
        with pytest.raises(ScrapeError) as info:
            s.scrape(NOW)
        assert info.value.reason == reason
        assert message in str(info.value) and "\n" not in str(info.value)
        assert str(info.value).startswith(f"{edge}{path}: ")
    assert s.stats.failures == {reason: 2} and s.stats.documents == 0


def test_connection_refused():
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ScrapeError, match="cannot connect") as info:
        scraper(f"http://127.0.0.1:{port}/metrics").scrape(NOW)
    assert info.value.reason == "connection"


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_timeout_covers_the_whole_scrape(edge, path):
    s = scraper(f"{edge}{path}", timeout=0.4)
    start = time.monotonic()
    with pytest.raises(ScrapeError) as info:
        s.scrape(NOW)
    assert info.value.reason == "timeout"
    assert time.monotonic() - start < 1.0


def test_scraper_refuses_bad_configuration():
    for url in ("127.0.0.1:9100/metrics", "ftp://127.0.0.1/metrics", "http:///metrics"):
        with pytest.raises(ValueError, match="http:// or https://"):
            PrometheusScraper(url)
    with pytest.raises(ValueError):
        PrometheusScraper("http://127.0.0.1:9100/metrics", max_bytes=0)


# --------------------------------------------------------------------------------------------
# Names to paths, conflicts: examples and properties
# --------------------------------------------------------------------------------------------


def test_metric_path_examples():
    assert metric_path("tomcat_requestCount") == ("tomcat", "requestCount")
    assert metric_path("tomcat_currentThreadBusy") == ("tomcat", "currentThreadBusy")
    assert metric_path("jvm_gc_fullgc_time") == ("jvm", "gc", "fullgc", "time")
    assert metric_path("a__b_c_") == ("a__b", "c_")  # only a single inner "_" separates
    assert metric_path("job:http_errors:rate5m") == ("job:http", "errors:rate5m")
    assert metric_path("process_cpu_seconds_total") == ("prometheus", "metrics", "process", "cpu", "seconds", "total")
    assert metric_path("_up") == ("prometheus", "metrics", "_up")
    assert metric_path("my.dotted..name") == ("my", "dotted", "name")  # Prometheus 3 UTF-8 names


def test_flatten_to_nested_examples():
    assert flatten_to_nested({"system.load.1": 0.5, "system.load.5": 0.25, "system.load.cores": 2}) == {
        "system": {"load": {"1": 0.5, "5": 0.25, "cores": 2}}
    }
    assert flatten_to_nested({"a.b": 1, "a.b.c": 2}) == {"a": {"b": {"value": 1, "c": 2}}}
    assert flatten_to_nested({"a.b": 1, "a.b.c": 2, "a.b.value": 3}) == {"a": {"b": {"value": 3, "value_2": 1, "c": 2}}}
    assert flatten_to_nested({"a..b": 1, "a.b": 2}) == {"a": {"b": {"value": 1, "value_2": 2}}}
    with pytest.raises(ValueError, match="already holds a value"):
        nest([(("a", "b"), 1), (("a", "b", "c"), 2)])


def test_reserved_roots_cover_the_metrics_mapping():
    """A Prometheus metric must never land on a top-level field the metrics-* template maps."""
    assert set(ECS_BASE) | set(METRICS) | {"system"} <= RESERVED_ROOTS


def check_resolution(wanted: dict[str, tuple[str, ...]], got: dict[str, tuple[str, ...]]) -> None:
    assert set(got) == set(wanted)
    paths = list(got.values())
    assert len(set(paths)) == len(paths), "two keys share a path"
    as_set = set(paths)
    for path in paths:
        assert all(path[:i] not in as_set for i in range(1, len(path))), f"{path} is below a leaf"
    for key, path in got.items():
        # unchanged, or moved one level down to a fresh `value*` child
        assert path == wanted[key] or (path[:-1] == wanted[key] and path[-1].startswith("value"))
        clash = any(k != key and (p[: len(wanted[key])] == wanted[key]) for k, p in wanted.items())
        assert (path == wanted[key]) == (not clash)
    tree = nest((got[k], k) for k in got)  # no path is both a leaf and an object
    assert sorted(v for _, v in leaves(tree)) == sorted(got)  # no value lost


parts = st.sampled_from(["a", "b", "c", "value", "value_2", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(parts, min_size=1, max_size=4).map(tuple), max_size=30), st.randoms())
def test_resolve_paths_property(paths, rnd):
    wanted = {f"k{i}": p for i, p in enumerate(paths)}
    got = resolve_paths(wanted)
    check_resolution(wanted, got)
    items = list(wanted.items())
    rnd.shuffle(items)
    assert resolve_paths(dict(items)) == got  # the input's order does not matter


# Metric names built from few words, so prefixes and shared paths are frequent.
words = st.sampled_from(["a", "b", "c", "value", "host", "name", "total", "sum", "x", ":", ""])
metric_names = st.lists(words, min_size=1, max_size=5).map("_".join).filter(
    lambda n: re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", n) is not None
)


@settings(max_examples=200, deadline=None)
@given(st.sets(metric_names, max_size=25))
def test_any_metric_names_nest_without_loss(names):
    wanted = {n: metric_path(n) for n in names}
    check_resolution(wanted, resolve_paths(wanted))
    # The same through the exposition parser: every value lands in the document exactly once.
    text = "".join(f"{name} {i}\n" for i, name in enumerate(sorted(names)))
    docs, stats = exposition_to_documents(text, timestamp="2026-11-24T10:00:00.000Z", host_name="h")
    assert len(docs) == (1 if names else 0)
    for doc in docs:
        assert_well_formed(doc)
        assert sorted(v for _, v in leaves({k: v for k, v in doc.items() if k not in ENVELOPE})) == list(range(len(names)))
    assert stats.values == len(names)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(alphabet="ab._ é", max_size=8), st.integers(), max_size=20))
def test_flatten_to_nested_keeps_every_value(fields):
    tree = flatten_to_nested(fields)
    got = list(leaves(tree))
    assert sorted(v for _, v in got) == sorted(fields.values())
    for path, _ in got:
        assert all(part and "." not in part for part in path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_metric_path_of_any_text_is_a_safe_field_name(name):
    path = metric_path(name)
    assert path and all(part.strip() and "." not in part for part in path)
    assert path[0] not in RESERVED_ROOTS and not path[0].startswith(("_", "@"))


def test_deterministic_documents():
    """The same exposition gives the same documents, whatever the order of its lines."""
    lines = CONFLICTS.splitlines()
    outputs = set()
    for perm in itertools.islice(itertools.permutations(lines), 0, 5040, 97):
        docs, _ = exposition_to_documents("\n".join(perm) + "\n", timestamp="t", host_name="h")
        outputs.add(orjson.dumps(docs, option=orjson.OPT_SORT_KEYS))
    assert len(outputs) == 1
