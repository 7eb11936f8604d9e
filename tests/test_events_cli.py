"""`pang events post|list|changes|serve` through a subprocess, against the session's OpenSearch; changes_before on real alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pang.events.changes import ChangesError, changes_before
from pang.events.schema import iso_ms, parse_event
from pang.events.store import write_documents, write_events
from pang.settings import Settings, StatusComponent

PANG = [sys.executable, "-m", "pang.cli"]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
    env.update({"PANG_OPENSEARCH_URL": settings.opensearch_url, "PANG_STATE_DIR": str(settings.state_dir),
                "PANG_BUSINESS_TIMEZONE": "Europe/Berlin", **extra})
    return env


def pang(settings: Settings, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PANG, *args], capture_output=True, text=True, timeout=120, env=_env(settings, **extra))


def test_post_list_and_idempotent_id(stack_settings: Settings, unique: str) -> None:
    svc = f"cli-{unique}"
    args = ("events", "post", "--service", svc, "--type", "deployment", "--phase", "CANARY", "--outcome", "started",
            "--version", "3.1.0", "--from-version", "3.0.9", "--build", "88", "--actor", "li.wei",
            "--link", "https://git.example.com/shop/compare/3.0.9...3.1.0", "--message", f"{svc} 3.1.0 canary")
    first = pang(stack_settings, *args)
    assert first.returncode == 0, first.stderr
    second = pang(stack_settings, *args)
    assert second.stdout.strip() == first.stdout.strip() and second.stdout.startswith("evt-")
    listed = pang(stack_settings, "events", "list", "--since", "1h", "--service", svc, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 1
    assert rows[0]["deployment"] == {"phase": "CANARY", "build": "88", "from_version": "3.0.9", "to_version": "3.1.0"}
    assert rows[0]["user"]["name"] == "li.wei"
    table = pang(stack_settings, "events", "list", "--since", "1h", "--service", svc, "--type", "deployment")
    assert f"{svc} 3.1.0 canary" in table.stdout and "1 of 1 events" in table.stdout
    assert "Europe/Berlin" in table.stdout


def test_post_at_is_shown_in_business_time(stack_settings: Settings, unique: str) -> None:
    svc = f"clitz-{unique}"
    proc = pang(stack_settings, "events", "post", "-s", svc, "-t", "config", "-m", "pool size 40", "--at", "2026-07-01T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    table = pang(stack_settings, "events", "list", "--from", "2026-07-01T09:00Z", "--to", "2026-07-01T11:00Z", "--service", svc)
    assert "2026-07-01 12:00:00" in table.stdout  # CEST
    assert "pool size 40" in table.stdout


@pytest.mark.parametrize(("extra", "field"), [
    (["--type", "deployment", "--outcome", "started"], "--phase"),
    (["--type", "deployment", "--phase", "SOMETIME", "--outcome", "started"], "--phase"),
    (["--type", "note", "--link", "ftp://x"], "--link"),
    (["--type", "note", "--at", "tomorrowish"], "--at"),
    (["--type", "rumour"], "--type"),
])
def test_bad_input_exits_2_naming_the_field(stack_settings: Settings, unique: str, extra: list[str], field: str) -> None:
    proc = pang(stack_settings, "events", "post", "--service", f"clibad-{unique}", *extra)
    assert proc.returncode == 2
    assert field in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_list_bad_range_exits_2(stack_settings: Settings) -> None:
    proc = pang(stack_settings, "events", "list", "--since", "forever")
    assert proc.returncode == 2 and "duration" in proc.stderr


def _alert(alert_id: str, opened: datetime, **fields: Any) -> dict[str, Any]:
    return {"@timestamp": iso_ms(opened), "message": f"alert {alert_id}", "pang": {"type": "alert"},
            "event": {"id": f"{alert_id}:opened", "kind": "alert", "action": "alert.opened", "dataset": "events",
                      "start": iso_ms(opened)}, **fields}


def _change(svc: str, at: datetime, name: str, kind: str = "deployment") -> Any:
    extra = {"phase": "DEPLOY_ALL", "outcome": "success", "deployment_id": name} if kind == "deployment" else {}
    return parse_event({"type": kind, "service": svc, "timestamp": at.isoformat(), "message": name, **extra})


def test_changes_before_a_steady_alert(stack_settings: Settings, unique: str) -> None:
    signal, own, near, far = f"sig{unique}", f"own-{unique}", f"near-{unique}", f"far-{unique}"
    settings = stack_settings.model_copy(update={
        "status_components": {"c": StatusComponent(services=[own], signals=[signal])},
        "service_neighbours": {own: [near]},
    })
    opened = datetime(2025, 3, 3, 12, 0, tzinfo=UTC) + timedelta(minutes=int(unique[:4], 16) % 1000)
    alert_id = f"steady-{unique}"
    write_documents(settings, [_alert(alert_id, opened, alert={"id": alert_id, "signal": signal, "kind": "steady"})])
    hour = timedelta(hours=1)
    ms = timedelta(milliseconds=1)
    write_events(settings, [
        _change(far, opened - timedelta(minutes=5), "far-5m"),
        _change(near, opened - timedelta(minutes=20), "near-20m", "config"),
        _change(own, opened - hour, "own-at-start"),          # edge: included
        _change(own, opened, "own-at-open"),                  # edge: included
        _change(own, opened - hour - ms, "own-too-early"),
        _change(own, opened + ms, "own-after"),
        _change(near, opened - timedelta(minutes=2), "near-note", "note"),  # not a change
    ], refresh=True)
    report = changes_before(settings, alert_id)
    assert report.affected == [own] and report.neighbours == [near]
    mine = [(c.group, c.doc["message"]) for c in report.changes if c.doc["message"].split("-")[0] in ("own", "near", "far")
            and unique in json.dumps(c.doc)]
    assert mine == [("affected", "own-at-open"), ("affected", "own-at-start"), ("neighbour", "near-20m"), ("other", "far-5m")]

    proc = pang(settings, "events", "changes", "--before", alert_id, "--json",
                PANG_STATUS_COMPONENTS=json.dumps({"c": {"services": [own], "signals": [signal]}}),
                PANG_SERVICE_NEIGHBOURS=json.dumps({own: [near]}))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["affected"] == [own]
    assert [c["message"] for c in out["changes"] if unique in json.dumps(c)] == ["own-at-open", "own-at-start", "near-20m", "far-5m"]


def test_changes_before_an_error_rate_alert_and_unknown_alert(stack_settings: Settings, unique: str) -> None:
    svc, caller = f"err-{unique}", f"caller-{unique}"
    settings = stack_settings.model_copy(update={"service_neighbours": {caller: [svc]}})
    opened = datetime(2025, 4, 7, 8, 0, tzinfo=UTC) + timedelta(minutes=int(unique[:4], 16) % 1000)
    alert_id = f"errors-{unique}"
    write_documents(settings, [_alert(alert_id, opened, service={"name": svc}, alert={"id": alert_id, "kind": "errors"})])
    write_events(settings, [_change(caller, opened - timedelta(minutes=1), "caller-1m"),
                            _change(svc, opened - timedelta(minutes=50), "err-50m")], refresh=True)
    report = changes_before(settings, f"{alert_id}:opened")
    assert report.neighbours == [caller]  # it calls the alerting service
    assert [c.doc["message"] for c in report.changes if unique in json.dumps(c.doc)] == ["err-50m", "caller-1m"]
    with pytest.raises(ChangesError, match="no alert"):
        changes_before(settings, f"nope-{unique}")
    proc = pang(settings, "events", "changes", "--before", f"nope-{unique}")
    assert proc.returncode == 1 and "no alert" in proc.stderr


def test_serve_refuses_open_non_loopback_and_serves_on_loopback(stack_settings: Settings, unique: str) -> None:
    proc = pang(stack_settings, "events", "serve", "--host", "0.0.0.0", "--port", "0")
    assert proc.returncode == 2 and "without auth" in proc.stderr
    from tests.helpers import free_port

    port = free_port(taken=set())
    server = subprocess.Popen([*PANG, "events", "serve", "--port", str(port)], env=_env(stack_settings),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = json.loads(resp.read())
                    break
            except OSError:
                time.sleep(0.3)
        assert body == {"ok": True}
        data = json.dumps({"type": "note", "service": f"srv-{unique}", "message": "hello"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/events", data=data,
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 201
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "loopback only" in err
