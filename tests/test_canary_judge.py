"""The canary judge on simulated runs: A/A passes, harmful shifts fail, missing data lowers reliability only."""

from __future__ import annotations

import json

from pang.canary import default_config, judge, render_json, render_text
from tests.canary_sim import simulate_run

CFG = default_config()


def test_aa_runs_pass_at_least_99_percent_with_autocorrelation_and_host_spread() -> None:
    passed = sum(judge(*simulate_run(seed), CFG).verdict == "Pass" for seed in range(500))
    assert passed >= 495, passed


def test_cpu_doubled_never_passes() -> None:
    for seed in range(200):
        r = judge(*simulate_run(5000 + seed, shifts={"cpu.pct": 1.05}), CFG)
        assert r.verdict == "Fail", seed
        assert "cpu.pct" in r.failed_critical


def test_score_never_rises_as_the_harmful_shift_grows() -> None:
    for seed in range(20):
        scores = [judge(*simulate_run(seed, shifts={"latency.p95_ms": s / 20}), CFG).score for s in range(0, 30)]
        assert all(a >= b for a, b in zip(scores, scores[1:])), (seed, scores)
        assert scores[-1] < scores[0]


def test_same_inputs_same_result() -> None:
    b, c = simulate_run(7, shifts={"cpu.pct": 0.15})
    assert render_json(judge(b, c, CFG)) == render_json(judge(b, c, CFG))


def test_missing_host_and_metric_lower_reliability_not_score() -> None:
    for seed in range(20):
        b, c = simulate_run(seed)
        full = judge(b, c, CFG)
        c2 = {m: dict(h) for m, h in c.items()}
        for m in c2:
            c2[m]["c0"] = []  # a host that reported nothing
        del c2["jvm.gc.fullgc.time"]
        del b["jvm.gc.fullgc.time"]
        part = judge(b, c2, CFG)
        gc = next(m for m in part.metrics if m.name == "jvm.gc.fullgc.time")
        assert gc.cls == "NoData"
        assert part.score == full.score == 100.0, seed
        assert part.reliability < full.reliability


def test_harmless_shift_passes() -> None:
    for seed in range(50):
        r = judge(*simulate_run(seed, shifts={"cpu.pct": -0.5}), CFG)
        cpu = next(m for m in r.metrics if m.name == "cpu.pct")
        assert cpu.cls == "Pass" and cpu.effect is not None and cpu.effect < -0.3


def test_mostly_zero_gc_metric_gives_no_false_high() -> None:
    highs = sum(
        next(m for m in judge(*simulate_run(seed), CFG).metrics if m.name == "jvm.gc.fullgc.time").cls != "Pass"
        for seed in range(300)
    )
    assert highs == 0


def test_bad_points_are_counted_and_report_renders() -> None:
    b, c = simulate_run(3)
    c["cpu.pct"]["c0"] = [*c["cpu.pct"]["c0"], (1.0, float("nan")), ("x", 1.0)]  # type: ignore[list-item]
    r = judge(b, c, CFG, service="brand_shop", run="49899")
    cpu = next(m for m in r.metrics if m.name == "cpu.pct")
    assert cpu.rejected == 2
    text = render_text(r)
    assert text.startswith("Canary Report - brand_shop #49899")
    assert "Canary Score 100.00" in text and "2 point(s) rejected" in text
    doc = json.loads(render_json(r))
    assert doc["verdict"] == "Pass" and {m["class"] for m in doc["metrics"]} == {"Pass"}
