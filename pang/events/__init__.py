"""Events: what changed (deploys, config changes), what alerted, and incidents, in ``events-*``.

- :mod:`pang.events.schema` - the one schema every writer uses (:class:`EventIn` -> ECS document);
- :mod:`pang.events.store` - writing events idempotently and reading a window of them.
"""

from pang.events.schema import EVENT_TYPES, OUTCOMES, PHASES, EventError, EventIn, parse_event
from pang.events.store import EventPage, EventStoreError, TimelineQuery, query_events, services_of, write_documents, write_events

__all__ = [
    "EVENT_TYPES",
    "OUTCOMES",
    "PHASES",
    "EventError",
    "EventIn",
    "EventPage",
    "EventStoreError",
    "TimelineQuery",
    "parse_event",
    "query_events",
    "services_of",
    "write_documents",
    "write_events",
]
