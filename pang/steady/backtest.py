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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from pang.steady.alerts import Alert, AlertTracker
from pang.steady.model import ModelConfig, Point, evaluate_arrays, _build_grid, _epoch_minute, _from_epoch_minute

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
    s, e = _epoch_minute(start), _epoch_minute(end)
    first = s - 7 * 1440 - 120
    grid = _build_grid(series, first, e, config)
    idx = np.arange(s - first, e - first, dtype=np.int64)
    refs = grid.at_local(grid.local[idx] - 7 * 1440)
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
            minute=_from_epoch_minute(s + t),
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


def _run_tracker(signal: str, points: Sequence[Point], config: ModelConfig, end: datetime) -> list[Alert]:
    tracker = AlertTracker(config)
    alerts: list[Alert] = []
    for p in points:
        for ch in tracker.update(signal, p):
            if ch.kind == "opened":
                alerts.append(ch.alert)
    return alerts


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
) -> SignalScore:
    """Precision, recall, false alarms per week and delays of one signal's alerts against the labels."""
    relevant = [lb for lb in labels if lb.concerns(signal) and lb.start < end and lb.end > start]
    scored = [a for a in alerts if start <= a.opened - timedelta(minutes=1) < end]
    true_alerts = 0
    fa_times: list[str] = []
    for a in scored:
        a_end = a.resolved or end
        if any(a.opened - timedelta(minutes=1) < lb.end + grace and a_end > lb.start - grace for lb in relevant):
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
        hits = [a for a in alerts if (want is None or a.direction == want) and lb.start <= a.opened - timedelta(minutes=1) < lb.end + grace]
        open_at_start = [a for a in alerts if (want is None or a.direction == want)
                         and a.opened - timedelta(minutes=1) < lb.start and (a.resolved is None or a.resolved > lb.start)]
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
        model_scores[signal] = score_alerts(signal, alerts, labels, start, end, expected_at, deadline=deadline)
        naive = seasonal_naive(series, start, end, cfg, baseline_band)
        base_scores[signal] = score_alerts(signal, _run_tracker(signal, naive, cfg, end), labels, start, end, expected_at, deadline=deadline)
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
