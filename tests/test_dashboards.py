"""The search dashboard in real headless Chromium, against the session's real OpenSearch node.

A few hundred documents of one unique service are indexed once: four levels,
two hosts, consecutive ``log.offset`` values per file, and one ERROR whose
message holds a unique word and markup. The app runs under waitress on a free
port (as ``pang dash`` runs it); ``pang dash`` itself runs as a process for the
basic-auth test. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from pang.indexer.client import client
from pang.indexer.naming import index_for
from pang.settings import Settings
from tests.browser import ThreadServer, screenshot
from tests.helpers import free_port

pytestmark = pytest.mark.stack

N_DOCS = 300
STEP = timedelta(seconds=10)
SPECIAL = 150  # the ERROR with the unique word; host h1, 75 lines of that file before it and 74 after


@dataclass(frozen=True)
class Corpus:
    service: str
    word: str
    times: list[datetime]
    levels: list[str]
    special_message: str


def _level(i: int) -> str:
    if i == SPECIAL or i % 25 == 0:
        return "ERROR"
    return ("INFO", "INFO", "DEBUG", "INFO", "WARN")[i % 5]


@pytest.fixture(scope="module")
def corpus(stack_settings: Settings) -> Corpus:
    tag = uuid.uuid4().hex[:10]
    service, word = f"dash{tag}", f"zq{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    special_message = f"payment {word} refused <script>alert('pwned')</script> <b>for</b> order 1234"
    offsets = {"h1": 0, "h2": 0}
    body: list[dict] = []
    times, levels = [], []
    for i in range(N_DOCS):
        ts = now - STEP * (N_DOCS - i)
        host = ("h1", "h2")[i % 2]
        message = special_message if i == SPECIAL else f"request {i} served in {i % 97} ms"
        doc = {
            "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message": message,
            "service": {"name": service},
            "host": {"name": f"{service}-{host}"},
            "log": {"level": _level(i), "offset": offsets[host], "file": {"path": f"/pang/logs/app/{service}/app.log"}},
            "event": {"dataset": "app"},
        }
        offsets[host] += len(message) + 1
        body += [{"index": {"_index": index_for("app", ts), "_id": f"{service}-{i}"}}, doc]
        times.append(ts)
        levels.append(_level(i))
    answer = client(stack_settings).bulk(body=body, refresh="true")
    assert not answer["errors"], answer
    return Corpus(service, word, times, levels, special_message)


@pytest.fixture(scope="module")
def server(stack_settings: Settings) -> Iterator[ThreadServer]:
    from pang.dashboards.app import create_app

    with ThreadServer(create_app(stack_settings).server) as srv:
        yield srv


def _open(pg: Page, server: ThreadServer, query: str) -> None:
    pg.goto(f"{server.url}/search{query}")
    expect(pg.locator("#search-total")).to_be_visible()


def _total(pg: Page) -> int:
    return int(re.sub(r"[^0-9]", "", pg.locator("#search-total").inner_text()))


def _bars(pg: Page):  # type: ignore[no-untyped-def]
    return pg.locator("#search-histogram g.trace.bars g.point")


def test_type_a_query_see_the_hits_histogram_and_facets(page: Page, server: ThreadServer, corpus: Corpus) -> None:
    _open(page, server, f"?since=1h&q=nothing{corpus.word}")
    expect(page.locator("#search-total")).to_have_text("0 hits")
    box = page.locator("#search-q")
    expect(box).to_have_attribute("maxlength", "1000")  # bounded input
    box.fill(f"service:{corpus.service}")
    box.press("Enter")
    expect(page.locator("#search-total")).to_have_text(f"{N_DOCS} hits")
    assert parse_qs(urlsplit(page.url).query)["q"] == [f"service:{corpus.service}"]
    assert _bars(page).count() >= 20  # one bar per bucket over the whole hour
    rows = page.locator(".results details.hit")
    expect(rows).to_have_count(50)  # the first page, newest first
    expect(rows.first.locator(".col-message")).to_have_text(f"request {N_DOCS - 1} served in {(N_DOCS - 1) % 97} ms")
    expect(page.locator("#search-service label")).to_have_text([f"{corpus.service} ({N_DOCS})"])
    for level, count in Counter(corpus.levels).items():
        expect(page.locator("#search-level label", has_text=level)).to_have_text(f"{level} ({count})")
    expect(page.locator("#search-host label")).to_have_count(2)
    screenshot(page, "dash-search-typed-query")
    page.locator("#search-more-btn").click()  # the cursor: the next 50, older
    expect(rows).to_have_count(100)
    expect(rows.nth(50).locator(".col-message")).to_have_text(f"request {N_DOCS - 51} served in {(N_DOCS - 51) % 97} ms")


def test_open_a_document_and_its_surrounding_lines(page: Page, server: ThreadServer, corpus: Corpus) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _open(page, server, f"?q={corpus.word}&since=1h")
    expect(page.locator("#search-total")).to_have_text("1 hit")
    row = page.locator(".results details.hit")
    expect(row).to_have_count(1)
    expect(row.locator(".col-message mark")).to_have_text(corpus.word)
    expect(row.locator(".col-message")).to_have_text(corpus.special_message)  # markup shown as text
    assert page.locator(".results script, .results b").count() == 0
    row.locator("summary").click()
    document = row.locator("table.document")
    expect(document).to_be_visible()
    expect(document.locator("tr", has_text="host.name")).to_contain_text(f"{corpus.service}-h1")
    expect(document.locator("tr", has_text="log.level")).to_contain_text("ERROR")
    row.get_by_role("button", name="Surrounding lines").click()
    lines = row.locator(".surrounding .line")
    expect(lines).to_have_count(41)  # 20 before, the hit, 20 after, all of host h1's file
    expect(row.locator(".surrounding .hit-line")).to_contain_text(corpus.word)
    expect(lines.nth(20)).to_have_class(re.compile(r"\bhit-line\b"))
    offsets = [int(t) for t in row.locator(".surrounding .line-offset").all_inner_texts()]
    assert offsets == sorted(offsets) and len(set(offsets)) == 41
    expect(lines.first).to_contain_text(f"request {SPECIAL - 40} ")
    screenshot(page, "dash-search-document-and-surrounding")
    assert not dialogs, "a message's markup ran as script"


def test_a_shared_url_opens_the_same_search(browser, page: Page, server: ThreadServer, corpus: Corpus) -> None:  # type: ignore[no-untyped-def]
    _open(page, server, f"?q=service:{corpus.service}&since=1h")
    expect(page.locator("#search-total")).to_have_text(f"{N_DOCS} hits")
    page.locator("#search-level label", has_text="ERROR").locator("input").check()  # a filter from the facets
    errors = corpus.levels.count("ERROR")
    expect(page.locator("#search-total")).to_have_text(f"{errors} hits")
    assert parse_qs(urlsplit(page.url).query)["level"] == ["ERROR"]
    first = page.locator(".results details.hit").first.locator("summary").text_content()
    shared = page.url

    other = browser.new_context(viewport={"width": 1440, "height": 960})  # someone else, from the incident channel
    try:
        pasted = other.new_page()
        pasted.set_default_timeout(20_000)
        pasted.goto(shared)
        expect(pasted.locator("#search-total")).to_have_text(f"{errors} hits")
        expect(pasted.locator(".results details.hit").first.locator("summary")).to_have_text(first)
        expect(pasted.locator("#search-q")).to_have_value(f"service:{corpus.service}")
        expect(pasted.locator("#search-level label", has_text="ERROR").locator("input")).to_be_checked()
        expect(pasted.locator("#search-since")).to_contain_text("Last hour")
        screenshot(pasted, "dash-search-shared-url")
    finally:
        other.close()


def test_dragging_on_the_histogram_zooms_the_range_in_the_url(page: Page, server: ThreadServer, corpus: Corpus) -> None:
    _open(page, server, f"?q=service:{corpus.service}&since=1h")
    expect(page.locator("#search-total")).to_have_text(f"{N_DOCS} hits")
    expect(_bars(page).first).to_be_attached()
    area = page.locator("#search-histogram .nsewdrag").first.bounding_box()
    assert area is not None
    y = area["y"] + area["height"] / 2
    page.mouse.move(area["x"] + area["width"] * 0.35, y)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.65, y, steps=12)
    page.mouse.up()
    page.wait_for_url(re.compile(r"[?&]from="))
    params = parse_qs(urlsplit(page.url).query)
    start, end = (datetime.fromisoformat(params[k][0].replace("Z", "+00:00")) for k in ("from", "to"))
    expected = sum(start <= t < end for t in corpus.times)
    assert 0 < expected < N_DOCS
    expect(page.locator("#search-total")).to_have_text(f"{expected} hits")
    expect(page.locator("#search-from")).to_have_value(params["from"][0])
    assert "since" not in params and params["q"] == [f"service:{corpus.service}"]
    screenshot(page, "dash-search-zoomed")

    page.locator("#search-since").click()  # a quick range replaces the absolute one
    page.get_by_role("option", name="Last 4 hours").click()
    page.wait_for_url(re.compile(r"[?&]since=4h"))
    assert "from" not in parse_qs(urlsplit(page.url).query)
    expect(page.locator("#search-total")).to_have_text(f"{N_DOCS} hits")
    expect(page.locator("#search-from")).to_have_value("")
    page.go_back()  # the browser's history holds the zoom
    expect(page.locator("#search-total")).to_have_text(f"{expected} hits")
    expect(page.locator("#search-from")).to_have_value(params["from"][0])

    bar = _bars(page).nth(_bars(page).count() // 2).bounding_box()  # a click zooms to that one bucket
    assert bar is not None
    before = page.url
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] - 2)
    page.wait_for_url(lambda url: url != before)
    params = parse_qs(urlsplit(page.url).query)
    start, end = (datetime.fromisoformat(params[k][0].replace("Z", "+00:00")) for k in ("from", "to"))
    assert timedelta(seconds=1) <= end - start <= timedelta(minutes=1)  # one bucket of an 18-minute range
    in_bucket = sum(start <= t < end for t in corpus.times)
    assert in_bucket > 0
    expect(page.locator("#search-total")).to_have_text(f"{in_bucket} hit" + ("" if in_bucket == 1 else "s"))


def test_errors_show_in_a_banner_not_a_broken_page(page: Page, server: ThreadServer, stack_settings: Settings, corpus: Corpus) -> None:
    page.goto(f"{server.url}/search?q={quote(chr(34))}unclosed&since=1h")
    banner = page.locator("#search-error")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("quote")
    expect(page.locator(".results details.hit")).to_have_count(0)
    page.goto(f"{server.url}/search?from=yesterday")  # a time nobody can read
    expect(banner).to_contain_text("yesterday")

    from pang.dashboards.app import create_app

    down_url = f"http://127.0.0.1:{free_port(taken=set())}"
    with ThreadServer(create_app(stack_settings.model_copy(update={"opensearch_url": down_url})).server) as down:
        page.goto(f"{down.url}/search?q=x")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(down_url.removeprefix("http://"))
        expect(page.locator("#search-q")).to_have_value("x")
        screenshot(page, "dash-search-cluster-down")


def _get(url: str, auth: tuple[str, str] | None = None, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_pang_dash_serves_on_its_port_behind_basic_auth(browser, stack_settings: Settings, corpus: Corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port(taken=set())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANG_")}
    env.update({"PANG_OPENSEARCH_URL": stack_settings.opensearch_url, "PANG_STATE_DIR": str(tmp_path),
                "PANG_DASH_USERNAME": "ops", "PANG_DASH_PASSWORD": "c0rrect horse"})
    log = tmp_path / "dash.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pang.cli", "dash", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (401)
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "pang dash did not answer within 60 s:\n" + log.read_text()
                time.sleep(0.2)
        good, bad = ("ops", "c0rrect horse"), ("ops", "wrong")
        for path in ("/", "/search", "/assets/pang.css", "/_dash-layout", "/_dash-dependencies"):
            assert _get(base + path) == 401, path
            assert _get(base + path, bad) == 401, path
            assert _get(base + path, good) == 200, path
        assert _get(base + "/_dash-update-component", data=b"{}") == 401

        context = browser.new_context(http_credentials={"username": good[0], "password": good[1]})
        try:
            pg = context.new_page()
            pg.set_default_timeout(20_000)
            pg.goto(f"{base}/search?q={corpus.word}&since=1h")
            expect(pg.locator("#search-total")).to_have_text("1 hit")  # callbacks pass the same check
            screenshot(pg, "dash-basic-auth")
        finally:
            context.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
