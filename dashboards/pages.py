"""The page registry: what the nav bar lists and the router serves.

A later page (steady state, status) adds one :class:`Page` to :data:`PAGES`
with a layout function and a function that registers its callbacks on the
app. Callbacks are registered per app (not Dash's global ``dash.callback``),
so each app carries its own settings and tests can run several apps in one
process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dash import Dash
from dash.development.base_component import Component

from pang.settings import Settings


@dataclass(frozen=True)
class Page:
    path: str                                           # "/search"
    name: str                                           # the nav bar's label
    layout: Callable[[], Component]                     # a fresh layout per visit
    register: Callable[[Dash, Settings], None]          # adds the page's callbacks to an app
    aliases: tuple[str, ...] = ()                       # other paths that serve it ("/" for the first page)


def default_pages() -> tuple[Page, ...]:
    """The pages of ``pang dash``, in nav bar order."""
    from pang.dashboards import events_page, search_page, status_page, steady_page

    return (
        Page("/search", "Search", search_page.layout, search_page.register, aliases=("/",)),
        Page("/steady", "Steady state", steady_page.layout, steady_page.register),
        Page("/events", "Timeline", events_page.layout, events_page.register),
        Page("/status", "Status", status_page.layout, status_page.register),
    )


def page_for(pages: tuple[Page, ...], pathname: str | None) -> Page | None:
    path = (pathname or "/").rstrip("/") or "/"
    for page in pages:
        if path == page.path or path in page.aliases:
            return page
    return None
