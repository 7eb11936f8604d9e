"""The Dash app: a shell (nav bar + router) around the registered pages, and the server that runs it.

``create_app(settings)`` builds a fresh app (tests build several); ``serve``
runs it under waitress (ZPL 2.1) with a pool of threads, so one slow search
never blocks another person's page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from dash import Dash, Input, Output, dcc, html

from pang.dashboards.auth import require_basic_auth
from pang.dashboards.pages import Page, default_pages, page_for
from pang.settings import Settings

log = logging.getLogger(__name__)
ASSETS = Path(__file__).with_name("assets")


class DashAuthError(ValueError):
    """Only one of the dashboard username and password is set."""


def create_app(settings: Settings, pages: tuple[Page, ...] | None = None) -> Dash:
    """The dashboards for ``settings``: every page of ``pages`` (default: all), behind basic auth if configured."""
    pages = pages if pages is not None else default_pages()
    app = Dash(
        __name__,
        title="pang",
        assets_folder=str(ASSETS),
        update_title=None,
        serve_locally=True,          # no CDN: the machines that run this may not reach one
        compress=False,
    )
    password = settings.dash_password.get_secret_value() if settings.dash_password else ""
    if bool(settings.dash_username) != bool(password):
        raise DashAuthError("set both PANG_DASH_USERNAME and PANG_DASH_PASSWORD, or neither")
    if settings.dash_username:
        require_basic_auth(app.server, settings.dash_username, password)

    shell = html.Div([
        dcc.Location(id="page-url", refresh=False),
        html.Nav([
            html.Span("pang", className="brand"),
            *(dcc.Link(p.name, href=p.path, className="nav-link", id=f"nav-{p.path.strip('/') or 'home'}") for p in pages),
        ], className="navbar"),
        html.Main(id="page-content", className="page"),
    ])
    app.layout = shell
    app.validation_layout = html.Div([shell, *(p.layout() for p in pages)])

    @app.callback(Output("page-content", "children"), Input("page-url", "pathname"))
    def route(pathname: str | None):  # type: ignore[no-untyped-def]
        page = page_for(pages, pathname)
        if page is None:
            return html.Div([html.H2("Not found"), html.P(f"No page at {(pathname or '')[:200]}.")], className="not-found")
        return page.layout()

    for page in pages:
        page.register(app, settings)
    return app


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, threads: int = 8,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve the dashboards until interrupted (blocking); ``announce`` gets the URL once it listens."""
    from waitress import create_server

    app = create_app(settings)
    server = create_server(app.server, host=host or settings.dash_host, port=settings.dash_port if port is None else port,
                           threads=threads, ident="pang", clear_untrusted_proxy_headers=True)
    if announce:
        shown = host or settings.dash_host
        announce(f"http://{f'[{shown}]' if ':' in shown else shown}:{server.effective_port}/")
    try:
        server.run()
    finally:
        server.close()
