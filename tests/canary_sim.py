"""Simulated canary runs for the judge's tests and bench: the same process on both sides, or a shifted canary.

Each host gives 60 samples (10 minutes at 10 s) of each metric: an AR(1)
process (phi 0.7) around the metric's level, times a host factor drawn with a
5 % spread (standard deviation) so hosts of the same build differ. Levels are
the demo shop's: cpu ~40 %, memory ~1500 MB, load ~1.2, a request *counter*
(~50 req/s, judged as its rate), ~20 busy threads, full GC time mostly 0 ms
with occasional spikes, ~2 errors a minute, p95 latency ~250 ms. A shift
multiplies the canary's values of one metric by ``1 + shift``. Seeds are
explicit: the same seed gives the same run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

T0 = 1_800_000_000.0  # a fixed epoch second, so runs are reproducible
STEP = 10.0
POINTS = 60


@dataclass(frozen=True)
class SimMetric:
    level: float
    cv: float  # marginal coefficient of variation of the AR(1) noise
    kind: str = "gauge"  # gauge | counter | spiky (mostly zero) | count (Poisson per sample)


SIM_METRICS: dict[str, SimMetric] = {
    "cpu.pct": SimMetric(40.0, 0.10),
    "memory.mb": SimMetric(1500.0, 0.02),
    "load.1m": SimMetric(1.2, 0.15),
    "tomcat.requestCount": SimMetric(50.0, 0.10, "counter"),
    "tomcat.currentThreadBusy": SimMetric(20.0, 0.15),
    "jvm.gc.fullgc.time": SimMetric(150.0, 0.5, "spiky"),  # spike size; ~3 % of samples have one
    "errors.per_minute": SimMetric(2.0, 0.2, "count"),
    "latency.p95_ms": SimMetric(250.0, 0.10),
}


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """Stationary AR(1) with unit marginal variance along the last axis."""
    e = rng.standard_normal(shape)
    x = np.empty(shape)
    x[..., 0] = e[..., 0]
    s = np.sqrt(1 - phi * phi)
    for i in range(1, shape[-1]):
        x[..., i] = phi * x[..., i - 1] + s * e[..., i]
    return x


def simulate_run(
    seed: int,
    *,
    baseline_hosts: int = 3,
    canary_hosts: int = 3,
    shifts: dict[str, float] | None = None,
    phi: float = 0.7,
    host_spread: float = 0.05,
    points: int = POINTS,
    metrics: dict[str, SimMetric] | None = None,
) -> tuple[dict[str, dict[str, list[tuple[float, float]]]], dict[str, dict[str, list[tuple[float, float]]]]]:
    """One run: ``(baseline, canary)`` as ``metric -> host -> [(t, value)]``, the judge's input."""
    rng = np.random.default_rng(seed)
    shifts = shifts or {}
    metrics = metrics or SIM_METRICS
    hosts = baseline_hosts + canary_hosts
    t = T0 + STEP * np.arange(points)
    base: dict[str, dict[str, list[tuple[float, float]]]] = {}
    can: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, m in metrics.items():
        factor = np.exp(host_spread * rng.standard_normal((hosts, 1)))
        noise = _ar1(rng, (hosts, points), phi)
        if m.kind == "spiky":
            spikes = rng.random((hosts, points)) < 0.03
            values = np.where(spikes, m.level * np.exp(m.cv * noise), 0.0) * factor
        elif m.kind == "count":
            rate = m.level * factor * np.exp(m.cv * noise)
            values = rng.poisson(rate).astype(float)
        else:
            values = m.level * factor * (1 + m.cv * noise)
        shift = 1.0 + shifts.get(name, 0.0)
        values[baseline_hosts:] *= shift
        if m.kind == "count" and shift != 1.0:  # a shifted count is still a count
            values[baseline_hosts:] = rng.poisson(values[baseline_hosts:] + 0.0).astype(float)
        if m.kind == "counter":
            values = np.cumsum(np.maximum(values, 0.0) * STEP, axis=1) + 1e6
        base[name] = {f"b{i}": list(zip(t.tolist(), values[i].tolist())) for i in range(baseline_hosts)}
        can[name] = {f"c{i}": list(zip(t.tolist(), values[baseline_hosts + i].tolist())) for i in range(canary_hosts)}
    return base, can


def pooled_mann_whitney_high_low(base: np.ndarray, can: np.ndarray, confidence: float = 0.98) -> str:
    """The popular default, for comparison: a two-sided Mann-Whitney U test on pooled points (normal
    approximation with tie correction); ``High``/``Low`` when p < 1 - confidence, by the direction of the shift."""
    x = np.concatenate([base, can])
    n1, n2 = len(base), len(can)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    _, first, counts = np.unique(sorted_x, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # average rank of each tie group (1-based)
    ranks[order] = np.repeat(avg, counts)
    u = ranks[n1:].sum() - n2 * (n2 + 1) / 2.0
    mu = n1 * n2 / 2.0
    n = n1 + n2
    tie = (counts**3 - counts).sum()
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1)))
    if var <= 0:
        return "Pass"
    z = (u - mu) / np.sqrt(var)
    p = math.erfc(abs(float(z)) / math.sqrt(2))
    if p < 1 - confidence:
        return "High" if z > 0 else "Low"
    return "Pass"

