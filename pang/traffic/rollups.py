"""The exact business counts of any minute, without writing a log line.

``rollups(start, end, seed)`` gives, for every minute and signal, the number of
business-event lines the generator writes for that minute (the log lines and
the rollups come from the same :func:`pang.traffic.cycles.minute_counts`, with
the same incidents), so months of per-minute history can be loaded in seconds
while the logs cover only the last hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pang.traffic.cycles import SIGNALS, RateModel, floor_minute, minute_counts, minutes
from pang.traffic.incidents import DEFAULT_SEED, Schedule

__all__ = ["count", "rollups"]


def count(
    signal: str,
    minute: datetime,
    seed: int = DEFAULT_SEED,
    *,
    model: RateModel | None = None,
    schedule: Schedule | None = None,
) -> int:
    """The count of ``signal`` (``orders``, ``payments``, ``payment_failures``) in the minute holding ``minute``."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}")
    model = model or (schedule.model if schedule else RateModel())
    schedule = schedule or Schedule(seed, model)
    minute = floor_minute(minute)
    incident = schedule.active(minute)
    return minute_counts(model, minute, seed, incident.effects if incident else None)[signal]


def rollups(
    start: datetime,
    end: datetime,
    seed: int = DEFAULT_SEED,
    *,
    model: RateModel | None = None,
    schedule: Schedule | None = None,
) -> Iterator[tuple[datetime, str, int]]:
    """``(minute, signal, count)`` for every whole minute in ``[start, end)`` and every signal, in time order.

    ``schedule`` carries incidents beyond the seed's (injected during a live
    run); by default the seed's schedule is used.
    """
    model = model or (schedule.model if schedule else RateModel())
    schedule = schedule or Schedule(seed, model)
    for minute in minutes(start, end):
        incident = schedule.active(minute)
        for signal, n in minute_counts(model, minute, seed, incident.effects if incident else None).items():
            yield minute, signal, n
