"""pang's event JSON: every bad field is refused with its name; nothing else escapes; ids are stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pang.events.changes import affected_services, neighbours_of, order_changes
from pang.events.schema import EventError, parse_event
from pang.settings import StatusComponent

GOOD = {"type": "deployment", "service": ["payment"], "phase": "DEPLOY_ALL", "outcome": "started", "build": "41"}


@pytest.mark.parametrize(("change", "field"), [
    ({"type": None}, "type"),
    ({"service": None}, "service"),
    ({"service": []}, "service"),
    ({"service": ["bad name with spaces"]}, "service"),
    ({"type": "deploy"}, "type"),
    ({"phase": None}, "phase"),
    ({"outcome": "ok"}, "outcome"),
    ({"timestamp": "not a time"}, "timestamp"),
    ({"timestamp": 12.5e20}, "timestamp"),
    ({"link": "javascript:alert(1)"}, "link"),
    ({"labels": {"Bad-Key": "x"}}, "labels"),
    ({"message": "x" * 5000}, "message"),
    ({"build": 41}, "build"),
    ({"colour": "red"}, "colour"),
])
def test_bad_fields_are_named(change: dict[str, Any], field: str) -> None:
    data = {**GOOD, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(EventError) as exc:
        parse_event(data)
    assert exc.value.field is not None and exc.value.field.split(".")[0] == field
    assert str(exc.value).startswith(field)


def test_a_deployment_needs_phase_and_outcome_but_a_note_does_not() -> None:
    with pytest.raises(EventError) as exc:
        parse_event({"type": "deployment", "service": "cart", "outcome": "started"})
    assert exc.value.field == "phase"
    assert parse_event({"type": "note", "service": "cart,order"}).service == ["cart", "order"]


def test_same_rollout_phase_outcome_is_the_same_id_whatever_the_time() -> None:
    a = parse_event({**GOOD, "timestamp": "2026-11-24T10:00:00Z"}).event_id()
    b = parse_event({**GOOD, "timestamp": "2026-11-24T10:00:07Z"}).event_id()
    c = parse_event({**GOOD, "outcome": "success"}).event_id()
    assert a == b != c
    assert parse_event({**GOOD, "id": "mine-1"}).document()["event"]["id"] == "mine-1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "service", "phase", "outcome", "timestamp", "link", "labels",
                                        "message", "build", "id", "severity", "extra"]), json_values, max_size=8))
def test_any_json_is_an_event_or_an_event_error(data: dict[str, Any]) -> None:
    try:
        ev = parse_event(data)
    except EventError as exc:
        assert str(exc)
        return
    doc = ev.document()
    assert doc["pang"]["type"] in ("deployment", "alert", "config", "incident", "note")
    assert doc["event"]["id"]


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_non_objects_are_refused(data: Any) -> None:
    if isinstance(data, dict):
        return
    with pytest.raises(EventError):
        parse_event(data)


# --- "what changed?" ordering ---------------------------------------------------------------------


def _row(service: str | list[str], minute: int, i: str) -> dict[str, Any]:
    at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return {"_id": i, "@timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "service": {"name": service},
            "pang": {"type": "deployment"}, "event": {"id": i}}


def test_changes_affected_first_then_neighbours_then_the_rest_newest_first() -> None:
    rows = [_row("search", 50, "s1"), _row("payment", 10, "p1"), _row("gateway", 40, "g1"),
            _row("payment", 30, "p2"), _row(["order", "shipment"], 20, "o1"), _row("gateway", 5, "g2"),
            _row("shipment", 55, "sh1")]
    ordered = order_changes(rows, affected=["payment"], neighbours=["gateway", "order"])
    assert [(c.group, c.doc["_id"]) for c in ordered] == [
        ("affected", "p2"), ("affected", "p1"),
        ("neighbour", "g1"), ("neighbour", "o1"), ("neighbour", "g2"),
        ("other", "sh1"), ("other", "s1"),
    ]


def test_same_minute_ties_break_on_the_id() -> None:
    rows = [_row("cart", 1, "b"), _row("cart", 1, "a")]
    assert [c.doc["_id"] for c in order_changes(rows, ["cart"], [])] == ["a", "b"]


def test_affected_services_from_service_name_or_signal_components() -> None:
    components = {"order": StatusComponent(services=["order"], signals=["orders"]),
                  "payment": StatusComponent(services=["payment", "psp"], signals=["payments", "orders"]),
                  "cart": StatusComponent(services=["cart"])}
    assert affected_services({"alert": {"signal": "orders"}}, components) == ["order", "payment", "psp"]
    assert affected_services({"service": {"name": "cart"}, "alert": {"kind": "errors"}}, components) == ["cart"]
    assert affected_services({"alert": {"signal": "unknown"}}, components) == []


def test_neighbours_both_directions_without_the_affected_themselves() -> None:
    graph = {"gateway": ["search", "cart"], "cart": ["gateway", "order"], "shipment": ["order"]}
    assert neighbours_of(["cart"], graph) == ["gateway", "order"]
    assert neighbours_of(["order"], graph) == ["cart", "shipment"]  # order lists nobody; its callers count
    assert neighbours_of(["cart", "gateway"], graph) == ["order", "search"]
