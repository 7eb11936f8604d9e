"""Issue 9: backtests on users' series (CSV in, figures and alarms out) and the model on shapes it was not built around.

Pure: no server. The series are crafted and seeded (tests/steady_shapes.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from typer.testing import CliRunner

from pang.cli import app
from pang.steady.backtest import Label, backtest_series
from pang.steady.model import ModelConfig, evaluate, evaluate_arrays
from pang.steady.series import SeriesError, labels_for, read_labels, read_series, resample
from tests import steady_shapes

MIN = timedelta(minutes=1)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["steady", "backtest", *args])
    return result.exit_code, result.output


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def shape_file(tmp: Path, shape: steady_shapes.Shape, fmt: str = "iso") -> tuple[Path, Path]:
    series = write(tmp, f"{shape.name}.csv", shape.csv_text(fmt))
    labels = write(tmp, f"{shape.name}.labels.json", json.dumps(shape.labels_json()))
    return series, labels


def alerts_of(shape: steady_shapes.Shape, config: ModelConfig, tmp: Path):
    series, labels = shape_file(tmp, shape)
    s = read_series(series)
    return backtest_series(s, labels_for(read_labels(labels), series), config)


# --------------------------------------------------------------------------- the CSV path


def test_reader_formats_step_and_gaps(tmp_path: Path) -> None:
    text = "timestamp,value\n" + "".join(
        f"2026-03-02 {h:02d}:{m:02d}:{(7 * i) % 40:02d},{10 + i}\n"  # 5-minute rows, jittered by up to 40 s
        for i, (h, m) in enumerate((h, m) for h in range(8, 12) for m in range(0, 60, 5)) if not 20 <= i < 26
    )
    s = read_series(write(tmp_path, "a.csv", text), timezone="Europe/Berlin")
    assert s.step == 5 and s.is_count
    assert s.times[0] == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # naive = Europe/Berlin (UTC+1 in March)
    assert s.gaps == 6 and s.merged == 0  # the left-out half hour stays a gap
    assert datetime(2026, 3, 2, 8, 40, tzinfo=UTC) not in s.points  # missing, not zero
    assert s.points[datetime(2026, 3, 2, 7, 5, tzinfo=UTC)] == 11.0
    iso = read_series(write(tmp_path, "b.csv", "time,count\n2026-03-02T10:00:00+02:00,1\n2026-03-02T08:01Z,\n2026-03-02T08:02Z,2.5\n"))
    assert iso.step == 1 and iso.values == [1.0, None, 2.5] and not iso.is_count
    # hourly rows resample onto a 60-minute grid
    hourly = "timestamp,value\n" + "".join(f"2026-03-0{2 + h // 24}T{h % 24:02d}:00:00Z,5\n" for h in range(48))
    assert read_series(write(tmp_path, "c.csv", hourly)).step == 60
    _, pts, merged = resample([datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 40, tzinfo=UTC),
                               datetime(2026, 1, 1, 0, 2, tzinfo=UTC)], [1.0, 2.0, 3.0], 1)
    assert merged == 1 and pts == {datetime(2026, 1, 1, 0, 0, tzinfo=UTC): 3.0, datetime(2026, 1, 1, 0, 2, tzinfo=UTC): 3.0}  # added up


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timestamp,value\n2026-03-02T10:00Z,1\n2026-03-02T10:01Z,2\nyesterday,3\n", r"bad\.csv:4: 'yesterday' is not a timestamp"),
        ("timestamp,value\n2026-03-02T10:00Z,1\n2026-03-02T10:01Z,two\n2026-03-02T10:02Z,3\n", r"bad\.csv:3: value 'two' is not a number"),
        ("timestamp,value\n2026-03-02T10:00Z,1\n2026-03-02T10:02Z,2\n2026-03-02T10:01Z,3\n", r"bad\.csv:4: timestamp .* is before the previous row's; sort"),
        ("timestamp,value\n2026-03-02T10:00Z,1\n2026-03-02T10:00Z,2\n2026-03-02T10:01Z,3\n", r"bad\.csv:3: .* repeats"),
        ("2026-03-02T10:00Z,1\n2026-03-02T10:01Z,2\n", r"bad\.csv:1: expected a header line"),
        ("timestamp,value\n2026-03-02T10:00Z,1\n2026-03-02T10:01Z\n", r"bad\.csv:3: expected 2 columns"),
        ("timestamp,value\n2026-03-02T10:00:00Z,1\n2026-03-02T10:00:10Z,1\n2026-03-02T10:00:20Z,1\n", r"bad\.csv: the rows are 10 seconds apart"),
        ("timestamp,value\n2026-03-29 02:30:00,1\n2026-03-29 03:30:00,1\n2026-03-29 04:30:00,1\n", r"bad\.csv:2: .*daylight-saving gap"),
    ],
)
def test_bad_series_is_one_line_with_the_line_number_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(SeriesError, match=message):
        read_series(path, timezone="Europe/Berlin")
    code, output = run("--series", str(path), "--timezone", "Europe/Berlin")
    assert code == 2
    assert "Traceback" not in output and len(output.strip().splitlines()) <= 2
    assert f"{path}:" in output.replace("\n", "")


def test_labels_json_csv_and_their_errors(tmp_path: Path) -> None:
    j = read_labels(write(tmp_path, "l.json", '[["2026-03-02T10:00:00Z", "2026-03-02 11:00:00"]]'))
    assert [(lb.start.hour, lb.end.hour) for lb in j[None]] == [(10, 11)]
    nab = read_labels(write(tmp_path, "n.json", '{"realKnownCause/x.csv": [["2026-03-02 10:00:00.000000", "2026-03-02 11:00:00.000000"]]}'))
    assert len(labels_for(nab, tmp_path / "x.csv", tmp_path)) == 1 and labels_for(nab, tmp_path / "y.csv", tmp_path) == []
    c = read_labels(write(tmp_path, "l.csv", "start,end\n2026-03-02T10:00Z,2026-03-02T10:30Z\n"), timezone="America/New_York")
    assert c[None][0].end == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    with pytest.raises(SeriesError, match=r"l2\.csv:3: .*not a time"):
        read_labels(write(tmp_path, "l2.csv", "start,end\n2026-03-02T10:00Z,2026-03-02T10:30Z\nnow,later\n"))
    with pytest.raises(SeriesError, match=r"l3\.json:2: not valid JSON"):
        read_labels(write(tmp_path, "l3.json", '[\n["2026-03-02T10:00Z",]\n]'))
    with pytest.raises(SeriesError, match=r"l4\.json:3: start .* is not before end"):
        read_labels(write(tmp_path, "l4.json", '[\n ["2026-03-02T10:00Z", "2026-03-02T11:00Z"],\n ["2026-03-03T10:00Z", "2026-03-03T09:00Z"]\n]'))


def test_alarms_out_lines_up_with_the_input_and_same_input_same_output(tmp_path: Path) -> None:
    shape = steady_shapes.weekly_holidays()
    # a gap of a day and a row without a value, inside the scored part
    for i in range(6000, 6096):
        shape.values[i] = None
    series, labels = shape_file(tmp_path, shape)
    text = series.read_text().splitlines()
    text[7000] = text[7000].split(",")[0] + ","  # an empty value: missing, kept as a row
    series.write_text("\n".join(text) + "\n")
    args = ["--series", str(series), "--labels", str(labels), "--timezone", "Europe/Berlin", "--holidays", "DE"]
    outs = []
    for n in (1, 2):
        out = tmp_path / f"alarms{n}.csv"
        code, output = run(*args, "--alarms-out", str(out), "--json")
        assert code == 0, output
        outs.append((output, out.read_text()))
    assert outs[0] == outs[1]  # same input, same output
    rows = list(csv.DictReader(io.StringIO(outs[0][1])))
    data_lines = text[1:]
    assert len(rows) == len(data_lines)
    assert [r["timestamp"] for r in rows] == [ln.split(",")[0] for ln in data_lines]
    assert list(rows[0]) == ["timestamp", "value", "expected", "lower", "upper", "alarm"]
    assert rows[6999]["value"] == "" and rows[6999]["expected"] == "" and rows[6999]["alarm"] == "0"
    assert rows[0]["expected"] == ""  # cold start: nothing judged
    judged = [r for r in rows[-1000:] if r["expected"]]
    assert judged and all(float(r["lower"]) <= float(r["expected"]) <= float(r["upper"]) for r in judged)
    data = json.loads(outs[0][0])
    [f] = data["files"]
    assert sum(int(r["alarm"]) for r in rows) == f["model"]["alerts"] == len(f["alerts"]) == 2
    assert f["step_minutes"] == 15 and f["gaps"] == 96
    assert f["model"]["events"]["found"] == 2 and f["model"]["false_alarms"] == 0
    assert data["overall"]["model"]["recall"] == 1.0 and "baseline" in data["overall"]


def test_directory_is_summarised_per_file_and_overall(tmp_path: Path) -> None:
    steady_shapes.write(tmp_path)
    base = ["--series", str(tmp_path), "--labels", str(tmp_path / "labels.json"), "--timezone", "Europe/Berlin", "--holidays", "DE", "--json"]
    code, output = run(*base)
    assert code == 0, output
    data = json.loads(output)
    assert [f["name"] for f in data["files"]] == ["no_cycle.csv", "sparse_night.csv", "weekly_holidays.csv"]
    overall = data["overall"]["model"]
    assert overall["events"]["windows"] == sum(f["model"]["events"]["windows"] for f in data["files"]) == 5
    assert overall["alerts"] == sum(f["model"]["alerts"] for f in data["files"])
    assert overall["events"]["found"] == 5 and overall["pointwise"]["f1"] > data["overall"]["baseline"]["pointwise"]["f1"]
    assert overall["false_alarms_per_week"] < 0.5 < data["overall"]["baseline"]["false_alarms_per_week"]
    code, table = run(*base[:-1])
    assert code == 0 and "overall" in table and "weekly_holidays.csv" in table


def test_k_counts_a_window_found_only_on_its_first_k_points(tmp_path: Path) -> None:
    shape = steady_shapes.weekly_holidays()
    series, _ = shape_file(tmp_path, shape)
    early = [Label(a - timedelta(hours=1), b) for a, b in shape.windows]  # labelled an hour (4 points) before the drop
    s = read_series(series)
    cfg = ModelConfig(timezone="Europe/Berlin", holidays=("DE",))
    anywhere = backtest_series(s, early, cfg)
    assert anywhere.model.events.found == 2 and anywhere.model.events.delays_points == [4, 4]
    assert backtest_series(s, early, cfg, k=4).model.events.found == 0
    assert backtest_series(s, early, cfg, k=5).model.events.found == 2


# --------------------------------------------------------------------------- the model on crafted shapes


def test_holidays_are_compared_with_their_own_kind(tmp_path: Path) -> None:
    shape = steady_shapes.weekly_holidays()
    cfg = ModelConfig(timezone="Europe/Berlin")
    plain = alerts_of(shape, cfg, tmp_path)
    with_cal = alerts_of(shape, replace(cfg, holidays=("DE",)), tmp_path)
    on_holidays = {"2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14", "2026-05-25"}
    assert {a.opened.date().isoformat() for a in plain.alerts} & on_holidays  # a holiday looks like a drop...
    assert not {a.opened.date().isoformat() for a in with_cal.alerts} & on_holidays  # ...unless it is known as one
    assert with_cal.model.time.false_alarms == 0 and with_cal.model.events.found == 2


@pytest.mark.parametrize(("zone", "change"), [("Europe/Berlin", datetime(2026, 3, 29)), ("America/New_York", datetime(2026, 3, 8))])
def test_a_dst_week_keeps_the_local_0900_peak_at_local_0900(zone: str, change: datetime) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(7)
    start = (change - timedelta(weeks=5)).replace(tzinfo=tz).astimezone(UTC)
    end = (change + timedelta(days=5)).replace(tzinfo=tz).astimezone(UTC)
    series: dict[datetime, float] = {}
    t = start
    while t < end:
        loc = t.astimezone(tz)
        peak = 3.0 if loc.hour == 9 and loc.minute < 30 else 1.0  # a sharp local 09:00-09:30 peak
        series[t] = float(rng.poisson(200 * peak))
        t += 5 * MIN
    cfg = ModelConfig(timezone=zone, step=5)
    week = (change - timedelta(days=2)).replace(tzinfo=tz).astimezone(UTC)
    pts = evaluate(series, week, end, cfg, with_cycles=False)
    assert all(not p.low_confidence for p in pts if p.kind != "month_start")  # (1 April: one earlier 1st only)
    assert not any(p.outside for p in pts)  # nothing outside the band, so no alert, across the change
    after = [p for p in pts if p.minute.astimezone(tz).date() > change.date()]
    at_nine = [p for p in after if p.minute.astimezone(tz).strftime("%H:%M") == "09:10"]
    at_eight = [p for p in after if p.minute.astimezone(tz).strftime("%H:%M") == "08:10"]
    assert at_nine and all(p.expected > 500 for p in at_nine)  # the peak, at local 09:10 after the change
    assert all(p.expected < 300 for p in at_eight)
    # a model in UTC expects the peak an hour off after the change, and alerts on it
    utc_pts = evaluate(series, week, end, replace(cfg, timezone="UTC"), with_cycles=False)
    assert any(p.outside for p in utc_pts if p.minute.astimezone(tz).date() > change.date())


def test_cold_start_is_low_confidence_and_raises_no_alert(tmp_path: Path) -> None:
    shape = steady_shapes.sparse_night()
    for i in range(10 * 1440, 10 * 1440 + 60):
        shape.values[i] = 0.0  # an hour of nothing on day 11: before three weeks of history
    report = alerts_of(shape, ModelConfig(timezone="Europe/Berlin"), tmp_path)
    three_weeks = report.start + timedelta(weeks=3)
    assert report.alerts and all(a.opened > three_weeks for a in report.alerts)
    assert report.low_confidence_points >= 3 * 7 * 1440 - 10
    assert all(r.expected is None and r.alarm == 0 for r in report.rows_out[: 3 * 7 * 1440 - 60])


def test_gaps_are_missing_not_zero_and_do_not_alert() -> None:
    cfg = ModelConfig(timezone="UTC")
    rng = np.random.default_rng(3)
    start = datetime(2026, 5, 4, tzinfo=UTC)
    series = {start - timedelta(weeks=5) + i * MIN: float(rng.poisson(400)) for i in range(6 * 7 * 1440)}
    hole = start + timedelta(days=2, hours=10)
    for i in range(180):
        series.pop(hole + i * MIN)  # three hours without data
    late = hole + 180 * MIN
    ev = evaluate_arrays(series, start, start + timedelta(days=4), cfg, with_cycles=False)
    assert not ev.outside.any()
    pts = evaluate(series, hole, late + timedelta(hours=1), cfg, with_cycles=False)
    assert all(p.observed is None and p.outside is None for p in pts[:180])
    assert pts[180].observed is not None and pts[180].expected == pytest.approx(400, rel=0.05)
    assert all(p.outside is None for p in pts[180:])


def test_sparse_night_counts_raise_no_false_alarm(tmp_path: Path) -> None:
    shape = steady_shapes.sparse_night()
    report = alerts_of(shape, ModelConfig(timezone="Europe/Berlin"), tmp_path)
    [window] = shape.windows
    assert report.model.time.false_alarms == 0
    assert [a.opened for a in report.alerts if window[0] <= a.opened <= window[1]]  # the outage is seen
    night = [r for r in report.rows_out if r.expected is not None and r.expected < 2]
    assert len(night) > 1000 and {r.value for r in night} >= {0.0, 1.0, 2.0}
    assert report.baseline.time.false_alarms > 50  # last week +-20 % is hopeless on such counts


def test_no_cycle_falls_back_to_the_recent_level(tmp_path: Path) -> None:
    shape = steady_shapes.no_cycle()
    report = alerts_of(shape, ModelConfig(timezone="UTC"), tmp_path)
    assert report.level_points > 1000
    # two weeks after the level tripled: the cycles' median (still the old level) is wrong, the level right
    t = shape.times[0] + timedelta(weeks=6, hours=3)
    series = shape.series()
    cfg = ModelConfig(timezone="UTC", step=10)
    [p] = evaluate(series, t, t + 10 * MIN, cfg)
    seasonal = np.median([series[t - timedelta(weeks=w)] for w in range(1, 9) if t - timedelta(weeks=w) in series])
    recent = np.median([series[t - timedelta(minutes=10 * i)] for i in range(1, 13)])
    assert p.kind == "recent_level" and p.cycles["recent_level"] == pytest.approx(recent)
    assert abs(p.observed - p.expected) < 0.1 * p.observed < abs(p.observed - seasonal)
    assert not p.outside
    assert report.model.events.found == 2
    assert report.model.time.false_alarms <= 2 and report.baseline.time.false_alarms > 20


def test_the_generator_month_never_falls_back_to_the_level() -> None:
    """The cycles forecast the generator's month far better than a recent level: the fallback stays out of it."""
    from pang.steady.backtest import generator_inputs

    series, _labels, start, end = generator_inputs()
    ev = evaluate_arrays(series["orders"], start, start + timedelta(days=10), ModelConfig(timezone="Europe/Berlin"), with_cycles=False)
    assert not (ev.kind == 4).any()
