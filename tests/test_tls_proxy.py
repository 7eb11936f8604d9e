"""Auth and TLS toward OpenSearch and S3, through a real nginx proxy with basic auth in front of the real servers.

The local node has no security plugin, so (as the clarifications say) a
Debian nginx terminates TLS with a certificate the test makes and checks basic
auth before proxying to the session's node; a second server block terminates
TLS in front of SeaweedFS (S3 signs requests, nginx passes them through with
the Host header intact). Every client pang has goes through it: the
opensearch-py client (templates, search), the shippers' urllib3 bulk sink,
boto3 and pyarrow's S3 filesystem (archive write and DuckDB query).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from pang.indexer.client import client, connection
from pang.indexer.naming import index_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, BulkError, encode_action

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "pang-reader", "s3cret-Passw0rd"

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is installed by scripts/bootstrap.sh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, as an operator would)."""
    ca_key, ca, key, csr, crt = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pang test CA",
         "-keyout", str(ca_key), "-out", str(ca))
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nginx did not listen on {port}")


@pytest.fixture(scope="module")
def proxy(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """Settings whose OpenSearch and S3 URLs are https through nginx (basic auth on OpenSearch); and the CA file."""
    work = tmp_path_factory.mktemp("nginx")
    ca, crt, key = _make_certs(work)
    htpasswd = work / "htpasswd"
    htpasswd.write_text(f"{USER}:{_run('openssl', 'passwd', '-apr1', PASSWORD).strip()}\n")
    os_port, s3_port = _free_port(), _free_port()
    upstream_os = urlsplit(stack_settings.opensearch_url).netloc
    upstream_s3 = urlsplit(stack_settings.s3_effective_endpoint).netloc
    (work / "logs").mkdir()
    conf = work / "nginx.conf"
    conf.write_text(f"""
daemon off;
{"user root root;" if os.getuid() == 0 else ""}  # workers must read the 0700 temp folder
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {work}/logs/access.log;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  client_max_body_size 64m;
  ssl_certificate {crt}; ssl_certificate_key {key};
  server {{
    listen 127.0.0.1:{os_port} ssl;
    auth_basic "opensearch"; auth_basic_user_file {htpasswd};
    location / {{ proxy_pass http://{upstream_os}; proxy_set_header Authorization ""; }}
  }}
  server {{
    listen 127.0.0.1:{s3_port} ssl;
    location / {{ proxy_pass http://{upstream_s3}; proxy_set_header Host $http_host; proxy_request_buffering off; }}
  }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(os_port)
        _wait_port(s3_port)
        tls = stack_settings.model_copy(update={
            "opensearch_url": f"https://127.0.0.1:{os_port}",
            "opensearch_username": USER,
            "opensearch_password": __import__("pydantic").SecretStr(PASSWORD),
            "opensearch_ca_certs": ca,
            "s3_endpoint": f"https://127.0.0.1:{s3_port}",
            "s3_ca_bundle": ca,
        })
        yield tls, ca
    finally:
        proc.terminate()
        proc.wait(10)


def test_opensearch_client_and_bulk_sink_speak_tls_with_basic_auth(proxy: tuple[Settings, Path], unique: str) -> None:
    settings, _ = proxy
    assert client(settings).info()["version"]["number"].startswith("2.")
    now = datetime.now(UTC)
    index = index_for("app", now)
    sink = BulkClient(connection(settings))
    docs = [{"@timestamp": now.isoformat(), "message": f"tls line {i}", "service": {"name": f"tls-{unique}"}} for i in range(20)]
    result = sink.post([encode_action(index, f"{unique}-{i}", orjson.dumps(d)) for i, d in enumerate(docs)], refresh=True)
    assert len(result.ok) == 20 and not result.rejected
    found = client(settings).count(index="logs-app-*", body={"query": {"term": {"service.name": f"tls-{unique}"}}})
    assert found["count"] == 20


def test_wrong_password_and_unknown_ca_are_refused_with_clear_errors(proxy: tuple[Settings, Path]) -> None:
    settings, _ = proxy
    from pydantic import SecretStr

    wrong = settings.model_copy(update={"opensearch_password": SecretStr("nope")})
    with pytest.raises(BulkError) as failed:
        BulkClient(connection(wrong)).post([encode_action("logs-app-x", "1", b"{}")])
    assert failed.value.status == 401 and not failed.value.retryable
    no_ca = settings.model_copy(update={"opensearch_ca_certs": None})
    with pytest.raises(BulkError) as untrusted:
        BulkClient(connection(no_ca)).post([encode_action("logs-app-x", "1", b"{}")])
    assert "certificate" in str(untrusted.value).lower()


def test_archive_writes_and_queries_s3_over_tls(proxy: tuple[Settings, Path], unique: str) -> None:
    """boto3 (objects, manifest) and pyarrow's S3 filesystem (DuckDB's view) both verify the proxy with the CA."""
    settings, _ = proxy
    from pang.archive import archiver
    from pang.archive.query import query
    from pang.archive.store import ensure_bucket

    settings = settings.model_copy(update={"archive_url": f"s3://{settings.s3_bucket}/tls-{unique}"})
    ensure_bucket(settings)
    hour = datetime(2019, 3, 4, 5, tzinfo=UTC)
    sink = BulkClient(connection(settings))
    docs = [{"@timestamp": (hour + timedelta(seconds=i)).isoformat(), "message": f"archived over tls {i}",
             "service": {"name": f"tls-{unique}"}, "event": {"dataset": "app"}} for i in range(50)]
    index = index_for("app", hour)
    sink.post([encode_action(index, f"{unique}-a{i}", orjson.dumps(d)) for i, d in enumerate(docs)], refresh=True)
    archiver.run(settings, start=hour, end=hour + timedelta(hours=1), datasets=["app"], grace=timedelta(0))
    cols, rows = query(settings, f"SELECT count(*) FROM logs WHERE service.name = 'tls-{unique}' AND dt = '2019-03-04' AND hour = 5")
    assert rows[0][0] == 50
