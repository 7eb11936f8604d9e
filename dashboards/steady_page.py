"""The steady-state page: a business signal per minute against its expected line and band, with its alerts.

Data flow:

1. ``_sync`` is the only place the URL and the controls meet (as on the search
   page): a control writes a new query string, loading a URL writes every
   control; either way the query string goes to the ``steady-run`` store.
2. ``_render`` runs when ``steady-run`` changes, and every 30 s while the range
   is relative (the ``steady-refresh`` interval is off for an absolute range):
   it resolves the range against "now", asks :func:`pang.steady.view.steady_view`
   for the points and alerts, and draws the status line, the chart and the
   alert list. Each alert links to the search page for the errors of its window.
3. ``_click`` turns a click inside a shaded alert period into the same link.

Everything shown comes from Dash components with plain-string children, so a
signal name or an alert's evidence is always text, never markup.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from pang.dashboards.steady_figure import (
    alert_window,
    cycle_keys,
    cycle_label,
    empty_figure,
    iso_utc,
    local_label,
    steady_figure,
)
from pang.dashboards.steady_url import (
    QUICK_RANGES,
    SteadyState,
    alert_search_href,
    from_query,
    resolve_range,
    to_query,
)
from pang.dashboards.histogram import add_deploy_lines
from pang.events.store import deploy_marks
from pang.indexer.timerange import TimeRangeError
from pang.settings import Settings

if TYPE_CHECKING:
    from pang.steady.alerts import Alert
    from pang.steady.model import Point
    from pang.steady.view import SteadyView

log = logging.getLogger(__name__)

REFRESH_MS = 30_000
DEFAULT_CYCLE_OPTIONS = ("yesterday", "last_week", "first_of_last_month")
_CONTROLS = ("steady-signal", "steady-since", "steady-from", "steady-to", "steady-cycles")


class PageError(ValueError):
    """Something the person asked for cannot be shown; ``str()`` says why."""


# --- pure helpers ------------------------------------------------------------------------------


def signal_names(settings: Settings) -> dict[str, bool]:
    """Configured signal names in their order, each with whether it is a ratio (shown in %)."""
    from pang.steady.signals import signals_from

    found = signals_from(settings)
    items = found.values() if isinstance(found, Mapping) else found
    return {s.name: s.numerator is not None for s in items}


def signal_services(settings: Settings, signal: str) -> list[str]:
    """The services whose deploys are drawn on a signal's chart: those of the status components listing it.

    A signal no component lists gets every deploy (an empty filter), so a change is never hidden.
    """
    found = [s for comp in settings.status_components.values() if signal in comp.signals for s in comp.services]
    neighbours = [n for s in found for n in settings.service_neighbours.get(s, [])]
    return list(dict.fromkeys(found + neighbours))


def format_value(value: float | None, ratio: bool) -> str:
    """``1,234/min``, ``3.2%`` for a ratio, ``–`` for no value."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1%}" if ratio else f"{value:,.0f}/min"


def last_observed(points: Sequence[Point]) -> Point | None:
    """The newest minute that has an observed value (the current minute may not be counted yet)."""
    for point in sorted(points, key=lambda p: p.minute, reverse=True):
        if point.observed is not None:
            return point
    return None


def signal_state(view: SteadyView) -> str:
    """``alert`` while an alert is open, else ``low confidence`` if the newest band is a guess, else ``normal``."""
    if any(a.resolved is None for a in view.alerts):
        return "alert"
    point = last_observed(view.points)
    if point is not None and point.low_confidence:
        return "low confidence"
    return "normal"


def _evidence(alert: Alert, *names: str) -> float | None:
    evidence = alert.evidence if isinstance(alert.evidence, Mapping) else {}
    for name in names:
        value = evidence.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def alert_entries(alerts: Sequence[Alert], end: datetime, now: datetime) -> list[dict[str, str]]:
    """What the click callback needs to know of each alert: its drawn period and its search link."""
    entries = []
    for alert in alerts:
        lo, hi = alert_window(alert, end)
        entries.append({"start": iso_utc(lo), "end": iso_utc(hi),
                        "href": alert_search_href(alert.opened, alert.resolved, now)})
    return entries


def clicked_minute(click: Any) -> datetime | None:
    """The minute a chart click landed on (the lines carry it in ``customdata[0]``)."""
    try:
        points = click["points"]
    except (KeyError, TypeError):
        return None
    for point in points if isinstance(points, list) else ():
        custom = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(custom, list) and custom and isinstance(custom[0], str) and len(custom[0]) <= 40:
            try:
                return datetime.fromisoformat(custom[0].replace("Z", "+00:00")).astimezone(UTC)
            except ValueError:
                continue
    return None


def alert_href_at(entries: Sequence[Mapping[str, str]], minute: datetime) -> str | None:
    """The search link of the alert whose period holds ``minute`` (the newest, if periods touch)."""
    for entry in sorted(entries, key=lambda e: e["start"], reverse=True):
        try:
            lo = datetime.fromisoformat(entry["start"].replace("Z", "+00:00"))
            hi = datetime.fromisoformat(entry["end"].replace("Z", "+00:00"))
        except (KeyError, ValueError, AttributeError):
            continue
        if lo <= minute < hi and str(entry.get("href", "")).startswith("/search"):
            return entry["href"]
    return None


def _error_text(exc: Exception, settings: Settings) -> str:
    """A sentence for people from whatever went wrong; the details go to the server's log."""
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    if isinstance(exc, (TimeRangeError, PageError)):
        return str(exc)
    # The steady-state modules re-raise the client's errors as their own (``from None``); the
    # original is still the context, and "not answering" is what a person needs to hear.
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, OSConnectionError) for e in chain):
        return f"OpenSearch at {settings.display_opensearch_url} is not answering (is the stack up? `pang stack up`)"
    if isinstance(exc, TransportError):
        return f"OpenSearch at {settings.display_opensearch_url} refused the request (HTTP {exc.status_code})"
    if type(exc).__module__.startswith("pang.") and isinstance(exc, (RuntimeError, ValueError)):
        return str(exc)[:500]  # pang's own errors are written for people
    log.exception("steady-state view failed")
    return f"the steady-state view failed unexpectedly ({type(exc).__name__}); the server's log has the details"


# --- layout ------------------------------------------------------------------------------------


def layout() -> html.Div:
    """A fresh steady-state page; the URL fills it in."""
    return html.Div([
        dcc.Location(id="steady-url", refresh=False),
        dcc.Location(id="steady-goto", refresh=True),  # a click on an alert period opens the search page
        dcc.Store(id="steady-run"),       # {"search": query string, "n": counter}: what _render draws
        dcc.Store(id="steady-alerts"),    # [{"start", "end", "href"}]: the drawn alert periods, for clicks
        dcc.Interval(id="steady-refresh", interval=REFRESH_MS, disabled=True),
        html.Div([
            dcc.Dropdown(id="steady-signal", options=[], clearable=False, searchable=False, placeholder="Signal",
                         className="steady-signal"),
            dcc.Dropdown(id="steady-since", options=[{"label": label, "value": value} for value, label in QUICK_RANGES],
                         clearable=False, searchable=False, placeholder="Custom range", className="quick-range"),
            dcc.Input(id="steady-from", type="text", placeholder="from: 2026-11-24T10:00Z, now-6h", maxLength=64,
                      debounce=True, className="time-box", n_submit=0),
            dcc.Input(id="steady-to", type="text", placeholder="to: now", maxLength=64, debounce=True,
                      className="time-box", n_submit=0),
            html.Button("Apply range", id="steady-apply-range", type="button", n_clicks=0),
            html.Span("Earlier cycles:", className="steady-cycles-label"),
            dcc.Checklist(id="steady-cycles", options=[{"label": cycle_label(k), "value": k} for k in DEFAULT_CYCLE_OPTIONS],
                          value=[], inline=True, className="steady-cycles"),
        ], className="search-bar steady-bar"),
        html.Div(id="steady-error", className="error-banner", role="alert", hidden=True),
        html.Div(id="steady-status", className="steady-status"),
        dcc.Graph(id="steady-graph", figure=empty_figure(), config={"displayModeBar": False, "scrollZoom": False, "showTips": False}),
        html.H3("Alerts in this range", className="steady-alerts-title"),
        dcc.Loading(html.Div(id="steady-alert-list", className="steady-alert-list"), delay_show=400, type="dot"),
    ], className="steady-page")


def _status(view: SteadyView, ratio: bool, start: datetime, end: datetime, zone: ZoneInfo) -> list[Any]:
    point = last_observed(view.points)
    state = signal_state(view)
    if point is None:
        figures: list[Any] = [html.Span("no counts in this range yet", className="muted")]
    else:
        band = f"{format_value(point.lower, ratio)} – {format_value(point.upper, ratio)}"
        figures = [
            _figure("current", format_value(point.observed, ratio), "steady-current"),
            _figure("expected", format_value(point.expected, ratio), "steady-expected"),
            _figure("band", band, "steady-band"),
            html.Span(f"at {point.minute.astimezone(UTC):%H:%M} UTC ({local_label(point.minute, zone)})", className="muted"),
        ]
    return [
        html.Strong(view.signal, className="steady-signal-name"),
        html.Span(state, id="steady-state", className=f"steady-state state-{state.replace(' ', '-')}"),
        *figures,
        html.Span(f"{iso_utc(start)} to {iso_utc(end)}", className="muted steady-range"),
    ]


def _deviation(relative: float | None) -> str:
    """``-48%``: how far the worst stretch was from its expectation."""
    return "–" if relative is None else f"{relative:+.0%}".replace("-", "−")


def _figure(label: str, value: str, ident: str) -> html.Span:
    return html.Span([html.Span(label, className="steady-figure-label"), html.Span(value, id=ident, className="steady-figure-value")],
                     className="steady-figure")


def _alert_rows(view: SteadyView, ratio: bool, end: datetime, now: datetime, zone: ZoneInfo) -> list[Any]:
    if not view.alerts:
        return [html.P("No alerts for this signal in this range.", className="muted", id="steady-no-alerts")]
    header = html.Tr([html.Th(h) for h in ("opened", "resolved", "direction", "severity", "observed", "expected",
                                           "worst deviation", "")])
    rows = []
    for alert in sorted(view.alerts, key=lambda a: a.opened, reverse=True):
        observed = _evidence(alert, "observed", "value")
        expected = _evidence(alert, "expected")
        resolved = (f"{alert.resolved.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if alert.resolved else "open")
        rows.append(html.Tr([
            html.Td([f"{alert.opened.astimezone(UTC):%Y-%m-%d %H:%M} UTC", html.Br(),
                     html.Span(local_label(alert.opened, zone), className="muted")]),
            html.Td(resolved, className="alert-open" if alert.resolved is None else ""),
            html.Td(str(alert.direction)[:20], className=f"direction-{str(alert.direction)[:20]}"),
            html.Td(str(alert.severity)[:20], className=f"severity severity-{str(alert.severity)[:20]}"),
            html.Td(format_value(observed, ratio)),
            html.Td(format_value(expected, ratio)),
            html.Td(_deviation(_evidence(alert, "worst_deviation", "deviation"))),
            html.Td(dcc.Link("logs of this window", href=alert_search_href(alert.opened, alert.resolved, now),
                             className="alert-search-link")),
        ], className="steady-alert"))
    return [html.Table([html.Thead(header), html.Tbody(rows)], className="steady-alerts")]


# --- callbacks ---------------------------------------------------------------------------------


def _controls(state: SteadyState, signal: str) -> tuple[Any, ...]:
    return (signal, state.effective_since, state.start or "", state.end or "", list(state.cycles))


def _next_state(trigger: str, current: SteadyState, values: dict[str, Any]) -> SteadyState:
    """The state after ``trigger`` changed (pure): signal and cycles from the controls, the range as touched."""
    state = SteadyState(
        signal=values["signal"] or current.signal,
        since=current.since, start=current.start, end=current.end,
        cycles=tuple(str(c)[:60] for c in (values["cycles"] or ()))[:10],
    )
    if trigger == "steady-since" and values["since"]:
        return state.with_since(values["since"])
    if trigger in ("steady-apply-range", "steady-from", "steady-to"):
        return state.with_range(values["from"], values["to"])
    return state


def register(app: Dash, settings: Settings) -> None:
    """Add the page's callbacks to ``app``; views come from ``settings``' cluster."""
    zone = ZoneInfo(settings.business_timezone)

    def signals() -> dict[str, bool]:
        return signal_names(settings)

    @app.callback(
        Output("steady-url", "search"),
        Output("steady-run", "data"),
        *(Output(c, "value") for c in _CONTROLS),
        Output("steady-signal", "options"),
        Output("steady-refresh", "disabled"),
        Input("steady-url", "search"),
        Input("steady-signal", "value"),
        Input("steady-since", "value"),
        Input("steady-apply-range", "n_clicks"),
        Input("steady-from", "n_submit"),
        Input("steady-to", "n_submit"),
        Input("steady-cycles", "value"),
        State("steady-from", "value"),
        State("steady-to", "value"),
        State("steady-run", "data"),
        prevent_initial_call=False,
    )
    def _sync(url_search, signal, since, _apply, _from_submit, _to_submit, cycles, start, end, run):  # type: ignore[no-untyped-def]
        names = signals()
        options = [{"label": name, "value": name} for name in names]
        current = from_query(url_search)
        shown = current.signal if current.signal in names else next(iter(names), None)
        n = int((run or {}).get("n", 0)) + 1
        trigger = ctx.triggered_id
        if trigger is None or trigger == "steady-url":
            return (no_update, {"search": to_query(current), "n": n}, *_controls(current, shown), options,
                    not current.is_live)
        values = {"signal": signal, "since": since, "from": start, "to": end, "cycles": cycles}
        new = _next_state(str(trigger), current, values)
        if to_query(new) == to_query(current):
            raise PreventUpdate
        query = to_query(new)
        return (query, {"search": query, "n": n}, *_controls(new, new.signal if new.signal in names else shown),
                options, not new.is_live)

    @app.callback(
        Output("steady-error", "children"),
        Output("steady-error", "hidden"),
        Output("steady-status", "children"),
        Output("steady-graph", "figure"),
        Output("steady-alert-list", "children"),
        Output("steady-alerts", "data"),
        Output("steady-cycles", "options"),
        Input("steady-run", "data"),
        Input("steady-refresh", "n_intervals"),
        prevent_initial_call=True,
    )
    def _render(run, _ticks):  # type: ignore[no-untyped-def]
        if not run:
            raise PreventUpdate
        state = from_query(run.get("search"))
        now = datetime.now(UTC)
        try:
            names = signals()
            signal = state.signal if state.signal in names else next(iter(names), None)
            if signal is None:
                raise PageError("no signals are configured (PANG_STEADY_SIGNALS)")
            if state.signal and state.signal != signal:
                raise PageError(f"there is no signal named {state.signal[:100]!r}; configured: {', '.join(names)}")
            start, end = resolve_range(state, timezone=settings.business_timezone, now=now)
            from pang.steady.view import steady_view

            view = steady_view(settings, signal, start, end, now=now)
        except Exception as exc:  # noqa: BLE001 - shown to the person, never a broken page
            return (_error_text(exc, settings), False, [], empty_figure("no data"), [], [], no_update)
        ratio = names[signal]
        offered = cycle_keys(set(view.cycles) | set(DEFAULT_CYCLE_OPTIONS))
        return (
            "", True,
            _status(view, ratio, start, end, zone),
            add_deploy_lines(steady_figure(view, start, end, cycles=state.cycles, timezone=settings.business_timezone,
                                           revision=to_query(state)),
                             deploy_marks(settings, start, end, signal_services(settings, signal))),
            _alert_rows(view, ratio, end, now, zone),
            alert_entries(view.alerts, end, now),
            [{"label": cycle_label(k), "value": k} for k in offered],
        )

    @app.callback(
        Output("steady-goto", "href"),
        Input("steady-graph", "clickData"),
        State("steady-alerts", "data"),
        prevent_initial_call=True,
    )
    def _click(click, entries):  # type: ignore[no-untyped-def]
        minute = clicked_minute(click)
        href = alert_href_at(entries or [], minute) if minute else None
        if not href:
            raise PreventUpdate
        return href
