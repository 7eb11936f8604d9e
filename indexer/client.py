"""The one place where pang builds connections to OpenSearch.

Two kinds of caller need the same URL, credentials and TLS settings: the
indexer's opensearch-py client (templates, search, point-in-time reads) and
the shippers' bulk sink, which posts pre-encoded ``_bulk`` bodies over a bare
urllib3 pool because opensearch-py's helpers top out far below the node's
ceiling. Both get their parameters from :func:`connection`, so auth and TLS
behave the same everywhere.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opensearchpy import OpenSearch

from pang.settings import Settings


@dataclass(frozen=True)
class Connection:
    """Everything needed to open an HTTP(S) connection to the cluster."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 9200)


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if urlsplit(settings.opensearch_url).scheme != "https":
        return None
    ctx = ssl.create_default_context(cafile=str(settings.opensearch_ca_certs) if settings.opensearch_ca_certs else None)
    if not settings.opensearch_verify_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if settings.opensearch_client_cert:
        ctx.load_cert_chain(
            str(settings.opensearch_client_cert),
            str(settings.opensearch_client_key) if settings.opensearch_client_key else None,
        )
    return ctx


def connection(settings: Settings) -> Connection:
    """URL, auth header and TLS context from settings."""
    headers = {}
    if settings.opensearch_username:
        secret = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        token = base64.b64encode(f"{settings.opensearch_username}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return Connection(
        url=settings.opensearch_url,
        headers=headers,
        ssl_context=_ssl_context(settings),
        timeout=settings.opensearch_timeout,
    )


def client(settings: Settings) -> OpenSearch:
    """An opensearch-py client for the configured cluster (one per distinct connection setting)."""
    key = tuple(
        str(getattr(settings, name))
        for name in ("opensearch_url", "opensearch_username", "opensearch_password", "opensearch_ca_certs",
                     "opensearch_verify_certs", "opensearch_client_cert", "opensearch_client_key", "opensearch_timeout")
    ) + (settings.opensearch_password.get_secret_value() if settings.opensearch_password else "",)
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = _build(settings)
    return found


_clients: dict[tuple[str, ...], OpenSearch] = {}


def _build(settings: Settings) -> OpenSearch:
    conn = connection(settings)
    return OpenSearch(
        hosts=[conn.url],
        headers=conn.headers or None,
        ssl_context=conn.ssl_context,
        timeout=conn.timeout,
        max_retries=2,
        retry_on_timeout=True,
    )
