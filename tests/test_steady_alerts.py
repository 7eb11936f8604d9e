"""Alerts open after K of N minutes outside, stay one while open, resolve after M in band, survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pang.steady.alerts import AlertTracker
from pang.steady.model import ModelConfig, Point

T0 = datetime(2026, 10, 7, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def pt(i: int, observed: float, *, outside: str | None = None, low: bool = False, expected: float = 1000.0) -> Point:
    return Point(T0 + i * MIN, observed, expected, expected - 150, expected + 150, low,
                 {"last_week": expected}, spread=33.0, outside=outside, window=1)  # type: ignore[arg-type]


def feed(tracker: AlertTracker, points: list[Point], signal: str = "orders") -> list[tuple[int, str]]:
    out = []
    for p in points:
        for c in tracker.update(signal, p):
            out.append((int((p.minute - T0) / MIN), c.kind))
    return out


def test_opens_after_k_of_n_and_dedupes_while_open() -> None:
    tracker = AlertTracker(ModelConfig(k=2, n=3, m=3))
    seq = [pt(0, 700, outside="drop"), pt(1, 1000), pt(2, 1000), pt(3, 700, outside="drop")]  # 1 of 3, then 1 of 3 again
    assert feed(tracker, seq) == []
    seq = [pt(4, 700, outside="drop")] + [pt(i, 690, outside="drop") for i in range(5, 15)]
    assert feed(tracker, seq) == [(4, "opened")]
    [alert] = tracker.open_alerts()
    assert alert.direction == "drop" and alert.signal == "orders"
    assert alert.opened == T0 + 5 * MIN  # the end of the minute that completed the rule
    assert alert.evidence["expected"] == 1000.0 and alert.evidence["observed"] == 700.0
    assert alert.evidence["cycles"] == {"last_week": 1000.0} and alert.evidence["minutes_outside"] == 11


def test_severity_from_the_size_of_the_deviation() -> None:
    warn, crit = AlertTracker(ModelConfig()), AlertTracker(ModelConfig())
    feed(warn, [pt(0, 750, outside="drop")])
    feed(crit, [pt(0, 500, outside="drop")])
    assert warn.open_alerts()[0].severity == "warning"
    assert crit.open_alerts()[0].severity == "critical"
    feed(warn, [pt(1, 300, outside="drop")])  # it gets worse: severity rises, still one alert
    assert [a.severity for a in warn.open_alerts()] == ["critical"]


def test_resolves_after_m_minutes_back_in_band_and_low_confidence_neither_opens_nor_resolves() -> None:
    tracker = AlertTracker(ModelConfig(m=3))
    assert feed(tracker, [pt(0, 100, outside=None, low=True)]) == []  # low confidence: no alert from it
    assert feed(tracker, [pt(1, 1500, outside="spike")]) == [(1, "opened")]
    seq = [pt(2, 1000), pt(3, 1000), pt(4, 1000, low=True), pt(5, 1500, outside="spike"), pt(6, 1000), pt(7, 1000)]
    assert feed(tracker, seq) == []
    assert feed(tracker, [pt(8, 1000)]) == [(8, "resolved")]
    assert tracker.open_alerts() == []
    spike = AlertTracker(ModelConfig(m=3))
    changes = []
    for p in [pt(1, 1500, outside="spike"), pt(2, 1000), pt(3, 1000), pt(4, 1000)]:
        changes += spike.update("orders", p)
    assert [c.kind for c in changes] == ["opened", "resolved"]
    assert changes[1].alert.resolved == T0 + 5 * MIN and changes[1].alert.id == changes[0].alert.id


def test_state_survives_to_json_and_from_json() -> None:
    cfg = ModelConfig(k=2, n=3, m=2)
    before = AlertTracker(cfg)
    feed(before, [pt(0, 600, outside="drop"), pt(1, 600, outside="drop"), pt(2, 600, outside="drop")])
    feed(before, [pt(0, 900, outside="drop")], signal="payments")  # 1 of 3 so far
    [alert] = before.open_alerts()
    after = AlertTracker.from_json(cfg, before.to_json())
    assert [a.id for a in after.open_alerts()] == [alert.id]
    assert feed(after, [pt(2, 600, outside="drop")]) == []  # a replayed minute does not count twice
    assert feed(after, [pt(3, 600, outside="drop")]) == []  # still the same alert, not a new one
    assert feed(after, [pt(1, 900, outside="drop")], signal="payments") == [(1, "opened")]  # K-of-N memory kept
    assert feed(after, [pt(4, 1000), pt(5, 1000)]) == [(5, "resolved")]
    assert AlertTracker.from_json(cfg, "not json").open_alerts() == []
