"""Reading every document that matches, in a stable order: a point in time with ``search_after``.

Scroll contexts are deprecated for this; a point in time sorted by ``_doc``
(the cheapest stable order inside one PIT; ``_shard_doc`` does not exist in
2.19) pages without gaps or repeats even while documents are being written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pang.indexer.client import client
from pang.settings import Settings


def scan(
    settings: Settings,
    index: str,
    query: dict[str, Any] | None = None,
    *,
    page: int = 2000,
    sort: list[Any] | None = None,
    keep_alive: str = "2m",
) -> Iterator[dict[str, Any]]:
    """Yield hits (``_index``, ``_id``, ``_source``, ``_version``) of ``index`` matching ``query``."""
    es = client(settings)
    params = {"keep_alive": keep_alive, "ignore_unavailable": "true", "allow_no_indices": "true"}
    try:
        pit = es.transport.perform_request("POST", f"/{index}/_search/point_in_time", params=params)["pit_id"]
    except Exception as exc:
        if "index_not_found" in str(exc) or getattr(exc, "status_code", None) == 404:
            return
        raise
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {
                "size": page,
                "pit": {"id": pit, "keep_alive": keep_alive},
                "sort": sort or [{"_doc": "asc"}],
                "version": True,
                "query": query or {"match_all": {}},
            }
            if after is not None:
                body["search_after"] = after
            answer = es.transport.perform_request("POST", "/_search", body=body)
            hits = answer["hits"]["hits"]
            if not hits:
                return
            yield from hits
            pit = answer.get("pit_id", pit)
            after = hits[-1]["sort"]
    finally:
        try:
            es.transport.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": pit})
        except Exception:
            pass  # it expires by itself
