"""Backtest figures on a crafted series (worked out by hand) and on the generator's default month."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from pang.cli import app
from pang.steady.backtest import BacktestError, Label, backtest, labels_from_csv
from pang.steady.model import ModelConfig

MIN = timedelta(minutes=1)
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; one scored week after 9 weeks of history
END = START + timedelta(weeks=1)


def crafted() -> dict[datetime, float]:
    """1500 per minute with a small deterministic wobble; in the scored week: one drop, one spike."""
    out: dict[datetime, float] = {}
    t = START - timedelta(weeks=9)
    i = 0
    while t < END:
        out[t] = 1500.0 + ((i * 7919) % 41) - 20
        t += MIN
        i += 1
    drop = START + timedelta(days=2, hours=10)  # labelled: 50 % down for 10 minutes
    for k in range(10):
        out[drop + k * MIN] *= 0.5
    spike = START + timedelta(days=4, hours=15)  # not labelled: a false alarm
    for k in range(3):
        out[spike + k * MIN] *= 1.6
    return out


def test_crafted_series_figures() -> None:
    drop = START + timedelta(days=2, hours=10)
    quiet = START + timedelta(days=5, hours=9)  # labelled, but nothing happened there: missed
    labels = [Label(drop, drop + 10 * MIN, "drop"), Label(quiet, quiet + 10 * MIN, "quiet")]
    cfg = ModelConfig(timezone="UTC", k=1, n=1, m=5)
    report = backtest({"orders": crafted()}, labels, START, END, cfg)
    sc = report.model["orders"]
    assert (sc.alerts, sc.true_alerts, sc.false_alarms) == (2, 1, 1)
    assert sc.precision == 0.5
    assert (sc.must_detect, sc.detected_in_time, sc.detected) == (2, 1, 1)
    assert sc.recall == 0.5 and sc.recall_any == 0.5
    assert sc.false_alarms_per_week == 1.0
    assert sc.delay_median_s == 60.0 and sc.delay_worst_s == 60.0  # known at the end of the first dropped minute
    assert [b.incidents for b in sc.bands] == [0, 0, 0, 2]  # both at ~1500/min
    assert [m["id"] for m in sc.missed] == ["quiet"]
    # the baseline (last week +-20 %) sees the same two episodes here: the series is that regular
    base = report.baseline["orders"]
    assert (base.alerts, base.false_alarms, base.detected_in_time) == (2, 1, 1)
    data = report.to_json()
    assert data["signals"]["orders"]["precision"] == 0.5 and "baseline" in data
    assert data["minimum"]["orders"]["met"] is False  # a missed must-detect incident at >= 300/min


def test_labels_from_csv() -> None:
    labels = labels_from_csv("start,end\n2026-10-05T09:12:00Z,2026-10-05T09:30:00Z\n\n2026-10-06 10:00,2026-10-06 10:05\n")
    assert [(lb.start.hour, lb.end.minute) for lb in labels] == [(9, 30), (10, 5)]
    assert labels[1].start.tzinfo is not None and labels[0].must_detect("orders")
    with pytest.raises(BacktestError, match="line 2"):
        labels_from_csv("start,end\nyesterday,today\n")
    with pytest.raises(BacktestError, match="not before"):
        labels_from_csv("2026-10-05T10:00Z,2026-10-05T09:00Z\n")


def test_default_month_meets_the_minimum() -> None:
    """`pang steady backtest --json` on the generator's default month (October 2026, DST change inside)."""
    result = CliRunner().invoke(app, ["steady", "backtest", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["start"] == "2026-09-30T22:00:00Z" and data["end"] == "2026-10-31T23:00:00Z"
    assert data["minimum"]["met"] is True, data["minimum"]
    for name in ("orders", "payments"):
        sc = data["signals"][name]
        assert sc["must_detect"] > 0 and sc["false_alarms_per_week"] <= 1.0
        assert sc["delay_worst_s"] is not None and sc["delay_median_s"] <= 180
        assert data["baseline"]["signals"][name]["false_alarms_per_week"] > sc["false_alarms_per_week"]
