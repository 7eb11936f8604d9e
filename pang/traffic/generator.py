"""Writing the shop's traffic to disk: a backfill as fast as the disk goes, then live in real time.

Layout under the logs root::

    <root>/<service>/<pod>.log          one file per pod, e.g. gateway/gateway-7c9f4-qz2lx.log
    <root>/<service>/<pod>.log.1        the previous file after a size rotation (renamed)
    <root>/_ground_truth/incidents.jsonl   one line per incident: id, kind, services, start, end, effects, versions
    <root>/_ground_truth/events.jsonl      deployment events as ECS documents for the events-* index
    <root>/_ground_truth/state.json        the seed and model, and how far the logs are written

pang's agent run with ``--paths '<root>/*/*.log'`` names each document's
service after its folder; the ground truth sits outside that glob.

The minute is the unit: every minute's lines are a pure function of the seed
(:func:`pang.traffic.flows.minute_lines`), so the state file only needs the
instant the logs are written through. Running again on the same root continues
there (no line is written twice), whether the last run was a backfill or a live
run stopped mid-minute; a gap (the generator was off) stays a gap unless a
backfill reaches back over it. Ground truth is appended as the writing reaches
it, and never twice.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from pang.traffic.cycles import SIGNALS, RateModel, floor_minute, minutes
from pang.traffic.flows import Line, Volume, minute_lines, pod_names
from pang.traffic.incidents import Incident, Schedule, inject, parse_iso

__all__ = ["Generator", "Stats", "TrafficError", "parse_span"]

GROUND_TRUTH = "_ground_truth"
_MINUTE = timedelta(minutes=1)


class TrafficError(Exception):
    """Something a person must fix (a root written with another seed, a bad duration); ``str()`` says what."""


def parse_span(text: str) -> timedelta:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"3d"``, ``"2w"`` as a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    number, unit = value[:-1], value[-1:]
    if unit not in units or not number.isdigit() or len(number) > 7 or int(number) == 0:
        raise TrafficError(f"{text[:40]!r} is not a duration; use a number and a unit, e.g. 90s, 10m, 2h, 3d or 2w")
    return timedelta(seconds=int(number) * units[unit])


@dataclass
class Stats:
    """What a run wrote."""

    minutes: int = 0
    lines: int = 0
    bytes: int = 0
    business: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    incidents: int = 0
    events: int = 0

    def count(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.business[k] += v


class _Files:
    """Open log files per (service, pod), appended to and rotated by size (``x.log`` -> ``x.log.1``)."""

    def __init__(self, root: Path, pods: dict[str, list[str]], max_bytes: int) -> None:
        self.root = root
        self.pods = pods
        self.max_bytes = max_bytes
        self._open: dict[tuple[str, int], tuple[BinaryIO, Path]] = {}
        self._sizes: dict[tuple[str, int], int] = {}

    def path(self, service: str, pod: int) -> Path:
        return self.root / service / f"{self.pods[service][pod]}.log"

    def write(self, lines: Iterable[Line]) -> int:
        chunks: dict[tuple[str, int], list[str]] = {}
        for line in lines:
            chunks.setdefault((line.service, line.pod), []).append(line.text)
        written = 0
        for key, texts in chunks.items():
            data = ("\n".join(texts) + "\n").encode("utf-8")
            fh = self._handle(key)
            fh.write(data)
            written += len(data)
            self._sizes[key] += len(data)
            if self._sizes[key] >= self.max_bytes:
                self._rotate(key)
        return written

    def flush(self) -> None:
        for fh, _ in self._open.values():
            fh.flush()

    def close(self) -> None:
        for fh, _ in self._open.values():
            fh.close()
        self._open.clear()

    def _handle(self, key: tuple[str, int]) -> BinaryIO:
        entry = self._open.get(key)
        if entry is None:
            path = self.path(*key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "ab")  # noqa: SIM115 - kept open across minutes, closed in close()
            entry = self._open[key] = (fh, path)
            self._sizes[key] = fh.tell()
        return entry[0]

    def _rotate(self, key: tuple[str, int]) -> None:
        fh, path = self._open.pop(key)
        fh.close()
        os.replace(path, path.with_name(path.name + ".1"))  # the previous .1 goes: one rotated file is kept
        self._sizes[key] = 0


class _GroundTruth:
    """The ``_ground_truth`` folder: appended records (each id once) and the state file."""

    def __init__(self, root: Path, identity: dict[str, Any]) -> None:
        self.dir = root / GROUND_TRUTH
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self.incidents_path = self.dir / "incidents.jsonl"
        self.events_path = self.dir / "events.jsonl"
        self.identity = identity
        self.state: dict[str, Any] = {}
        if self.state_path.exists():
            try:
                self.state = orjson.loads(self.state_path.read_bytes())
            except orjson.JSONDecodeError:
                raise TrafficError(f"{self.state_path} is not valid JSON; remove the folder {root} to start afresh") from None
            for key, value in identity.items():
                if self.state.get(key) != value:
                    raise TrafficError(
                        f"{root} was written with {key}={self.state.get(key)!r}, not {value!r}: "
                        "use the same settings, or another --root")
        self.incidents: dict[str, Incident] = {}
        for rec in self._read(self.incidents_path):
            self.incidents[rec["id"]] = Incident.from_record(rec)
        self.event_ids = {rec.get("event", {}).get("id") for rec in self._read(self.events_path)}

    @staticmethod
    def _read(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        out = []
        for raw in path.read_bytes().splitlines():
            if raw.strip():
                try:
                    out.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue  # a line cut by a crash: the rest is still good
        return out

    @property
    def written_through(self) -> datetime | None:
        value = self.state.get("written_through")
        return parse_iso(value) if value else None

    def save(self, written_through: datetime) -> None:
        # microseconds: a live run stops between lines, and a resume must start right after the last one
        self.state = {**self.identity, "written_through": written_through.astimezone(UTC).isoformat()}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
        tmp.replace(self.state_path)

    def incident(self, inc: Incident) -> bool:
        if inc.id in self.incidents:
            return False
        self.incidents[inc.id] = inc
        with open(self.incidents_path, "ab") as fh:
            fh.write(orjson.dumps(inc.record()) + b"\n")
        return True

    def events(self, docs: list[dict[str, Any]]) -> int:
        new = [d for d in docs if d["event"]["id"] not in self.event_ids]
        if new:
            with open(self.events_path, "ab") as fh:
                for d in new:
                    fh.write(orjson.dumps(d) + b"\n")
                    self.event_ids.add(d["event"]["id"])
        return len(new)


class Generator:
    """Writes the traffic of a seed under a logs root; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int,
        model: RateModel | None = None,
        volume: Volume | None = None,
        rotate_bytes: int = 50 * 2**20,
    ) -> None:
        if rotate_bytes < 4096:
            raise TrafficError("rotate size must be at least 4 KiB")
        self.root = Path(root)
        self.seed = seed
        self.model = model or RateModel()
        self.volume = volume or Volume()
        identity = {"seed": seed, "timezone": self.model.timezone,
                    "peak_orders_per_minute": self.model.peak_orders_per_minute}
        try:
            self.truth = _GroundTruth(self.root, identity)
        except OSError as exc:
            raise TrafficError(f"cannot write under {self.root}: {exc.strerror or exc}") from None
        injected = [i for i in self.truth.incidents.values() if i.injected]
        self.schedule = Schedule(seed, self.model, injected)
        self.files = _Files(self.root, pod_names(seed), rotate_bytes)
        self.stats = Stats()
        self.injected: list[Incident] = []  # by this run
        self.last_counts: dict[str, int] = {}  # business counts of the minute generated last
        self._requests: deque[dict[str, Any]] = deque()

    @property
    def written_through(self) -> datetime | None:
        return self.truth.written_through

    def backfill(self, start: datetime, end: datetime, progress: Callable[[int, int], None] | None = None) -> Stats:
        """Write every whole minute in ``[start, end)`` not written yet, as fast as possible."""
        start, end = floor_minute(start), floor_minute(end)
        done_until = self.truth.written_through
        total = max(0, int((end - start) / _MINUTE))
        for n, minute in enumerate(minutes(start, end), 1):
            skip = None
            if done_until is not None and minute < done_until:
                if minute + _MINUTE <= done_until:
                    continue
                skip = (done_until - minute).total_seconds()  # resume inside a minute a live run stopped in
            self._write_minute(minute, skip_through=skip)
            self.truth.save(minute + _MINUTE)
            if progress is not None:
                progress(n, total)
        self.files.flush()
        return self.stats

    def live(
        self,
        *,
        until: datetime | None = None,
        stop: threading.Event | None = None,
        tick: float = 0.25,
        clock: Callable[[], float] = time.time,
        on_tick: Callable[[datetime, Stats], None] | None = None,
        catch_up: bool = False,
    ) -> Stats:
        """Write each line when its time comes, flushing every ``tick`` seconds, until ``until`` or ``stop``.

        Minutes between the last written one and now stay a gap, unless
        ``catch_up``: then they are written first (a backfill that just ended
        a minute ago leaves no hole before the live run).
        """
        stop = stop or threading.Event()
        now = self._now(clock, until)
        if catch_up and self.truth.written_through is not None:
            self.backfill(self.truth.written_through, now)
        through = self.truth.written_through
        if through is None or through < floor_minute(now):
            through = floor_minute(now)
        minute: datetime | None = None
        pending: list[Line] = []
        cursor = 0
        while True:
            self._take_injections(now)
            current = floor_minute(now)
            if minute is not None and current > minute:  # finish the minute that ended
                self._write(pending[cursor:])
                pending, cursor = [], 0
                self.truth.save(minute + _MINUTE)
                through = max(through, minute + _MINUTE)
                minute = None
            if minute is None and (until is None or current < until):
                minute = current
                pending = self._lines(minute)
                skip = (through - minute).total_seconds() if through > minute else -1.0
                cursor = 0
                while cursor < len(pending) and pending[cursor].off <= skip:
                    cursor += 1
            if minute is not None:
                elapsed = (now - minute).total_seconds()
                end = cursor
                while end < len(pending) and pending[end].off <= elapsed:
                    end += 1
                self._write(pending[cursor:end])
                cursor = end
                self.files.flush()
                if now > through:
                    self.truth.save(now)
            if on_tick is not None:
                on_tick(now, self.stats)
            if (until is not None and now >= until) or stop.is_set():
                break
            stop.wait(max(0.0, tick - (clock() % tick)))
            now = self._now(clock, until)
        self.files.flush()
        return self.stats

    def request_injection(self, **options: Any) -> None:
        """Ask a running :meth:`live` to inject an incident at its next tick (safe from a signal handler)."""
        self._requests.append(options)

    def inject(self, *, minutes: int = 10, drop: float = 0.4, pair: tuple[str, str] | None = None,
               now: datetime | None = None) -> Incident:
        """Add a bad deploy starting at the next whole minute after ``now``; recorded at once."""
        now = now or datetime.now(UTC)
        inc = inject(now, minutes=minutes, drop=drop, pair=pair, schedule=self.schedule)
        self.schedule.add(inc)
        if self.truth.incident(inc):
            self.stats.incidents += 1
        self.injected.append(inc)
        return inc

    def close(self) -> None:
        self.files.close()

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _now(clock: Callable[[], float], until: datetime | None) -> datetime:
        now = datetime.fromtimestamp(clock(), UTC)
        return until if until is not None and now > until else now

    def _take_injections(self, now: datetime) -> None:
        while self._requests:
            self.inject(now=now, **self._requests.popleft())

    def _lines(self, minute: datetime) -> list[Line]:
        lines, counts = minute_lines(minute, self.seed, self.model, self.schedule, self.volume)
        self.stats.minutes += 1
        self.stats.count(counts)
        self.last_counts = counts
        active = self.schedule.active(minute)
        if active is not None and self.truth.incident(active):
            self.stats.incidents += 1
        self.stats.events += self.truth.events(self.schedule.events(minute, minute + _MINUTE))
        return lines

    def _write(self, lines: list[Line]) -> None:
        if lines:
            nbytes = self.files.write(lines)
            self.stats.lines += len(lines)
            self.stats.bytes += nbytes

    def _write_minute(self, minute: datetime, skip_through: float | None = None) -> None:
        lines = self._lines(minute)
        if skip_through is not None:
            lines = [line for line in lines if line.off > skip_through]
        self._write(lines)
