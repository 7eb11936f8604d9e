"""The business's rates per minute: daily and weekly cycles, calendar peaks, and seeded counts.

This is the ground truth the steady-state model is judged against, so it is
pure and deterministic: :meth:`RateModel.expected` is a smooth function of the
minute's *local* time in the business's time zone, and :func:`minute_counts`
draws the count of a minute from the seed and the minute alone. The same minute
therefore has the same count whether it is written as log lines during a
backfill, as a rollup for months of history, or live.

The shape, in local time (``timezone``, DST included: "23:59" is the wall
clock's 23:59 on every day, the 23- and 25-hour days too):

- a daily curve: quiet night (about 6 % of the peak at 04:00), a midday bump and
  the day's peak in the evening (20:00); weekends wake up later and shop more at
  midday; each weekday has its level (Sunday highest, Saturday lowest);
- a mild yearly season (December about 10 % above the mean, June below), so
  the "recent level" a model scales by moves slowly;
- calendar peaks the business knows: every day at 23:59 (a smaller spike, the
  daily deals end), every Sunday at 23:59 (a bigger one, the weekly deals end),
  and the 1st of each month at 00:00 (the biggest: the monthly sale opens; it
  decays over five minutes).

Payments approved are ``payment_ratio`` of orders, failed payments
``failure_ratio`` of orders, on the same cycles.

Counts are Poisson around the expected value, overdispersed by ``dispersion``
(variance = dispersion x mean, through a gamma-mixed Poisson), because real
counts are noisier than Poisson. The samplers are written on the standard
library's ``random`` (Mersenne Twister seeded per minute): numpy's generators
cost more to seed per minute than the draw itself, and the counts must be
reproducible per minute, not per run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_TIMEZONE",
    "SIGNALS",
    "RateModel",
    "floor_minute",
    "minute_counts",
    "minutes",
    "poisson",
    "rng_for",
]

DEFAULT_TIMEZONE = "Europe/Berlin"

# signal -> the event.action of its log lines
SIGNALS: dict[str, str] = {
    "orders": "order.placed",
    "payments": "payment.approved",
    "payment_failures": "payment.failed",
}

# Hourly knots of the daily curve, as a fraction of the day's peak (local time, hour 0..23).
_WEEKDAY_KNOTS = (
    0.35, 0.20, 0.12, 0.08, 0.06, 0.07, 0.12, 0.25, 0.40, 0.52, 0.60, 0.68,
    0.78, 0.74, 0.64, 0.61, 0.63, 0.69, 0.80, 0.92, 1.00, 0.95, 0.78, 0.55,
)
_WEEKEND_KNOTS = (
    0.40, 0.26, 0.15, 0.09, 0.06, 0.06, 0.08, 0.13, 0.22, 0.38, 0.55, 0.70,
    0.82, 0.85, 0.80, 0.74, 0.72, 0.75, 0.83, 0.93, 1.00, 0.96, 0.80, 0.58,
)
# Monday .. Sunday
_WEEKDAY_LEVEL = (1.00, 0.97, 0.98, 1.00, 0.93, 0.85, 1.08)

# Calendar peaks: multipliers of the cycle at given local minutes.
DAILY_PEAK = {(23, 58): 1.25, (23, 59): 1.9}
SUNDAY_PEAK = {(23, 58): 1.6, (23, 59): 3.5}
MONTH_START_PEAK = {(0, 0): 6.0, (0, 1): 3.6, (0, 2): 2.2, (0, 3): 1.5, (0, 4): 1.15}

_MASK64 = (1 << 64) - 1
_MINUTE = timedelta(minutes=1)


def _week_knots() -> tuple[float, ...]:
    """168 hourly knots (Monday 00:00 .. Sunday 23:00) of the weekly curve, levels applied."""
    knots: list[float] = []
    for day in range(7):
        shape = _WEEKEND_KNOTS if day >= 5 else _WEEKDAY_KNOTS
        knots.extend(v * _WEEKDAY_LEVEL[day] for v in shape)
    return tuple(knots)


_KNOTS = _week_knots()


def _catmull_rom(p0: float, p1: float, p2: float, p3: float, t: float) -> float:
    t2 = t * t
    return 0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (3 * p1 - p0 - 3 * p2 + p3) * t2 * t)


def week_curve(hour_of_week: float) -> float:
    """The weekly cycle at a local hour of the week (0 = Monday 00:00), smooth and periodic, peak ~1."""
    n = len(_KNOTS)
    i = int(hour_of_week) % n
    t = hour_of_week - int(hour_of_week)
    return max(0.0, _catmull_rom(_KNOTS[i - 1], _KNOTS[i], _KNOTS[(i + 1) % n], _KNOTS[(i + 2) % n], t))


def season(local: datetime) -> float:
    """Yearly factor: about +10 % in mid-December, -10 % in mid-June."""
    day = local.timetuple().tm_yday
    return 1.0 + 0.10 * math.cos(2 * math.pi * (day - 350) / 365.25)


def calendar_peak(local: datetime) -> float:
    """The calendar peak's multiplier at a local minute (1.0 outside the peaks)."""
    hm = (local.hour, local.minute)
    factor = 1.0
    if local.day == 1 and hm in MONTH_START_PEAK:
        factor = MONTH_START_PEAK[hm]
    if hm in DAILY_PEAK:
        factor = SUNDAY_PEAK[hm] if local.weekday() == 6 else DAILY_PEAK[hm]
    return factor


def floor_minute(t: datetime) -> datetime:
    """``t`` in UTC, seconds dropped. Naive datetimes are taken as UTC."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(second=0, microsecond=0)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name such as Europe/Berlin or UTC") from None


@dataclass(frozen=True)
class RateModel:
    """What the shop's business looks like; every rate is per minute."""

    timezone: str = DEFAULT_TIMEZONE
    peak_orders_per_minute: float = 1800.0
    payment_ratio: float = 0.93
    failure_ratio: float = 0.03
    dispersion: float = 1.5  # variance / mean of a minute's count (1.0: plain Poisson)
    _tz: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.peak_orders_per_minute <= 0:
            raise ValueError("peak_orders_per_minute must be positive")
        if not (0 <= self.payment_ratio <= 1 and 0 <= self.failure_ratio <= 1):
            raise ValueError("payment_ratio and failure_ratio must be between 0 and 1")
        if self.dispersion < 1:
            raise ValueError("dispersion must be at least 1 (1 is Poisson)")
        object.__setattr__(self, "_tz", _zone(self.timezone))

    @property
    def tz(self) -> tzinfo:
        return self._tz

    @cached_property
    def _ratios(self) -> dict[str, float]:
        return {"orders": 1.0, "payments": self.payment_ratio, "payment_failures": self.failure_ratio}

    def local(self, minute: datetime) -> datetime:
        """The local wall-clock time of an instant."""
        return floor_minute(minute).astimezone(self._tz)

    def orders(self, minute: datetime) -> float:
        """Expected orders placed in the minute starting at ``minute`` (no incidents)."""
        loc = self.local(minute)
        how = loc.weekday() * 24 + loc.hour + loc.minute / 60.0
        return self.peak_orders_per_minute * week_curve(how) * season(loc) * calendar_peak(loc)

    def expected(self, signal: str, minute: datetime) -> float:
        """Expected count of ``signal`` in the minute starting at ``minute`` (no incidents)."""
        try:
            ratio = self._ratios[signal]
        except KeyError:
            raise ValueError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}") from None
        return self.orders(minute) * ratio

    def expected_all(self, minute: datetime) -> dict[str, float]:
        base = self.orders(minute)
        return {s: base * r for s, r in self._ratios.items()}


# --------------------------------------------------------------------------- sampling


def rng_for(seed: int, minute: datetime, stream: int) -> random.Random:
    """A generator for one (seed, minute, stream): the same numbers whoever asks, whenever."""
    index = int(floor_minute(minute).timestamp()) // 60
    mixed = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + stream * 0x94D049BB133111EB) & _MASK64
    return random.Random(mixed)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw: inversion for small means, Hoermann's PTRS (as numpy does) for large ones."""
    if lam <= 0:
        return 0
    if lam < 10:
        limit = math.exp(-lam)
        k, p = 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1):
            return k


def overdispersed(rng: random.Random, mean: float, dispersion: float) -> int:
    """A count with the given mean and variance ``dispersion * mean`` (gamma-mixed Poisson)."""
    if mean <= 0:
        return 0
    if dispersion > 1.0:
        shape = mean / (dispersion - 1.0)
        mean = mean * rng.gammavariate(shape, 1.0 / shape)
    return poisson(rng, mean)


_COUNT_STREAM = 1


def minute_counts(
    model: RateModel,
    minute: datetime,
    seed: int,
    drops: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """The counts of every signal in one minute.

    ``drops`` maps a signal to the fraction an incident removes (negative: it
    adds, e.g. -2.0 triples failed payments); the count is then drawn around
    ``expected * (1 - drop)``. Signals are drawn in a fixed order from one
    generator, so a drop of a later signal never changes an earlier one's count.
    """
    rng = rng_for(seed, minute, _COUNT_STREAM)
    expected = model.expected_all(minute)
    out: dict[str, int] = {}
    for signal in SIGNALS:  # fixed order: each signal always gets the same random numbers
        mean = expected[signal]
        if drops:
            mean *= max(0.0, 1.0 - drops.get(signal, 0.0))
        out[signal] = overdispersed(rng, mean, model.dispersion)
    return out


def minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every whole minute ``m`` (UTC) with ``start <= m < end``."""
    first = floor_minute(start)
    if first < _utc(start):
        first += _MINUTE
    stop = _utc(end)
    t = first
    while t < stop:
        yield t
        t += _MINUTE


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
