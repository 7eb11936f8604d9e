"""The search-box parser: what people type becomes only allow-listed query DSL, or one clear syntax error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pang.indexer.query import (
    KEYWORD_FIELDS,
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_QUERY_CHARS,
    NUMERIC_FIELDS,
    TEXT_FIELDS,
    QuerySyntaxError,
    parse_query,
)

# Written out here rather than imported: the test states the contract, the module must meet it.
LEAF_TYPES = {"match", "match_phrase", "term", "prefix", "wildcard", "exists", "range", "match_all"}
BOOL_KEYS = {"must", "should", "must_not", "filter", "minimum_should_match"}
FORBIDDEN = {"script", "query_string", "simple_query_string", "regexp", "fuzzy", "script_score", "function_score",
             "more_like_this", "percolate", "wrapper", "terms_set", "intervals"}


def _field_ok(name: str) -> bool:
    return name in TEXT_FIELDS or name in KEYWORD_FIELDS or name in NUMERIC_FIELDS or name.endswith(".ip") or (
        name.startswith(("app.", "labels.")) and all(name.split(".")[1:])
    )


def walk(node: Any) -> None:
    """Fail unless ``node`` is built only from the allowed query types, bodies and fields."""
    assert isinstance(node, dict) and len(node) == 1, node
    (kind, body), = node.items()
    assert kind not in FORBIDDEN
    if kind == "bool":
        assert set(body) <= BOOL_KEYS and body, body
        for key in ("must", "should", "must_not", "filter"):
            for child in body.get(key, []):
                walk(child)
        if "should" in body:
            assert body["minimum_should_match"] == 1
        return
    assert kind in LEAF_TYPES, kind
    if kind == "match_all":
        assert body == {}
    elif kind == "exists":
        assert set(body) == {"field"} and _field_ok(body["field"])
    else:
        (name, spec), = body.items()
        assert _field_ok(name), name
        if kind in ("match", "match_phrase"):
            assert name in TEXT_FIELDS and set(spec) <= {"query", "operator"} and isinstance(spec["query"], str)
        elif kind in ("prefix", "wildcard"):
            assert set(spec) == {"value"} and isinstance(spec["value"], str)
            if name in TEXT_FIELDS:
                assert spec["value"][:1] not in ("*", "?"), "leading wildcard on a text field"
        elif kind == "term":
            assert name not in TEXT_FIELDS and isinstance(spec, (str, int, float))
        elif kind == "range":
            assert name in NUMERIC_FIELDS and set(spec) <= {"gt", "gte", "lt", "lte"}


def keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in keys(v)}
    return set()


def check(text: str) -> None:
    try:
        dsl = parse_query(text)
    except QuerySyntaxError as exc:
        assert 0 <= exc.position <= max(0, len(text) - 1) or (not text and exc.position == 0), (text, exc.position)
        assert f"at character {exc.position + 1}" in str(exc)
        return
    walk(dsl)
    assert not keys(dsl) & FORBIDDEN
    json.dumps(dsl)  # serialisable as is


PIECES = ["(", ")", '"', "AND", "OR", "NOT", "-", "+", "*", "?", "\\", ":", " ", " ", "service:", "level:", "message:",
          "error.stack_trace:", "host.name:", "app.order_id:", "status:", ">=", "5", "foo", "Bar*", "b?z", "\u00e9", "x:y",
          "url.path:", "trace.id:*", "client.ip:", "10.0.0.0/8", "labels.team:", "nope:", "\t", "-1", "\ue000"]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_gives_allowed_dsl_or_a_positioned_syntax_error(text: str) -> None:
    check(text)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_query_shaped_text_gives_allowed_dsl_or_a_positioned_syntax_error(text: str) -> None:
    check(text)


def test_words_are_anded_over_message_and_phrases_stay_phrases() -> None:
    dsl = parse_query('payment "card declined"')
    assert dsl == {"bool": {"must": [
        {"match": {"message": {"query": "payment", "operator": "and"}}},
        {"match_phrase": {"message": {"query": "card declined"}}},
    ]}}
    assert parse_query("  ") == {"match_all": {}}


def test_boolean_operators_and_precedence() -> None:
    # NOT binds tighter than AND, AND tighter than OR
    dsl = parse_query("a OR b c NOT d")
    should = dsl["bool"]["should"]
    assert should[0] == {"match": {"message": {"query": "a", "operator": "and"}}}
    assert [m["match"]["message"]["query"] for m in should[1]["bool"]["must"]] == ["b", "c"]
    assert should[1]["bool"]["must_not"] == [{"match": {"message": {"query": "d", "operator": "and"}}}]
    assert parse_query("-service:cart")["bool"]["must_not"] == [{"term": {"service.name": "cart"}}]
    assert parse_query("NOT NOT x") == parse_query("x")


def test_fields_aliases_and_case_insensitive_levels() -> None:
    assert parse_query("service:payment") == {"term": {"service.name": "payment"}}
    assert parse_query("log.level:error") == {"term": {"log.level": "ERROR"}}
    assert parse_query("level:Warning") == {"term": {"log.level": "WARN"}}
    ors = parse_query("level:(error OR warn)")["bool"]["should"]
    assert ors == [{"term": {"log.level": "ERROR"}}, {"term": {"log.level": "WARN"}}]
    assert parse_query('error.stack_trace:"at com.shop.Pay"') == {"match_phrase": {"error.stack_trace": {"query": "at com.shop.Pay"}}}
    assert parse_query("app.order_id:A-17") == {"term": {"app.order_id": "A-17"}}
    assert parse_query("trace.id:*") == {"exists": {"field": "trace.id"}}
    assert parse_query("status:>=500") == {"range": {"http.response.status_code": {"gte": 500}}}


def test_wildcards() -> None:
    assert parse_query("Paym*") == {"prefix": {"message": {"value": "paym"}}}
    assert parse_query("dec?ined") == {"wildcard": {"message": {"value": "dec?ined"}}}
    assert parse_query("url.path:*checkout*") == {"wildcard": {"url.path": {"value": "*checkout*"}}}  # keywords may
    assert parse_query(r"url.path:a\*b") == {"term": {"url.path": "a*b"}}  # escaped: a literal star
    with pytest.raises(QuerySyntaxError, match="cannot start with"):
        parse_query("*ayment")


def test_unknown_field_names_it_and_the_allowed_ones() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query("foo servce:cart")
    message = str(info.value)
    assert "'servce'" in message and "service.name" in message and "log.level" in message and "did you mean service" in message
    assert info.value.position == 4
    # text with a colon searches as text when quoted
    assert parse_query('"http://x"') == {"match_phrase": {"message": {"query": "http://x"}}}


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ('abc "def', 4, "unclosed quote"),
        ("a (b c", 2, "never closed"),
        ("a b)", 3, "without a matching"),
        ("a AND", 2, "needs a term after"),
        ("OR a", 0, "needs a term before"),
        ("status:abc", 7, "takes a number"),
        ("service:", 0, "needs a value"),
        ("()", 0, "empty parentheses"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, position: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    assert info.value.position == position
    assert words in str(info.value) and f"character {position + 1}" in str(info.value)


def test_input_is_bounded() -> None:
    with pytest.raises(QuerySyntaxError, match="longer than"):
        parse_query("a" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(QuerySyntaxError, match="nests deeper"):
        parse_query("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    walk(parse_query("(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)))
    with pytest.raises(QuerySyntaxError, match="more than"):
        parse_query(" ".join(f"w{i}" for i in range(MAX_CLAUSES + 1)))
    walk(parse_query(" ".join(f"w{i}" for i in range(MAX_CLAUSES))))
