"""The agent's metrics input: host metrics (psutil) and Prometheus scrapes, as ECS metric documents.

The agent calls :meth:`HostMetrics.collect` and :meth:`PrometheusScraper.scrape`
every period and ships what they return; nothing here talks to OpenSearch or
the spool. Every document is a plain dict of *nested* objects (the mapping is
nested objects, never dotted keys)::

    {"@timestamp": "2026-11-24T10:00:00.000Z",
     "event": {"dataset": "metrics", "module": "system"},
     "metricset": {"name": "cpu", "period": 10000},
     "host": {"name": "web-1"},
     "system": {"cpu": {"cores": 2, "total": {"pct": 0.25, "norm": {"pct": 0.125}}, ...}}}

Host metrics follow Metricbeat's ``system`` module: one document per metricset
(``cpu``, ``memory``, ``load``) and per disk (``diskio``), mounted filesystem
(``filesystem``) and network interface (``network``). Percentages are fractions:
``system.cpu.*.pct`` is 0..cores (Metricbeat's convention), ``*.norm.pct`` is
0..1. Counters (bytes, packets, I/O operations) are the kernel's totals since
boot, as Metricbeat ships them; rates are a query-time derivative.

Prometheus scrapes become one document per label set: every sample with the
same labels is a field of the same document, named by its metric name with
``_`` read as ``.`` (``jvm_gc_fullgc_time`` -> ``jvm.gc.fullgc.time``), the
labels under ``labels.<name>``. How names become paths, and how a name that is
a prefix of another (``a_b`` and ``a_b_c``) is kept from being both a number
and an object, is described at :func:`metric_path` and :func:`resolve_paths`.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psutil
import urllib3
from prometheus_client.openmetrics.parser import text_string_to_metric_families as _openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as _text_families

log = logging.getLogger(__name__)

Path = tuple[str, ...]

DATASET = "metrics"


# --------------------------------------------------------------------------------------------
# Shared: timestamps, numbers, dotted names to nested objects
# --------------------------------------------------------------------------------------------


def iso_timestamp(now: datetime) -> str:
    """``2026-11-24T10:00:00.123Z``: UTC, milliseconds. A naive datetime is refused (its zone is a guess)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is needed, e.g. datetime.now(timezone.utc)")
    utc = now.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _number(value: float) -> int | float:
    """An integral float as an int, so it is sent as ``5`` rather than ``5.0``.

    OpenSearch maps a new field from a JSON integer as ``long`` (which the
    ``metrics-*`` template turns into ``double``) but from ``5.0`` as ``float``,
    a 32-bit type that rounds counters above 2**24. Counters are integral.
    """
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def resolve_paths(paths: Mapping[str, Sequence[str]]) -> dict[str, Path]:
    """Make a set of field paths nestable: no path is both a number and an object, none is shared.

    ``paths`` maps a key (a metric name) to its path components. Where one path
    is a proper prefix of another (``a.b`` and ``a.b.c``), or several keys share
    one path, the node becomes an object and the numbers that sat on it move to
    fresh children: ``value``, then ``value_2``, ``value_3``, ... (a name is
    skipped when the node already has a child of that name), in the order of the
    keys. So ``a_b`` = 1 with ``a_b_c`` = 2 gives ``{"a": {"b": {"value": 1, "c": 2}}}``.
    Paths without conflict are returned unchanged.

    The result depends only on the mapping's contents, not on its order; no
    value is lost (the returned paths are distinct and none is a prefix of
    another). Empty paths are refused.
    """

    class Node:
        __slots__ = ("children", "keys")

        def __init__(self) -> None:
            self.children: dict[str, Node] = {}
            self.keys: list[str] = []

    root = Node()
    for key in sorted(paths):
        path = tuple(paths[key])
        if not path:
            raise ValueError(f"empty path for {key!r}")
        node = root
        for part in path:
            node = node.children.setdefault(part, Node())
        node.keys.append(key)

    out: dict[str, Path] = {}
    stack: list[tuple[Node, Path]] = [(root, ())]
    while stack:  # iterative: a name with a thousand underscores must not hit the recursion limit
        node, prefix = stack.pop()
        if len(node.keys) == 1 and not node.children:
            out[node.keys[0]] = prefix
        elif node.keys:
            taken = set(node.children)
            n = 1
            for key in node.keys:
                while (name := "value" if n == 1 else f"value_{n}") in taken:
                    n += 1
                taken.add(name)
                out[key] = (*prefix, name)
        for part, child in node.children.items():
            stack.append((child, (*prefix, part)))
    return out


def nest(items: Iterable[tuple[Sequence[str], Any]]) -> dict[str, Any]:
    """Build nested dicts from (path, value) pairs; a path that is both a value and an object is an error."""
    root: dict[str, Any] = {}
    for path, value in items:
        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"field {'.'.join(path)!r}: {part!r} already holds a value")
            node = child
        if path[-1] in node:
            raise ValueError(f"field {'.'.join(path)!r} is set twice")
        node[path[-1]] = value
    return root


def flatten_to_nested(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``{"system.load.1": 0.5, "system.load.5": 0.4}`` -> ``{"system": {"load": {"1": 0.5, "5": 0.4}}}``.

    Keys are split on dots (empty parts dropped; underscores stay, so
    ``system.filesystem.mount_point`` keeps its name). Conflicts are resolved
    by :func:`resolve_paths` (``{"a.b": 1, "a.b.c": 2}`` -> ``{"a": {"b": {"value": 1, "c": 2}}}``).
    """
    split = {key: tuple(part for part in key.split(".") if part) or ("_",) for key in fields}
    paths = resolve_paths(split)
    return nest((paths[key], value) for key, value in fields.items())


def _document(
    ts: str, module: str, metricset: str, period_ms: int | None, host: str, body: dict[str, Any],
    *, service: str | None = None, labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "event": {"dataset": DATASET, "module": module},
        "metricset": {"name": metricset} if period_ms is None else {"name": metricset, "period": period_ms},
        "host": {"name": host},
    }
    if service is not None:
        doc["service"] = {"name": service}
    if labels:
        doc["labels"] = labels
    doc.update(body)  # metric paths never start with the names above (RESERVED_ROOTS)
    return doc


def _period_ms(period: float | None) -> int | None:
    return None if period is None else int(round(period * 1000))


# --------------------------------------------------------------------------------------------
# Host metrics
# --------------------------------------------------------------------------------------------

# Block devices that are not disks: loop devices (snaps, images), RAM disks, compressed swap in RAM,
# network block devices. Partitions (sda1) are kept, as Metricbeat keeps them.
PSEUDO_DISKS: tuple[str, ...] = ("loop*", "ram*", "zram*", "nbd*")
# Interfaces that are not links of this host: container veth pairs (one per container, come and go),
# traffic-shaping ifb devices, dummies and the kernel's fallback tunnel devices.
PSEUDO_INTERFACES: tuple[str, ...] = (
    "veth*", "ifb*", "dummy*", "tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0", "ip6tnl0", "ip6gre0",
)
# Filesystem types skipped even when they sit on a device: read-only images that are always full.
IGNORED_FS_TYPES: frozenset[str] = frozenset({"squashfs", "iso9660", "udf", "erofs"})
_LOOPBACK_NAMES = frozenset({"lo", "lo0"})


def _pct(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


class HostMetrics:
    """Host metrics as Metricbeat ``system`` documents; one instance per agent, called every period.

    CPU percentages are computed between two calls from the instance's own
    previous ``psutil.cpu_times()`` sample (not psutil's module-global
    ``interval=None`` state, which any other caller in the process would
    disturb): the first call primes and returns no ``cpu`` document; so does a
    call that comes too soon after the previous one for the clock ticks to move.

    Skipped: disks and interfaces matching ``exclude_disks`` /
    ``exclude_interfaces`` (shell patterns), the loopback interface unless
    ``include_loopback``, and devices whose counters are all zero (present but
    never used, e.g. unused ``nbd``/``ifb`` devices). Filesystems are those
    psutil calls physical (``disk_partitions(all=False)``: no proc, tmpfs,
    cgroup, overlay, NFS...), minus read-only image types, mount points that
    are not directories (files bind-mounted into containers) and repeated
    mounts of one device (the shortest mount point is kept); ``/`` is always
    reported, whatever its type (a container's overlay root is the disk the
    agent's spool fills).

    A metricset that fails (``psutil.Error``, ``OSError``) is skipped for this
    call, counted in ``errors`` and logged; the others are still returned.
    """

    METRICSETS = ("cpu", "memory", "load", "diskio", "filesystem", "network")

    def __init__(
        self,
        *,
        period: float | None = 10.0,
        host_name: str | None = None,
        include_loopback: bool = False,
        exclude_disks: Sequence[str] = PSEUDO_DISKS,
        exclude_interfaces: Sequence[str] = PSEUDO_INTERFACES,
        metricsets: Sequence[str] = METRICSETS,
    ) -> None:
        unknown = set(metricsets) - set(self.METRICSETS)
        if unknown:
            raise ValueError(f"unknown metricsets {sorted(unknown)}; known: {', '.join(self.METRICSETS)}")
        self.period_ms = _period_ms(period)
        self.host_name = host_name or socket.gethostname()
        self.include_loopback = include_loopback
        self.exclude_disks = tuple(exclude_disks)
        self.exclude_interfaces = tuple(exclude_interfaces)
        self.metricsets = tuple(metricsets)
        self.errors: Counter[str] = Counter()  # failed metricset collections, by metricset
        self._prev_cpu: Any = None

    def collect(self, now: datetime) -> list[dict[str, Any]]:
        ts = iso_timestamp(now)
        docs = []
        for name in self.metricsets:
            try:
                rows = getattr(self, f"_{name}")()
            except (psutil.Error, OSError) as exc:
                self.errors[name] += 1
                log.warning("host metrics: %s failed: %s", name, exc)
                continue
            for fields in rows:
                docs.append(_document(ts, "system", name, self.period_ms, self.host_name, flatten_to_nested(fields)))
        return docs

    # Each metricset returns a list of flat field dicts (dotted names), one per document.

    def _cpu(self) -> list[dict[str, Any]]:
        now = psutil.cpu_times()
        prev, self._prev_cpu = self._prev_cpu, now
        if prev is None:
            return []
        # Counters can step back (iowait does on Linux); a negative delta is read as zero.
        delta = {f: max(0.0, getattr(now, f) - getattr(prev, f)) for f in now._fields}
        # Linux counts guest time inside user/nice already (psutil does the same subtraction).
        states = [f for f in now._fields if f not in ("guest", "guest_nice")]
        total = sum(delta[f] for f in states)
        if total <= 0:
            self._prev_cpu = prev  # no tick yet: measure from the older sample next time
            return []
        cores = psutil.cpu_count() or 1
        busy = max(0.0, total - delta.get("idle", 0.0) - delta.get("iowait", 0.0))  # Metricbeat's total
        fields: dict[str, Any] = {"system.cpu.cores": cores}
        for state, used in [("total", busy)] + [(f, delta[f]) for f in states]:
            fraction = used / total
            fields[f"system.cpu.{state}.pct"] = round(fraction * cores, 4)
            fields[f"system.cpu.{state}.norm.pct"] = round(fraction, 4)
        return [fields]

    def _memory(self) -> list[dict[str, Any]]:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        used = vm.total - vm.free  # Metricbeat: used includes page cache and buffers ...
        actual_used = vm.total - vm.available  # ... "actual" does not
        return [{
            "system.memory.total": vm.total,
            "system.memory.free": vm.free,
            "system.memory.used.bytes": used,
            "system.memory.used.pct": _pct(used, vm.total),
            "system.memory.actual.free": vm.available,
            "system.memory.actual.used.bytes": actual_used,
            "system.memory.actual.used.pct": _pct(actual_used, vm.total),
            "system.memory.swap.total": sw.total,
            "system.memory.swap.free": sw.free,
            "system.memory.swap.used.bytes": sw.used,
            "system.memory.swap.used.pct": _pct(sw.used, sw.total),
        }]

    def _load(self) -> list[dict[str, Any]]:
        one, five, fifteen = psutil.getloadavg()
        cores = psutil.cpu_count() or 1
        return [{
            "system.load.1": round(one, 4),
            "system.load.5": round(five, 4),
            "system.load.15": round(fifteen, 4),
            "system.load.norm.1": round(one / cores, 4),
            "system.load.norm.5": round(five / cores, 4),
            "system.load.norm.15": round(fifteen / cores, 4),
            "system.load.cores": cores,
        }]

    def _diskio(self) -> list[dict[str, Any]]:
        rows = []
        for name, c in sorted((psutil.disk_io_counters(perdisk=True) or {}).items()):
            if _matches(name, self.exclude_disks) or not any(c):
                continue
            fields: dict[str, Any] = {
                "system.diskio.name": name,
                "system.diskio.read.count": c.read_count,
                "system.diskio.write.count": c.write_count,
                "system.diskio.read.bytes": c.read_bytes,
                "system.diskio.write.bytes": c.write_bytes,
                "system.diskio.read.time": c.read_time,  # ms spent reading
                "system.diskio.write.time": c.write_time,
            }
            if hasattr(c, "busy_time"):  # Linux, FreeBSD: ms the device was busy
                fields["system.diskio.io.time"] = c.busy_time
            rows.append(fields)
        return rows

    def _filesystem(self) -> list[dict[str, Any]]:
        parts = list(psutil.disk_partitions(all=False))
        if not any(p.mountpoint == "/" for p in parts):
            parts += [p for p in psutil.disk_partitions(all=True) if p.mountpoint == "/"][:1]
        rows = []
        seen_devices: set[str] = set()
        for p in sorted(parts, key=lambda p: (len(p.mountpoint), p.mountpoint)):
            if p.mountpoint != "/" and (
                p.fstype in IGNORED_FS_TYPES or p.device in seen_devices or not os.path.isdir(p.mountpoint)
            ):
                continue
            try:
                usage = psutil.disk_usage(p.mountpoint)
            except OSError as exc:  # vanished or unreadable mount: skip it, keep the others
                self.errors["filesystem"] += 1
                log.warning("host metrics: filesystem %s: %s", p.mountpoint, exc)
                continue
            seen_devices.add(p.device)
            fields: dict[str, Any] = {
                "system.filesystem.device_name": p.device,
                "system.filesystem.type": p.fstype,
                "system.filesystem.mount_point": p.mountpoint,
                "system.filesystem.total": usage.total,
                "system.filesystem.free": usage.total - usage.used,  # including blocks reserved for root
                "system.filesystem.available": usage.free,  # what unprivileged users can still write
                "system.filesystem.used.bytes": usage.used,
                # As df computes it: used / (used + available), so a disk is 100% full when users can't write.
                "system.filesystem.used.pct": round(usage.percent / 100, 4),
            }
            if hasattr(os, "statvfs"):
                try:
                    st = os.statvfs(p.mountpoint)
                    fields["system.filesystem.files"] = st.f_files
                    fields["system.filesystem.free_files"] = st.f_ffree
                except OSError:
                    pass
            rows.append(fields)
        return rows

    def _network(self) -> list[dict[str, Any]]:
        try:
            flags = {name: getattr(s, "flags", "") for name, s in psutil.net_if_stats().items()}
        except (psutil.Error, OSError):
            flags = {}
        rows = []
        for name, c in sorted(psutil.net_io_counters(pernic=True).items()):
            loopback = name in _LOOPBACK_NAMES or "loopback" in flags.get(name, "").split(",")
            if (loopback and not self.include_loopback) or _matches(name, self.exclude_interfaces) or not any(c):
                continue
            rows.append({
                "system.network.name": name,
                "system.network.in.bytes": c.bytes_recv,
                "system.network.out.bytes": c.bytes_sent,
                "system.network.in.packets": c.packets_recv,
                "system.network.out.packets": c.packets_sent,
                "system.network.in.errors": c.errin,
                "system.network.out.errors": c.errout,
                "system.network.in.dropped": c.dropin,
                "system.network.out.dropped": c.dropout,
            })
        return rows


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------

# Top-level names a document already uses or the metrics-* mapping gives a meaning (ECS fields,
# metricset/metric, the host metrics' `system`). A Prometheus metric whose path would start with
# one of them is moved under `prometheus.metrics.` instead: `http_request_bytes_sum` at
# `http.request.bytes.sum` would make ECS's `http.request.bytes` (a long) an object, and
# `host_name` would overwrite `host.name`. Tests check this covers the template's top-level fields.
RESERVED_ROOTS: frozenset[str] = frozenset({
    "@timestamp", "message", "tags", "labels", "ecs", "agent", "host", "service", "event", "log", "error",
    "trace", "span", "transaction", "process", "http", "url", "user", "client", "source", "data_stream",
    "metricset", "metric", "system",
})
MOVED_PREFIX: Path = ("prometheus", "metrics")

# A single "_" between two other characters separates; runs of "_" and "_" at either end stay.
_SEPARATOR = re.compile(r"(?<=[^_])_(?=[^_])")

_DISTRIBUTIONS = frozenset({"histogram", "gaugehistogram", "summary"})
_CREATED_PARENTS = frozenset({"counter", "histogram", "gaugehistogram", "summary"})

ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"


def metric_path(name: str) -> Path:
    """A Prometheus metric name as field path components: ``jvm_gc_fullgc_time`` -> ``("jvm", "gc", "fullgc", "time")``.

    Only a single underscore between two other characters separates, so
    ``a__b`` stays one part and ``_up`` keeps its underscore: no part is ever
    empty, and two classic names never split alike. A dot (possible in
    Prometheus 3 UTF-8 names) also separates, because OpenSearch would read it
    as a path anyway. A path starting with a reserved top-level name (see
    :data:`RESERVED_ROOTS`) or with ``_``/``@`` (OpenSearch's metadata fields)
    goes under ``prometheus.metrics``. Paths that still meet (``host_name`` and
    ``prometheus_metrics_host_name``) are told apart by :func:`resolve_paths`.
    """
    parts: list[str] = []
    for chunk in name.split("."):
        parts.extend(part for part in _SEPARATOR.split(chunk) if part.strip())
    if not parts:
        parts = ["_"]
    if parts[0] in RESERVED_ROOTS or parts[0].startswith(("_", "@")):
        parts = [*MOVED_PREFIX, *parts]
    return tuple(parts)


def _label_name(name: str) -> str:
    return name.replace(".", "_").strip() or "_"


@dataclass
class ScrapeStats:
    """Counters of one scrape, or summed over many (``PrometheusScraper.stats``)."""

    scrapes: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # by ScrapeError.reason
    bytes: int = 0
    samples: int = 0  # samples read from the exposition
    documents: int = 0
    values: int = 0  # fields written into documents
    nonfinite_dropped: int = 0  # NaN, +Inf, -Inf: OpenSearch refuses them in numeric fields
    buckets_skipped: int = 0  # histogram buckets and summary quantiles (unless buckets=True)
    created_skipped: int = 0  # `_created` series: creation timestamps, not measurements
    duplicates_dropped: int = 0  # the same series twice in one exposition: the first one is kept
    paths_renamed: int = 0  # fields moved to `.value` because another metric needed their path as an object

    def add(self, other: ScrapeStats) -> None:
        for name in self.__dataclass_fields__:
            if name == "failures":
                self.failures.update(other.failures)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["failures"] = dict(self.failures)
        return out


class ExpositionError(ValueError):
    """The text is not a Prometheus (or OpenMetrics) exposition."""


class ScrapeError(Exception):
    """A scrape that produced no documents. ``reason`` is one of :data:`REASONS`; ``str()`` is one line."""

    REASONS = ("connection", "timeout", "http_status", "too_large", "parse")

    def __init__(self, reason: str, message: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown scrape error reason {reason!r}")
        line = " ".join(message.split())
        super().__init__(line if len(line) <= 300 else line[:297] + "...")
        self.reason = reason


def exposition_to_documents(
    text: str,
    *,
    timestamp: str,
    host_name: str,
    service: str | None = None,
    period_ms: int | None = None,
    openmetrics: bool = False,
    buckets: bool = False,
) -> tuple[list[dict[str, Any]], ScrapeStats]:
    """Parse an exposition (Prometheus text 0.0.4, or OpenMetrics) into one document per label set.

    What becomes a field, by family type (the field's name is the metric name
    read through :func:`metric_path`):

    - counter: its ``_total`` sample under the family's name (``tomcat_requestCount_total``
      -> ``tomcat.requestCount``); gauges and untyped samples under their own name.
    - histogram / summary: ``x_sum`` and ``x_count`` (``x.sum``, ``x.count``); buckets (``le``)
      and quantiles (``quantile``) only with ``buckets=True``, else skipped and counted: each
      would be a document of its own.
    - ``_created`` series (creation timestamps of counters, histograms, summaries): skipped.
    - NaN and infinities: dropped and counted. Sample timestamps are ignored (``@timestamp`` is
      the scrape's).

    Paths are resolved over the whole exposition, not per document, so a metric
    has one field name in every document of a scrape. Raises
    :class:`ExpositionError` on a malformed exposition.
    """
    stats = ScrapeStats()
    parser = _openmetrics_families if openmetrics else _text_families
    try:
        families = list(parser(text))
    except Exception as exc:  # ValueError mostly, but garbage can raise IndexError, KeyError, ...
        raise ExpositionError(f"not a Prometheus exposition: {type(exc).__name__}: {exc}") from exc
    created_names = {f"{f.name}_created" for f in families if f.type in _CREATED_PARENTS}

    series: dict[tuple[tuple[str, str], ...], dict[str, int | float]] = {}
    for family in families:
        for sample in family.samples:
            stats.samples += 1
            name = sample.name
            if name.endswith("_created") and (name in created_names or family.type in _CREATED_PARENTS):
                stats.created_skipped += 1
                continue
            if family.type in _DISTRIBUTIONS and not buckets and (
                name == f"{family.name}_bucket" or (family.type == "summary" and name == family.name)
            ):
                stats.buckets_skipped += 1
                continue
            if not math.isfinite(sample.value):
                stats.nonfinite_dropped += 1
                continue
            key = family.name if family.type == "counter" and name == f"{family.name}_total" else name
            labels = tuple(sorted((_label_name(k), str(v)) for k, v in sample.labels.items()))
            fields = series.setdefault(labels, {})
            if key in fields:
                stats.duplicates_dropped += 1
                continue
            fields[key] = _number(float(sample.value))

    wanted = {key: metric_path(key) for fields in series.values() for key in fields}
    paths = resolve_paths(wanted)
    stats.paths_renamed = sum(1 for key in wanted if paths[key] != wanted[key])

    docs = []
    for labels in sorted(series):
        fields = series[labels]
        body = nest((paths[key], value) for key, value in sorted(fields.items()))
        docs.append(_document(
            timestamp, "prometheus", "prometheus", period_ms, host_name, body, service=service, labels=dict(labels),
        ))
        stats.values += len(fields)
    stats.documents = len(docs)
    return docs, stats


class PrometheusScraper:
    """Scrapes one Prometheus endpoint per :meth:`scrape` call into ECS documents.

    One GET, no retry (the next period is the retry), a total ``timeout`` in
    seconds (connect, headers and body together), a body of at most
    ``max_bytes`` (after any content decoding; larger ones are refused as soon
    as they pass the limit, without reading the rest). Every failure raises
    :class:`ScrapeError` and is counted in ``stats.failures`` by reason;
    ``stats`` also sums what :func:`exposition_to_documents` counted.
    """

    def __init__(
        self,
        url: str,
        *,
        service: str | None = None,
        timeout: float = 10.0,
        max_bytes: int = 16 * 1024 * 1024,
        host_name: str | None = None,
        period: float | None = None,
        buckets: bool = False,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        parsed = urllib3.util.parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"expected an http:// or https:// URL with a host (got {url!r})")
        if timeout <= 0 or max_bytes <= 0:
            raise ValueError("timeout and max_bytes must be positive")
        self.url = url
        self.service = service
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.host_name = host_name or socket.gethostname()
        self.period_ms = _period_ms(period)
        self.buckets = buckets
        self.stats = ScrapeStats()
        self._pool = pool or urllib3.PoolManager(num_pools=1, maxsize=1)

    def scrape(self, now: datetime) -> list[dict[str, Any]]:
        timestamp = iso_timestamp(now)
        self.stats.scrapes += 1
        try:
            body, content_type = self._fetch()
            self.stats.bytes += len(body)
            openmetrics = content_type.split(";")[0].strip().lower() == "application/openmetrics-text"
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ScrapeError("parse", f"{self.url}: body is not UTF-8: {exc}") from exc
            try:
                docs, stats = exposition_to_documents(
                    text,
                    timestamp=timestamp,
                    host_name=self.host_name,
                    service=self.service,
                    period_ms=self.period_ms,
                    openmetrics=openmetrics,
                    buckets=self.buckets,
                )
            except ExpositionError as exc:
                raise ScrapeError("parse", f"{self.url}: {exc}") from exc
        except ScrapeError as exc:
            self.stats.failures[exc.reason] += 1
            raise
        self.stats.add(stats)
        return docs

    def _fetch(self) -> tuple[bytes, str]:
        deadline = time.monotonic() + self.timeout
        try:
            response = self._pool.request(
                "GET",
                self.url,
                headers={"Accept": ACCEPT, "User-Agent": "pang-agent"},
                preload_content=False,
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _transport_error(self.url, exc) from exc
        done = False
        try:
            if response.status != 200:
                raise ScrapeError("http_status", f"{self.url}: HTTP {response.status} {response.reason or ''}")
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                raise ScrapeError("too_large", f"{self.url}: body of {length} bytes is over the {self.max_bytes}-byte limit")
            # read1 returns what one socket read brings, so a server dripping bytes (each within the
            # socket timeout) still meets the deadline below; read(n) would wait for all n bytes.
            read = getattr(response, "read1", None) or response.read
            chunks, size = [], 0
            while chunk := read(64 * 1024):
                size += len(chunk)
                if size > self.max_bytes:
                    raise ScrapeError("too_large", f"{self.url}: body is over the {self.max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise ScrapeError("timeout", f"{self.url}: body not read within {self.timeout:g}s")
                chunks.append(chunk)
            done = True
            return b"".join(chunks), response.headers.get("Content-Type", "")
        except urllib3.exceptions.HTTPError as exc:
            raise _transport_error(self.url, exc) from exc
        finally:
            if not done:
                response.close()  # don't read (or reuse) the rest of a refused body
            response.release_conn()


def _transport_error(url: str, exc: urllib3.exceptions.HTTPError) -> ScrapeError:
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # type: ignore[assignment]
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a subclass of ConnectTimeoutError)
        return ScrapeError("connection", f"{url}: cannot connect: {_cause(exc)}")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return ScrapeError("timeout", f"{url}: timed out: {_cause(exc)}")
    return ScrapeError("connection", f"{url}: {type(exc).__name__}: {_cause(exc)}")


def _cause(exc: BaseException) -> str:
    # urllib3 messages repeat the connection object's repr; the innermost OS error says it plainly.
    inner: BaseException = exc
    seen = {id(exc)}
    while (nxt := inner.__cause__ or inner.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        inner = nxt
    return str(inner) or str(exc) or type(exc).__name__
