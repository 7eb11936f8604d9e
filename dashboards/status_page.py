"""The status page (``/status``): each component's state now and its availability per month.

One read of ``events-*`` per render (:func:`pang.events.status.collect`), every
30 s, so "is it recovered?" is answered by leaving the page open. A month's
figure shows, on hover, the minutes and the alerts or incidents behind it.
"""

from __future__ import annotations

import logging
from typing import Any

from dash import Dash, Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from pang.dashboards.events_url import TimelineState
from pang.dashboards.events_url import to_query as timeline_query
from pang.events.status import ComponentStatus, MonthFigure, collect, percent
from pang.events.store import EventStoreError
from pang.settings import Settings

log = logging.getLogger(__name__)

REFRESH_MS = 30_000


def month_hover(m: MonthFigure) -> str:
    ids = ", ".join(m.incidents[:8]) + (" ..." if len(m.incidents) > 8 else "")
    return (f"{m.label}: {m.bad_minutes:,} of {m.minutes:,} minutes inside an open critical alert or incident"
            + (f" ({ids})" if ids else ""))


def layout() -> html.Div:
    return html.Div([
        dcc.Interval(id="status-refresh", interval=REFRESH_MS, n_intervals=0),
        html.H2("Status", className="status-heading"),
        html.Div(id="status-error", className="error-banner", role="alert", hidden=True),
        html.Div(id="status-summary", className="status-summary"),
        html.Div(id="status-table"),
    ], className="status-page")


def _row(c: ComponentStatus) -> html.Tr:
    opened = [html.Div(iv.title or iv.id, className="status-open") for iv in c.open[:5]]
    timeline = "/events" + timeline_query(TimelineState(since="24h", services=c.services))
    return html.Tr([
        html.Td([html.Strong(c.title), html.Div(", ".join([*c.services, *c.signals]), className="muted")]),
        html.Td([html.Span(c.state, className=f"status-state status-{c.state}", id=f"status-state-{c.name}"), *opened]),
        *(html.Td(html.Span(percent(m.availability), title=month_hover(m), className="status-month",
                            id=f"status-{c.name}-{m.label}")) for m in c.months),
        html.Td(f"{sum(m.alerts for m in c.months):,}"),
        html.Td(f"{sum(m.deploys for m in c.months):,}"),
        html.Td(html.A("timeline", href=timeline)),
    ], className=f"status-row status-row-{c.state}", id=f"status-row-{c.name}")


def render(components: list[ComponentStatus]) -> tuple[Any, Any]:
    months = [m.label for m in components[0].months] if components else []
    head = html.Tr([html.Th("component"), html.Th("now"), *(html.Th(f"availability {m}") for m in months),
                    html.Th("alerts"), html.Th("deploys"), html.Th("")])
    bad = [c for c in components if c.state != "ok"]
    summary = ("All components are operating normally." if not bad else
               "; ".join(f"{c.title}: {c.state}" for c in bad))
    return html.Strong(summary, id="status-overall"), html.Table([html.Thead(head), html.Tbody([_row(c) for c in components])],
                                                                  className="status")


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("status-error", "children"),
        Output("status-error", "hidden"),
        Output("status-summary", "children"),
        Output("status-table", "children"),
        Input("status-refresh", "n_intervals"),
    )
    def _render(_n):  # type: ignore[no-untyped-def]
        if not settings.status_components:
            raise PreventUpdate
        try:
            components = collect(settings)
        except EventStoreError as exc:
            return str(exc), False, "", []
        except Exception as exc:  # noqa: BLE001
            log.exception("status page failed")
            return f"the status page failed unexpectedly ({type(exc).__name__})", False, "", []
        summary, table = render(components)
        return "", True, summary, table
