"""The canary report a deployer reads: text for a terminal or a notification, JSON for the dashboard and the API.

Pure formatting of a :class:`~pang.canary.judge.CanaryResult`; no judgement here.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from pang.canary.judge import CanaryResult, MetricResult


def to_dict(result: CanaryResult) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists; the field names are the dataclasses')."""
    out = asdict(result)
    out["metrics"] = [_metric_dict(m) for m in result.metrics]
    out["failed_critical"] = list(result.failed_critical)
    return out


def _metric_dict(m: MetricResult) -> dict[str, Any]:
    d = asdict(m)
    d["class"] = d.pop("cls")
    for key in ("interval", "effect_interval"):
        d[key] = list(d[key]) if d[key] is not None else None
    return d


def render_json(result: CanaryResult) -> str:
    return json.dumps(to_dict(result), indent=2, sort_keys=False)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def render_text(result: CanaryResult) -> str:
    """``Canary Report - brand_shop #49899`` / score, reliability, verdict / one line per metric."""
    title = "Canary Report"
    if result.service or result.run:
        title += " - " + " ".join(p for p in (result.service, f"#{result.run}" if result.run else "") if p)
    lines = [
        title,
        f"Canary Score {result.score:.2f}, Score Reliability {result.reliability:.0f}, {_verdict_word(result)}",
    ]
    if result.failed_critical:
        lines.append("Failed critical metrics: " + ", ".join(result.failed_critical))
    header = f"{'metric':<26} {'class':<7} {'effect':>8} {'interval':>19} {'allowed':>9} {'points b/c':>11} {'hosts b/c':>9}"
    lines += ["", header, "-" * len(header)]
    for m in result.metrics:
        iv = "-" if m.effect_interval is None else f"[{_pct(m.effect_interval[0])}, {_pct(m.effect_interval[1])}]"
        allowed = "-"
        if m.band is not None and m.baseline_mean:
            allowed = f"±{100 * m.band / abs(m.baseline_mean):.1f}%"
        elif m.band is not None:
            allowed = f"±{m.band:g}"
        name = m.name + (" *" if m.critical else "")
        lines.append(
            f"{name:<26} {m.cls:<7} {_pct(m.effect):>8} {iv:>19} {allowed:>9} "
            f"{m.baseline_points:>5}/{m.canary_points:<5} {m.baseline_hosts:>4}/{m.canary_hosts:<4}"
        )
        if m.note:
            lines.append(f"    {m.note}")
        if m.rejected:
            lines.append(f"    {m.rejected} point(s) rejected (not a finite number)")
    lines.append("")
    lines.append(f"* critical. Interval: one-sided confidence {result.confidence:g} per bound; "
                 f"Pass at {result.pass_score:g}, Marginal at {result.marginal_score:g}.")
    return "\n".join(lines)


def _verdict_word(result: CanaryResult) -> str:
    return {"Pass": "Ok", "Marginal": "Marginal", "Fail": "Failed"}[result.verdict]
