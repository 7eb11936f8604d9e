"""The demo: the whole pipeline on a synthetic shop's traffic, with the dashboards at a local URL.

What it runs, in order, all in this one process except the two servers:

1. the local stack (OpenSearch + SeaweedFS), unless it already runs;
2. the traffic generator (``pang.traffic``): a backfill of recent history as
   log files under ``<state>/demo/traffic/logs/<service>/``, then live
   writing; a bad deploy is injected a few minutes in (ground truth in
   ``_ground_truth/``), and deployment events go to ``events-*``;
3. the real agent (``pang ship``'s :class:`~pang.shippers.agent.Agent`) with
   its own state folder and free ports, shipping those files (and syslog);
4. the steady-state runner (``pang steady run``): business rollups of
   about ten weeks of history written from the generator's counts, then
   counted from the shipped logs each minute, alerts to ``events-*``;
5. the archiver every minute (closed hours to Parquet in the archive);
6. the dashboards (waitress), whose URL it prints, with a link to the
   incident's errors once it starts and to the steady-state page when the
   alert opens.

Ctrl-C (or ``--duration``) stops everything it started, the stack included
when the demo started it. Running it again continues the same traffic: the
generator and the agent resume from their state, nothing is shipped twice.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from rich.console import Console

from pang import stack
from pang.settings import Settings
from pang.stack.progress import step

EVENT_DATASET = "events"


@dataclass
class DemoOptions:
    backfill: timedelta = timedelta(minutes=20)
    incident_after: timedelta = timedelta(minutes=3)
    incident_minutes: int = 10
    incident_drop: float = 0.5
    duration: timedelta | None = None
    seed: int = 7
    scale: float = 1.0


@dataclass
class DemoState:
    """What the running demo knows, for its status line and for tests reading its output."""

    url: str = ""
    started_stack: bool = False
    incidents: list[Any] = field(default_factory=list)
    events_indexed: set[str] = field(default_factory=set)


def index_events(settings: Settings, docs: list[dict[str, Any]], seen: set[str], *, upto: datetime | None = None) -> int:
    """Deployment events into ``events-YYYY.MM.DD`` (id = the event's own id: a re-run overwrites itself).

    With ``upto``, only the events that have happened by then: a rollout's
    later phases appear on the timeline when they happen, not when it began.
    """
    from pang.events.store import EventStoreError, write_documents

    limit = None if upto is None else upto.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    fresh = [d for d in docs if d["event"]["id"] not in seen and (limit is None or d["@timestamp"] <= limit)]
    if not fresh:
        return 0
    try:
        write_documents(settings, fresh)
    except EventStoreError as exc:
        raise stack.StackError(f"deployment events: {exc}") from None
    seen.update(d["event"]["id"] for d in fresh)
    return len(fresh)


def search_link(base: str, *, query: str, service: str | None, start: datetime, end: datetime) -> str:
    """A dashboards URL that opens the search (the URL carries the whole search)."""
    params: list[tuple[str, str]] = [("q", query)]
    if service:
        params.append(("service", service))
    params += [("from", start.strftime("%Y-%m-%dT%H:%M:%SZ")), ("to", end.strftime("%Y-%m-%dT%H:%M:%SZ"))]
    return f"{base}/search?{urlencode(params)}"


@contextmanager
def _thread(name: str, target: Any, stop: threading.Event) -> Iterator[threading.Thread]:
    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    try:
        yield t
    finally:
        stop.set()
        t.join(timeout=30)


def run_demo(settings: Settings, *, options: DemoOptions, console: Console, ready: threading.Event | None = None,
             stop: threading.Event | None = None) -> DemoState:
    """Run the demo until ``stop`` is set, Ctrl-C/SIGTERM, or ``options.duration``; returns what it did."""
    from pang.archive.archiver import run as archive_run
    from pang.shippers.agent import Agent
    from pang.traffic import Generator, Volume, model_for

    state = DemoState()
    stop = stop or threading.Event()
    already = {s.name for s in stack.status(settings) if s.healthy}
    stack.up(settings)
    state.started_stack = not {"opensearch", "s3"} <= already and settings.opensearch_is_local
    root = settings.state_dir / "demo" / "traffic" / "logs"
    gen = Generator(root, seed=options.seed, model=model_for(settings), volume=Volume(scale=options.scale))
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent = None
    try:
        now = datetime.now(UTC)
        with step(f"writing {options.backfill} of shop traffic under {root}") as s:
            stats = gen.backfill(now - options.backfill, now, progress=lambda n, total: s.detail(f"minute {n}/{total}"))
            s.detail(f"{stats.lines:,} lines")
        index_events(settings, gen.schedule.events(now - timedelta(days=1), now + timedelta(minutes=1)), state.events_indexed, upto=now)
        # The demo's agent keeps its own state and takes free ports, so it never meets a `pang ship` you run.
        demo_settings = settings.model_copy(update={
            "service_environment": "demo", "state_dir": settings.state_dir / "demo", "ship_http_port": 0, "syslog_port": 0,
        })
        agent = Agent(demo_settings, paths=[str(root / "*" / "*.log")])
        agent.start()
        _wait_shipped(settings, agent, stats.lines, console)
        runner = _steady(demo_settings, options)
        server = _dashboards(settings)
        base = f"http://{settings.dash_host}:{server.effective_port}"
        state.url = base

        def live() -> None:
            gen.live(stop=stop, catch_up=True)

        def archiver() -> None:
            while not stop.wait(60):
                try:
                    # the last day only: the ten weeks of backfilled rollups would be 1,700 tiny windows
                    done = archive_run(settings, start=datetime.now(UTC) - timedelta(days=1))
                    rollups = [w for w in done.archived if w.window.dataset == "business"]
                    if rollups:
                        console.print(f"archived {len(rollups)} hours of business rollups ({sum(w.rows for w in rollups):,} rows)")
                    for w in (w for w in done.archived if w.window.dataset != "business"):
                        console.print(f"archived {w.window.dataset} {w.window.start:%Y-%m-%d %H}:00 UTC: {w.rows:,} rows to {settings.archive}"
                                      f"  (query: pang archive query \"SELECT count(*) FROM logs WHERE dt = '{w.window.start:%Y-%m-%d}'\")")
                except Exception as exc:  # noqa: BLE001 - the demo reports and goes on; `pang archive run` shows details
                    console.print(f"[yellow]archive: {type(exc).__name__}: {str(exc)[:200]}[/]")

        def steady() -> None:
            from pang.steady.notify import alert_message

            while not stop.wait(settings.steady_interval):
                try:
                    for change in runner.step():
                        style = "bold red" if change.kind == "opened" else "green"
                        console.print(f"[{style}]alert {change.kind}:[/] "
                                      + alert_message(change.kind, change.alert, tz=settings.business_timezone)
                                      + f"\n  {base}/steady?signal={change.alert.signal}&since=3h")
                except Exception as exc:  # noqa: BLE001 - reported; the next pass judges the same minutes again
                    console.print(f"[yellow]steady state: {type(exc).__name__}: {str(exc)[:200]}[/]")

        with _thread("demo-dashboards", server.run, stop), _thread("demo-traffic", live, stop), \
                _thread("demo-archiver", archiver, stop), _thread("demo-steady", steady, stop):
            console.print(f"\n[bold green]pang demo is ready:[/] {base}/search   (Ctrl-C stops everything the demo started)")
            console.print(f"  steady state of orders and payments: {base}/steady?signal=orders&since=3h")
            console.print(f"  what changed in the last hour: {base}/events?since=1h · is it recovered? {base}/status")
            console.print(f"  OpenSearch {settings.display_opensearch_url} · archive {settings.archive} · "
                          f"agent metrics http://{settings.ship_http_host}:{agent.http_port}/metrics")
            if ready is not None:
                ready.set()
            try:
                _supervise(settings, gen, state, options, stop, console, base)
            finally:
                stop.set()
                server.close()
    except KeyboardInterrupt:
        stop.set()
    finally:
        stop.set()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if agent is not None:
            agent.shutdown()
        gen.close()
        if state.started_stack:
            with step("stopping the stack the demo started"):
                stack.down(settings)
        console.print("demo stopped")
    return state


def _steady(settings: Settings, options: DemoOptions) -> Any:
    """The steady-state runner, its history backfilled from the generator's counts (what its logs would have held)."""
    import logging

    from pang.steady.runner import Runner, state_path

    logging.getLogger("pang.steady").setLevel(logging.ERROR)  # the demo prints alerts itself, with their links
    state = state_path(settings)
    if state.exists() and time.time() - state.stat().st_mtime > 600:
        # The demo was not running for a while: no logs is not "no orders". Start judging afresh; the
        # runner fills the minutes it missed from the generator, which knows what they held.
        state.unlink()

    runner = Runner(settings, from_generator=True, seed=options.seed)
    with step("business rollups: history from the generator (about 10 weeks), then the live logs"):
        runner.prepare(datetime.now(UTC))
    return runner


def _dashboards(settings: Settings) -> Any:
    from waitress import create_server

    from pang.dashboards.app import create_app

    app = create_app(settings)
    return create_server(app.server, host=settings.dash_host, port=settings.dash_port, threads=8, ident="pang",
                         clear_untrusted_proxy_headers=True)


def _wait_shipped(settings: Settings, agent: Any, lines: int, console: Console) -> None:
    """Until the agent has caught up with the backfill (its checkpoints stop moving), at most 5 minutes."""
    from pang.indexer.client import client

    es = client(settings)
    with step("shipping the backfill with pang's agent") as s:
        deadline = time.monotonic() + 300
        last, still = -1, 0
        while time.monotonic() < deadline:
            es.indices.refresh(index="logs-app-*", params={"ignore_unavailable": "true"})
            n = es.count(index="logs-app-*", body={"query": {"term": {"service.environment": "demo"}}})["count"]
            s.detail(f"{n:,} documents in OpenSearch")
            still = still + 1 if n == last else 0
            if n >= lines * 0.95 and still >= 2:  # multi-line stack traces make fewer documents than lines
                return
            last = n
            time.sleep(1)
    console.print("[yellow]the agent is still catching up; the dashboards fill in as it does[/]")


def _supervise(settings: Settings, gen: Any, state: DemoState, options: DemoOptions, stop: threading.Event,
               console: Console, base: str) -> None:
    """Inject the incident when due, index new deployment events, print a status line; until stopped."""
    started = time.monotonic()
    injected = False
    last_status = 0.0
    last_events = 0.0
    while not stop.wait(1):
        elapsed = timedelta(seconds=time.monotonic() - started)
        if not injected and elapsed >= options.incident_after:
            injected = True
            inc = gen.inject(minutes=options.incident_minutes, drop=options.incident_drop)
            state.incidents.append(inc)
            # its rollout began before it took all traffic: the earlier phases are on the timeline at once
            index_events(settings, [e for d in gen.schedule.deployments(inc.start - timedelta(minutes=1), inc.end + timedelta(minutes=1))
                                    for e in d.events()], state.events_indexed, upto=datetime.now(UTC))
            link = search_link(base, query="level:ERROR", service=inc.slowed_service, start=inc.start - timedelta(minutes=5),
                               end=inc.end + timedelta(minutes=5))
            console.print(f"\n[bold red]incident injected:[/] bad deploy of {inc.service} from {inc.start:%H:%M} to {inc.end:%H:%M} UTC "
                          f"slows {inc.slowed_service} and drops orders by {options.incident_drop:.0%}\n  its errors: {link}")
        if time.monotonic() - last_events >= 5:  # the phases of rollouts as they happen (the seed's and the injected one)
            last_events = time.monotonic()
            now = datetime.now(UTC)
            try:
                index_events(settings, gen.schedule.events(now - timedelta(minutes=30), now + timedelta(minutes=1)),
                             state.events_indexed, upto=now)
            except stack.StackError as exc:
                console.print(f"[yellow]{exc}[/]")
        if options.duration is not None and elapsed >= options.duration:
            return
        if time.monotonic() - last_status < 30:
            continue
        last_status = time.monotonic()
        stats = gen.stats
        console.print(f"[dim]{datetime.now(UTC):%H:%M:%S} traffic: {stats.lines:,} lines written; "
                      f"last minute: {', '.join(f'{k} {v}' for k, v in gen.last_counts.items())}[/]")


def parse_options(backfill: str, incident_after: str, duration: str | None, **rest: Any) -> DemoOptions:
    from pang.traffic import parse_span

    return DemoOptions(backfill=parse_span(backfill), incident_after=parse_span(incident_after),
                       duration=parse_span(duration) if duration else None, **rest)


def demo_root(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "traffic" / "logs"
