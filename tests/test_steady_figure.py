"""The steady-state chart and the page's pure helpers, from constructed views (no server).

A view of two hours of one signal: flat 100/min expected, band 80..120, the
first 10 minutes low-confidence, observed falling to 50 for the last half
hour, one resolved spike and one open drop alert.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pang.dashboards.steady_figure import BAND_NAME, EXPECTED_NAME, OBSERVED_NAME, cycle_keys, steady_figure
from pang.dashboards.steady_page import (
    alert_entries,
    alert_href_at,
    clicked_minute,
    format_value,
    last_observed,
    signal_state,
)
from pang.steady.alerts import Alert
from pang.steady.model import Point
from pang.steady.view import SteadyView

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
N = 120
START, END = T0, T0 + N * MIN
NOW = END + timedelta(seconds=20)


def _observed(i: int) -> float | None:
    if i == 40:
        return None  # a minute nobody counted
    return 50.0 if i >= 90 else 100.0 + (i % 7)


def _points(low_confidence: set[int] | None = None) -> list[Point]:
    low = set(range(10)) if low_confidence is None else low_confidence
    return [
        Point(minute=T0 + i * MIN, observed=_observed(i), expected=100.0, lower=80.0 + i % 3, upper=120.0 + i % 5,
              low_confidence=i in low, cycles={"last_week": 97.0, "yesterday": 104.0})
        for i in range(N)
    ]


def _alert(ident: str, direction: str, severity: str, opened: datetime, resolved: datetime | None) -> Alert:
    return Alert(id=ident, signal="orders", direction=direction, severity=severity, opened=opened, resolved=resolved,
                 evidence={"observed": 50.0, "expected": 100.0})


SPIKE = _alert("spike-1", "spike", "warning", T0 + 20 * MIN, T0 + 26 * MIN)
DROP = _alert("drop-1", "drop", "critical", T0 + 92 * MIN, None)


def _view(alerts: list[Alert] | None = None, points: list[Point] | None = None) -> SteadyView:
    pts = _points() if points is None else points
    return SteadyView(
        signal="orders",
        points=pts,
        alerts=[SPIKE, DROP] if alerts is None else alerts,
        cycles={
            "last_week": [(p.minute, 90.0 + j % 4) for j, p in enumerate(pts)],
            "yesterday": [(p.minute, 110.0) for p in pts],
            "first_of_last_month": [(p.minute, None) for p in pts],
        },
    )


def _trace(figure, name: str):  # type: ignore[no-untyped-def]
    found = [t for t in figure.data if t.name == name]
    assert len(found) == 1, [t.name for t in figure.data]
    return found[0]


def _utc(x: str) -> datetime:
    return datetime.fromisoformat(x).replace(tzinfo=UTC)


def test_the_band_is_a_filled_area_between_lower_and_upper_around_the_lines() -> None:
    view = _view()
    figure = steady_figure(view, START, END, timezone="Europe/Berlin")
    names = [t.name for t in figure.data]
    band = _trace(figure, BAND_NAME)
    assert band.fill == "tonexty"
    upper = figure.data[names.index(BAND_NAME) - 1]  # what the band fills up to
    assert list(upper.y) == [p.upper for p in view.points]
    assert list(band.y) == [p.lower for p in view.points]
    assert list(_trace(figure, EXPECTED_NAME).y) == [100.0] * N
    observed = _trace(figure, OBSERVED_NAME)
    assert list(observed.y) == [_observed(i) for i in range(N)]
    assert observed.y[40] is None  # a gap, not a zero
    assert _utc(observed.x[0]) == T0  # the axis is UTC, as on the search page
    assert observed.customdata[0][0] == "2026-11-26T15:00:00Z"
    assert "16:00 CET" in observed.customdata[0][1]  # the hover shows the business's wall clock too
    assert names.index(BAND_NAME) < names.index(EXPECTED_NAME) < names.index(OBSERVED_NAME)  # lines over the band


def test_alert_periods_are_shaded_with_direction_and_severity_and_an_open_one_runs_to_the_end() -> None:
    figure = steady_figure(_view(), START, END)
    alerts = [s for s in figure.layout.shapes if s.name == "alert"]
    assert len(alerts) == 2
    spike, drop = sorted(alerts, key=lambda s: s.x0)
    assert (_utc(spike.x0), _utc(spike.x1)) == (SPIKE.opened, SPIKE.resolved)
    assert spike.label.text == "spike · warning"
    assert (_utc(drop.x0), _utc(drop.x1)) == (DROP.opened, END)
    assert drop.label.text == "drop · critical · open"
    assert spike.fillcolor != drop.fillcolor  # severity shows
    assert (spike.yref, spike.y0, spike.y1) == ("paper", 0, 1)
    assert [s.showlegend for s in (spike, drop)] == [True, False]  # one legend entry for all alerts


def test_alerts_outside_the_range_are_left_out_and_overlapping_ones_clipped() -> None:
    before = _alert("old", "drop", "critical", T0 - 3 * 60 * MIN, T0 - 2 * 60 * MIN)
    across = _alert("across", "drop", "warning", T0 - 30 * MIN, T0 + 5 * MIN)
    figure = steady_figure(_view([before, across]), START, END)
    shapes = [s for s in figure.layout.shapes if s.name == "alert"]
    assert [(_utc(s.x0), _utc(s.x1)) for s in shapes] == [(START, T0 + 5 * MIN)]


def test_low_confidence_stretches_are_marked_each_once() -> None:
    points = _points(low_confidence=set(range(10)) | {50, 51, 52} | {119})
    figure = steady_figure(_view([], points), START, END)
    marked = [(_utc(s.x0), _utc(s.x1)) for s in figure.layout.shapes if s.name == "low confidence"]
    assert marked == [(T0, T0 + 10 * MIN), (T0 + 50 * MIN, T0 + 53 * MIN), (T0 + 119 * MIN, END)]
    assert not [s for s in steady_figure(_view([], _points(set())), START, END).layout.shapes]


def test_earlier_cycles_are_drawn_only_when_asked_for() -> None:
    view = _view()
    plain = steady_figure(view, START, END)
    assert {t.name for t in plain.data} == {"band upper", BAND_NAME, EXPECTED_NAME, OBSERVED_NAME}
    shown = steady_figure(view, START, END, cycles=["last_week", "no_such_cycle", "first_of_last_month"])
    last_week = _trace(shown, "last week")
    assert list(last_week.y) == [90.0 + j % 4 for j in range(N)]
    assert set(_trace(shown, "1st of last month").y) == {None}  # no history that far back: an empty line
    assert "yesterday" not in {t.name for t in shown.data}
    assert cycle_keys(["2_weeks_ago", "first_of_last_month", "yesterday", "last_week"]) == [
        "yesterday", "last_week", "first_of_last_month", "2_weeks_ago"]


def test_state_is_alert_while_one_is_open_else_low_confidence_else_normal() -> None:
    assert signal_state(_view()) == "alert"
    assert signal_state(_view([SPIKE])) == "normal"
    assert signal_state(_view([SPIKE], _points(low_confidence={N - 1}))) == "low confidence"
    gap_at_end = _points()
    gap_at_end[-1] = Point(minute=gap_at_end[-1].minute, observed=None, expected=100.0, lower=80.0, upper=120.0,
                           low_confidence=True, cycles={})
    assert last_observed(gap_at_end).minute == T0 + (N - 2) * MIN  # the newest counted minute
    assert signal_state(_view([], gap_at_end)) == "normal"
    assert last_observed([]) is None


def test_a_click_inside_a_shaded_alert_period_leads_to_its_search_link() -> None:
    entries = alert_entries([SPIKE, DROP], END, NOW)
    minute_in_drop = {"points": [{"x": "2026-11-26 16:40", "customdata": ["2026-11-26T16:40:00Z", "Thu 17:40 CET"]}]}
    href = alert_href_at(entries, clicked_minute(minute_in_drop))
    assert href is not None and href.startswith("/search?from=2026-11-26T16%3A27%3A00Z&to=")
    assert alert_href_at(entries, T0 + 23 * MIN) == entries[0]["href"]   # inside the spike
    assert alert_href_at(entries, T0 + 26 * MIN) is None                 # it resolved at 26: the end is open
    assert alert_href_at(entries, T0 + 60 * MIN) is None
    assert clicked_minute({"points": [{"customdata": ["<script>"]}]}) is None
    assert clicked_minute(None) is None and clicked_minute({"points": "x"}) is None


@pytest.mark.parametrize(("value", "ratio", "shown"), [
    (1234.4, False, "1,234/min"), (0.0321, True, "3.2%"), (None, False, "–"), (float("nan"), True, "–"),
])
def test_values_are_shown_per_minute_or_as_a_percentage(value: float | None, ratio: bool, shown: str) -> None:
    assert format_value(value, ratio) == shown
