"""The sidecar agent (`pang ship`): wires sources, parsers, buffers and the sink, and serves /metrics and /healthz.

Threads: one file reader, one spool reader, the syslog receivers, one metrics
poller, the sender pool and a small HTTP server. SIGTERM stops the inputs,
seals what was read, drains the sender for up to ``ship_drain_timeout`` and
writes the checkpoints; whatever did not make it is re-sent by the next start
(files from their checkpoint, spool records from their last acknowledged
sequence), and deterministic ids keep that from doubling anything.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pang.metrics_http import metrics_server
from pang.indexer.client import connection
from pang.settings import Settings
from pang.shippers.buffer.checkpoints import CheckpointCorrupt, CheckpointStore
from pang.shippers.buffer.spool import Spool
from pang.shippers.documents import Enricher
from pang.shippers.parse.multiline import Multiline
from pang.shippers.pipeline import FileInput, SpoolInput, spool_docs
from pang.shippers.sink.bulk import BulkClient
from pang.shippers.sink.sender import Sender
from pang.shippers.source.files import FileTailer

log = logging.getLogger("pang.ship")


def agent_id(state: Path) -> str:
    """A random id made once per state folder: part of every spooled document's id."""
    path = state / "agent-id"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(8))
    return path.read_text().strip()


class Agent:
    def __init__(self, settings: Settings, *, paths: list[str] | None = None) -> None:
        self.settings = settings
        self.state = settings.state_dir / "shipper"
        self.state.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.enricher = Enricher(
            agent_id=agent_id(self.state), host_name=settings.host_name,
            environment=settings.service_environment, version=settings.service_version,
        )
        self.sender = Sender(
            BulkClient(connection(settings), maxsize=settings.ship_senders + 1),
            threads=settings.ship_senders, queue_batches=settings.ship_queue_batches,
            max_backoff=settings.ship_max_backoff, deadletter_file=self._deadletter_file,
        )
        try:
            self.store = CheckpointStore(self.state / "checkpoints.json")
        except CheckpointCorrupt as exc:
            log.error("%s", exc)
            self.store = CheckpointStore(self.state / "checkpoints.json")
        pattern = settings.ship_multiline_pattern
        self.tailer = FileTailer(
            paths if paths is not None else list(settings.ship_paths), self.store.streams,
            start_at_end=settings.ship_start_at == "end" and not self.store.existed,
            max_line_bytes=settings.ship_max_line_bytes, max_open_files=settings.ship_max_open_files,
            rotate_wait=settings.ship_rotate_wait, close_inactive=settings.ship_close_inactive,
            multiline=lambda: Multiline(start_pattern=pattern, flush_timeout=settings.ship_multiline_timeout),
        )
        self.files = FileInput(
            self.tailer, self.store, self.sender, self.enricher, batch_bytes=settings.ship_batch_bytes,
            batch_seconds=settings.ship_batch_seconds, scan_interval=settings.ship_scan_interval,
        )
        self.spool = Spool(self.state / "spool", max_bytes=settings.spool_max_bytes, fsync_interval=settings.spool_fsync_interval)
        self.spooled = SpoolInput(self.spool, self.sender, self.enricher, batch_bytes=settings.ship_batch_bytes,
                                  batch_seconds=settings.ship_batch_seconds)
        self.syslog = None
        if settings.syslog_enabled:
            from pang.shippers.source.syslog import SyslogServer, tls_context

            tls = tls_context(str(settings.syslog_tls_cert), str(settings.syslog_tls_key) if settings.syslog_tls_key else None) if settings.syslog_tls_cert else None
            self.syslog = SyslogServer(settings.syslog_host, settings.syslog_port, self._accept_syslog,
                                       max_bytes=settings.syslog_max_message_bytes, tls=tls, on_death=self._died)
        self.metrics_dropped = 0
        self.metrics_docs = 0
        self.scrape_errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.http: WSGIServer | None = None
        self.failure: str | None = None  # "<input> died: <why>", once any input thread has ended by an exception

    # --- inputs that go through the spool -------------------------------------------------

    def _accept_syslog(self, docs: list[dict[str, Any]]) -> None:
        spool_docs(self.spool, self.enricher, "syslog", docs)

    def _metrics_loop(self) -> None:
        from datetime import UTC, datetime

        from pang.shippers.source.metrics import HostMetrics, PrometheusScraper, ScrapeError

        host = HostMetrics(host_name=self.settings.host_name, period=self.settings.metrics_interval)
        scrapers = [PrometheusScraper(url, service=service, host_name=self.settings.host_name)
                    for service, url in self.settings.metrics_scrape.items()]
        while not self._stop.is_set():
            now = datetime.now(UTC)
            docs = host.collect(now)
            for scraper in scrapers:
                try:
                    docs.extend(scraper.scrape(now))
                except ScrapeError as exc:
                    self.scrape_errors += 1
                    log.warning("scrape failed: %s", exc)
            if docs:
                try:
                    spool_docs(self.spool, self.enricher, "metrics", docs)
                    self.metrics_docs += len(docs)
                except Exception:  # SpoolFull: samples are periodic; the gap is counted
                    self.metrics_dropped += len(docs)
            self._stop.wait(self.settings.metrics_interval)

    def _deadletter_file(self, action: bytes) -> None:
        with open(self.state / "deadletter.ndjson", "ab") as fh:
            fh.write(action)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._serve_http()
        self._spawn(self.files.run, "pang-files")
        self._spawn(self.spooled.run, "pang-spool")
        if self.syslog:
            self.syslog.start()
        if self.settings.metrics_enabled:
            self._spawn(self._metrics_loop, "pang-metrics")
        log.info("pang ship started: files %s, syslog %s, metrics %s", self.tailer.patterns,
                 self.syslog.port if self.syslog else "off", "on" if self.settings.metrics_enabled else "off")

    def _spawn(self, target: Any, name: str, *, join: bool = True) -> None:
        t = threading.Thread(target=self._guarded, args=(target, name), name=name, daemon=True)
        t.start()
        if join:  # inputs are joined on shutdown; the HTTP server is not one (it stops last, by shutdown())
            self._threads.append(t)

    def _guarded(self, target: Any, name: str) -> None:
        """Run a thread's loop; if it dies, say which and why, fail /healthz and stop the agent.

        A dead input would otherwise leave a process that looks alive and ships
        nothing from it; exiting non-zero lets the supervisor restart it and see why.
        """
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - any death of an input is reported the same way
            self._died(name, exc)

    def _died(self, name: str, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = f"{name.removeprefix('pang-')} input died: {type(exc).__name__}: {str(exc)[:300]}"
            log.error("%s; stopping (exit status 1)", self.failure)
            log.debug("the input's traceback", exc_info=exc)
        self._stop.set()

    def run_forever(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        self.start()
        while not self._stop.wait(0.5):
            pass
        return self.shutdown()

    def shutdown(self) -> int:
        """Stop inputs, send what was read within the drain bound, save checkpoints."""
        self._stop.set()
        if self.syslog:
            self.syslog.stop()
        self.files.stop_reading.set()
        self.spooled.stop_reading.set()
        for t in self._threads:
            t.join(timeout=10)
        drained = self.sender.drain(self.settings.ship_drain_timeout)
        if not drained:
            log.warning("drain timeout (%ss): unsent batches will be re-sent at the next start", self.settings.ship_drain_timeout)
        self.sender.stop()
        self.files.apply_commits(force_save=True)
        self.spool.close()
        self.tailer.close()
        if self.http:
            self.http.shutdown()
            self.http.server_close()
        return 1 if self.failure else 0

    # --- observability -------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        s = self.sender.stats
        stuck = s.in_flight > 0 and s.last_success and time.time() - s.last_success > 60
        healthy = not self._stop.is_set() and not stuck and self.failure is None
        return healthy, {
            "status": "ok" if healthy else ("failed" if self.failure else "degraded"),
            **({"failure": self.failure} if self.failure else {}),
            "uptime_seconds": round(time.time() - self.started, 1),
            "last_success": s.last_success,
            "last_error": s.last_error,
            "spool_bytes": self.spool.bytes,
            "open_files": len(self.tailer.files),
        }

    def _serve_http(self) -> None:
        self.http = metrics_server(self.settings.ship_http_host, self.settings.ship_http_port, _Collector(self), self.health)
        self._spawn(self.http.serve_forever, "pang-http", join=False)

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.server_port


class _Collector:
    """Reads the agent's counters at scrape time (no second bookkeeping)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Any:
        a = self.agent
        t, s = a.tailer.stats, a.sender.stats

        def counter(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> CounterMetricFamily:
            fam = CounterMetricFamily(name, doc, labels=list(labels) if labels else None)
            fam.add_metric(list(labels.values()) if labels else [], value)
            return fam

        yield counter("pang_lines_read", "Lines read from files.", t.lines)
        yield counter("pang_bytes_read", "Bytes read from files.", t.bytes)
        yield counter("pang_lines_truncated", "Lines longer than the limit (truncated, tagged).", t.truncated_lines)
        yield counter("pang_lines_invalid_utf8", "Lines with invalid UTF-8 (replaced, tagged).", t.invalid_utf8)
        yield counter("pang_files_rotated", "Streams followed to a rotated or copied file.", t.rotations)
        yield counter("pang_files_truncated", "Files found truncated.", t.truncations)
        shipped = CounterMetricFamily("pang_documents_shipped", "Documents acknowledged by OpenSearch.", labels=["dataset"])
        for ds, n in sorted(s.shipped.items()):
            shipped.add_metric([ds], n)
        yield shipped
        yield counter("pang_documents_resent", "Acknowledged documents that overwrote an existing id (re-sends).", s.resent)
        retries = CounterMetricFamily("pang_retries", "Retried bulk requests or items, by reason.", labels=["reason"])
        for reason, n in sorted(s.retries.items()):
            retries.add_metric([reason], n)
        yield retries
        yield counter("pang_documents_rejected", "Items OpenSearch rejected (sent to the dead-letter index).", s.rejected)
        yield counter("pang_deadletters", "Documents written to the dead-letter index.", s.deadlettered)
        yield counter("pang_deadletters_file", "Dead letters the node refused too, kept in the state folder.", s.deadletter_file)
        yield counter("pang_documents_unencodable", "Documents JSON could not encode (nested too deep), shipped as text tagged pang.unencodable.",
                      a.enricher.unencodable)
        yield counter("pang_bulk_requests", "Successful _bulk requests.", s.requests)
        yield counter("pang_bulk_seconds", "Time spent in successful _bulk requests.", s.request_seconds)
        if a.syslog:
            st = a.syslog.stats
            msgs = CounterMetricFamily("pang_syslog_messages", "Syslog messages accepted into the spool.", labels=["transport"])
            msgs.add_metric(["udp"], st.udp)
            msgs.add_metric(["tcp"], st.tcp)
            yield msgs
            yield counter("pang_syslog_dropped", "UDP syslog messages dropped because the spool was full.", st.dropped_spool_full)
            yield counter("pang_syslog_truncated", "Syslog messages over the size limit (truncated, tagged).", st.truncated)
            yield counter("pang_syslog_parse_errors", "Syslog messages indexed raw (tagged pang.parse_error).", st.parse_errors)
        yield counter("pang_metric_documents", "Metric documents written to the spool.", a.metrics_docs)
        yield counter("pang_metric_documents_dropped", "Metric documents dropped because the spool was full.", a.metrics_dropped)
        yield counter("pang_scrape_errors", "Failed Prometheus scrapes.", a.scrape_errors)
        g = GaugeMetricFamily("pang_spool_bytes", "Bytes in the disk spool.")
        g.add_metric([], a.spool.bytes)
        yield g
        g = GaugeMetricFamily("pang_spool_pending_records", "Spooled records not yet acknowledged.")
        g.add_metric([], a.spool.pending)
        yield g
        g = GaugeMetricFamily("pang_open_files", "Files held open.")
        g.add_metric([], len(a.tailer.files))
        yield g
        g = GaugeMetricFamily("pang_batches_in_flight", "Batches being sent.")
        g.add_metric([], s.in_flight)
        yield g
        lag = GaugeMetricFamily("pang_file_lag_bytes", "Bytes written to a file and not yet read.", labels=["path"])
        for path, n in sorted(a.tailer.lag_bytes().items()):
            lag.add_metric([path], n)
        yield lag


def run(settings: Settings, paths: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("PANG_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Agent(settings, paths=paths).run_forever()
