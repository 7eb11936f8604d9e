"""The hits-over-time bar chart, and reading a zoom (drag or click) back out of it.

Times on the chart are naive UTC strings: plotly.js has no time zones, so
what it sends back on a drag (``relayoutData``) is read as UTC too, and the
axis says "UTC". Each bar carries its bucket's exact start and end in
``customdata``, so a click zooms to exactly that bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go


def _naive_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def iso_utc(ts: datetime) -> str:
    """``2026-11-26T16:05:12Z``: the form the URL carries for absolute times (whole seconds)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def histogram_figure(buckets: Sequence[Any], interval_seconds: int, start: datetime, end: datetime) -> go.Figure:
    """Bars of ``Bucket(start, count)``, each as wide as its interval, over the whole range ``start``..``end``."""
    width_ms = max(interval_seconds, 1) * 1000
    step = timedelta(seconds=max(interval_seconds, 1))
    centers = [_naive_utc(b.start + step / 2) for b in buckets]
    ranges = [[iso_utc(b.start), iso_utc(b.start + step)] for b in buckets]
    figure = go.Figure(
        go.Bar(
            x=centers,
            y=[b.count for b in buckets],
            width=[width_ms * 0.92] * len(buckets),
            customdata=ranges,
            marker_color="#3b6fb6",
            hovertemplate="%{customdata[0]} to %{customdata[1]}<br>count: %{y:,}<extra></extra>",
        )
    )
    figure.update_layout(
        height=170,
        margin={"l": 48, "r": 12, "t": 8, "b": 32},
        dragmode="zoom",
        bargap=0,
        showlegend=False,
        plot_bgcolor="white",
        # A new search (new range) resets the view; the same search keeps what the person did.
        uirevision=f"{iso_utc(start)}/{iso_utc(end)}",
        xaxis={"type": "date", "range": [_naive_utc(start), _naive_utc(end)], "title": {"text": "UTC", "standoff": 4},
               "showgrid": False},
        # whole numbers only; small counts would otherwise get ticks at 0.5
        yaxis={"fixedrange": True, "rangemode": "tozero", "gridcolor": "#eee", "tickformat": ",d",
               **({"dtick": 1} if max((b.count for b in buckets), default=0) <= 5 else {})},
    )
    return figure


def empty_figure(message: str = "") -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        height=170, margin={"l": 48, "r": 12, "t": 8, "b": 32}, plot_bgcolor="white",
        xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}] if message else [],
    )
    return figure


def _parse_plotly_time(value: Any) -> datetime | None:
    """A plotly date string ("2026-11-26 16:05:12.3456") or epoch milliseconds, read as UTC."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip().replace(" ", "T")
    if "." in text:  # Python takes at most 6 fraction digits
        head, _, frac = text.partition(".")
        digits = "".join(ch for ch in frac if ch.isdigit())
        text = f"{head}.{digits[:6]}" if digits else head
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _whole_seconds(start: datetime, end: datetime) -> tuple[str, str] | None:
    lo, hi = min(start, end), max(start, end)
    lo = lo.replace(microsecond=0)
    hi = hi.replace(microsecond=0) + (timedelta(seconds=1) if hi.microsecond else timedelta())
    if hi <= lo:
        hi = lo + timedelta(seconds=1)
    return iso_utc(lo), iso_utc(hi)


def zoom_range(relayout: dict[str, Any] | None) -> tuple[str, str] | None:
    """The x range a drag selected on the chart, as URL times; None for anything else (autosize, reset)."""
    if not isinstance(relayout, dict):
        return None
    if "xaxis.range[0]" in relayout and "xaxis.range[1]" in relayout:
        raw = (relayout["xaxis.range[0]"], relayout["xaxis.range[1]"])
    elif isinstance(relayout.get("xaxis.range"), list) and len(relayout["xaxis.range"]) == 2:
        raw = tuple(relayout["xaxis.range"])
    else:
        return None
    start, end = _parse_plotly_time(raw[0]), _parse_plotly_time(raw[1])
    if start is None or end is None:
        return None
    return _whole_seconds(start, end)


def click_range(click: dict[str, Any] | None) -> tuple[str, str] | None:
    """The bucket a click landed on, as URL times."""
    try:
        custom = click["points"][0]["customdata"]  # type: ignore[index]
        start, end = _parse_plotly_time(custom[0]), _parse_plotly_time(custom[1])
    except (KeyError, IndexError, TypeError):
        return None
    if start is None or end is None:
        return None
    return _whole_seconds(start, end)


def add_deploy_lines(figure: go.Figure, marks: Sequence[Any]) -> go.Figure:
    """Vertical lines where versions went out (blue) or were rolled back (orange), labelled at the top.

    ``marks`` are :class:`pang.events.store.DeployMark`; at most 30 are drawn so a busy week stays readable.
    """
    for mark in list(marks)[-30:]:
        x = _naive_utc(mark.at)
        color = "#d97706" if mark.rollback else "#6d28d9"
        figure.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, xref="x", yref="paper",
                         line={"color": color, "width": 1.5, "dash": "dot"}, name="deploy")
        figure.add_annotation(x=x, y=1, xref="x", yref="paper", text=str(mark.label)[:60], showarrow=False,
                              yanchor="bottom", xanchor="left", font={"size": 10, "color": color}, textangle=0)
    if marks:
        top = figure.layout.margin.t if figure.layout.margin and figure.layout.margin.t is not None else 8
        figure.update_layout(margin={"t": max(top, 22)})
    return figure
