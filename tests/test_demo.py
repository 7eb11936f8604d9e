"""The README's demo, run through the CLI against the session's stack, as a newcomer would use it.

It must: serve the dashboards at the URL it prints, ship the generator's
traffic, inject a bad deploy whose errors a search finds in the incident's
window, record the incident as ground truth, and stop on Ctrl-C with status 0
(leaving alone the stack it did not start).
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pang.indexer.client import client
from pang.indexer.search import SearchRequest, search
from pang.indexer.timerange import TimeRange
from pang.settings import Settings
from tests.test_stack import _env
from tests.test_tls_proxy import _free_port

pytestmark = pytest.mark.stack


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _wait_for(lines: queue.Queue[str], pattern: str, seen: list[str], timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if m := re.search(pattern, line):
            return m
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n{''.join(seen)[-4000:]}")


def test_demo_serves_dashboards_ships_traffic_and_its_incident_is_searchable(stack_settings: Settings) -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "pang.cli", "demo", "--backfill", "2m", "--incident-after", "3s", "--incident-minutes", "3",
            "--port", str(port)]
    proc = subprocess.Popen(argv, env={**_env(stack_settings), "COLUMNS": "250"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    lines = _lines(proc)
    try:
        url = _wait_for(lines, r"pang demo is ready: (http://\S+)", seen, 240).group(1)
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200 and b"pang" in resp.read()
        m = _wait_for(lines, r"bad deploy of (\w+) from (\d\d:\d\d) to (\d\d:\d\d) UTC slows (\w+)", seen, 60)
        slowed = m.group(4)
        link = _wait_for(lines, r"its errors: (http://\S+)", seen, 10).group(1)
        assert link.startswith(f"http://127.0.0.1:{port}/search?") and f"service={slowed}" in link
        truth = stack_settings.state_dir / "demo" / "traffic" / "logs" / "_ground_truth" / "incidents.jsonl"
        incident = [r for r in map(orjson.loads, truth.read_text().splitlines()) if r["id"].endswith("-injected")][-1]
        start = datetime.fromisoformat(incident["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(incident["end"].replace("Z", "+00:00"))
        assert incident["slowed_service"] == slowed and end - start == timedelta(minutes=3)
        # the incident's errors reach the search within the incident (the agent ships live)
        request = SearchRequest(time=TimeRange(start, end), text="level:ERROR", services=(slowed,), size=5)
        deadline = time.monotonic() + 200
        found = 0
        while time.monotonic() < deadline and proc.poll() is None:
            found = search(stack_settings, request).total
            if found:
                break
            time.sleep(2)
        assert found > 0, f"no ERROR of {slowed} between {start} and {end}; output:\n{''.join(seen)[-3000:]}"
        messages = [str(h.source.get("message")) for h in search(stack_settings, request).hits]
        assert any("checkout step failed" in m for m in messages), messages  # the incident's own errors, not a burst
        # the steady state sees the orders drop: an alert opens within minutes, with a link to its page
        alert = _wait_for(lines, r"alert opened:.*(orders|payments) dropped", seen, 300)
        page = _wait_for(lines, r"(http://\S+/steady\?signal=\w+&since=3h)", seen, 10).group(1)
        with urllib.request.urlopen(page, timeout=30) as resp:
            assert resp.status == 200
        es = client(stack_settings)
        es.indices.refresh(index="events-*")
        opened = es.search(index="events-*", body={"query": {"bool": {"filter": [
            {"term": {"event.action": "alert.opened"}}, {"term": {"rule.name": alert.group(1)}},
            {"range": {"@timestamp": {"gte": start.isoformat()}}}]}}})["hits"]["hits"]
        assert opened, "the alert is in events-* for the timeline and search"
        # the timeline's last hour has the bad deploy's rollout and the alert; the status page has orders degraded
        from pang.events.status import collect
        from pang.events.store import TimelineQuery, query_events

        now = datetime.now(UTC)
        last_hour = query_events(stack_settings, TimelineQuery(now - timedelta(hours=1), now + timedelta(seconds=1)))
        phases = {(r["deployment"]["phase"], r["event"]["outcome"]) for r in last_hour.rows
                  if r.get("deployment", {}).get("id") == incident["deployment"]["id"]}
        assert {("STAGE", "started"), ("CANARY", "success"), ("DEPLOY_ALL", "started")} <= phases, phases
        assert last_hour.counts.get("alert", 0) >= 1 and last_hour.counts.get("deployment", 0) >= 6
        status = {c.name: c for c in collect(stack_settings)}
        component = "order" if alert.group(1) == "orders" else "payment"
        assert status[component].state == "degraded", status[component].as_json()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    time.sleep(0.5)  # the pump thread reads what is left of the output
    rest = ""
    while not lines.empty():
        rest += lines.get()
    assert code == 0, "".join(seen)[-3000:] + rest
    assert "demo stopped" in "".join(seen) + rest
    assert client(stack_settings).cluster.health()["status"] in ("green", "yellow")  # the session's stack still runs
    # nothing shipped twice: every demo document has its own id (deterministic ids would overwrite, not add)
    es = client(stack_settings)
    es.indices.refresh(index="logs-app-*")
    demo = {"term": {"service.environment": "demo"}}
    n = es.count(index="logs-app-*", body={"query": demo})["count"]
    assert n > 1000
