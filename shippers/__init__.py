"""Shippers: the sidecar agent that moves logs, syslog and metrics into OpenSearch.

Read the sub-packages in the order data flows through them:
``source`` (where lines and messages come from), ``parse`` (text to ECS
documents), ``buffer`` (disk spool and checkpoints), ``sink`` (``_bulk`` into
OpenSearch).
"""
