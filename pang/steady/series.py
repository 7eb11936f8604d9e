"""Users' series and incident lists from files: CSV/JSON readers, step detection, resampling onto the step.

A series file is CSV with a header line and ``timestamp,value`` rows (columns
named ``timestamp``/``time``/``ts`` and ``value``/``count``, else the first
two), timestamps in ISO 8601 or ``YYYY-MM-DD HH:MM:SS``, sorted. Naive times
are in ``timezone`` (UTC unless the caller says otherwise). An empty, ``nan``
or ``null`` value is *missing* (no data), never zero.

The step is the median spacing of the rows, snapped to one of
:data:`pang.steady.model.STEPS` (1 minute .. 1 hour, divisors of an hour, so a
DST shift is whole points). Each row is placed on the step's grid (the
nearest grid point, the grid starting at the first row); two rows on one point
are added up (counts). Points without a row stay *gaps*: missing, not zero.

Labelled anomaly windows ``[start, end)`` come as JSON (a list of
``[start, end]`` pairs, or an object ``{file name: [[start, end], ...]}`` for a
directory of series, as public benchmarks ship them) or CSV (``start,end``,
optionally with a ``file`` column).

Every reading error is a :class:`SeriesError` whose text is one line,
``FILE:LINE: what is wrong`` (user text quoted and cut short).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pang.steady.backtest import Label
from pang.steady.model import STEPS

__all__ = [
    "MAX_ROWS",
    "Series",
    "SeriesError",
    "labels_for",
    "parse_time",
    "read_labels",
    "read_series",
    "series_files",
]

MAX_ROWS = 2_000_000  # about 4 years of minutes
MAX_FILES = 1000
_TIME_COLUMNS = ("timestamp", "time", "ts", "date", "datetime")
_VALUE_COLUMNS = ("value", "count", "values")
_MISSING = {"", "nan", "null", "none", "na", "n/a"}


class SeriesError(ValueError):
    """A series or labels file cannot be used; ``str(err)`` is ``FILE:LINE: ...`` for a person."""


def _q(text: str, n: int = 40) -> str:
    """User text quoted for a message: escaped, cut short."""
    return repr(text[:n] + ("..." if len(text) > n else ""))


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise SeriesError(f"unknown time zone {_q(str(name))}; expected an IANA name such as Europe/Berlin or UTC") from None


def parse_time(text: str, tz: ZoneInfo | None = None) -> datetime:
    """ISO 8601 or ``YYYY-MM-DD HH:MM[:SS[.ffffff]]`` as an aware UTC time; naive times are in ``tz`` (default UTC).

    A naive time that does not exist in ``tz`` (the hour skipped by DST) is an
    error; one that exists twice is the first (summer time).
    """
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if t.tzinfo is None:
        zone = tz or ZoneInfo("UTC")
        t = t.replace(tzinfo=zone)
        back = t.astimezone(UTC).astimezone(zone)
        if back.replace(tzinfo=None) != t.replace(tzinfo=None):
            raise ValueError(f"{text.strip()} does not exist in {zone.key} (a daylight-saving gap)")
    return t.astimezone(UTC)


@dataclass
class Series:
    """One series file: its rows as read, and its values on the step's grid.

    ``rows`` keep the file's order (one per data line, ``value`` None when
    missing); ``row_point[i]`` is the grid point row ``i`` was placed on;
    ``points`` maps grid points (UTC, aligned to the step) to the sum of their rows.
    """

    name: str
    times: list[datetime]
    values: list[float | None]
    step: int  # minutes
    row_point: list[datetime]
    points: dict[datetime, float]
    lines: list[int] = field(default_factory=list)  # the file line of each row
    texts: list[str] = field(default_factory=list)  # each row's timestamp as written (echoed by --alarms-out)
    merged: int = 0  # rows that landed on a point another row had already taken

    @property
    def start(self) -> datetime:
        return min(self.row_point)

    @property
    def end(self) -> datetime:
        """The end of the last point (exclusive)."""
        return max(self.row_point) + timedelta(minutes=self.step)

    @property
    def is_count(self) -> bool:
        """Non-negative whole numbers: counts (a counting-noise floor applies); anything else: plain values."""
        return all(v is None or (v >= 0 and float(v).is_integer()) for v in self.values)

    @property
    def gaps(self) -> int:
        """Grid points between the first and the last row without any row."""
        total = int((self.end - self.start) / timedelta(minutes=self.step))
        return total - len(set(self.row_point))


def read_series(path: Path, *, timezone: str | None = None, max_rows: int = MAX_ROWS) -> Series:
    """Read a ``timestamp,value`` CSV file; :class:`SeriesError` with the line number on bad input."""
    name = str(path)
    tz = _zone(timezone)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SeriesError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    times: list[datetime] = []
    values: list[float | None] = []
    lines: list[int] = []
    texts: list[str] = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            while header is not None and not "".join(header).strip():
                header = next(reader, None)
            if header is None:
                raise SeriesError(f"{name}:1: the file is empty; expected a header line timestamp,value and rows")
            t_col, v_col = _columns(name, reader.line_num, header, tz)
            for row in reader:
                line = reader.line_num
                if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                    continue
                if len(row) <= max(t_col, v_col):
                    raise SeriesError(f"{name}:{line}: expected {max(t_col, v_col) + 1} columns (timestamp,value), got {len(row)}")
                raw_t, raw_v = row[t_col].strip(), row[v_col].strip()
                try:
                    t = parse_time(raw_t, tz)
                except ValueError as exc:
                    hint = str(exc) if "daylight" in str(exc) else "use ISO 8601 or YYYY-MM-DD HH:MM:SS"
                    raise SeriesError(f"{name}:{line}: {_q(raw_t)} is not a timestamp ({hint})") from None
                if times and t <= times[-1]:
                    what = "repeats" if t == times[-1] else "is before"
                    raise SeriesError(f"{name}:{line}: timestamp {_q(raw_t)} {what} the previous row's; sort the file by time, one row per time")
                values.append(_value(name, line, raw_v))
                times.append(t)
                lines.append(line)
                texts.append(raw_t[:64])
                if len(times) > max_rows:
                    raise SeriesError(f"{name}:{line}: more than {max_rows} rows; split the file")
        except csv.Error as exc:
            raise SeriesError(f"{name}:{reader.line_num}: not readable as CSV ({exc})") from None
        except UnicodeDecodeError:
            raise SeriesError(f"{name}: not UTF-8 text") from None
    if len(times) < 3:
        raise SeriesError(f"{name}: {len(times)} data rows; a backtest needs a series (at least 3 rows, weeks for a cycle)")
    step = detect_step(name, times)
    row_point, points, merged = resample(times, values, step)
    return Series(name, times, values, step, row_point, points, lines, texts, merged)


def _columns(name: str, line: int, header: Sequence[str], tz: ZoneInfo) -> tuple[int, int]:
    cells = [h.strip().lower() for h in header]
    try:
        parse_time(header[0], tz)
        is_time = True
    except ValueError:
        is_time = False
    if is_time:
        raise SeriesError(f"{name}:{line}: expected a header line (timestamp,value) before the rows, got {_q(','.join(header))}")
    if len(cells) < 2:
        raise SeriesError(f"{name}:{line}: the header names {len(cells)} column; expected timestamp,value")
    t_col = next((i for i, c in enumerate(cells) if c in _TIME_COLUMNS), 0)
    v_col = next((i for i, c in enumerate(cells) if c in _VALUE_COLUMNS), 1 if t_col == 0 else 0)
    if t_col == v_col:
        raise SeriesError(f"{name}:{line}: cannot tell the timestamp column from the value column in {_q(','.join(header))}")
    return t_col, v_col


def _value(name: str, line: int, raw: str) -> float | None:
    if raw.lower() in _MISSING:
        return None
    try:
        v = float(raw)
    except ValueError:
        raise SeriesError(f"{name}:{line}: value {_q(raw)} is not a number (leave it empty for no data)") from None
    if math.isinf(v):
        raise SeriesError(f"{name}:{line}: value {_q(raw)} is not a finite number")
    return None if math.isnan(v) else v


def detect_step(name: str, times: Sequence[datetime]) -> int:
    """The median spacing of the rows, snapped to the nearest allowed step (log scale), in minutes."""
    gaps = [(b - a).total_seconds() / 60.0 for a, b in zip(times, times[1:])]
    med = statistics.median(gaps)
    if med < 0.75 or med > 90:
        have = f"{med * 60:.0f} seconds" if med < 1 else f"{med:.0f} minutes"
        raise SeriesError(f"{name}: the rows are {have} apart (median); pang needs a step between 1 minute and 1 hour")
    return min(STEPS, key=lambda s: abs(math.log(s / med)))


def resample(times: Sequence[datetime], values: Sequence[float | None], step: int) -> tuple[list[datetime], dict[datetime, float], int]:
    """Place each row on the nearest point of a ``step``-minute grid starting at the first row's point.

    Returns each row's point, the points' values (rows on one point added up;
    missing values add nothing; a point with only missing rows is absent) and
    how many rows shared a point with an earlier one.
    """
    size = step * 60
    t0 = int(times[0].timestamp())
    origin = t0 - t0 % size  # the first row's point, aligned as the model aligns points
    phase = t0 - origin
    row_point: list[datetime] = []
    points: dict[datetime, float] = {}
    seen: set[int] = set()
    merged = 0
    for t, v in zip(times, values):
        k = round((int(t.timestamp()) - phase - origin) / size)
        if k in seen:
            merged += 1
        seen.add(k)
        p = datetime.fromtimestamp(origin + k * size, UTC)
        row_point.append(p)
        if v is not None:
            points[p] = points.get(p, 0.0) + v
    return row_point, points, merged


def series_files(path: Path) -> list[Path]:
    """A file, or the ``*.csv`` files of a directory (sorted, recursively)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.csv") if p.is_file())
        if not files:
            raise SeriesError(f"{path}: no .csv files in this directory")
        if len(files) > MAX_FILES:
            raise SeriesError(f"{path}: more than {MAX_FILES} .csv files; backtest a smaller directory")
        return files
    if not path.exists():
        raise SeriesError(f"{path}: no such file or directory")
    return [path]


# --------------------------------------------------------------------------- labels


LabelSet = dict[str | None, list[Label]]  # file key (None: every file) -> windows


def read_labels(path: Path, *, timezone: str | None = None) -> LabelSet:
    """Labelled windows from JSON or CSV (by content: JSON starts with ``[`` or ``{``)."""
    name = str(path)
    tz = _zone(timezone)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SeriesError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SeriesError(f"{name}: not UTF-8 text") from None
    if text.lstrip()[:1] in ("[", "{"):
        return _labels_json(name, text, tz)
    return _labels_csv(name, text, tz)


def _window(name: str, where: str, pair: object, tz: ZoneInfo, ident: str) -> Label:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
        raise SeriesError(f"{name}:{where}: expected a [start, end] pair of times, got {_q(json.dumps(pair)[:80])}")
    a, b = pair
    try:
        start, end = parse_time(a, tz), parse_time(b, tz)
    except ValueError:
        raise SeriesError(f"{name}:{where}: {_q(a)} or {_q(b)} is not a time (ISO 8601 or YYYY-MM-DD HH:MM:SS)") from None
    if not start < end:
        raise SeriesError(f"{name}:{where}: start {_q(a)} is not before end {_q(b)}")
    return Label(start, end, ident)


def _json_line(text: str, needle_index: int) -> int:
    return text.count("\n", 0, max(0, needle_index)) + 1


def _labels_json(name: str, text: str, tz: ZoneInfo) -> LabelSet:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeriesError(f"{name}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    groups: dict[str | None, object] = {None: data} if isinstance(data, list) else dict(data) if isinstance(data, dict) else {}
    if not groups:
        raise SeriesError(f"{name}:1: expected a list of [start, end] pairs, or an object {{file: [[start, end], ...]}}")
    out: LabelSet = {}
    for key, pairs in groups.items():
        if not isinstance(pairs, list):
            raise SeriesError(f"{name}: {_q(str(key))}: expected a list of [start, end] pairs")
        found: list[Label] = []
        for i, pair in enumerate(pairs, 1):
            # a line number for the message: where the i-th pair's first time sits in the text
            at = text.find(json.dumps(pair[0])[1:-1]) if isinstance(pair, list) and pair and isinstance(pair[0], str) else -1
            where = str(_json_line(text, at)) if at >= 0 else f"window {i}"
            found.append(_window(name, where, pair, tz, f"window-{i}" if key is None else f"{key}#{i}"))
        out[None if key is None else str(key)] = found
    return out


def _labels_csv(name: str, text: str, tz: ZoneInfo) -> LabelSet:
    out: LabelSet = {}
    reader = csv.reader(text.splitlines())
    cols: tuple[int | None, int, int] = (None, 0, 1)
    try:
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in row]
            low = [c.lower() for c in cells]
            if "start" in low and "end" in low:
                cols = (low.index("file") if "file" in low else None, low.index("start"), low.index("end"))
                continue
            f_col, s_col, e_col = cols
            if len(cells) <= max(c for c in cols if c is not None):
                raise SeriesError(f"{name}:{line}: expected start,end (or file,start,end with a header)")
            key = cells[f_col] if f_col is not None else None
            lb = _window(name, str(line), [cells[s_col], cells[e_col]], tz, f"line-{line}")
            out.setdefault(key, []).append(lb)
    except csv.Error as exc:
        raise SeriesError(f"{name}:{reader.line_num}: not readable as CSV ({exc})") from None
    return out


def labels_for(labels: Mapping[str | None, list[Label]], path: Path, root: Path | None = None) -> list[Label]:
    """The windows of one series file: the shared ones plus those keyed by its path.

    A key matches the file's path relative to ``root`` (the directory given),
    its name, or a longer path ending in it (``realKnownCause/nyc_taxi.csv``
    matches ``nyc_taxi.csv`` when the directory given is ``realKnownCause``).
    """
    rel = path.name
    if root is not None and root.is_dir():
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            pass
    out = list(labels.get(None, []))
    for key, windows in labels.items():
        if key is None:
            continue
        k = key.replace("\\", "/").removeprefix("./")
        if k in (rel, str(path), path.as_posix()) or k.endswith("/" + rel) or rel.endswith("/" + k):
            out.extend(windows)
    return out
