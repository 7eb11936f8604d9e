"""Crafted, seeded series of different shapes for the steady-state model (issue 9), with their labelled windows.

Each shape is a function ``(seed) -> Shape``: per-point values on a regular
grid (UTC), the labelled anomaly windows injected into it, and the model
settings the shape is about (time zone, holidays). The tests use them, and
``python -m tests.steady_shapes DIR`` writes them as the CSV files and labels
JSON that ``pang steady backtest --series DIR --labels DIR/labels.json``
reads (the README's worked example).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np


@dataclass
class Shape:
    name: str
    step: int  # minutes
    times: list[datetime]
    values: list[float | None]  # None: a gap (the row is left out of the CSV)
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    timezone: str = "UTC"
    holidays: tuple[str, ...] = ()

    def series(self) -> dict[datetime, float]:
        return {t: v for t, v in zip(self.times, self.values) if v is not None}

    def csv_text(self, fmt: str = "iso") -> str:
        lines = ["timestamp,value"]
        for t, v in zip(self.times, self.values):
            if v is None:
                continue
            ts = t.strftime("%Y-%m-%dT%H:%M:%SZ") if fmt == "iso" else t.strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"{ts},{int(v) if float(v).is_integer() else v}")
        return "\n".join(lines) + "\n"

    def labels_json(self) -> list[list[str]]:
        return [[a.strftime("%Y-%m-%dT%H:%M:%SZ"), b.strftime("%Y-%m-%dT%H:%M:%SZ")] for a, b in self.windows]


def _grid(start: datetime, weeks: float, step: int) -> list[datetime]:
    n = int(weeks * 7 * 1440 // step)
    return [start + timedelta(minutes=step * i) for i in range(n)]


def _daily(local: datetime) -> float:
    """A shop's day: quiet at night, a morning rise to a 09:00-18:00 plateau with a peak at 09:00, an evening fade."""
    h = local.hour + local.minute / 60
    night = 0.05
    if h < 6:
        return night
    if h < 9:
        return night + (1 - night) * ((h - 6) / 3) ** 2
    if h < 10:
        return 1.0 + 0.6 * math.exp(-((h - 9.25) ** 2) / 0.1)  # the 09:00 peak
    if h < 18:
        return 1.0
    if h < 23:
        return 1.0 - (1 - night) * (h - 18) / 5
    return night


def _poisson_drop(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    return rng.poisson(np.maximum(mean, 0.0)).astype(float)


def weekly_holidays(seed: int = 1) -> Shape:
    """15-minute counts, Europe/Berlin, weekdays busy and weekends quiet; German public holidays look like Sundays.

    13 weeks from 2 March 2026 (Good Friday, Easter Monday, 1 May, Ascension
    and Whit Monday inside); two labelled drops (40 % for 2 hours).
    """
    rng = np.random.default_rng(seed)
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 2, tzinfo=tz).astimezone(UTC)
    times = _grid(start, 13, 15)
    hol = {date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 25)}
    mean = []
    for t in times:
        loc = t.astimezone(tz)
        day_kind = 0.35 if loc.weekday() == 6 or loc.date() in hol else 0.6 if loc.weekday() == 5 else 1.0
        mean.append(600.0 * _daily(loc) * day_kind + 20)
    m = np.array(mean)
    windows = []
    for d, hour in ((date(2026, 5, 6), 11), (date(2026, 5, 20), 14)):
        a = datetime(d.year, d.month, d.day, hour, tzinfo=tz).astimezone(UTC)
        b = a + timedelta(hours=2)
        windows.append((a, b))
        for i, t in enumerate(times):
            if a <= t < b:
                m[i] *= 0.6
    vals = _poisson_drop(rng, m)
    return Shape("weekly_holidays", 15, times, [float(v) for v in vals], windows, "Europe/Berlin", ("DE",))


def no_cycle(seed: int = 2) -> Shape:
    """10-minute counts with no daily or weekly cycle: a level that wanders, then triples for good in week 5.

    8 weeks from 5 January 2026; two labelled drops (to 40 % for 2 hours) after the step.
    """
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    times = _grid(start, 8, 10)
    n = len(times)
    walk = np.exp(np.cumsum(rng.normal(0, 0.004, n)))  # a slow wander, no cycle
    level = 300.0 * walk / walk[0]
    shift = start + timedelta(weeks=4, days=3, hours=5)
    m = np.where(np.array([t >= shift for t in times]), level * 3.0, level)
    windows = []
    for day, hour in ((40, 10), (50, 16)):
        a = start + timedelta(days=day, hours=hour)
        b = a + timedelta(hours=2)
        windows.append((a, b))
        m = np.where(np.array([a <= t < b for t in times]), m * 0.4, m)
    vals = _poisson_drop(rng, m)
    return Shape("no_cycle", 10, times, [float(v) for v in vals], windows)


def sparse_night(seed: int = 3) -> Shape:
    """1-minute counts, Europe/Berlin: 0, 1 or 2 a minute at night, ~25 a minute by day; 5 weeks.

    One labelled outage (no orders at all for 20 minutes at 10:00) in the last week; nights carry no label.
    """
    rng = np.random.default_rng(seed)
    tz = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 2, 2, tzinfo=tz).astimezone(UTC)
    times = _grid(start, 5, 1)
    m = np.array([25.0 * _daily(t.astimezone(tz)) + 0.3 for t in times])  # night: ~1.5 a minute... ~0.3 at the trough
    a = datetime(2026, 3, 4, 10, 0, tzinfo=tz).astimezone(UTC)
    b = a + timedelta(minutes=20)
    idx = np.array([a <= t < b for t in times])
    m[idx] = 0.0
    vals = _poisson_drop(rng, m)
    return Shape("sparse_night", 1, times, [float(v) for v in vals], [(a, b)], "Europe/Berlin")


SHAPES: dict[str, Callable[..., Shape]] = {"weekly_holidays": weekly_holidays, "no_cycle": no_cycle, "sparse_night": sparse_night}


def write(directory: Path) -> list[Path]:
    """Write every shape as ``<name>.csv`` and their windows as ``labels.json`` ({file: [[start, end], ...]})."""
    directory.mkdir(parents=True, exist_ok=True)
    labels: dict[str, list[list[str]]] = {}
    out = []
    for name, make in SHAPES.items():
        shape = make()
        path = directory / f"{name}.csv"
        path.write_text(shape.csv_text(), encoding="utf-8")
        labels[path.name] = shape.labels_json()
        out.append(path)
    (directory / "labels.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "shapes")
    for p in write(target):
        print(p)
    print(target / "labels.json")
