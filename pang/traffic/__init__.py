"""Synthetic traffic of an e-commerce shop: its logs, its business cycles and its incidents (ground truth).

``pang demo traffic`` writes what six services (gateway, search, cart, order,
payment, shipment) log, in their own layouts, under a logs root, with business
events whose rates follow the shop's daily, weekly and calendar cycles, and
incidents whose start, end and effects are recorded. Everything is a function
of a seed, so the steady-state model can be scored against the truth:

- :func:`expected` - the rate model (no noise, no incidents);
- :func:`count` / :func:`rollups` - the exact per-minute counts the log lines
  hold, for any range, without writing logs (months in seconds);
- :func:`incidents` / :func:`events` / :func:`default_month` - the ground truth;
- :class:`Generator` - backfill and live writing of the log files.

Modules: ``cycles`` (rate model and sampling), ``incidents`` (schedule and
ground truth), ``formats`` (log layouts), ``flows`` (the lines of one minute),
``rollups`` (counts without logs), ``generator`` (files, backfill, live).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pang.traffic.cycles import DEFAULT_TIMEZONE, SIGNALS, RateModel
from pang.traffic.flows import Volume
from pang.traffic.generator import GROUND_TRUTH, Generator, Stats, TrafficError, parse_span
from pang.traffic.incidents import DEFAULT_MONTH, DEFAULT_SEED, Deployment, Incident, Schedule, default_month
from pang.traffic.rollups import count, rollups

__all__ = [
    "DEFAULT_MONTH",
    "DEFAULT_SEED",
    "DEFAULT_TIMEZONE",
    "GROUND_TRUTH",
    "SIGNALS",
    "Deployment",
    "Generator",
    "Incident",
    "RateModel",
    "Schedule",
    "Stats",
    "TrafficError",
    "Volume",
    "count",
    "default_month",
    "events",
    "expected",
    "incidents",
    "model_for",
    "parse_span",
    "rollups",
]


def model_for(settings: Any) -> RateModel:
    """The rate model of pang's settings (the business's time zone)."""
    return RateModel(timezone=settings.business_timezone)


def expected(signal: str, minute: datetime, model: RateModel | None = None) -> float:
    """Expected count of ``signal`` in the minute starting at ``minute``, without incidents."""
    return (model or RateModel()).expected(signal, minute)


def incidents(start: datetime, end: datetime, seed: int = DEFAULT_SEED, *, model: RateModel | None = None) -> list[Incident]:
    """The seed's incidents overlapping ``[start, end)``."""
    return Schedule(seed, model).incidents(start, end)


def events(start: datetime, end: datetime, seed: int = DEFAULT_SEED, *, model: RateModel | None = None) -> list[dict[str, Any]]:
    """The seed's deployment events (ECS documents for ``events-*``) in ``[start, end)``."""
    return Schedule(seed, model).events(start, end)
