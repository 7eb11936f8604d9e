"""The demo: the whole pipeline as far as it exists, on synthetic traffic.

Today that is: the local stack, index templates, a batch of synthetic
e-commerce application logs indexed through the shippers' bulk sink with
deterministic ids (so running the demo twice changes nothing), and a search
over them. Later issues add the live shipper, archive and dashboards here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from pang import stack
from pang.indexer.client import client, connection
from pang.indexer.naming import index_for
from pang.indexer.search import search
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action, encode_doc
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


def synthetic_docs(count: int, *, seed: int = 42, end: datetime | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``count`` (id, document) pairs spread over the closed hour before ``end``.

    ``end`` defaults to the start of the current hour, and ids derive from it, the seed and the
    sequence number: running the demo again within the hour rewrites the same documents.
    """
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(f"{seed}:{end.isoformat()}")
    for seq in range(count):
        service = rng.choice(SERVICES)
        message = rng.choice(MESSAGES[service])
        level = "ERROR" if any(w in message for w in ("failed", "declined", "timeout", "504")) else "INFO"
        ts = end - timedelta(seconds=rng.uniform(0, 3600))
        doc = {
            "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message": message,
            "log": {"level": level, "file": {"path": f"/pang/logs/app/{service}/{service}.log"}, "offset": seq * 100},
            "service": {"name": service, "environment": "demo"},
            "host": {"name": "demo-host"},
            "event": {"dataset": "app"},
            "trace": {"id": f"{rng.getrandbits(128):032x}"},
        }
        doc_id = hashlib.blake2b(f"demo:{seed}:{end.isoformat()}:{seq}".encode(), digest_size=16).hexdigest()
        yield doc_id, doc


def index_docs(settings: Settings, docs: Iterator[tuple[str, dict[str, Any]]], *, batch: int = 5000) -> int:
    """Index through the bulk sink; returns the number of documents acknowledged."""
    sink = BulkClient(connection(settings))
    acked = 0
    actions: list[bytes] = []

    def flush() -> int:
        result = sink.post(actions)
        if result.rejected or result.retry:
            raise stack.StackError(f"demo: {len(result.rejected)} rejected, {len(result.retry)} to retry: {result.rejected[:1]}")
        actions.clear()
        return len(result.ok)

    for doc_id, doc in docs:
        ts = datetime.fromisoformat(doc["@timestamp"])
        actions.append(encode_action(index_for("app", ts), doc_id, encode_doc(doc)))
        if len(actions) >= batch:
            acked += flush()
    if actions:
        acked += flush()
    sink.close()
    return acked


def run_demo(settings: Settings, *, lines: int, query: str, console: Console) -> None:
    stack.up(settings)
    with step(f"indexing {lines:,} synthetic application log lines") as s:
        acked = index_docs(settings, synthetic_docs(lines))
        s.detail(f"{acked} acknowledged")
    client(settings).indices.refresh(index="logs-app-*")
    result = search(settings, query, size=5)
    console.print(f"\n[bold]search[/] {query!r}: {result.total:,} hits in {result.took_ms} ms")
    table = Table("@timestamp", "service", "level", "message")
    for hit in result.hits:
        table.add_row(hit["@timestamp"], hit["service"]["name"], hit["log"]["level"], hit["message"])
    console.print(table)
    console.print("by service: " + ", ".join(f"{k}={v:,}" for k, v in result.by_service.items()))
    console.print(f"\nOpenSearch: {settings.opensearch_url}   S3: {settings.s3_effective_endpoint}   archive: {settings.archive}")
    console.print("Stop the stack with: .venv/bin/pang stack down")
