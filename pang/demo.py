"""The demo: the whole pipeline as far as it exists, on synthetic traffic.

Today: the local stack and templates; synthetic e-commerce logs written as
files under ``<state>/demo/logs/<service>/`` (log4j lines, JSON lines, Java
stack traces) and a few syslog messages; the real agent (`pang ship`) shipping
them; a search over the result. Running it again in the same hour rewrites
the same files and ships nothing twice (checkpoints and deterministic ids).
Later issues add the archive and the dashboards here.
"""

from __future__ import annotations

import logging
import logging.handlers
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from pang import stack
from pang.indexer.client import client
from pang.indexer.search import search
from pang.settings import Settings
from pang.stack.progress import step

SERVICES = ("gateway", "search", "cart", "order", "payment", "shipment")
MESSAGES = {
    "gateway": ["GET /api/products 200", "POST /api/cart 200", "GET /api/orders 504 upstream timeout"],
    "search": ["query served hits=24", "index refresh took 120ms"],
    "cart": ["item added to cart", "cart checked out"],
    "order": ["order placed", "order validation failed: address missing"],
    "payment": ["payment approved", "payment declined: insufficient funds", "payment provider timeout"],
    "shipment": ["label printed", "carrier pickup scheduled"],
}
TRACE = (
    "java.lang.IllegalStateException: provider answered 503\n"
    "\tat com.shop.payment.Provider.charge(Provider.java:88)\n"
    "\tat com.shop.payment.PaymentService.pay(PaymentService.java:41)\n"
    "Caused by: java.net.SocketTimeoutException: read timed out\n"
    "\t... 7 more"
)


def write_demo_logs(root: Path, events: int, *, end: datetime, seed: int = 42) -> int:
    """Write ``events`` log events over the hour before ``end``; the same hour gives the same files."""
    rng = random.Random(f"{seed}:{end.isoformat()}")
    out: dict[str, list[str]] = {s: [] for s in SERVICES}
    times = sorted(end - timedelta(seconds=rng.uniform(0, 3600)) for _ in range(events))
    for ts in times:
        service = rng.choice(SERVICES)
        message = rng.choice(MESSAGES[service])
        level = "ERROR" if any(w in message for w in ("failed", "declined", "timeout", "504")) else "INFO"
        trace_id = f"{rng.getrandbits(128):032x}"
        if service in ("order", "payment", "gateway"):  # JSON-logging services
            line = orjson.dumps({
                "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": level.lower(), "message": message, "trace_id": trace_id,
                "order_id": rng.randint(10**6, 10**7),
            }).decode()
        else:
            stamp = ts.strftime("%Y-%m-%d %H:%M:%S,") + f"{ts.microsecond // 1000:03d}"
            line = f"{stamp} {level} [http-nio-8080-exec-{rng.randint(1, 20)}] com.shop.{service}.Handler - {message} trace={trace_id}"
            if level == "ERROR" and rng.random() < 0.3:
                line += "\n" + TRACE
        out[service].append(line)
    for service, lines in out.items():
        path = root / service / f"{service}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(lines) + "\n").encode() if lines else b""
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # a new file: the agent reads it as a new stream
    return events


def send_demo_syslog(port: int, count: int = 20) -> None:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        handler = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=kind)
        log = logging.getLogger(f"pang-demo-syslog-{kind}")
        log.propagate = False
        log.addHandler(handler)
        for i in range(count // 2):
            log.warning("demo syslog message %d over %s", i, "udp" if kind == socket.SOCK_DGRAM else "tcp")
        handler.close()
        log.removeHandler(handler)


def run_demo(settings: Settings, *, lines: int, query: str, console: Console) -> None:
    from pang.shippers.agent import Agent

    stack.up(settings)
    root = settings.state_dir / "demo" / "logs"
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with step(f"writing {lines:,} synthetic log events under {root}"):
        write_demo_logs(root, lines, end=end)
    es = client(settings)
    in_demo = {"bool": {"filter": [
        {"prefix": {"log.file.path": str(root)}},
        {"range": {"@timestamp": {"gte": (end - timedelta(hours=1)).isoformat(), "lte": end.isoformat()}}},
    ]}}
    day_indices = ",".join(sorted({f"logs-app-{d:%Y.%m.%d}" for d in (end - timedelta(hours=1), end)}))
    # The demo's agent keeps its own state and takes free ports, so it never meets a `pang ship` you run.
    demo_settings = settings.model_copy(update={
        "service_environment": "demo", "state_dir": settings.state_dir / "demo", "ship_http_port": 0, "syslog_port": 0,
    })
    agent = Agent(demo_settings, paths=[str(root / "**" / "*.log")])
    agent.start()
    try:
        if agent.syslog:
            send_demo_syslog(agent.syslog.port)
        with step(f"shipping with pang ship (metrics at http://{settings.ship_http_host}:{agent.http_port}/metrics)") as s:
            deadline = time.monotonic() + 300
            count = 0
            while time.monotonic() < deadline:
                es.indices.refresh(index=day_indices, params={"ignore_unavailable": "true"})
                count = es.count(index=day_indices, body={"query": in_demo}, params={"ignore_unavailable": "true"})["count"]
                s.detail(f"{count:,} documents")
                if count >= lines:
                    break
                time.sleep(0.5)
        if count < lines:
            raise stack.StackError(f"demo: only {count} of {lines} events arrived within 5 minutes; see `pang ship` output above")
    finally:
        agent.shutdown()
    from pang.archive.archiver import run as archive_run
    from pang.archive.query import query as archive_query

    with step(f"archiving the closed hour to {settings.archive}"):
        # grace 0: the demo's hour is complete, nothing late can come
        archive_run(settings, start=end - timedelta(hours=1), end=end, grace=timedelta(0))
    result = search(settings, query, size=5)
    console.print(f"\n[bold]search[/] {query!r}: {result.total:,} hits in {result.took_ms} ms")
    table = Table("@timestamp", "service", "level", "message")
    for hit in result.hits:
        table.add_row(hit["@timestamp"], hit["service"]["name"], hit.get("log", {}).get("level", ""), hit["message"][:100])
    console.print(table)
    console.print("by service: " + ", ".join(f"{k}={v:,}" for k, v in result.by_service.items()))
    sql = (f"SELECT service.name AS service, count(*) AS events, count(*) FILTER (log.level = 'ERROR') AS errors "
           f"FROM logs WHERE dataset = 'app' AND dt = '{end - timedelta(hours=1):%Y-%m-%d}' "
           f"AND hour = {(end - timedelta(hours=1)).hour} GROUP BY ALL ORDER BY 1")
    names, rows = archive_query(settings, sql)
    console.print(f"\n[bold]archive[/] (DuckDB over Parquet): pang archive query \"{sql}\"")
    archived = Table(*names)
    for row in rows:
        archived.add_row(*(str(v) for v in row))
    console.print(archived)
    console.print(f"\nOpenSearch: {settings.opensearch_url}   S3: {settings.s3_effective_endpoint}   archive: {settings.archive}")
    console.print("Ship your own logs: .venv/bin/pang ship --paths '/path/to/logs/*/*.log'")
    console.print("Stop the stack with: .venv/bin/pang stack down")
