#!/usr/bin/env python3
"""Archive benchmark: pang's Parquet archive of one day against raw text, gzip JSON lines and zstd -19.

One invocation, on ONE synthetic day of application logs (``--day``, default
2019-06-01: in the past, because the archiver only takes closed hours, and a
date nothing else uses):

1. **input** (cached under ``--work`` by its parameters): N events of an
   e-commerce shop written as its services write them, one file per pod (raw
   text): Java log4j and logback lines (about half; 9% of them with a
   multi-line stack trace), Go zap and Python structlog JSON lines; a random
   128-bit trace id on 92% of the events, order ids, customer ids, amounts,
   SKUs, latencies; quiet nights and a peak in the afternoon. Every event goes
   through pang's own agent code (``Enricher.file_action``: ``parse_line`` and
   the agent's fields, the same ``_id``: a 128-bit hash of stream and offset),
   which gives the ``_bulk`` bodies of the day's index. The same documents are
   written as gzip JSON lines, one file per hour
   (``json/dt=.../hour=HH/part-0.json.gz``, gzip level 6: the usual S3 output
   of log shippers, without ``_id``; a variant with ``_id`` is measured too),
   and the raw text is compressed with ``zstd -19 --long`` (minutes: cached).
2. **archive from memory** (all N documents): pang's ``archive_window`` for
   every hour, its OpenSearch read replaced by the hour's documents in memory,
   into a ``file://`` archive: the Parquet writing part alone
   (``schema.to_table`` and the writer of ``archive_window``, the same code and
   options), timed. Its bytes and queries are the ones reported.
3. **archive from OpenSearch** (``--index-lines``, default up to 1,000,000;
   indexing the node takes a while on 2 cores): every k-th document, so the
   subset spans the whole day, is indexed into ``logs-app-YYYY.MM.DD`` with
   pre-encoded ``_bulk`` bodies, then ``pang.archive.archiver.run(settings,
   start=day, end=day + 1 day, datasets=["app"], grace=0)`` is timed end to end
   into another ``file://`` archive, and its rows per hour are checked against
   the documents sent. ``--index-lines 0`` skips this phase. The index is
   deleted at the end (``--keep`` keeps it and the archives).
4. **queries** in DuckDB: a count by ``service.name`` and ``log.level`` over
   the day and over one hour, on the archive (``pang.archive.query.connect``,
   the ``logs`` view) and on the gzip JSON lines (``read_ndjson_auto`` over the
   day's files, or the hour's: a shipper's per-hour layout prunes by path),
   best of ``--repeat`` runs, warm page cache; the answers must be equal. A
   message search (``LIKE``) is timed too: not a target, it shows what
   reading whole messages costs.

Targets (the project's clarifications): archive bytes at most ``zstd -19
--long`` of the raw text and at most half of gzip JSON lines; the day's query
at least 100x faster than on gzip JSON lines; the raw-text ratio is printed.
The archive keeps every document's ``_id``, which neither the raw text nor the
usual gzip JSON lines hold (for the agent's file events it is rebuilt from
``log.file.fingerprint`` and ``log.offset``, which every document holds, so the
files store no id for them): the report also compares the same information on
both sides (archive without its ``_id`` columns; gzip JSON lines with ``_id``).
Inputs of generator version 1 (before ``log.file.fingerprint``) are not reused.

    .venv/bin/python bench/archive_bench.py --work /tmp/pang-archive-bench       # 5,000,000 events
    .venv/bin/python bench/archive_bench.py --lines 200000 --index-lines 50000 --json

Exit status: 0 when the run completed (targets are reported, not enforced),
2 on a setup error.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import gzip
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT.parent) not in sys.path and not any((Path(p) / "pang").exists() for p in sys.path if p):
    sys.path.insert(0, str(ROOT.parent))

GENERATOR_VERSION = 2  # 2: documents carry log.file.fingerprint
GZIP_LEVEL = 6  # gzip's own default (Python's gzip module defaults to 9)
ZSTD_ARGS = ["-19", "--long", "-T1"]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class SetupError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------- the input

# (service, log format, pods, share of the day's events)
SERVICES = [
    ("checkout", "log4j", 2, 0.22),
    ("catalog", "log4j", 2, 0.16),
    ("inventory", "logback", 1, 0.12),
    ("cart", "structlog", 2, 0.25),
    ("payment", "zap", 2, 0.25),
]
JAVA_STACK_SHARE = 0.09  # of the Java services' events: about 4.5% of all
NO_TRACE_SHARE = 0.08  # health checks, schedulers, pool stats: no trace id
LOG_PATH = "/pang/logs/app/{service}/app.log"

_CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP", "CHF", "SEK", "PLN"]
_PSPS = ["adyen", "stripe", "paypal", "klarna"]
_WAREHOUSES = ["FRA-1", "FRA-2", "AMS-1", "WAW-1", "MAD-1"]
_SKUS = ["SKU-%05d" % i for i in range(0, 40000, 7)]
_THREADS = ["http-nio-8080-exec-%d" % i for i in range(1, 41)] + ["pool-3-thread-%d" % i for i in range(1, 9)]
_LEVELS = ["INFO"] * 80 + ["DEBUG"] * 8 + ["WARN"] * 10 + ["ERROR"] * 2
_PY_LEVELS = ["info"] * 80 + ["debug"] * 8 + ["warning"] * 10 + ["error"] * 2
_GO_LEVELS = ["info"] * 80 + ["debug"] * 8 + ["warn"] * 10 + ["error"] * 2
_LOGGERS = {
    "checkout": ["com.shop.checkout.OrderService", "com.shop.checkout.CartController", "com.shop.checkout.CheckoutService",
                 "com.shop.payment.GatewayClient", "org.springframework.web.servlet.DispatcherServlet"],
    "catalog": ["com.shop.catalog.ProductController", "com.shop.catalog.SearchService", "com.shop.catalog.PriceCache",
                "org.hibernate.SQL"],
    "inventory": ["c.s.inventory.StockReservationService", "c.s.inventory.WarehouseClient", "o.s.web.servlet.DispatcherServlet"],
}
_HTTP_PATHS = ["/api/v1/cart", "/api/v1/cart/items", "/api/v1/checkout", "/api/v1/orders", "/api/v1/products/%s",
               "/api/v1/payments/authorize", "/api/v1/customers/me", "/api/v1/search?q=%s"]
_CART_EVENTS = [("cart.item_added", "item added to cart"), ("cart.item_removed", "item removed from cart"),
                ("cart.viewed", "cart viewed"), ("cart.checked_out", "cart checked out"), ("promo.applied", "promo code applied")]
_PAY_EVENTS = [("payment.authorized", "payment authorized"), ("payment.declined", "payment declined"),
               ("payment.captured", "payment captured"), ("refund.issued", "refund issued"), ("psp.retry", "retrying PSP call")]
_EXCEPTIONS = [
    ("com.shop.payment.GatewayException", "upstream returned 503 for order %s", "java.net.SocketTimeoutException", "Read timed out"),
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
    "java.base/java.lang.reflect.Method.invoke(Method.java:568)",
    "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)",
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


def hour_weights() -> list[float]:
    """A shop's day (UTC): quiet at night, a peak in the afternoon."""
    return [0.25 + 0.75 * (0.5 - 0.5 * math.cos(2 * math.pi * (h - 3) / 24)) ** 1.5 for h in range(24)]


@dataclass
class Stream:
    service: str
    fmt: str
    pod: str
    agent_id: str
    path: Path  # the raw file on disk
    offset: int = 0


@dataclass
class InputSet:
    folder: Path
    day: str
    events: int
    raw_bytes: int
    raw_files: list[str]
    kinds: dict[str, int]
    hours: dict[int, int]  # events per hour
    gzip_json_bytes: int
    json_bytes: int  # uncompressed JSON lines
    id_bytes: int  # the _id strings of all documents (not in the JSON lines)

    def bulk_file(self, hour: int) -> Path:
        return self.folder / "bulk" / f"hour={hour:02d}.ndjson"

    def json_hour(self, hour: int) -> Path:
        return self.folder / "json" / f"dt={self.day}" / f"hour={hour:02d}" / "part-0.json.gz"


def input_key(n: int, day: str, seed: int) -> str:
    return f"input-v{GENERATOR_VERSION}-{n}-{day}-s{seed}"


def prepare_input(work: Path, n: int, day: str, seed: int) -> InputSet:
    """The cached input for these parameters, generated on first use."""
    folder = work / input_key(n, day, seed)
    meta_path = folder / "meta.json"  # written last: its presence means the input is complete
    if meta_path.exists():
        return _input_set(folder, json.loads(meta_path.read_text()))
    return _generate(folder, n, day, seed)


def _input_set(folder: Path, meta: dict[str, Any]) -> InputSet:
    fields = {k: v for k, v in meta.items() if k in InputSet.__dataclass_fields__}
    fields["hours"] = {int(k): v for k, v in meta["hours"].items()}
    return InputSet(folder=folder, **fields)


def _generate(folder: Path, n: int, day: str, seed: int) -> InputSet:
    from pang.shippers.documents import Enricher
    from pang.shippers.source.files import FileEvent

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "raw").mkdir(parents=True)
    (folder / "bulk").mkdir()
    say(f"generating {n:,} events of {day} into {folder} (cached for the next runs)")
    t0 = time.monotonic()
    rng = random.Random(seed)
    rand, choice, randint, bits = rng.random, rng.choice, rng.randint, rng.getrandbits
    streams: list[Stream] = []
    weights: list[float] = []
    for service, fmt_, pods, share in SERVICES:
        for _ in range(pods):
            pod = "%s-%010x-%s" % (service, bits(40), "".join(choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)))
            streams.append(Stream(service, fmt_, pod, "%016x" % bits(64), folder / "raw" / f"{pod}.log"))
            weights.append(share / pods)
    enrichers = {s.pod: Enricher(agent_id=s.agent_id, host_name=s.pod, environment="production",
                                 version="1.%d.%d" % (randint(10, 60), randint(0, 9))) for s in streams}
    keys = {s.pod: "%032x" % bits(128) for s in streams}  # the agent's stream key (fingerprint of the file's head)
    files = {s.pod: open(s.path, "w", encoding="utf-8", buffering=1 << 20) for s in streams}
    cum = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc / sum(weights))
    hw = hour_weights()
    per_hour = [int(n * w / sum(hw)) for w in hw]
    per_hour[15] += n - sum(per_hour)
    base = datetime.fromisoformat(day).replace(tzinfo=UTC)
    base_ms = int(base.timestamp() * 1000)
    kinds = {"log4j": 0, "logback": 0, "structlog": 0, "zap": 0, "stacktrace": 0}
    gz_total = json_total = id_total = 0
    for hour in range(24):
        count = per_hour[hour]
        offsets = sorted(rng.randrange(3_600_000) for _ in range(count))
        bulk_path = folder / "bulk" / f"hour={hour:02d}.ndjson"
        json_path = folder / "json" / f"dt={day}" / f"hour={hour:02d}" / "part-0.json.gz"
        json_path.parent.mkdir(parents=True)
        with open(bulk_path, "wb", buffering=1 << 20) as bulk, open(json_path, "wb") as raw_gz, \
                gzip.GzipFile(fileobj=raw_gz, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
            for off in offsets:
                ms = base_ms + hour * 3_600_000 + off
                s = streams[bisect.bisect_left(cum, rand())]
                text, kind = _event_text(s, ms, rng)
                kinds[kind] += 1
                received_ms = ms + 150 + int(rng.expovariate(1 / 900))
                received = _iso_ms(received_ms)
                ev = FileEvent(text, keys[s.pod], s.offset, LOG_PATH.format(service=s.service), s.service, False, False)
                action = enrichers[s.pod].file_action(ev, received)
                line = text + "\n"
                files[s.pod].write(line)
                s.offset += len(line.encode())
                bulk.write(action)
                meta_end = action.index(b"\n")
                source = action[meta_end + 1 : -1]
                gz.write(source + b"\n")
                json_total += len(source) + 1
                id_total += 32
        gz_total += json_path.stat().st_size
        say(f"  hour {hour:02d}: {count:,} events ({time.monotonic() - t0:.0f} s)")
    for fh in files.values():
        fh.close()
    raw_bytes = sum(s.path.stat().st_size for s in streams)
    meta = {
        "day": day, "events": n, "raw_bytes": raw_bytes, "raw_files": sorted(str(s.path.name) for s in streams),
        "kinds": kinds, "hours": {h: c for h, c in enumerate(per_hour)}, "gzip_json_bytes": gz_total,
        "json_bytes": json_total, "id_bytes": id_total, "seed": seed, "generator_version": GENERATOR_VERSION,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    say(f"  {raw_bytes / 1e6:,.1f} MB of raw text, {json_total / 1e6:,.1f} MB of JSON lines in {time.monotonic() - t0:.0f} s")
    return _input_set(folder, meta)


def _iso_ms(ms: int) -> str:
    t = datetime.fromtimestamp(ms / 1000, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def _event_text(s: Stream, ms: int, rng: random.Random) -> tuple[str, str]:
    """One event as the service writes it (without the final newline) and its kind."""
    rand, choice, randint, bits = rng.random, rng.choice, rng.randint, rng.getrandbits
    t = datetime.fromtimestamp(ms / 1000, UTC)
    hms = t.strftime("%Y-%m-%d %H:%M:%S")
    msec = ms % 1000
    traced = rand() >= NO_TRACE_SHARE
    trace = "%032x" % bits(128)
    order = "ORD-%08X" % bits(32)
    customer = "C-%06d" % randint(1, 999999)
    amount = round(rand() * 400 + 3, 2)
    sku = choice(_SKUS)
    if s.fmt in ("log4j", "logback"):
        loggers = _LOGGERS[s.service]
        if rand() < JAVA_STACK_SHARE:
            exc, msg, cause, cause_msg = choice(_EXCEPTIONS)
            head = "Checkout failed order_id=%s customer_id=%s amount=%.2f" % (order, customer, amount)
            if traced:
                head += " trace_id=" + trace
            lines = [_java_line(s.fmt, hms, msec, "ERROR", choice(_THREADS[:40]), choice(loggers), head), "%s: %s" % (exc, msg % order)]
            k = randint(6, len(_FRAMES))
            lines.extend("\tat " + f for f in _FRAMES[:k])
            if cause:
                lines.append("Caused by: %s: %s" % (cause, cause_msg))
                lines.extend("\tat " + f for f in rng.sample(_CAUSE_FRAMES, randint(2, len(_CAUSE_FRAMES))))
                lines.append("\t... %d common frames omitted" % (k - 1))
            return "\n".join(lines), "stacktrace"
        level = choice(_LEVELS)
        thread = choice(_THREADS)
        if not traced:
            m = randint(0, 2)
            if m == 0:
                msg = "GET /health -> 200 in %dms" % randint(0, 5)
            elif m == 1:
                msg = "HikariPool-1 - Pool stats (total=%d, active=%d, idle=%d, waiting=%d)" % (
                    20, randint(0, 20), randint(0, 20), randint(0, 3))
            else:
                msg = "Scheduled job %s finished in %d ms" % (choice(("priceRefresh", "stockSync", "cartCleanup")), randint(5, 9000))
            thread = choice(("scheduling-1", "HikariPool-1 housekeeper", "http-nio-8080-exec-1"))
            return _java_line(s.fmt, hms, msec, level, thread, choice(loggers), msg), s.fmt
        m = randint(0, 5)
        if s.service == "checkout":
            if m <= 1:
                msg = "Order placed order_id=%s customer_id=%s items=%d amount=%.2f currency=%s" % (
                    order, customer, randint(1, 9), amount, choice(_CURRENCIES))
            elif m == 2:
                msg = "Payment authorized order_id=%s psp=%s amount=%.2f latency_ms=%d" % (order, choice(_PSPS), amount, randint(40, 2500))
            elif m == 3:
                msg = "Cart checked out cart_id=%08x sku=%s qty=%d" % (bits(32), sku, randint(1, 5))
            else:
                msg = _http(rng, sku)
        elif s.service == "catalog":
            if m <= 2:
                msg = _http(rng, sku)
            elif m == 3:
                msg = "Cache miss key=product:%s region=%s" % (sku, choice(_WAREHOUSES))
            elif m == 4:
                msg = "Slow query detected took_ms=%d query=select_products_by_category rows=%d" % (randint(500, 9000), randint(0, 400))
            else:
                msg = "Product viewed sku=%s customer_id=%s price=%.2f" % (sku, customer, amount)
        else:
            if m <= 2:
                msg = "Stock reserved sku=%s warehouse=%s qty=%d order_id=%s" % (sku, choice(_WAREHOUSES), randint(1, 4), order)
            elif m == 3:
                msg = "Stock level sku=%s warehouse=%s available=%d" % (sku, choice(_WAREHOUSES), randint(0, 5000))
            elif m == 4:
                msg = "Reservation released order_id=%s reason=%s" % (order, choice(("timeout", "cancelled", "payment_declined")))
            else:
                msg = _http(rng, sku)
        return _java_line(s.fmt, hms, msec, level, thread, choice(loggers), msg + " trace_id=" + trace), s.fmt
    if s.fmt == "structlog":
        action, text = choice(_CART_EVENTS)
        rec: dict[str, Any] = {
            "timestamp": "%sT%s.%03d%03dZ" % (hms[:10], hms[11:], msec, randint(0, 999)), "level": choice(_PY_LEVELS),
            "event": text if rand() < 0.5 else action, "logger": "shop.cart",
        }
        if traced:
            rec.update(trace_id=trace, span_id="%016x" % bits(64))
        rec.update(cart_id="%08x" % bits(32), customer_id=customer, sku=sku, qty=randint(1, 5), amount=amount,
                   currency=choice(_CURRENCIES))
        return json.dumps(rec), "structlog"
    action, text = choice(_PAY_EVENTS)
    rec = {"level": choice(_GO_LEVELS), "ts": _iso_ms(ms), "logger": "payments",
           "caller": "payments/%s.go:%d" % (action.split(".")[0], choice((41, 88, 120, 214, 301))), "msg": text}
    if traced:
        rec.update(trace_id=trace, span_id="%016x" % bits(64))
    rec.update(order_id=order, amount=amount, currency=choice(_CURRENCIES), psp=choice(_PSPS), latency_ms=randint(3, 2500),
               http={"method": "POST", "status": choice((200, 200, 200, 201, 402, 409, 502))})
    return json.dumps(rec, separators=(",", ":")), "zap"


def _java_line(fmt_: str, hms: str, msec: int, level: str, thread: str, logger: str, msg: str) -> str:
    if fmt_ == "log4j":  # %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%t] %c - %m
        return "%s,%03d %-5s [%s] %s - %s" % (hms, msec, level, thread, logger, msg)
    return "%s.%03d [%s] %-5s %s - %s" % (hms, msec, thread, level, logger, msg)  # logback


def _http(rng: random.Random, sku: str) -> str:
    path = rng.choice(_HTTP_PATHS)
    return "%s %s -> %d in %dms" % (rng.choice(("GET", "GET", "GET", "POST", "PUT", "DELETE")), path % sku if "%s" in path else path,
                                    rng.choice((200, 200, 200, 201, 204, 400, 404, 500)), rng.randint(1, 900))


def read_hits(inp: InputSet, hour: int, every: int = 1) -> list[dict[str, Any]]:
    """The hour's documents as OpenSearch returns them (``_id`` and ``_source``)."""
    hits = []
    with open(inp.bulk_file(hour), "rb") as fh:
        i = 0
        for meta in fh:
            source = fh.readline()
            if i % every == 0:
                hits.append({"_id": orjson.loads(meta)["index"]["_id"], "_source": orjson.loads(source)})
            i += 1
    return hits


# --------------------------------------------------------------------------------------- baselines


def zstd_raw(inp: InputSet) -> dict[str, Any]:
    """``zstd -19 --long`` of every raw file (cached beside the input: it takes minutes)."""
    cache = inp.folder / "zstd.json"
    if cache.exists():
        return json.loads(cache.read_text())
    files = sorted((inp.folder / "raw").glob("*.log"))
    exe = shutil.which("zstd")
    say(f"compressing {inp.raw_bytes / 1e6:,.0f} MB of raw text with "
        f"{'zstd ' + ' '.join(ZSTD_ARGS) if exe else 'python zstandard (level 19, long distance matching)'} "
        "(cached for the next runs)")
    t0 = time.monotonic()

    def one(path: Path) -> int:
        if exe:
            proc = subprocess.Popen([exe, *ZSTD_ARGS, "-q", "-c", str(path)], stdout=subprocess.PIPE)
            assert proc.stdout is not None
            n = 0
            while chunk := proc.stdout.read(1 << 20):
                n += len(chunk)
            if proc.wait() != 0:
                raise SetupError(f"zstd failed on {path}")
            return n
        import zstandard

        params = zstandard.ZstdCompressionParameters.from_level(19, enable_ldm=True, window_log=27)
        with open(path, "rb") as fh:
            return len(zstandard.ZstdCompressor(compression_params=params).compress(fh.read()))

    with ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
        sizes = list(pool.map(one, files))
    result = {"bytes": sum(sizes), "tool": f"zstd {' '.join(ZSTD_ARGS)}" if exe else "python zstandard 19 ldm",
              "version": _zstd_version(exe), "files": len(files), "seconds": round(time.monotonic() - t0, 1)}
    cache.write_text(json.dumps(result, indent=1))
    return result


def _zstd_version(exe: str | None) -> str:
    if not exe:
        import zstandard

        return f"python-zstandard {zstandard.__version__}"
    with contextlib.suppress(Exception):
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    return "?"


def gzip_json_with_ids(inp: InputSet) -> int:
    """The gzip JSON lines again, each document with its ``_id`` (the same information as the archive)."""
    cache = inp.folder / "gzip-json-with-id.json"
    if cache.exists():
        return int(json.loads(cache.read_text())["bytes"])
    say("gzip JSON lines with _id (cached for the next runs)")
    total = 0
    for hour in range(24):
        comp = _Counter()
        with gzip.GzipFile(fileobj=comp, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz, open(inp.bulk_file(hour), "rb") as fh:
            for meta in fh:
                source = fh.readline()
                doc_id = orjson.loads(meta)["index"]["_id"]
                gz.write(b'{"_id":%s,%s' % (orjson.dumps(doc_id), source[1:]))
        total += comp.n
    cache.write_text(json.dumps({"bytes": total}))
    return total


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)

    def flush(self) -> None:
        pass


# --------------------------------------------------------------------------------------- archiving


@dataclass
class ArchivePhase:
    name: str
    rows: int = 0
    seconds: float = 0.0
    to_table_seconds: float | None = None
    bytes: int = 0
    windows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def archive_from_memory(settings: Any, inp: InputSet, day: datetime, folder: Path) -> ArchivePhase:
    """``archive_window`` for every hour, its OpenSearch read replaced by the hour's documents in memory."""
    from pang.archive import archiver
    from pang.archive.layout import Window
    from pang.archive.store import open_store
    from pang.indexer.windows import WindowRead

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    settings = settings.model_copy(update={"archive_url": folder.as_uri()})
    store = open_store(settings)
    phase = ArchivePhase("archive_window from memory", to_table_seconds=0.0)
    real_to_table = archiver.to_table
    load_seconds = 0.0

    def timed_to_table(hits: list[dict[str, Any]]) -> Any:
        t = time.perf_counter()
        table = real_to_table(hits)
        phase.to_table_seconds = (phase.to_table_seconds or 0.0) + time.perf_counter() - t
        return table

    for hour in range(24):
        t = time.perf_counter()
        hits = read_hits(inp, hour)
        load_seconds += time.perf_counter() - t
        if not hits:
            continue
        window = Window("app", day + timedelta(hours=hour))
        source = WindowRead(len(hits), iter(hits))
        with patched(archiver, "read_window", lambda *_a, **_k: source), patched(archiver, "to_table", timed_to_table):
            t = time.perf_counter()
            res = archiver.archive_window(settings, store, window, zstd_level=settings.archive_zstd_level)
            phase.seconds += time.perf_counter() - t
        phase.rows += res.rows
        phase.bytes += res.bytes
        phase.windows += 1
        del hits, source
        say(f"  {window}: {res.rows:,} rows, {res.bytes / 1e6:,.1f} MB in {res.seconds:.1f} s")
    phase.extra["json_decode_seconds"] = round(load_seconds, 1)
    phase.extra["archive"] = folder.as_uri()
    return phase


def column_sizes(folder: Path) -> dict[str, int]:
    """Compressed bytes per Parquet column over the archive's files."""
    import pyarrow.parquet as pq

    out: dict[str, int] = {}
    for path in sorted(folder.rglob("*.parquet")):
        md = pq.ParquetFile(path).metadata
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            for c in range(group.num_columns):
                col = group.column(c)
                name = col.path_in_schema.replace(".list.element", "").replace(".list.item", "")
                out[name] = out.get(name, 0) + col.total_compressed_size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def index_subset(settings: Any, inp: InputSet, index: str, every: int, streams: int = 2) -> dict[str, Any]:
    """Every ``every``-th document of the day into ``index``, with pre-encoded ``_bulk`` bodies."""
    from pang.indexer.client import connection
    from pang.shippers.sink.bulk import BulkClient

    bulk = BulkClient(connection(settings), maxsize=streams)
    batch_bytes = settings.ship_batch_bytes

    per_hour: dict[int, int] = {}

    def bodies() -> Iterator[list[bytes]]:
        for hour in range(24):
            batch: list[bytes] = []
            size = 0
            with open(inp.bulk_file(hour), "rb") as fh:
                i = 0
                for meta in fh:
                    source = fh.readline()
                    if i % every == 0:
                        per_hour[hour] = per_hour.get(hour, 0) + 1
                        action = meta + source
                        batch.append(action)
                        size += len(action)
                        if size >= batch_bytes:
                            yield batch
                            batch, size = [], 0
                    i += 1
            if batch:
                yield batch

    def post(batch: list[bytes]) -> None:
        for attempt in range(30):
            result = bulk.post(batch)
            if result.rejected:
                raise SetupError(f"{len(result.rejected)} documents rejected: {result.rejected[:2]}")
            if not result.retry:
                return
            batch = [batch[i] for i in result.retry]  # 429 or 5xx: again, with backoff
            time.sleep(min(5.0, 0.2 * 2**attempt))
        raise SetupError("the node kept answering 429/5xx")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        pending: list[Any] = []
        n = 0
        for batch in bodies():
            n += len(batch)
            pending.append(pool.submit(post, batch))
            if len(pending) >= 2 * streams:
                pending.pop(0).result()
        for f in pending:
            f.result()
    seconds = time.perf_counter() - t0
    bulk.close()
    from pang.indexer.client import client

    es = client(settings)
    es.indices.refresh(index=index)
    count = int(es.count(index=index)["count"])
    if count != n:
        raise SetupError(f"{index} holds {count:,} documents, {n:,} were sent")
    return {"docs": n, "seconds": round(seconds, 1), "docs_per_s": round(n / seconds) if seconds else None,
            "per_hour": per_hour}


def archive_from_opensearch(settings: Any, inp: InputSet, day: datetime, folder: Path, index_lines: int) -> ArchivePhase:
    from pang.archive.archiver import run
    from pang.indexer.client import client

    es = client(settings)
    index = f"logs-app-{day:%Y.%m.%d}"
    if not es.indices.exists_index_template(name="pang-logs-app"):
        say("warning: index template pang-logs-app is missing (run `pang index setup`): documents get dynamic mappings")
    es.indices.delete(index=index, ignore_unavailable=True)
    every = max(1, round(inp.events / index_lines))
    say(f"indexing every {every}th document of the day into {index} ...")
    indexed = index_subset(settings, inp, index, every)
    say(f"  {indexed['docs']:,} documents in {indexed['seconds']} s ({indexed['docs_per_s']:,} docs/s)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    arch = settings.model_copy(update={"archive_url": folder.as_uri()})
    say("archiving them with pang.archive.archiver.run ...")
    t0 = time.perf_counter()
    result = run(arch, start=day, end=day + timedelta(days=1), datasets=["app"], grace=timedelta(0))
    seconds = time.perf_counter() - t0
    phase = ArchivePhase("archiver.run from OpenSearch", rows=sum(w.rows for w in result.archived), seconds=seconds,
                         bytes=sum(w.bytes for w in result.archived), windows=len(result.archived))
    phase.extra.update(index=index, every=every, indexing=indexed, archive=folder.as_uri())
    got = {w.window.start.hour: w.rows for w in result.archived}
    if got != indexed["per_hour"]:
        raise SetupError(f"archived rows per hour {got} differ from the documents indexed {indexed['per_hour']}")
    del indexed["per_hour"]
    return phase


# --------------------------------------------------------------------------------------- queries


@dataclass
class QueryResult:
    name: str
    parquet_seconds: float
    json_seconds: float
    rows: int
    equal: bool

    @property
    def speedup(self) -> float:
        return self.json_seconds / self.parquet_seconds if self.parquet_seconds else float("inf")


def _best(con: Any, sql: str, repeat: int, enough: float = 20.0) -> tuple[float, list[tuple[Any, ...]]]:
    """The best of ``repeat`` runs (fewer when a run takes more than ``enough`` seconds: noise is small then)."""
    times: list[float] = []
    rows: list[tuple[Any, ...]] = []
    while len(times) < repeat and sum(times) < enough:
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    return min(times), sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def run_queries(settings: Any, inp: InputSet, archive: Path, repeat: int, hour: int,
                search: str | None) -> tuple[list[QueryResult], dict[str, str]]:
    import duckdb

    from pang.archive.query import connect

    arch = settings.model_copy(update={"archive_url": archive.as_uri()})
    day = inp.day
    group = 'SELECT service.name AS service, log.level AS level, count(*) AS n FROM {src} WHERE {where} GROUP BY ALL'
    pq_con = connect(arch)
    js_con = duckdb.connect()
    js_con.execute("SET autoload_known_extensions = false")
    js_con.execute("SET autoinstall_known_extensions = false")
    # A person globs the files of the day, or of the hour, as a shipper's S3 output lays them out. (A glob of
    # everything plus a hive filter prunes files too, but schema detection then samples every file: slower.)
    folder = inp.folder / "json"
    json_day = f"read_ndjson_auto('{folder}/dt={day}/*/*.json.gz', hive_partitioning = true)"
    json_hour = f"read_ndjson_auto('{folder}/dt={day}/hour={hour:02d}/*.json.gz', hive_partitioning = true)"
    sqls = {}
    out = []
    queries = [("day", group, f"dt = '{day}'", json_day),
               (f"hour {hour:02d}", group, f"dt = '{day}' AND hour = {hour}", json_hour)]
    if search:  # not a target: what reading whole messages costs
        queries.append(("day, message search", "SELECT count(*) AS n FROM {src} WHERE {where}",
                        "dt = '%s' AND message LIKE '%%%s%%'" % (day, search.replace("'", "''")), json_day))
    for name, sql, where, src_json in queries:
        sql_pq = sql.format(src="logs", where=where)
        sql_js = sql.format(src=src_json, where=where)
        sqls[f"{name} parquet"] = sql_pq
        sqls[f"{name} gzip json"] = sql_js
        t_pq, rows_pq = _best(pq_con, sql_pq, repeat)
        t_js, rows_js = _best(js_con, sql_js, repeat)
        counted = sum(r[-1] for r in rows_pq)
        out.append(QueryResult(name, t_pq, t_js, counted, rows_pq == rows_js))
        say(f"  {name}: parquet {t_pq * 1000:,.1f} ms, gzip JSON {t_js * 1000:,.0f} ms ({t_js / t_pq:,.0f}x), "
            f"{counted:,} rows, same answer: {rows_pq == rows_js}")
    pq_con.close()
    js_con.close()
    return out, sqls


# --------------------------------------------------------------------------------------- report


def fmt(v: float | int | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def build_report(args: argparse.Namespace, inp: InputSet, zstd: dict[str, Any], gz_id: int, memory: ArchivePhase,
                 opensearch: ArchivePhase | None, queries: list[QueryResult], sqls: dict[str, str],
                 columns: dict[str, int], info: dict[str, Any]) -> dict[str, Any]:
    rows = memory.rows
    archive = memory.bytes
    id_bytes = sum(v for k, v in columns.items() if k == "_id" or k.startswith("_id_"))
    sizes = {
        "raw text": inp.raw_bytes,
        "gzip JSON lines": inp.gzip_json_bytes,
        "gzip JSON lines with _id": gz_id,
        "zstd -19 --long raw text": zstd["bytes"],
        "pang archive (Parquet)": archive,
        "pang archive without the _id columns": archive - id_bytes,
    }
    day_q = queries[0] if queries else None
    targets = {
        "archive <= zstd -19 --long of the raw text": archive <= zstd["bytes"],
        "archive <= half of gzip JSON lines": archive <= inp.gzip_json_bytes / 2,
        "day query >= 100x faster than on gzip JSON lines": bool(day_q and day_q.speedup >= 100),
    }
    targets_same_information = {
        "archive without _id <= zstd -19 --long of the raw text (which has no _id)": archive - id_bytes <= zstd["bytes"],
        "archive <= half of gzip JSON lines with _id": archive <= gz_id / 2,
    }
    ratios = {
        "raw text / archive": inp.raw_bytes / archive,
        "gzip JSON lines / archive": inp.gzip_json_bytes / archive,
        "zstd -19 --long / archive": zstd["bytes"] / archive,
        "raw text / zstd -19 --long": inp.raw_bytes / zstd["bytes"],
        "raw text / gzip JSON lines": inp.raw_bytes / inp.gzip_json_bytes,
    }
    for q in queries:
        ratios[f"{q.name} query: gzip JSON / parquet"] = q.speedup
    return {
        "info": info,
        "input": {k: v for k, v in asdict(inp).items() if k != "folder"} | {"folder": str(inp.folder)},
        "sizes": {k: {"bytes": v, "bytes_per_row": v / rows} for k, v in sizes.items()},
        "zstd": zstd,
        "archive_columns": {k: {"bytes": v, "bytes_per_row": round(v / rows, 3)} for k, v in columns.items()},
        "throughput": [dict(asdict(p), rows_per_s=p.rate) for p in (memory, opensearch) if p],
        "queries": [dict(asdict(q), speedup=q.speedup) for q in queries],
        "sql": sqls,
        "ratios": ratios,
        "targets": targets,
        "targets_same_information": targets_same_information,
    }


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    info, inp = report["info"], report["input"]
    rows = inp["events"]
    out.print(f"\n[bold]pang archive benchmark[/]  schema v{info['schema_version']}, zstd level {info['zstd_level']}, "
              f"{info['cpus']} CPUs; one day ({inp['day']}) of {rows:,} events "
              f"({', '.join(f'{k} {v:,}' for k, v in inp['kinds'].items())})")
    t = Table(title="size of the day")
    for col in ("form", "MB", "bytes/row", "raw text / this", "this / archive"):
        t.add_column(col, justify="left" if col == "form" else "right")
    archive = report["sizes"]["pang archive (Parquet)"]["bytes"]
    raw = report["sizes"]["raw text"]["bytes"]
    for name, s in report["sizes"].items():
        t.add_row(name, fmt(s["bytes"] / 1e6, ",.1f"), fmt(s["bytes_per_row"], ",.1f"), fmt(raw / s["bytes"], ",.2f"),
                  fmt(s["bytes"] / archive, ",.2f"))
    out.print(t)
    cols = report["archive_columns"]
    out.print("archive columns (bytes/row): " + ", ".join(f"{k} {v['bytes_per_row']:.2f}" for k, v in list(cols.items())[:14]))
    t = Table(title="archive throughput")
    for col in ("phase", "rows", "windows", "seconds", "rows/s", "to_table s", "notes"):
        t.add_column(col, justify="left" if col in ("phase", "notes") else "right")
    for p in report["throughput"]:
        notes = ""
        if "indexing" in p["extra"]:
            ix = p["extra"]["indexing"]
            notes = f"every {p['extra']['every']}th document, indexed at {ix['docs_per_s']:,} docs/s"
        else:
            notes = f"all rows; to_table + Parquet writer of archive_window, no OpenSearch"
        t.add_row(p["name"], fmt(p["rows"]), fmt(p["windows"]), fmt(p["seconds"], ",.1f"), fmt(p["rows_per_s"]),
                  fmt(p["to_table_seconds"], ",.1f"), notes)
    out.print(t)
    t = Table(title="DuckDB: count by service.name and log.level over the day and one hour, and a message search "
                    "(best of %d, warm cache)" % info["repeat"])
    for col in ("query", "rows counted", "Parquet ms", "gzip JSON ms", "gzip JSON / Parquet", "same answer"):
        t.add_column(col, justify="left" if col == "query" else "right")
    for q in report["queries"]:
        t.add_row(q["name"], fmt(q["rows"]), fmt(q["parquet_seconds"] * 1000, ",.1f"), fmt(q["json_seconds"] * 1000, ",.0f"),
                  fmt(q["speedup"], ",.0f") + "x", "yes" if q["equal"] else "[red]NO[/]")
    out.print(t)
    for name, value in report["ratios"].items():
        out.print(f"  {name}: [bold]{value:,.2f}x[/]")
    out.print("targets:")
    for name, ok in report["targets"].items():
        out.print(f"  {'[green]met[/]    ' if ok else '[red]not met[/]'} {name}")
    out.print("with the same information on both sides (the archive keeps each document's _id, a random 128-bit hash "
              "for file events):")
    for name, ok in report["targets_same_information"].items():
        out.print(f"  {'[green]met[/]    ' if ok else '[red]not met[/]'} {name}")


# --------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=5_000_000, help="log events in the day (default 5,000,000)")
    ap.add_argument("--index-lines", type=int, default=None,
                    help="documents indexed into OpenSearch for the end-to-end archiver run (default: up to 1,000,000; 0: skip)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pang-archive-bench"), help="work folder (input cache, archives)")
    ap.add_argument("--day", default="2019-06-01",
                    help="the day (default 2019-06-01: past, so its hours are closed, and an index nothing else uses)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hour", type=int, default=15, help="the hour of the one-hour query (default 15, the peak)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each query, the best is reported (default 3; runs stop after 20 s)")
    ap.add_argument("--search", default="payment declined",
                    help="also time a count of the day's messages holding this text (not a target; '' to skip)")
    ap.add_argument("--zstd-level", type=int, default=None,
                    help="zstd level of the Parquet files (default: the settings' PANG_ARCHIVE_ZSTD_LEVEL)")
    ap.add_argument("--keep", action="store_true", help="keep the day's index and the archives at the end")
    ap.add_argument("--json", action="store_true", help="print the report as JSON on stdout (no table)")
    args = ap.parse_args(argv)
    if args.lines < 24:
        ap.error("--lines must be at least 24")
    if args.index_lines is None:
        args.index_lines = min(args.lines, 1_000_000)
    try:
        datetime.strptime(args.day, "%Y-%m-%d")
    except ValueError:
        ap.error("--day must be YYYY-MM-DD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pang.archive.schema import SCHEMA_VERSION
    from pang.settings import load_settings

    settings = load_settings()
    if args.zstd_level is not None:
        settings = settings.model_copy(update={"archive_zstd_level": args.zstd_level})
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    day = datetime.fromisoformat(args.day).replace(tzinfo=UTC)
    mem_folder = work / "archive-memory"
    os_folder = work / "archive-opensearch"
    index = f"logs-app-{day:%Y.%m.%d}"
    import pang.archive.schema

    info: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "schema_module": pang.archive.schema.__file__,
                            "zstd_level": settings.archive_zstd_level, "cpus": os.cpu_count(),
                            "repeat": args.repeat, "opensearch": settings.opensearch_url,
                            "load_average_at_start": os.getloadavg(),
                            "started": datetime.now(UTC).isoformat(timespec="seconds")}
    if os.getloadavg()[0] > 0.5:
        say(f"warning: load average {os.getloadavg()[0]:.2f}: the machine is not idle, times will be noisy")
    opensearch_phase = None
    try:
        inp = prepare_input(work, args.lines, args.day, args.seed)
        zstd = zstd_raw(inp)
        gz_id = gzip_json_with_ids(inp)
        say(f"archive_window from memory, all {inp.events:,} documents, schema v{SCHEMA_VERSION} ...")
        memory = archive_from_memory(settings, inp, day, mem_folder)
        columns = column_sizes(mem_folder)
        if args.index_lines:
            try:
                opensearch_phase = archive_from_opensearch(settings, inp, day, os_folder, args.index_lines)
            except SetupError:
                raise
            except Exception as exc:  # the node is down or refuses: report the rest
                raise SetupError(f"OpenSearch phase failed: {exc!r} (is the stack up? `.venv/bin/pang stack up`)") from exc
        say("queries ...")
        queries, sqls = run_queries(settings, inp, mem_folder, args.repeat, args.hour, args.search or None)
        info["load_average_at_end"] = os.getloadavg()
        report = build_report(args, inp, zstd, gz_id, memory, opensearch_phase, queries, sqls, columns, info)
        (work / "last-result.json").write_text(json.dumps(report, indent=1, default=str))
        if args.json:
            print(json.dumps(report, indent=1, default=str))
        else:
            render(report)
        return 0
    except SetupError as exc:
        print(f"archive_bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archive_bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                from pang.indexer.client import client

                if args.index_lines:
                    client(settings).indices.delete(index=index, ignore_unavailable=True)
            shutil.rmtree(mem_folder, ignore_errors=True)
            shutil.rmtree(os_folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
