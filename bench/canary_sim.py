"""Canary judge on simulated runs, beside a pooled Mann-Whitney at 0.98: A/A pass rate and detection by shift.

    .venv/bin/python bench/canary_sim.py [--runs 500] [--hosts 3x3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pang.canary import default_config, judge  # noqa: E402
from tests.canary_sim import pooled_mann_whitney_high_low, simulate_run  # noqa: E402


def _mw_verdict(b: dict, c: dict, cfg) -> str:  # type: ignore[no-untyped-def]
    passing, total, failed_crit = 0.0, 0.0, False
    for m in cfg.metrics:
        if m.kind == "counter":
            pts = lambda side: np.concatenate([np.diff([v for _, v in s]) / 10.0 for s in side[m.name].values()])  # noqa: E731
        else:
            pts = lambda side: np.concatenate([[v for _, v in s] for s in side[m.name].values()])  # noqa: E731
        cls = pooled_mann_whitney_high_low(pts(b), pts(c), 0.98)
        bad = (cls == "High" and m.direction != "decrease") or (cls == "Low" and m.direction != "increase")
        total += m.weight
        passing += 0 if bad else m.weight
        failed_crit |= bad and m.critical
    score = 100 * passing / total
    return "Fail" if failed_crit or score < 75 else ("Pass" if score >= 95 else "Marginal")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--hosts", default="3x3", help="baseline x canary hosts")
    a = ap.parse_args()
    kb, kc = (int(x) for x in a.hosts.split("x"))
    cfg = default_config()
    print(f"hosts {kb} baseline x {kc} canary, 60 points each, AR(1) 0.7, host spread 5 %, {a.runs} runs per row")
    print(f"{'case':<28} {'judge: not Pass':>16} {'pooled MW 0.98: not Pass':>25}")
    for label, metric, shift, seed0 in [("A/A (share that Pass)", None, 0.0, 0)] + [
        (f"{metric} +{int(s * 100)}%", metric, s, 100000 * (i + 1))
        for metric in ("cpu.pct", "load.1m") for i, s in enumerate((0.1, 0.2, 0.5, 1.05))
    ]:
        shifts = {metric: shift} if metric else {}
        j = mw = 0
        for s in range(a.runs):
            b, c = simulate_run(seed0 + s, baseline_hosts=kb, canary_hosts=kc, shifts=shifts)
            j += judge(b, c, cfg).verdict != "Pass"
            mw += _mw_verdict(b, c, cfg) != "Pass"
        if metric is None:
            j, mw = a.runs - j, a.runs - mw
        print(f"{label:<28} {j / a.runs:>16.3f} {mw / a.runs:>25.3f}", flush=True)


if __name__ == "__main__":
    main()
