"""Multiline: real stack traces grouped with their log line, offsets for checkpoints, limits; properties."""

from __future__ import annotations

import re
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.shippers.parse.multiline import Event, Multiline
from tests.test_parse_lines import JAVA_TRACE, _failing_lookup, _python_logging_output


def run(text: str, ml: Multiline | None = None) -> list[Event]:
    """Feed a file's text line by line (split on "\n" only, as the tailer does) and flush."""
    ml = ml or Multiline()
    out, pos = [], 0
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):
        n = len(line.encode())
        out += ml.feed(line, pos, pos + n, 0.0)
        pos += n
    out += ml.flush()
    return out


def test_java_stack_trace_stays_with_its_log_line() -> None:
    evs = run("2026-11-24 10:00:00,000 INFO [main] a.B - before\n" + JAVA_TRACE + "2026-11-24 10:00:01,000 INFO [main] a.B - after\n")
    assert [e.lines for e in evs] == [1, 22, 9, 1]
    assert evs[1].text.startswith("2026-11-24 10:00:00,123 ERROR") and evs[1].text.endswith("\t... 12 more")
    assert evs[2].text.startswith('Exception in thread "main"') and evs[2].text.endswith("\t... 2 more")
    assert evs[3].text.endswith("after")
    assert "\n".join(e.text for e in evs) + "\n" == "2026-11-24 10:00:00,000 INFO [main] a.B - before\n" + JAVA_TRACE + (
        "2026-11-24 10:00:01,000 INFO [main] a.B - after\n"
    )


def test_python_logging_exception_with_chained_tracebacks() -> None:
    out = _python_logging_output()
    evs = run(out)
    assert len(evs) == 3
    assert evs[1].text.count("Traceback (most recent call last):") == 3
    assert evs[1].text.endswith("ZeroDivisionError: division by zero")
    assert evs[1].lines == out.count("\n") - 2
    assert [e.start for e in evs[1:]] == [evs[0].end, evs[1].end] and evs[-1].end == len(out.encode())


def test_traceback_printed_to_stderr_after_a_log_line_and_exception_group() -> None:
    try:
        _failing_lookup({}, "o-1")
    except ValueError:
        tb = traceback.format_exc()
    text = "2026-11-24 10:00:00 worker started\n" + tb + "2026-11-24 10:00:01 worker restarted\n"
    evs = run(text)
    assert len(evs) == 2 and evs[0].text.endswith("ValueError: unknown order o-1")
    try:
        raise ExceptionGroup("many", [ValueError("a"), ExceptionGroup("inner", [TypeError("b")])])
    except ExceptionGroup:
        tb = traceback.format_exc()
    evs = run(tb + "next line\n")
    assert [e.text for e in evs] == [tb.rstrip("\n"), "next line"]


def test_a_line_after_the_exception_line_starts_a_new_event() -> None:
    text = "ERROR:root:boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nKeyError: 'k'\nINFO:root:next\n"
    assert [e.text for e in run(text)] == [
        "ERROR:root:boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nKeyError: 'k'",
        "INFO:root:next",
    ]
    # inside a traceback, a timestamped line is never the exception line (the traceback was cut short)
    text = "x\nTraceback (most recent call last):\n  File \"x.py\", line 1\n2026-11-24 10:00:00 next\n"
    assert [e.lines for e in run(text)] == [3, 1]


def test_offsets_pending_start_and_json_lines() -> None:
    ml = Multiline()
    assert ml.pending_start is None
    assert ml.feed("first\n", 0, 6, 0.0) == [] and ml.pending_start == 0
    assert ml.feed("\tat a.B(B.java:1)\n", 6, 24, 0.0) == [] and ml.pending_start == 0
    # a JSON line ends the pending event and is an event by itself, at once
    evs = ml.feed('{"msg": "x"}\n', 24, 37, 0.0)
    assert evs == [Event("first\n\tat a.B(B.java:1)", 0, 24, 2, False), Event('{"msg": "x"}', 24, 37, 1, False)]
    assert ml.pending_start is None
    # an indented line with nothing pending starts an event
    assert ml.feed("  orphan\r\n", 37, 47, 0.0) == [] and ml.pending_start == 37
    assert ml.feed("next", 47, 51, 0.0) == [Event("  orphan", 37, 47, 1, False)]
    assert ml.flush() == [Event("next", 47, 51, 1, False)] and ml.flush() == [] and ml.pending_start is None
    # "{" without the closing "}" is an ordinary line
    ml.feed("{ not json", 0, 11, 0.0)
    assert ml.feed("  more", 11, 18, 0.0) == [] and ml.flush()[0].text == "{ not json\n  more"


def test_flush_due_waits_for_the_timeout_since_the_last_line() -> None:
    ml = Multiline(flush_timeout=2.0)
    ml.feed("a\n", 0, 2, 10.0)
    ml.feed("  b\n", 2, 6, 11.0)
    assert ml.flush_due(12.9) == []
    assert ml.flush_due(13.0) == [Event("a\n  b", 0, 6, 2, False)]
    assert ml.flush_due(100.0) == [] and ml.pending_start is None


def test_start_pattern_mode() -> None:
    ml = Multiline(start_pattern=r"^\[\d{4}-")
    text = "[2026-11-24 10:00:00] one\nnot indented, continues\n\n[2026-11-24 10:00:01] two\n{\"a\":1}\norphan\n"
    assert [(e.text, e.lines) for e in run(text, ml)] == [
        ("[2026-11-24 10:00:00] one\nnot indented, continues", 3),
        ("[2026-11-24 10:00:01] two", 1),
        ('{"a":1}', 1),
        ("orphan", 1),
    ]


def test_blank_lines_continue_and_trailing_ones_leave_the_text() -> None:
    evs = run("a\n\n   \nb\n\n")
    assert [(e.text, e.start, e.end, e.lines) for e in evs] == [("a", 0, 7, 3), ("b", 7, 10, 2)]
    assert [(e.text, e.lines) for e in run("\n\nx\n")] == [("", 2), ("x", 1)]


def test_max_lines_and_max_bytes_truncate_but_consume() -> None:
    text = "head\n" + "".join(f"\tat f{i}\n" for i in range(10)) + "next\n"
    evs = run(text, Multiline(max_lines=3))
    assert evs[0] == Event("head\n\tat f0\n\tat f1", 0, 5 + 10 * 7, 11, True)
    assert evs[1] == Event("next", 75, 80, 1, False)

    evs = run(text, Multiline(max_bytes=5 + 7 * 2))
    assert evs[0].text == "head\n\tat f0\n\tat f1" and evs[0].truncated and evs[0].lines == 11 and evs[0].end == 75
    # once truncated, later lines are dropped even if they would fit
    evs = run("head\n\t" + "x" * 50 + "\n\ty\n", Multiline(max_bytes=20))
    assert evs[0].text == "head" and evs[0].lines == 3 and evs[0].truncated

    # a first line past max_bytes is cut on a UTF-8 character boundary
    ml = Multiline(max_bytes=10)
    (ev,) = ml.feed("ééééééé€\n", 0, 18, 0.0) + ml.flush()
    assert ev.text == "ééééé" and ev.truncated and (ev.start, ev.end) == (0, 18)
    (ev,) = ml.feed('{"k": "' + "v" * 20 + '"}\n', 0, 30, 0.0)
    assert ev.truncated and len(ev.text) == 10


def test_bad_configuration_is_refused() -> None:
    for kw in ({"max_lines": 0}, {"max_bytes": 0}, {"flush_timeout": -1}):
        with pytest.raises(ValueError):
            Multiline(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

line_text = st.text(alphabet=st.characters(exclude_characters="\n\r", codec="utf-8"), max_size=30)
special = st.sampled_from([
    "", " ", "\tat a.B.c(B.java:1)", "Caused by: java.lang.X: y", "\t... 3 more", "... 3 more", "Suppressed: x",
    "Traceback (most recent call last):", '  File "x.py", line 1, in f', "    ^^^^", "ValueError: bad", "KeyboardInterrupt",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "java.lang.IllegalStateException: boom", "2026-11-24 10:00:00,123 ERROR [main] a.B - x", '{"a": 1}', "{", "}", "[x] y",
])
lines_strategy = st.lists(st.one_of(special, line_text), max_size=50)
actions = st.lists(st.sampled_from(["feed", "feed", "feed", "tick", "crlf"]), min_size=50, max_size=50)


def check_run(ml: Multiline, lines: list[str], acts: list[str]) -> None:
    events: list[Event] = []
    pos, now = 0, 0.0
    bounds = []  # (start, end) per line
    for line, act in zip(lines, acts * (len(lines) // len(acts) + 1)):
        raw = line + ("\r\n" if act == "crlf" else "\n")
        n = len(raw.encode("utf-8", "surrogatepass"))
        if act == "tick":
            now += 10.0  # past flush_timeout: the pending event is flushed first
            events += ml.flush_due(now)
            assert ml.pending_start is None
        got = ml.feed(raw, pos, pos + n, now)
        events += got
        bounds.append((pos, pos + n))
        pos += n
        emitted_end = events[-1].end if events else 0
        # the unfinished event starts right where the emitted ones end: checkpointing there is safe
        assert ml.pending_start in (None, emitted_end)
        assert ml.pending_start is not None or emitted_end == pos
    events += ml.flush()
    assert ml.pending_start is None

    # contiguous, non-overlapping, cover exactly the bytes consumed; every line in exactly one event
    assert sum(e.lines for e in events) == len(lines)
    expect_start, i = 0, 0
    for e in events:
        assert e.start == expect_start and e.end > e.start and e.lines >= 1
        assert len(e.text.encode("utf-8", "surrogatepass")) <= ml.max_bytes
        assert e.text.count("\n") < ml.max_lines
        own = lines[i : i + e.lines]
        assert (e.start, e.end) == (bounds[i][0], bounds[i + e.lines - 1][1])
        i += e.lines
        expect_start = e.end
        if not e.truncated:
            kept = list(own)
            while len(kept) > 1 and not kept[-1].strip():
                kept.pop()
            assert e.text == "\n".join(kept)
            for line in own:
                assert line.strip() == "" or line in e.text
        else:
            # a prefix of the event's lines (the first one possibly cut)
            assert "\n".join(own).startswith(e.text) or own[0].startswith(e.text.split("\n")[0])
    assert expect_start == pos


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines_strategy, actions, st.integers(1, 8), st.integers(1, 2000))
def test_property_default_rules(lines: list[str], acts: list[str], max_lines: int, max_bytes: int) -> None:
    check_run(Multiline(max_lines=max_lines, max_bytes=max_bytes, flush_timeout=5.0), lines, acts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines_strategy, actions, st.integers(1, 8), st.integers(1, 2000), st.sampled_from([r"^\d{4}-", r"^\[", "ERROR", r"^\S"]))
def test_property_start_pattern(lines: list[str], acts: list[str], max_lines: int, max_bytes: int, pattern: str) -> None:
    check_run(Multiline(start_pattern=pattern, max_lines=max_lines, max_bytes=max_bytes, flush_timeout=5.0), lines, acts)


@settings(max_examples=100, deadline=None)
@given(lines_strategy)
def test_property_no_limits_hit_keeps_every_line(lines: list[str]) -> None:
    evs = run("".join(line + "\n" for line in lines))
    assert not any(e.truncated for e in evs)
    joined = "\n".join(e.text for e in evs)
    for line in lines:
        assert not line.strip() or line in joined  # blank lines at an event's end leave its text
