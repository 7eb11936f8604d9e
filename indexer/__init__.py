"""Indexer: every conversation with OpenSearch that is not a shipper's bulk sink.

Index templates, daily index naming, retention, search and point-in-time
reads live here; no other package builds an OpenSearch client.
"""

from pang.indexer.naming import index_for, pattern_for

__all__ = ["index_for", "pattern_for"]
