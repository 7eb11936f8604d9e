"""Archive: closed time windows of logs as Parquet/zstd in object storage, queried with DuckDB.

This package owns the object store (an S3-compatible server, or a local folder
by default) and DuckDB.
"""
