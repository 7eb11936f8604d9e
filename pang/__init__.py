"""pang: an observability and log pipeline.

The data flows one way, and so do the imports:

    pang.shippers   sources -> parse -> buffer -> sink, into OpenSearch
    pang.indexer    templates, index naming, retention, search
    pang.archive    closed hours to Parquet/zstd in object storage, DuckDB queries
    pang.dashboards the Dash web app (a face over the packages above)

This package itself holds what all of them share: settings, the CLI and the
local stack (``pang.stack``).
"""

__version__ = "0.1.0"
