"""Enrich: parsed fields plus where they came from make the ECS document, its index and its id.

The index is chosen from the document's own ``@timestamp`` (daily, UTC) and
the id from where it came from (a file stream and offset, or the spool's
epoch and sequence), so sending the same event twice writes the same
document twice, never two documents.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson

from pang import __version__
from pang.indexer.naming import index_for_day
from pang.shippers.parse.lines import parse_line
from pang.shippers.source.files import FileEvent, event_id
from pang.shippers.sink.bulk import encode_action

TAG_TRUNCATED = "pang.truncated"
TAG_INVALID_UTF8 = "pang.invalid_utf8"
# A document JSON cannot encode (orjson refuses nesting past 254 levels, which it parses up to
# 1,024): shipped as its text instead, so one line cannot stop its input.
TAG_UNENCODABLE = "pang.unencodable"


@lru_cache(maxsize=64)
def _app_index(day: str) -> str:
    return index_for_day("app", day)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_ts(ts: object) -> bool:
    """A ``YYYY-MM-DDT...`` string with a real date in ASCII digits: what index naming and the date mapping can take.

    ``str.isdigit`` is not enough: it takes any script's digits, and
    ``٢٠٢٦-٠١-٠١`` would name an index ``logs-syslog-٢٠٢٦.٠١.٠١`` (one per
    sender's whim, unbounded).
    """
    return isinstance(ts, str) and len(ts) >= 20 and ts[10] == "T" and _real_day(ts[:10])


@lru_cache(maxsize=1024)
def _real_day(day: str) -> bool:
    if not (day.isascii() and day[4] == "-" and day[7] == "-" and (day[:4] + day[5:7] + day[8:]).isdigit()):
        return False
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable_text(text: object) -> str:
    """``text`` as a string orjson takes (lone surrogates replaced)."""
    if not isinstance(text, str):
        text = repr(text)[:65536]
    return _SURROGATE.sub("\ufffd", text)


class Enricher:
    """Adds the agent's identity to every document; one per agent."""

    def __init__(self, *, agent_id: str, host_name: str, environment: str | None = None, version: str | None = None) -> None:
        self.agent = {"id": agent_id, "name": "pang", "type": "pang", "version": __version__}
        self.host_name = host_name
        self.environment = environment
        self.version = version
        self.unencodable = 0  # documents shipped as text because JSON could not encode them (on /metrics)

    def file_action(self, ev: FileEvent, received: str) -> bytes:
        """The encoded ``_bulk`` action for one file event; a line JSON cannot re-encode goes as text."""
        doc = self._file_doc(parse_line(ev.text), ev, received)
        try:
            source = orjson.dumps(doc)
        except orjson.JSONEncodeError:
            self.unencodable += 1
            doc = self._file_doc({"@timestamp": doc["@timestamp"], "message": ev.text, "tags": [TAG_UNENCODABLE]}, ev, received)
            source = orjson.dumps(doc)
        return encode_action(_app_index(doc["@timestamp"][:10]), event_id(ev.key, ev.start), source)

    def _file_doc(self, doc: dict[str, Any], ev: FileEvent, received: str) -> dict[str, Any]:
        ts = doc.get("@timestamp")
        if not valid_ts(ts):
            ts = doc["@timestamp"] = received
        service = doc.get("service")
        if not isinstance(service, dict):
            service = doc["service"] = {}
        service.setdefault("name", ev.service)
        if self.environment:
            service.setdefault("environment", self.environment)
        if self.version:
            service.setdefault("version", self.version)
        log = doc.get("log")
        if not isinstance(log, dict):
            log = doc["log"] = {}
        # the stream's fingerprint (Filebeat's name for its file identity): with the offset it gives the
        # document's _id, so the archive need not store the id (pang.archive.schema)
        log["file"] = {"path": ev.path, "fingerprint": ev.key}
        log["offset"] = ev.start
        doc["host"] = {"name": self.host_name}
        doc["agent"] = self.agent
        event = doc.get("event")
        if not isinstance(event, dict):
            event = doc["event"] = {}
        event["dataset"] = "app"
        event["ingested"] = received
        if ev.truncated or ev.invalid_utf8:
            tags = doc.get("tags") if isinstance(doc.get("tags"), list) else []
            if ev.truncated:
                tags.append(TAG_TRUNCATED)
            if ev.invalid_utf8:
                tags.append(TAG_INVALID_UTF8)
            doc["tags"] = tags
        return doc

    def spool_record(self, dataset: str, doc: dict[str, Any]) -> bytes:
        """A spool payload: dataset and day up front, so shipping needs no JSON parsing."""
        ts = doc.get("@timestamp")
        if not valid_ts(ts):
            ts = doc["@timestamp"] = now_iso()
        doc.setdefault("host", {}).setdefault("name", self.host_name)
        doc["agent"] = self.agent
        doc.setdefault("event", {})["dataset"] = dataset
        try:
            source = orjson.dumps(doc)
        except orjson.JSONEncodeError:  # a receiver must not die on one message: keep its text, tagged
            self.unencodable += 1
            event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
            text = event.get("original") if isinstance(event.get("original"), str) else doc.get("message")
            source = orjson.dumps({
                "@timestamp": ts, "message": _encodable_text(text),
                "host": {"name": self.host_name}, "agent": self.agent,
                "event": {"dataset": dataset}, "tags": [TAG_UNENCODABLE],
            })
        return b"%s\t%s\t%s" % (dataset.encode(), str(ts)[:10].encode(), source)

    def spool_action(self, epoch: str, seq: int, payload: bytes) -> tuple[str, bytes]:
        """The ``_bulk`` action for a spool record: id from agent, epoch and sequence."""
        dataset, day, doc = payload.split(b"\t", 2)
        ds = dataset.decode()
        doc_id = f"{self.agent['id']}-{epoch}-{seq}"
        return ds, encode_action(index_for_day(ds, day.decode()), doc_id, doc)
