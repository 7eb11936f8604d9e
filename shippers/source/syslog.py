"""Syslog receivers: UDP datagrams and TCP streams (newline, NUL or RFC 6587 octet-counted framing), optional TLS.

A message is accepted once it is in the disk spool; the receiver does not
read the next message before that. When the spool is full, a TCP connection
stops being read (the sender's window fills and it blocks: backpressure),
while UDP has no way to push back, so the datagram is dropped and counted in
``pang_syslog_dropped_total`` (documented in the README).
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pang.shippers.buffer.spool import SpoolFull
from pang.shippers.parse.framing import SyslogFramer
from pang.shippers.parse.syslog import parse_syslog

log = logging.getLogger("pang.ship.syslog")

Accept = Callable[[list[dict[str, Any]]], None]  # writes parsed documents to the spool; raises SpoolFull


@dataclass
class SyslogStats:
    udp: int = 0
    tcp: int = 0
    truncated: int = 0
    parse_errors: int = 0
    dropped_spool_full: int = 0
    connections: int = 0


class SyslogServer:
    """Both transports on one port; each in its own thread(s)."""

    def __init__(self, host: str, port: int, accept: Accept, *, max_bytes: int, tls: ssl.SSLContext | None = None,
                 on_death: Callable[[str, BaseException], None] | None = None) -> None:
        self.accept = accept
        self.on_death = on_death  # told when a receiver thread ends by an exception (the agent then stops)
        self.max_bytes = max_bytes
        self.stats = SyslogStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.udp.bind((host, port))
        self.port = self.udp.getsockname()[1]
        self.udp.settimeout(0.2)
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._handle_tcp(self.request, self.client_address)

        class TCPServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def get_request(self):  # type: ignore[no-untyped-def]
                sock, addr = super().get_request()
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                return sock, addr

        self.tcp = TCPServer((host, self.port), Handler)
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._udp_loop, "syslog-udp"), name="pang-syslog-udp", daemon=True),
            threading.Thread(target=self._guarded, args=(self._serve_tcp, "syslog-tcp"), name="pang-syslog-tcp", daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _serve_tcp(self) -> None:
        self.tcp.serve_forever(poll_interval=0.2)

    def _guarded(self, loop: Callable[[], None], name: str) -> None:
        try:
            loop()
        except BaseException as exc:  # noqa: BLE001
            if self.on_death is None:
                raise
            self.on_death(name, exc)

    def stop(self) -> None:
        self._stop.set()
        self.tcp.shutdown()
        self.tcp.server_close()
        self.udp.close()

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _doc(self, raw: bytes, peer: str, truncated: bool) -> dict[str, Any]:
        doc = parse_syslog(raw, received=datetime.now(UTC), peer=peer, max_bytes=self.max_bytes)
        tags = doc.get("tags") or []
        if truncated and "pang.truncated" not in tags:
            doc["tags"] = [*tags, "pang.truncated"]
        if "pang.truncated" in (doc.get("tags") or []):
            self._count(truncated=1)
        if "pang.parse_error" in (doc.get("tags") or []):
            self._count(parse_errors=1)
        return doc

    def _udp_loop(self) -> None:
        bufsize = max(self.max_bytes + 1, 65536)
        while not self._stop.is_set():
            try:
                data, addr = self.udp.recvfrom(bufsize)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not data.strip():
                continue
            doc = self._doc(data.rstrip(b"\n\x00"), addr[0], False)
            try:
                self.accept([doc])
                self._count(udp=1)
            except SpoolFull:
                self._count(dropped_spool_full=1)

    def _handle_tcp(self, sock: socket.socket, addr: Any) -> None:
        self._count(connections=1)
        peer = addr[0] if isinstance(addr, tuple) else str(addr)
        framer = SyslogFramer(max_bytes=self.max_bytes)
        sock.settimeout(1.0)
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.do_handshake()
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    self._deliver(framer.flush(), peer)
                    return
                self._deliver(framer.feed(data), peer)
        except (OSError, ssl.SSLError) as exc:
            log.info("syslog connection from %s ended: %s", peer, exc)

    def _deliver(self, frames: list[tuple[bytes, bool]], peer: str) -> None:
        docs = [self._doc(raw.rstrip(b"\x00"), peer, truncated) for raw, truncated in frames if raw.strip(b"\x00\r\n ")]
        if not docs:
            return
        while True:
            try:
                self.accept(docs)
                self._count(tcp=len(docs))
                return
            except SpoolFull:
                # Hold this connection: not reading makes the sender wait (TCP flow control).
                if self._stop.is_set():
                    return
                time.sleep(0.2)


def tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx
