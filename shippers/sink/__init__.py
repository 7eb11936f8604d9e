"""Sink: documents leave the agent here, as ``_bulk`` requests to OpenSearch."""
