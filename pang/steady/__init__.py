"""Steady state of the business: per-minute signals, their expected band from earlier cycles, alerts, backtest.

The pure core (no I/O): :mod:`~pang.steady.signals` (which events are which
signal), :mod:`~pang.steady.model` (expected value and band, causal),
:mod:`~pang.steady.alerts` (K-of-N open, dedupe, M-minute resolve) and
:mod:`~pang.steady.backtest` (precision, recall, delay against labelled
incidents, next to a seasonal-naive baseline). The I/O around it: rollups in
OpenSearch (:mod:`~pang.steady.rollups`), alert delivery
(:mod:`~pang.steady.notify`), the loop (:mod:`~pang.steady.runner`) and the
dashboard's view (:mod:`~pang.steady.view`).
"""

from pang.steady.alerts import Alert, AlertChange, AlertTracker
from pang.steady.model import ModelConfig, Point, evaluate, model_config
from pang.steady.signals import Signal, signals_from

__all__ = [
    "Alert",
    "AlertChange",
    "AlertTracker",
    "ModelConfig",
    "Point",
    "Signal",
    "evaluate",
    "model_config",
    "signals_from",
]
