"""Index names: one daily index per dataset, chosen by the document's own ``@timestamp``.

Daily indices keyed on event time (not on arrival time, and not data
streams) are what make a replay harmless: a re-sent document lands in the
same index as the first time, and its deterministic ``_id`` turns the second
write into an overwrite of itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

# event.dataset -> index prefix. The archive's dataset= partition uses the same keys.
PREFIXES: dict[str, str] = {
    "app": "logs-app",
    "syslog": "logs-syslog",
    "metrics": "metrics",
    "business": "metrics-business",
    "events": "events",
    "deadletter": "deadletter",
    "rehydrated": "rehydrated",
}


def index_for(dataset: str, timestamp: datetime) -> str:
    """``logs-app-2026.11.24`` for dataset ``app`` at any time of that UTC day."""
    try:
        prefix = PREFIXES[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(PREFIXES)}") from None
    day = timestamp.astimezone(UTC) if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    return f"{prefix}-{day:%Y.%m.%d}"


def index_for_day(dataset: str, iso_day: str) -> str:
    """Same as :func:`index_for` from a ``YYYY-MM-DD`` string (cheap on the hot path)."""
    return f"{PREFIXES[dataset]}-{iso_day[0:4]}.{iso_day[5:7]}.{iso_day[8:10]}"


def pattern_for(dataset: str) -> str:
    """The index expression covering every daily index of ``dataset``.

    ``metrics-*`` would also match ``metrics-business-*``, so that one is excluded.
    """
    if dataset == "metrics":
        return "metrics-*,-metrics-business-*"
    return f"{PREFIXES[dataset]}-*"
