"""Syslog parsing and TCP framing: real senders' bytes, RFC examples, and properties.

The example messages were captured byte for byte on 127.0.0.1: util-linux
2.38.1 ``logger`` over UDP and TCP, rsyslog 8.2302 forwarding them with its
built-in templates, and CPython 3.11's ``logging.handlers.SysLogHandler``
(``<PRI>`` + message + NUL, no timestamp or host, and no LF over TCP either).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import shutil
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.shippers.parse.framing import SyslogFramer
from pang.shippers.parse.syslog import FACILITY_NAMES, SEVERITY_NAMES, parse_syslog

UTC = timezone.utc
RECEIVED = datetime(2026, 11, 26, 13, 20, 0, 500000, tzinfo=UTC)
RECEIVED_TS = "2026-11-26T13:20:00.500Z"
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
KNOWN_TAGS = {"pang.parse_error", "pang.truncated", "pang.invalid_utf8"}

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(raw: bytes, **kw: Any) -> dict[str, Any]:
    kw.setdefault("received", RECEIVED)
    return parse_syslog(raw, **kw)


def syslog_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("log", {}).get("syslog", {})


def no_none(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(no_none(v) for v in value.values())
    if isinstance(value, list):
        return all(no_none(v) for v in value)
    return True


# --------------------------------------------------------------------------- util-linux logger

def test_logger_rfc5424_default() -> None:
    raw = b'<13>1 2026-11-26T13:19:19.252197+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] hello world'
    doc = parse(raw, peer="127.0.0.1:40312")
    assert doc == {
        "@timestamp": "2026-11-26T13:19:19.252Z",
        "message": "hello world",
        "log": {
            "level": "notice",
            "syslog": {
                "priority": 13,
                "facility": {"code": 1, "name": "user"},
                "severity": {"code": 5, "name": "notice"},
                "version": 1,
                "appname": "root",
                "structured_data": {"timeQuality": {"tzKnown": "1", "isSynced": "0"}},
                "hostname": "vm",
            },
        },
        "host": {"hostname": "vm"},
        "event": {"original": raw.decode(), "dataset": "syslog"},
        "client": {"address": "127.0.0.1", "ip": "127.0.0.1"},
    }


def test_logger_rfc5424_all_fields_and_sd_escapes() -> None:
    # logger --rfc5424 -t myapp -p local3.err -i --msgid ID47 --sd-id ex@32473 --sd-param 'k="v\"q"' --sd-param 'b="x\]y"'
    raw = (b'<155>1 2026-11-26T13:19:19.255403+00:00 vm myapp 18525 ID47 [timeQuality tzKnown="1" isSynced="0"]'
           b'[ex@32473 k="v\\"q" b="x\\]y"] hi there')
    doc = parse(raw)
    sl = syslog_of(doc)
    assert doc["@timestamp"] == "2026-11-26T13:19:19.255Z"
    assert doc["message"] == "hi there"
    assert doc["log"]["level"] == "error"
    assert sl["facility"] == {"code": 19, "name": "local3"}
    assert sl["severity"] == {"code": 3, "name": "error"}
    assert (sl["appname"], sl["procid"], sl["msgid"]) == ("myapp", "18525", "ID47")
    assert sl["structured_data"] == {
        "timeQuality": {"tzKnown": "1", "isSynced": "0"},
        "ex@32473": {"k": 'v"q', "b": "x]y"},
    }
    assert "tags" not in doc


def test_logger_rfc5424_nil_time_and_host() -> None:
    # logger --rfc5424=notq,notime,nohost -t x bare
    doc = parse(b"<13>1 - - x - - - bare")
    assert doc["@timestamp"] == RECEIVED_TS
    assert doc["message"] == "bare"
    assert "host" not in doc
    sl = syslog_of(doc)
    assert sl["appname"] == "x"
    assert not {"hostname", "procid", "msgid", "structured_data"} & sl.keys()


def test_logger_rfc3164() -> None:
    doc = parse(b"<13>Nov 26 13:19:19 vm root: hello world")
    assert doc["@timestamp"] == "2026-11-26T13:19:19.000Z"
    assert doc["message"] == "hello world"
    assert doc["host"] == {"hostname": "vm"}
    sl = syslog_of(doc)
    assert sl["appname"] == "root" and "procid" not in sl and "version" not in sl
    assert sl["priority"] == 13


def test_logger_rfc3164_pid_and_space_padded_day() -> None:
    # logger --rfc3164 -t myapp -i -p auth.warning, on the 6th of the month
    doc = parse(b"<36>Nov  6 13:19:19 vm myapp[18527]: pid msg")
    assert doc["@timestamp"] == "2026-11-06T13:19:19.000Z"
    sl = syslog_of(doc)
    assert (sl["appname"], sl["procid"], sl["hostname"]) == ("myapp", "18527", "vm")
    assert sl["facility"]["name"] == "auth" and doc["log"]["level"] == "warning"
    assert doc["message"] == "pid msg"
    # Some senders do not pad the day at all.
    assert parse(b"<36>Nov 6 13:19:19 vm myapp[1]: x")["@timestamp"] == "2026-11-06T13:19:19.000Z"


def test_logger_over_tcp_both_framings() -> None:
    framer = SyslogFramer()
    stream = (
        b'<13>1 2026-11-26T13:19:19.261548+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] tcp one\n'
        b'101 <13>1 2026-11-26T13:19:19.263548+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] tcp counted'
        b"45 <13>Nov 26 13:19:19 vm root: tcp counted 3164"
        b"<13>Nov 26 13:19:19 vm root: tcp 3164\n"
    )
    frames = framer.feed(stream) + framer.flush()
    assert [parse(f)["message"] for f, _ in frames] == ["tcp one", "tcp counted", "tcp counted 3164", "tcp 3164"]
    assert not any(t for _, t in frames)


@pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger not installed")
@pytest.mark.parametrize("fmt", ["--rfc5424", "--rfc3164"])
def test_live_logger_udp(fmt: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        subprocess.run(
            ["logger", "-n", "127.0.0.1", "-P", str(port), "-d", fmt, "-t", "pangtest", "-i", "-p", "daemon.err",
             "live message ü"],
            check=True, timeout=10,
        )
        raw, _ = sock.recvfrom(65536)
    doc = parse(raw, received=datetime.now(UTC))
    sl = syslog_of(doc)
    assert doc["message"] == "live message ü"
    assert sl["appname"] == "pangtest" and sl["procid"].isdigit()
    assert sl["facility"]["name"] == "daemon" and doc["log"]["level"] == "error"
    assert "tags" not in doc
    stamp = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
    assert abs(stamp - datetime.now(UTC)) < timedelta(hours=15)  # 3164 is read as UTC: local time may differ


# --------------------------------------------------------------------------- rsyslog forwarding

# A logger --rfc5424 message (tag myapp, pid 27251, msgid ID7) and a logger --rfc3164 one (sshd, auth.info),
# forwarded by rsyslog with each built-in template.
RSYSLOG = {
    "RSYSLOG_TraditionalForwardFormat": (
        b"<13>Nov 26 13:23:29 vm myapp[27251] hello via rsyslog",
        b"<38>Nov 26 13:23:29 vm sshd: second 3164",
    ),
    "RSYSLOG_ForwardFormat": (
        b"<13>2026-11-26T13:23:29.641243+00:00 vm myapp[27251] hello via rsyslog",
        b"<38>2026-11-26T13:23:29+00:00 vm sshd: second 3164",
    ),
    "RSYSLOG_SyslogProtocol23Format": (
        b'<13>1 2026-11-26T13:23:29.641243+00:00 vm myapp 27251 ID7 [timeQuality tzKnown="1" isSynced="0"]'
        b'[ex@32473 k="v"] hello via rsyslog\n',
        b"<38>1 2026-11-26T13:23:29+00:00 vm sshd - - -  second 3164\n",
    ),
    "RSYSLOG_FileFormat": (
        b"2026-11-26T13:23:29.641243+00:00 vm myapp[27251] hello via rsyslog\n",
        b"2026-11-26T13:23:29+00:00 vm sshd: second 3164\n",
    ),
    "RSYSLOG_TraditionalFileFormat": (
        b"Nov 26 13:23:29 vm myapp[27251] hello via rsyslog\n",
        b"Nov 26 13:23:29 vm sshd: second 3164\n",
    ),
}


@pytest.mark.parametrize("template", sorted(RSYSLOG))
def test_rsyslog_forwarding_formats(template: str) -> None:
    first, second = (parse(raw) for raw in RSYSLOG[template])
    has_pri = template not in ("RSYSLOG_FileFormat", "RSYSLOG_TraditionalFileFormat")
    rfc3339 = "Traditional" not in template  # the others carry microseconds
    assert first["@timestamp"] == ("2026-11-26T13:23:29.641Z" if rfc3339 else "2026-11-26T13:23:29.000Z")
    assert second["@timestamp"] == "2026-11-26T13:23:29.000Z"
    for doc in (first, second):
        assert "tags" not in doc
        assert doc["host"] == {"hostname": "vm"}
        assert ("priority" in syslog_of(doc)) is has_pri
        assert ("level" in doc["log"]) is has_pri
    assert syslog_of(first)["appname"] == "myapp" and syslog_of(first)["procid"] == "27251"
    assert first["message"] == "hello via rsyslog"
    assert syslog_of(second)["appname"] == "sshd"
    if template == "RSYSLOG_SyslogProtocol23Format":
        assert syslog_of(first)["msgid"] == "ID7"
        assert syslog_of(first)["structured_data"]["ex@32473"] == {"k": "v"}
        # rsyslog keeps the space that followed "sshd:" in MSG; RFC 5424 MSG is everything after one SP.
        assert second["message"] == " second 3164"
    else:
        assert second["message"] == "second 3164"
    if has_pri:
        assert syslog_of(second)["severity"]["name"] == "informational"


def test_rsyslog_tcp_octet_counted_with_lf_inside_the_count() -> None:
    stream = (b'131 <13>1 2026-11-26T13:23:29.641243+00:00 vm myapp 27251 ID7 [timeQuality tzKnown="1" isSynced="0"]'
              b'[ex@32473 k="v"] hello via rsyslog\n59 <38>1 2026-11-26T13:23:29+00:00 vm sshd - - -  second 3164\n')
    framer = SyslogFramer()
    frames = [framer.feed(stream[i:i + 7]) for i in range(0, len(stream), 7)]
    got = [f for chunk in frames for f in chunk] + framer.flush()
    assert [f for f, _ in got] == [
        RSYSLOG["RSYSLOG_SyslogProtocol23Format"][0], RSYSLOG["RSYSLOG_SyslogProtocol23Format"][1]]


# --------------------------------------------------------------------------- Python's SysLogHandler

def test_python_sysloghandler_udp_bytes_as_sent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        handler = logging.handlers.SysLogHandler(address=sock.getsockname(),
                                                 facility=logging.handlers.SysLogHandler.LOG_LOCAL0)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s %(message)s"))
        record = logging.LogRecord("orders", logging.ERROR, __file__, 1, "payment failed id=%s", (42,), None)
        try:
            handler.emit(record)
            raw = sock.recv(65536)
        finally:
            handler.close()
    assert raw == b"<131>orders: ERROR payment failed id=42\x00"  # what CPython 3.11 sends: PRI, text, NUL
    doc = parse(raw)
    assert doc["message"] == "orders: ERROR payment failed id=42"
    assert doc["event"]["original"] == raw.decode()
    assert doc["@timestamp"] == RECEIVED_TS
    assert syslog_of(doc)["facility"]["name"] == "local0" and doc["log"]["level"] == "error"
    assert "tags" not in doc and "host" not in doc


def test_python_sysloghandler_with_ident() -> None:
    doc = parse(b"<132>shop[99]: orders: WARNING h\xc3\xa9llo\x00")
    # No timestamp: RFC 3164 4.3.2 says the rest is all content, so the ident stays in the message.
    assert doc["message"] == "shop[99]: orders: WARNING héllo"
    assert doc["log"]["level"] == "warning"


def test_python_sysloghandler_tcp_is_nul_framed() -> None:
    # SysLogHandler(socktype=SOCK_STREAM) sends "<12>two\x00" and no LF: NUL ends a frame.
    framer = SyslogFramer()
    assert framer.feed(b"<12>two\x00<11>three\x00<12>fo") == [(b"<12>two", False), (b"<11>three", False)]
    assert framer.flush() == [(b"<12>fo", False)]


# --------------------------------------------------------------------------- RFC examples

def test_rfc5424_examples() -> None:
    bom = "\ufeff".encode()
    doc = parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bom
                + b"'su root' failed for lonvick on /dev/pts/8")
    assert doc["@timestamp"] == "2003-10-11T22:14:15.003Z"
    assert doc["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert syslog_of(doc)["msgid"] == "ID47" and doc["log"]["level"] == "critical"

    doc = parse(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
    assert doc["@timestamp"] == "2003-08-24T12:14:15.000Z"
    assert doc["host"] == {"hostname": "192.0.2.1"}
    assert syslog_of(doc)["facility"]["name"] == "local4" and doc["log"]["level"] == "notice"
    assert doc["message"] == "%% It's time to make the do-nuts."

    doc = parse(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
                b'eventSource="Application" eventID="1011"] ' + bom + b"An application event log entry...")
    assert syslog_of(doc)["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}}
    assert doc["message"] == "An application event log entry..."

    doc = parse(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
                b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]')
    assert syslog_of(doc)["structured_data"]["examplePriority@32473"] == {"class": "high"}
    assert doc["message"] == ""


def test_rfc5424_repeated_param_name_keeps_every_value() -> None:
    doc = parse(b'<13>1 - h a - - [origin ip="192.0.2.1" ip="192.0.2.129" software="x"] m')
    assert syslog_of(doc)["structured_data"] == {"origin": {"ip": ["192.0.2.1", "192.0.2.129"], "software": "x"}}


def test_sd_value_escapes_and_unknown_backslashes() -> None:
    doc = parse(b'<13>1 - h a - - [x@1 a="q\\"uote" b="back\\\\slash" c="br\\]acket" d="C:\\temp" e="" f="[]=\\"x"] m')
    assert syslog_of(doc)["structured_data"]["x@1"] == {
        "a": 'q"uote', "b": "back\\slash", "c": "br]acket", "d": "C:\\temp", "e": "", "f": '[]="x'}


def test_malformed_structured_data_stays_in_the_message() -> None:
    for tail in ('[broken sd', '[a b] m', '[a x="1"]junk', '-junk', '[a x="unterminated] m'):
        doc = parse(b"<13>1 - h a - - " + tail.encode())
        assert doc["message"] == tail
        assert "structured_data" not in syslog_of(doc)
        assert "tags" not in doc


def test_rfc3164_examples() -> None:
    doc = parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert doc["@timestamp"] == "2026-10-11T22:14:15.000Z"  # no year: the one nearest to received
    assert syslog_of(doc)["appname"] == "su" and doc["host"] == {"hostname": "mymachine"}
    doc = parse(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!")
    assert doc["host"] == {"hostname": "10.0.0.99"}
    assert doc["message"] == "Use the BFG!" and "appname" not in syslog_of(doc)


def test_rfc3164_without_hostname() -> None:
    doc = parse(b"<38>Nov 26 13:00:00 sshd[4242]: Accepted publickey for deploy")
    assert "host" not in doc
    assert (syslog_of(doc)["appname"], syslog_of(doc)["procid"]) == ("sshd", "4242")
    assert doc["message"] == "Accepted publickey for deploy"
    doc = parse(b"<6>Nov 26 13:00:00 kernel: [ 1.234] usb 1-1: new device")
    assert syslog_of(doc)["appname"] == "kernel" and doc["message"] == "[ 1.234] usb 1-1: new device"


def test_rfc3164_variants() -> None:
    # year after the day, fractional seconds, a space after PRI, IPv6 host, slash in the tag
    doc = parse(b"<13>Nov 26 2024 13:00:00.250 fe80::1 postfix/smtpd[77]: connect from x")
    assert doc["@timestamp"] == "2024-11-26T13:00:00.250Z"
    assert doc["host"] == {"hostname": "fe80::1"}
    assert syslog_of(doc)["appname"] == "postfix/smtpd"
    doc = parse(b"<13> Nov 26 13:00:00 h app: m")
    assert doc["@timestamp"] == "2026-11-26T13:00:00.000Z" and doc["message"] == "m"
    # a first word with neither colon nor [pid] is not a tag
    doc = parse(b"<13>Nov 26 13:00:00 host just words: here")
    assert "appname" not in syslog_of(doc) and doc["message"] == "just words: here"


# --------------------------------------------------------------------------- time

def test_3164_year_inference_across_new_year() -> None:
    jan = datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert parse(b"<13>Dec 31 23:59:58 h a: m", received=jan)["@timestamp"] == "2026-12-31T23:59:58.000Z"
    dec = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC)
    assert parse(b"<13>Jan  1 00:00:30 h a: m", received=dec)["@timestamp"] == "2027-01-01T00:00:30.000Z"
    mid = datetime(2026, 6, 15, tzinfo=UTC)
    assert parse(b"<13>Jun 14 10:00:00 h a: m", received=mid)["@timestamp"] == "2026-06-14T10:00:00.000Z"
    # 29 February: the nearest leap year
    leap = datetime(2028, 3, 1, tzinfo=UTC)
    assert parse(b"<13>Feb 29 10:00:00 h a: m", received=leap)["@timestamp"] == "2028-02-29T10:00:00.000Z"
    # received in another zone: compared in UTC
    tokyo = datetime(2027, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # 2026-12-31T23:00Z
    assert parse(b"<13>Dec 31 22:00:00 h a: m", received=tokyo)["@timestamp"] == "2026-12-31T22:00:00.000Z"


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-11-24T10:00:00.123Z", "2026-11-24T10:00:00.123Z"),
    ("2026-11-24T10:00:00.123456789Z", "2026-11-24T10:00:00.123Z"),
    ("2026-11-24T10:00:00.9999Z", "2026-11-24T10:00:00.999Z"),  # truncated, never rounded up
    ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00.000Z"),
    ("2026-11-24t10:00:00.5z", "2026-11-24T10:00:00.500Z"),
    ("2026-11-24T15:30:00+05:30", "2026-11-24T10:00:00.000Z"),
    ("2026-11-24T00:30:00.1-09:30", "2026-11-24T10:00:00.100Z"),
    ("2026-12-31T23:00:00-02:00", "2027-01-01T01:00:00.000Z"),
    ("2026-11-24T10:00:00", "2026-11-24T10:00:00.000Z"),  # no offset: UTC
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.000Z"),  # leap second
    ("2026-02-30T10:00:00Z", RECEIVED_TS),  # impossible: falls back to received
    ("2026-11-24T25:00:00Z", RECEIVED_TS),
    ("2026-11-24T10:00:00+24:00", RECEIVED_TS),
    ("0001-01-01T00:00:00+01:00", RECEIVED_TS),  # before year 1 in UTC
])
def test_5424_timestamps(stamp: str, expected: str) -> None:
    doc = parse(f"<13>1 {stamp} h a - - - m".encode())
    assert doc["@timestamp"] == expected
    assert doc["message"] == "m" and "tags" not in doc


def test_received_fallbacks() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678900)  # naive: taken as UTC
    assert parse(b"hello", received=naive)["@timestamp"] == "2026-01-02T03:04:05.678Z"
    berlin = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert parse(b"<13>1 - - - - - -", received=berlin)["@timestamp"] == "2026-01-02T03:04:05.000Z"


# --------------------------------------------------------------------------- bytes, tags, peer

def test_parse_error_keeps_everything() -> None:
    for raw in (b"plain text line", b"<999>too big", b"<13", b"", b"   ", b"<>x", b"Foo 26 13:00:00 h a: m"):
        doc = parse(raw)
        assert doc["tags"] == ["pang.parse_error"], raw
        assert doc["message"] == raw.decode()
        assert doc["event"] == {"original": raw.decode(), "dataset": "syslog"}
        assert doc["@timestamp"] == RECEIVED_TS
        assert "log" not in doc


def test_invalid_utf8() -> None:
    doc = parse(b"<13>1 - h a - - - caf\xe9 \xff")
    assert doc["tags"] == ["pang.invalid_utf8"]
    assert doc["message"] == "caf\ufffd \ufffd"
    assert syslog_of(doc)["appname"] == "a"


def test_truncation() -> None:
    raw = b"<13>1 - h a - - - " + b"x" * 100
    doc = parse(raw, max_bytes=50)
    assert doc["tags"] == ["pang.truncated"]
    assert doc["event"]["original"] == raw[:50].decode()
    assert doc["message"] == "x" * (50 - 18)
    # a cut inside a multi-byte character is not invalid UTF-8
    doc = parse(b"<13>1 - h a - - - " + "é".encode() * 20, max_bytes=21)
    assert doc["tags"] == ["pang.truncated"]
    assert doc["message"] == "é"
    doc = parse(b"<13>1 - h a - - - \xff" + b"x" * 10, max_bytes=20)
    assert doc["tags"] == ["pang.truncated", "pang.invalid_utf8"]


def test_peer() -> None:
    raw = b"<13>1 - h a - - - m"
    assert parse(raw, peer="192.0.2.7")["client"] == {"address": "192.0.2.7", "ip": "192.0.2.7"}
    assert parse(raw, peer="192.0.2.7:51400")["client"] == {"address": "192.0.2.7", "ip": "192.0.2.7"}
    assert parse(raw, peer="[2001:db8::1]:514")["client"] == {"address": "2001:db8::1", "ip": "2001:db8::1"}
    assert parse(raw, peer="2001:db8::1")["client"] == {"address": "2001:db8::1", "ip": "2001:db8::1"}
    assert parse(raw, peer="relay.example.com")["client"] == {"address": "relay.example.com"}
    assert "client" not in parse(raw)


def test_pathological_inputs_stay_fast() -> None:
    bad = [
        b'<13>1 - h a - - [x a="' + b"\\" * 60000,
        b"<13>1 - h a - - " + b"[x" * 30000,
        b'<13>1 - h a - - [x' + b' a="b"' * 10000 + b"junk",
        b"<13>Nov 26 13:00:00 " + b"a[" * 30000,
        b"<13>" + b" " * 60000 + b"x",
        b"1 " * 30000,
    ]
    for raw in bad:
        start = time.perf_counter()
        doc = parse(raw)
        assert time.perf_counter() - start < 0.5, raw[:40]
        assert doc["event"]["original"] == raw.decode()


# --------------------------------------------------------------------------- properties: parse_syslog

def _check_invariants(raw: bytes, doc: dict[str, Any], max_bytes: int) -> None:
    assert isinstance(doc["message"], str)
    assert TS_RE.match(doc["@timestamp"]), doc["@timestamp"]
    assert doc["event"]["dataset"] == "syslog"
    tags = doc.get("tags", [])
    assert set(tags) <= KNOWN_TAGS and len(tags) == len(set(tags))
    original = doc["event"]["original"]
    if len(raw) <= max_bytes:
        assert "pang.truncated" not in tags
        assert original == raw.decode("utf-8", "replace")
        assert ("pang.invalid_utf8" in tags) == (original != raw.decode("utf-8", "ignore"))
    else:
        assert "pang.truncated" in tags
        cut = raw[:max_bytes].decode("utf-8", "replace")
        assert cut.startswith(original) and len(cut) - len(original) <= 1
    if "pang.parse_error" in tags:
        assert doc["message"] == original.rstrip("\x00\r\n")
        assert "log" not in doc
    else:
        assert doc["message"] in original  # a slice of the input, never invented text
    assert no_none(doc)


@FAST
@given(raw=st.binary(max_size=400), max_bytes=st.integers(1, 500))
def test_any_bytes_never_raise(raw: bytes, max_bytes: int) -> None:
    doc = parse_syslog(raw, received=RECEIVED, peer="10.0.0.1", max_bytes=max_bytes)
    _check_invariants(raw, doc, max_bytes)


_PIECES = st.sampled_from([
    "<", ">", "<13>", "<191>", "<192>", "<0>", "1 ", "2 ", " ", "  ", "-", " - ", "[", "]", '"', "\\", "=", ":",
    "[x@1 ", 'a="', '"]', "\ufeff", "Nov ", "Feb 29 ", " 6 ", "13:00:00", ".123", "Z", "+01:00", "-24:00",
    "2026-11-26T", "2026-02-30T", "host ", "app[12]: ", "app: ", "\n", "\r\n", "\x00", "é", "\udcff",
])


@FAST
@given(parts=st.lists(_PIECES | st.text(max_size=5), max_size=25), max_bytes=st.sampled_from([16, 64, 65536]))
def test_syslog_shaped_bytes_never_raise(parts: list[str], max_bytes: int) -> None:
    raw = "".join(parts).encode("utf-8", "surrogateescape")
    doc = parse_syslog(raw, received=RECEIVED, max_bytes=max_bytes)
    _check_invariants(raw, doc, max_bytes)


PRINTUSASCII = "".join(chr(c) for c in range(33, 127))
SD_NAME = "".join(c for c in PRINTUSASCII if c not in '=]"')


def _field(max_size: int) -> st.SearchStrategy[str | None]:
    return st.none() | st.text(PRINTUSASCII, min_size=1, max_size=max_size).filter(lambda v: v != "-")


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@st.composite
def rfc5424_messages(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    pri = draw(st.integers(0, 191))
    version = draw(st.integers(1, 999))
    expect: dict[str, Any] = {"pri": pri, "version": version}
    if draw(st.booleans()):
        local = draw(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 12, 31)))
        offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
        digits = draw(st.integers(0, 6))
        micro = int(f"{local.microsecond:06d}"[:digits].ljust(6, "0")) if digits else 0
        local = local.replace(microsecond=micro, tzinfo=timezone(timedelta(minutes=offset)))
        frac = "." + f"{micro:06d}"[:digits] if digits else ""
        if offset == 0 and draw(st.booleans()):
            zone = "Z"
        else:
            zone = f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        stamp = (f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}:"
                 f"{local.second:02d}{frac}{zone}")
        utc = local.astimezone(UTC)
        expect["ts"] = (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
                        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z")
    else:
        stamp, expect["ts"] = "-", RECEIVED_TS
    fields = []
    for name, size in (("hostname", 255), ("appname", 48), ("procid", 128), ("msgid", 32)):
        value = draw(_field(size))
        expect[name] = value
        fields.append(value or "-")
    sd: dict[str, dict[str, str]] = draw(st.dictionaries(
        st.text(SD_NAME, min_size=1, max_size=32),
        st.dictionaries(st.text(SD_NAME, min_size=1, max_size=32), st.text(max_size=20), max_size=4),
        max_size=3,
    ))
    expect["sd"] = sd
    sd_text = "".join(
        "[" + sid + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items()) + "]" for sid, params in sd.items()
    ) or "-"
    msg = draw(st.text(max_size=60).filter(lambda m: not m.startswith("\ufeff")))
    bom = draw(st.booleans())
    expect["msg"] = msg.rstrip("\x00\r\n")
    tail = (" " + ("\ufeff" if bom else "") + msg) if (msg or bom or draw(st.booleans())) else ""
    text = f"<{pri}>{version} {stamp} {' '.join(fields)} {sd_text}{tail}"
    return text.encode(), expect


@settings(max_examples=200, deadline=None)
@given(case=rfc5424_messages())
def test_rfc5424_round_trip(case: tuple[bytes, dict[str, Any]]) -> None:
    raw, expect = case
    doc = parse(raw)
    assert "tags" not in doc
    sl = syslog_of(doc)
    assert doc["@timestamp"] == expect["ts"]
    assert doc["message"] == expect["msg"]
    assert sl["priority"] == expect["pri"] and sl["version"] == expect["version"]
    assert sl["facility"] == {"code": expect["pri"] >> 3, "name": FACILITY_NAMES[expect["pri"] >> 3]}
    assert sl["severity"] == {"code": expect["pri"] & 7, "name": SEVERITY_NAMES[expect["pri"] & 7]}
    assert doc["log"]["level"] == SEVERITY_NAMES[expect["pri"] & 7]
    for name in ("hostname", "appname", "procid", "msgid"):
        assert sl.get(name) == expect[name]
    assert doc.get("host") == ({"hostname": expect["hostname"]} if expect["hostname"] else None)
    assert sl.get("structured_data", {}) == expect["sd"]
    assert doc["event"]["original"] == raw.decode()
    assert no_none(doc)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@st.composite
def rfc3164_messages(draw: st.DrawFn) -> tuple[bytes, datetime, dict[str, Any]]:
    pri = draw(st.integers(0, 191))
    when = draw(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31))).replace(microsecond=0)
    received = when + draw(st.timedeltas(min_value=timedelta(hours=-14), max_value=timedelta(days=120)))
    host = draw(st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,40}", fullmatch=True))
    app = draw(st.from_regex(r"[A-Za-z0-9_.\-/]{1,32}", fullmatch=True))
    pid = draw(st.none() | st.integers(1, 4_000_000).map(str))
    msg = draw(st.text(max_size=60))
    day = f"{when.day:2d}" if draw(st.booleans()) else str(when.day)
    tag = f"{app}[{pid}]:" if pid else f"{app}:"
    text = (f"<{pri}>{MONTHS[when.month - 1]} {day} {when:%H:%M:%S} " + (f"{host} " if host else "")
            + f"{tag} {msg}")
    expect = {"ts": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "host": host, "app": app, "pid": pid,
              "msg": msg.rstrip("\x00\r\n"), "pri": pri}
    return text.encode(), received.replace(tzinfo=UTC), expect


@settings(max_examples=200, deadline=None)
@given(case=rfc3164_messages())
def test_rfc3164_round_trip(case: tuple[bytes, datetime, dict[str, Any]]) -> None:
    raw, received, expect = case
    doc = parse_syslog(raw, received=received)
    sl = syslog_of(doc)
    assert "tags" not in doc
    assert doc["@timestamp"] == expect["ts"]
    assert sl.get("hostname") == expect["host"]
    assert sl["appname"] == expect["app"] and sl.get("procid") == expect["pid"]
    assert doc["message"] == expect["msg"]
    assert sl["priority"] == expect["pri"]


# --------------------------------------------------------------------------- framing

def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def _frame_all(framer: SyslogFramer, chunks: list[bytes], bound: int | None = None) -> list[tuple[bytes, bool]]:
    got: list[tuple[bytes, bool]] = []
    for chunk in chunks:
        got += framer.feed(chunk)
        if bound is not None:
            assert framer.buffered <= bound
    return got + framer.flush()


def newline_frames(max_size: int) -> st.SearchStrategy[bytes]:
    """Newline-framed messages: a first byte that is no digit, no LF or NUL inside, no CR at the end."""
    return st.builds(
        lambda first, rest: bytes([first]) + bytes(b for b in rest if b not in (0, 10)).rstrip(b"\r"),
        st.sampled_from(b"<<<<abcXYZ ({"),
        st.binary(max_size=max_size),
    )


newline_safe = newline_frames(120)


def _encode(msg: bytes, octet: bool, crlf: bool) -> bytes:
    if octet:
        return b"%d %s" % (len(msg), msg)
    return msg + (b"\r\n" if crlf else b"\n")


@settings(max_examples=200, deadline=None)
@given(msgs=st.lists(st.binary(min_size=1, max_size=200), max_size=20), cuts=st.lists(st.integers(0, 10_000)))
def test_framing_octet_counting_round_trip(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(_encode(m, True, False) for m in msgs)
    assert _frame_all(SyslogFramer(), _chunks(data, cuts)) == [(m, False) for m in msgs]


@settings(max_examples=200, deadline=None)
@given(msgs=st.lists(newline_safe, max_size=20), crlf=st.booleans(), cuts=st.lists(st.integers(0, 10_000)),
       final_terminator=st.booleans())
def test_framing_newline_round_trip(msgs: list[bytes], crlf: bool, cuts: list[int], final_terminator: bool) -> None:
    data = b"".join(_encode(m, False, crlf) for m in msgs)
    if msgs and not final_terminator:
        data = data[: -2 if crlf else -1]  # the last frame ends at connection close: flush() returns it
    assert _frame_all(SyslogFramer(), _chunks(data, cuts)) == [(m, False) for m in msgs]


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(newline_safe, st.booleans(), st.booleans()), max_size=20),
       cuts=st.lists(st.integers(0, 10_000)))
def test_framing_mixed_round_trip(items: list[tuple[bytes, bool, bool]], cuts: list[int]) -> None:
    data = b"".join(_encode(m, octet, crlf) for m, octet, crlf in items)
    assert _frame_all(SyslogFramer(), _chunks(data, cuts)) == [(m, False) for m, _, _ in items]


@settings(max_examples=100, deadline=None)
@given(max_bytes=st.integers(4, 64), data=st.data())
def test_framing_oversized_frames_truncated_and_bounded(max_bytes: int, data: st.DataObject) -> None:
    items = data.draw(st.lists(
        st.booleans().flatmap(lambda octet: st.tuples(
            st.binary(min_size=1, max_size=3 * max_bytes) if octet else newline_frames(3 * max_bytes),
            st.just(octet),
            st.booleans(),
        )),
        max_size=12,
    ))
    stream = b"".join(_encode(m, octet, crlf) for m, octet, crlf in items)
    cuts = data.draw(st.lists(st.integers(0, 10_000)))
    framer = SyslogFramer(max_bytes)
    bound = max_bytes + len(str(10 * max_bytes)) + 2
    got = _frame_all(framer, _chunks(stream, cuts), bound)
    assert got == [(m[:max_bytes], len(m) > max_bytes) for m, _, _ in items]
    assert all(len(frame) <= max_bytes for frame, _ in got)


def test_framing_huge_frame_streamed_in_small_chunks() -> None:
    for head in (b"%d " % (600_000), b"<13>"):  # octet count within 10 * max_bytes, and a newline frame
        framer = SyslogFramer(65536)
        got = framer.feed(head)
        for _ in range(600_000 // 4096):
            got += framer.feed(b"x" * 4096)
            assert framer.buffered <= 65536 + 8
        rest = 600_000 - (600_000 // 4096) * 4096 - (0 if head[:1].isdigit() else 4)
        got += framer.feed(b"y" * rest + (b"" if head[:1].isdigit() else b"\n") + b"<14>next\n")
        got += framer.flush()
        assert [(len(f), t) for f, t in got] == [(65536, True), (8, False)]
        assert got[1][0] == b"<14>next"


def test_framing_invalid_counts_fall_back_to_newlines() -> None:
    framer = SyslogFramer(100)
    got = framer.feed(b"2026-11-26T10:00:00Z host app: iso line\n12abc\n99999999 absurd count\n")
    got += framer.feed(b"1001 more than ten times max_bytes\n")
    assert [f for f, _ in got] == [
        b"2026-11-26T10:00:00Z host app: iso line", b"12abc", b"99999999 absurd count",
        b"1001 more than ten times max_bytes"]
    assert not any(t for _, t in got)


def test_framing_edges() -> None:
    framer = SyslogFramer(10)
    # blank lines, a zero count and an LF after an octet-counted frame are skipped
    assert framer.feed(b"\n\r\n0 3 abc\n\n<1>x\n") == [(b"abc", False), (b"<1>x", False)]
    # exactly max_bytes before CRLF is not truncated; one more byte is
    assert framer.feed(b"<123456789\r\n<1234567890\n") == [(b"<123456789", False), (b"<123456789", True)]
    # connection closes mid octet-counted frame: what arrived comes back, flagged truncated
    assert framer.feed(b"8 <1>ab") == []
    assert framer.flush() == [(b"<1>ab", True)]
    # digits alone at close are a newline frame
    assert framer.feed(b"42") == [] and framer.flush() == [(b"42", False)]
    assert framer.flush() == []
    assert framer.feed(b"") == []
    assert framer.feed("not bytes") == []  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20), max_bytes=st.integers(1, 200))
def test_framing_any_bytes_never_raise_and_stay_bounded(chunks: list[bytes], max_bytes: int) -> None:
    framer = SyslogFramer(max_bytes)
    bound = max_bytes + len(str(10 * max_bytes)) + 2
    got = _frame_all(framer, chunks, bound)
    assert all(0 < len(f) <= max_bytes for f, _ in got)
