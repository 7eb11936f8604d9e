"""The agent against a node that goes away, pushes back (429) or refuses documents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pang.indexer.client import client
from pang.indexer.templates import apply_templates
from pang.settings import Settings, load_settings
from pang.shippers.sink.deadletter import replay
from pang.stack import opensearch
from tests.agent_util import AgentProcess, all_docs, duplicates, wait_count
from tests.helpers import stack_overrides
from tests.test_ship_files import _seqs, _svc_query

pytestmark = pytest.mark.stack

# A write pool of one thread with a queue of one: concurrent bulk requests get 429.
TINY_WRITE_QUEUE = ("-Ethread_pool.write.size=1", "-Ethread_pool.write.queue_size=1")


@pytest.fixture(scope="module")
def private_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A node of its own, so stopping it does not disturb other tests."""
    settings = load_settings(**{**stack_overrides(tmp_path_factory.mktemp("private")), "opensearch_heap": "512m"})
    proc = opensearch.start(settings, TINY_WRITE_QUEUE)
    try:
        opensearch.wait(settings, proc)
        apply_templates(settings)
        yield settings
    finally:
        opensearch.process(settings).stop()


def _writer(path: Path, count: int, pause_every: int = 500, pause: float = 0.05) -> threading.Thread:
    def run() -> None:
        with open(path, "a", buffering=1) as fh:
            for i in range(count):
                fh.write(f"2026-11-25 10:00:00,000 INFO writer: line seq={i}\n")
                if i % pause_every == 0:
                    time.sleep(pause)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_node_down_mid_stream_then_back(private_node: Settings, tmp_path: Path, unique: str) -> None:
    """Three outages at random moments while a writer appends: nothing lost, nothing doubled."""
    import random

    rng = random.Random(unique)
    service = f"outage-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    total = 60000
    healthy_during = []
    with AgentProcess(private_node, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]) as agent:
        writer = _writer(logs / "app.log", total, pause_every=1000, pause=0.15)
        for _ in range(3):
            time.sleep(rng.uniform(0.5, 2.0))
            opensearch.process(private_node).stop()  # the node goes away mid-stream
            time.sleep(rng.uniform(1.0, 4.0))
            healthy_during.append(agent.healthz() is not None)
            proc = opensearch.start(private_node, TINY_WRITE_QUEUE)
            opensearch.wait(private_node, proc)
        writer.join()
        n = wait_count(private_node, "logs-app-*", total, query=_svc_query(service), timeout=120)
        metrics = agent.metrics()
    assert all(healthy_during)  # the agent kept running through the outages
    seqs = _seqs(all_docs(private_node, "logs-app-*", _svc_query(service)))
    assert duplicates(seqs) == {}
    assert sorted(seqs) == list(range(total))
    assert n == total
    assert metrics.get('pang_retries_total{reason="connection"}', 0) > 0  # it did see the outages and retried


def test_429_is_retried_and_nothing_is_lost(private_node: Settings, tmp_path: Path, unique: str) -> None:
    service = f"busy-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    total = 40000
    (logs / "app.log").write_text("".join(f"2026-11-25 10:00:00,000 INFO x: line seq={i}\n" for i in range(total)))
    env = {"PANG_SHIP_BATCH_BYTES": "200000", "PANG_SHIP_SENDERS": "6"}
    with AgentProcess(private_node, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")], env=env) as agent:
        n = wait_count(private_node, "logs-app-*", total, query=_svc_query(service), timeout=120)
        metrics = agent.metrics()
    pushed_back = sum(v for k, v in metrics.items() if k.startswith("pang_retries_total") and ("429" in k or "item_retry" in k))
    assert pushed_back > 0, metrics
    seqs = _seqs(all_docs(private_node, "logs-app-*", _svc_query(service)))
    assert duplicates(seqs) == {} and sorted(seqs) == list(range(total)) and n == total


def test_mapping_conflict_goes_to_dead_letters_and_replays(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"dl-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    day = f"2031-{1 + int(unique[:4], 16) % 12:02d}-{1 + int(unique[4:8], 16) % 28:02d}"  # an index of its own
    field = f"f{unique}"
    lines = [
        {"@timestamp": f"{day}T10:00:00.000Z", "message": "ok one", field: 1},
        {"@timestamp": f"{day}T10:00:01.000Z", "message": "the bad one", field: {"nested": "object"}},
        {"@timestamp": f"{day}T10:00:02.000Z", "message": "ok two", field: 2},
    ]
    (logs / "app.log").write_bytes(b"".join(orjson.dumps(doc) + b"\n" for doc in lines))
    target = f"logs-app-{day.replace('-', '.')}"
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]) as agent:
        assert wait_count(stack_settings, target, 2, query=_svc_query(service)) == 2
        deadline = time.monotonic() + 30
        while agent.metrics().get("pang_deadletters_total", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        metrics = agent.metrics()
    assert metrics["pang_documents_rejected_total"] == 1 and metrics["pang_deadletters_total"] == 1
    dead = [d for d in all_docs(stack_settings, "deadletter-*") if d["pang"]["deadletter"]["index"] == target]
    assert len(dead) == 1
    assert "mapper_parsing_exception" in dead[0]["error"]["message"] or "document_parsing_exception" in dead[0]["error"]["message"]
    assert orjson.loads(dead[0]["event"]["original"])["message"] == "the bad one"

    # The user fixes the cause (here: drops the day's index, whose mapping took the number) and replays.
    client(stack_settings).indices.delete(index=target)
    result = replay(stack_settings, {"term": {"pang.deadletter.index": target}})
    assert (result.replayed, result.rejected_again) == (1, 0)
    back = all_docs(stack_settings, target)
    assert [d["message"] for d in back] == ["the bad one"] and back[0]["_id"] == dead[0]["pang"]["deadletter"]["id"]
    assert replay(stack_settings, {"term": {"pang.deadletter.index": target}}).replayed == 0  # marked as replayed
