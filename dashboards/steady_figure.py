"""The steady-state chart: one signal per minute against its expected line and band (pure).

Built from a :class:`pang.steady.view.SteadyView` and nothing else, so the
same view always draws the same figure and tests need no server.

What is on it, bottom to top:

- low-confidence stretches (too little history for a trustworthy band) as grey
  vertical strips, so nobody reads a guessed band as a promise;
- alert periods as shaded strips (red: critical, orange: warning) labelled
  with direction and severity; an alert still open runs to the chart's end;
- the band as a filled area between its lower and upper bounds;
- the expected line (dashed) and the observed line;
- on demand, the earlier cycles the expectation came from (yesterday, last
  week, the 1st of last month, ...), thin dotted lines.

Times are naive UTC strings, as on the search page's histogram: plotly.js has
no time zones, and a wall-clock axis would fold back on itself at the autumn
DST change. The hover shows the business's local time as well. Every point of
the observed and expected lines carries its minute (UTC ISO) in
``customdata[0]``, so a click anywhere on the chart names a minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

if TYPE_CHECKING:  # the view is only read here
    from pang.steady.alerts import Alert
    from pang.steady.model import Point
    from pang.steady.view import SteadyView

MINUTE = timedelta(minutes=1)
HEIGHT = 380

# Names the model gives its earlier cycles (Point.cycles / SteadyView.cycles keys), as people say them.
CYCLE_LABELS: dict[str, str] = {
    "yesterday": "yesterday",
    "last_week": "last week",
    "2_weeks_ago": "2 weeks ago",
    "3_weeks_ago": "3 weeks ago",
    "4_weeks_ago": "4 weeks ago",
    "first_of_last_month": "1st of last month",
}
# Shown first in the cycle checklist, in this order (the three); others follow by name.
CYCLE_ORDER = ("yesterday", "last_week", "first_of_last_month")

OBSERVED_COLOR = "#1d4f91"
EXPECTED_COLOR = "#5b6678"
BAND_FILL = "rgba(59, 111, 182, 0.16)"
LOW_CONFIDENCE_FILL = "rgba(120, 120, 120, 0.13)"
ALERT_FILL = {"critical": "rgba(200, 30, 30, 0.20)", "warning": "rgba(230, 140, 0, 0.20)"}
ALERT_LINE = {"critical": "#b3261e", "warning": "#9a6700"}
CYCLE_COLORS = ("#8e44ad", "#16a085", "#d35400", "#7f8c8d", "#c0392b", "#2c3e50")

BAND_NAME = "expected band"
EXPECTED_NAME = "expected"
OBSERVED_NAME = "observed"
ALERT_SHAPE = "alert"                      # shape names: the legend's labels, and how tests find the strips
LOW_CONFIDENCE_SHAPE = "low confidence"


def cycle_label(key: str) -> str:
    """``"first_of_last_month"`` as ``"1st of last month"``; unknown keys readable too."""
    return CYCLE_LABELS.get(key, key.replace("_", " ")[:60])


def cycle_keys(available: Iterable[str]) -> list[str]:
    """The cycles to offer, the issue's three first, then any others the model used, by name."""
    present = set(available)
    return [k for k in CYCLE_ORDER if k in present] + sorted(present - set(CYCLE_ORDER))


def naive_utc(ts: datetime) -> str:
    """The x value plotly gets for an instant (naive means UTC; see the module docstring)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts
    return ts.replace(tzinfo=None).isoformat(timespec="seconds")


def iso_utc(ts: datetime) -> str:
    """``2026-11-26T16:05:00Z``."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_label(ts: datetime, zone: ZoneInfo) -> str:
    """``Thu 26 Nov 17:05 CET``: the business's wall clock, for hovers and lists."""
    local = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(zone)
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


def alert_window(alert: Alert, end: datetime) -> tuple[datetime, datetime]:
    """The alert's period as drawn: opened to resolved, an open alert to ``end``."""
    return alert.opened, alert.resolved or max(end, alert.opened + MINUTE)


def low_confidence_runs(points: Sequence[Point]) -> Iterator[tuple[datetime, datetime]]:
    """Maximal ``[start, end)`` stretches of consecutive low-confidence minutes."""
    run_start: datetime | None = None
    previous: datetime | None = None
    for p in points:
        if p.low_confidence:
            if run_start is None or previous is None or p.minute - previous > MINUTE:
                if run_start is not None and previous is not None:
                    yield run_start, previous + MINUTE
                run_start = p.minute
            previous = p.minute
        elif run_start is not None and previous is not None:
            yield run_start, previous + MINUTE
            run_start = previous = None
    if run_start is not None and previous is not None:
        yield run_start, previous + MINUTE


def steady_figure(
    view: SteadyView,
    start: datetime,
    end: datetime,
    *,
    cycles: Sequence[str] = (),
    timezone: str = "UTC",
    revision: str | None = None,
) -> go.Figure:
    """The chart of ``view`` over ``[start, end)``, with the earlier ``cycles`` named (keys of ``view.cycles``) drawn.

    ``revision`` names what the person asked for (the page passes its query string): redraws with
    the same revision, such as the live refresh of a relative range, keep their legend clicks.
    """
    zone = ZoneInfo(timezone)
    points = sorted(view.points, key=lambda p: p.minute)
    xs = [naive_utc(p.minute) for p in points]
    custom = [[iso_utc(p.minute), local_label(p.minute, zone)] for p in points]
    figure = go.Figure()

    # The band: the upper bound first (no line), then the lower one filled up to it.
    figure.add_trace(go.Scatter(
        x=xs, y=[p.upper for p in points], mode="lines", line={"width": 0}, showlegend=False,
        name="band upper", legendgroup="band", hovertemplate="band top: %{y:,.4g}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=xs, y=[p.lower for p in points], mode="lines", line={"width": 0}, fill="tonexty", fillcolor=BAND_FILL,
        name=BAND_NAME, legendgroup="band", hovertemplate="band bottom: %{y:,.4g}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=xs, y=[p.expected for p in points], mode="lines", name=EXPECTED_NAME, customdata=custom,
        line={"color": EXPECTED_COLOR, "width": 1.5, "dash": "dash"},
        hovertemplate="expected: %{y:,.4g}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=xs, y=[p.observed for p in points], mode="lines", name=OBSERVED_NAME, customdata=custom,
        line={"color": OBSERVED_COLOR, "width": 2},
        hovertemplate="observed: %{y:,.4g}<br>%{customdata[1]}<extra></extra>",
    ))
    for i, key in enumerate(k for k in cycle_keys(view.cycles) if k in set(cycles)):
        series = sorted(view.cycles[key], key=lambda pair: pair[0])
        figure.add_trace(go.Scatter(
            x=[naive_utc(t) for t, _ in series], y=[v for _, v in series], mode="lines", name=cycle_label(key),
            line={"color": CYCLE_COLORS[i % len(CYCLE_COLORS)], "width": 1, "dash": "dot"},
            hovertemplate=f"{cycle_label(key)}: " + "%{y:,.4g}<extra></extra>",
        ))

    shapes: list[dict[str, Any]] = []
    for lo, hi in low_confidence_runs(points):
        shapes.append(_strip(lo, hi, LOW_CONFIDENCE_FILL, LOW_CONFIDENCE_SHAPE, label="low confidence",
                             label_color="#5b6678", legend=not shapes, right=_right_half(lo, hi, start, end)))
    first_alert = True
    for alert in sorted(view.alerts, key=lambda a: a.opened):
        lo, hi = alert_window(alert, end)
        if hi <= start or lo >= end:
            continue
        severity = alert.severity if alert.severity in ALERT_FILL else "warning"
        lo, hi = max(lo, start), min(hi, end)
        shapes.append(_strip(
            lo, hi, ALERT_FILL[severity], ALERT_SHAPE,
            label=f"{alert.direction} · {severity}" + ("" if alert.resolved else " · open"),
            label_color=ALERT_LINE[severity], legend=first_alert, right=_right_half(lo, hi, start, end),
        ))
        first_alert = False

    figure.update_layout(
        height=HEIGHT,
        margin={"l": 56, "r": 12, "t": 28, "b": 36},
        plot_bgcolor="white",
        hovermode="x unified",
        dragmode=False,
        shapes=shapes,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 12}},
        uirevision=revision or f"{view.signal}/{iso_utc(start)}/{iso_utc(end)}",
        # No zoom: the range picker sets the range, and a click belongs to the alert strips.
        xaxis={"type": "date", "range": [naive_utc(start), naive_utc(end)], "title": {"text": "UTC", "standoff": 4},
               "showgrid": False, "fixedrange": True},
        yaxis={"rangemode": "tozero", "gridcolor": "#eee", "title": {"text": "per minute", "standoff": 4},
               "fixedrange": True},
    )
    return figure


def _right_half(lo: datetime, hi: datetime, start: datetime, end: datetime) -> bool:
    return (lo - start) + (hi - start) > (end - start)


def _strip(lo: datetime, hi: datetime, fill: str, name: str, *, label: str, label_color: str, legend: bool,
           right: bool) -> dict[str, Any]:
    """A full-height vertical strip over ``[lo, hi)`` below the lines, with a small label at its top.

    The label hangs from the strip's edge nearer the chart's middle (``right``: from its right edge),
    so a narrow strip at either end of the chart keeps its label readable.
    """
    return {
        "type": "rect", "xref": "x", "yref": "paper", "x0": naive_utc(lo), "x1": naive_utc(hi), "y0": 0, "y1": 1,
        "fillcolor": fill, "line": {"width": 0}, "layer": "below", "name": name,
        "label": {"text": label, "textposition": "top right" if right else "top left",
                  "font": {"size": 11, "color": label_color}},
        "showlegend": legend, "legendgroup": name,  # one legend entry per kind, for the first strip
    }


def empty_figure(message: str = "") -> go.Figure:
    """A blank chart with a message in its middle (no data, or an error the banner explains)."""
    figure = go.Figure()
    figure.update_layout(
        height=HEIGHT, margin={"l": 56, "r": 12, "t": 28, "b": 36}, plot_bgcolor="white",
        xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}] if message else [],
    )
    return figure
