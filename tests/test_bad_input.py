"""Bad input that used to stop or misroute the pipeline (issue 16): each case fails without its fix.

Pure parsing and naming are tested without servers; the agent's behaviour
(a dead input thread, /healthz, SIGTERM) with a real ``pang ship`` process
against the session's OpenSearch.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.indexer.client import client
from pang.indexer.search import SearchError, SearchRequest, search, surrounding
from pang.settings import Settings, load_settings

from pang.shippers.documents import Enricher, valid_ts
from pang.shippers.parse.syslog import parse_syslog
from tests.agent_util import AgentProcess, all_docs, wait_count
from tests.helpers import free_port

RECEIVED = datetime(2026, 11, 26, 13, 20, 0, 500000, tzinfo=UTC)
RECEIVED_TS = "2026-11-26T13:20:00.500Z"
ASCII_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
INDEX = re.compile(r"logs-[a-z]+-\d{4}\.\d{2}\.\d{2}\Z", re.ASCII)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _enricher() -> Enricher:
    return Enricher(agent_id="a1", host_name="h1")


def syslog_index(doc: dict[str, Any]) -> str:
    """The index the agent would write a parsed syslog document to (through the spool, as it runs)."""
    enricher = _enricher()
    payload = enricher.spool_record("syslog", doc)
    action = enricher.spool_action("e1", 1, payload)[1]
    return re.search(rb'"_index":"([^"]*)"', action).group(1).decode()  # type: ignore[union-attr]


# --------------------------------------------------------------------------- 1. non-ASCII digits

def _in(digits: str, text: str) -> str:
    """``text`` with its ASCII digits written in another script's digits (``digits[0]`` is zero)."""
    return text.translate({ord("0") + i: digits[i] for i in range(10)})


ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"
FULL_WIDTH = "０１２３４５６７８９"


def test_rfc5424_timestamp_in_arabic_indic_digits_uses_received_time() -> None:
    raw = "<13>1 ٢٠٢٦-٠١-٠١T١٠:٠٠:٠٠Z host app - - - hi".encode()
    doc = parse_syslog(raw, received=RECEIVED)
    assert doc["@timestamp"] == RECEIVED_TS
    assert doc["event"]["original"] == raw.decode()
    assert syslog_index(doc) == "logs-syslog-2026.11.26"


def test_every_syslog_format_refuses_non_ascii_digits() -> None:
    for digits in (ARABIC_INDIC, FULL_WIDTH):
        for text in ("<13>1 2026-01-01T10:00:00Z host app - - - hi",
                     "<13>Jan  1 10:00:00 host app: hi",
                     "<13>Jan  1 2026 10:00:00 host app: hi",
                     "<13>2026-01-01T10:00:00+01:00 host app: hi",
                     "Jan  1 10:00:00 host app: hi"):
            raw = _in(digits, text).encode()
            doc = parse_syslog(raw, received=RECEIVED)
            assert ASCII_TS.match(doc["@timestamp"]), (text, doc["@timestamp"])
            assert doc["@timestamp"] == RECEIVED_TS, text
            assert doc["event"]["original"] == raw.decode()
            assert INDEX.match(syslog_index(doc))
        # a PRI in other digits is no PRI: no priority invented from it
        doc = parse_syslog(_in(digits, "<13>hello").encode(), received=RECEIVED)
        assert "priority" not in doc.get("log", {}).get("syslog", {})


def test_valid_ts_takes_only_ascii_dates() -> None:
    assert valid_ts("2026-01-01T10:00:00.000Z")
    assert not valid_ts("٢٠٢٦-٠١-٠١T١٠:٠٠:٠٠Z")
    assert not valid_ts("２０２６-01-01T10:00:00Z")
    assert not valid_ts("2026-٠١-01T10:00:00.000Z")
    assert not valid_ts("2026-13-45T10:00:00.000Z")  # would name logs-app-2026.13.45
    # a document that arrives with such a time (a metrics or JSON line) is re-timed, not misrouted
    doc: dict[str, Any] = {"@timestamp": "٢٠٢٦-٠١-٠١T١٠:٠٠:٠٠Z", "message": "x"}
    assert INDEX.match(syslog_index(doc))


# The zero of every script whose ten decimal digits are contiguous (Arabic-Indic, Devanagari, full-width...).
_ZEROS = [chr(c) for c in range(0x110000 - 9)
          if unicodedata.decimal(chr(c), None) == 0 and unicodedata.decimal(chr(c + 9), None) == 9]


@st.composite
def syslog_with_any_digits(draw: st.DrawFn) -> bytes:
    """Valid syslog lines whose digits are, one by one, ASCII or another script's of the same value."""
    t = draw(st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1)))
    scripts = draw(st.lists(st.sampled_from(_ZEROS), min_size=1, max_size=3))

    def digits(text: str) -> str:
        out = []
        for ch in text:
            if ch.isascii() and ch.isdigit() and draw(st.booleans()):
                ch = chr(ord(draw(st.sampled_from(scripts))) + int(ch))
            out.append(ch)
        return "".join(out)

    zone = draw(st.sampled_from(["Z", "+01:00", "-05:30", ""]))
    iso = t.strftime("%Y-%m-%dT%H:%M:%S") + draw(st.sampled_from(["", f".{t.microsecond // 1000:03d}", f".{t.microsecond:06d}"]))
    bsd = t.strftime("%b ") + f"{t.day:2d}" + t.strftime(" %H:%M:%S")
    pri = f"<{draw(st.integers(0, 191))}>"
    shapes = [
        f"{pri}1 {iso}{zone or 'Z'} host app - - - msg",
        f"{pri}{bsd} host tag[{draw(st.integers(1, 99999))}]: msg",
        f"{pri}" + t.strftime("%b ") + f"{t.day:2d} {t.year:04d}" + t.strftime(" %H:%M:%S") + " host tag: msg",
        f"{pri}{iso}{zone} host tag: msg",
        f"{bsd} host tag: msg",
        f"{iso.replace('T', ' ')}{zone} host tag: msg",
    ]
    return digits(draw(st.sampled_from(shapes))).encode()


@FAST
@given(raw=syslog_with_any_digits(), received=st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_fuzz_syslog_timestamp_is_ascii_iso_and_index_name_is_pang_s(raw: bytes, received: datetime) -> None:
    doc = parse_syslog(raw, received=received)
    ts = doc["@timestamp"]
    assert ASCII_TS.match(ts), ts
    datetime.fromisoformat(ts.replace("Z", "+00:00"))
    assert INDEX.match(syslog_index(doc)), syslog_index(doc)


# --------------------------------------------------------------------------- 3. surrounding lines' index

@pytest.mark.stack
def test_surrounding_lines_read_only_pangs_log_indices(stack_settings: Settings, unique: str) -> None:
    es = client(stack_settings)
    secret = {"@timestamp": "2026-01-01T00:00:00.000Z", "message": "secret",
              "log": {"offset": 1, "file": {"path": "/x"}}}
    for index in (f"private-{unique}", "metrics-business-2026.01.01", f"logs-app-{unique}"):
        es.index(index=index, id=unique, body=secret, refresh=True)
        with pytest.raises(SearchError, match="pang's log indices"):
            surrounding(stack_settings, index, unique)
    for index in (".opendistro_security", "_all", "logs-app-2026.01.01,private", "logs-*", "logs-app-٢٠٢٦.٠١.٠١"):
        with pytest.raises(SearchError, match="pang's log indices"):
            surrounding(stack_settings, index, unique)
    # pang's own log indices still work
    ok = f"logs-app-2026.01.0{1 + int(unique[:4], 16) % 9}"
    es.index(index=ok, id=unique, body=secret, refresh=True)
    assert [h.id for h in surrounding(stack_settings, ok, unique, before=0, after=0)] == [unique]


# --------------------------------------------------------------------------- 4. credentials in URLs

SECRET = "s3cr3tPw"


def _creds_env(tmp_path: Path) -> dict[str, str]:
    """PANG_* for a cluster and an S3 endpoint with user:password in their URLs, on ports nothing listens on."""
    taken: set[int] = set()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
    env.update({
        "PANG_STATE_DIR": str(tmp_path / "state"),
        "PANG_OPENSEARCH_URL": f"http://elastic:{SECRET}@127.0.0.1:{free_port(taken=taken)}",
        "PANG_S3_ENDPOINT": f"http://key:{SECRET}@127.0.0.1:{free_port(taken=taken)}",
        "PANG_OPENSEARCH_TIMEOUT": "2",
    })
    return env


def _pang(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pang.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_config_show_masks_userinfo(tmp_path: Path) -> None:
    done = _pang(_creds_env(tmp_path), "config", "show")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "http://***@127.0.0.1:" in done.stdout


def test_cli_errors_mask_userinfo(tmp_path: Path) -> None:
    env = _creds_env(tmp_path)
    for args in (("index", "setup"), ("deadletter", "list"), ("stack", "status")):
        done = _pang(env, *args)
        assert SECRET not in done.stdout + done.stderr, (args, done.stdout + done.stderr)
    done = _pang(env, "index", "setup")
    assert done.returncode == 1 and "***@127.0.0.1" in done.stderr
    # a URL the settings refuse is quoted back masked too
    env["PANG_OPENSEARCH_URL"] = f"http://elastic:{SECRET}@127.0.0.1:notaport"
    done = _pang(env, "config", "show")
    assert done.returncode == 2 and "PANG_OPENSEARCH_URL" in done.stderr and SECRET not in done.stderr


def test_search_and_steady_error_banners_mask_userinfo(tmp_path: Path) -> None:
    from pang.dashboards.steady_page import _error_text
    from pang.indexer.timerange import parse_time_range
    from pang.steady.view import steady_view

    env = _creds_env(tmp_path)
    settings = load_settings(opensearch_url=env["PANG_OPENSEARCH_URL"], opensearch_timeout=2)
    with pytest.raises(SearchError) as caught:
        search(settings, SearchRequest(time=parse_time_range(since="1h")))
    assert SECRET not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    try:
        now = datetime.now(UTC)
        steady_view(settings, "orders", now - timedelta(hours=1), now)
    except Exception as exc:  # noqa: BLE001 - whatever the view raises, the banner is made from it
        banner = _error_text(exc, settings)
    else:
        raise AssertionError("an unreachable node must fail the view")
    assert SECRET not in banner and "***@127.0.0.1" in banner


# --------------------------------------------------------------------------- 2. JSON nested too deep to re-encode

def _nested(depth: int, seq: int) -> str:
    """A JSON object ``depth`` levels deep (the line's own object counted)."""
    return '{"message": "deep seq=%d", "a": ' % seq + '{"a": ' * (depth - 2) + "1" + "}" * (depth - 2) + "}"


@pytest.mark.stack
def test_json_nested_too_deep_to_encode_is_shipped_as_text_and_counted(
        stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    service = f"deep-{unique}"
    logs = tmp_path / "logs" / service
    logs.mkdir(parents=True)
    lines = ['{"@timestamp": "2026-11-24T10:00:00.000Z", "message": "before seq=0"}',
             _nested(255, 1), _nested(600, 2), _nested(1_024, 3), _nested(1_099, 5),
             '{"@timestamp": "2026-11-24T10:00:01.000Z", "message": "after seq=4"}']
    (logs / "app.log").write_text("\n".join(lines) + "\n")
    query = {"term": {"service.name": service}}
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")]) as agent:
        assert wait_count(stack_settings, "logs-app-*", 6, query=query, timeout=30) == 6
        assert agent.healthz()["status"] == "ok"  # type: ignore[index]
        assert agent.metrics()["pang_documents_unencodable_total"] == 3  # 1,099 levels orjson does not even parse
        assert agent.proc.poll() is None  # type: ignore[union-attr]
        assert agent.terminate(timeout=60) == 0
    docs = sorted(all_docs(stack_settings, "logs-app-*", query), key=lambda d: d["log"]["offset"])
    assert [d["message"] for d in docs[1:5]] == lines[1:5]  # the line itself, searchable as text
    assert all("pang.unencodable" in d.get("tags", []) for d in docs[1:4])
    assert docs[5]["message"] == "after seq=4"


def test_unencodable_syslog_or_metrics_document_is_kept_as_text() -> None:
    enricher = _enricher()
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):
        node["a"] = {}
        node = node["a"]
    doc = {"@timestamp": "2026-01-01T00:00:00.000Z", "message": "m", "log": {"syslog": {"structured_data": deep}},
           "event": {"original": "<13>raw \udcff"}}
    payload = enricher.spool_record("syslog", doc)
    source = orjson.loads(payload.split(b"\t", 2)[2])
    assert source["message"] == "<13>raw \ufffd" and source["tags"] == ["pang.unencodable"]
    assert source["@timestamp"] == "2026-01-01T00:00:00.000Z" and enricher.unencodable == 1


# --------------------------------------------------------------------------- 2. a dead input stops the agent

@pytest.mark.stack
def test_a_dead_input_fails_healthz_and_the_agent_exits_non_zero(stack_settings: Settings, tmp_path: Path) -> None:
    from pang.shippers.agent import Agent

    settings = stack_settings.model_copy(update={
        "state_dir": tmp_path / "state", "ship_http_port": 0, "syslog_port": 0, "metrics_enabled": False,
        "ship_paths": [str(tmp_path / "logs" / "**" / "*.log")]})
    agent = Agent(settings)
    release = threading.Event()

    def broken_poll() -> Any:  # the reader meets something it cannot handle
        release.wait(10)
        raise OSError(5, "Input/output error")

    agent.tailer.poll = broken_poll  # type: ignore[method-assign]
    agent.start()
    try:
        url = f"http://127.0.0.1:{agent.http_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        release.set()
        deadline = time.monotonic() + 10
        while agent.failure is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(url, timeout=5)
        assert answer.value.code == 503
        body = json.loads(answer.value.read())
        assert body["status"] == "failed" and body["failure"].startswith("files input died: OSError")
    finally:
        assert agent.shutdown() == 1


DYING_AGENT = """
import sys
from pang.settings import load_settings
from pang.shippers.agent import Agent, run
import pang.shippers.agent as agent_module

class Dying(Agent):
    def _accept_syslog(self, docs):
        raise MemoryError("spool writer broke")

agent_module.Agent = Dying
sys.exit(run(load_settings()))
"""


@pytest.mark.stack
def test_pang_ship_exits_non_zero_with_one_line_when_syslog_dies(stack_settings: Settings, tmp_path: Path) -> None:
    agent = AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")])
    agent.env["PANG_LOG_LEVEL"] = "INFO"
    proc = subprocess.Popen([sys.executable, "-c", DYING_AGENT], env=agent.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while agent.healthz() is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>hello", ("127.0.0.1", agent.syslog_port))
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    died = [line for line in out.splitlines() if "input died" in line]
    assert len(died) == 1 and "syslog-udp input died: MemoryError: spool writer broke" in died[0], out
    assert "Traceback" not in out


# --------------------------------------------------------------------------- 5. /metrics and /healthz behind idle connections

def test_healthz_answers_while_idle_connections_are_open_and_closes_them() -> None:
    from prometheus_client.core import CounterMetricFamily

    from pang.metrics_http import metrics_server

    class One:
        def collect(self) -> Any:
            fam = CounterMetricFamily("pang_test_things", "Things.")
            fam.add_metric([], 1)
            yield fam

    server = metrics_server("127.0.0.1", 0, One(), lambda: (True, {"status": "ok"}), idle_timeout=1.0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    port = server.server_port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    half = socket.create_connection(("127.0.0.1", port), timeout=5)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a request that never ends
    try:
        started = time.monotonic()
        for path in ("/healthz", "/metrics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
                assert resp.status == 200
        assert time.monotonic() - started < 2
        for s in [*idle, half]:  # the server hangs up on them after the idle timeout
            s.settimeout(5)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert b"pang_test_things" not in data
    finally:
        for s in [*idle, half]:
            s.close()
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- SIGTERM when idle

@pytest.mark.stack
def test_idle_pang_ship_exits_within_a_few_seconds_of_sigterm(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    logs = tmp_path / "logs" / f"idle-{unique}"
    logs.mkdir(parents=True)
    (logs / "app.log").write_text("one line\n")
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "logs" / "**" / "*.log")],
                      env={"PANG_METRICS_ENABLED": "true", "PANG_SHIP_BATCH_SECONDS": "0.5", "PANG_SHIP_SCAN_INTERVAL": "1"}) as agent:
        assert wait_count(stack_settings, "logs-app-*", 1, query={"term": {"service.name": f"idle-{unique}"}}) == 1
        # a syslog sender that stays connected, and an idle /metrics client
        tcp = socket.create_connection(("127.0.0.1", agent.syslog_port), timeout=5)
        tcp.sendall(b"<13>Nov 26 10:00:00 host app: one\n")
        http = socket.create_connection(("127.0.0.1", agent.http_port), timeout=5)
        time.sleep(1.5)  # nothing left to send
        started = time.monotonic()
        assert agent.terminate(timeout=60) == 0
        took = time.monotonic() - started
        tcp.close()
        http.close()
    assert took < 5, f"pang ship took {took:.1f} s to exit"
