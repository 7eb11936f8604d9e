"""The agent on real files into the real node: fields, multiline, rotation, restarts, exactly once."""

from __future__ import annotations

import logging
import logging.handlers
import random
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pang.settings import Settings
from tests.agent_util import AgentProcess, all_docs, duplicates, wait_count

pytestmark = pytest.mark.stack

JAVA_TRACE = """2026-11-24 10:00:00,123 ERROR [main] com.shop.PaymentService - charge failed
java.lang.IllegalStateException: card declined
\tat com.shop.PaymentService.charge(PaymentService.java:42)
\tat com.shop.OrderService.place(OrderService.java:17)
Caused by: java.net.SocketTimeoutException: read timed out
\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
\t... 12 more"""


def _svc_query(service: str) -> dict:
    return {"term": {"service.name": service}}


def _seqs(docs: list[dict], pattern: str = r"seq=(\d+)") -> list[int]:
    out = []
    for d in docs:
        m = re.search(pattern, d["message"])
        if m:
            out.append(int(m.group(1)))
    return out


def test_plain_json_and_stack_traces_arrive_with_their_fields(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"svc-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    path = logs / "app.log"
    path.write_text(
        "2026-11-24 10:00:00,001 INFO [main] com.shop.Boot - started seq=1\n"
        '{"@timestamp": "2026-11-24T10:00:01.000Z", "level": "warn", "message": "slow query seq=2", "trace_id": "abc123", "order_id": 42}\n'
        + JAVA_TRACE + "\n"
        "2026-11-24 10:00:02,000 INFO [main] com.shop.Boot - after the trace seq=4\n"
    )
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]):
        assert wait_count(stack_settings, "logs-app-*", 4, query=_svc_query(service)) == 4
    docs = {d["log"]["offset"]: d for d in all_docs(stack_settings, "logs-app-*", _svc_query(service))}
    first, second, trace, last = (docs[k] for k in sorted(docs))
    assert first["log"]["level"] == "INFO" and first["@timestamp"].startswith("2026-11-24T10:00:00.001")
    assert first["log"]["file"]["path"] == str(path) and first["host"]["name"]
    assert first["_index"] == "logs-app-2026.11.24"  # the event's own day, not today
    assert second["log"]["level"] == "WARN" and second["trace"]["id"] == "abc123" and second["app"]["order_id"] == 42
    assert "Caused by: java.net.SocketTimeoutException" in trace["message"]  # one document for the whole trace
    assert trace["error"]["type"] == "java.lang.IllegalStateException"
    assert last["message"].endswith("seq=4")
    assert len({d["_id"] for d in docs.values()}) == 4


def test_rename_rotation_while_writing_loses_and_doubles_nothing(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"rot-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    logger = logging.getLogger(f"pang-test-{unique}")
    logger.propagate = False
    handler = logging.handlers.RotatingFileHandler(logs / "app.log", maxBytes=20_000, backupCount=50)
    handler.setFormatter(logging.Formatter("%(asctime)s INFO %(name)s: %(message)s"))
    logger.addHandler(handler)
    total = 6000
    # The glob includes rotated names: a renamed file must be recognised, not read twice.
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log*")]) as agent:
        for i in range(total):
            logger.warning("order event seq=%d", i)
            if i % 500 == 0:
                time.sleep(0.05)
        handler.close()
        n = wait_count(stack_settings, "logs-app-*", total, query=_svc_query(service), timeout=90)
        metrics = agent.metrics()
    assert len(list(logs.iterdir())) > 10  # it did rotate many times
    seqs = _seqs(all_docs(stack_settings, "logs-app-*", _svc_query(service)))
    assert duplicates(seqs) == {}
    assert sorted(seqs) == list(range(total))
    assert n == total
    assert metrics["pang_documents_resent_total"] == 0


def _logrotate(tmp_path: Path, log: Path, mode: str) -> None:
    conf = tmp_path / f"logrotate-{mode}.conf"
    conf.write_text(f"{log} {{\n  rotate 100\n  {mode}\n  missingok\n  nocompress\n}}\n")
    subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)], check=True, capture_output=True)


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_logrotate_while_a_writer_appends(stack_settings: Settings, tmp_path: Path, unique: str, mode: str) -> None:
    if shutil.which("logrotate") is None:
        pytest.fail("logrotate is not installed (scripts/bootstrap.sh installs it)")
    service = f"lr-{mode}-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    log = logs / "app.log"
    written = 0
    stop = threading.Event()
    lock = threading.Lock()

    def writer() -> None:
        nonlocal written
        while not stop.is_set():
            with lock:  # held across logrotate's copy and truncate in copytruncate mode (see below)
                with open(log, "a") as fh:
                    for _ in range(50):
                        fh.write(f"2026-11-24 10:00:00,000 INFO writer: line seq={written}\n")
                        written += 1
            time.sleep(0.005)

    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "app.log*")]):
        t = threading.Thread(target=writer)
        t.start()
        for _ in range(8):
            time.sleep(0.4)
            if mode == "copytruncate":
                # logrotate's manual: lines written between its copy and its truncate are lost by
                # logrotate itself. Holding the writer still across the rotation removes that window.
                with lock:
                    _logrotate(tmp_path, log, mode)
            else:
                _logrotate(tmp_path, log, mode)
        stop.set()
        t.join()
        n = wait_count(stack_settings, "logs-app-*", written, query=_svc_query(service), timeout=90)
    seqs = _seqs(all_docs(stack_settings, "logs-app-*", _svc_query(service)))
    assert duplicates(seqs) == {}
    assert sorted(seqs) == list(range(written))
    assert n == written


def test_sigkill_at_random_moments_then_restart(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    """Twenty kills at random points while a writer appends: in the end every line once, re-sends bounded."""
    service = f"kill-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    log = logs / "app.log"
    rng = random.Random(unique)
    written = 0
    stop = threading.Event()

    def writer() -> None:
        nonlocal written
        with open(log, "a", buffering=1) as fh:
            while not stop.is_set():
                for _ in range(200):
                    fh.write(f"2026-11-24 10:00:00,000 INFO writer: line seq={written} {'x' * rng.randint(0, 80)}\n")
                    written += 1
                time.sleep(0.01)

    # Small batches and queues make "what was in flight" small, so a whole-file re-send would show.
    batch_bytes, queue_batches, senders = 256 * 1024, 2, 2
    env = {"PANG_SHIP_BATCH_BYTES": str(batch_bytes), "PANG_SHIP_QUEUE_BATCHES": str(queue_batches), "PANG_SHIP_SENDERS": str(senders)}
    agent = AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")], env=env)
    t = threading.Thread(target=writer)
    t.start()
    kills = 20
    try:
        for _ in range(kills):
            agent.start()
            time.sleep(rng.uniform(0.1, 1.5))
            agent.kill()
        stop.set()
        t.join()
        agent.start()
        n = wait_count(stack_settings, "logs-app-*", written, query=_svc_query(service), timeout=120)
    finally:
        stop.set()
        if agent.proc and agent.proc.poll() is None:
            agent.terminate()
    docs = all_docs(stack_settings, "logs-app-*", _svc_query(service))
    seqs = _seqs(docs)
    assert duplicates(seqs) == {}
    assert sorted(seqs) == list(range(written))
    assert n == written
    # Each restart resumes from its checkpoint: what was sent twice is what was in flight, not the file.
    overwritten = sum(d["_version"] - 1 for d in docs)
    # In flight at a kill: the batches queued, being sent and being built (documents are >= 250
    # bytes encoded), plus what was acknowledged in the last checkpoint interval (0.1 s).
    in_flight = (queue_batches + senders + 1) * batch_bytes // 250 + 2000
    print(f"{written} lines, {kills} kills, {overwritten} re-sent (bound {kills * in_flight})")
    assert overwritten <= kills * in_flight


def test_sigterm_drains_and_exits_promptly(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"term-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    (logs / "app.log").write_text("".join(f"2026-11-24 10:00:00,000 INFO x: seq={i}\n" for i in range(20000)))
    agent = AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]).start()
    time.sleep(0.3)
    started = time.monotonic()
    assert agent.terminate() == 0
    assert time.monotonic() - started < 35  # PANG_SHIP_DRAIN_TIMEOUT (30 s) plus a little
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]) as again:
        assert wait_count(stack_settings, "logs-app-*", 20000, query=_svc_query(service)) == 20000
        assert again.metrics()["pang_documents_resent_total"] == 0  # the drain committed what it sent


def test_long_lines_and_invalid_utf8_are_flagged_not_dropped(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"edge-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    with open(logs / "app.log", "wb") as fh:
        fh.write(b"INFO before seq=1\n")
        fh.write(b"INFO long seq=2 " + b"y" * 5000 + b"\n")
        fh.write(b"INFO bad bytes \xff\xfe seq=3\n")
        fh.write(b"INFO after seq=4\n")
    env = {"PANG_SHIP_MAX_LINE_BYTES": "1024"}
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")], env=env):
        assert wait_count(stack_settings, "logs-app-*", 4, query=_svc_query(service)) == 4
    docs = sorted(all_docs(stack_settings, "logs-app-*", _svc_query(service)), key=lambda d: d["log"]["offset"])
    assert "pang.truncated" in docs[1]["tags"] and len(docs[1]["message"]) <= 1024
    assert "pang.invalid_utf8" in docs[2]["tags"] and "\ufffd" in docs[2]["message"]
    assert docs[3]["message"] == "INFO after seq=4" and "tags" not in docs[3]
