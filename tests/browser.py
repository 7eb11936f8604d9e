"""Real headless Chromium for dashboard tests: one browser per session, a fresh page per test.

The ``browser`` and ``page`` fixtures are registered once in ``tests/conftest.py``;
serve the app with :class:`ThreadServer`.
Debian's Chromium (/usr/bin/chromium) is driven by Playwright; no browser is
downloaded. Playwright gives every launch a fresh temporary profile (user data
dir). The flags keep Chromium from reaching for hosts this machine cannot
reach. Screenshots go to ``test-artifacts/`` at the repo root and their paths
are printed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 20_000


class _Shared:
    """One Playwright and one Chromium per process, however many modules import the fixture.

    Each test module that imports ``browser`` gets its own session-scoped fixture
    definition, so pytest would run it once per module and keep each alive until
    the session ends; a second ``sync_playwright()`` inside the first one's event
    loop is refused. The instances share one browser instead; the last to finish
    closes it.
    """

    users = 0
    playwright: object = None
    chromium: object = None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A Playwright ``Browser`` on Debian's Chromium, started once per session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/bootstrap.sh does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # auto-waiting assertions: generous on a busy 2-core machine

    if _Shared.chromium is None:
        _Shared.playwright = sync_playwright().start()
        _Shared.chromium = _Shared.playwright.chromium.launch(  # type: ignore[attr-defined]
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    _Shared.users += 1
    try:
        yield _Shared.chromium
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            try:
                _Shared.chromium.close()  # type: ignore[attr-defined]
            finally:
                _Shared.playwright.stop()  # type: ignore[attr-defined]
                _Shared.chromium = _Shared.playwright = None


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A new page in its own context (no cookies or storage shared between tests); fails on page errors."""
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(pg, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot as a test artifact and print where it is."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    pg.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


class ThreadServer:
    """A WSGI app served by waitress (as ``pang dash`` does) in a thread, on a free loopback port."""

    def __init__(self, wsgi_app: Callable[..., object]) -> None:
        from waitress import create_server

        self._server = create_server(wsgi_app, host="127.0.0.1", port=0, threads=4, ident="pang-test")
        self.url = f"http://127.0.0.1:{self._server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="dash-test-server", daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._thread.join(timeout=10)
