"""The shipper benchmark still runs: a tiny input through the ceiling and pang, nothing lost or doubled.

``bench/`` is not part of CI (too slow at its real size); this keeps
``bench/ship_bench.py`` from rotting. rsyslog is skipped (a Debian package CI
need not have). The input's day is a random day of 2032, so the bench's daily
indices (which it deletes before and after) are its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pang.settings import Settings

pytestmark = pytest.mark.stack

BENCH = Path(__file__).resolve().parent.parent / "bench" / "ship_bench.py"


def test_ship_bench_smoke(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    day = f"2032-{1 + int(unique[:4], 16) % 12:02d}-{1 + int(unique[4:8], 16) % 28:02d}"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--lines", "2000", "--skip-rsyslog", "--work", str(tmp_path / "work"),
         "--opensearch", stack_settings.opensearch_url, "--day", day, "--json", "--stall", "30", "--timeout", "240"],
        capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == {"ceiling", "pang"}
    for name, r in results.items():
        assert r["reached"], name
        assert r["docs"] == 2000, (name, r)
        assert r["lost"] == 0, (name, r)
        assert r["duplicated"] == 0, (name, r)
        assert r["no_seq"] == 0, (name, r)
        assert r["index"].endswith(day.replace("-", ".")), (name, r["index"])
        assert r["rate"] > 0, name
    assert results["pang"]["cpu_seconds"] > 0
    assert results["pang"]["peak_rss_mib"] > 0
    assert "pang/ceiling throughput" in report["ratios"]
    assert report["input"]["events"] == 2000
    assert report["input"]["kinds"]["stacktrace"] > 0  # multi-line events were in the input
    assert report["input"]["physical_lines"] > 2000
