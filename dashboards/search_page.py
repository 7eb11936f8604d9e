"""The search page: layout and callbacks, wired to the URL.

Data flow, one search per user action:

1. ``_sync`` is the only place the URL and the controls meet. A control
   (query box on Enter, quick range, absolute range, a filter, a drag or click
   on the histogram) writes a new query string; loading or navigating to a URL
   writes every control from it. Either way it then hands the query string to
   the ``search-run`` store (with a counter, so pressing Search on an unchanged
   URL runs it again with "now" moved on). Controls are set before the search
   starts, so nothing the person clicks after the results appear is undone.
2. ``_search`` runs when ``search-run`` changes: it resolves
   the time range once, calls :func:`pang.indexer.search.search` and renders
   total, histogram, facets and the first page. The resolved request is kept
   in a store, so "Load more" pages through exactly that range with the cursor.
3. ``_surrounding`` fetches the neighbouring lines of one hit on demand.

No polling: nothing runs unless a person did something.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dash import MATCH, Dash, Input, Output, Patch, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from pang.dashboards.components import facet_options, hit_row, surrounding_view
from pang.dashboards.histogram import add_deploy_lines, click_range, empty_figure, histogram_figure, zoom_range
from pang.events.store import deploy_marks
from pang.dashboards.urlstate import DATASETS, MAX_TEXT, SearchState, from_query, to_query
from pang.indexer.query import QuerySyntaxError
from pang.indexer.search import SearchError, SearchPage, SearchRequest, search, surrounding
from pang.indexer.timerange import QUICK_RANGES, TimeRange, TimeRangeError, parse_time_range
from pang.settings import Settings, mask_urls_in

log = logging.getLogger(__name__)

PAGE_SIZE = 50
SURROUNDING_LINES = 20
FACETS = {"service.name": "search-service", "log.level": "search-level", "host.name": "search-host"}
_CONTROLS = ("search-q", "search-since", "search-from", "search-to", "search-service", "search-level", "search-host", "search-dataset")


def request_for(state: SearchState, *, now: datetime | None = None, size: int = PAGE_SIZE) -> SearchRequest:
    """The search a state asks for, its relative range resolved against ``now`` (raises TimeRangeError)."""
    since = state.effective_since
    time = parse_time_range(since=since, start=None if since else state.start, end=None if since else state.end, now=now)
    return SearchRequest(time=time, text=state.text, services=state.services, levels=state.levels, hosts=state.hosts,
                         datasets=state.datasets, size=size)


def _request_to_store(request: SearchRequest) -> dict[str, Any]:
    return {"start": request.time.start.isoformat(), "end": request.time.end.isoformat(), "text": request.text,
            "services": list(request.services), "levels": list(request.levels), "hosts": list(request.hosts),
            "datasets": list(request.datasets), "size": request.size}


def _request_from_store(data: dict[str, Any]) -> SearchRequest:
    time = TimeRange(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))
    return SearchRequest(time=time, text=data["text"], services=tuple(data["services"]), levels=tuple(data["levels"]),
                         hosts=tuple(data["hosts"]), datasets=tuple(data["datasets"]), size=int(data["size"]))


def _error_text(exc: Exception) -> str:
    if isinstance(exc, (SearchError, TimeRangeError, QuerySyntaxError)):
        return mask_urls_in(str(exc))  # a client library's text may quote the URL, credentials and all
    log.exception("search failed")
    return f"the search failed unexpectedly ({type(exc).__name__}); the server's log has the details"


# --- layout --------------------------------------------------------------------------------------


def layout() -> html.Div:
    """A fresh search page; the URL fills it in."""
    return html.Div([
        dcc.Location(id="search-url", refresh=False),
        dcc.Store(id="search-run"),  # {"search": query string, "n": run counter}: what _search runs
        dcc.Store(id="search-more"),
        html.Div([
            dcc.Input(id="search-q", type="text", value="", maxLength=MAX_TEXT, debounce=True, autoComplete="off",
                      placeholder='Search messages: payment declined, "connection reset", timeout -retry',
                      className="query-box", n_submit=0),
            html.Button("Search", id="search-go", type="button", n_clicks=0, className="primary"),
            dcc.Dropdown(id="search-since", options=[{"label": label, "value": value} for value, label in QUICK_RANGES],
                         clearable=False, searchable=False, placeholder="Custom range", className="quick-range"),
            dcc.Input(id="search-from", type="text", placeholder="from: 2026-11-24T10:00Z, now-1h", maxLength=64,
                      debounce=True, className="time-box", n_submit=0),
            dcc.Input(id="search-to", type="text", placeholder="to: now", maxLength=64, debounce=True,
                      className="time-box", n_submit=0),
            html.Button("Apply range", id="search-apply-range", type="button", n_clicks=0),
        ], className="search-bar"),
        html.Div(id="search-error", className="error-banner", role="alert", hidden=True),
        html.Div([
            html.Aside([
                html.H4("Service"), dcc.Checklist(id="search-service", options=[], value=[], className="facet"),
                html.H4("Level"), dcc.Checklist(id="search-level", options=[], value=[], className="facet"),
                html.H4("Host"), dcc.Checklist(id="search-host", options=[], value=[], className="facet"),
                html.H4("Dataset"), dcc.Checklist(id="search-dataset", options=list(DATASETS), value=["app"], className="facet"),
            ], className="filters"),
            html.Section([
                html.Div(id="search-summary", className="summary"),
                dcc.Graph(id="search-histogram", figure=empty_figure(), config={"displayModeBar": False, "scrollZoom": False, "showTips": False}),
                html.Div([
                    html.Span("time (UTC)", className="col-time"), html.Span("service", className="col-service"),
                    html.Span("level", className="col-level"), html.Span("message", className="col-message"),
                ], className="results-header"),
                dcc.Loading(html.Div(id="search-results", className="results"), delay_show=400, type="dot"),
                html.Button("Load more", id="search-more-btn", n_clicks=0, hidden=True, className="load-more"),
            ], className="main"),
        ], className="search-body"),
    ], className="search-page")


# --- callbacks -----------------------------------------------------------------------------------


def _controls(state: SearchState) -> tuple[Any, ...]:
    """Values of _CONTROLS for a state."""
    return (state.text, state.effective_since, state.start or "", state.end or "", list(state.services),
            list(state.levels), list(state.hosts), list(state.datasets))


def _next_state(trigger: str, current: SearchState, values: dict[str, Any]) -> SearchState:
    """The state the controls show after ``trigger`` changed (pure).

    Text and filters are read from the controls, not from the URL plus one change:
    Dash drops the answer of a pending call when a newer one starts, so two quick
    clicks must each carry everything. Only the time depends on what was touched.
    """
    state = replace(
        current,
        text=(values["q"] or "").strip()[:MAX_TEXT],
        services=tuple(values["services"] or ()),
        levels=tuple(values["levels"] or ()),
        hosts=tuple(values["hosts"] or ()),
        datasets=tuple(v for v in DATASETS if v in (values["datasets"] or ())) or ("app",),
    )
    if trigger == "search-since" and values["since"]:
        return state.with_since(values["since"])
    if trigger in ("search-apply-range", "search-from", "search-to"):
        return state.with_range(values["from"], values["to"])
    return state


def register(app: Dash, settings: Settings) -> None:
    """Add the search page's callbacks to ``app``; searches go to ``settings``' cluster."""

    @app.callback(
        Output("search-url", "search"),
        Output("search-run", "data"),
        *(Output(c, "value") for c in _CONTROLS),
        Input("search-url", "search"),
        Input("search-q", "n_submit"),
        Input("search-go", "n_clicks"),
        Input("search-since", "value"),
        Input("search-apply-range", "n_clicks"),
        Input("search-from", "n_submit"),
        Input("search-to", "n_submit"),
        Input("search-service", "value"),
        Input("search-level", "value"),
        Input("search-host", "value"),
        Input("search-dataset", "value"),
        State("search-q", "value"),
        State("search-from", "value"),
        State("search-to", "value"),
        State("search-run", "data"),
        prevent_initial_call=False,
    )
    def _sync(url_search, _q_submit, _go, since, _apply, _from_submit, _to_submit, services, levels, hosts, datasets,
              q, start, end, run):  # type: ignore[no-untyped-def]
        current = from_query(url_search)
        n = int((run or {}).get("n", 0)) + 1
        trigger = ctx.triggered_id
        if trigger is None or trigger == "search-url":
            # Controls first, search after (through search-run): a click made after the results
            # appeared can never be overwritten by this callback's late answer.
            return (no_update, {"search": to_query(current), "n": n}, *_controls(current))
        values = {"q": q, "since": since, "from": start, "to": end, "services": services, "levels": levels,
                  "hosts": hosts, "datasets": datasets}
        new = _next_state(str(trigger), current, values)
        query = to_query(new)
        if query == to_query(current):
            if trigger in ("search-q", "search-go"):  # the same search again: run it with "now" moved on
                return (no_update, {"search": query, "n": n}, *_controls(new))
            raise PreventUpdate
        return (query, {"search": query, "n": n}, *_controls(new))

    @app.callback(
        Output("search-url", "search", allow_duplicate=True),
        Input("search-histogram", "relayoutData"),
        Input("search-histogram", "clickData"),
        State("search-url", "search"),
        prevent_initial_call=True,
    )
    def _zoom(relayout, click, url_search):  # type: ignore[no-untyped-def]
        # Its own callback: plotly sends relayoutData on its own (autosize), and a pending
        # call of _sync would be dropped by a newer one. The URL change then runs _sync.
        which = ctx.triggered[0]["prop_id"].rsplit(".", 1)[-1] if ctx.triggered else ""
        zoomed = click_range(click) if which == "clickData" else zoom_range(relayout)
        if not zoomed:
            raise PreventUpdate
        query = to_query(from_query(url_search).with_range(*zoomed))
        if query == (url_search or ""):
            raise PreventUpdate
        return query

    @app.callback(
        Output("search-error", "children"),
        Output("search-error", "hidden"),
        Output("search-summary", "children"),
        Output("search-histogram", "figure"),
        Output("search-results", "children"),
        Output("search-service", "options"),
        Output("search-level", "options"),
        Output("search-host", "options"),
        Output("search-more", "data"),
        Output("search-more-btn", "hidden"),
        Input("search-run", "data"),
        prevent_initial_call=True,
    )
    def _search(run):  # type: ignore[no-untyped-def]
        if not run:
            raise PreventUpdate
        state = from_query(run.get("search"))
        try:
            request = request_for(state)
            page = search(settings, request)
        except Exception as exc:  # noqa: BLE001 - shown to the person, never a broken page
            message = _error_text(exc)
            return (message, False, "", empty_figure("no results"), [],
                    facet_options({}, state.services), facet_options({}, state.levels), facet_options({}, state.hosts),
                    None, True)
        return (
            "", True,
            _summary(page, request, state),
            add_deploy_lines(histogram_figure(page.histogram, page.interval_seconds, request.time.start, request.time.end),
                             deploy_marks(settings, request.time.start, request.time.end, request.services)),
            _rows(page),
            facet_options(page.facets.get("service.name"), state.services),
            facet_options(page.facets.get("log.level"), state.levels),
            facet_options(page.facets.get("host.name"), state.hosts),
            {"cursor": page.cursor, "request": _request_to_store(request), "run": run.get("n")} if page.cursor else None,
            page.cursor is None,
        )

    @app.callback(
        Output("search-results", "children", allow_duplicate=True),
        Output("search-more", "data", allow_duplicate=True),
        Output("search-more-btn", "hidden", allow_duplicate=True),
        Output("search-error", "children", allow_duplicate=True),
        Output("search-error", "hidden", allow_duplicate=True),
        Input("search-more-btn", "n_clicks"),
        State("search-more", "data"),
        State("search-run", "data"),
        prevent_initial_call=True,
    )
    def _more(n_clicks, more, run):  # type: ignore[no-untyped-def]
        if not n_clicks or not more or not more.get("cursor"):
            raise PreventUpdate
        if more.get("run") != (run or {}).get("n"):  # a new search is on its way: never mix two searches' rows
            raise PreventUpdate
        request = _request_from_store(more["request"])
        try:
            page = search(settings, request, cursor=more["cursor"])
        except Exception as exc:  # noqa: BLE001
            return no_update, no_update, no_update, _error_text(exc), False
        patch = Patch()
        patch.extend(_rows(page))
        data = {**more, "cursor": page.cursor} if page.cursor else None
        return patch, data, page.cursor is None, "", True

    @app.callback(
        Output({"type": "surround-out", "index": MATCH, "doc": MATCH}, "children"),
        Input({"type": "surround-btn", "index": MATCH, "doc": MATCH}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _surrounding(n_clicks):  # type: ignore[no-untyped-def]
        if not n_clicks:
            raise PreventUpdate
        key = ctx.triggered_id
        try:
            lines = surrounding(settings, key["index"], key["doc"], before=SURROUNDING_LINES, after=SURROUNDING_LINES)
        except Exception as exc:  # noqa: BLE001
            return html.Div(_error_text(exc), className="error-banner", role="alert")
        return surrounding_view(lines, key["doc"])


def _rows(page: SearchPage) -> list[Any]:
    return [hit_row(hit) for hit in page.hits]


def _summary(page: SearchPage, request: SearchRequest, state: SearchState) -> list[Any]:
    """Total, time taken, the resolved range, and a link that pins it (a relative range moves with time)."""
    start, end = (t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") for t in (request.time.start, request.time.end))
    pinned = to_query(state.with_range(start, end))
    shown = f" (showing the newest {len(page.hits):,})" if page.total > len(page.hits) else ""
    return [
        html.Strong(f"{page.total:,} hit" + ("" if page.total == 1 else "s"), id="search-total"),
        html.Span(f"{shown} in {page.took_ms:,} ms · {start} to {end}"),
        html.A("link to this exact range", href=pinned or "?", id="search-permalink", className="permalink"),
    ]
