"""`pang stack`: idempotent up, status, a down that leaves nothing of ours, and clear errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pang import stack
from pang.settings import Settings, load_settings
from pang.stack import opensearch, seaweedfs
from pang.stack.process import port_is_free
from tests.helpers import free_port, stack_overrides

pytestmark = pytest.mark.stack
PANG = [sys.executable, "-m", "pang.cli"]


def _env(settings: Settings) -> dict[str, str]:
    """The settings as PANG_* variables, for running the CLI against a test stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
    for name in ("state_dir", "opensearch_url", "opensearch_transport_port", "s3_local_port", "seaweedfs_master_port",
                 "seaweedfs_volume_port", "seaweedfs_filer_port", "seaweedfs_admin_port", "cache_dir"):
        env[f"PANG_{name.upper()}"] = str(getattr(settings, name))
    return env


def test_session_stack_is_healthy(stack_settings: Settings) -> None:
    with urllib.request.urlopen(stack_settings.opensearch_url, timeout=5) as resp:
        root = json.loads(resp.read())
    assert root["version"]["number"].startswith("2.19")
    proc = subprocess.run([*PANG, "stack", "status", "--json"], env=_env(stack_settings), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = {s["name"]: s for s in map(json.loads, proc.stdout.splitlines())}
    assert services["opensearch"]["healthy"] and services["opensearch"]["version"] == "2.19.6"
    assert services["s3"]["healthy"] and services["s3"]["pid"]
    assert Path(services["opensearch"]["data_dir"]).is_relative_to(stack_settings.state_dir.resolve())


def test_up_twice_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    settings = load_settings(**stack_overrides(tmp_path))
    try:
        first = {s.name: s.pid for s in stack.up(settings)}
        assert all(first.values())
        second = {s.name: s.pid for s in stack.up(settings)}  # harmless: the same processes, nothing restarted
        assert second == first
        group_pids = _processes_in_groups(first.values())
        assert group_pids
    finally:
        stopped = stack.down(settings)
    assert sorted(stopped) == ["OpenSearch", "SeaweedFS"]
    assert _processes_in_groups(first.values()) == []  # no process of ours is left, children included
    for port in (settings.opensearch_port, settings.opensearch_transport_port, settings.s3_port, settings.seaweedfs_master_port):
        assert port_is_free(port)
    assert stack.down(settings) == []  # a second down finds nothing to stop
    assert not any(s.healthy for s in stack.status(settings))


def test_busy_port_names_the_setting(tmp_path: Path) -> None:
    overrides = stack_overrides(tmp_path)
    with socket.socket() as squatter:
        # A port any setting accepts (SeaweedFS ports need room for their +10000 gRPC twin).
        squatter.bind(("127.0.0.1", free_port(with_grpc=True, taken=set())))
        squatter.listen()
        busy = squatter.getsockname()[1]
        settings = load_settings(**{**overrides, "opensearch_url": f"http://127.0.0.1:{busy}"})
        with pytest.raises(stack.StackError) as info:
            opensearch.start(settings)
        assert f"port {busy}" in str(info.value) and "PANG_OPENSEARCH_URL" in str(info.value)

        settings = load_settings(**{**overrides, "seaweedfs_filer_port": busy})
        proc = subprocess.run([*PANG, "stack", "up"], env=_env(settings), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "PANG_SEAWEEDFS_FILER_PORT" in proc.stderr and "Traceback" not in proc.stderr
    assert opensearch.process(settings).pid() is None  # what up started before failing was stopped again
    assert seaweedfs.process(settings).pid() is None


def _processes_in_groups(pgids: object) -> list[int]:
    wanted = set(pgids)  # type: ignore[call-overload]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) in wanted and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found
