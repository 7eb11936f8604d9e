"""``pang steady run``: every few seconds, judge the minutes that became complete, and say so when one goes wrong.

A pass is one transaction: count the new complete minutes in the logs,
store them as rollups, evaluate them against their expectation, feed the
alert tracker, write the alert events, then save the state
(``<state_dir>/steady/alerts.json``: the next minute to judge, the tracker,
the last point per signal). If any step fails, the tracker goes back to the
saved state and the same minutes are judged again at the next pass, which
gives the same alerts with the same ids: nothing is lost and nothing doubles.
Webhooks are queued only after the events are stored.

A minute is *complete* ``steady_lag_seconds`` after it ended: the agent ships
within seconds, but a minute judged while its documents are still on the way
would look like a drop.

The history the model needs (weeks of minutes, the 1st of earlier months) is
read from ``metrics-business-*`` once at start and kept in memory; each pass
adds its own minutes. On the very first run the history is backfilled: from
the logs still in OpenSearch (only minutes that have logs), or with
``--from-generator`` from the demo traffic's exact counts.

/metrics and /healthz are served like the agent's (``steady_http_port``);
SIGTERM or SIGINT ends the loop after the current pass and drains the
webhook queue briefly.
"""

from __future__ import annotations

import json
import logging
import os
import signal as signals_
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pang.metrics_http import metrics_server
from pang.settings import Settings
from pang.steady.alerts import AlertTracker
from pang.steady.model import ModelConfig, Point, evaluate, model_config
from pang.steady.notify import Notifier, NotifyError, alert_message
from pang.steady.rollups import (
    MINUTE,
    RollupError,
    backfill_from_generator,
    compute_rollups,
    count_signals,
    latest_rollup,
    log_coverage,
    read_counts,
    refresh_rollups,
    utc_minute,
    write_rollups,
)
from pang.steady.signals import Signal, signals_from

log = logging.getLogger("pang.steady")

STATE_VERSION = 1
MAX_PASS = timedelta(days=1)  # a catch-up after downtime goes in day-sized passes
WARMUP = timedelta(minutes=30)  # first run: judge the last half hour too, so an ongoing problem shows at once
LOOKBACK_MARGIN = timedelta(hours=2)  # history beyond what the cycles need: the last-hour scaling and slack


class SteadyError(RuntimeError):
    """Something a person can act on (the cluster, the state file); ``str()`` is one line."""


# --- how much history ---------------------------------------------------------------------------------


def history_needed(config: ModelConfig) -> timedelta:
    """How far back the model looks from a minute for the weekly rule (and the level factor around it)."""
    return timedelta(weeks=config.history_weeks) + LOOKBACK_MARGIN


def history_spans(config: ModelConfig, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC spans of history the model reads to judge ``[start, end)``, merged and in order.

    All minutes of the last ``history_weeks`` weeks, and for the month-start
    window only the days around the 1st of each of the ``month_history``
    earlier months: about 70 days instead of seven months.
    """
    day = timedelta(days=1)
    spans = [(_floor_day(start - history_needed(config)), end)]
    tz = config.tz
    local = end.astimezone(tz)
    for back in range(0, config.month_history + 2):
        y, m = local.year, local.month - back
        while m < 1:
            y, m = y - 1, m + 12
        first = datetime(y, m, 1, tzinfo=tz).astimezone(UTC)
        lo, hi = _floor_day(first - day), _floor_day(first + day) + day
        if lo < end:
            spans.append((lo, min(hi, end)))
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _floor_day(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def read_history(settings: Settings, config: ModelConfig, start: datetime, end: datetime, names: Iterable[str]) -> dict[str, dict[datetime, float]]:
    """Stored counts of ``names`` over the model's history spans for ``[start, end)``."""
    names = list(names)
    out: dict[str, dict[datetime, float]] = {n: {} for n in names}
    for lo, hi in history_spans(config, start, end):
        got = read_counts(settings, lo, hi, names)
        for n in names:
            out[n].update(got[n])
    return out


def config_for(config: ModelConfig, sig: Signal) -> ModelConfig:
    """Ratios have no counting floor."""
    return config if sig.action else config.for_ratio()


# --- series in memory ---------------------------------------------------------------------------------


class _Ratio(Mapping[datetime, float]):
    """A ratio signal's series, divided on lookup (no copy of months of minutes per pass)."""

    def __init__(self, num: Mapping[datetime, float], den: Mapping[datetime, float]) -> None:
        self.num, self.den = num, den

    def __getitem__(self, minute: datetime) -> float:
        d = self.den[minute]
        n = self.num[minute]
        if not d:
            raise KeyError(minute)
        return n / d

    def __contains__(self, minute: object) -> bool:
        return minute in self.den and minute in self.num and bool(self.den[minute])  # type: ignore[index]

    def __iter__(self) -> Iterator[datetime]:
        return (m for m in self.den if self.den[m] and m in self.num)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def series_for(counts: Mapping[str, Mapping[datetime, float]], sig: Signal) -> Mapping[datetime, float]:
    if sig.action:
        return counts.get(sig.name, {})
    return _Ratio(counts.get(sig.numerator or "", {}), counts.get(sig.denominator or "", {}))


# --- state ---------------------------------------------------------------------------------------------


def state_path(settings: Settings) -> Path:
    return settings.state_dir / "steady" / "alerts.json"


def point_json(p: Point) -> dict[str, Any]:
    def f(v: Any) -> Any:
        return None if v is None else float(v)

    return {
        "minute": p.minute.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "observed": f(p.observed), "expected": f(p.expected), "lower": f(p.lower), "upper": f(p.upper),
        "low_confidence": bool(p.low_confidence),
        "cycles": {k: f(v) for k, v in (p.cycles or {}).items()},
    }


def _tracker_json(tracker: AlertTracker) -> Any:
    raw = tracker.to_json()
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw


def _tracker_from(config: ModelConfig, raw: Any) -> AlertTracker:
    return AlertTracker(config) if raw is None else AlertTracker.from_json(config, raw)


@dataclass
class SavedState:
    next_minute: datetime | None = None  # the first minute not judged yet
    rolled_until: datetime | None = None  # rollups of the logs exist before this minute
    tracker: Any = None
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    saved_at: float = 0.0

    @classmethod
    def load(cls, path: Path) -> SavedState:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise SteadyError(f"cannot read {path}: {exc} (move it away to start over)") from None
        return cls(
            next_minute=_when(raw.get("next_minute")), rolled_until=_when(raw.get("rolled_until")),
            tracker=raw.get("tracker"), points=raw.get("points") or {}, saved_at=float(raw.get("saved_at") or 0),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "version": STATE_VERSION,
            "next_minute": _iso(self.next_minute),
            "rolled_until": _iso(self.rolled_until),
            "tracker": self.tracker,
            "points": self.points,
            "saved_at": time.time(),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1))
        os.replace(tmp, path)  # never a half-written state file


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC) if value else None


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


# --- the loop ------------------------------------------------------------------------------------------


@dataclass
class RunnerStats:
    passes: int = 0
    pass_failures: int = 0
    minutes_judged: int = 0
    rollups_written: int = 0
    backfilled: int = 0
    alerts_opened: int = 0
    alerts_resolved: int = 0
    last_success: float = 0.0
    last_error: str = ""


class Runner:
    """The steady-state loop; :meth:`step` is one pass (tests call it with their own ``now``)."""

    def __init__(self, settings: Settings, *, from_generator: bool = False, seed: int | None = None) -> None:
        self.settings = settings
        self.signals = signals_from(settings)
        self.config = model_config(settings)
        self.counts_needed = count_signals(self.signals)
        self.history = history_needed(self.config)
        self.from_generator = from_generator
        self.seed = seed
        self.path = state_path(settings)
        self.saved = SavedState.load(self.path)
        self.tracker = _tracker_from(self.config, self.saved.tracker)
        self.counts: dict[str, dict[datetime, float]] = {name: {} for name in self.counts_needed}
        self.loaded = False
        self.last_points: dict[str, Point] = {}
        self.notifier = Notifier(settings, ratios=[s.name for s in self.signals if not s.action])
        self.stats = RunnerStats()
        self.started = time.time()
        self._stop = threading.Event()
        self.http: WSGIServer | None = None

    # --- time ---

    def complete_end(self, now: datetime) -> datetime:
        """The end (exclusive) of the complete minutes at ``now``."""
        return utc_minute(now - timedelta(seconds=self.settings.steady_lag_seconds))

    # --- start: backfill and history ---

    def prepare(self, now: datetime) -> None:
        """First run: backfill; every run: read the history into memory."""
        end = self.complete_end(now)
        if self.saved.next_minute is None:
            self.saved.rolled_until = self._backfill(end, [s for s in self.signals if s.action])
            self.saved.next_minute = max(self.saved.rolled_until - WARMUP, end - self.history)
        else:
            # a count signal added to the settings since the last run gets its history too
            new = [s for s in self.signals if s.action and latest_rollup(self.settings, [s.name]) is None]
            if new and self.saved.rolled_until:
                log.info("new signal(s) %s: backfilling their history", ", ".join(s.name for s in new))
                self._backfill(min(self.saved.rolled_until, end), new)
        rolled = self.saved.rolled_until or self.saved.next_minute
        nxt = min(self.saved.next_minute, end)
        self.counts = read_history(self.settings, self.config, nxt, rolled, self.counts_needed)
        self.loaded = True
        log.info("history read: %s minutes of %s", f"{sum(len(v) for v in self.counts.values()):,}", ", ".join(self.counts_needed))

    def _backfill(self, end: datetime, signals: list[Signal]) -> datetime:
        """Make sure the history the model looks back on is stored for these count signals; returns where rollups end.

        Existing rollups are kept (a new state folder next to an old history);
        the demo takes the generator's counts; otherwise the logs still in
        OpenSearch are counted, from their first whole minute.
        """
        spans = history_spans(self.config, end, end)
        latest = latest_rollup(self.settings, [s.name for s in signals])
        if self.from_generator:
            # the generator knows every minute, also those no demo was running for: fill from the last rollup on
            for lo, hi in spans:
                lo = max(lo, latest + MINUTE) if latest is not None else lo
                if lo >= hi:
                    continue
                log.info("backfilling rollups from the traffic generator: %s to %s", f"{lo:%Y-%m-%d %H:%M}", f"{hi:%Y-%m-%d %H:%M}")
                self.stats.backfilled += backfill_from_generator(self.settings, lo, hi, self.seed, signals=signals)
            return end
        if latest is not None and latest >= end - self.history:
            log.info("rollups exist up to %s: continuing from there", f"{latest:%Y-%m-%d %H:%M}")
            return min(latest + MINUTE, end)
        coverage = log_coverage(self.settings, signals)
        if coverage is None:
            log.warning("no business events in the logs yet: judging starts now, with low confidence until history builds up")
            return end
        first = coverage[0] + MINUTE  # the very first minute may be half shipped
        for lo, hi in spans:
            t = max(lo, first)
            while t < hi:
                step_end = min(hi, t + MAX_PASS)
                counts = compute_rollups(self.settings, t, step_end, signals)
                self.stats.backfilled += write_rollups(self.settings, counts, refresh=False)
                t = step_end
        refresh_rollups(self.settings)
        log.info("backfilled %s rollups from the logs since %s", f"{self.stats.backfilled:,}", f"{max(first, spans[0][0]):%Y-%m-%d %H:%M}")
        return end

    # --- one pass ---

    def step(self, now: datetime | None = None) -> list[Any]:
        """Judge the minutes completed since the last pass; returns the alert changes it made."""
        now = now or datetime.now(UTC)
        if not self.loaded:
            self.prepare(now)
        end = self.complete_end(now)
        lo = self.saved.next_minute or end
        if lo < end - self.history:
            lo = end - self.history  # down longer than the model looks back: judge only what it can
        if lo >= end:
            return []
        hi = min(end, lo + MAX_PASS)
        rolled = max(lo, self.saved.rolled_until or lo)
        self.stats.passes += 1
        try:
            if rolled < hi:
                counts = compute_rollups(self.settings, rolled, hi, self.signals)
                self.stats.rollups_written += write_rollups(self.settings, counts)
                for name, series in counts.items():
                    self.counts.setdefault(name, {}).update({m: float(n) for m, n in series.items()})
            changes: list[Any] = []
            for sig in self.signals:
                points = evaluate(series_for(self.counts, sig), lo, hi, config_for(self.config, sig))
                for p in points:
                    changes.extend(self.tracker.update(sig.name, p))
                if points:
                    self.last_points[sig.name] = points[-1]
            self.notifier.notify(changes)
        except Exception as exc:
            self.stats.pass_failures += 1
            self.stats.last_error = str(exc) if isinstance(exc, (RollupError, SteadyError, NotifyError)) else f"{type(exc).__name__}: {exc}"
            self.tracker = _tracker_from(self.config, self.saved.tracker)  # judge these minutes again next time
            raise
        self.saved.next_minute = hi
        self.saved.rolled_until = max(hi, self.saved.rolled_until or hi)
        self.saved.tracker = _tracker_json(self.tracker)
        self.saved.points = {name: point_json(p) for name, p in self.last_points.items()}
        self.saved.save(self.path)
        self.stats.minutes_judged += int((hi - lo) / MINUTE)
        self.stats.alerts_opened += sum(1 for c in changes if c.kind == "opened")
        self.stats.alerts_resolved += sum(1 for c in changes if c.kind == "resolved")
        self.stats.last_success = time.time()
        self.stats.last_error = ""
        self._trim(hi)
        for c in changes:
            log.warning("alert %s: %s", c.kind, alert_message(c.kind, c.alert, tz=self.settings.business_timezone,
                                                                ratio=c.alert.signal in self.notifier.ratios))
        if hi < end:
            return changes + self.step(now)  # catching up: the next day right away
        return changes

    def _trim(self, upto: datetime) -> None:
        """Forget minutes the model will never look at again (memory stays at one history's worth).

        Cheap most of the time (nothing older than the oldest span); once a
        day the minutes between the month-start spans go too.
        """
        spans = history_spans(self.config, upto, upto)
        oldest = spans[0][0]
        for series in self.counts.values():
            if series and next(iter(series)) < oldest:
                for m in [m for m in series if m < oldest]:
                    del series[m]
        if upto.hour == 0 and upto.minute == 0:
            for name, series in self.counts.items():
                self.counts[name] = {m: v for m, v in series.items() if any(lo <= m < hi for lo, hi in spans)}

    # --- running ---

    def run_forever(self, *, on_ready: Any = None) -> int:
        signals_.signal(signals_.SIGTERM, lambda *_: self._stop.set())
        signals_.signal(signals_.SIGINT, lambda *_: self._stop.set())
        self._serve_http()
        if on_ready:
            on_ready(self)
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:
                if not isinstance(exc, (RollupError, SteadyError, NotifyError)):
                    log.exception("pass failed")
                log.error("pass failed, retrying in %ss: %s", self.settings.steady_interval, self.stats.last_error or exc)
            self._stop.wait(self.settings.steady_interval)
        return self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> int:
        """Drain the webhook queue briefly and stop serving; the state was saved after the last pass."""
        self._stop.set()
        self.notifier.close(drain=5.0)
        if self.http:
            self.http.shutdown()
            self.http.server_close()
        return 0

    # --- observability ---

    def health(self) -> tuple[bool, dict[str, Any]]:
        s = self.stats
        bound = max(3 * self.settings.steady_interval, 180.0)
        since = time.time() - (s.last_success or self.started)
        healthy = not self._stop.is_set() and since < bound
        return healthy, {
            "status": "ok" if healthy else "degraded",
            "uptime_seconds": round(time.time() - self.started, 1),
            "last_success": s.last_success,
            "last_error": s.last_error,
            "next_minute": self.saved.next_minute.isoformat() if self.saved.next_minute else None,
            "open_alerts": [a.id for a in self.tracker.open_alerts()],
        }

    def _serve_http(self) -> None:
        self.http = metrics_server(self.settings.steady_http_host, self.settings.steady_http_port, _Collector(self), self.health)
        threading.Thread(target=self.http.serve_forever, name="pang-steady-http", daemon=True).start()

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.server_port


class _Collector:
    """Reads the runner's figures at scrape time."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def collect(self) -> Any:
        r, s = self.runner, self.runner.stats
        w = r.notifier.webhooks.stats

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            fam = CounterMetricFamily(name, doc)
            fam.add_metric([], value)
            return fam

        for field_, doc in (("observed", "The last complete minute's value."), ("expected", "Its expected value."),
                            ("lower", "Lower edge of its band."), ("upper", "Upper edge of its band.")):
            g = GaugeMetricFamily(f"pang_steady_{field_}", doc, labels=["signal"])
            for name, p in sorted(r.last_points.items()):
                value = getattr(p, field_)
                if value is not None:
                    g.add_metric([name], float(value))
            yield g
        g = GaugeMetricFamily("pang_steady_low_confidence", "1 while the band rests on too little history.", labels=["signal"])
        for name, p in sorted(r.last_points.items()):
            g.add_metric([name], 1.0 if p.low_confidence else 0.0)
        yield g
        g = GaugeMetricFamily("pang_steady_alert_open", "1 while an alert is open.", labels=["signal", "direction", "severity"])
        open_ = {a.signal: a for a in r.tracker.open_alerts()}
        for sig in r.signals:
            a = open_.get(sig.name)
            g.add_metric([sig.name, a.direction if a else "", a.severity if a else ""], 1.0 if a else 0.0)
        yield g
        g = GaugeMetricFamily("pang_steady_last_minute_seconds", "Start of the last judged minute (Unix time).")
        if r.saved.next_minute:
            g.add_metric([], (r.saved.next_minute - MINUTE).timestamp())
        yield g
        yield counter("pang_steady_passes", "Passes of the loop.", s.passes)
        yield counter("pang_steady_pass_failures", "Passes that failed (retried at the next one).", s.pass_failures)
        yield counter("pang_steady_minutes_judged", "Minutes evaluated against their expectation, per signal set.", s.minutes_judged)
        yield counter("pang_steady_rollups_written", "Rollup documents written by passes.", s.rollups_written)
        yield counter("pang_steady_rollups_backfilled", "Rollup documents written by the first run's backfill.", s.backfilled)
        yield counter("pang_steady_alerts_opened", "Alerts opened.", s.alerts_opened)
        yield counter("pang_steady_alerts_resolved", "Alerts resolved.", s.alerts_resolved)
        yield counter("pang_steady_alert_events_written", "Alert documents written to events-*.", r.notifier.events_written)
        yield counter("pang_steady_webhooks_delivered", "Webhook notices delivered.", w.delivered)
        yield counter("pang_steady_webhooks_failed", "Webhook notices given up (refused, or out of retry time).", w.failed)
        yield counter("pang_steady_webhook_retries", "Webhook attempts that were retried.", w.retries)
        yield counter("pang_steady_webhooks_dropped", "Webhook notices dropped because the queue was full.", w.dropped)


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("PANG_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("opensearch").setLevel(logging.ERROR)  # its retries log tracebacks; a failed pass says it once


def run(settings: Settings, *, from_generator: bool = False, seed: int | None = None, on_ready: Any = None) -> int:
    """``pang steady run``: the loop until SIGTERM/SIGINT; returns the exit status."""
    setup_logging()
    return Runner(settings, from_generator=from_generator, seed=seed).run_forever(on_ready=on_ready)


# --- status ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalStatus:
    signal: str
    ratio: bool  # a ratio of two counts (shown as a percentage), else a count per minute
    minute: datetime | None
    observed: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    low_confidence: bool
    state: str  # "ok", "drop", "spike", "unknown"
    alert: dict[str, Any] | None  # the open alert, if any

    def as_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "kind": "ratio" if self.ratio else "count",
            "minute": self.minute.isoformat().replace("+00:00", "Z") if self.minute else None,
            "observed": self.observed, "expected": self.expected, "lower": self.lower, "upper": self.upper,
            "low_confidence": self.low_confidence, "state": self.state, "alert": self.alert,
        }


def status(settings: Settings, *, now: datetime | None = None) -> list[SignalStatus]:
    """Each signal's last complete minute against its expectation, and its open alert.

    From the runner's saved state when it is recent; otherwise computed from
    the rollups in OpenSearch (so it answers also when no runner runs here).
    """
    from pang.steady.notify import alert_as_json

    now = now or datetime.now(UTC)
    sigs = signals_from(settings)
    config = model_config(settings)
    saved = SavedState.load(state_path(settings))
    tracker = _tracker_from(config, saved.tracker)
    open_ = {a.signal: a for a in tracker.open_alerts()}
    end = utc_minute(now - timedelta(seconds=settings.steady_lag_seconds))
    fresh = saved.next_minute is not None and saved.next_minute >= end - timedelta(minutes=5)
    points: dict[str, dict[str, Any]] = dict(saved.points) if fresh else {}
    missing = [s for s in sigs if s.name not in points]
    if missing:
        last = saved.next_minute if fresh and saved.next_minute else end  # the same minute as the saved points
        counts = read_history(settings, config, last - MINUTE, last, count_signals(sigs))
        for s in missing:
            evaluated = evaluate(series_for(counts, s), last - MINUTE, last, config_for(config, s))
            if evaluated:
                points[s.name] = point_json(evaluated[-1])
    out = []
    for s in sigs:
        p = points.get(s.name) or {}
        alert = open_.get(s.name)
        observed, lower, upper = p.get("observed"), p.get("lower"), p.get("upper")
        if alert is not None:
            state = alert.direction
        elif observed is None or lower is None or upper is None:
            state = "unknown"
        else:
            state = "ok" if lower <= observed <= upper else ("low" if observed < lower else "high")
        minute = p.get("minute")
        out.append(SignalStatus(
            signal=s.name,
            ratio=not s.action,
            minute=datetime.fromisoformat(minute.replace("Z", "+00:00")) if minute else None,
            observed=observed, expected=p.get("expected"), lower=lower, upper=upper,
            low_confidence=bool(p.get("low_confidence", True)), state=state,
            alert=alert_as_json(alert) if alert is not None else None,
        ))
    return out
