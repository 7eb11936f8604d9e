"""Pure parts of the dashboards: URL state, histogram zoom, safe rendering of hits. No server, no browser."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings as hsettings, strategies as st

from pang.dashboards.histogram import click_range, histogram_figure, zoom_range
from pang.dashboards.urlstate import DEFAULT_SINCE, MAX_TEXT, MAX_VALUES, SearchState, from_query, to_query
from pang.indexer.timerange import parse_time_range

# --- URL state ---------------------------------------------------------------------------------

_value = st.text(min_size=1, max_size=40).map(str.strip).filter(bool)
_values = st.lists(_value, max_size=5, unique=True).map(tuple)


@st.composite
def _states(draw: st.DrawFn) -> SearchState:
    absolute = draw(st.booleans())
    return SearchState(
        text=draw(st.text(max_size=80).map(str.strip)),
        since=None if absolute else draw(st.sampled_from([None, "15m", "1h", "7d", "90s"])),
        start=draw(_value) if absolute else None,
        end=draw(st.none() | _value) if absolute else None,
        services=draw(_values),
        levels=draw(_values),
        hosts=draw(_values),
        datasets=draw(st.sampled_from([("app",), ("syslog",), ("app", "syslog")])),
    )


@hsettings(max_examples=300, deadline=None)
@given(_states())
def test_every_search_survives_the_trip_through_a_url(state: SearchState) -> None:
    assert from_query(to_query(state)) == state


def test_the_default_search_has_an_empty_query_string_and_the_default_range() -> None:
    assert to_query(SearchState()) == ""
    assert from_query("") == from_query(None) == from_query("?") == SearchState()
    assert SearchState().effective_since == DEFAULT_SINCE


def test_a_url_reads_the_way_a_person_would_write_it() -> None:
    state = SearchState(text='payment "declined" & co', since="1h", services=("checkout", "payment"), levels=("ERROR",))
    query = to_query(state)
    assert query.startswith("?q=payment+%22declined%22+%26+co&since=1h&service=checkout&service=payment&level=ERROR")
    assert "dataset" not in query  # the default dataset is left out


def test_an_absolute_range_wins_over_a_relative_one_in_a_hand_edited_url() -> None:
    state = from_query("?since=1h&from=2026-11-24T10:00Z&to=2026-11-24T11:00Z")
    assert (state.since, state.start, state.end) == (None, "2026-11-24T10:00Z", "2026-11-24T11:00Z")
    assert state.effective_since is None
    assert from_query("?to=2026-11-24T11:00Z").end is None  # an end alone means nothing


def test_junk_in_a_url_is_bounded_and_ignored() -> None:
    many = "&".join(f"service=s{i}" for i in range(500))
    state = from_query(f"?q={'x' * 5_000}&{many}&dataset=secret&dataset=syslog&level=%20%20&bogus=1")
    assert len(state.text) == MAX_TEXT
    assert len(state.services) == MAX_VALUES
    assert state.datasets == ("syslog",)
    assert state.levels == ()
    assert from_query("?dataset=../../etc").datasets == ("app",)
    assert from_query("?service=a&service=a&service=b").services == ("a", "b")


def test_choosing_a_quick_range_clears_an_absolute_one_and_back() -> None:
    absolute = SearchState(text="x").with_range("2026-11-24T10:00Z", "2026-11-24T11:00Z")
    relative = absolute.with_since("4h")
    assert (relative.since, relative.start, relative.end) == ("4h", None, None)
    assert relative.with_range("now-2h", None) == replace(relative, since=None, start="now-2h", end=None)
    assert relative.with_range("  ", "now").effective_since == DEFAULT_SINCE


# --- histogram ----------------------------------------------------------------------------------


def test_a_drag_on_the_histogram_becomes_an_absolute_range_the_search_layer_accepts() -> None:
    zoomed = zoom_range({"xaxis.range[0]": "2026-11-26 16:05:12.3456", "xaxis.range[1]": "2026-11-26 16:07:00.5"})
    assert zoomed == ("2026-11-26T16:05:12Z", "2026-11-26T16:07:01Z")  # whole seconds, covering the drag
    rng = parse_time_range(start=zoomed[0], end=zoomed[1])
    assert rng.start == datetime(2026, 11, 26, 16, 5, 12, tzinfo=UTC)
    assert rng.end == datetime(2026, 11, 26, 16, 7, 1, tzinfo=UTC)
    # right to left is the same range; the list form plotly also sends
    assert zoom_range({"xaxis.range": ["2026-11-26 16:07:00.5", "2026-11-26 16:05:12.3456"]}) == zoomed


def test_other_histogram_events_do_not_change_the_range() -> None:
    for event in (None, {}, {"autosize": True}, {"xaxis.autorange": True}, {"xaxis.range[0]": "soon", "xaxis.range[1]": "later"},
                  {"xaxis.range": "nope"}, "string"):
        assert zoom_range(event) is None  # type: ignore[arg-type]
    assert click_range(None) is None
    assert click_range({"points": []}) is None


def test_a_click_on_a_bar_zooms_to_exactly_that_bucket() -> None:
    from pang.indexer.search import Bucket

    start = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    buckets = [Bucket(start + timedelta(minutes=i), count) for i, count in enumerate([3, 0, 7, 1])]
    figure = histogram_figure(buckets, 60, start, start + timedelta(minutes=4))
    bar = figure.data[0]
    assert list(bar.y) == [3, 0, 7, 1]
    clicked = {"points": [{"x": bar.x[2], "y": 7, "customdata": list(bar.customdata[2])}]}
    assert click_range(clicked) == ("2026-11-26T16:02:00Z", "2026-11-26T16:03:00Z")
    # the axis shows the whole searched range, also where no bucket has hits
    assert figure.layout.xaxis.range[0].startswith("2026-11-26T16:00:00")
    assert figure.layout.xaxis.range[1].startswith("2026-11-26T16:04:00")


# --- rendering hits --------------------------------------------------------------------------------


def _walk(component):  # type: ignore[no-untyped-def]
    """Every component and string below ``component``."""
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        yield from _walk(child)


def test_matches_become_mark_elements_and_markup_stays_text() -> None:
    from dash import html

    from pang.dashboards.components import highlighted
    from pang.indexer.search import HIGHLIGHT_END as E, HIGHLIGHT_START as S

    pieces = highlighted([f"card {S}declined{E} for <script>alert(1)</script> {S}again{E}", f"second {S}declined{E}"])
    marks = [p.children for p in pieces if isinstance(p, html.Mark)]
    assert marks == ["declined", "again", "declined"]
    text = "".join(p if isinstance(p, str) else p.children for p in pieces)
    assert "<script>alert(1)</script>" in text  # a plain string child: React escapes it
    assert S not in text and E not in text


def test_a_hit_row_opens_to_the_whole_document() -> None:
    from dash import html

    from pang.dashboards.components import hit_row
    from pang.indexer.search import HIGHLIGHT_END as E, HIGHLIGHT_START as S, Hit

    source = {"@timestamp": "2026-11-26T16:05:12.123Z", "message": "card declined\n\tat Foo.bar",
              "service": {"name": "payment"}, "log": {"level": "ERROR", "offset": 42}, "host": {"name": "h1"}}
    row = hit_row(Hit(index="logs-app-2026.11.26", id="abc", source=source,
                      highlight={"message": [f"card {S}declined{E}\n\tat Foo.bar"]}, sort=[1]))
    nodes = list(_walk(row))
    assert isinstance(row, html.Details)
    summary = row.children[0]
    assert [c.children for c in summary.children[:3]] == ["2026-11-26 16:05:12.123", "payment", "ERROR"]
    headers = [n.children for n in nodes if isinstance(n, html.Th)]
    assert headers == ["@timestamp", "host.name", "log.level", "log.offset", "message", "service.name"]
    assert any(isinstance(n, html.Mark) and n.children == "declined" for n in nodes)
    assert any(isinstance(n, html.Button) and n.id == {"type": "surround-btn", "index": "logs-app-2026.11.26", "doc": "abc"}
               for n in nodes)


def test_surrounding_lines_mark_the_hit_and_keep_file_order() -> None:
    from pang.dashboards.components import surrounding_view
    from pang.indexer.search import Hit

    lines = [Hit(index="i", id=f"d{n}", source={"message": f"line {n}", "log": {"offset": n * 10, "file": {"path": "/a.log"}},
                                                  "host": {"name": "h"}}, highlight={}, sort=[n]) for n in range(5)]
    view = surrounding_view(lines, "d2")
    rows = [c for c in view.children if getattr(c, "className", "") in ("line", "line hit-line")]
    assert [r.className for r in rows] == ["line", "line", "line hit-line", "line", "line"]
    assert [r.children[0].children for r in rows] == ["0", "10", "20", "30", "40"]
    assert "/a.log on h: 5 lines" in view.children[0].children


# --- app ------------------------------------------------------------------------------------------


def test_half_configured_basic_auth_is_refused_rather_than_left_open() -> None:
    import pytest
    from pydantic import SecretStr

    from pang.dashboards.app import DashAuthError, create_app
    from pang.settings import load_settings

    with pytest.raises(DashAuthError, match="PANG_DASH_USERNAME and PANG_DASH_PASSWORD"):
        create_app(load_settings(dash_username="ops"))
    with pytest.raises(DashAuthError):
        create_app(load_settings(dash_password=SecretStr("x")))


def test_controls_carry_the_whole_search_and_only_the_touched_time_control_moves_the_range() -> None:
    from pang.dashboards.search_page import _next_state, request_for

    current = SearchState(text="old", since="1h", services=("a",))
    values = {"q": " new ", "since": "1h", "from": "2026-11-24T10:00Z", "to": "", "services": ["a", "b"],
              "levels": ["ERROR"], "hosts": [], "datasets": []}
    moved = _next_state("search-level", current, values)
    assert moved == SearchState(text="new", since="1h", services=("a", "b"), levels=("ERROR",))
    ranged = _next_state("search-apply-range", current, values)
    assert (ranged.since, ranged.start, ranged.end) == (None, "2026-11-24T10:00Z", None)
    assert _next_state("search-since", ranged, {**values, "since": "4h"}).since == "4h"

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    request = request_for(moved, now=now)
    assert (request.time.start, request.time.end) == (now - timedelta(hours=1), now)
    assert (request.text, request.services, request.levels, request.datasets) == ("new", ("a", "b"), ("ERROR",), ("app",))
    assert request_for(ranged, now=now).time.start == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
