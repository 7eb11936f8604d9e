"""The expected value and band of a business signal, minute by minute, from its own earlier cycles.

Pure and causal: :func:`evaluate` gets a series (``minute -> value``, UTC
minutes) and a range, and says for every minute of the range what was expected,
how wide the band is, and whether the minute is outside it, using only values
*before* the minute. Where the series comes from (OpenSearch rollups, the
generator, a user's CSV) is not its business.

**Expected value.** The median of the same local minute in earlier cycles, in
the business's time zone (DST-correct: "the same time last week" is the same
wall-clock time, which is 60 minutes away in UTC across a DST change):

- ordinary minutes: the same weekday and time over the last ``history_weeks``
  weeks (earlier weeks' holidays and 1st-of-month peaks are skipped: they are
  not of the same kind);
- the daily peak window (``daily_peak``, 23:58-23:59 by default) on Monday to
  Saturday: the same time on the previous days (not Sundays, whose peak is
  bigger); each earlier day's value is scaled by how busy the half hour before
  its peak was, against what is expected for that half hour today, so a
  Saturday's peak is not judged by a Thursday's;
- Sunday's peak window: earlier Sundays (the weekly rule);
- the month-start window (``month_peak``, 00:00-00:09 on the 1st): the same
  minute on the 1st of earlier months, scaled the same way by the half hour
  after the window;
- holidays (``holidays``): the same time on earlier holidays.

The median is then scaled by a *level factor*: how the last ``level_minutes``
minutes compared with their own (unscaled) expectation, as a ratio of sums,
clipped. Minutes outside the unscaled band do not feed it, so an incident does
not teach the model that the drop is normal.

**Band.** ``expected +- band_width * spread``; the spread is the larger of the
cycle values' robust spread (1.4826 x MAD) and a counting floor
``sqrt(overdispersion x expected)`` (counts are at least Poisson-noisy), widened
by the uncertainty of a median of few cycles (x sqrt(1 + pi/2n)). With fewer
than ``min_cycles`` earlier cycles the point is ``low_confidence`` and can raise
no alert.

**Outside.** Counting noise hides a 20 % drop in one minute at moderate rates,
so a minute is *outside* when the sum of the window of the last ``w`` minutes
ending at it is outside its summed band for some ``w`` in ``windows`` (the
shortest such window is reported). A short window reacts fast to big drops; a
longer one sees a smaller drop at low counts. The alert rule (K of the last N
minutes outside, :mod:`pang.steady.alerts`) sits on top.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

__all__ = [
    "ModelConfig",
    "ModelError",
    "Point",
    "evaluate",
    "evaluate_arrays",
    "holiday_dates",
    "model_config",
]

_WEEK = 7 * 1440
_DAY = 1440
_SQRT_PI_2 = math.pi / 2  # variance of a median of n normal values ~ (pi/2) sigma^2 / n
STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # minutes; divisors of 60, so DST shifts are whole points

# minute kinds (how a minute's cycles are chosen)
ORDINARY, DAILY_PEAK, MONTH_PEAK, HOLIDAY, LEVEL = 0, 1, 2, 3, 4
_KIND_NAMES = {ORDINARY: "weekly", DAILY_PEAK: "daily_peak", MONTH_PEAK: "month_start", HOLIDAY: "holiday", LEVEL: "recent_level"}


class ModelError(ValueError):
    """The model cannot be configured as asked; ``str(err)`` is one line for a person."""


def _hm(text: str) -> int:
    try:
        t = time.fromisoformat(text)
    except (TypeError, ValueError):
        raise ModelError(f"expected a local time HH:MM, got {str(text)[:40]!r}") from None
    return t.hour * 60 + t.minute


@dataclass(frozen=True)
class ModelConfig:
    """Everything the model and the alert rule need; :func:`model_config` builds it from settings."""

    timezone: str = "Europe/Berlin"
    band_width: float = 4.5
    history_weeks: int = 8
    min_cycles: int = 3
    k: int = 1
    n: int = 1
    m: int = 5
    holidays: tuple[str, ...] = ()  # ISO dates and/or holidays-package country codes ("DE", "DE-BY")
    overdispersion: float = 1.5  # the counting floor's variance / mean (1.0: Poisson)
    windows: tuple[int, ...] = (1, 2, 3, 5)  # minutes summed by the "outside" test
    level_minutes: int = 60
    level_min_minutes: int = 20  # fewer usable minutes than this: fall back to a longer look, then to 1.0
    level_clip: tuple[float, float] = (0.67, 1.5)
    daily_peak: tuple[str, str] = ("23:58", "23:59")  # local, inclusive
    daily_days: int = 8  # earlier days looked at for the daily peak (Sundays skipped)
    month_peak: tuple[str, str] = ("00:00", "00:09")  # local, on the 1st, inclusive
    month_history: int = 6  # earlier 1sts looked at
    min_month_cycles: int = 2
    context_minutes: int = 30  # the half hour that scales a calendar peak's earlier values
    critical_deviation: float = 0.4  # |observed - expected| / expected at or above this: critical
    kind: Literal["count", "ratio"] = "count"  # "ratio": no counting floor
    step: int = 1  # minutes per point (a divisor of 60); windows, K, N, M count points of this step
    select_days: float = 7.0  # trailing days over which the cycles and the recent level are compared
    select_ratio: float = 0.7  # the recent level's error below this share of the cycles': no cycle, use the level
    small_count: float = 10.0  # count medians below this: the mean over neighbouring points of the cycles

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ModelError(f"unknown time zone {self.timezone!r}; expected an IANA name such as Europe/Berlin or UTC") from None
        if self.band_width <= 0:
            raise ModelError("band_width must be positive")
        if not 1 <= self.history_weeks <= 52:
            raise ModelError("history_weeks must be between 1 and 52")
        if not 1 <= self.k <= self.n:
            raise ModelError(f"the alert rule needs 1 <= K <= N (got K={self.k}, N={self.n})")
        if self.m < 1:
            raise ModelError("M (minutes back in the band before an alert resolves) must be at least 1")
        if not self.windows or any(w < 1 or w > 60 for w in self.windows):
            raise ModelError("windows must be minutes between 1 and 60")
        a, b = _hm(self.daily_peak[0]), _hm(self.daily_peak[1])
        c, d = _hm(self.month_peak[0]), _hm(self.month_peak[1])
        if a > b or c > d:
            raise ModelError("a peak window's end must not be before its start")
        for spec in self.holidays:
            _holiday_spec(spec)
        if self.step not in STEPS:
            raise ModelError(f"step must be one of {', '.join(map(str, STEPS))} minutes (got {self.step})")
        if not 0 < self.select_ratio <= 1 or self.select_days <= 0:
            raise ModelError("select_ratio must be in (0, 1] and select_days positive")

    @property
    def day_points(self) -> int:
        return _DAY // self.step

    @property
    def level_points(self) -> int:
        """Points of the level factor's look-back: ``level_minutes`` at 1 minute, at least 12 points on coarser steps."""
        return self.level_minutes if self.step == 1 else max(self.level_minutes // self.step, 12)

    @property
    def level_min_points(self) -> int:
        return max(1, math.ceil(self.level_points * self.level_min_minutes / self.level_minutes))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def for_ratio(self) -> ModelConfig:
        """The same model for a ratio signal (no counting floor)."""
        return replace(self, kind="ratio")


def model_config(settings: Any) -> ModelConfig:
    """The model of pang's settings (``business_timezone``, ``steady_*``)."""
    return ModelConfig(
        timezone=settings.business_timezone,
        band_width=settings.steady_band_width,
        history_weeks=settings.steady_history_weeks,
        min_cycles=settings.steady_min_cycles,
        k=settings.steady_alert_k,
        n=settings.steady_alert_n,
        m=settings.steady_alert_m,
        holidays=tuple(settings.steady_holidays),
    )


@dataclass(frozen=True)
class Point:
    """One minute as the model sees it.

    ``cycles`` names the earlier values the expectation came from
    (``{"last_week": 812.0, "2_weeks_ago": None, ...}``; None: that cycle is
    missing or skipped). ``outside`` is ``"drop"``/``"spike"`` when the window
    of ``window`` minutes ending here is outside its summed band (``score``: its
    deviation in spreads), never on a low-confidence point.
    """

    minute: datetime
    observed: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    low_confidence: bool
    cycles: dict[str, float | None] = field(default_factory=dict)
    spread: float | None = None
    outside: Literal["drop", "spike"] | None = None
    score: float | None = None
    window: int | None = None
    kind: str = "weekly"


# --------------------------------------------------------------------------- holidays


def _holiday_spec(spec: str) -> date | str:
    text = str(spec).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    country, _, subdiv = text.partition("-")
    if not (2 <= len(country) <= 3 and country.isalpha() and country.isupper()):
        raise ModelError(f"holiday {text[:40]!r}: expected an ISO date (2026-12-24) or a country code (DE, DE-BY)")
    return text


@lru_cache(maxsize=64)
def _country_holidays(code: str, years: tuple[int, ...]) -> frozenset[date]:
    import holidays  # MIT; loaded only when a country code is configured

    country, _, subdiv = code.partition("-")
    try:
        days = holidays.country_holidays(country, subdiv=subdiv or None, years=list(years))
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise ModelError(f"holiday calendar {code!r} is not known to the holidays package ({exc})") from None
    return frozenset(days.keys())


def holiday_dates(specs: Iterable[str], years: Iterable[int]) -> frozenset[date]:
    """The local dates the specs name in ``years`` (ISO dates as they are; country codes expanded)."""
    out: set[date] = set()
    ys = tuple(sorted(set(years)))
    for spec in specs:
        parsed = _holiday_spec(spec)
        if isinstance(parsed, date):
            out.add(parsed)
        else:
            out |= _country_holidays(parsed, ys)
    return frozenset(out)


# --------------------------------------------------------------------------- time grid


def _epoch_minute(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp()) // 60


def _from_epoch_minute(m: int) -> datetime:
    return datetime.fromtimestamp(m * 60, UTC)


def _epoch_unit(t: datetime, step: int) -> int:
    """The point (of ``step`` minutes, aligned to the epoch in UTC) that ``t`` falls in."""
    return _epoch_minute(t) // step


def _from_epoch_unit(u: int, step: int) -> datetime:
    return _from_epoch_minute(u * step)


def _offsets(first: int, count: int, tz: ZoneInfo, step: int = 1) -> np.ndarray:
    """UTC offset, in points of ``step`` minutes, of every point ``first .. first+count-1`` (epoch points).

    Sampled hourly and resolved point by point only in the hours where the
    offset changes, so months cost a few thousand zone look-ups, not 100k.
    """
    def off(u: int) -> int:
        d = _from_epoch_unit(u, step).astimezone(tz).utcoffset()
        return (int(d.total_seconds()) // 60 if d is not None else 0) // step

    per_hour = max(1, 60 // step)
    out = np.empty(count, dtype=np.int64)
    hours = list(range(0, count, per_hour)) + [count - 1] if count else []
    samples = [off(first + h) for h in hours]
    for i in range(len(hours) - 1):
        a, b = hours[i], hours[i + 1]
        if samples[i] == samples[i + 1]:
            out[a : b + 1] = samples[i]
        else:
            for j in range(a, b + 1):
                out[j] = off(first + j)
    if count and len(hours) == 1:
        out[:] = samples[0]
    return out


@dataclass
class _Grid:
    """The series on a regular UTC grid of ``step``-minute points, with each point's local wall-clock position."""

    first: int  # epoch point of index 0
    values: np.ndarray  # float, NaN = missing
    local: np.ndarray  # local wall-clock point (points since 1970-01-01 00:00 local)
    inverse: np.ndarray  # local point - local_first -> grid index (first occurrence), -1 if none
    local_first: int
    kind: np.ndarray  # point kinds
    holidays: frozenset[date]
    step: int = 1

    @property
    def day(self) -> int:
        return _DAY // self.step

    @property
    def week(self) -> int:
        return _WEEK // self.step

    def at_local(self, local_minutes: np.ndarray) -> np.ndarray:
        """Grid indices of local wall-clock points (-1 where outside the grid or not existing)."""
        rel = local_minutes - self.local_first
        ok = (rel >= 0) & (rel < len(self.inverse))
        out = np.full(local_minutes.shape, -1, dtype=np.int64)
        out[ok] = self.inverse[rel[ok]]
        return out

    def value(self, idx: np.ndarray) -> np.ndarray:
        out = np.full(idx.shape, np.nan)
        ok = idx >= 0
        out[ok] = self.values[idx[ok]]
        return out


def _local_dates(local: np.ndarray, day_points: int = _DAY) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day number, weekday Monday=0, day of month) of local points."""
    days = local // day_points
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    d64 = days.astype("datetime64[D]")
    dom = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    return days, weekday, dom


def _build_grid(series: Mapping[datetime, float | None], first: int, last: int, config: ModelConfig) -> _Grid:
    step = config.step
    count = last - first
    values = np.full(count, np.nan)
    for t, v in series.items():
        if v is None:
            continue
        i = _epoch_unit(t, step) - first
        if 0 <= i < count:
            fv = float(v)
            if math.isfinite(fv):
                values[i] = fv if math.isnan(values[i]) else values[i] + fv  # two keys in one point: added up
    off = _offsets(first, count, config.tz, step)
    local = np.arange(first, last, dtype=np.int64) + off
    local_first = int(local.min()) if count else 0
    span = int(local.max()) - local_first + 1 if count else 0
    inverse = np.full(span, -1, dtype=np.int64)
    rel = local - local_first
    inverse[rel[::-1]] = np.arange(count - 1, -1, -1)  # reversed: the first occurrence (fold 0) wins
    day_points = _DAY // step
    days, weekday, dom = _local_dates(local, day_points)
    mod = local % day_points
    kind = np.zeros(count, dtype=np.int8)
    d0, d1 = _hm(config.daily_peak[0]) // step, _hm(config.daily_peak[1]) // step
    kind[(mod >= d0) & (mod <= d1)] = DAILY_PEAK
    hol: frozenset[date] = frozenset()
    if config.holidays and count:
        years = range(_day_to_date(int(days.min())).year, _day_to_date(int(days.max())).year + 1)
        hol = holiday_dates(config.holidays, years)
        if hol:
            hol_days = np.array([(h - date(1970, 1, 1)).days for h in hol], dtype=np.int64)
            kind[np.isin(days, hol_days)] = HOLIDAY
    m0, m1 = _hm(config.month_peak[0]) // step, _hm(config.month_peak[1]) // step
    kind[(dom == 1) & (mod >= m0) & (mod <= m1)] = MONTH_PEAK
    return _Grid(first, values, local, inverse, local_first, kind, hol, step)


def _day_to_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day)


# --------------------------------------------------------------------------- the centre


@dataclass
class _Centre:
    """Unscaled expectation of target minutes: median, robust spread, cycles used."""

    median: np.ndarray
    mad: np.ndarray  # 1.4826 x MAD, in the same (unscaled) units
    n: np.ndarray
    refs: np.ndarray  # (targets, cycles) grid indices of the earlier values (-1: none)
    names: list[list[str]] | None = None  # per target, when the cycle names differ by target


def _robust(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.sum(~np.isnan(vals), axis=1)
    med = np.full(vals.shape[0], np.nan)
    mad = np.full(vals.shape[0], np.nan)
    ok = n > 0
    if ok.any():
        v = vals[ok]
        med_ok = np.nanmedian(v, axis=1)
        med[ok] = med_ok
        mad[ok] = 1.4826 * np.nanmedian(np.abs(v - med_ok[:, None]), axis=1)
    return med, mad, n


def _weekly(grid: _Grid, idx: np.ndarray, config: ModelConfig) -> _Centre:
    """Same weekday and local time over the last ``history_weeks`` weeks (other kinds of day skipped)."""
    weeks = np.arange(1, config.history_weeks + 1, dtype=np.int64)
    refs = grid.at_local(grid.local[idx][:, None] - weeks[None, :] * grid.week)
    vals = grid.value(refs)
    ref_kind = np.where(refs >= 0, grid.kind[np.maximum(refs, 0)], -1)
    # A holiday or a month-start minute is no "ordinary last week" (and vice versa); a daily peak is
    # a daily peak every day, so it stays comparable with itself.
    own = grid.kind[idx][:, None]
    bad = ((ref_kind == HOLIDAY) | (ref_kind == MONTH_PEAK)) & (ref_kind != own)
    vals[bad] = np.nan
    refs = np.where(bad, -1, refs)
    med, mad, n = _robust(vals)
    return _Centre(med, mad, n, refs)


def _weekly_names(count: int) -> list[str]:
    return ["last_week"] + [f"{k}_weeks_ago" for k in range(2, count + 1)]


def _calendar(grid: _Grid, idx: np.ndarray, weekly_raw: Any, config: ModelConfig) -> dict[int, tuple[float, float, int, list[tuple[str, int]]]]:
    """Daily-peak (Mon-Sat), month-start and holiday minutes: their own kind of earlier day.

    Returns ``target index -> (median, mad, n, [(cycle name, grid index)])``.
    """
    out: dict[int, tuple[float, float, int, list[tuple[str, int]]]] = {}
    step = grid.step
    ctx = max(1, config.context_minutes // step)
    d0 = _hm(config.daily_peak[0]) // step
    m1 = _hm(config.month_peak[1]) // step
    for i in idx.tolist():
        kind = int(grid.kind[i])
        loc = int(grid.local[i])
        day, mod = divmod(loc, grid.day)
        today = _day_to_date(day)
        named: list[tuple[str, int, float]] = []  # (name, ref index, scaled value)
        if kind == DAILY_PEAK:
            if today.weekday() == 6:
                continue  # Sunday's peak: earlier Sundays, the weekly rule
            ctx_lo, ctx_hi = d0 - ctx, d0  # the half hour before the peak, local minute of day
            want_today = _context_expected(grid, day, ctx_lo, ctx_hi, weekly_raw)
            for back in range(1, config.daily_days + 1):
                ref_day = day - back
                ref_date = _day_to_date(ref_day)
                if ref_date.weekday() == 6 or ref_date in grid.holidays:
                    continue
                name = "yesterday" if back == 1 else f"{back}_days_ago"
                named.append(_scaled(grid, ref_day, mod, ctx_lo, ctx_hi, want_today, name))
        elif kind == MONTH_PEAK:
            ctx_lo, ctx_hi = m1 + 1, m1 + 1 + ctx  # the half hour after the window
            want_today = _context_expected(grid, day, ctx_lo, ctx_hi, weekly_raw)
            for back in range(1, config.month_history + 1):
                y, mth = today.year, today.month - back
                while mth < 1:
                    y, mth = y - 1, mth + 12
                ref_day = (date(y, mth, 1) - date(1970, 1, 1)).days
                name = "first_of_last_month" if back == 1 else f"first_{back}_months_ago"
                named.append(_scaled(grid, ref_day, mod, ctx_lo, ctx_hi, want_today, name))
        elif kind == HOLIDAY:
            earlier = sorted((h for h in grid.holidays if h < today), reverse=True)[: config.history_weeks]
            for h in earlier:
                ref = int(grid.at_local(np.array([(h - date(1970, 1, 1)).days * grid.day + mod]))[0])
                v = float(grid.values[ref]) if ref >= 0 else math.nan
                named.append((f"holiday_{h.isoformat()}", ref, v))
        else:
            continue
        vals = np.array([v for _, _, v in named], dtype=float)
        good = vals[~np.isnan(vals)]
        if good.size:
            med = float(np.median(good))
            mad = 1.4826 * float(np.median(np.abs(good - med)))
        else:
            med = mad = math.nan
        out[i] = (med, mad, int(good.size), [(name, ref) for name, ref, _ in named])
    return out


def _context_expected(grid: _Grid, day: int, lo: int, hi: int, weekly_raw: Any) -> float:
    """Sum of today's unscaled weekly expectation over local minutes [lo, hi) of ``day``."""
    idx = grid.at_local(np.arange(day * grid.day + lo, day * grid.day + hi, dtype=np.int64))
    if (idx < 0).any():
        return math.nan
    exp = weekly_raw(idx)
    return float(exp.sum()) if not np.isnan(exp).any() else math.nan


def _scaled(grid: _Grid, ref_day: int, mod: int, lo: int, hi: int, want: float, name: str) -> tuple[str, int, float]:
    """An earlier day's value at the same local time, scaled by its context against today's."""
    ref = int(grid.at_local(np.array([ref_day * grid.day + mod], dtype=np.int64))[0])
    if ref < 0 or math.isnan(want):
        return name, ref, math.nan
    v = grid.values[ref]
    ctx = grid.value(grid.at_local(np.arange(ref_day * grid.day + lo, ref_day * grid.day + hi, dtype=np.int64)))
    have = float(np.nansum(ctx))
    if np.isnan(ctx).sum() > len(ctx) // 3 or have <= 0:
        return name, ref, math.nan
    have *= len(ctx) / max(1, int((~np.isnan(ctx)).sum()))
    return name, ref, float(v) * want / have


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """:func:`evaluate_arrays`' answer: one array entry per minute of ``[start, end)``."""

    minutes: np.ndarray  # epoch minutes
    observed: np.ndarray
    expected: np.ndarray
    spread: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    low_confidence: np.ndarray  # bool
    outside: np.ndarray  # int8: -1 drop, +1 spike, 0 inside
    score: np.ndarray  # deviation of the deciding window, in spreads
    window: np.ndarray  # minutes of the deciding window (0: none)
    kind: np.ndarray  # minute kinds
    level: np.ndarray
    cycles: list[dict[str, float | None]] | None = None
    step: int = 1  # minutes per point (``minutes`` are the points' starts, in epoch minutes)


def evaluate_arrays(
    series: Mapping[datetime, float | None],
    start: datetime,
    end: datetime,
    config: ModelConfig,
    *,
    with_cycles: bool = True,
) -> Evaluation:
    """:func:`evaluate` as arrays (the backtest's fast path)."""
    step = config.step
    start = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    s, e = _epoch_unit(start, step), _epoch_unit(end, step)
    if _from_epoch_unit(s, step) < start:
        s += 1
    if e <= s:
        empty = np.zeros(0)
        return Evaluation(np.zeros(0, np.int64), empty, empty, empty, empty, empty, np.zeros(0, bool),
                          np.zeros(0, np.int8), empty, np.zeros(0, np.int64), np.zeros(0, np.int8), empty,
                          [] if with_cycles else None, step)
    if series:
        first_key = min(_epoch_unit(t, step) for t in series)
    else:
        first_key = s
    day = config.day_points
    lookback = config.history_weeks * 7 * day + 2 * max(1, 60 // step)
    month_back = (config.month_history + 1) * 31 * day
    first = min(s, max(first_key, s - max(lookback, month_back)))
    select = max(1, int(round(config.select_days * day)))
    pre = max(config.windows) + config.level_points * 6 + select  # room for the windows, the level factor, the choice
    first = min(first, s - pre)
    last = e + day  # room for context points after a month-start window
    grid = _build_grid(series, first, last, config)

    lo_i, hi_i = s - first, e - first
    work = np.arange(max(0, lo_i - pre), hi_i, dtype=np.int64)  # points whose expectation we need

    weekly_cache: dict[int, float] = {}

    def weekly_raw(idx: np.ndarray) -> np.ndarray:
        missing = [int(i) for i in idx.tolist() if int(i) not in weekly_cache]
        if missing:
            c = _weekly(grid, np.array(missing, dtype=np.int64), config)
            for j, i in enumerate(missing):
                weekly_cache[i] = float(c.median[j]) if c.n[j] >= config.min_cycles else math.nan
        return np.array([weekly_cache[int(i)] for i in idx.tolist()])

    wk = _weekly(grid, work, config)
    med, mad, n = wk.median.copy(), wk.mad.copy(), wk.n.copy()
    if config.kind == "count" and config.small_count > 0:
        _pool_small_counts(grid, work, med, mad, n, config)
    need = np.full(len(work), config.min_cycles)
    # fill the weekly cache cheaply for context look-ups inside the work range
    for j, i in enumerate(work.tolist()):
        weekly_cache[i] = float(med[j]) if n[j] >= config.min_cycles else math.nan

    special = work[(grid.kind[work] != ORDINARY)]
    cal = _calendar(grid, special, weekly_raw, config)
    pos = {int(i): j for j, i in enumerate(work.tolist())} if cal else {}
    for i, (c_med, c_mad, c_n, _named) in cal.items():
        j = pos[i]
        med[j], mad[j], n[j] = c_med, c_mad, c_n
        if grid.kind[i] == MONTH_PEAK:
            need[j] = min(config.min_cycles, config.min_month_cycles)

    low = (n < need) | np.isnan(med)
    obs = grid.values[work]
    od = config.overdispersion

    def spread_of(centre: np.ndarray, mad_: np.ndarray, n_: np.ndarray) -> np.ndarray:
        floor = np.sqrt(od * np.maximum(centre, 0.0)) if config.kind == "count" else np.zeros_like(centre)
        base = np.fmax(np.nan_to_num(mad_, nan=0.0), floor)
        if config.kind == "ratio":
            base = np.fmax(base, 0.01 * np.abs(centre))
        return base * np.sqrt(1.0 + _SQRT_PI_2 / np.maximum(n_, 1))

    raw_spread = spread_of(med, mad, n)
    width = config.band_width

    # Level factor: the last level_points points against their own unscaled expectation.
    usable = ~low & ~np.isnan(obs) & (np.abs(obs - med) <= width * raw_spread)
    usable &= _window_inside(obs, med, raw_spread, usable, width)
    o_use = np.where(usable, obs, 0.0)
    e_use = np.where(usable, med, 0.0)
    seen = ~low & ~np.isnan(obs)
    level = _rolling_level(o_use, e_use, usable, config, np.where(seen, obs, 0.0), np.where(seen, med, 0.0), seen)

    expected = med * level
    spread = spread_of(expected, mad * level, n)
    if config.kind == "ratio":
        spread = np.fmax(spread, raw_spread * level)

    # No cycle: where the recent level has forecast clearly better than the cycles lately, use it.
    kinds = grid.kind[work].copy()
    recent, recent_mad, recent_n = _recent_level(obs, config.level_points)
    chosen = _choose_level(obs, expected, recent, np.fmax(raw_spread, spread), low, select, config)
    if chosen.any():
        expected = np.where(chosen, recent, expected)
        spread = np.where(chosen, spread_of(recent, recent_mad, recent_n), spread)
        low = low | (chosen & (recent_n < max(3, config.level_min_points)))
        kinds[chosen] = LEVEL

    # Outside: a window of w points ending here, summed, against its summed band.
    out_dir = np.zeros(len(work), dtype=np.int8)
    score = np.zeros(len(work))
    win = np.zeros(len(work), dtype=np.int64)
    valid = ~low & ~np.isnan(obs) & ~np.isnan(expected)
    o0 = np.where(valid, obs, 0.0)
    e0 = np.where(valid, expected, 0.0)
    v0 = np.where(valid, spread**2, 0.0)
    c_o, c_e, c_v, c_n = (np.concatenate([[0.0], np.cumsum(a)]) for a in (o0, e0, v0, valid.astype(float)))
    for w in sorted(set(config.windows)):
        if w > len(work):
            continue
        j = np.arange(w - 1, len(work))
        full = (c_n[j + 1] - c_n[j + 1 - w]) == w
        so = c_o[j + 1] - c_o[j + 1 - w]
        se = c_e[j + 1] - c_e[j + 1 - w]
        sv = c_v[j + 1] - c_v[j + 1 - w]
        z = np.where(full, _z(so, se, sv, config.kind), 0.0)
        hit = full & (np.abs(z) > width) & (win[j] == 0)
        jj = j[hit]
        out_dir[jj] = np.sign(z[hit]).astype(np.int8)
        score[jj] = z[hit]
        win[jj] = w
    # a point's single value decides its own score when no window is outside
    z1 = np.where(valid, _z(np.nan_to_num(obs), np.nan_to_num(expected), np.nan_to_num(spread) ** 2, config.kind), 0.0)
    score = np.where(win > 0, score, z1)

    sl = slice(lo_i - work[0], hi_i - work[0])
    exp_s = expected[sl]
    spr_s = spread[sl]
    lower, upper = _band(exp_s, spr_s, width, config.kind)
    ev = Evaluation(
        minutes=np.arange(s, e, dtype=np.int64) * step,
        observed=obs[sl],
        expected=exp_s,
        spread=spr_s,
        lower=lower,
        upper=upper,
        low_confidence=low[sl],
        outside=out_dir[sl],
        score=score[sl],
        window=win[sl],
        kind=kinds[sl],
        level=level[sl],
        step=step,
    )
    if with_cycles:
        names = _weekly_names(config.history_weeks)
        refs = wk.refs[sl]
        cyc: list[dict[str, float | None]] = []
        vals_all = grid.value(refs)
        rec_s = recent[sl]
        for t in range(e - s):
            i = int(work[sl.start + t])
            if i in cal:
                named = cal[i][3]
                cyc.append({nm: _none(grid.values[r]) if r >= 0 else None for nm, r in named})
            else:
                row = vals_all[t]
                cyc.append({nm: (None if math.isnan(v) else float(v)) for nm, v in zip(names, row.tolist())})
            if ev.kind[t] == LEVEL:
                cyc[-1]["recent_level"] = _none(rec_s[t])
        ev.cycles = cyc
    return ev


def _pool_small_counts(grid: _Grid, work: np.ndarray, med: np.ndarray, mad: np.ndarray, n: np.ndarray, config: ModelConfig) -> None:
    """Small counts (a median below ``small_count``): the mean over the cycles' neighbouring points, in place.

    The median of a few Poisson counts is biased low (the median of counts
    with a mean of 0.6 is 0), so a quiet night's expectation would be too low
    and a handful of orders would look like a spike. The mean over the same
    cycles and two points either side (5 x the values) is unbiased and steady.
    """
    sm = np.flatnonzero(~np.isnan(med) & (med < config.small_count) & (grid.kind[work] == ORDINARY))
    if not sm.size:
        return
    cols = []
    for d in (-2, -1, 0, 1, 2):
        idx = np.clip(work[sm] + d, 0, len(grid.values) - 1)
        c = _weekly(grid, idx, config)
        cols.append(grid.value(c.refs))
    vals = np.concatenate(cols, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing rows: NaN, handled below
        mean = np.nanmean(vals, axis=1)
        dev = 1.4826 * np.nanmedian(np.abs(vals - mean[:, None]), axis=1)
    ok = ~np.isnan(mean)
    med[sm[ok]] = mean[ok]
    mad[sm[ok]] = dev[ok]


def _recent_level(obs: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, robust spread (1.4826 x MAD) and count of the last ``points`` values before each point (not itself)."""
    from numpy.lib.stride_tricks import sliding_window_view

    size = len(obs)
    padded = np.concatenate([np.full(points, np.nan), obs])
    win = sliding_window_view(padded, points)[:size]  # row j: obs[j - points : j]
    count = np.sum(~np.isnan(win), axis=1)
    centre = np.full(size, np.nan)
    dev = np.full(size, np.nan)
    ok = count > 0
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            w = win[ok]
            c = np.nanmedian(w, axis=1)
            centre[ok] = c
            dev[ok] = 1.4826 * np.nanmedian(np.abs(w - c[:, None]), axis=1)
    return centre, dev, count


def _choose_level(
    obs: np.ndarray, expected: np.ndarray, recent: np.ndarray, scale: np.ndarray, low: np.ndarray, select: int, config: ModelConfig
) -> np.ndarray:
    """True where the series shows no usable cycle: over the last ``select`` points, the recent level forecast
    the observed values clearly better (``select_ratio``) than the cycles did.

    Errors are measured in spreads and capped at 4, so a few hours of incident
    cannot flip a series with a real cycle to the level (nor back).
    """
    both = ~low & ~np.isnan(obs) & ~np.isnan(expected) & ~np.isnan(recent) & (scale > 0)
    with np.errstate(all="ignore"):
        u_c = np.where(both, np.minimum(np.abs(obs - expected) / scale, 4.0), 0.0)
        u_l = np.where(both, np.minimum(np.abs(obs - recent) / scale, 4.0), 0.0)
    cc, cl, cn = (np.concatenate([[0.0], np.cumsum(a)]) for a in (u_c, u_l, both.astype(float)))
    idx = np.arange(len(obs))
    a = np.maximum(idx - select, 0)
    sc, sl, sn = cc[idx] - cc[a], cl[idx] - cl[a], cn[idx] - cn[a]
    return (sn >= select / 4) & (sl < config.select_ratio * sc) & ~np.isnan(recent)


def _z(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray, kind: str) -> np.ndarray:
    """Deviation in spreads; for counts on the square-root scale, where counting noise is even.

    Counts are skewed when small (18 failed payments where 4 are expected is
    not the 7-sigma event a normal curve says), so a count's deviation is
    ``2 (sqrt(observed + 3/8) - sqrt(expected + 3/8)) / sqrt(variance / expected)``
    (Anscombe): the same as ``(observed - expected) / spread`` for large counts.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "count":
            ratio = np.where(expected > 0, variance / np.maximum(expected, 1e-9), 1.0)
            z = 2.0 * (np.sqrt(np.maximum(observed, 0.0) + 0.375) - np.sqrt(np.maximum(expected, 0.0) + 0.375)) / np.sqrt(np.maximum(ratio, 1e-12))
        else:
            z = (observed - expected) / np.sqrt(variance)
    return np.where(np.isfinite(z), z, 0.0)


def _band(expected: np.ndarray, spread: np.ndarray, width: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The per-minute band: where :func:`_z` of a single minute reaches +-width."""
    if kind != "count":
        return expected - width * spread, expected + width * spread
    with np.errstate(divide="ignore", invalid="ignore"):
        half = width * np.sqrt(np.where(expected > 0, spread**2 / np.maximum(expected, 1e-9), 1.0)) / 2.0
        root = np.sqrt(np.maximum(expected, 0.0) + 0.375)
        lower = np.maximum(root - half, 0.0) ** 2 - 0.375
        lower = np.where(root - half > 0, lower, 0.0)
        upper = (root + half) ** 2 - 0.375
    return np.maximum(lower, 0.0), upper


def _none(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _window_inside(obs: np.ndarray, exp: np.ndarray, spread: np.ndarray, usable: np.ndarray, width: float) -> np.ndarray:
    """False where the 3-minute window ending at or just after a minute is outside the unscaled band."""
    w = 3
    valid = ~np.isnan(obs) & ~np.isnan(exp) & ~np.isnan(spread)
    o = np.where(valid, obs, 0.0)
    e = np.where(valid, exp, 0.0)
    v = np.where(valid, spread, 0.0) ** 2
    co, ce, cv = (np.concatenate([[0.0], np.cumsum(a)]) for a in (o, e, v))
    out = np.ones(len(obs), dtype=bool)
    if len(obs) < w:
        return out
    j = np.arange(w - 1, len(obs))
    sv = cv[j + 1] - cv[j + 1 - w]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sv > 0, ((co[j + 1] - co[j + 1 - w]) - (ce[j + 1] - ce[j + 1 - w])) / np.sqrt(sv), 0.0)
    bad = np.abs(z) > width
    for shift in range(w):  # every minute inside an outside window
        out[j[bad] - shift] = False
    return out


def _rolling_level(
    o_use: np.ndarray, e_use: np.ndarray, usable: np.ndarray, config: ModelConfig,
    o_all: np.ndarray, e_all: np.ndarray, seen: np.ndarray,
) -> np.ndarray:
    """Ratio of observed to expected over the minutes before each minute (not including it), clipped.

    In-band minutes of the last ``level_minutes`` first; too few (an incident
    fills the hour): in-band minutes of six times as long; still too few (the
    signal has been off for hours: a new normal, not an incident): every minute
    of that longer look.
    """
    lo, hi = config.level_clip
    idx = np.arange(len(o_use))
    level = np.ones(len(o_use))
    done = np.zeros(len(o_use), dtype=bool)
    short = config.level_points
    long = short * 6
    for span, (oo, ee, nn) in ((short, (o_use, e_use, usable)), (long, (o_use, e_use, usable)), (long, (o_all, e_all, seen))):
        co, ce, cn = (np.concatenate([[0.0], np.cumsum(a)]) for a in (oo, ee, nn.astype(float)))
        a = np.maximum(idx - span, 0)
        so, se, sn = co[idx] - co[a], ce[idx] - ce[a], cn[idx] - cn[a]
        ok = ~done & (sn >= config.level_min_points * (span // short)) & (se > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            level[ok] = np.clip(so[ok] / se[ok], lo, hi)
        done |= ok
    return level


def evaluate(
    series: Mapping[datetime, float | None],
    start: datetime,
    end: datetime,
    config: ModelConfig,
    *,
    with_cycles: bool = True,
) -> list[Point]:
    """One :class:`Point` for every UTC minute in ``[start, end)``; causal, pure.

    ``series`` maps UTC minutes (aware, or naive taken as UTC) to values;
    absent or None minutes have ``observed`` None. History before ``start``
    (``history_weeks`` weeks, and months for the month-start window) is read
    from the same mapping.
    """
    ev = evaluate_arrays(series, start, end, config, with_cycles=with_cycles)
    pts: list[Point] = []
    direction = {-1: "drop", 1: "spike"}
    for t in range(len(ev.minutes)):
        low = bool(ev.low_confidence[t])
        exp = _none(ev.expected[t])
        pts.append(
            Point(
                minute=_from_epoch_minute(int(ev.minutes[t])),
                observed=_none(ev.observed[t]),
                expected=exp,
                lower=_none(ev.lower[t]) if exp is not None else None,
                upper=_none(ev.upper[t]) if exp is not None else None,
                low_confidence=low,
                cycles=ev.cycles[t] if ev.cycles is not None else {},
                spread=_none(ev.spread[t]) if exp is not None else None,
                outside=None if low else direction.get(int(ev.outside[t])),  # type: ignore[arg-type]
                score=None if exp is None or ev.observed[t] != ev.observed[t] else round(float(ev.score[t]), 3),
                window=int(ev.window[t]) or None,
                kind=_KIND_NAMES[int(ev.kind[t])],
            )
        )
    return pts


def minutes_between(start: datetime, end: datetime) -> Sequence[datetime]:
    """Every UTC minute in ``[start, end)`` (a helper for callers building series)."""
    s, e = _epoch_minute(start), _epoch_minute(end)
    return [_from_epoch_minute(m) for m in range(s, e)]
