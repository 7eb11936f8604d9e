"""The whole search as a URL query string, and back.

A link pasted into an incident channel must open the same search, so the URL
is the single source of truth: controls write it, and loading it restores
every control and the results. Both directions are pure functions here; the
page only wires them to ``dcc.Location``.

Everything read from a URL is user input: lengths and list sizes are bounded,
unknown parameters are ignored, and nothing is validated beyond that here
(the time range and query are checked by the search layer, whose messages the
page shows in its error banner).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

MAX_TEXT = 1000          # the query box's maxLength too
MAX_VALUE = 200          # one filter value or time expression
MAX_VALUES = 50          # values per filter
MAX_QUERY_STRING = 16_000
DATASETS = ("app", "syslog")
DEFAULT_DATASETS = ("app",)
DEFAULT_SINCE = "15m"


@dataclass(frozen=True)
class SearchState:
    """What a person asked for, as they said it (``since`` stays relative: "1h" means the last hour)."""

    text: str = ""
    since: str | None = None     # relative range; None with start: an absolute range; both None: DEFAULT_SINCE
    start: str | None = None     # ISO 8601 or now-1h style, as typed or as the histogram zoom set it
    end: str | None = None
    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    datasets: tuple[str, ...] = DEFAULT_DATASETS

    @property
    def effective_since(self) -> str | None:
        """The relative range in force: ``since``, else the default unless an absolute start is given."""
        if self.since:
            return self.since
        return None if self.start else DEFAULT_SINCE

    def with_since(self, since: str) -> SearchState:
        return replace(self, since=_bounded(since), start=None, end=None)

    def with_range(self, start: str | None, end: str | None) -> SearchState:
        """An absolute range; an empty start falls back to the default relative range."""
        start, end = _bounded(start), _bounded(end)
        if not start:
            return replace(self, since=None, start=None, end=None)
        return replace(self, since=None, start=start, end=end)


def to_query(state: SearchState) -> str:
    """``?q=...&since=1h&service=a&service=b``: stable order, defaults left out, ``""`` for the default search."""
    pairs: list[tuple[str, str]] = []
    if state.text:
        pairs.append(("q", state.text))
    if state.start:
        pairs.append(("from", state.start))
        if state.end:
            pairs.append(("to", state.end))
    elif state.since:
        pairs.append(("since", state.since))
    pairs += [("service", v) for v in state.services]
    pairs += [("level", v) for v in state.levels]
    pairs += [("host", v) for v in state.hosts]
    if tuple(state.datasets) != DEFAULT_DATASETS:
        pairs += [("dataset", v) for v in state.datasets]
    return "?" + urlencode(pairs) if pairs else ""


def from_query(search: str | None) -> SearchState:
    """The state a URL's query string describes; tolerant of junk, bounded in size."""
    params = parse_qs((search or "")[:MAX_QUERY_STRING].removeprefix("?"), keep_blank_values=False)
    text = _first(params, "q", MAX_TEXT) or ""
    start = _first(params, "from")
    datasets = tuple(v for v in _many(params, "dataset") if v in DATASETS) or DEFAULT_DATASETS
    return SearchState(
        text=text.strip(),
        since=None if start else _first(params, "since"),
        start=start,
        end=_first(params, "to") if start else None,
        services=_many(params, "service"),
        levels=_many(params, "level"),
        hosts=_many(params, "host"),
        datasets=datasets,
    )


def _bounded(value: str | None, limit: int = MAX_VALUE) -> str | None:
    value = (value or "").strip()[:limit]
    return value or None


def _first(params: dict[str, list[str]], key: str, limit: int = MAX_VALUE) -> str | None:
    values = params.get(key)
    return _bounded(values[0], limit) if values else None


def _many(params: dict[str, list[str]], key: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for raw in params.get(key, []):
        value = _bounded(raw)
        if value:
            seen.setdefault(value, None)
        if len(seen) >= MAX_VALUES:
            break
    return tuple(seen)
