"""Rendering search results as Dash components, from the search layer's objects.

Nothing here builds HTML from strings: highlighted matches become ``html.Mark``
children and every other piece of a document is a plain string child, which
React escapes. A message containing ``<script>`` is shown as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from dash import html

from pang.indexer.search import Hit, highlight_segments

ROW_MESSAGE_CHARS = 400       # the one-line preview in a result row
VALUE_CHARS = 20_000          # one field in the expanded document
FRAGMENT_SEPARATOR = " … "


def highlighted(fragments: Sequence[str] | None) -> list[Any]:
    """Fragments with highlight markers as text and ``html.Mark`` pieces (empty if none)."""
    children: list[Any] = []
    for i, fragment in enumerate(fragments or ()):
        if i:
            children.append(FRAGMENT_SEPARATOR)
        for text, is_match in highlight_segments(fragment):
            children.append(html.Mark(text) if is_match else text)
    return children


def dig(document: dict[str, Any], dotted: str) -> Any:
    """``dig(doc, "service.name")`` for nested or flat (``{"service.name": ...}``) fields."""
    if dotted in document:
        return document[dotted]
    value: Any = document
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted field names and leaf values, sorted by name (lists stay whole)."""
    rows: list[tuple[str, Any]] = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return sorted(rows, key=lambda row: row[0])


def display_time(value: Any) -> str:
    """``2026-11-26T16:05:12.123Z`` as ``2026-11-26 16:05:12.123`` (the page says UTC)."""
    text = str(value or "")[:40]
    return text.replace("T", " ").removesuffix("Z").removesuffix("+00:00")


def _text(value: Any, limit: int = VALUE_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit:,} more characters)"


def _level_class(level: Any) -> str:
    return "level level-" + re.sub(r"[^a-z]", "", str(level or "").lower())[:12]


def document_table(document: dict[str, Any], message_children: list[Any] | None = None) -> html.Table:
    """The whole document as field/value rows; ``message`` may come highlighted."""
    rows = []
    for name, value in flatten(document):
        cell: Any = message_children if name == "message" and message_children else _text(value)
        rows.append(html.Tr([html.Th(name), html.Td(html.Pre(cell) if name in ("message", "error.stack_trace") else cell)]))
    return html.Table(html.Tbody(rows), className="document")


def hit_key(hit: Hit) -> dict[str, str]:
    """The pattern-matching id part naming one hit (index and id are needed to fetch its neighbours)."""
    return {"index": hit.index, "doc": hit.id}


def row_message(hit: Hit) -> list[Any]:
    """The row's message: highlighted fragments if the search marked any, else the start of the message."""
    marked = highlighted(hit.highlight.get("message"))
    if marked:
        return marked
    message = _text(dig(hit.source, "message") or "", ROW_MESSAGE_CHARS)
    return [message.split("\n", 1)[0]]


def hit_row(hit: Hit) -> html.Details:
    """One result: a summary line that opens to the document and its surrounding lines."""
    src = hit.source
    level = dig(src, "log.level")
    whole_message = highlighted(hit.highlight.get("message")) if _whole_field(hit) else None
    summary = html.Summary([
        html.Span(display_time(dig(src, "@timestamp")), className="col-time"),
        html.Span(_text(dig(src, "service.name") or "", 80), className="col-service"),
        html.Span(_text(level or "", 16), className=_level_class(level) + " col-level"),
        html.Span(row_message(hit), className="col-message"),
    ], className="hit-summary")
    body = html.Div([
        document_table(src, whole_message),
        html.Div([
            html.Button("Surrounding lines", id={"type": "surround-btn", **hit_key(hit)}, className="surround-btn", n_clicks=0),
            html.Span(f"{hit.index} / {hit.id}", className="hit-where"),
        ], className="hit-actions"),
        html.Div(id={"type": "surround-out", **hit_key(hit)}, className="surrounding"),
    ], className="hit-body")
    return html.Details([summary, body], className="hit")


def _whole_field(hit: Hit) -> bool:
    """Whether the message's highlight is the whole message (so the document view can show it marked)."""
    fragments = hit.highlight.get("message") or []
    message = dig(hit.source, "message")
    if len(fragments) != 1 or not isinstance(message, str):
        return False
    return "".join(text for text, _ in highlight_segments(fragments[0])) == message


def surrounding_view(lines: Iterable[Hit], hit_id: str) -> html.Div:
    """Neighbouring lines of the same file in file order, the hit marked."""
    rows = []
    lines = list(lines)
    for line in lines:
        src = line.source
        is_hit = line.id == hit_id
        message = _text(dig(src, "message") or "", 2000)
        rows.append(html.Div([
            html.Span(str(dig(src, "log.offset") if dig(src, "log.offset") is not None else ""), className="line-offset"),
            html.Span(display_time(dig(src, "@timestamp")), className="line-time"),
            html.Span(_text(dig(src, "log.level") or "", 16), className=_level_class(dig(src, "log.level"))),
            html.Pre(html.Mark(message) if is_hit else message, className="line-message"),
        ], className="line hit-line" if is_hit else "line", **({"aria-current": "true"} if is_hit else {})))
    if not rows:
        return html.Div("No other lines of this file are indexed.", className="muted")
    first = lines[0].source
    header = f"{_text(dig(first, 'log.file.path') or '?', 300)} on {_text(dig(first, 'host.name') or '?', 100)}: {len(rows)} lines"
    return html.Div([html.Div(header, className="surrounding-header"), *rows])


def facet_options(counts: dict[str, int] | None, selected: Sequence[str]) -> list[dict[str, Any]]:
    """Checklist options ``name (count)``, most frequent first; selected values stay even at zero."""
    counts = dict(counts or {})
    for value in selected:
        counts.setdefault(value, 0)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"label": f"{name} ({count:,})", "value": name} for name, count in ordered]
