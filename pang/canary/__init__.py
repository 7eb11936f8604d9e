"""Canary analysis: is a new build, running beside its baseline, behaving like it? Pure: samples in, a verdict out.

:mod:`~pang.canary.config` (per-metric rules and their defaults),
:mod:`~pang.canary.judge` (the statistics, per-host summaries and an
equivalence-margin interval), :mod:`~pang.canary.report` (text and JSON). Where
the samples come from (a metrics index, a scrape) is the caller's business.
"""

from pang.canary.config import CanaryConfig, MetricConfig, default_config
from pang.canary.judge import CanaryResult, MetricResult, judge
from pang.canary.report import render_json, render_text, to_dict

__all__ = [
    "CanaryConfig",
    "CanaryResult",
    "MetricConfig",
    "MetricResult",
    "default_config",
    "judge",
    "render_json",
    "render_text",
    "to_dict",
]
