"""Running the real agent (`pang ship`) as a process in tests, and reading what it shipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from pang.indexer.client import client
from pang.indexer.scan import scan
from pang.settings import Settings
from tests.helpers import free_port


class AgentProcess:
    """``pang ship`` in its own state folder, with syslog and /metrics on free ports."""

    def __init__(self, settings: Settings, state_dir: Path, paths: list[str], *, env: dict[str, str] | None = None,
                 opensearch_url: str | None = None) -> None:
        taken: set[int] = set()
        self.http_port = free_port(taken=taken)
        self.syslog_port = free_port(taken=taken)
        self.state_dir = state_dir
        self.paths = paths
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
        self.env.update({
            "PANG_STATE_DIR": str(state_dir),
            "PANG_CACHE_DIR": str(settings.cache_dir),
            "PANG_OPENSEARCH_URL": opensearch_url or settings.opensearch_url,
            "PANG_SHIP_HTTP_PORT": str(self.http_port),
            "PANG_SYSLOG_PORT": str(self.syslog_port),
            "PANG_SHIP_SCAN_INTERVAL": "0.2",
            "PANG_SHIP_BATCH_SECONDS": "0.2",
            "PANG_SHIP_ROTATE_WAIT": "1",
            "PANG_SHIP_MULTILINE_TIMEOUT": "0.5",
            "PANG_METRICS_ENABLED": "false",
            "PANG_SHIP_MAX_BACKOFF": "2",
            **(env or {}),
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state_dir / "agent.log"

    def start(self) -> AgentProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pang.cli", "ship"]
        for p in self.paths:
            argv += ["--paths", p]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if self.healthz() is not None:
                return self
            time.sleep(0.05)
        raise RuntimeError("agent did not answer /healthz within 30 s")

    def healthz(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1) as resp:
                return json.loads(resp.read())
        except OSError:
            return None

    def metrics(self) -> dict[str, float]:
        """The agent's /metrics as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def all_docs(settings: Settings, index: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every document of ``index`` (with ``_id``, ``_version`` and ``_index``), through a point in time."""
    client(settings).indices.refresh(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
    return [
        {**h["_source"], "_id": h["_id"], "_version": h.get("_version", 1), "_index": h["_index"]}
        for h in scan(settings, index, query, page=5000)
    ]


def wait_count(settings: Settings, index: str, expected: int, timeout: float = 60, query: dict[str, Any] | None = None) -> int:
    es = client(settings)
    deadline = time.monotonic() + timeout
    n = -1
    while time.monotonic() < deadline:
        es.indices.refresh(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        body = {"query": query} if query else None
        n = es.count(index=index, body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"})["count"]
        if n >= expected:
            time.sleep(0.5)  # let anything extra arrive, so duplicates would show
            es.indices.refresh(index=index, params={"ignore_unavailable": "true", "allow_no_indices": "true"})
            return int(es.count(index=index, body=body, params={"ignore_unavailable": "true", "allow_no_indices": "true"})["count"])
        time.sleep(0.25)
    return n


def duplicates(values: list[Any]) -> dict[Any, int]:
    return {v: n for v, n in Counter(values).items() if n > 1}
