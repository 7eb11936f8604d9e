"""The bulk client against the real node: item-level outcomes, and the fast path when nothing failed."""

from __future__ import annotations

import orjson
import pytest

from pang.indexer.client import connection
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action, split_items


def test_split_items_sorts_outcomes() -> None:
    answer = {"errors": True, "items": [
        {"index": {"status": 201, "result": "created"}},
        {"index": {"status": 200, "result": "updated"}},
        {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "busy"}}},
        {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad field"}}},
        {"index": {"status": 503}},
    ]}
    result = split_items(answer)
    assert result.ok == [0, 1] and result.created == 1
    assert result.retry == [2, 4]
    assert result.rejected == [(3, 400, "mapper_parsing_exception: bad field")]


@pytest.mark.stack
def test_first_write_creates_and_a_resend_overwrites(stack_settings: Settings, unique: str) -> None:
    bulk = BulkClient(connection(stack_settings))
    index = f"logs-app-bulk-{unique}"
    actions = [encode_action(index, f"id-{i}", orjson.dumps({"@timestamp": "2026-11-24T10:00:00Z", "message": f"m{i}"})) for i in range(300)]
    first = bulk.post(actions, refresh=True)
    assert (len(first.ok), first.created, first.retry, first.rejected) == (300, 300, [], [])
    again = bulk.post(actions[:100], refresh=True)
    assert (len(again.ok), again.created) == (100, 0)  # same ids: overwritten, counted as re-sends
    bad = encode_action(index, "bad", orjson.dumps({"@timestamp": "not a date", "message": "x"}))
    mixed = bulk.post([actions[0], bad])
    assert mixed.ok == [0] and [pos for pos, _status, _reason in mixed.rejected] == [1]
