"""Is the canary worse than its baseline, metric by metric? Pure: samples in, a :class:`CanaryResult` out.

**Why not a rank test on pooled samples.** Samples 10 s apart are
autocorrelated (an AR(1) of 0.7 leaves about 11 independent points out of 60),
and hosts of the same build differ by a few percent. A Mann-Whitney test on all
canary points against all baseline points treats 120 points as 120 independent
draws from one population, so it "detects" the host difference between two
identical builds in a large share of runs (``bench/canary_sim.py`` shows it).

**The test used.** Per metric:

1. Each host is summarised by the mean of its points over the window
   (counters are first turned into a rate per second, resets skipped). The host
   is the unit of replication: between-host differences are in the spread of
   these means, where they belong.
2. The canary-minus-baseline difference of the group means gets a Student
   interval with the pooled variance of the host means (df = hosts - 2). The
   pooled (not Welch) variance is deliberate: with 2 canary hosts, Welch's
   degrees of freedom fall to about 1 and the interval is useless; the canary
   and baseline run the same infrastructure, so one host spread serves both.
3. With few hosts the sample variance of 4-6 means can come out tiny by
   chance, so the standard error has a floor: the within-host standard error of
   each host mean, from its own variance and an *effective sample size*
   ``n (1 - phi) / (1 + phi)`` with ``phi`` the host's lag-1 autocorrelation.
   A host mean can never be known better than its own autocorrelated points
   allow.
4. The class is decided against an *allowed effect* band
   ``[-band, +band]``, ``band = max(allowed x |baseline mean|, allowed_absolute)``:
   ``High`` when the interval's lower bound is above ``+band`` and an increase
   is harmful, ``Low`` when its upper bound is below ``-band`` and a decrease is
   harmful, else ``Pass``. ``NoData`` when either side has no host with at least
   two points. This equivalence-margin form is what lets an A/A run of eight
   metrics pass in >= 99 % of runs even with 2-3 hosts: a difference must be
   both real *and* larger than what the deployer allows. (Its power against a
   20 % shift with few hosts is limited; see :mod:`pang.canary.config`.)

No resampling is involved, so the result is a function of the inputs alone
(same inputs, same score) and fast enough to simulate thousands of runs.

**Score** = 100 x weighted share of ``Pass`` among metrics that have data
(``NoData`` metrics leave the denominator: missing data is a reliability
problem, not a failure). A critical metric classed ``High``/``Low`` fails the
run whatever the score.

**Reliability** (0-100) is how much evidence there was, per metric the
product of: hosts reporting / hosts expected (both groups), mean over reporting
hosts of ``min(1, points / min_points)``, minutes with data / window minutes,
and a factor 0.5 when a group has a single host (its host spread cannot be
estimated); then the weighted mean over all configured metrics, ``NoData`` ones
counting 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal

import numpy as np

from pang.canary.config import CanaryConfig, MetricConfig, default_config

Class = Literal["Pass", "High", "Low", "NoData"]
Verdict = Literal["Pass", "Marginal", "Fail"]
Sample = tuple[float | datetime, float]
# metric -> host -> [(time, value), ...]; time in epoch seconds or an aware datetime
Samples = Mapping[str, Mapping[str, Sequence[Sample]]]


@dataclass(frozen=True)
class HostSummary:
    """One host's window for one metric: its mean, how many points, and how well the mean is known."""

    host: str
    points: int
    mean: float
    se: float  # within-host standard error of the mean, autocorrelation-corrected
    phi: float  # lag-1 autocorrelation used for the effective sample size
    minutes: frozenset[int]


@dataclass(frozen=True)
class MetricResult:
    """The judgement of one metric. ``effect`` and ``interval`` are relative to the baseline mean (0.2 = +20 %)."""

    name: str
    cls: Class
    critical: bool
    weight: float
    direction: str
    baseline_mean: float | None
    canary_mean: float | None
    difference: float | None  # canary - baseline, in the metric's unit (a rate per second for counters)
    interval: tuple[float, float] | None  # of the difference, in the metric's unit
    band: float | None  # the allowed effect, in the metric's unit
    effect: float | None  # difference / |baseline mean|; None when the baseline mean is 0
    effect_interval: tuple[float, float] | None
    baseline_hosts: int
    canary_hosts: int
    baseline_points: int
    canary_points: int
    reliability: float  # 0..1
    rejected: int  # points dropped because the value or time was not a finite number
    note: str = ""


@dataclass(frozen=True)
class CanaryResult:
    """A whole run: per metric results, the score, how reliable it is, and the verdict."""

    service: str
    run: str
    score: float
    reliability: float
    verdict: Verdict
    failed_critical: tuple[str, ...]
    metrics: tuple[MetricResult, ...]
    confidence: float
    pass_score: float
    marginal_score: float
    meta: dict[str, str] = field(default_factory=dict)


def judge(
    baseline: Samples,
    canary: Samples,
    config: CanaryConfig | None = None,
    *,
    service: str = "",
    run: str = "",
    expected_hosts: tuple[int, int] | None = None,
) -> CanaryResult:
    """Judge ``canary`` against ``baseline`` (``metric -> host -> [(t, value)]``) under ``config``.

    Metrics in ``config`` that neither side reports are ``NoData``; metrics only
    in the samples are judged with default rules. ``expected_hosts``
    (baseline, canary) says how many hosts should have reported, when the caller
    knows it (e.g. from the deployment); otherwise every host named anywhere in
    the samples is expected.
    """
    config = config or default_config()
    names = [m.name for m in config.metrics]
    names += sorted((set(baseline) | set(canary)) - set(names))
    exp_b = expected_hosts[0] if expected_hosts else len(_hosts(baseline))
    exp_c = expected_hosts[1] if expected_hosts else len(_hosts(canary))
    results = tuple(
        _judge_metric(config.metric(n), baseline.get(n, {}), canary.get(n, {}), config, exp_b, exp_c) for n in names
    )
    return _combine(results, config, service, run)


def _combine(results: tuple[MetricResult, ...], config: CanaryConfig, service: str, run: str) -> CanaryResult:
    with_data = [r for r in results if r.cls != "NoData"]
    total = sum(r.weight for r in with_data)
    score = 100.0 * sum(r.weight for r in with_data if r.cls == "Pass") / total if total else 0.0
    all_w = sum(r.weight for r in results)
    reliability = 100.0 * sum(r.weight * r.reliability for r in results) / all_w if all_w else 0.0
    failed_critical = tuple(r.name for r in results if r.critical and r.cls in ("High", "Low"))
    verdict: Verdict
    if not with_data or failed_critical or score < config.marginal_score:
        verdict = "Fail"
    elif score >= config.pass_score:
        verdict = "Pass"
    else:
        verdict = "Marginal"
    return CanaryResult(
        service=service, run=run, score=round(score, 2), reliability=round(reliability, 2), verdict=verdict,
        failed_critical=failed_critical, metrics=results, confidence=config.confidence,
        pass_score=config.pass_score, marginal_score=config.marginal_score,
    )


def _hosts(samples: Samples) -> set[str]:
    return {h for per_host in samples.values() for h in per_host}


def _judge_metric(
    mc: MetricConfig, base: Mapping[str, Sequence[Sample]], can: Mapping[str, Sequence[Sample]],
    config: CanaryConfig, exp_b: int, exp_c: int,
) -> MetricResult:
    rejected = 0
    groups: list[list[HostSummary]] = []
    for side in (base, can):
        hosts = []
        for host in sorted(side):
            summary, bad = summarise_host(host, side[host], mc.kind)
            rejected += bad
            if summary is not None:
                hosts.append(summary)
        groups.append(hosts)
    b, c = groups
    npb, npc = sum(h.points for h in b), sum(h.points for h in c)
    common = dict(
        name=mc.name, critical=mc.critical, weight=mc.weight, direction=mc.direction,
        baseline_hosts=len(b), canary_hosts=len(c), baseline_points=npb, canary_points=npc, rejected=rejected,
    )
    if not b or not c:
        side = "baseline and canary" if not b and not c else ("baseline" if not b else "canary")
        return MetricResult(
            cls="NoData", baseline_mean=None, canary_mean=None, difference=None, interval=None, band=None,
            effect=None, effect_interval=None, reliability=0.0, note=f"no data from the {side}", **common,  # type: ignore[arg-type]
        )
    mb = np.array([h.mean for h in b])
    mcn = np.array([h.mean for h in c])
    kb, kc = len(b), len(c)
    m_b, m_c = float(mb.mean()), float(mcn.mean())
    diff = m_c - m_b
    df = kb + kc - 2
    se_within = math.sqrt(sum(h.se**2 for h in b) / kb**2 + sum(h.se**2 for h in c) / kc**2)
    if df >= 1:
        pooled = (float(((mb - m_b) ** 2).sum()) + float(((mcn - m_c) ** 2).sum())) / df
        se = max(math.sqrt(pooled * (1 / kb + 1 / kc)), se_within)
        q = t_quantile(config.confidence, df)
        note = ""
    else:  # one host on each side: no host spread to estimate; the widest Student interval that still means something
        se = se_within
        q = t_quantile(config.confidence, 1)
        note = "one host per side: host differences cannot be told from build differences"
    lo, hi = diff - q * se, diff + q * se
    band = max(mc.allowed * abs(m_b), mc.allowed_absolute)
    cls: Class = "Pass"
    if mc.direction in ("increase", "both") and lo > band:
        cls = "High"
    elif mc.direction in ("decrease", "both") and hi < -band:
        cls = "Low"
    ref = abs(m_b)
    effect = diff / ref if ref > 0 else None
    effect_iv = (lo / ref, hi / ref) if ref > 0 else None
    return MetricResult(
        cls=cls, baseline_mean=m_b, canary_mean=m_c, difference=diff, interval=(lo, hi), band=band,
        effect=effect, effect_interval=effect_iv, note=note,
        reliability=_reliability(b, c, mc, config, exp_b, exp_c), **common,  # type: ignore[arg-type]
    )


def _reliability(
    b: list[HostSummary], c: list[HostSummary], mc: MetricConfig, config: CanaryConfig, exp_b: int, exp_c: int,
) -> float:
    expected = max(exp_b, len(b)) + max(exp_c, len(c))
    hosts = (len(b) + len(c)) / expected if expected else 0.0
    every = b + c
    points = sum(min(1.0, h.points / mc.min_points) for h in every) / len(every)
    window_minutes = max(1, math.ceil(config.window_seconds / 60))
    minutes = min(1.0, len(frozenset().union(*(h.minutes for h in every))) / window_minutes)
    single = 0.5 if len(b) == 1 or len(c) == 1 else 1.0
    return hosts * points * minutes * single


def summarise_host(host: str, samples: Sequence[Sample], kind: str = "gauge") -> tuple[HostSummary | None, int]:
    """A host's mean and within-host standard error; ``None`` with fewer than two usable points.

    Returns the summary and how many points were rejected (non-finite time or
    value, or not a number at all), so the caller can show the count.
    """
    ts: list[float] = []
    vs: list[float] = []
    bad = 0
    for item in samples:
        try:
            t, v = item
            tf = t.timestamp() if isinstance(t, datetime) else float(t)
            vf = float(v)
        except (TypeError, ValueError):
            bad += 1
            continue
        if math.isfinite(tf) and math.isfinite(vf):
            ts.append(tf)
            vs.append(vf)
        else:
            bad += 1
    if not ts:
        return None, bad
    t_arr = np.asarray(ts)
    v_arr = np.asarray(vs)
    order = np.argsort(t_arr, kind="stable")
    t_arr, v_arr = t_arr[order], v_arr[order]
    if kind == "counter":
        dt = np.diff(t_arr)
        dv = np.diff(v_arr)
        ok = (dt > 0) & (dv >= 0)  # a negative step is a counter reset: that interval is unknown
        v_arr = dv[ok] / dt[ok]
        t_arr = t_arr[1:][ok]
    n = len(v_arr)
    if n < 2:
        return None, bad
    mean = float(v_arr.mean())
    var = float(v_arr.var(ddof=1))
    phi = lag1_autocorrelation(v_arr)
    n_eff = max(1.0, n * (1 - phi) / (1 + phi))
    se = math.sqrt(var / n_eff)
    minutes = frozenset(int(x // 60) for x in t_arr)
    return HostSummary(host=host, points=n, mean=mean, se=se, phi=phi, minutes=minutes), bad


def lag1_autocorrelation(values: np.ndarray) -> float:
    """Lag-1 autocorrelation, clipped to [0, 0.95]: negative values would shrink the standard error, not widen it."""
    x = values - values.mean()
    denom = float((x * x).sum())
    if denom <= 0 or len(x) < 3:
        return 0.0
    return min(0.95, max(0.0, float((x[1:] * x[:-1]).sum()) / denom))


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (numpy has none and scipy is not a dependency): bisection on the CDF."""
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2


def _t_cdf(t: float, df: int) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return 1 - tail if t >= 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), by Lentz's continued fraction (Numerical Recipes 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1 - x)
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = tiny if abs(d) < tiny else d
        d = 1.0 / d
        c = 1.0 + num / c
        c = tiny if abs(c) < tiny else c
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return math.exp(ln_front) * (f - 1.0) / a
