#!/usr/bin/env python3
"""Shipper benchmark: pang against rsyslog and against the node's own ``_bulk`` ceiling.

One invocation, one after the other, against the same node and the same input file:

1. **input**: N log events of an e-commerce application (about 50% log4j/logback
   lines, 45% JSON lines in structlog and zap styles, 5% multi-line Java stack
   traces), written once and cached under ``--work`` by their parameters. Every
   event carries a unique ``seq`` so loss and duplicates can be counted, and
   every timestamp falls on one day (``--day``, default 2030-01-01) that no test
   uses, so pang writes exactly one daily index.
2. **ceiling**: the documents pang would produce, made by pang's own code
   (``FileTailer`` events through ``Enricher.file_action``; same ids, same
   sources), cut into request bodies of pang's batch size, loaded into memory,
   and posted from several threads over ``http.client`` into an index of their
   own (``_index`` rewritten). That is the node's own rate for these documents.
3. **pang**: ``pang ship --paths GLOB`` with a fresh state folder, timed from
   its start until ``_count`` (after ``_refresh``) reaches N; its CPU seconds
   (``/proc/<pid>/stat``) and peak RSS (``VmHWM``) are read before SIGTERM.
4. **rsyslog**: ``rsyslogd -n`` with its own configuration and work folder
   (never the system service): imfile (``startmsg.regex`` so a stack trace is
   one message, like pang) into omelasticsearch in bulk mode with a
   disk-assisted action queue, measured the same way.

Each index is then scanned (point in time + ``search_after``, only the fields
that hold ``seq``) to count lost and duplicated events. CPU spent by the node
(the java process serving the URL's port) and by everything else on the
machine is recorded per phase, so a reader can tell who was the bottleneck and
whether the machine was idle.

Run against a stack started with ``.venv/bin/pang stack up``::

    .venv/bin/python bench/ship_bench.py                 # 1,000,000 events, all three
    .venv/bin/python bench/ship_bench.py --lines 200000 --skip-rsyslog --json

Exit status: 0 when every measured phase shipped every event exactly once,
1 when some were lost or duplicated, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import queue
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

GENERATOR_VERSION = 1
SERVICE = "checkout"  # the folder under the glob's fixed prefix: pang's service.name
CLK_TCK = os.sysconf("SC_CLK_TCK")
KIB_PER_MIB = 1024.0

# --------------------------------------------------------------------------------------- output

_console: Any = None


def console() -> Any:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False)
    return _console


def say(msg: str) -> None:
    console().print(msg)


class SetupError(RuntimeError):
    """Something the benchmark needs is missing or broken (exit status 2)."""


# --------------------------------------------------------------------------------------- the node


class Node:
    """A tiny OpenSearch client over http.client (one connection per thread)."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise SetupError(f"--opensearch must be an http:// URL with a host (got {url!r})")
        self.url = url.rstrip("/")
        self.host = u.hostname
        self.port = u.port or 9200
        self.prefix = u.path.rstrip("/")
        self._local = threading.local()

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def request(self, method: str, path: str, body: bytes | dict[str, Any] | None = None, *,
                content_type: str = "application/json", timeout: float = 120.0) -> tuple[int, bytes]:
        data = orjson.dumps(body) if isinstance(body, dict) else body
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in range(2):
            conn = self._conn(timeout)
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: dict[str, Any] | None = None, *, ok: tuple[int, ...] = (200,),
             timeout: float = 120.0) -> Any:
        status, data = self.request(method, path, body, timeout=timeout)
        if status not in ok:
            raise RuntimeError(f"{method} {path} answered {status}: {data[:500]!r}")
        return orjson.loads(data) if data else None

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def delete_index(self, index: str) -> None:
        self.json("DELETE", f"/{index}?ignore_unavailable=true", ok=(200, 404))

    def refresh_count(self, index: str) -> int:
        self.request("POST", f"/{index}/_refresh?ignore_unavailable=true&allow_no_indices=true")
        body = self.json("GET", f"/{index}/_count?ignore_unavailable=true&allow_no_indices=true")
        return int(body["count"])


# --------------------------------------------------------------------------------------- processes


def read_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_hwm_mib(pid: int) -> float | None:
    """Peak resident set size (VmHWM) in MiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine was busy since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    steal = vals[7] if len(vals) > 7 else 0
    return (sum(vals[:8]) - idle - steal) / CLK_TCK


def self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def find_node_pid(port: int) -> int | None:
    """The local OpenSearch node: a java process started with ``-Ehttp.port=<port>`` (pang stack up)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"java") and f"-Ehttp.port={port}".encode() in argv:
            return int(entry)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Every process the benchmark starts; all stopped on exit, Ctrl-C or failure."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p: subprocess.Popen[bytes], timeout: float = 60.0) -> int | None:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(timeout=10)
        return p.returncode

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p, timeout=15)
        self.procs.clear()


# --------------------------------------------------------------------------------------- the input

_WORDS_SKU = ["SKU-%05d" % i for i in range(0, 40000, 7)]
_CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP", "CHF", "SEK", "PLN"]
_PSPS = ["adyen", "stripe", "paypal", "klarna"]
_WAREHOUSES = ["FRA-1", "FRA-2", "AMS-1", "WAW-1", "MAD-1"]
_THREADS = ["http-nio-8080-exec-%d" % i for i in range(1, 41)] + ["pool-3-thread-%d" % i for i in range(1, 9)] + [
    "kafka-consumer-orders-0", "kafka-consumer-payments-1", "scheduling-1", "main"]
_LOGGERS = [
    "com.shop.checkout.OrderService", "com.shop.checkout.CartController", "com.shop.payment.PaymentService",
    "com.shop.payment.GatewayClient", "com.shop.inventory.StockReservationService", "com.shop.catalog.ProductController",
    "com.shop.shipping.ShipmentScheduler", "com.shop.customer.SessionFilter", "org.hibernate.SQL",
    "org.springframework.web.servlet.DispatcherServlet", "com.zaxxer.hikari.pool.HikariPool",
]
_LOGBACK_LOGGERS = ["c.s.checkout.OrderService", "c.s.payment.PaymentService", "c.s.catalog.ProductController",
                    "c.s.inventory.StockReservationService", "o.s.web.servlet.DispatcherServlet"]
_PATHS = ["/api/v1/cart", "/api/v1/cart/items", "/api/v1/checkout", "/api/v1/orders", "/api/v1/products/%s",
          "/api/v1/payments/authorize", "/api/v1/customers/me", "/health"]
_LEVELS = ["INFO"] * 80 + ["DEBUG"] * 8 + ["WARN"] * 10 + ["ERROR"] * 2
_JSON_EVENTS = [
    ("order.placed", "order placed"), ("order.cancelled", "order cancelled"), ("payment.authorized", "payment authorized"),
    ("payment.declined", "payment declined"), ("payment.captured", "payment captured"), ("cart.updated", "cart updated"),
    ("stock.reserved", "stock reserved"), ("shipment.created", "shipment created"), ("refund.issued", "refund issued"),
]
_EXCEPTIONS = [
    ("com.shop.payment.GatewayException", "upstream returned 503 for order %s", "java.net.SocketTimeoutException",
     "Read timed out"),
    ("org.springframework.dao.DataAccessResourceFailureException", "could not acquire JDBC connection for order %s",
     "java.sql.SQLTransientConnectionException", "HikariPool-1 - Connection is not available, request timed out after 30000ms."),
    ("java.lang.IllegalStateException", "order %s is already being processed", None, None),
    ("com.shop.inventory.OutOfStockException", "insufficient stock for order %s", "com.shop.inventory.ReservationConflict",
     "version mismatch on stock row"),
]
_FRAMES = [
    "com.shop.payment.GatewayClient.authorize(GatewayClient.java:214)",
    "com.shop.payment.PaymentService.charge(PaymentService.java:88)",
    "com.shop.checkout.CheckoutService.placeOrder(CheckoutService.java:131)",
    "com.shop.checkout.OrderController.submit(OrderController.java:57)",
    "jdk.internal.reflect.GeneratedMethodAccessor212.invoke(Unknown Source)",
    "java.base/jdk.internal.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:43)",
    "java.base/java.lang.reflect.Method.invoke(Method.java:568)",
    "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)",
    "org.springframework.web.servlet.mvc.method.annotation.ServletInvocableHandlerMethod.invokeAndHandle(ServletInvocableHandlerMethod.java:117)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1072)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
    "javax.servlet.http.HttpServlet.service(HttpServlet.java:764)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1791)",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
    "java.base/java.lang.Thread.run(Thread.java:833)",
]
_CAUSE_FRAMES = [
    "java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
    "java.base/java.net.Socket$SocketInputStream.read(Socket.java:966)",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "org.apache.http.impl.io.SessionInputBufferImpl.fillBuffer(SessionInputBufferImpl.java:153)",
    "com.shop.payment.GatewayClient.post(GatewayClient.java:301)",
]


@dataclass
class InputFile:
    path: Path
    glob: str
    events: int
    physical_lines: int
    bytes: int
    day: str
    kinds: dict[str, int]


def input_key(n: int, day: str, seed: int) -> str:
    return f"input-v{GENERATOR_VERSION}-{n}-{day}-s{seed}"


def prepare_input(work: Path, n: int, day: str, seed: int, log: Callable[[str], None]) -> InputFile:
    """The cached input for these parameters, generated on first use."""
    folder = work / input_key(n, day, seed)
    path = folder / SERVICE / "app.log"
    meta_path = folder / "meta.json"
    if meta_path.exists() and path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            return InputFile(path, str(folder / "*" / "app.log"), meta["events"], meta["physical_lines"],
                             meta["bytes"], day, meta["kinds"])
    shutil.rmtree(folder, ignore_errors=True)
    path.parent.mkdir(parents=True)
    log(f"generating {n:,} events into {path} (cached for the next run)")
    t0 = time.monotonic()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as fh:
        kinds, physical = write_events(fh, n, day, seed)
    tmp.rename(path)
    size = path.stat().st_size
    meta = {"events": n, "physical_lines": physical, "bytes": size, "day": day, "seed": seed, "kinds": kinds,
            "generator_version": GENERATOR_VERSION}
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"  {physical:,} physical lines, {size / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")
    return InputFile(path, str(folder / "*" / "app.log"), n, physical, size, day, kinds)


def write_events(fh: Any, n: int, day: str, seed: int) -> tuple[dict[str, int], int]:
    """Write ``n`` events, seq 0..n-1, timestamps spread over ``day``; returns kinds and physical line count."""
    rng = random.Random(seed)
    base = datetime.fromisoformat(day).replace(tzinfo=UTC)
    span_ms = 86_000_000  # stay inside the day
    kinds = {"log4j": 0, "logback": 0, "structlog": 0, "zap": 0, "stacktrace": 0}
    physical = 0
    rand, choice, randint, bits = rng.random, rng.choice, rng.randint, rng.getrandbits
    write = fh.write
    dumps = json.dumps
    for seq in range(n):
        t = base + timedelta(milliseconds=seq * span_ms // n + randint(0, 3))
        us = t.microsecond + randint(0, 999)
        order = "ORD-%08X" % bits(32)
        amount = round(rand() * 400 + 3, 2)
        r = rand()
        if r < 0.05:  # a Java stack trace: an ERROR line and the exception, several physical lines
            kinds["stacktrace"] += 1
            exc, msg, cause, cause_msg = choice(_EXCEPTIONS)
            lines = [
                "%s ERROR [%s] %s - Checkout failed order_id=%s customer_id=C-%06d amount=%.2f seq=%d" % (
                    t.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (t.microsecond // 1000), choice(_THREADS[:40]),
                    choice(_LOGGERS[:5]), order, randint(1, 999999), amount, seq),
                "%s: %s" % (exc, msg % order),
            ]
            k = randint(6, len(_FRAMES))
            lines.extend("\tat " + f for f in _FRAMES[:k])
            if cause:
                lines.append("Caused by: %s: %s" % (cause, cause_msg))
                lines.extend("\tat " + f for f in rng.sample(_CAUSE_FRAMES, randint(2, len(_CAUSE_FRAMES))))
                lines.append("\t... %d common frames omitted" % (k - 1))
            write("\n".join(lines) + "\n")
            physical += len(lines)
            continue
        physical += 1
        if r < 0.50:  # JSON: structlog or zap
            trace = "%032x" % bits(128)
            span = "%016x" % bits(64)
            action, text = choice(_JSON_EVENTS)
            level = choice(("info", "info", "info", "info", "info", "info", "debug", "warning", "error"))
            if r < 0.275:
                kinds["structlog"] += 1
                ts = "%sT%s.%06dZ" % (day, t.strftime("%H:%M:%S"), us if us < 1_000_000 else 999_999)
                rec = {"timestamp": ts, "level": level, "event": text if rand() < 0.5 else action,
                       "logger": "shop." + action.split(".")[0], "trace_id": trace, "span_id": span,
                       "order_id": order, "customer_id": "C-%06d" % randint(1, 999999), "amount": amount,
                       "currency": choice(_CURRENCIES), "items": randint(1, 9), "seq": seq}
                write(dumps(rec) + "\n")
            else:
                kinds["zap"] += 1
                ts = "%sT%s.%03dZ" % (day, t.strftime("%H:%M:%S"), t.microsecond // 1000)
                rec = {"level": "warn" if level == "warning" else level, "ts": ts, "logger": "payments",
                       "caller": "payments/%s.go:%d" % (action.split(".")[1], randint(20, 400)), "msg": text,
                       "trace_id": trace, "span_id": span, "order_id": order, "amount": amount,
                       "currency": choice(_CURRENCIES), "psp": choice(_PSPS), "latency_ms": randint(3, 2500),
                       "http": {"method": "POST", "status": choice((200, 200, 200, 201, 402, 409, 502))}, "seq": seq}
                write(dumps(rec, separators=(",", ":")) + "\n")
            continue
        level = choice(_LEVELS)
        sku = choice(_WORDS_SKU)
        m = randint(0, 6)
        if m == 0:
            msg = "Order placed order_id=%s customer_id=C-%06d items=%d amount=%.2f currency=%s" % (
                order, randint(1, 999999), randint(1, 9), amount, choice(_CURRENCIES))
        elif m == 1:
            msg = "Payment authorized order_id=%s psp=%s amount=%.2f latency_ms=%d" % (order, choice(_PSPS), amount, randint(40, 2500))
        elif m == 2:
            msg = "Cart updated cart_id=%08x sku=%s qty=%d" % (bits(32), sku, randint(1, 5))
        elif m == 3:
            path = choice(_PATHS)
            msg = "%s %s -> %d in %dms" % (choice(("GET", "GET", "GET", "POST", "PUT", "DELETE")),
                                            path % sku if "%s" in path else path, choice((200, 200, 200, 201, 204, 400, 404, 500)),
                                            randint(1, 900))
        elif m == 4:
            msg = "Stock reserved sku=%s warehouse=%s qty=%d order_id=%s" % (sku, choice(_WAREHOUSES), randint(1, 4), order)
        elif m == 5:
            msg = "Slow query detected took_ms=%d query=select_orders_by_customer rows=%d" % (randint(500, 9000), randint(0, 400))
        else:
            msg = "Cache miss key=product:%s region=%s" % (sku, choice(_WAREHOUSES))
        if rand() < 0.5:  # log4j: %d %-5p [%t] %c - %m
            kinds["log4j"] += 1
            write("%s,%03d %-5s [%s] %s - %s seq=%d\n" % (t.strftime("%Y-%m-%d %H:%M:%S"), t.microsecond // 1000, level,
                                                         choice(_THREADS), choice(_LOGGERS), msg, seq))
        else:  # logback: %d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg
            kinds["logback"] += 1
            write("%s.%03d [%s] %-5s %s - %s seq=%d\n" % (t.strftime("%Y-%m-%d %H:%M:%S"), t.microsecond // 1000,
                                                         choice(_THREADS), level, choice(_LOGBACK_LOGGERS), msg, seq))
    return kinds, physical


# --------------------------------------------------------------------------------------- counting


_SEQ_RE = re.compile(rb"\bseq\W{1,3}(\d+)")


@dataclass
class Tally:
    docs: int = 0
    lost: int = 0
    duplicated: int = 0
    no_seq: int = 0
    seconds: float = 0.0


def scan_seqs(node: Node, index: str, expected: int, page: int = 10000) -> Tally:
    """Every document's seq (``app.seq`` or ``seq=N`` in the message), via a point in time and search_after."""
    t0 = time.monotonic()
    seen = bytearray(expected)
    extra_dups = 0
    no_seq = 0
    docs = 0
    pit = node.json("POST", f"/{index}/_search/point_in_time?keep_alive=2m")["pit_id"]
    try:
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": page, "pit": {"id": pit, "keep_alive": "2m"}, "sort": [{"_doc": "asc"}],
                                    "_source": ["message", "app.seq"], "track_total_hits": False}
            if after is not None:
                body["search_after"] = after
            hits = node.json("POST", "/_search?filter_path=hits.hits._source,hits.hits.sort", body)
            hits = (hits or {}).get("hits", {}).get("hits", [])
            if not hits:
                break
            for h in hits:
                docs += 1
                src = h.get("_source") or {}
                seq = (src.get("app") or {}).get("seq")
                if not isinstance(seq, int):
                    m = _SEQ_RE.search(str(src.get("message", "")).encode())
                    seq = int(m.group(1)) if m else None
                if seq is None or not 0 <= seq < expected:
                    no_seq += 1
                    continue
                c = seen[seq]
                if c:
                    extra_dups += 1
                if c < 255:
                    seen[seq] = c + 1
            after = hits[-1]["sort"]
    finally:
        node.request("DELETE", "/_search/point_in_time", {"pit_id": pit})
    lost = seen.count(0)
    return Tally(docs=docs, lost=lost, duplicated=extra_dups, no_seq=no_seq, seconds=time.monotonic() - t0)


# --------------------------------------------------------------------------------------- phases


@dataclass
class Result:
    name: str
    index: str
    expected: int
    docs: int = 0  # _count at the end
    seconds: float | None = None  # start to the moment _count reached the expected number
    reached: bool = False
    cpu_seconds: float | None = None  # the shipper's (for the ceiling: the posting client's)
    peak_rss_mib: float | None = None
    node_cpu_seconds: float | None = None
    other_cpu_seconds: float | None = None  # everything else on the machine during the phase
    lost: int | None = None
    duplicated: int | None = None
    no_seq: int | None = None
    scan_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.expected / self.seconds if self.seconds and self.reached else None


def proc_cpu_table() -> dict[int, tuple[float, str]]:
    """Every process's CPU seconds so far and its name (one pass over /proc)."""
    out: dict[int, tuple[float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        lp, rp = stat.index(b"("), stat.rindex(b")")
        fields = stat[rp + 2 :].split()
        out[int(entry)] = ((int(fields[11]) + int(fields[12])) / CLK_TCK, stat[lp + 1 : rp].decode(errors="replace"))
    return out


def irq_seconds() -> float:
    """CPU time the machine spent in hard and soft interrupts (charged to no process; loopback traffic lands here)."""
    with open("/proc/stat") as fh:
        vals = [int(x) for x in fh.readline().split()[1:]]
    return (vals[5] + vals[6]) / CLK_TCK if len(vals) > 6 else 0.0


class CpuWatch:
    """CPU seconds of the node, the shipper, this process and the whole machine over one phase."""

    def __init__(self, node_pid: int | None) -> None:
        self.node_pid = node_pid
        self.node0 = read_cpu_seconds(node_pid) if node_pid else None
        self.self0 = self_cpu_seconds()
        self.busy0 = machine_busy_seconds()
        self.irq0 = irq_seconds()
        self.procs0 = proc_cpu_table()

    def finish(self, res: Result, shipper_cpu: float | None, *, shipper_pid: int | None = None,
               shipper_is_self: bool = False) -> None:
        node1 = read_cpu_seconds(self.node_pid) if self.node_pid else None
        node = node1 - self.node0 if node1 is not None and self.node0 is not None else None
        own = self_cpu_seconds() - self.self0
        busy = machine_busy_seconds() - self.busy0
        irq = irq_seconds() - self.irq0
        res.node_cpu_seconds = node
        accounted = (node or 0.0) + own + (0.0 if shipper_is_self else (shipper_cpu or 0.0))
        res.other_cpu_seconds = max(0.0, busy - accounted)
        res.extra["bench_process_cpu_seconds"] = round(own, 2)
        res.extra["machine_busy_cpu_seconds"] = round(busy, 2)
        res.extra["irq_softirq_cpu_seconds"] = round(irq, 2)
        skip = {os.getpid(), self.node_pid, shipper_pid}
        others = []
        for pid, (cpu1, name) in proc_cpu_table().items():
            if pid in skip:
                continue
            cpu0 = self.procs0.get(pid, (0.0, name))[0]
            if cpu1 - cpu0 >= 0.5:
                others.append((round(cpu1 - cpu0, 1), pid, name))
        others.sort(reverse=True)
        res.extra["other_processes"] = [{"pid": pid, "name": name, "cpu_seconds": c} for c, pid, name in others[:5]]
        if busy > 0 and res.other_cpu_seconds > 0.05 * busy:
            top = ", ".join(f"{name} ({pid}) {c} s" for c, pid, name in others[:3]) or "processes that have exited"
            res.notes.append(f"the machine was not idle: {res.other_cpu_seconds:.1f} CPU s elsewhere "
                             f"(interrupts {irq:.1f} s; {top})")


def wait_node_idle(node: Node, node_pid: int | None, *, quiet_cpu: float = 0.15, quiet_for: int = 3,
                   max_wait: float = 180.0) -> float:
    """Wait until the node is idle (no merges running, under ``quiet_cpu`` CPU s per second for ``quiet_for`` s).

    The previous phase's merges and refreshes must not be charged to the next one.
    """
    t0 = time.monotonic()
    quiet = 0
    last = read_cpu_seconds(node_pid) if node_pid else None
    while time.monotonic() - t0 < max_wait:
        time.sleep(1.0)
        merging = 0
        with contextlib.suppress(Exception):
            st = node.json("GET", "/_nodes/_local/stats/indices/merge?filter_path=nodes.*.indices.merges.current")
            merging = sum(n["indices"]["merges"]["current"] for n in (st or {}).get("nodes", {}).values())
        cur = read_cpu_seconds(node_pid) if node_pid else None
        busy = (cur - last) if cur is not None and last is not None else 0.0
        last = cur
        quiet = quiet + 1 if merging == 0 and busy < quiet_cpu else 0
        if quiet >= quiet_for:
            break
    return time.monotonic() - t0


class Progress:
    """A rich progress bar on a terminal; a line every few seconds otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._p: Any = None
        self._last_line = 0.0

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._p = RichProgress(TextColumn("[bold]{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console(), transient=False)
            self._p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)
            self._p = None

    def task(self, name: str, total: int) -> Callable[[int, float], None]:
        if self._p is not None:
            tid = self._p.add_task(name, total=total, rate="")

            def update(done: int, elapsed: float) -> None:
                self._p.update(tid, completed=min(done, total), rate=f"{done / elapsed:>9,.0f} docs/s" if elapsed > 0 else "")

            return update

        def line(done: int, elapsed: float) -> None:
            now = time.monotonic()
            if now - self._last_line >= 5 or done >= total:
                self._last_line = now
                rate = done / elapsed if elapsed > 0 else 0
                print(f"  {name}: {done:,}/{total:,} documents, {elapsed:.1f} s, {rate:,.0f} docs/s", file=sys.stderr, flush=True)

        return line


def wait_for_count(node: Node, index: str, expected: int, t0: float, *, poll: float, stall: float, timeout: float,
                   update: Callable[[int, float], None], alive: Callable[[], bool] = lambda: True) -> tuple[int, float | None]:
    """Poll ``_refresh`` + ``_count`` until ``expected``; returns (count, seconds since t0 or None if never reached)."""
    last_n, last_change = -1, time.monotonic()
    while True:
        n = node.refresh_count(index)
        now = time.monotonic()
        update(n, now - t0)
        if n >= expected:
            return n, now - t0
        if n != last_n:
            last_n, last_change = n, now
        if now - last_change > stall or now - t0 > timeout:
            return n, None
        if not alive():
            # the shipper exited: give the node one more look, then stop
            time.sleep(poll)
            n = node.refresh_count(index)
            return n, (time.monotonic() - t0) if n >= expected else None
        time.sleep(poll)


def settle(node: Node, index: str, seconds: float = 1.0) -> int:
    """The count a moment after reaching the target, so late duplicates would still show."""
    time.sleep(seconds)
    return node.refresh_count(index)


# --- ceiling -------------------------------------------------------------------------------


def build_ceiling_chunks(inp: InputFile, folder: Path, index: str, pang_index: str, chunk_bytes: int,
                         log: Callable[[str], None]) -> tuple[list[Path], int, dict[str, Any]]:
    """pang's own documents for the input (FileTailer -> Enricher.file_action), as _bulk bodies on disk."""
    from pang.settings import load_settings
    from pang.shippers.documents import Enricher, now_iso
    from pang.shippers.parse.multiline import Multiline
    from pang.shippers.source.files import FileTailer

    settings = load_settings()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.monotonic()
    enricher = Enricher(agent_id="ceiling0bench000", host_name=settings.host_name,
                        environment=settings.service_environment, version=settings.service_version)
    pattern = settings.ship_multiline_pattern
    tailer = FileTailer([inp.glob], {}, max_line_bytes=settings.ship_max_line_bytes,
                        multiline=lambda: Multiline(start_pattern=pattern, flush_timeout=settings.ship_multiline_timeout))
    tailer.scan()
    old = b'{"index":{"_index":"%s"' % pang_index.encode()
    new = b'{"index":{"_index":"%s"' % index.encode()
    chunks: list[Path] = []
    buf: list[bytes] = []
    nbytes = 0
    docs = 0
    elsewhere = 0

    def flush() -> None:
        nonlocal buf, nbytes
        if buf:
            p = folder / f"chunk-{len(chunks):05d}.ndjson"
            p.write_bytes(b"".join(buf))
            chunks.append(p)
            buf, nbytes = [], 0

    def add(ev: Any, received: str) -> None:
        nonlocal nbytes, docs, elsewhere
        action = enricher.file_action(ev, received)
        if not action.startswith(old):
            elsewhere += 1
        action = action.replace(old, new, 1)
        buf.append(action)
        nbytes += len(action)
        docs += 1
        if nbytes >= chunk_bytes:
            flush()

    size = inp.path.stat().st_size
    while True:
        received = now_iso()
        produced = 0
        for ev in tailer.poll():
            add(ev, received)
            produced += 1
        if not produced and all(tf.read_pos >= size for tf in tailer.files.values()):
            break
    for ev in tailer.flush_all():
        add(ev, now_iso())
    flush()
    tailer.close()
    info = {"build_seconds": round(time.monotonic() - t0, 1), "chunks": len(chunks), "chunk_bytes": chunk_bytes,
            "body_bytes": sum(p.stat().st_size for p in chunks), "documents_built": docs}
    if elsewhere:
        raise SetupError(f"{elsewhere} of pang's documents for the input target another index than {pang_index} "
                         "(a timestamp pang did not read as the input's day)")
    log(f"  built {docs:,} documents in {len(chunks)} bodies ({info['body_bytes'] / 1e6:.0f} MB) with pang's code "
        f"in {info['build_seconds']} s")
    return chunks, docs, info


def run_ceiling(node: Node, inp: InputFile, work: Path, index: str, pang_index: str, args: argparse.Namespace,
                node_pid: int | None, progress: Progress) -> Result:
    res = Result("ceiling", index, inp.events)
    chunks, built, info = build_ceiling_chunks(inp, work / "ceiling-chunks", index, pang_index, args.chunk_bytes, say)
    res.extra.update(info, streams=args.ceiling_streams)
    if built != inp.events:
        res.notes.append(f"pang's code made {built:,} documents of {inp.events:,} events")
    bodies = [p.read_bytes() for p in chunks]  # in memory before the clock starts
    node.delete_index(index)
    failures: list[str] = []
    work_q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for b in bodies:
        work_q.put(b)
    for _ in range(args.ceiling_streams):
        work_q.put(None)

    def worker() -> None:
        conn = http.client.HTTPConnection(node.host, node.port, timeout=300)
        headers = {"Content-Type": "application/x-ndjson"}
        try:
            while (body := work_q.get()) is not None:
                for attempt in range(20):
                    try:
                        conn.request("POST", node.prefix + "/_bulk?filter_path=errors", body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        failures.append(f"connection: {exc}")
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    if resp.status == 200 and b'"errors":false' in data:
                        break
                    # 429 or item errors: send the same body again (same ids: overwrites, never doubles)
                    failures.append(f"status {resp.status}: {data[:200]!r}")
                    time.sleep(0.2 * (attempt + 1))
        finally:
            conn.close()

    cpu = CpuWatch(node_pid)
    client0 = self_cpu_seconds()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, name=f"ceiling-{i}", daemon=True) for i in range(args.ceiling_streams)]
    for t in threads:
        t.start()
    update = progress.task("ceiling", inp.events)
    n, secs = wait_for_count(node, index, inp.events, t0, poll=args.poll, stall=args.stall, timeout=args.timeout,
                             update=update, alive=lambda: any(t.is_alive() for t in threads))
    for t in threads:
        t.join()
    res.extra["posting_seconds"] = round(time.monotonic() - t0, 2)
    res.cpu_seconds = self_cpu_seconds() - client0
    cpu.finish(res, res.cpu_seconds, shipper_is_self=True)
    del bodies
    res.seconds, res.reached = secs, secs is not None
    res.docs = settle(node, index)
    if failures:
        res.notes.append(f"{len(failures)} bulk requests were repeated (first: {failures[0]})")
    return res


# --- pang -----------------------------------------------------------------------------------


def metrics_text(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def metric_values(text: str, names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and line.startswith(names):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def run_pang(node: Node, inp: InputFile, work: Path, index: str, args: argparse.Namespace, node_pid: int | None,
             procs: Processes, progress: Progress) -> Result:
    res = Result("pang", index, inp.events)
    state = work / "pang-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    port = free_port()
    env = dict(os.environ)
    env.update({
        "PANG_STATE_DIR": str(state),
        "PANG_OPENSEARCH_URL": node.url,
        "PANG_SYSLOG_ENABLED": "false",
        "PANG_METRICS_ENABLED": "false",
        "PANG_SHIP_HTTP_PORT": str(port),
        "PANG_SHIP_START_AT": "beginning",
    })
    env.pop("PANG_SHIP_PATHS", None)
    node.delete_index(index)
    argv = [sys.executable, "-m", "pang.cli", "ship", "--paths", inp.glob]
    res.extra["command"] = " ".join(argv)
    res.extra["settings"] = {k: v for k, v in sorted(env.items()) if k.startswith("PANG_SHIP_")}
    log_path = work / "pang-agent.log"
    cpu = CpuWatch(node_pid)
    t0 = time.monotonic()
    with open(log_path, "wb") as logf:
        p = procs.start(argv, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=str(work))
    spy = None
    if args.py_spy:
        spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy_bin).exists():
            raise SetupError("--py-spy needs py-spy (pip install py-spy into the virtualenv)")
        Path(args.py_spy).unlink(missing_ok=True)
        spy = procs.start([spy_bin, "record", "--pid", str(p.pid), "--rate", "100", "--format", "raw", "--threads", "--gil",
                           "--output", str(Path(args.py_spy).resolve())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    update = progress.task("pang", inp.events)
    n, secs = wait_for_count(node, index, inp.events, t0, poll=args.poll, stall=args.stall, timeout=args.timeout,
                             update=update, alive=lambda: p.poll() is None)
    res.seconds, res.reached = secs, secs is not None
    res.cpu_seconds = read_cpu_seconds(p.pid)
    res.peak_rss_mib = read_hwm_mib(p.pid)
    cpu.finish(res, res.cpu_seconds, shipper_pid=p.pid)
    with contextlib.suppress(OSError):
        res.extra["metrics"] = metric_values(metrics_text(port), ("pang_documents_shipped_total", "pang_documents_resent_total",
                                                                  "pang_bulk_requests_total", "pang_bulk_seconds_total",
                                                                  "pang_retries_total", "pang_documents_rejected_total",
                                                                  "pang_lines_read_total"))
    if p.poll() is not None:
        res.notes.append(f"the agent exited early with status {p.returncode} (see {log_path})")
    rc = Processes.stop(p, timeout=90)
    res.extra["exit_status"] = rc
    if spy is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=60)
        Processes.stop(spy, timeout=5)
    res.docs = settle(node, index)
    return res


# --- rsyslog ------------------------------------------------------------------------------------

RSYSLOG_MODULES = Path("/usr/lib/x86_64-linux-gnu/rsyslog")


def ensure_rsyslog(log: Callable[[str], None]) -> str:
    """rsyslogd with imfile and omelasticsearch, installed from Debian's packages when missing."""

    def present() -> str | None:
        exe = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
        mods = [d for d in (RSYSLOG_MODULES, Path("/usr/lib/rsyslog")) if (d / "omelasticsearch.so").exists()]
        return exe if exe and mods else None

    exe = present()
    if exe:
        return exe
    if os.geteuid() != 0:
        raise SetupError("rsyslog is missing: run `apt-get install -y rsyslog rsyslog-elasticsearch` as root, or --skip-rsyslog")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "rsyslog", "rsyslog-elasticsearch"]
    log("installing rsyslog and rsyslog-elasticsearch (apt-get)")
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        r = subprocess.run(install, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SetupError(f"apt-get install rsyslog rsyslog-elasticsearch failed:\n{r.stderr[-1500:]}")
    exe = present()
    if not exe:
        raise SetupError("rsyslog was installed but rsyslogd or omelasticsearch.so is still missing")
    return exe


def rsyslog_version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout
    m = re.search(r"rsyslogd\s+(\S+)", out)
    return m.group(1) if m else "?"


def _rs(s: str) -> str:
    """A RainerScript double-quoted string constant."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rsyslog_config(inp: InputFile, workdir: Path, node: Node, index: str, args: argparse.Namespace, queue_size: int) -> str:
    """imfile -> omelasticsearch (bulk mode, disk-assisted queue), writing the fields pang extracts where it can.

    Fields: @timestamp (parsed from the line: the plain layouts' leading time, the JSON ``timestamp``/``ts``),
    message (the whole event, stack trace included), log.file.path, log.offset (imfile's metadata), host.name,
    service.name (the folder above the file, as pang's --paths glob gives it), event.dataset, agent.
    """
    # option.jsonf / format="jsonf": rsyslog 8.2302's option.json leaves newlines and tabs unescaped, so a
    # stack trace breaks the whole _bulk body (json_parse_exception); jsonf escapes them. Dotted names map
    # onto the same nested fields as pang's objects.
    doc_tpl = "\n".join([
        'template(name="pang_doc" type="list" option.jsonf="on") {',
        '  property(outname="@timestamp" name="$!ts" format="jsonf")',
        '  property(outname="message" name="msg" format="jsonf")',
        '  property(outname="log.file.path" name="$!metadata!filename" format="jsonf")',
        '  property(outname="log.offset" name="$!metadata!fileoffset" format="jsonf" datatype="number")',
        '  property(outname="host.name" name="$myhostname" format="jsonf")',
        '  property(outname="service.name" name="$!metadata!filename" format="jsonf" regex.type="ERE"'
        ' regex.expression="/([^/]+)/[^/]+$" regex.submatch="1" regex.nomatchmode="BLANK")',
        '  constant(outname="event.dataset" value="app" format="jsonf")',
        '  constant(outname="agent.name" value="rsyslog" format="jsonf")',
        '  constant(outname="agent.type" value="rsyslog" format="jsonf")',
        "}",
    ])
    id_tpl = ""
    id_opts = ""
    if args.rsyslog_ids:
        id_tpl = ('template(name="pang_id" type="list") { property(name="$!metadata!filename") constant(value=":")'
                  ' property(name="$!metadata!fileoffset") }')
        id_opts = ' bulkid="pang_id" dynbulkid="on"'
    return f"""# generated by bench/ship_bench.py
global(workDirectory={_rs(str(workdir))} maxMessageSize="256k"
       parser.escapeControlCharactersOnReceive="off")
module(load="imfile" mode="inotify")
module(load="omelasticsearch")
{doc_tpl}
template(name="ts_now" type="list") {{ property(name="timegenerated" dateFormat="rfc3339") }}
{id_tpl}
input(type="imfile" File={_rs(str(inp.path))} Tag="app" addMetadata="on" ruleset="es"
      startmsg.regex="^[0-9{{]" readTimeout="1" escapeLF="off" freshStartTail="off")
ruleset(name="es") {{
  if substring($msg, 0, 1) == "{{" then {{
    set $!ts = re_extract($msg, '"t(imestamp|s)": ?"([^"]+)"', 0, 2, "");
  }} else {{
    set $!ts = replace(replace(substring($msg, 0, 23), " ", "T"), ",", ".") & "Z";
  }}
  if $!ts == "" then {{
    set $!ts = exec_template("ts_now");
  }}
  action(type="omelasticsearch" server={_rs(node.host)} serverport="{node.port}" searchIndex={_rs(index)}
         template="pang_doc" bulkmode="on" maxbytes="10m" esVersion.major="8"{id_opts}
         errorfile={_rs(str(workdir / "es-errors.json"))}
         queue.type="linkedlist" queue.size="{queue_size}" queue.dequeuebatchsize="2000"
         queue.workerThreads="{args.rsyslog_workers}"
         queue.filename="esq" queue.saveonshutdown="on" queue.maxdiskspace="4g"
         action.resumeRetryCount="-1")
}}
"""


def run_rsyslog(node: Node, inp: InputFile, work: Path, index: str, args: argparse.Namespace, node_pid: int | None,
                procs: Processes, progress: Progress) -> Result:
    res = Result("rsyslog", index, inp.events)
    exe = ensure_rsyslog(say)
    res.extra["version"] = rsyslog_version(exe)
    folder = work / "rsyslog"
    shutil.rmtree(folder, ignore_errors=True)
    workdir = folder / "work"
    workdir.mkdir(parents=True)
    conf = folder / "bench.conf"
    queue_size = max(500_000, int(inp.events * 1.2))
    conf.write_text(rsyslog_config(inp, workdir, node, index, args, queue_size))
    check = subprocess.run([exe, "-N1", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise SetupError(f"rsyslogd -N1 rejected {conf}:\n{(check.stdout + check.stderr)[-2000:]}")
    res.extra["config"] = str(conf)
    res.extra["workers"] = args.rsyslog_workers
    res.extra["ids"] = bool(args.rsyslog_ids)
    node.delete_index(index)
    pidfile = folder / "bench.pid"
    log_path = folder / "rsyslogd.log"
    cpu = CpuWatch(node_pid)
    t0 = time.monotonic()
    with open(log_path, "wb") as logf:
        p = procs.start([exe, "-n", "-f", str(conf), "-i", str(pidfile)], stdout=logf, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, cwd=str(folder))
    update = progress.task("rsyslog", inp.events)
    n, secs = wait_for_count(node, index, inp.events, t0, poll=args.poll, stall=args.stall, timeout=args.timeout,
                             update=update, alive=lambda: p.poll() is None)
    res.seconds, res.reached = secs, secs is not None
    res.cpu_seconds = read_cpu_seconds(p.pid)
    res.peak_rss_mib = read_hwm_mib(p.pid)
    cpu.finish(res, res.cpu_seconds, shipper_pid=p.pid)
    if p.poll() is not None:
        res.notes.append(f"rsyslogd exited early with status {p.returncode} (see {log_path})")
    res.extra["exit_status"] = Processes.stop(p, timeout=60)
    res.docs = settle(node, index)
    errors = workdir / "es-errors.json"
    if errors.exists() and errors.stat().st_size:
        res.notes.append(f"omelasticsearch wrote rejected items to {errors} ({errors.stat().st_size:,} bytes)")
    return res


# --------------------------------------------------------------------------------------- report


def fmt(v: float | int | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def render(results: list[Result], inp: InputFile, info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(highlight=False)
    out.width = max(out.width, 150)
    out.print(f"\n[bold]pang ship benchmark[/]  node {info['opensearch']} (OpenSearch {info.get('node_version', '?')}), "
              f"{info['cpus']} CPUs, input {inp.events:,} events / {inp.physical_lines:,} lines / "
              f"{inp.bytes / 1e6:,.1f} MB ({', '.join(f'{k} {v:,}' for k, v in inp.kinds.items())})")
    t = Table(show_lines=False)
    for col in ("run", "documents", "seconds", "docs/s", "CPU s", "CPU s/M ev", "peak RSS MiB",
                "lost", "duplicated", "no seq", "node CPU s", "other CPU s"):
        t.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in results:
        per_m = r.cpu_seconds / (r.expected / 1e6) if r.cpu_seconds is not None else None
        t.add_row(r.name + ("" if r.reached else " (incomplete)"), fmt(r.docs), fmt(r.seconds, ",.1f"),
                  fmt(r.rate), fmt(r.cpu_seconds, ",.1f"), fmt(per_m, ",.1f"), fmt(r.peak_rss_mib, ",.0f"),
                  fmt(r.lost), fmt(r.duplicated), fmt(r.no_seq), fmt(r.node_cpu_seconds, ",.1f"),
                  fmt(r.other_cpu_seconds, ",.1f"))
    out.print(t)
    out.print("CPU s: the shipper's utime+stime (ceiling: the posting client, this Python process); CPU s/M ev: per "
              "million events. node CPU s: the OpenSearch java process during the run. other CPU s: the rest of the "
              "machine (near 0 on an idle machine; when it is not, the rates are not comparable).")
    out.print("indices: " + ", ".join(f"{r.name} {r.index}" for r in results))
    for name, value in ratios(results).items():
        out.print(f"  {name}: [bold]{value:.2f}x[/]")
    for r in results:
        for note in r.notes:
            out.print(f"  [yellow]{r.name}:[/] {note}")


def ratios(results: list[Result]) -> dict[str, float]:
    by = {r.name: r for r in results}
    out = {}
    pang = by.get("pang")
    for other in ("rsyslog", "ceiling"):
        o = by.get(other)
        if pang and o and pang.rate and o.rate:
            out[f"pang/{other} throughput"] = pang.rate / o.rate
    return out


def summarize_profile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and cumulative samples per function from py-spy's raw (collapsed) output."""
    self_n: collections.Counter[str] = collections.Counter()
    cum_n: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread (", "process ")):
            thread = frames.pop(0)
            if frames and frames[0].startswith("thread ("):
                thread = frames.pop(0)
            threads[thread] += n
        if not frames:
            continue
        total += n
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]  # one entry per function, not per line
        self_n[names[-1]] += n
        for f in set(names):
            cum_n[f] += n
    pct = (lambda c: [(f, round(100.0 * v / total, 1)) for f, v in c.most_common(top)]) if total else (lambda c: [])
    return {"samples": total, "self_pct": pct(self_n), "cumulative_pct": pct(cum_n),
            "threads_pct": pct(threads)}


def render_profile(profile: dict[str, Any], path: str) -> None:
    print(f"\npang agent profile (py-spy, {profile['samples']:,} samples holding the GIL, {path}):")
    for title, key in (("by thread", "threads_pct"), ("self", "self_pct"), ("cumulative", "cumulative_pct")):
        print(f"  {title}:")
        for name, p in profile[key]:
            print(f"    {p:5.1f}%  {name}")


# --------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="log events in the input (default 1,000,000)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pang-bench"), help="work folder (input cache, state, chunks)")
    ap.add_argument("--opensearch", default=os.environ.get("PANG_OPENSEARCH_URL", "http://127.0.0.1:9200"),
                    help="the node (default: PANG_OPENSEARCH_URL or http://127.0.0.1:9200)")
    ap.add_argument("--day", default="2030-01-01", help="the input's one day (default 2030-01-01: an index no test uses)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the input")
    ap.add_argument("--skip-rsyslog", action="store_true")
    ap.add_argument("--skip-ceiling", action="store_true")
    ap.add_argument("--skip-pang", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the bench indices at the end")
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout (no table)")
    ap.add_argument("--ceiling-streams", type=int, default=4, help="parallel _bulk streams of the ceiling (default 4)")
    ap.add_argument("--chunk-bytes", type=int, default=None, help="ceiling body size (default: pang's PANG_SHIP_BATCH_BYTES)")
    ap.add_argument("--rsyslog-workers", type=int, default=1, help="omelasticsearch queue worker threads (default 1)")
    ap.add_argument("--rsyslog-ids", action="store_true", help="give rsyslog's documents ids (file:offset, dynbulkid)")
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between _refresh+_count polls (default 0.5)")
    ap.add_argument("--stall", type=float, default=60.0, help="give up when _count has not moved for this long")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up on a phase after this many seconds")
    ap.add_argument("--no-scan", action="store_true", help="skip the per-document seq scan (lost/duplicated from _count only)")
    ap.add_argument("--py-spy", metavar="FILE", help="record the agent with py-spy (raw collapsed stacks) into FILE")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.lines < 1:
        ap.error("--lines must be at least 1")
    try:
        datetime.strptime(args.day, "%Y-%m-%d")
    except ValueError:
        ap.error("--day must be YYYY-MM-DD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    procs = Processes()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (`cmd &`)
    day_idx = args.day.replace("-", ".")
    pang_index = f"logs-app-{day_idx}"
    indices = {"ceiling": f"logs-app-bench-ceiling-{day_idx}", "pang": pang_index,
               "rsyslog": f"logs-app-bench-rsyslog-{day_idx}"}
    if args.chunk_bytes is None:
        from pang.settings import load_settings

        args.chunk_bytes = load_settings().ship_batch_bytes
    results: list[Result] = []
    node: Node | None = None
    try:
        node = Node(args.opensearch)
        try:
            root = node.json("GET", "/", timeout=10)
        except OSError as exc:
            raise SetupError(f"cannot reach OpenSearch at {node.url}: {exc} (start it with `.venv/bin/pang stack up`)") from None
        status, _ = node.request("GET", "/_index_template/pang-logs-app")
        if status != 200:
            say("[yellow]warning:[/] index template pang-logs-app is missing (run `pang index setup`): "
                "documents get dynamic mappings")
        node_pid = find_node_pid(node.port) if node.host in ("127.0.0.1", "localhost") else None
        info: dict[str, Any] = {"opensearch": node.url, "node_version": root.get("version", {}).get("number"),
                                "node_pid": node_pid, "cpus": os.cpu_count(), "day": args.day,
                                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                                "load_average_at_start": os.getloadavg()}
        if node_pid is None:
            say("[yellow]warning:[/] the node's java process was not found: node CPU is not measured")
        load1 = os.getloadavg()[0]
        if load1 > 0.5:
            say(f"[yellow]warning:[/] load average {load1:.2f}: the machine is not idle, figures will be noisy")
        inp = prepare_input(work, args.lines, args.day, args.seed, say)
        for name in indices.values():
            node.delete_index(name)
        phases: list[tuple[str, Callable[[Progress], Result]]] = []
        if not args.skip_ceiling:
            phases.append(("ceiling", lambda pr: run_ceiling(node, inp, work, indices["ceiling"], pang_index, args, node_pid, pr)))
        if not args.skip_pang:
            phases.append(("pang", lambda pr: run_pang(node, inp, work, pang_index, args, node_pid, procs, pr)))
        if not args.skip_rsyslog:
            phases.append(("rsyslog", lambda pr: run_rsyslog(node, inp, work, indices["rsyslog"], args, node_pid, procs, pr)))
        with Progress(not args.no_progress and not args.json) as progress:
            for name, run in phases:
                waited = wait_node_idle(node, node_pid)  # the previous phase's merges are not this one's
                say(f"[bold]{name}[/]: into {indices[name]} (node idle after {waited:.0f} s)")
                res = run(progress)
                res.extra["idle_wait_seconds"] = round(waited, 1)
                if args.no_scan:
                    res.lost = max(0, res.expected - res.docs)
                    res.duplicated = max(0, res.docs - res.expected)
                else:
                    tally = scan_seqs(node, res.index, res.expected)
                    res.lost, res.duplicated, res.no_seq, res.scan_seconds = tally.lost, tally.duplicated, tally.no_seq, round(tally.seconds, 1)
                    if tally.docs != res.docs:
                        res.notes.append(f"the scan saw {tally.docs:,} documents, _count {res.docs:,}")
                with contextlib.suppress(Exception):
                    st = node.json("GET", f"/{res.index}/_stats/store")
                    res.extra["index_store_bytes"] = st["_all"]["primaries"]["store"]["size_in_bytes"]
                results.append(res)
        if args.py_spy and Path(args.py_spy).exists():
            info["profile"] = summarize_profile(Path(args.py_spy))
        report = {"info": info,
                  "input": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(inp).items()},
                  "results": [dict(asdict(r), rate=r.rate) for r in results], "ratios": ratios(results)}
        (work / "last-result.json").write_text(json.dumps(report, indent=1, default=str))
        if args.json:
            print(json.dumps(report, indent=1, default=str))
        else:
            render(results, inp, info)
            if "profile" in info:
                render_profile(info["profile"], args.py_spy)
        clean = all(r.reached and r.lost == 0 and r.duplicated == 0 and not r.no_seq for r in results)
        return 0 if clean else 1
    except SetupError as exc:
        print(f"ship_bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ship_bench: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if node is not None and not args.keep:
            for name in indices.values():
                with contextlib.suppress(Exception):
                    node.delete_index(name)


if __name__ == "__main__":
    sys.exit(main())
