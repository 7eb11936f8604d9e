"""Syslog from real clients (util-linux logger, Python's SysLogHandler) through the agent's spool into the node."""

from __future__ import annotations

import logging
import logging.handlers
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pang.settings import Settings
from tests.agent_util import AgentProcess, all_docs, duplicates, wait_count

pytestmark = pytest.mark.stack


def _q(tag: str) -> dict:
    return {"match_phrase": {"message": tag}}


def _logger(port: int, *args: str) -> None:
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), *args], check=True, capture_output=True, timeout=10)


def test_logger_over_udp_and_tcp_in_both_formats(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")]) as agent:
        port = agent.syslog_port
        _logger(port, "-d", "--rfc3164", "-t", "shopapp", "-p", "local3.warning", f"m-{unique} udp 3164")
        _logger(port, "-d", "--rfc5424", "-t", "shopapp", "-p", "auth.err", "--sd-id", "order@32473", "--sd-param", 'id="42"', f"m-{unique} udp 5424")
        _logger(port, "-T", "--rfc5424", "-t", "shopapp", "--octet-count", f"m-{unique} tcp octet")
        _logger(port, "-T", "--rfc3164", "-t", "shopapp", f"m-{unique} tcp newline")
        assert wait_count(stack_settings, "logs-syslog-*", 4, query=_q(f"m-{unique}")) == 4
    docs = {d["message"].split(f"m-{unique} ", 1)[1]: d for d in all_docs(stack_settings, "logs-syslog-*", _q(f"m-{unique}"))}
    assert set(docs) == {"udp 3164", "udp 5424", "tcp octet", "tcp newline"}
    d = docs["udp 3164"]
    assert d["log"]["syslog"]["facility"]["name"] == "local3" and d["log"]["syslog"]["severity"]["name"] == "warning"
    assert d["log"]["syslog"]["appname"] == "shopapp" and d["event"]["dataset"] == "syslog"
    d = docs["udp 5424"]
    assert d["log"]["syslog"]["version"] == 1 and d["log"]["syslog"]["severity"]["code"] == 3
    assert d["log"]["syslog"]["structured_data"]["order@32473"]["id"] == "42"
    assert "pang.parse_error" not in d.get("tags", [])


def test_python_sysloghandler_udp_and_tcp(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")]) as agent:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            handler = logging.handlers.SysLogHandler(address=("127.0.0.1", agent.syslog_port), socktype=kind)
            log = logging.getLogger(f"pysys-{unique}-{kind}")
            log.propagate = False
            log.addHandler(handler)
            for i in range(50):
                log.error("py-%s kind=%s n=%d", unique, int(kind), i)
            handler.close()
        assert wait_count(stack_settings, "logs-syslog-*", 100, query=_q(f"py-{unique}")) == 100
    docs = all_docs(stack_settings, "logs-syslog-*", _q(f"py-{unique}"))
    assert duplicates([d["message"] for d in docs]) == {}
    assert all(d["log"]["syslog"]["severity"]["name"] == "error" for d in docs)


def test_malformed_and_oversized_messages_are_indexed_and_flagged(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    env = {"PANG_SYSLOG_MAX_MESSAGE_BYTES": "1000"}
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")], env=env) as agent:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"garbage without priority bad-{unique}".encode(), ("127.0.0.1", agent.syslog_port))
            s.sendto(f"<14>1 2026-11-24T10:00:00Z h a - - - big-{unique} ".encode() + b"z" * 5000, ("127.0.0.1", agent.syslog_port))
        assert wait_count(stack_settings, "logs-syslog-*", 2, query={"bool": {"should": [_q(f"bad-{unique}"), _q(f"big-{unique}")]}}) == 2
        metrics = agent.metrics()
    docs = all_docs(stack_settings, "logs-syslog-*", {"bool": {"should": [_q(f"bad-{unique}"), _q(f"big-{unique}")]}})
    bad = next(d for d in docs if f"bad-{unique}" in d["message"])
    big = next(d for d in docs if f"big-{unique}" in d["message"])
    assert bad["message"] == f"garbage without priority bad-{unique}"  # nothing lost, even unparsed
    assert "pang.truncated" in big["tags"] and len(big["event"]["original"]) <= 1000
    assert metrics["pang_syslog_truncated_total"] >= 1


def test_accepted_messages_survive_a_kill(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    """Messages in the spool when the agent dies are shipped by the next start, once each."""
    env = {"PANG_OPENSEARCH_URL": "http://127.0.0.1:9"}  # the node is unreachable: messages can only be spooled
    agent = AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")], env=env).start()
    with socket.create_connection(("127.0.0.1", agent.syslog_port)) as conn:
        conn.sendall(b"".join(f"<13>Nov 24 10:00:00 host app: kill-{unique} n={i}\n".encode() for i in range(200)))
    deadline = time.monotonic() + 20
    while agent.metrics().get('pang_syslog_messages_total{transport="tcp"}', 0) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    agent.kill()
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")]):
        assert wait_count(stack_settings, "logs-syslog-*", 200, query=_q(f"kill-{unique}")) == 200
    docs = all_docs(stack_settings, "logs-syslog-*", _q(f"kill-{unique}"))
    assert duplicates([d["message"] for d in docs]) == {} and len(docs) == 200


def test_tcp_syslog_over_tls(stack_settings: Settings, tmp_path: Path, unique: str) -> None:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    env = {"PANG_SYSLOG_TLS_CERT": str(cert), "PANG_SYSLOG_TLS_KEY": str(key)}
    with AgentProcess(stack_settings, tmp_path / "state", [str(tmp_path / "none" / "*.log")], env=env) as agent:
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", agent.syslog_port)) as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            msg = f"<14>1 2026-11-24T10:00:00Z h app - - - tls-{unique}".encode()
            tls.sendall(b"%d %s" % (len(msg), msg))  # octet counting, as RFC 5425 asks for TLS
        with socket.create_connection(("127.0.0.1", agent.syslog_port)) as plain:
            plain.sendall(f"<14>plain-{unique}\n".encode())  # no TLS handshake: refused, not indexed
        assert wait_count(stack_settings, "logs-syslog-*", 1, query=_q(f"tls-{unique}")) == 1
        time.sleep(1)
    assert wait_count(stack_settings, "logs-syslog-*", 0, query=_q(f"plain-{unique}"), timeout=1) == 0
