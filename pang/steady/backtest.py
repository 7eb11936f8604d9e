"""Replay a series through the model and the alert rule, and score the alerts against labelled incidents.

Pure over series: :func:`backtest` gets ``signal -> {minute: value}`` (with
history before ``start``), the labelled incident windows and the range to
score, runs :func:`pang.steady.model.evaluate` and the same
:class:`~pang.steady.alerts.AlertTracker` the runner uses, and does the same for
a seasonal-naive baseline (the same minute last week, a fixed band of
``+-baseline_band`` of it, the same K-of-N/M rule), so the model's gain is
visible next to it.

Figures per signal (alerts opened in ``[start, end)``):

- *precision*: alerts overlapping a labelled window (``grace`` minutes either
  side) / all alerts;
- *recall*: must-detect incidents (a drop of 20 % or more for 5 minutes or more
  on that signal; every window of a CSV) with an alert in the incident's
  direction opened within ``deadline`` (3 minutes) of the start; and
  ``detected``: opened at all before the incident ended (+ grace);
- *false alarms per week*: alerts overlapping no labelled window, per 7 days
  of scored time;
- *delay*: opened - start of each detected incident, median and worst, in
  seconds (``opened`` is the end of the minute that completed the rule);
- the same recall and delay per band of expected count at the incident's
  start (``<100``, ``100-300``, ``300-1000``, ``>=1000`` per minute): counting
  noise decides how fast a 20 % drop can be seen, so the bands explain misses.

``meets_minimum`` says whether the issue's minimum holds for ``orders`` and
``payments``: every must-detect incident with an expected count of at least
``min_expected`` (300/min) detected within the deadline, and at most one false
alarm per week.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from pang.steady.alerts import Alert, AlertTracker
from pang.steady.model import (
    ModelConfig,
    Point,
    _build_grid,
    _epoch_minute,
    _epoch_unit,
    _from_epoch_minute,
    _from_epoch_unit,
    evaluate_arrays,
)

__all__ = [
    "BANDS",
    "BacktestReport",
    "Label",
    "SignalScore",
    "backtest",
    "format_report",
    "labels_from_csv",
    "labels_from_incidents",
    "seasonal_naive",
]

BANDS: tuple[tuple[str, float, float], ...] = (
    ("<100", 0.0, 100.0),
    ("100-300", 100.0, 300.0),
    ("300-1000", 300.0, 1000.0),
    (">=1000", 1000.0, math.inf),
)
MINIMUM_SIGNALS = ("orders", "payments")


class BacktestError(ValueError):
    """The backtest's input cannot be used; ``str(err)`` is one line for a person."""


@dataclass(frozen=True)
class Label:
    """A labelled incident window ``[start, end)``; ``effects`` per signal (None: it concerns every signal)."""

    start: datetime
    end: datetime
    id: str = ""
    effects: Mapping[str, float] | None = None

    def effect(self, signal: str) -> float | None:
        """The fraction the incident removed from ``signal`` (negative: added); None when unknown."""
        if self.effects is None:
            return None
        return float(self.effects.get(signal, 0.0))

    def concerns(self, signal: str) -> bool:
        eff = self.effect(signal)
        return eff is None or abs(eff) > 0.0

    def must_detect(self, signal: str) -> bool:
        """20 % or more for 5 minutes or more on this signal (every window of a CSV)."""
        eff = self.effect(signal)
        if eff is None:
            return True
        return abs(eff) >= 0.2 and (self.end - self.start) >= timedelta(minutes=5)

    def direction(self, signal: str) -> str | None:
        eff = self.effect(signal)
        if eff is None:
            return None  # a CSV window: either direction counts
        return "drop" if eff > 0 else "spike"


def labels_from_incidents(incidents: Iterable[Any]) -> list[Label]:
    """Labels from the generator's ground truth (:class:`pang.traffic.Incident`)."""
    return [Label(i.start, i.end, i.id, dict(i.effects)) for i in incidents]


def labels_from_csv(text: str, *, limit: int = 100_000) -> list[Label]:
    """Labels from CSV text with ``start,end`` columns (ISO 8601; naive times are UTC); a header row is optional."""
    out: list[Label] = []
    reader = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(reader, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise BacktestError(f"labels line {lineno}: expected start,end")
        a, b = row[0].strip(), row[1].strip()
        if lineno == 1 and a.lower() == "start":
            continue
        try:
            start, end = _parse_time(a), _parse_time(b)
        except ValueError:
            raise BacktestError(f"labels line {lineno}: {a[:40]!r} or {b[:40]!r} is not an ISO 8601 time") from None
        if not start < end:
            raise BacktestError(f"labels line {lineno}: start {a[:40]} is not before end {b[:40]}")
        out.append(Label(start, end, f"label-{lineno}"))
        if len(out) > limit:
            raise BacktestError(f"more than {limit} labelled windows; split the file")
    return out


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# --------------------------------------------------------------------------- the baseline


def seasonal_naive(
    series: Mapping[datetime, float | None], start: datetime, end: datetime, config: ModelConfig, band: float = 0.2
) -> list[Point]:
    """The same local minute last week, band ``+-band`` of it; a minute is outside on its own (no window sums)."""
    step = config.step
    s, e = _epoch_unit(start, step), _epoch_unit(end, step)
    first = s - grid_week(step) - max(2, 120 // step)
    grid = _build_grid(series, first, e, config)
    idx = np.arange(s - first, e - first, dtype=np.int64)
    refs = grid.at_local(grid.local[idx] - grid.week)
    last_week = grid.value(refs)
    obs = grid.values[idx]
    pts: list[Point] = []
    for t in range(len(idx)):
        exp = last_week[t]
        o = obs[t]
        low = bool(math.isnan(exp))
        lo, hi = (None, None) if low else (exp * (1 - band), exp * (1 + band))
        outside = None
        if not low and not math.isnan(o):
            outside = "drop" if o < lo else "spike" if o > hi else None  # type: ignore[operator]
        pts.append(Point(
            minute=_from_epoch_unit(s + t, step),
            observed=None if math.isnan(o) else float(o),
            expected=None if low else float(exp),
            lower=lo, upper=hi, low_confidence=low,
            cycles={"last_week": None if low else float(exp)},
            outside=outside, window=1, kind="seasonal_naive",
        ))
    return pts


# --------------------------------------------------------------------------- scoring


@dataclass
class BandScore:
    band: str
    incidents: int = 0
    detected_in_time: int = 0
    detected: int = 0
    recall: float | None = None
    delay_median_s: float | None = None
    delay_worst_s: float | None = None


@dataclass
class SignalScore:
    """One signal's figures (model or baseline)."""

    signal: str
    alerts: int
    true_alerts: int
    false_alarms: int
    precision: float | None
    must_detect: int
    detected_in_time: int
    detected: int
    recall: float | None  # within the deadline
    recall_any: float | None  # detected at all
    false_alarms_per_week: float
    delay_median_s: float | None
    delay_worst_s: float | None
    bands: list[BandScore] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)  # must-detect incidents not seen in time
    false_alarm_times: list[str] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)  # every detected incident's delay (pooled across files)


@dataclass
class BacktestReport:
    start: datetime
    end: datetime
    weeks: float
    deadline_s: int
    min_expected: float
    model: dict[str, SignalScore]
    baseline: dict[str, SignalScore]
    config: dict[str, Any]
    alerts: dict[str, list[Alert]] = field(default_factory=dict, repr=False)

    def meets_minimum(self, scores: Mapping[str, SignalScore] | None = None) -> dict[str, Any]:
        """The issue's minimum on orders and payments (incidents at >= ``min_expected``/min; <= 1 false alarm a week)."""
        scores = self.model if scores is None else scores
        out: dict[str, Any] = {}
        ok_all = True
        for name in MINIMUM_SIGNALS:
            sc = scores.get(name)
            if sc is None:
                continue
            eligible = [b for b in sc.bands if _band_lo(b.band) >= self.min_expected]
            n = sum(b.incidents for b in eligible)
            hit = sum(b.detected_in_time for b in eligible)
            ok = hit == n and sc.false_alarms_per_week <= 1.0
            ok_all &= ok
            out[name] = {"incidents": n, "detected_in_time": hit, "false_alarms_per_week": round(sc.false_alarms_per_week, 3), "met": ok}
        out["met"] = ok_all and bool(out)
        return out

    def to_json(self) -> dict[str, Any]:
        def sc(d: Mapping[str, SignalScore]) -> dict[str, Any]:
            return {k: _clean(asdict(v)) for k, v in d.items()}

        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "weeks": round(self.weeks, 3),
            "deadline_seconds": self.deadline_s,
            "min_expected_per_minute": self.min_expected,
            "signals": sc(self.model),
            "minimum": self.meets_minimum(),
            "baseline": {"signals": sc(self.baseline), "minimum": self.meets_minimum(self.baseline)},
            "config": self.config,
        }


def _band_lo(name: str) -> float:
    return next(lo for n, lo, _ in BANDS if n == name)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def grid_week(step: int) -> int:
    return 7 * 1440 // step


def _run_tracker(signal: str, points: Sequence[Point], config: ModelConfig, end: datetime) -> list[Alert]:
    """The alerts the runner's tracker would open on these points.

    The tracker counts minutes; on a coarser series it is fed one *tick* per
    point (K, N, M count points) and its alerts are mapped back to real times.
    """
    step = config.step
    tracker = AlertTracker(config)
    alerts: list[Alert] = []
    for p in points:
        fed = p if step == 1 else replace(p, minute=_from_epoch_minute(_epoch_minute(p.minute) // step))
        for ch in tracker.update(signal, fed):
            if ch.kind == "opened":
                alerts.append(ch.alert)
    return alerts if step == 1 else [_untick(a, step) for a in alerts]


def _untick(alert: Alert, step: int) -> Alert:
    def real(t: datetime) -> datetime:
        return _from_epoch_minute(_epoch_minute(t) * step)

    ev = dict(alert.evidence)
    for key in ("minute", "window_start"):
        if isinstance(ev.get(key), str):
            ev[key] = _iso(real(_parse_time(ev[key])))
    if "minutes_open" in ev:
        ev["minutes_open"] = int(ev["minutes_open"]) * step
    ev["step_minutes"] = step
    opened = real(alert.opened)
    return replace(alert, id=f"{alert.signal}-{alert.direction}-{opened.strftime('%Y%m%dT%H%MZ')}", opened=opened,
                   resolved=None if alert.resolved is None else real(alert.resolved), evidence=ev)


def score_alerts(
    signal: str,
    alerts: Sequence[Alert],
    labels: Sequence[Label],
    start: datetime,
    end: datetime,
    expected_at: Mapping[datetime, float],
    *,
    deadline: timedelta = timedelta(minutes=3),
    grace: timedelta = timedelta(minutes=5),
    step: timedelta = timedelta(minutes=1),
) -> SignalScore:
    """Precision, recall, false alarms per week and delays of one signal's alerts against the labels.

    An alert's point is the one that completed the rule (``opened - step``).
    """
    relevant = [lb for lb in labels if lb.concerns(signal) and lb.start < end and lb.end > start]
    scored = [a for a in alerts if start <= a.opened - step < end]
    true_alerts = 0
    fa_times: list[str] = []
    for a in scored:
        a_end = a.resolved or end
        if any(a.opened - step < lb.end + grace and a_end > lb.start - grace for lb in relevant):
            true_alerts += 1
        else:
            fa_times.append(_iso(a.opened))
    weeks = (end - start) / timedelta(days=7)
    bands = {name: BandScore(name) for name, _, _ in BANDS}
    band_delays: dict[str, list[float]] = {name: [] for name, _, _ in BANDS}
    delays: list[float] = []
    in_time = detected = must = 0
    missed: list[dict[str, Any]] = []
    for lb in relevant:
        if not lb.must_detect(signal) or not start <= lb.start < end:
            continue
        must += 1
        want = lb.direction(signal)
        e = expected_at.get(lb.start, math.nan)
        band = next((n for n, lo, hi in BANDS if lo <= e < hi), "<100")
        bands[band].incidents += 1
        hits = [a for a in alerts if (want is None or a.direction == want) and lb.start <= a.opened - step < lb.end + grace]
        open_at_start = [a for a in alerts if (want is None or a.direction == want)
                         and a.opened - step < lb.start and (a.resolved is None or a.resolved > lb.start)]
        first = min((a.opened for a in hits), default=None)
        if open_at_start:
            first = lb.start  # already alerting when it started
        if first is None:
            missed.append({"id": lb.id, "start": _iso(lb.start), "expected": _r(e), "effect": lb.effect(signal), "delay_s": None})
            continue
        delay = (first - lb.start).total_seconds()
        detected += 1
        delays.append(delay)
        band_delays[band].append(delay)
        bands[band].detected += 1
        if delay <= deadline.total_seconds():
            in_time += 1
            bands[band].detected_in_time += 1
        else:
            missed.append({"id": lb.id, "start": _iso(lb.start), "expected": _r(e), "effect": lb.effect(signal), "delay_s": delay})
    for name, b in bands.items():
        if b.incidents:
            b.recall = b.detected_in_time / b.incidents
            d = band_delays[name]
            b.delay_median_s = statistics.median(d) if d else None
            b.delay_worst_s = max(d) if d else None
    return SignalScore(
        signal=signal,
        alerts=len(scored),
        true_alerts=true_alerts,
        false_alarms=len(fa_times),
        precision=true_alerts / len(scored) if scored else None,
        must_detect=must,
        detected_in_time=in_time,
        detected=detected,
        recall=in_time / must if must else None,
        recall_any=detected / must if must else None,
        false_alarms_per_week=len(fa_times) / weeks if weeks > 0 else 0.0,
        delay_median_s=statistics.median(delays) if delays else None,
        delay_worst_s=max(delays) if delays else None,
        bands=list(bands.values()),
        missed=missed,
        false_alarm_times=fa_times,
        delays_s=delays,
    )


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 1)


def backtest(
    series_by_signal: Mapping[str, Mapping[datetime, float | None]],
    labels: Sequence[Label],
    start: datetime,
    end: datetime,
    config: ModelConfig,
    *,
    baseline_band: float = 0.2,
    deadline: timedelta = timedelta(minutes=3),
    min_expected: float = 300.0,
    ratios: Iterable[str] = (),
) -> BacktestReport:
    """Score the model and the seasonal-naive baseline on every signal over ``[start, end)``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if not start < end:
        raise BacktestError("the backtest range is empty: --from must be before --to")
    ratio_names = set(ratios)
    model_scores: dict[str, SignalScore] = {}
    base_scores: dict[str, SignalScore] = {}
    all_alerts: dict[str, list[Alert]] = {}
    for signal, series in series_by_signal.items():
        cfg = config.for_ratio() if signal in ratio_names else config
        ev = evaluate_arrays(series, start, end, cfg, with_cycles=False)
        points = _points(ev)
        expected_at = {p.minute: _mean_expected(ev, i) for i, p in enumerate(points)}
        alerts = _run_tracker(signal, points, cfg, end)
        all_alerts[signal] = alerts
        model_scores[signal] = score_alerts(signal, alerts, labels, start, end, expected_at, deadline=deadline,
                                            step=timedelta(minutes=cfg.step))
        naive = seasonal_naive(series, start, end, cfg, baseline_band)
        base_scores[signal] = score_alerts(signal, _run_tracker(signal, naive, cfg, end), labels, start, end, expected_at,
                                           deadline=deadline, step=timedelta(minutes=cfg.step))
    cfg_out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
    cfg_out["baseline_band"] = baseline_band
    return BacktestReport(start, end, (end - start) / timedelta(days=7), int(deadline.total_seconds()), min_expected,
                          model_scores, base_scores, cfg_out, all_alerts)


def _mean_expected(ev: Any, i: int) -> float:
    """The expected count per minute over an incident's first 3 minutes (what the statistics depend on)."""
    vals = ev.expected[i : i + 3]
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else math.nan


def _points(ev: Any) -> list[Point]:
    """Points for the tracker without cycles (the backtest's fast path)."""
    direction = {-1: "drop", 1: "spike", 0: None}
    out: list[Point] = []
    obs, exp, low, outside, win = ev.observed.tolist(), ev.expected.tolist(), ev.low_confidence.tolist(), ev.outside.tolist(), ev.window.tolist()
    lower, upper, score = ev.lower.tolist(), ev.upper.tolist(), ev.score.tolist()
    for t, m in enumerate(ev.minutes.tolist()):
        o, e = obs[t], exp[t]
        o_ok, e_ok = o == o, e == e
        out.append(Point(
            minute=_from_epoch_minute(m),
            observed=o if o_ok else None,
            expected=e if e_ok else None,
            lower=lower[t] if e_ok else None,
            upper=upper[t] if e_ok else None,
            low_confidence=bool(low[t]),
            outside=None if low[t] else direction[outside[t]],  # type: ignore[arg-type]
            score=score[t],
            window=win[t] or None,
        ))
    return out


# --------------------------------------------------------------------------- the table


def _fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "pct":
        return f"{v:.0%}"
    if kind == "s":
        return f"{v:.0f}s"
    return f"{v:.2f}"


def format_report(report: BacktestReport) -> str:
    """The table a person reads: per signal, the model and the baseline side by side; then the minimum."""
    lines = [
        f"backtest {_iso(report.start)} .. {_iso(report.end)} ({report.weeks:.1f} weeks), "
        f"deadline {report.deadline_s}s, band width {report.config.get('band_width')}, "
        f"K={report.config.get('k')} N={report.config.get('n')} M={report.config.get('m')}",
        "",
    ]
    head = f"{'signal':<18} {'':<9} {'alerts':>6} {'prec':>6} {'recall':>7} {'any':>5} {'FA/wk':>6} {'delay med':>9} {'worst':>7}"
    lines.append(head)
    lines.append("-" * len(head))
    for signal, m in report.model.items():
        for label, sc in (("model", m), ("baseline", report.baseline[signal])):
            lines.append(
                f"{signal if label == 'model' else '':<18} {label:<9} {sc.alerts:>6} {_fmt(sc.precision, 'pct'):>6} "
                f"{_fmt(sc.recall, 'pct'):>7} {_fmt(sc.recall_any, 'pct'):>5} {sc.false_alarms_per_week:>6.2f} "
                f"{_fmt(sc.delay_median_s, 's'):>9} {_fmt(sc.delay_worst_s, 's'):>7}"
            )
        parts = []
        for b in m.bands:
            if b.incidents:
                parts.append(f"{b.band}: {b.detected_in_time}/{b.incidents} in time, median {_fmt(b.delay_median_s, 's')}, worst {_fmt(b.delay_worst_s, 's')}")
        if parts:
            lines.append(f"{'':<18} by expected/min  " + "; ".join(parts))
    lines.append("")
    mini = report.meets_minimum()
    for name in MINIMUM_SIGNALS:
        if name in mini:
            r = mini[name]
            lines.append(f"minimum {name}: {r['detected_in_time']}/{r['incidents']} must-detect incidents at >= "
                         f"{report.min_expected:.0f}/min within {report.deadline_s}s, {r['false_alarms_per_week']:.2f} false alarms/week "
                         f"-> {'met' if r['met'] else 'NOT met'}")
    lines.append(f"minimum (issue 6): {'met' if mini.get('met') else 'NOT met'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the generator's month


def generator_series(
    start: datetime, end: datetime, seed: int | None = None, timezone: str = "Europe/Berlin", history: timedelta | None = None
) -> tuple[dict[str, dict[datetime, float]], list[Label]]:
    """The generator's counts for ``[start - history, end)`` (default: 13 weeks) and its incidents in ``[start, end)``."""
    from pang import traffic

    model = traffic.RateModel(timezone=timezone)
    seed = traffic.DEFAULT_SEED if seed is None else seed
    if end - start > timedelta(days=400):
        raise BacktestError("the range is longer than 400 days; backtest a shorter one")
    first = start - (history if history is not None else timedelta(weeks=13))
    series: dict[str, dict[datetime, float]] = {}
    for minute, signal, n in traffic.rollups(first, end, seed, model=model):
        series.setdefault(signal, {})[minute] = n
    return series, generator_labels(start, end, seed, timezone)


def generator_labels(start: datetime, end: datetime, seed: int | None = None, timezone: str = "Europe/Berlin") -> list[Label]:
    """The generator's ground-truth incidents overlapping ``[start, end)``."""
    from pang import traffic

    model = traffic.RateModel(timezone=timezone)
    return labels_from_incidents(traffic.incidents(start, end, traffic.DEFAULT_SEED if seed is None else seed, model=model))


def generator_inputs(
    seed: int | None = None, timezone: str = "Europe/Berlin", history_months: int = 3
) -> tuple[dict[str, dict[datetime, float]], list[Label], datetime, datetime]:
    """The generator's default month: its series from ``history_months`` local months before it, labels, start, end."""
    from pang import traffic

    model = traffic.RateModel(timezone=timezone)
    start, end = traffic.default_month(model)
    local = start.astimezone(model.tz)
    y, m = local.year, local.month - history_months
    while m < 1:
        y, m = y - 1, m + 12
    hist = datetime(y, m, 1, tzinfo=model.tz).astimezone(UTC)
    series, labels = generator_series(start, end, seed, timezone, history=start - hist)
    return series, labels, start, end


# --------------------------------------------------------------------------- users' series


@dataclass
class EventScore:
    """Event-window figures: a labelled window is *found* when an alert opens on one of its points
    (with ``k``: on one of its first ``k`` points)."""

    windows: int = 0
    found: int = 0
    recall: float | None = None
    k: int | None = None
    delay_median_points: float | None = None
    delay_worst_points: int | None = None
    delays_points: list[int] = field(default_factory=list)


@dataclass
class PointScore:
    """Point-wise figures without point adjustment: a point is *flagged* from the point an alert opened on
    to its last point outside the band in the alert's direction; *labelled* when inside a window."""

    points: int = 0
    labelled: int = 0
    flagged: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None


@dataclass
class AlarmRow:
    """One line of ``--alarms-out``: an input row with the model's decision on its point."""

    timestamp: str
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    alarm: int


@dataclass
class SeriesScores:
    """One detector's figures on one series (the model or the seasonal-naive baseline)."""

    time: SignalScore
    events: EventScore
    pointwise: PointScore


@dataclass
class SeriesReport:
    """The backtest of one series file."""

    name: str
    step_minutes: int
    kind: str  # "count" or "value"
    rows: int
    gaps: int  # grid points without a row
    merged: int  # rows that shared a point with an earlier row (added up)
    start: datetime
    end: datetime
    weeks: float
    low_confidence_points: int
    level_points: int  # points judged against the recent level (no cycle)
    labels_outside: int  # labelled windows outside the series
    model: SeriesScores
    baseline: SeriesScores
    alerts: list[Alert] = field(default_factory=list, repr=False)
    rows_out: list[AlarmRow] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        def sc(x: SeriesScores) -> dict[str, Any]:
            return {**_clean(asdict(x.time)), "events": _clean(asdict(x.events)), "pointwise": _clean(asdict(x.pointwise))}

        return {
            "name": self.name,
            "step_minutes": self.step_minutes,
            "kind": self.kind,
            "rows": self.rows,
            "gaps": self.gaps,
            "merged_rows": self.merged,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "weeks": round(self.weeks, 3),
            "low_confidence_points": self.low_confidence_points,
            "recent_level_points": self.level_points,
            "labels_outside_series": self.labels_outside,
            "model": sc(self.model),
            "baseline": sc(self.baseline),
            "alerts": [{"opened": _iso(a.opened), "resolved": None if a.resolved is None else _iso(a.resolved),
                        "direction": a.direction, "severity": a.severity} for a in self.alerts],
        }


def backtest_series(
    series: Any,
    labels: Sequence[Label],
    config: ModelConfig,
    *,
    k: int | None = None,
    baseline_band: float = 0.2,
    deadline_points: int = 3,
    grace_points: int = 5,
) -> SeriesReport:
    """Replay one user series (a :class:`pang.steady.series.Series`) through the model and score it.

    The model runs on the series' own step (``config.step`` is replaced by it;
    windows, K, N, M count points) and judges every point from the first row
    on, causally: the first weeks are its cold start (low confidence, no
    alert), as they would be in production. Non-count values (negative or
    fractional) get no counting-noise floor. The time figures use a deadline
    of ``deadline_points`` points (3 minutes on a 1-minute series).
    """
    if k is not None and k < 1:
        raise BacktestError("k (points of a window an alert must open in) must be at least 1")
    step = int(series.step)
    cfg = replace(config, step=step)
    if not series.is_count:
        cfg = cfg.for_ratio()
    start, end = series.start, series.end
    step_td = timedelta(minutes=step)
    ev = evaluate_arrays(series.points, start, end, cfg, with_cycles=False)
    points = _points(ev)
    name = str(series.name)
    alerts = _run_tracker(name, points, cfg, end)
    expected_at = {p.minute: (float(x) if x == x else math.nan) for p, x in zip(points, ev.expected.tolist())}
    deadline, grace = deadline_points * step_td, grace_points * step_td
    naive = seasonal_naive(series.points, start, end, cfg, baseline_band)
    base_alerts = _run_tracker(name, naive, cfg, end)
    first = _epoch_minute(start)
    row_idx = sorted({(_epoch_minute(t) - first) // step for t in series.row_point})
    relevant = [lb for lb in labels if lb.start < end and lb.end > start]
    model_dirs = [None if low else {-1: "drop", 1: "spike"}.get(o) for o, low in zip(ev.outside.tolist(), ev.low_confidence.tolist())]
    base_dirs = [p.outside for p in naive]

    def scores(al: list[Alert], dirs: list[str | None]) -> SeriesScores:
        return SeriesScores(
            score_alerts(name, al, relevant, start, end, expected_at, deadline=deadline, grace=grace, step=step_td),
            _event_windows(al, relevant, start, step, k),
            _pointwise(al, dirs, relevant, start, step, row_idx),
        )

    report = SeriesReport(
        name=name,
        step_minutes=step,
        kind="count" if series.is_count else "value",
        rows=len(series.times),
        gaps=int(series.gaps),
        merged=int(series.merged),
        start=start,
        end=end,
        weeks=(end - start) / timedelta(days=7),
        low_confidence_points=int(np.sum(ev.low_confidence & ~np.isnan(ev.observed))),
        level_points=int(np.sum(ev.kind == 4)),
        labels_outside=len(labels) - len(relevant),
        model=scores(alerts, model_dirs),
        baseline=scores(base_alerts, base_dirs),
        alerts=alerts,
    )
    report.rows_out = _alarm_rows(series, ev, alerts, start, step)
    return report


def _index(t: datetime, first: int, step: int) -> int:
    return (_epoch_minute(t) - first) // step


def _event_windows(alerts: Sequence[Alert], labels: Sequence[Label], start: datetime, step: int, k: int | None) -> EventScore:
    first = _epoch_minute(start)
    opened = sorted(_index(a.opened, first, step) - 1 for a in alerts)  # the point that completed the rule
    out = EventScore(windows=len(labels), k=k)
    for lb in labels:
        f = max(0, -(-(_epoch_minute(lb.start) - first) // step))  # the window's first point (ceil)
        last = -(-(_epoch_minute(lb.end) - first) // step)  # exclusive
        if k is not None:
            last = min(last, f + k)
        hit = next((a for a in opened if f <= a < last), None)
        if hit is not None:
            out.found += 1
            out.delays_points.append(hit - f)
    if out.windows:
        out.recall = out.found / out.windows
    if out.delays_points:
        out.delay_median_points = float(statistics.median(out.delays_points))
        out.delay_worst_points = max(out.delays_points)
    return out


def _flagged(alerts: Sequence[Alert], dirs: Sequence[str | None], start: datetime, step: int) -> set[int]:
    first = _epoch_minute(start)
    out: set[int] = set()
    for a in alerts:
        a0 = _index(a.opened, first, step) - 1
        a1 = len(dirs) if a.resolved is None else min(len(dirs), _index(a.resolved, first, step))
        last = a0
        for i in range(a0, a1):
            if dirs[i] == a.direction:
                last = i
        out.update(range(a0, last + 1))
    return out


def _pointwise(alerts: Sequence[Alert], dirs: Sequence[str | None], labels: Sequence[Label], start: datetime,
               step: int, row_idx: Sequence[int]) -> PointScore:
    first = _epoch_minute(start)
    flagged = _flagged(alerts, dirs, start, step)
    labelled: set[int] = set()
    for lb in labels:
        f = max(0, -(-(_epoch_minute(lb.start) - first) // step))
        last = -(-(_epoch_minute(lb.end) - first) // step)
        labelled.update(range(f, last))
    ps = PointScore(points=len(row_idx))
    for i in row_idx:
        lab, fl = i in labelled, i in flagged
        ps.labelled += lab
        ps.flagged += fl
        ps.tp += lab and fl
        ps.fp += fl and not lab
        ps.fn += lab and not fl
    _prf(ps)
    return ps


def _prf(ps: PointScore) -> None:
    ps.precision = ps.tp / (ps.tp + ps.fp) if ps.tp + ps.fp else None
    ps.recall = ps.tp / (ps.tp + ps.fn) if ps.tp + ps.fn else None
    if ps.precision is not None and ps.recall is not None and ps.precision + ps.recall > 0:
        ps.f1 = 2 * ps.precision * ps.recall / (ps.precision + ps.recall)
    elif ps.precision is not None and ps.recall is not None:
        ps.f1 = 0.0


def _alarm_rows(series: Any, ev: Any, alerts: Sequence[Alert], start: datetime, step: int) -> list[AlarmRow]:
    """One row per input row: the row's point's band (empty where nothing was judged) and 1 where an alert opened."""
    first = _epoch_minute(start)
    opened = {_index(a.opened, first, step) - 1 for a in alerts}
    exp, lower, upper, low = ev.expected.tolist(), ev.lower.tolist(), ev.upper.tolist(), ev.low_confidence.tolist()
    rows: list[AlarmRow] = []
    texts = series.texts or [_iso(t) for t in series.times]
    for text, value, point in zip(texts, series.values, series.row_point):
        i = _index(point, first, step)
        judged = value is not None and not low[i] and exp[i] == exp[i]
        alarm = 1 if i in opened else 0
        if alarm:
            opened.discard(i)  # the first row of the point carries the alarm
        rows.append(AlarmRow(text, value, exp[i] if judged else None, lower[i] if judged else None,
                             upper[i] if judged else None, alarm))
    return rows


def write_alarm_rows(reports: Sequence[SeriesReport], fh: Any) -> int:
    """``timestamp,value,expected,lower,upper,alarm`` (plus ``file`` first when there are several files); rows written."""
    many = len(reports) > 1
    w = csv.writer(fh, lineterminator="\n")
    w.writerow((["file"] if many else []) + ["timestamp", "value", "expected", "lower", "upper", "alarm"])
    n = 0
    for rep in reports:
        for r in rep.rows_out:
            w.writerow(([rep.name] if many else []) + [r.timestamp, _num(r.value), _num(r.expected, 3), _num(r.lower, 3), _num(r.upper, 3), r.alarm])
            n += 1
    return n


def _num(v: float | None, nd: int | None = None) -> str:
    if v is None or not math.isfinite(v):
        return ""
    if nd is None:
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return f"{v:.{nd}f}"


def summarise(reports: Sequence[SeriesReport]) -> dict[str, Any]:
    """Figures over every file: counts added up, rates recomputed from the sums, delays pooled."""
    def over(pick: str) -> dict[str, Any]:
        sc = [getattr(r, pick) for r in reports]
        alerts = sum(s.time.alerts for s in sc)
        true = sum(s.time.true_alerts for s in sc)
        fa = sum(s.time.false_alarms for s in sc)
        must = sum(s.time.must_detect for s in sc)
        in_time = sum(s.time.detected_in_time for s in sc)
        detected = sum(s.time.detected for s in sc)
        weeks = sum(r.weeks for r in reports)
        delays = [d for s in sc for d in s.time.delays_s]
        ev = EventScore(windows=sum(s.events.windows for s in sc), found=sum(s.events.found for s in sc),
                        k=sc[0].events.k if sc else None, delays_points=[d for s in sc for d in s.events.delays_points])
        ev.recall = ev.found / ev.windows if ev.windows else None
        if ev.delays_points:
            ev.delay_median_points = float(statistics.median(ev.delays_points))
            ev.delay_worst_points = max(ev.delays_points)
        ps = PointScore(**{f: sum(getattr(s.pointwise, f) for s in sc) for f in ("points", "labelled", "flagged", "tp", "fp", "fn")})
        _prf(ps)
        return {
            "alerts": alerts, "true_alerts": true, "false_alarms": fa,
            "precision": true / alerts if alerts else None,
            "must_detect": must, "detected_in_time": in_time, "detected": detected,
            "recall": in_time / must if must else None, "recall_any": detected / must if must else None,
            "false_alarms_per_week": fa / weeks if weeks > 0 else 0.0,
            "delay_median_s": statistics.median(delays) if delays else None,
            "delay_worst_s": max(delays) if delays else None,
            "events": asdict(ev), "pointwise": asdict(ps),
        }

    return _clean({"files": len(reports), "rows": sum(r.rows for r in reports), "weeks": sum(r.weeks for r in reports),
                   "model": over("model"), "baseline": over("baseline")})


def series_json(reports: Sequence[SeriesReport]) -> dict[str, Any]:
    """``--json`` of a series backtest: every file's figures and the overall ones (the baseline beside each)."""
    return {"files": [r.to_json() for r in reports], "overall": summarise(reports)}


def format_series_reports(reports: Sequence[SeriesReport], k: int | None = None) -> str:
    """The table a person reads: per file the model and the baseline; then the overall figures."""
    win = f"first {k} points" if k else "anywhere in the window"
    head = (f"{'series':<28} {'':<9} {'alerts':>6} {'prec':>5} {'recall':>6} {'FA/wk':>6} {'delay med':>9} {'worst':>7}"
            f"  {'windows':>7} {'ev.rec':>6}  {'pt P':>5} {'pt R':>5} {'pt F1':>5}")
    lines = [f"series backtest: {len(reports)} file(s); recall within 3 points of a window's start; "
             f"a window is found when an alert opens {win}; point-wise without point adjustment", "", head, "-" * len(head)]

    def row(label: str, who: str, t: dict[str, Any], ev: dict[str, Any], pw: dict[str, Any]) -> str:
        return (f"{label[:28]:<28} {who:<9} {t['alerts']:>6} {_fmt(t['precision'], 'pct'):>5} {_fmt(t['recall'], 'pct'):>6} "
                f"{t['false_alarms_per_week']:>6.2f} {_fmt(t['delay_median_s'], 's'):>9} {_fmt(t['delay_worst_s'], 's'):>7}"
                f"  {str(ev['found']) + '/' + str(ev['windows']):>7} {_fmt(ev['recall'], 'pct'):>6}"
                f"  {_fmt(pw['precision'], 'pct'):>5} {_fmt(pw['recall'], 'pct'):>5} {_fmt(pw['f1'], 'num'):>5}")

    for r in reports:
        for who, sc in (("model", r.model), ("baseline", r.baseline)):
            label = _short_name(r.name) if who == "model" else f"  {r.step_minutes} min, {r.kind}, {r.rows} rows"
            lines.append(row(label, who, asdict(sc.time), asdict(sc.events), asdict(sc.pointwise)))
        notes = []
        if r.gaps:
            notes.append(f"{r.gaps} gap points")
        if r.low_confidence_points:
            notes.append(f"{r.low_confidence_points} low-confidence points (cold start, too few cycles)")
        if r.level_points:
            notes.append(f"{r.level_points} points against the recent level (no cycle)")
        if r.merged:
            notes.append(f"{r.merged} rows added to a neighbour on the grid")
        if notes:
            lines.append(f"{'':<28} " + "; ".join(notes))
    if len(reports) > 1:
        s = summarise(reports)
        lines.append("-" * len(head))
        for who in ("model", "baseline"):
            lines.append(row("overall" if who == "model" else "", who, s[who], s[who]["events"], s[who]["pointwise"]))
    return "\n".join(lines)


def _short_name(name: str) -> str:
    from pathlib import PurePath

    p = PurePath(name)
    return p.name if len(name) > 28 else name
