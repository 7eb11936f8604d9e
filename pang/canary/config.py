"""What the judge is told about each metric: which way is harmful, how much it counts, how much change is allowed.

Pydantic models so the same shapes can come from settings (``PANG_CANARY_*``)
or a YAML file later; :func:`default_config` is the documented default.

**Why the defaults are what they are.** A canary run lasts 10 minutes at one
sample every 10 s (60 points per host) on a handful of hosts. Two hosts of the
*same* build already differ by a few percent (placement, JIT, cache warmth), so
a change smaller than that cannot be told apart from "a different host". The
judge therefore asks a different question than "is there any difference?": it
asks "is the canary *worse than the allowed effect*, with confidence?"
(an equivalence-margin test, see :mod:`pang.canary.judge`). The allowed effect
(``allowed``, relative to the baseline's mean, default 10 %) is the size of
change the deployer agrees to ignore; ``allowed_absolute`` is a floor in the
metric's own unit for metrics that sit near zero (a full GC that takes 40 ms
instead of 0 ms is +inf % but harmless). On the simulation (``bench/canary_sim.py``: 60 points, AR(1) 0.7, 5 % host
spread) 10 % at one-sided confidence 0.95 keeps A/A runs of 8 metrics passing
in 99.2-100 % of runs with 2-5 hosts per side, but catches a 20 % shift of cpu
in only 37-66 % of runs (50 %: >= 99.5 %). A 5 % allowed effect raises that
to 64-99 % at the cost of A/A passes (94-99 %): with so few hosts the host
spread itself is about as large as the shift. Not yet tuned further.

The verdict: ``Pass`` when the score is at least ``pass_score`` (95) and no
critical metric failed, ``Marginal`` from ``marginal_score`` (75), else ``Fail``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["increase", "decrease", "both"]
Kind = Literal["gauge", "counter"]


class MetricConfig(BaseModel):
    """One metric's rules. ``kind="counter"`` means a monotonically growing total, judged as its rate per second."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    direction: Direction = "increase"  # which change is harmful
    weight: float = Field(default=1.0, gt=0)
    critical: bool = False  # a critical metric that fails fails the whole run
    allowed: float = Field(default=0.10, ge=0)  # allowed effect, relative to the baseline mean (0.1 = 10 %)
    allowed_absolute: float = Field(default=0.0, ge=0)  # floor of the allowed effect, in the metric's unit
    min_points: int = Field(default=30, ge=2)  # points per host for full evidence (30 = 5 min at 10 s)
    kind: Kind = "gauge"
    unit: str = ""


class CanaryConfig(BaseModel):
    """The judge's settings for a run: metric rules, confidence, window and verdict thresholds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[MetricConfig, ...] = ()
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)  # one-sided, per bound of the interval
    window_seconds: float = Field(default=600.0, gt=0)  # the run's length; minutes covered count toward reliability
    pass_score: float = Field(default=95.0, ge=0, le=100)
    marginal_score: float = Field(default=75.0, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> CanaryConfig:
        if self.marginal_score > self.pass_score:
            raise ValueError(f"marginal_score ({self.marginal_score}) must not exceed pass_score ({self.pass_score})")
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric configured twice: {', '.join(dupes)}")
        return self

    def metric(self, name: str) -> MetricConfig:
        """The rules for ``name``; a metric nobody configured gets the defaults (increase harmful, weight 1)."""
        for m in self.metrics:
            if m.name == name:
                return m
        return MetricConfig(name=name)


# name, direction, weight, critical, allowed, allowed_absolute, kind, unit — the README's table is this list.
DEFAULT_METRICS: tuple[MetricConfig, ...] = (
    MetricConfig(name="cpu.pct", direction="increase", weight=1.0, critical=True, unit="%"),
    MetricConfig(name="memory.mb", direction="increase", weight=1.0, critical=True, unit="MB"),
    MetricConfig(name="load.1m", direction="increase", weight=1.0, allowed_absolute=0.1),
    MetricConfig(name="tomcat.requestCount", direction="both", weight=1.0, kind="counter", unit="req/s"),
    MetricConfig(name="tomcat.currentThreadBusy", direction="increase", weight=1.0, allowed_absolute=1.0),
    MetricConfig(name="jvm.gc.fullgc.time", direction="increase", weight=1.0, allowed_absolute=50.0, unit="ms"),
    MetricConfig(name="errors.per_minute", direction="increase", weight=2.0, critical=True, allowed_absolute=1.0),
    MetricConfig(name="latency.p95_ms", direction="increase", weight=2.0, critical=True, unit="ms"),
)


def default_config(**overrides: object) -> CanaryConfig:
    """The documented defaults (the eight metrics above), with any top-level field overridden."""
    return CanaryConfig(metrics=DEFAULT_METRICS, **overrides)  # type: ignore[arg-type]
