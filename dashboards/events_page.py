"""The event timeline (``/events``): what changed and what alerted, newest first.

Data flow, as on the other pages:

1. ``_sync`` is the only place the URL and the controls meet: a control writes
   a new query string, loading a URL writes every control; either way the
   query string goes to the ``events-run`` store.
2. ``_render`` runs when ``events-run`` changes, and every 30 s while the range
   is relative: one :func:`pang.events.query_events` call gives the rows, the
   counts per type ("Alert: 3 / Deployment: 9") and per role.

Each row says when (the business's local time), which role, what type, and
the phase, outcome and actor as its message, with links to its logs, its
alert's evidence and the change itself. An open alert also lists what
changed in the hour before it, changes on its own services and their
neighbours first. Every string shown is a component's text child, never
markup, so a posted message cannot inject anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from pang.dashboards.events_url import (
    MAX_TEXT,
    QUICK_RANGES,
    TimelineState,
    change_href,
    evidence_href,
    from_query,
    logs_href,
    to_query,
)
from pang.events.schema import EVENT_TYPES
from pang.events.store import EventPage, EventStoreError, TimelineQuery, query_events, services_of
from pang.indexer.timerange import TimeRangeError
from pang.settings import Settings

log = logging.getLogger(__name__)

REFRESH_MS = 30_000
PAGE_ROWS = 300
_CONTROLS = ("events-since", "events-from", "events-to", "events-service", "events-type", "events-q")
TYPE_LABELS = {"deployment": "Deployment", "alert": "Alert", "config": "Config", "incident": "Incident", "note": "Note",
               "other": "Other"}


# --- pure helpers ------------------------------------------------------------------------------


def counts_text(counts: dict[str, int]) -> str:
    """``Alert: 3 / Deployment: 9`` in a stable order (types with no events left out)."""
    order = [*EVENT_TYPES, "other"]
    parts = [f"{TYPE_LABELS.get(t, t)}: {counts[t]:,}" for t in order if counts.get(t)]
    parts += [f"{t}: {n:,}" for t, n in sorted(counts.items()) if t not in order and n]
    return " / ".join(parts) or "no events"


def row_message(doc: dict[str, Any]) -> str:
    """What the row says: a deploy's phase, outcome and actor; otherwise the event's own message."""
    dep = doc.get("deployment") or {}
    ev = doc.get("event") or {}
    if (doc.get("pang") or {}).get("type") == "deployment" and dep.get("phase"):
        who = (doc.get("user") or {}).get("name")
        version = dep.get("to_version")
        parts = [str(dep["phase"]), str(ev.get("outcome") or "")]
        text = " ".join(p for p in parts if p)
        if who:
            text += f" by {who}"
        if version:
            text += f" · {version}"
        if dep.get("build"):
            text += f" #{dep['build']}"
        return text
    return str(doc.get("message") or ev.get("action") or "")[:1000]


def local_time(text: str, tz: str) -> str:
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t
    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def is_open_alert(doc: dict[str, Any], page_rows: list[dict[str, Any]]) -> bool:
    """An ``alert.opened`` row whose alert has no ``alert.resolved`` row in view and says it is open."""
    if (doc.get("event") or {}).get("action") != "alert.opened":
        return False
    ident = (doc.get("alert") or {}).get("id")
    return not any((r.get("event") or {}).get("action") == "alert.resolved" and (r.get("alert") or {}).get("id") == ident
                   for r in page_rows)


def _error_text(exc: Exception, settings: Settings) -> str:
    if isinstance(exc, (TimeRangeError, EventStoreError, ValueError)):
        return str(exc)[:500]
    log.exception("timeline failed")
    return f"the timeline failed unexpectedly ({type(exc).__name__}); the server's log has the details"


# --- layout ------------------------------------------------------------------------------------


def layout() -> html.Div:
    return html.Div([
        dcc.Location(id="events-url", refresh=False),
        dcc.Store(id="events-run"),
        dcc.Interval(id="events-refresh", interval=REFRESH_MS, disabled=True),
        html.Div([
            dcc.Dropdown(id="events-since", options=[{"label": label, "value": value} for value, label in QUICK_RANGES],
                         clearable=False, searchable=False, placeholder="Custom range", className="quick-range"),
            html.Button("Last hour", id="events-last-hour", type="button", n_clicks=0, className="primary"),
            dcc.Input(id="events-from", type="text", placeholder="from: 2026-11-24T10:00Z, now-6h", maxLength=64,
                      debounce=True, className="time-box", n_submit=0),
            dcc.Input(id="events-to", type="text", placeholder="to: now", maxLength=64, debounce=True,
                      className="time-box", n_submit=0),
            html.Button("Apply range", id="events-apply-range", type="button", n_clicks=0),
            dcc.Input(id="events-q", type="text", value="", maxLength=MAX_TEXT, debounce=True, autoComplete="off",
                      placeholder="Search events: rollback, anna, 2026.11.24", className="query-box", n_submit=0),
        ], className="search-bar events-bar"),
        html.Div(id="events-error", className="error-banner", role="alert", hidden=True),
        html.Div([
            html.Aside([
                html.H4("Type"), dcc.Checklist(id="events-type", options=[], value=[], className="facet"),
                html.H4("Role"), dcc.Checklist(id="events-service", options=[], value=[], className="facet"),
            ], className="filters"),
            html.Section([
                html.Div(id="events-summary", className="summary"),
                dcc.Loading(html.Div(id="events-rows", className="events-rows"), delay_show=400, type="dot"),
            ], className="main"),
        ], className="search-body"),
    ], className="events-page")


# --- rendering -----------------------------------------------------------------------------------


def _options(counts: dict[str, int], chosen: tuple[str, ...], labels: dict[str, str] | None = None) -> list[dict[str, str]]:
    keys = list(dict.fromkeys([*sorted(counts, key=lambda k: (-counts[k], k)), *chosen]))
    return [{"label": f"{(labels or {}).get(k, k)} ({counts.get(k, 0):,})", "value": k} for k in keys]


def _changes_block(settings: Settings, doc: dict[str, Any], tz: str) -> html.Div | None:
    """What changed in the hour before an open alert (its services and their neighbours first)."""
    ident = (doc.get("alert") or {}).get("id")
    if not ident:
        return None
    try:
        from pang.events.changes import changes_before

        changes = [c.doc for c in changes_before(settings, str(ident)).changes]
    except Exception as exc:  # noqa: BLE001 - the row still shows; the block says why it is empty
        return html.Div(f"what changed before it: {_error_text(exc, settings)}", className="muted")
    items = [html.Li([
        html.Span(local_time(c["@timestamp"], tz), className="col-time"), " ",
        html.Strong(", ".join(services_of(c))), " ", html.Span(row_message(c)),
    ]) for c in changes[:20]]
    title = "What changed in the hour before it" + ("" if items else ": nothing recorded")
    return html.Div([html.Div(title, className="changes-title"), html.Ul(items)], className="changes-before")


def render_rows(settings: Settings, page: EventPage, *, now: datetime) -> list[Any]:
    tz = settings.business_timezone
    rows: list[Any] = [html.Div([
        html.Span(f"time ({ZoneInfo(tz).key})", className="col-time"), html.Span("role", className="col-service"),
        html.Span("type", className="col-type"), html.Span("what", className="col-message"), html.Span("links"),
    ], className="event-row event-header")]
    for doc in page.rows:
        kind = str((doc.get("pang") or {}).get("type") or "other")
        links: list[Any] = [html.A("logs", href=logs_href(doc, now=now), className="event-logs")]
        evidence = evidence_href(doc, now=now)
        if evidence:
            links.append(html.A("evidence", href=evidence, className="event-evidence"))
        change = change_href(doc)
        if change:
            links.append(html.A("diff", href=change, target="_blank", rel="noopener noreferrer", className="event-diff"))
        open_alert = is_open_alert(doc, page.rows)
        classes = f"event-row type-{kind}" + (" alert-open" if open_alert else "")
        outcome = (doc.get("event") or {}).get("outcome")
        if outcome == "failure" or (doc.get("alert") or {}).get("severity") == "critical":
            classes += " event-bad"
        rows.append(html.Div([
            html.Span(local_time(doc["@timestamp"], tz), className="col-time"),
            html.Span(", ".join(services_of(doc)) or "–", className="col-service"),
            html.Span(TYPE_LABELS.get(kind, kind), className="col-type"),
            html.Span(row_message(doc), className="col-message", title=str(doc.get("message") or "")[:1000]),
            html.Span(links, className="event-links"),
        ], className=classes, **{"data-id": str(doc.get("_id", ""))}))
        if open_alert:
            block = _changes_block(settings, doc, tz)
            if block is not None:
                rows.append(block)
    if not page.rows:
        rows.append(html.Div("Nothing happened in this range (or the filters hide it).", className="muted event-empty"))
    return rows


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("events-url", "search"),
        Output("events-run", "data"),
        *(Output(c, "value") for c in _CONTROLS),
        Input("events-url", "search"),
        Input("events-since", "value"),
        Input("events-last-hour", "n_clicks"),
        Input("events-apply-range", "n_clicks"),
        Input("events-from", "n_submit"),
        Input("events-to", "n_submit"),
        Input("events-service", "value"),
        Input("events-type", "value"),
        Input("events-q", "n_submit"),
        State("events-from", "value"),
        State("events-to", "value"),
        State("events-q", "value"),
        State("events-run", "data"),
        prevent_initial_call=False,
    )
    def _sync(url_search, since, _last_hour, _apply, _fs, _ts, services, types, _qs, start, end, q, run):  # type: ignore[no-untyped-def]
        current = from_query(url_search)
        n = int((run or {}).get("n", 0)) + 1
        trigger = ctx.triggered_id
        if trigger is None or trigger == "events-url":
            return (no_update, {"search": to_query(current), "n": n}, *_controls(current))
        new = TimelineState(
            since=current.since, start=current.start, end=current.end,
            services=tuple(services or ()), types=tuple(t for t in (types or ()) if t in EVENT_TYPES),
            text=(q or "").strip()[:MAX_TEXT],
        )
        if trigger == "events-since" and since:
            new = new.with_since(since)
        elif trigger == "events-last-hour":
            new = new.with_since("1h")
        elif trigger in ("events-apply-range", "events-from", "events-to"):
            new = new.with_range(start, end)
        query = to_query(new)
        if query == to_query(current) and trigger not in ("events-q", "events-last-hour"):
            raise PreventUpdate
        return (query if query != (url_search or "") else no_update, {"search": query, "n": n}, *_controls(new))

    @app.callback(
        Output("events-error", "children"),
        Output("events-error", "hidden"),
        Output("events-summary", "children"),
        Output("events-rows", "children"),
        Output("events-type", "options"),
        Output("events-service", "options"),
        Output("events-refresh", "disabled"),
        Input("events-run", "data"),
        Input("events-refresh", "n_intervals"),
        prevent_initial_call=True,
    )
    def _render(run, _tick):  # type: ignore[no-untyped-def]
        if not run:
            raise PreventUpdate
        state = from_query(run.get("search"))
        live = state.effective_since is not None
        now = datetime.now(UTC)
        try:
            window = state.time_range(now=now)
            page = query_events(settings, TimelineQuery(window.start, window.end, services=state.services,
                                                        types=state.types, text=state.text, size=PAGE_ROWS))
        except Exception as exc:  # noqa: BLE001 - a sentence in the banner, never a broken page
            return (_error_text(exc, settings), False, "", [], _options({}, state.types, TYPE_LABELS),
                    _options({}, state.services), not live)
        start, end = (t.astimezone(ZoneInfo(settings.business_timezone)).strftime("%Y-%m-%d %H:%M %Z") for t in (window.start, window.end))
        shown = f" (the newest {len(page.rows):,} shown)" if page.total > len(page.rows) else ""
        summary = [
            html.Strong(counts_text({k: v for k, v in page.counts.items() if not state.types or k in state.types}), id="events-counts"),
            html.Span(f"{page.total:,} event{'s' if page.total != 1 else ''}{shown} · {start} to {end}", id="events-total"),
        ]
        return ("", True, summary, render_rows(settings, page, now=now),
                _options(page.counts, state.types, TYPE_LABELS), _options(page.services, state.services), not live)


def _controls(state: TimelineState) -> tuple[Any, ...]:
    return (state.effective_since, state.start or "", state.end or "", list(state.services), list(state.types), state.text)
