"""parse_line: real formats as examples, and properties over any text and any JSON object.

The Java stack trace was printed by OpenJDK 17 (``Throwable.printStackTrace``
after a logback-style log line); the Python ones are raised and formatted by the
interpreter running the tests, through the ``logging`` module. The JSON lines
are what structlog, python-json-logger, logrus, zap, pino and ecs-logging write
with their usual configurations.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.shippers.parse.lines import parse_line
from pang.shippers.parse.multiline import Multiline

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc).timestamp()  # 1795521600
EPOCH_S = 1795514400  # 2026-11-24T10:00:00Z
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

JAVA_TRACE = (
    "2026-11-24 10:00:00,123 ERROR [main] com.example.shop.OrderService - order o-123 failed\n"
    "java.lang.IllegalStateException: Failed to place order o-123\n"
    "\tat com.example.shop.OrderService.place(OrderService.java:28)\n"
    + "\tat com.example.shop.OrderService.layer(OrderService.java:32)\n" * 9
    + "\tat com.example.shop.OrderService.main(OrderService.java:36)\n"
    "Caused by: java.lang.RuntimeException: Unable to acquire JDBC Connection\n"
    "\tat com.example.shop.OrderService$Repository.save(OrderService.java:18)\n"
    "\tat java.base/java.lang.Iterable.forEach(Iterable.java:75)\n"
    "\tat com.example.shop.OrderService.place(OrderService.java:26)\n"
    "\t... 10 more\n"
    "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.\n"
    "\tat com.example.shop.OrderService$Pool.getConnection(OrderService.java:9)\n"
    "\tat com.example.shop.OrderService$Repository.save(OrderService.java:16)\n"
    "\t... 12 more\n"
    'Exception in thread "main" java.lang.IllegalStateException: Failed to place order o-124\n'
    "\tat com.example.shop.OrderService.place(OrderService.java:28)\n"
    "\tat com.example.shop.OrderService.layer(OrderService.java:32)\n"
    "\tat com.example.shop.OrderService.main(OrderService.java:41)\n"
    "Caused by: java.lang.RuntimeException: Unable to acquire JDBC Connection\n"
    "\tat com.example.shop.OrderService$Repository.save(OrderService.java:18)\n"
    "\tat java.base/java.lang.Iterable.forEach(Iterable.java:75)\n"
    "\tat com.example.shop.OrderService.place(OrderService.java:26)\n"
    "\t... 2 more\n"
)


def events(text: str, **kw: Any) -> list[str]:
    """The event texts Multiline makes of a file's text."""
    ml = Multiline(**kw)
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        n = len(line.encode())
        out += ml.feed(line, pos, pos + n, 0.0)
        pos += n
    out += ml.flush()
    return [e.text for e in out]


def no_none(value: Any, path: str = "") -> None:
    """No None anywhere outside ``app`` (which keeps the application's JSON as it was)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert v is not None, f"{path}{k} is None"
            if not (path == "" and k == "app"):
                no_none(v, f"{path}{k}.")


# --------------------------------------------------------------------------- plain text layouts


@pytest.mark.parametrize(
    "line, ts, level, logger, thread",
    [
        # log4j 1 / logback "%d %-5p [%t] %c - %m%n"
        ("2026-11-24 10:00:00,123 ERROR [main] com.foo.Bar - msg", "2026-11-24T10:00:00.123Z", "ERROR", "com.foo.Bar", "main"),
        ("2026-11-24 10:00:00,123 INFO  [pool-1-thread-3] c.e.Cache - hit", "2026-11-24T10:00:00.123Z", "INFO", "c.e.Cache", "pool-1-thread-3"),
        # log4j2 default "%d{yyyy-MM-dd HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg%n"
        ("2026-11-24 10:00:00.123 [main] WARN  c.f.Bar - slow", "2026-11-24T10:00:00.123Z", "WARN", "c.f.Bar", "main"),
        # ISO with an offset: converted to UTC
        ("2026-11-24T10:00:00.123+01:00 INFO started", "2026-11-24T09:00:00.123Z", "INFO", None, None),
        # Spring Boot 3
        (
            "2026-11-24T10:00:00.123+01:00  INFO 12345 --- [shop] [           main] c.e.shop.ShopApplication                 : Started",
            "2026-11-24T09:00:00.123Z", "INFO", "c.e.shop.ShopApplication", "main",
        ),
        # Python: default basicConfig, "%(asctime)s %(levelname)s %(name)s: %(message)s", the cookbook's
        ("ERROR:root:msg", None, "ERROR", "root", None),
        ("WARNING:app.db:pool exhausted", None, "WARN", "app.db", None),
        ("2026-11-24 10:00:00,123 ERROR app.db: msg", "2026-11-24T10:00:00.123Z", "ERROR", "app.db", None),
        ("2026-11-24 10:00:00,123 - app.db - CRITICAL - disk", "2026-11-24T10:00:00.123Z", "CRITICAL", "app.db", None),
        # Go's log package, with and without microseconds
        ("2026/11/24 10:00:00 listening on :8080", "2026-11-24T10:00:00.000Z", None, None, None),
        ("2026/11/24 10:00:00.123456 ERROR dial tcp: refused", "2026-11-24T10:00:00.123Z", "ERROR", None, None),
        # bracketed timestamp and bracketed level
        ("[2026-11-24 10:00:00,5] [ERROR] boom", "2026-11-24T10:00:00.500Z", "ERROR", None, None),
        ("[ERROR] 2026-11-24T10:00:00Z something broke", "2026-11-24T10:00:00.000Z", "ERROR", None, None),
        ("web.1  | 2026-11-24 10:00:00 UTC FATAL out of memory", "2026-11-24T10:00:00.000Z", "FATAL", None, None),
        # logfmt: go-kit, logrus text formatter
        ("ts=2026-11-24T10:00:00.123Z caller=main.go:42 level=error msg=\"dial failed\"", "2026-11-24T10:00:00.123Z", "ERROR", None, None),
        ('time="2026-11-24T10:00:00+01:00" level=warning msg="disk almost full"', "2026-11-24T09:00:00.000Z", "WARN", None, None),
        ("ts=1795514400.25 lvl=info msg=tick", "2026-11-24T10:00:00.250Z", "INFO", None, None),
        # nothing to find
        ("just some words", None, None, None, None),
        ("NO_ERROR here, ERRORS neither, error lowercase", None, None, None, None),
    ],
)
def test_plain_text_layouts(line: str, ts: str | None, level: str | None, logger: str | None, thread: str | None) -> None:
    doc = parse_line(line)
    assert doc["message"] == line
    assert doc.get("@timestamp") == ts
    assert doc.get("log", {}).get("level") == level
    assert doc.get("log", {}).get("logger") == logger
    assert doc.get("process", {}).get("thread", {}).get("name") == thread
    no_none(doc)


def test_level_word_is_a_standalone_upper_case_token_in_the_first_80_characters() -> None:
    assert parse_line("worker 3 NOTICE: reloading")["log"]["level"] == "NOTICE"
    assert parse_line("<SEVERE> stuck thread")["log"]["level"] == "SEVERE"
    assert parse_line("goroutine PANIC recovered")["log"]["level"] == "PANIC"
    assert "log" not in parse_line("x" * 80 + " ERROR too far")
    assert "log" not in parse_line("MYERROR and ERROR_CODE and INFOS")
    # the first line only: a level word deeper in a multiline event is not the event's level
    assert "log" not in parse_line("starting\nERROR later")


def test_timestamps_without_zone_are_utc_and_fractions_are_truncated_to_millis() -> None:
    assert parse_line("2026-11-24 10:00:00 x")["@timestamp"] == "2026-11-24T10:00:00.000Z"
    assert parse_line("2026-11-24T10:00:00.123456789Z x")["@timestamp"] == "2026-11-24T10:00:00.123Z"
    assert parse_line("2026-11-24T10:00:00.9999-0230 x")["@timestamp"] == "2026-11-24T12:30:00.999Z"
    assert parse_line("2026-11-24T23:30:00+0100 x")["@timestamp"] == "2026-11-24T22:30:00.000Z"
    assert parse_line("2026-01-01T00:30:00+01:00 x")["@timestamp"] == "2025-12-31T23:30:00.000Z"
    # not dates: no @timestamp at all
    for bad in ("2026-13-24 10:00:00 x", "2026-02-30 10:00:00 x", "2026-11-24 24:00:00 x", "2026-11-24 10:00:60 x"):
        assert "@timestamp" not in parse_line(bad), bad


def test_syslog_timestamp_takes_the_current_utc_year_and_the_previous_one_across_new_year() -> None:
    doc = parse_line("Nov 24 10:00:00 web-1 app[12]: connection reset", now=NOW)
    assert doc["@timestamp"] == "2026-11-24T10:00:00.000Z"
    assert parse_line("Nov  4 09:08:07 web-1 cron[3]: ERROR job failed", now=NOW) == {
        "message": "Nov  4 09:08:07 web-1 cron[3]: ERROR job failed",
        "@timestamp": "2026-11-04T09:08:07.000Z",
        "log": {"level": "ERROR"},
    }
    new_year = datetime(2027, 1, 1, 0, 5, tzinfo=timezone.utc).timestamp()
    assert parse_line("Dec 31 23:59:58 web-1 app: x", now=new_year)["@timestamp"] == "2026-12-31T23:59:58.000Z"
    assert parse_line("Jan  1 00:04:00 web-1 app: x", now=new_year)["@timestamp"] == "2027-01-01T00:04:00.000Z"


def test_nginx_combined_and_apache_common() -> None:
    line = (
        '203.0.113.7 - - [24/Nov/2026:10:00:00 +0100] "POST /api/orders?src=app HTTP/1.1" 201 512 '
        '"https://shop.example/cart" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"'
    )
    assert parse_line(line) == {
        "message": line,
        "@timestamp": "2026-11-24T09:00:00.000Z",
        "client": {"address": "203.0.113.7", "ip": "203.0.113.7"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 201, "bytes": 512}},
        "url": {"original": "/api/orders?src=app", "path": "/api/orders"},
    }
    common = '2001:db8::1 - frank [24/Nov/2026:10:00:00 -0700] "GET /apache_pb.gif HTTP/1.0" 304 -'
    doc = parse_line(common)
    assert doc["client"] == {"address": "2001:db8::1", "ip": "2001:db8::1"}
    assert doc["http"]["response"] == {"status_code": 304}
    assert doc["@timestamp"] == "2026-11-24T17:00:00.000Z"
    # a host name or a bad address is an address, not an ip; a garbage request line has no method
    doc = parse_line('lb.internal - - [24/Nov/2026:10:00:00 +0000] "\\x16\\x03\\x01" 400 150 "-" "-"')
    assert doc["client"] == {"address": "lb.internal"}
    assert doc["http"] == {"response": {"status_code": 400, "bytes": 150}} and "url" not in doc
    assert "ip" not in parse_line('300.1.2.3 - - [24/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1')["client"]
    assert "log" not in parse_line('10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET /ERROR HTTP/1.1" 500 1')


# --------------------------------------------------------------------------- stack traces


def test_java_stack_trace_with_caused_by_and_more() -> None:
    texts = events(JAVA_TRACE)
    assert len(texts) == 2
    doc = parse_line(texts[0])
    assert doc["message"] == texts[0] == JAVA_TRACE.split('Exception in thread "main"')[0].rstrip("\n")
    assert doc["@timestamp"] == "2026-11-24T10:00:00.123Z"
    assert doc["log"] == {"level": "ERROR", "logger": "com.example.shop.OrderService"}
    assert doc["error"]["type"] == "java.lang.IllegalStateException"
    assert doc["error"]["message"] == "Failed to place order o-123"
    stack = doc["error"]["stack_trace"]
    assert stack.startswith("java.lang.IllegalStateException: Failed to place order o-123\n\tat com.example.shop")
    assert stack.endswith("\t... 12 more") and "Caused by: java.sql.SQLTransientConnectionException" in stack

    doc = parse_line(texts[1])
    assert doc["error"]["type"] == "java.lang.IllegalStateException"
    assert doc["error"]["message"] == "Failed to place order o-124"
    assert doc["error"]["stack_trace"] == texts[1]
    assert "@timestamp" not in doc and "log" not in doc


def test_java_frames_without_a_header_line() -> None:
    text = "2026-11-24 10:00:00,123 ERROR [main] a.B - failed: java.io.IOException: broken pipe\n\tat a.B.c(B.java:1)"
    err = parse_line(text)["error"]
    assert err == {"stack_trace": "\tat a.B.c(B.java:1)", "type": "java.io.IOException", "message": "broken pipe"}
    err = parse_line("something odd\n\tat a.B.c(B.java:1)")["error"]
    assert err == {"stack_trace": "\tat a.B.c(B.java:1)"}
    # Node.js
    err = parse_line("TypeError: x is not a function\n    at Object.<anonymous> (/app/index.js:3:9)\n    at node:internal/main:1:1")["error"]
    assert err["type"] == "TypeError" and err["message"] == "x is not a function"


def _failing_lookup(orders: dict[str, int], key: str) -> int:
    try:
        return orders[key]
    except KeyError as exc:
        raise ValueError(f"unknown order {key}") from exc


def _python_logging_output() -> str:
    """A real logger.exception record with a chained traceback, as Python 3.11 formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("pang.test.shop")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("placing order")
        try:
            try:
                _failing_lookup({}, "o-1")
            except ValueError:
                1 / 0  # noqa: B018 - raise during handling: "During handling of the above exception"
        except ZeroDivisionError:
            logger.exception("order o-1 failed")
        logger.warning("retrying")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_python_traceback_chained_through_logging() -> None:
    out = _python_logging_output()
    assert "The above exception was the direct cause" in out and "During handling of the above exception" in out
    texts = events(out)
    assert len(texts) == 3, texts
    assert texts[0].endswith("placing order") and texts[2].endswith("retrying")
    doc = parse_line(texts[1])
    assert doc["message"] == texts[1]
    assert doc["log"] == {"level": "ERROR", "logger": "pang.test.shop"}
    assert ISO_Z.fullmatch(doc["@timestamp"])
    err = doc["error"]
    assert err["stack_trace"].startswith("Traceback (most recent call last):\n")
    assert err["stack_trace"] == texts[1][texts[1].index("Traceback") :]
    assert err["stack_trace"].count("Traceback (most recent call last):") == 3
    # the exception finally raised, not the first one of the chain
    assert err["type"] == "ZeroDivisionError" and err["message"] == "division by zero"


def test_python_traceback_printed_alone_and_exception_group() -> None:
    import traceback

    try:
        _failing_lookup({}, "o-2")
    except ValueError:
        tb = traceback.format_exc()
    err = parse_line(tb.rstrip("\n"))["error"]
    assert err["type"] == "ValueError" and err["message"] == "unknown order o-2"

    try:
        raise ExceptionGroup("two failures", [ValueError("a"), TypeError("b")])
    except ExceptionGroup:
        tb = traceback.format_exc()
    (text,) = events(tb)
    err = parse_line(text)["error"]
    assert err["type"] == "ExceptionGroup" and err["message"] == "two failures (2 sub-exceptions)"
    assert err["stack_trace"] == text


# --------------------------------------------------------------------------- JSON


def test_structlog_message_and_business_event() -> None:
    line = '{"user_id": 42, "event": "user logged in", "level": "info", "timestamp": "2026-11-24T10:00:00.123456Z"}'
    assert parse_line(line) == {
        "message": "user logged in",
        "log": {"level": "INFO"},
        "@timestamp": "2026-11-24T10:00:00.123Z",
        "user": {"id": "42"},
    }
    line = '{"order_id": "o-1", "amount": 42.5, "event": "order.placed", "level": "info", "timestamp": "2026-11-24T10:00:00Z"}'
    assert parse_line(line) == {
        "message": line,  # no message of its own: the raw line, so full-text search finds it
        "log": {"level": "INFO"},
        "@timestamp": "2026-11-24T10:00:00.000Z",
        "event": {"action": "order.placed"},
        "app": {"order_id": "o-1", "amount": 42.5},
    }
    # an explicit message wins; a non-action "event" then stays the application's
    doc = parse_line('{"message": "m", "event": "Payment Failed", "action": "payment.failed"}')
    assert doc == {"message": "m", "event": {"action": "payment.failed"}, "app": {"event": "Payment Failed"}}


def test_python_json_logger_with_exc_info() -> None:
    obj = {
        "asctime": "2026-11-24 10:00:00,123",
        "levelname": "ERROR",
        "name": "app.db",
        "message": "query failed",
        "exc_info": 'Traceback (most recent call last):\n  File "/app/db.py", line 12, in run\n    cur.execute(q)\nTimeoutError: timed out',
        "query_ms": 3000,
    }
    assert parse_line(orjson.dumps(obj).decode()) == {
        "message": "query failed",
        "log": {"level": "ERROR", "logger": "app.db"},
        "@timestamp": "2026-11-24T10:00:00.123Z",
        "error": {"stack_trace": obj["exc_info"], "type": "TimeoutError", "message": "timed out"},
        "app": {"query_ms": 3000},
    }


def test_logrus_zap_pino_and_docker() -> None:
    logrus = '{"free_mb":512,"level":"warning","msg":"disk almost full","time":"2026-11-24T10:00:00+01:00"}'
    assert parse_line(logrus) == {
        "message": "disk almost full", "log": {"level": "WARN"}, "@timestamp": "2026-11-24T09:00:00.000Z", "app": {"free_mb": 512},
    }
    zap = (
        '{"level":"error","ts":1795514400.123456,"caller":"payment/service.go:42","msg":"payment failed",'
        '"order_id":"o-1","error":"card declined","stacktrace":"main.pay\\n\\t/app/service.go:42\\nmain.main\\n\\t/app/main.go:12"}'
    )
    assert parse_line(zap) == {
        "message": "payment failed",
        "log": {"level": "ERROR"},
        "@timestamp": "2026-11-24T10:00:00.123Z",
        "error": {"message": "card declined", "stack_trace": "main.pay\n\t/app/service.go:42\nmain.main\n\t/app/main.go:12"},
        "app": {"caller": "payment/service.go:42", "order_id": "o-1"},
    }
    pino = '{"level":30,"time":1795514400123,"pid":7,"hostname":"web-1","msg":"request completed","reqId":"r-1"}'
    assert parse_line(pino) == {
        "message": "request completed", "log": {"level": "INFO"}, "@timestamp": "2026-11-24T10:00:00.123Z",
        "app": {"pid": 7, "hostname": "web-1", "reqId": "r-1"},
    }
    docker = '{"log":"2026-11-24 10:00:00 ERROR boom\\n","stream":"stderr","time":"2026-11-24T10:00:00.123456789Z"}'
    assert parse_line(docker) == {
        "message": "2026-11-24 10:00:00 ERROR boom\n", "@timestamp": "2026-11-24T10:00:00.123Z", "app": {"stream": "stderr"},
    }


def test_ecs_dotted_and_nested_spellings() -> None:
    dotted = {
        "@timestamp": "2026-11-24T10:00:00.123Z", "log.level": "error", "message": "payment failed", "ecs.version": "1.6.0",
        "service.name": "payment", "service.version": "1.4.2", "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span.id": "00f067aa0ba902b7", "transaction.id": "t-9", "user.id": "u-7", "event.action": "payment.failed",
        "error.type": "CardDeclined", "error.message": "declined", "error.stack_trace": "at x",
        "http.request.method": "POST", "http.response.status_code": 402, "url.path": "/pay", "log.logger": "pay.api",
    }
    nested = {
        "@timestamp": "2026-11-24T10:00:00.123Z", "message": "payment failed", "ecs": {"version": "1.6.0"},
        "log": {"level": "error", "logger": "pay.api", "origin": {"function": "pay"}},
        "service": {"name": "payment", "version": "1.4.2"}, "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "span": {"id": "00f067aa0ba902b7"}, "transaction": {"id": "t-9"}, "user": {"id": "u-7"},
        "event": {"action": "payment.failed"}, "error": {"type": "CardDeclined", "message": "declined", "stack_trace": "at x"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 402}}, "url": {"path": "/pay"},
    }
    want = {
        "message": "payment failed", "@timestamp": "2026-11-24T10:00:00.123Z",
        "log": {"level": "ERROR", "logger": "pay.api"}, "service": {"name": "payment", "version": "1.4.2"},
        "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}, "span": {"id": "00f067aa0ba902b7"},
        "transaction": {"id": "t-9"}, "user": {"id": "u-7"}, "event": {"action": "payment.failed"},
        "error": {"type": "CardDeclined", "message": "declined", "stack_trace": "at x"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 402}}, "url": {"path": "/pay"},
    }
    assert parse_line(orjson.dumps(dotted).decode()) == want | {"app": {"ecs.version": "1.6.0"}}
    assert parse_line(orjson.dumps(nested).decode()) == want | {"app": {"ecs": {"version": "1.6.0"}, "log": {"origin": {"function": "pay"}}}}


def test_library_spellings_and_types() -> None:
    doc = parse_line(orjson.dumps({
        "msg": "GET /orders", "severity": "Warning", "logger_name": "web", "traceId": "abc", "spanId": 123,
        "service": "order", "method": "get", "status": "404", "path": "/orders", "user_id": 7, "action": "order.viewed",
        "stack_trace": ["a", "b"],
    }).decode())
    assert doc == {
        "message": "GET /orders", "log": {"level": "WARN", "logger": "web"}, "trace": {"id": "abc"}, "span": {"id": "123"},
        "service": {"name": "order"}, "http": {"request": {"method": "get"}, "response": {"status_code": 404}},
        "url": {"path": "/orders"}, "user": {"id": "7"}, "event": {"action": "order.viewed"}, "error": {"stack_trace": "a\nb"},
    }
    # values of the wrong shape are not promoted and stay the application's
    odd = {"message": "m", "status": "active", "method": "processOrder", "path": "orders.csv", "name": "Bob",
           "time": 0.25, "level": {"x": 1}, "trace_id": True, "user_id": None, "service": ["a"]}
    assert parse_line(orjson.dumps(odd).decode()) == {"message": "m", "app": {k: v for k, v in odd.items() if k != "message"}}
    # "name" is the logger only next to a level (a logging record)
    assert parse_line('{"name": "app.db", "levelname": "INFO", "message": "m"}')["log"] == {"level": "INFO", "logger": "app.db"}
    # the first spelling wins; the others stay
    doc = parse_line('{"msg": "b", "message": "a", "level": "info", "log.level": "debug"}')
    assert doc == {"message": "a", "log": {"level": "DEBUG"}, "app": {"msg": "b", "level": "info"}}
    # epoch numbers: seconds, millis, micros, nanos; strings too
    for ts in (EPOCH_S, EPOCH_S * 1000, EPOCH_S * 10**6, EPOCH_S * 10**9, str(EPOCH_S), f"{EPOCH_S}.0"):
        assert parse_line(orjson.dumps({"ts": ts}).decode())["@timestamp"] == "2026-11-24T10:00:00.000Z", ts


@pytest.mark.parametrize("line", ["[1,2]", '"str"', "12", "null", "{bad json", '{"a": 1} trailing', "{}x"])
def test_json_that_is_not_an_object_is_plain_text(line: str) -> None:
    doc = parse_line(line)
    assert doc["message"] == line and "app" not in doc


def test_empty_object_and_unusual_values() -> None:
    assert parse_line("{}") == {"message": "{}"}
    assert parse_line('{"a": null}') == {"message": '{"a": null}', "app": {"a": None}}  # app keeps JSON values
    assert parse_line('{"log": {"level": "info"}}') == {"message": '{"log": {"level": "info"}}', "log": {"level": "INFO"}}


# --------------------------------------------------------------------------- properties

ALIAS_KEYS = [
    "@timestamp", "timestamp", "time", "ts", "asctime", "message", "msg", "log", "level", "log.level", "severity",
    "levelname", "logger", "logger_name", "name", "trace.id", "trace_id", "traceId", "span.id", "span_id", "spanId",
    "transaction.id", "service.name", "service", "service.version", "error.message", "error", "error.type",
    "error.stack_trace", "stack_trace", "exc_info", "stacktrace", "http.request.method", "method",
    "http.response.status_code", "status", "url.path", "path", "user.id", "event.action", "event", "action", "http", "url",
    "trace", "span", "user",
    # every other spelling the parser takes out of app (shippers/parse/lines.py), so a random key never hits one unlisted
    "lvl", "traceid", "spanid", "transaction_id", "transactionId", "service_name", "service_version", "error_type",
    "exc_type", "stack", "exception", "status_code",
]
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars | st.sampled_from(["info", "WARNING", "order.placed", "2026-11-24T10:00:00Z", "/x", "GET", 200, EPOCH_S, 30]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(ALIAS_KEYS) | st.text(max_size=8), children, max_size=4),
    max_leaves=6,
)
json_objects = st.dictionaries(st.sampled_from(ALIAS_KEYS) | st.text(max_size=10), json_values, max_size=8)

KEYWORDS = [("log", "level"), ("log", "logger"), ("trace", "id"), ("span", "id"), ("transaction", "id"), ("service", "name"),
            ("service", "version"), ("error", "type"), ("error", "message"), ("error", "stack_trace"),
            ("http", "request", "method"), ("url", "path"), ("user", "id"), ("event", "action"), ("url", "original"),
            ("client", "address"), ("client", "ip"), ("process", "thread", "name")]


def check_types(doc: dict[str, Any]) -> None:
    """The promoted fields have their mapping's types, and the document encodes."""
    assert isinstance(doc["message"], str)
    no_none(doc)
    orjson.dumps(doc)
    if "@timestamp" in doc:
        assert ISO_Z.fullmatch(doc["@timestamp"]), doc["@timestamp"]
        datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
    for path in KEYWORDS:
        v: Any = doc
        for part in path:
            v = v.get(part) if isinstance(v, dict) else None
        assert v is None or isinstance(v, str), (path, v)
    for leaf in ("status_code", "bytes"):
        v = doc.get("http", {}).get("response", {}).get(leaf)
        assert v is None or (type(v) is int and 0 <= v < 2**63), v
    allowed = {"message", "@timestamp", "log", "trace", "span", "transaction", "service", "error", "http", "url", "user",
               "event", "app", "client", "process"}
    assert set(doc) <= allowed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_property_any_text_never_raises_and_keeps_the_text_as_message(text: str) -> None:
    doc = parse_line(text)
    check_types(doc)
    try:
        is_object = isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        is_object = False
    if not is_object:
        assert doc["message"] == text


layouts = st.sampled_from([
    "{ts} {level} [{word}] {word}.{word} - {text}",
    "{ts} [{word}] {level} {word} - {text}",
    "{ts} {level} {word}: {text}",
    "{level}:{word}:{text}",
    "[{ts}] [{level}] {text}",
    "{word} {level} {text}",
    "ts={ts} level={level} msg={text}",
    '{word} - - [{text}] "GET /{word} HTTP/1.1" 200 {num}',
    "{text}\n\tat {word}.{word}({word}.java:1)\n{text}",
    "{text}\nTraceback (most recent call last):\n  {text}\n{word}: {text}",
    "{text}",
])
timestamps = st.sampled_from([
    "2026-11-24 10:00:00,123", "2026-11-24T10:00:00.123+01:00", "2026/11/24 10:00:00", "2026-02-30 10:00:00",
    "Nov 24 10:00:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "1795514400.5", "2026-11-24 99:99:99",
])


@settings(max_examples=400, deadline=None)
@given(
    layouts, timestamps, st.sampled_from(["ERROR", "WARNING", "info", "Fatal", "x"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.text(alphabet="abcXYZ_.$-", min_size=1, max_size=6), st.text(max_size=40), st.integers(0, 10**30),
)
def test_property_layout_like_lines(layout: str, ts: str, level: str, word: str, ident: str, text: str, num: int) -> None:
    line = layout.format(ts=ts, level=level, word=ident or word, text=text, num=num)
    doc = parse_line(line)
    check_types(doc)
    if not line.startswith("{"):
        assert doc["message"] == line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_objects)
def test_property_json_objects(obj: dict[str, Any]) -> None:
    text = orjson.dumps(obj).decode()
    original = orjson.loads(text)
    doc = parse_line(text)
    check_types(doc)
    app = doc.get("app", {})
    for key, value in app.items():
        # app keeps the application's own keys; values of keys that are not ECS objects are untouched
        assert key in original
        if key not in ("log", "trace", "span", "transaction", "service", "error", "http", "url", "user", "event"):
            assert value == original[key]
    for key in original:
        assert key in app or key in ALIAS_KEYS, key  # only known spellings are ever taken out of app


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m)),
    st.sampled_from(["{d}T{t}.{f}{z}", "{d} {t},{f}{z}", "{d}T{t}.{f}{zc}"]),
)
def test_property_timestamps_convert_to_utc_millis(local: datetime, offset: timedelta, layout: str) -> None:
    tz = timezone(offset)
    sign = "-" if offset < timedelta(0) else "+"
    mins = abs(int(offset.total_seconds())) // 60
    z, zc = f"{sign}{mins // 60:02d}{mins % 60:02d}", f"{sign}{mins // 60:02d}:{mins % 60:02d}"
    stamp = layout.format(d=local.strftime("%Y-%m-%d"), t=local.strftime("%H:%M:%S"), f=f"{local.microsecond:06d}", z=z, zc=zc)
    want = local.replace(tzinfo=tz).astimezone(timezone.utc).replace(microsecond=local.microsecond // 1000 * 1000)
    expected = want.strftime("%Y-%m-%dT%H:%M:%S.") + f"{want.microsecond // 1000:03d}Z"
    assert parse_line(stamp + " INFO x")["@timestamp"] == expected
    assert parse_line(orjson.dumps({"timestamp": stamp}).decode())["@timestamp"] == expected
    naive_utc = local.replace(tzinfo=timezone.utc)
    ms = (naive_utc - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    assert parse_line('{"ts": %d}' % ms)["@timestamp"] == naive_utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}Z"
