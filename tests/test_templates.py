"""Index templates: accepted by a real node, and they give logs the mappings searches rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from pang.indexer.client import client
from pang.indexer.naming import index_for, pattern_for
from pang.indexer.templates import apply_templates, index_templates
from pang.settings import Settings


def test_overlapping_patterns_have_distinct_priorities() -> None:
    templates = index_templates()
    assert templates["pang-metrics-business"]["priority"] > templates["pang-metrics"]["priority"]
    seen: dict[tuple[str, int], str] = {}
    for name, body in templates.items():
        for pattern in body["index_patterns"]:
            key = (pattern, body["priority"])
            assert key not in seen, f"{name} and {seen[key]} share {pattern} at one priority"
            seen[key] = name


def test_index_names_follow_the_event_day_in_utc() -> None:
    late_evening_in_new_york = datetime.fromisoformat("2026-11-24T23:30:00-05:00")
    assert index_for("app", late_evening_in_new_york) == "logs-app-2026.11.25"
    assert index_for("business", datetime(2026, 1, 2, tzinfo=UTC)) == "metrics-business-2026.01.02"
    assert pattern_for("metrics") == "metrics-*,-metrics-business-*"
    with pytest.raises(ValueError, match="unknown dataset"):
        index_for("nope", datetime.now(UTC))


@pytest.mark.stack
def test_templates_apply_twice_and_shape_real_indices(stack_settings: Settings, unique: str) -> None:
    es = client(stack_settings)
    assert apply_templates(stack_settings) == list(index_templates())  # second time: same result, no error
    index = f"logs-app-{unique}"
    es.index(index=index, id="a", body={
        "@timestamp": "2026-11-24T10:00:00Z", "message": "payment declined for order 42",
        "service": {"name": "payment"}, "log": {"level": "ERROR"}, "event": {"dataset": "app"},
        "app": {"order_id": "42", "customer": "c-9"},
    })
    es.index(index=index, id="b", body={
        "@timestamp": "2026-11-24T10:00:01Z", "message": "order placed",
        "service": {"name": "order"}, "log": {"level": "INFO"}, "event": {"dataset": "app"},
    })
    es.indices.refresh(index=index)

    found = es.search(index=index, body={"query": {"match": {"message": "declined"}}})
    assert [h["_id"] for h in found["hits"]["hits"]] == ["a"]  # full text on message

    agg = es.search(index=index, body={"size": 0, "aggs": {"s": {"terms": {"field": "service.name"}}}})
    assert {b["key"]: b["doc_count"] for b in agg["aggregations"]["s"]["buckets"]} == {"payment": 1, "order": 1}

    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["message"]["type"] == "text"
    assert mapping["service"]["properties"]["name"]["type"] == "keyword"
    assert mapping["@timestamp"]["type"] == "date"
    assert mapping["app"]["properties"]["customer"]["type"] == "keyword"  # app strings are keywords, not text
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["codec"] == "best_compression"


@pytest.mark.stack
def test_business_metrics_take_their_own_template(stack_settings: Settings, unique: str) -> None:
    es = client(stack_settings)
    business, metrics = f"metrics-business-{unique}", f"metrics-{unique}"
    es.index(index=business, body={"@timestamp": "2026-11-01T00:00:00Z", "business": {"metric": "orders.placed", "count": 1200}})
    es.index(index=metrics, body={"@timestamp": "2026-11-01T00:00:00Z", "system": {"load": {"1": 3, "5": 2.5}}, "metricset": {"name": "load"}})
    b = es.indices.get_mapping(index=business)[business]["mappings"]["properties"]
    m = es.indices.get_mapping(index=metrics)[metrics]["mappings"]["properties"]
    assert b["business"]["properties"]["count"]["type"] == "long"
    load = m["system"]["properties"]["load"]["properties"]
    assert load["1"]["type"] == "double" and load["5"]["type"] == "double"  # not long, not 32-bit float


def test_app_fields_of_different_json_types_share_one_daily_index(stack_settings: Settings, unique: str) -> None:
    """order_id 42 from one service and "O-42" from another both index (no dead letters); objects still clash."""
    from pang.indexer.client import connection
    from pang.shippers.sink.bulk import BulkClient, encode_action

    index = f"logs-app-2032.{1 + int(unique[:2], 16) % 12:02d}.{1 + int(unique[2:4], 16) % 28:02d}"
    docs = [{"message": "a", "app": {"order_id": 42, "amount": 9.5, "paid": True}},
            {"message": "b", "app": {"order_id": "O-42", "amount": "n/a", "paid": "yes"}},
            {"message": "c", "app": {"order_id": "2032-01-01T00:00:00Z"}},
            {"message": "d", "app": {"order_id": {"nested": 1}}}]
    for i, d in enumerate(docs):
        d["@timestamp"] = "2032-01-01T00:00:00Z"
    result = BulkClient(connection(stack_settings)).post(
        [encode_action(index, f"{unique}-{i}", orjson.dumps(d)) for i, d in enumerate(docs)], refresh=True)
    assert sorted(result.ok) == [0, 1, 2] and [r[0] for r in result.rejected] == [3]
    es = client(stack_settings)
    for value in ("42", "O-42"):
        assert es.count(index=index, body={"query": {"term": {"app.order_id": value}}})["count"] == 1
    es.indices.delete(index=index)
