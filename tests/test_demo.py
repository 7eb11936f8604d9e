"""The README's demo, run through the CLI against the session's stack."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from pang.indexer.client import client
from pang.settings import Settings
from tests.test_stack import _env

pytestmark = pytest.mark.stack


def test_demo_indexes_searches_and_is_idempotent(stack_settings: Settings) -> None:
    argv = [sys.executable, "-m", "pang.cli", "demo", "--lines", "3000", "--query", "payment declined"]
    es = client(stack_settings)
    counts, hours = [], []
    for _ in range(2):
        hours.append(datetime.now(UTC).hour)
        proc = subprocess.run(argv, env=_env(stack_settings), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "search 'payment declined'" in proc.stdout and "payment" in proc.stdout
        es.indices.refresh(index="logs-app-*")
        counts.append(es.count(index="logs-app-*", body={"query": {"term": {"service.environment": "demo"}}})["count"])
    assert counts[0] == 3000  # every event once, stack traces as one document each
    # The second run rewrote the same ids; only an hour boundary between the runs makes a new batch.
    assert counts[1] == (counts[0] if hours[0] == hours[1] else 2 * counts[0])
