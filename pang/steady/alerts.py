"""Alerts from the model's points: open after K of the last N minutes outside, one per episode, resolve after M in band.

Pure: :class:`AlertTracker` is fed one :class:`~pang.steady.model.Point` per
signal and minute, in time order, and answers what changed
(:class:`AlertChange` ``opened`` / ``resolved``). The runner sends those
changes to the events index and webhooks; the backtest replays months of points
through the same tracker, so what is scored is what would have been sent.

Semantics:

- a minute counts as *outside* when the model says so (``Point.outside``: the
  window of the last few minutes ending at it is outside its summed band); a
  low-confidence or missing minute is never outside;
- an alert opens when K of the last N minutes are outside in the same direction
  (``drop`` or ``spike``). ``opened`` is the *end* of the minute that completed
  the rule: the earliest time the alert could be known from complete minutes,
  so a backtest's delay is honest;
- while it is open, further outside minutes only update its evidence (one alert
  per episode, never a second one); its severity can rise from ``warning`` to
  ``critical`` (a relative deviation of ``critical_deviation`` or more over the
  deciding window), never fall;
- it resolves after M minutes in a row back inside the band (``resolved``: the
  end of the M-th minute); a missing or low-confidence minute neither resolves
  nor extends it.

The tracker's state is plain JSON (:meth:`AlertTracker.to_json`), so a restart
continues the same open alerts instead of opening them again.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pang.steady.model import ModelConfig, Point

__all__ = ["Alert", "AlertChange", "AlertTracker", "severity_of"]

_MINUTE = timedelta(minutes=1)
_STATE_VERSION = 1


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass
class Alert:
    """One alert episode of one signal. ``evidence``: observed, expected, band, deviation, the cycles used."""

    id: str
    signal: str
    direction: Literal["drop", "spike"]
    severity: Literal["warning", "critical"]
    opened: datetime
    resolved: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.resolved is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "signal": self.signal,
            "direction": self.direction,
            "severity": self.severity,
            "opened": _iso(self.opened),
            "resolved": None if self.resolved is None else _iso(self.resolved),
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(
            id=str(d["id"]),
            signal=str(d["signal"]),
            direction="spike" if d.get("direction") == "spike" else "drop",
            severity="critical" if d.get("severity") == "critical" else "warning",
            opened=_parse(d["opened"]),
            resolved=_parse(d["resolved"]) if d.get("resolved") else None,
            evidence=dict(d.get("evidence") or {}),
        )


@dataclass(frozen=True)
class AlertChange:
    """What :meth:`AlertTracker.update` reports: an alert ``opened`` or ``resolved``."""

    kind: Literal["opened", "resolved"]
    alert: Alert


def severity_of(relative_deviation: float, config: ModelConfig) -> Literal["warning", "critical"]:
    """``critical`` when the window is off by ``critical_deviation`` (40 % by default) or more."""
    return "critical" if abs(relative_deviation) >= config.critical_deviation else "warning"


@dataclass
class _SignalState:
    recent: deque[str | None]  # "drop" / "spike" / None, the last N minutes
    window: deque[tuple[float, float]]  # (observed, expected) of the last max(windows) minutes, for evidence
    alert: Alert | None = None
    in_band: int = 0
    last_minute: datetime | None = None


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


class AlertTracker:
    """K-of-N open, dedupe while open, M-in-band resolve; per signal, JSON-persistable."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._span = max(config.windows)
        self._state: dict[str, _SignalState] = {}

    def _get(self, signal: str) -> _SignalState:
        st = self._state.get(signal)
        if st is None:
            st = self._state[signal] = _SignalState(deque(maxlen=self.config.n), deque(maxlen=self._span))
        return st

    def open_alerts(self) -> list[Alert]:
        """The alerts open now, by signal name."""
        return [st.alert for _, st in sorted(self._state.items()) if st.alert is not None]

    def update(self, signal: str, point: Point) -> list[AlertChange]:
        """Feed the next minute of ``signal``; returns the alerts it opened or resolved (at most one each).

        A minute at or before the last one fed is ignored (a replayed minute
        after a restart must not count twice).
        """
        st = self._get(signal)
        minute = point.minute.astimezone(UTC) if point.minute.tzinfo else point.minute.replace(tzinfo=UTC)
        if st.last_minute is not None and minute <= st.last_minute:
            return []
        if st.last_minute is not None and minute - st.last_minute > _MINUTE:
            gap = int((minute - st.last_minute) / _MINUTE) - 1  # missing minutes are "not outside"
            for _ in range(min(gap, self.config.n)):
                st.recent.append(None)
            st.window.clear()
        st.last_minute = minute
        usable = not point.low_confidence and point.observed is not None and point.expected is not None
        direction = point.outside if usable else None
        st.recent.append(direction)
        st.window.append((point.observed, point.expected) if usable else (float("nan"), float("nan")))
        changes: list[AlertChange] = []

        if st.alert is None:
            if direction is not None and sum(1 for d in st.recent if d == direction) >= self.config.k:
                st.alert = self._open(signal, point, direction, minute, st)
                st.in_band = 0
                changes.append(AlertChange("opened", st.alert))
            return changes

        alert = st.alert
        if direction is not None:
            st.in_band = 0
            if direction == alert.direction:
                self._extend(alert, point, st)
        elif usable:
            st.in_band += 1
            if st.in_band >= self.config.m:
                alert.resolved = minute + _MINUTE
                alert.evidence["minutes_open"] = int((alert.resolved - alert.opened) / _MINUTE)
                st.alert = None
                st.in_band = 0
                st.recent.clear()
                changes.append(AlertChange("resolved", alert))
        return changes

    # ----------------------------------------------------------------- evidence

    def _window_sums(self, point: Point, st: _SignalState) -> tuple[float, float, int]:
        w = max(1, min(point.window or 1, len(st.window)))
        pairs = [(o, e) for o, e in list(st.window)[-w:] if o == o and e == e]  # NaN-free
        if not pairs:
            pairs, w = [(float(point.observed or 0.0), float(point.expected or 0.0))], 1
        so = sum(o for o, _ in pairs)
        se = sum(e for _, e in pairs)
        return so, se, w

    def _open(self, signal: str, point: Point, direction: str, minute: datetime, st: _SignalState) -> Alert:
        so, se, w = self._window_sums(point, st)
        rel = (so - se) / se if se else 0.0
        opened = minute + _MINUTE
        evidence: dict[str, Any] = {
            "minute": _iso(minute),
            "window_start": _iso(minute - (w - 1) * _MINUTE),
            "window_minutes": w,
            "observed": _r(point.observed),
            "expected": _r(point.expected),
            "lower": _r(point.lower),
            "upper": _r(point.upper),
            "window_observed": _r(so),
            "window_expected": _r(se),
            "deviation": round(rel, 4),
            "score": _r(point.score),
            "band_width": self.config.band_width,
            "kind": point.kind,
            "cycles": {k: _r(v) for k, v in point.cycles.items()},
            "rule": {"k": self.config.k, "n": self.config.n, "m": self.config.m},
            "worst_deviation": round(rel, 4),
            "minutes_outside": 1,
        }
        return Alert(
            id=f"{signal}-{direction}-{opened.strftime('%Y%m%dT%H%MZ')}",
            signal=signal,
            direction=direction,  # type: ignore[arg-type]
            severity=severity_of(rel, self.config),
            opened=opened,
            evidence=evidence,
        )

    def _extend(self, alert: Alert, point: Point, st: _SignalState) -> None:
        so, se, _ = self._window_sums(point, st)
        rel = (so - se) / se if se else 0.0
        ev = alert.evidence
        ev["minutes_outside"] = int(ev.get("minutes_outside", 0)) + 1
        if abs(rel) > abs(float(ev.get("worst_deviation") or 0.0)):
            ev["worst_deviation"] = round(rel, 4)
        ev["last_observed"] = _r(point.observed)
        ev["last_expected"] = _r(point.expected)
        if severity_of(rel, self.config) == "critical":
            alert.severity = "critical"

    # ----------------------------------------------------------------- persistence

    def to_json(self) -> str:
        """The tracker's state as JSON text (open alerts, the last N flags, the last minute seen)."""
        data = {
            "version": _STATE_VERSION,
            "signals": {
                name: {
                    "recent": list(st.recent),
                    "window": [[o, e] for o, e in st.window],
                    "alert": None if st.alert is None else st.alert.to_dict(),
                    "in_band": st.in_band,
                    "last_minute": None if st.last_minute is None else _iso(st.last_minute),
                }
                for name, st in self._state.items()
            },
        }
        return json.dumps(data, allow_nan=True)

    @classmethod
    def from_json(cls, config: ModelConfig, text: str | dict[str, Any]) -> AlertTracker:
        """A tracker continuing from :meth:`to_json`'s state (an unreadable state starts empty: no alert is invented)."""
        tracker = cls(config)
        try:
            data = json.loads(text) if isinstance(text, str) else text
            if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
                return tracker
            for name, s in (data.get("signals") or {}).items():
                st = tracker._get(str(name))
                for d in s.get("recent") or []:
                    st.recent.append(d if d in ("drop", "spike") else None)
                for o, e in s.get("window") or []:
                    st.window.append((float(o), float(e)))
                st.alert = Alert.from_dict(s["alert"]) if s.get("alert") else None
                st.in_band = int(s.get("in_band") or 0)
                st.last_minute = _parse(s["last_minute"]) if s.get("last_minute") else None
        except (ValueError, KeyError, TypeError):
            return cls(config)
        return tracker
