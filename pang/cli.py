"""The ``pang`` command line: one entry, thin subcommands over public functions.

Each command loads settings, calls one function that tests also call
directly, and prints its result. Errors a person can act on (a bad setting,
a busy port, a server that does not answer) print one line and exit with
2 (usage/settings) or 1 (runtime), never a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from pang.settings import Settings, SettingsError, describe_settings, load_settings, mask_urls_in

app = typer.Typer(
    name="pang",
    help="pang: ship logs, syslog and metrics into OpenSearch, archive them to Parquet in S3, and look at them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The local stack: one OpenSearch node and one S3 server (SeaweedFS) on 127.0.0.1.", no_args_is_help=True)
index_app = typer.Typer(help="Index templates and indices in OpenSearch.", no_args_is_help=True)
config_app = typer.Typer(help="Show the settings pang runs with.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(index_app, name="index")
app.add_typer(config_app, name="config")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]pang: error:[/] {mask_urls_in(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(ctx: typer.Context) -> Settings:
    """Settings for this invocation (``--config`` from the root command), or exit 2 with one line."""
    try:
        return load_settings(ctx.obj.get("config") if ctx.obj else None)
    except SettingsError as exc:
        fail(str(exc), 2)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (also PANG_CONFIG). Environment PANG_* variables override it.", dir_okay=False),
    ] = None,
) -> None:
    ctx.obj = {"config": config}


# --- stack ------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(ctx: typer.Context) -> None:
    """Start OpenSearch and SeaweedFS (unless their URLs point elsewhere), create the bucket and templates.

    Idempotent. The first run builds the servers once into PANG_CACHE_DIR (Maven, Go); later runs take seconds.
    """
    from pang import stack

    settings = settings_from(ctx)
    try:
        services = stack.up(settings)
    except stack.StackError as exc:
        fail(str(exc))
    _print_status(services)


@stack_app.command("build")
def stack_build(ctx: typer.Context) -> None:
    """Build (once per version) what `up` runs: the OpenSearch launcher (Maven) and the weed binary (Go).

    Products go to PANG_CACHE_DIR; a second call returns at once.
    """
    from pang import stack

    settings = settings_from(ctx)
    try:
        built = stack.build(settings)
    except stack.StackError as exc:
        fail(str(exc))
    for name, path in built.items():
        out.print(f"{name}: {path}")


@stack_app.command("down")
def stack_down(ctx: typer.Context) -> None:
    """Stop the servers that `pang stack up` started from this state folder (by process id)."""
    from pang import stack

    stopped = stack.down(settings_from(ctx))
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")


@stack_app.command("status")
def stack_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per service.")] = False,
) -> None:
    """Versions, health, URLs, process ids, memory and data folders. Exit 1 if a service is unhealthy."""
    from pang import stack

    services = stack.status(settings_from(ctx))
    if as_json:
        for service in services:
            print(json.dumps(service.as_dict()))
    else:
        _print_status(services)
    if not all(s.healthy for s in services):
        raise typer.Exit(1)


def _print_status(services: list) -> None:  # type: ignore[type-arg]
    table = Table("service", "health", "version", "url", "pid", "rss", "data")
    for s in services:
        table.add_row(
            s.name,
            "[green]healthy[/]" if s.healthy else "[red]down[/]",
            s.version or "-",
            s.url,
            str(s.pid) if s.pid else ("external" if not s.managed else "-"),
            f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-",
            s.data_dir or "-",
        )
    out.print(table)


# --- index ------------------------------------------------------------------------------


@index_app.command("setup")
def index_setup(ctx: typer.Context) -> None:
    """Apply pang's index templates to the configured cluster (idempotent)."""
    from pang.indexer.templates import apply_templates

    settings = settings_from(ctx)
    try:
        names = apply_templates(settings)
    except Exception as exc:  # connection refused, auth, TLS: one line, not a traceback
        fail(f"cannot apply templates at {settings.display_opensearch_url}: {_short(exc)}")
    out.print(f"applied {len(names)} index templates: {', '.join(names)}")


@index_app.command("retention")
def index_retention(
    ctx: typer.Context,
    days: Annotated[int | None, typer.Option(help="Age in days (default PANG_INDEX_RETENTION_DAYS).", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted, delete nothing.")] = False,
) -> None:
    """Delete daily log indices (and business rollups) past their age; refuse any index with an hour the archive does not hold."""
    from pang.archive.archiver import archived_check
    from pang.indexer.retention import retention

    settings = settings_from(ctx)
    try:
        check = archived_check(settings)
        result = retention(settings, check, older_than_days=days or settings.index_retention_days, dry_run=dry_run)
        # business rollups live longer (PANG_STEADY_ROLLUP_RETENTION_DAYS), under the same archive rule
        business = retention(settings, check, older_than_days=settings.steady_rollup_retention_days, datasets=("business",), dry_run=dry_run)
        result.deleted += business.deleted
        result.refused.update(business.refused)
        result.kept += business.kept
    except Exception as exc:
        fail(f"retention failed: {_short(exc)}")
    for name in result.deleted:
        out.print(f"{'would delete' if dry_run else 'deleted'} {name}")
    for name, hours in result.refused.items():
        out.print(f"[yellow]kept {name}[/]: {len(hours)} hours not archived yet (first {hours[0]}); run `pang archive run`")
    out.print(f"{len(result.deleted)} deleted, {len(result.refused)} refused, {len(result.kept)} younger")


# --- ship -------------------------------------------------------------------------------


@app.command("ship")
def ship(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Option("--paths", help="Glob of log files (repeatable); replaces PANG_SHIP_PATHS. The service is the first folder under the glob's fixed part."),
    ] = None,
) -> None:
    """Run the sidecar agent in the foreground: files, syslog and metrics into OpenSearch.

    /metrics and /healthz listen on PANG_SHIP_HTTP_HOST:PANG_SHIP_HTTP_PORT. SIGTERM drains
    (up to PANG_SHIP_DRAIN_TIMEOUT seconds) and exits; a restart resumes from the checkpoints.
    """
    from pang.shippers.agent import run

    settings = settings_from(ctx)
    try:
        code = run(settings, paths=paths)
    except OSError as exc:  # a busy syslog or metrics port, an unwritable state folder
        fail(f"cannot start the agent: {exc.strerror or exc} ({getattr(exc, 'filename', '') or 'see PANG_SYSLOG_PORT / PANG_SHIP_HTTP_PORT'})")
    raise typer.Exit(code)


# --- dead letters -------------------------------------------------------------------------

deadletter_app = typer.Typer(help="Documents OpenSearch refused: see them, send them again.", no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")


@deadletter_app.command("list")
def deadletter_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1, max=100_000)] = 50,
) -> None:
    """Dead letters not yet replayed: when, where they were going, and why they were refused."""
    from itertools import islice

    from pang.shippers.sink.deadletter import pending

    settings = settings_from(ctx)
    try:
        rows = list(islice(pending(settings), limit))
    except Exception as exc:
        fail(f"cannot read dead letters at {settings.display_opensearch_url}: {_short(exc)}")
    table = Table("@timestamp", "index", "id", "reason")
    for h in rows:
        src = h["_source"]
        table.add_row(src["@timestamp"], src["pang"]["deadletter"]["index"], src["pang"]["deadletter"]["id"], src["error"]["message"][:120])
    out.print(table)
    out.print(f"{len(rows)} shown")


@deadletter_app.command("replay")
def deadletter_replay(ctx: typer.Context) -> None:
    """Send every pending dead letter again to the index and id it was meant for (after a fix)."""
    from pang.shippers.sink.deadletter import replay

    settings = settings_from(ctx)
    try:
        result = replay(settings)
    except Exception as exc:
        fail(f"replay failed at {settings.display_opensearch_url}: {_short(exc)}")
    out.print(f"replayed {result.replayed}, refused again {result.rejected_again}")
    for reason in result.reasons:
        out.print(f"  {reason}")
    if result.rejected_again:
        raise typer.Exit(1)


# --- archive ------------------------------------------------------------------------------

archive_app = typer.Typer(help="Closed hours as Parquet/zstd in object storage (PANG_ARCHIVE_URL), queried with DuckDB.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{value!r} is not a time; use ISO 8601, e.g. 2026-11-24T10:00Z", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@archive_app.command("run")
def archive_run(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--from", help="Only windows from this time (ISO 8601, UTC if no zone).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only windows before this time.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep archiving as hours close (every minute).")] = False,
) -> None:
    """Archive every closed hour (per dataset) that is not archived yet, or whose count changed."""
    import time as _time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pang.archive.archiver import run

    settings = settings_from(ctx)
    start, end = _when(since), _when(until)
    while True:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("windows", total=None)

            def progress(window: str, i: int, rows: int) -> None:
                bar.update(task, description=f"archiving {window} ({rows:,} rows)", completed=i)

            try:
                result = run(settings, start=start, end=end, progress=progress)
            except Exception as exc:
                fail(f"archive run failed: {_short(exc)}")
        rows = sum(w.rows for w in result.archived)
        size = sum(w.bytes for w in result.archived)
        out.print(f"archived {len(result.archived)} windows, {rows:,} rows, {size / 2**20:.1f} MiB "
                  f"({result.skipped} already archived) into {settings.archive}")
        if not watch:
            return
        _time.sleep(60)


@archive_app.command("query")
def archive_query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over the view `logs` (partitions: dataset, dt, hour).")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json (one object per line).")] = "table",
) -> None:
    """Run DuckDB SQL over the archive, e.g. "SELECT service.name, count(*) FROM logs WHERE dt='2026-11-24' GROUP BY 1"."""
    import csv

    import duckdb

    from pang.archive.query import query

    if fmt not in ("table", "csv", "json"):
        fail("--format must be table, csv or json", 2)
    settings = settings_from(ctx)
    try:
        names, rows = query(settings, sql)
    except duckdb.Error as exc:
        fail(f"query failed: {_short(exc)}")
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(names)
        writer.writerows(rows)
    elif fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(names, row)), default=str))
    else:
        table = Table(*names)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        out.print(table)


lifecycle_app = typer.Typer(help="Bucket lifecycle rules from PANG_ARCHIVE_LIFECYCLE.", no_args_is_help=True)
archive_app.add_typer(lifecycle_app, name="lifecycle")


@lifecycle_app.command("apply")
def lifecycle_apply(ctx: typer.Context) -> None:
    """Put the configured rules on the archive bucket (other rules on the bucket are kept)."""
    from pang.archive.lifecycle import LifecycleError, apply
    from pang.archive.store import open_store

    settings = settings_from(ctx)
    try:
        rules = apply(settings, open_store(settings))
    except LifecycleError as exc:
        fail(str(exc))
    print(json.dumps(rules, indent=2, default=str))


@lifecycle_app.command("show")
def lifecycle_show(ctx: typer.Context) -> None:
    """The rules the bucket holds now (a file:// archive: the configured rules, applied by `archive run`)."""
    from pang.archive.lifecycle import show
    from pang.archive.store import FileStore, open_store

    settings = settings_from(ctx)
    store = open_store(settings)
    rules = [r.model_dump() for r in settings.archive_lifecycle] if isinstance(store, FileStore) else show(store)
    print(json.dumps(rules, indent=2, default=str))


@archive_app.command("rehydrate")
def archive_rehydrate(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--from", help="Start of the range (ISO 8601, UTC if no zone).")],
    until: Annotated[str, typer.Option("--to", help="End of the range (exclusive).")],
    where: Annotated[str | None, typer.Option(help="Extra DuckDB condition, e.g. \"service.name = 'payment'\".")] = None,
) -> None:
    """Load archived rows back into OpenSearch (rehydrated-* indices, same ids) to search them again."""
    import duckdb

    from pang.archive.rehydrate import RehydrateError, rehydrate

    settings = settings_from(ctx)
    start, end = _when(since), _when(until)
    assert start and end
    try:
        n = rehydrate(settings, start, end, where=where)
    except (RehydrateError, duckdb.Error) as exc:
        fail(f"rehydrate failed: {_short(exc)}")
    out.print(f"rehydrated {n:,} rows into rehydrated-* ({start.isoformat()} to {end.isoformat()})")


# --- dashboards ---------------------------------------------------------------------------


@app.command("dash")
def dash(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default PANG_DASH_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PANG_DASH_PORT, 8050).", min=0, max=65535)] = None,
) -> None:
    """Serve the dashboards (search, steady state, timeline, status) in the foreground; basic auth when PANG_DASH_USERNAME/_PASSWORD are set."""
    from pang.dashboards.app import DashAuthError, serve

    settings = settings_from(ctx)
    where = f"{host or settings.dash_host}:{settings.dash_port if port is None else port}"

    def announce(url: str) -> None:
        err.print(f"pang dashboards on {url}search (searching {settings.display_opensearch_url}); Ctrl-C stops", soft_wrap=True)

    try:
        serve(settings, host=host, port=port, announce=announce)
    except DashAuthError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # a busy port, an address not on this machine
        fail(f"cannot listen on {where}: {exc.strerror or exc} (see --host/--port, PANG_DASH_HOST/PANG_DASH_PORT)")


# --- search -----------------------------------------------------------------------------


@app.command("search")
def search_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='Terms, "phrases", field:value, AND/OR/NOT, -term, * and ? wildcards; empty: everything.')] = "",
    since: Annotated[str | None, typer.Option("--since", help="How far back: 30s, 15m, 1h, 24h, 7d (default 15m).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start: ISO 8601 (UTC if no zone), now or now-1h.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (exclusive), same forms; default now.")] = None,
    service: Annotated[list[str] | None, typer.Option("--service", help="Only this service (repeatable).")] = None,
    level: Annotated[list[str] | None, typer.Option("--level", help="Only this log level, any case (repeatable).")] = None,
    host: Annotated[list[str] | None, typer.Option("--host", help="Only this host (repeatable).")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="app (default) or syslog (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Hits to print.", min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per line (_source plus _id and _index), nothing else.")] = False,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Print the latest hits, then new ones as they arrive, until Ctrl-C.")] = False,
) -> None:
    """Search logs, newest first: `pang search "payment declined" --since 1h --service payment`."""
    from pang.indexer.search import SearchError, SearchRequest, SearchSyntaxError, follow, search
    from pang.indexer.timerange import TimeRangeError, parse_time_range

    settings = settings_from(ctx)
    try:
        time_range = parse_time_range(since, start, end)
    except TimeRangeError as exc:
        fail(str(exc), 2)
    request = SearchRequest(
        time=time_range, text=query, services=tuple(service or ()), levels=tuple(level or ()),
        hosts=tuple(host or ()), datasets=tuple(dataset or ("app",)), size=limit,
    )
    try:
        page = search(settings, request)
        if not follow_:
            for hit in page.hits:
                _print_hit(hit, as_json)
            if not as_json:
                out.print(f"{len(page.hits):,} of {page.total:,} hits (took {page.took_ms} ms)")
            return
        for hit in reversed(page.hits):  # oldest first, so the newest line is at the bottom, as in tail -f
            _print_hit(hit, as_json)
        if not as_json:
            err.print(f"following new hits (Ctrl-C to stop); {page.total:,} in the range so far")
        for hit in follow(settings, request):
            _print_hit(hit, as_json)
    except SearchSyntaxError as exc:
        fail(str(exc), 2)
    except SearchError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


_LEVEL_STYLES = {"ERROR": "bold red", "FATAL": "bold red", "CRITICAL": "bold red", "WARN": "yellow", "DEBUG": "dim", "TRACE": "dim"}


def _print_hit(hit: object, as_json: bool) -> None:
    """One hit as one line; every piece of the document is plain text (rich Text), never markup."""
    from rich.text import Text

    from pang.indexer.search import Hit, highlight_segments

    assert isinstance(hit, Hit)
    src = hit.source
    if as_json:
        print(json.dumps({**src, "_id": hit.id, "_index": hit.index}, ensure_ascii=False, default=str), flush=True)
        return
    svc = src.get("service") if isinstance(src.get("service"), dict) else {}
    log = src.get("log") if isinstance(src.get("log"), dict) else {}
    lvl = str(log.get("level") or "-")
    message = hit.highlight.get("message", [None])[0] or hit.highlight.get("error.message", [None])[0]
    segments = highlight_segments(message) if message else [(str(src.get("message", "")), False)]
    line = Text(no_wrap=True)
    line.append(str(src.get("@timestamp", "-")), style="dim")
    line.append("  ")
    line.append(str(svc.get("name") or "-"), style="cyan")
    line.append("  ")
    line.append(f"{lvl:<5}", style=_LEVEL_STYLES.get(lvl.upper(), ""))
    line.append("  ")
    shown = 0
    for text, is_match in segments:
        first, newline, _ = text.partition("\n")
        piece = first[: max(0, 400 - shown)]
        line.append(piece, style="bold reverse" if is_match else "")
        shown += len(piece)
        if newline or shown >= 400:
            line.append(" …", style="dim")
            break
    out.print(line, soft_wrap=True)


# --- config -----------------------------------------------------------------------------


# --- status ------------------------------------------------------------------------------


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per component.")] = False,
) -> None:
    """Each component (PANG_STATUS_COMPONENTS): ok / degraded / down now, availability for the last three months.

    A month's availability is the share of its minutes (the business's calendar month) not inside an open
    critical alert or incident of the component; the same figures as the dashboards' /status page.
    """
    from pang.events.status import collect, percent
    from pang.events.store import EventStoreError

    settings = settings_from(ctx)
    try:
        components = collect(settings)
    except EventStoreError as exc:
        fail(str(exc))
    if as_json:
        for c in components:
            out.print(json.dumps(c.as_json()), soft_wrap=True, markup=False)
        return
    months = [m.label for m in components[0].months] if components else []
    table = Table(box=None, pad_edge=False)
    for col in ("component", "now", *months, "alerts", "deploys", "open"):
        table.add_column(col)
    for c in components:
        table.add_row(c.title, c.state, *(f"{percent(m.availability)} ({m.bad_minutes} min)" for m in c.months),
                      str(sum(m.alerts for m in c.months)), str(sum(m.deploys for m in c.months)),
                      "; ".join((iv.title or iv.id)[:80] for iv in c.open))
    out.print(table)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Every setting as its PANG_* variable and the value in effect (secrets masked)."""
    for key, value in describe_settings(settings_from(ctx)).items():
        out.print(f"{key}={value}")


# --- demo -------------------------------------------------------------------------------


demo_app = typer.Typer(help="The demo, and the synthetic shop traffic behind it.")
app.add_typer(demo_app, name="demo")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    backfill: Annotated[str, typer.Option(help="Recent history the generator writes (and the agent ships) before going live.")] = "20m",
    incident_after: Annotated[str, typer.Option(help="When the bad deploy is injected, after the demo is ready.")] = "3m",
    incident_minutes: Annotated[int, typer.Option(help="How long the injected incident lasts.", min=1, max=1440)] = 10,
    incident_drop: Annotated[float, typer.Option(help="Fraction of orders the incident drops.", min=0.01, max=1.0)] = 0.5,
    duration: Annotated[str | None, typer.Option(help="Stop by itself after this long (default: run until Ctrl-C).")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the dashboards (default PANG_DASH_PORT, 8050).", min=0, max=65535)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the traffic (counts, lines, incidents).", min=0, max=2**31)] = 7,
    scale: Annotated[float, typer.Option(help="Multiplier of the lines that are not business events.", min=0.0, max=100.0)] = 1.0,
) -> None:
    """The whole pipeline on a shop's synthetic traffic, with the dashboards at a local URL (without a subcommand).

    Starts the stack, backfills recent history, ships it with the agent, runs the traffic live, archives closed
    hours, serves the dashboards and injects a bad deploy a few minutes in. Ctrl-C stops everything it started.
    """
    if ctx.invoked_subcommand is not None:
        return
    from pang import stack
    from pang.demo import parse_options, run_demo
    from pang.traffic import TrafficError

    settings = settings_from(ctx)
    if port is not None:
        settings = settings.model_copy(update={"dash_port": port})
    try:
        options = parse_options(backfill, incident_after, duration, incident_minutes=incident_minutes,
                                incident_drop=incident_drop, seed=seed, scale=scale)
    except TrafficError as exc:
        fail(str(exc), 2)
    try:
        run_demo(settings, options=options, console=out)
    except (stack.StackError, TrafficError, OSError) as exc:
        fail(_short(exc))


@demo_app.command("traffic")
def demo_traffic(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(help="Logs root: <root>/<service>/<pod>.log. Default: <state dir>/traffic/logs.", file_okay=False)] = None,
    backfill: Annotated[str | None, typer.Option(help="History to write first, as fast as the disk goes, e.g. 30m, 2h, 1d.")] = None,
    live: Annotated[bool, typer.Option("--live", help="Then write in real time until Ctrl-C or --duration.")] = False,
    duration: Annotated[str | None, typer.Option(help="Stop the live run after this long, e.g. 10m.")] = None,
    seed: Annotated[int, typer.Option(help="Decides every count, line and incident; the ground truth of a seed never changes.", min=0, max=2**31)] = 7,
    scale: Annotated[float, typer.Option(help="Multiplier of the lines that are not business events (1: ~300 lines/s at the evening peak).", min=0.0, max=100.0)] = 1.0,
    rotate_mb: Annotated[int, typer.Option(help="Rotate a log file (x.log -> x.log.1) past this many MiB.", min=1, max=100_000)] = 50,
    inject_incident: Annotated[bool, typer.Option("--inject-incident", help="With --live: a bad deploy starts at the next minute (SIGUSR1 injects another).")] = False,
    incident_minutes: Annotated[int, typer.Option(help="How long an injected incident lasts.", min=1, max=1440)] = 10,
    incident_drop: Annotated[float, typer.Option(help="Fraction of orders and payments an injected incident drops.", min=0.01, max=1.0)] = 0.4,
) -> None:
    """Write a shop's logs (six services, business events on daily, weekly and calendar cycles, incidents).

    Files go to <root>/<service>/<pod>.log (JSON lines and Java text with stack traces), the ground truth
    (incidents, deployment events) to <root>/_ground_truth/. Ship them with: pang ship --paths '<root>/*/*.log'
    """
    import signal as signals
    import threading
    from datetime import timedelta
    from typing import Any

    from pang.traffic import Generator, TrafficError, Volume, model_for, parse_span

    settings = settings_from(ctx)
    if backfill is None and not live:
        fail("nothing to do: give --backfill (e.g. 2h), --live, or both", 2)
    if (duration or inject_incident) and not live:
        fail("--duration and --inject-incident need --live", 2)
    try:
        back = parse_span(backfill) if backfill else None
        span = parse_span(duration) if duration else None
    except TrafficError as exc:
        fail(str(exc), 2)
    if back is not None and back > timedelta(days=31):
        fail("--backfill writes at most 31 days of log files (about 3 GB a day); "
             "longer history is for pang.traffic.rollups(), which needs no files", 2)
    root = (root or settings.state_dir / "traffic" / "logs").expanduser().resolve()
    try:
        gen = Generator(root, seed=seed, model=model_for(settings), volume=Volume(scale=scale),
                        rotate_bytes=rotate_mb * 2**20)
    except TrafficError as exc:
        fail(str(exc), 2)
    out.print(f"traffic: seed {seed}, business time zone {settings.business_timezone}, logs under {root}")
    try:
        if back is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            now = datetime.now(UTC)
            with Progress(TextColumn("backfill {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("minutes"), TimeRemainingColumn(), console=out, transient=False) as bar:
                task = bar.add_task(f"{backfill}", total=None)
                gen.backfill(now - back, now, progress=lambda n, total: bar.update(task, completed=n, total=total))
            s = gen.stats
            out.print(f"backfill: {s.minutes:,} minutes, {s.lines:,} lines ({s.bytes / 2**20:,.1f} MiB), "
                      + ", ".join(f"{k} {v:,}" for k, v in s.business.items()))
        if live:
            stop = threading.Event()
            if inject_incident:
                gen.request_injection(minutes=incident_minutes, drop=incident_drop)
            previous = {sig: signals.signal(sig, lambda *_: stop.set()) for sig in (signals.SIGINT, signals.SIGTERM)}
            if hasattr(signals, "SIGUSR1"):
                previous[signals.SIGUSR1] = signals.signal(
                    signals.SIGUSR1, lambda *_: gen.request_injection(minutes=incident_minutes, drop=incident_drop))
            shown: dict[str, Any] = {"minute": None, "lines": gen.stats.lines, "injected": 0}

            def report(now: datetime, stats: object) -> None:
                minute = now.replace(second=0, microsecond=0)
                for inc in gen.injected[shown["injected"]:]:
                    out.print(f"injected {inc.id}: {inc.service} deploy slows {inc.slowed_service} "
                              f"from {inc.start:%H:%M} to {inc.end:%H:%M} UTC, drops {inc.effects}")
                shown["injected"] = len(gen.injected)
                if shown["minute"] is not None and minute != shown["minute"]:
                    active = gen.schedule.active(minute)
                    rate = (gen.stats.lines - shown["lines"]) / 60
                    business = ", ".join(f"{k} {v:,}" for k, v in gen.last_counts.items())
                    out.print(f"{shown['minute']:%H:%M} UTC: {rate:,.0f} lines/s; {minute:%H:%M} UTC: {business}"
                              + (f", incident {active.id}" if active else ""))
                    shown["lines"] = gen.stats.lines
                if shown["minute"] != minute:
                    shown["minute"] = minute

            until = datetime.now(UTC) + span if span else None
            out.print("live: writing in real time" + (f" until {until:%H:%M:%S} UTC" if until else " until Ctrl-C"))
            try:
                gen.live(until=until, stop=stop, on_tick=report, catch_up=back is not None)
            finally:
                for sig, handler in previous.items():
                    signals.signal(sig, handler)
    except OSError as exc:
        fail(f"cannot write the traffic under {root}: {exc.strerror or exc}")
    finally:
        gen.close()
    s = gen.stats
    out.print(f"done: {s.lines:,} lines ({s.bytes / 2**20:,.1f} MiB) in {s.minutes:,} minutes; "
              f"{s.incidents} incidents and {s.events} deployment events recorded in {root / '_ground_truth'}")
    out.print(f"ship them: pang ship --paths '{root}/*/*.log'")


# --- steady state -------------------------------------------------------------------------

steady_app = typer.Typer(help="Business signals (orders, payments) per minute against their cycles, and alerts.", no_args_is_help=True)
app.add_typer(steady_app, name="steady")


@steady_app.command("run")
def steady_run(
    ctx: typer.Context,
    from_generator: Annotated[bool, typer.Option("--from-generator", help="First run: backfill history from the demo traffic generator's counts instead of the logs.")] = False,
    seed: Annotated[int | None, typer.Option(help="The generator's seed (with --from-generator).")] = None,
    once: Annotated[bool, typer.Option("--once", help="One pass (judge the minutes completed so far), then exit.")] = False,
) -> None:
    """Judge each complete minute of the business signals; open and resolve alerts (events-* and webhooks).

    Every PANG_STEADY_INTERVAL seconds, minutes older than PANG_STEADY_LAG_SECONDS are counted in the
    logs, stored as rollups (metrics-business-*) and compared with their expectation. The first run
    backfills the history the model needs. /metrics and /healthz listen on PANG_STEADY_HTTP_PORT.
    SIGTERM stops after the current pass.
    """
    from pang.steady.notify import NotifyError
    from pang.steady.rollups import RollupError
    from pang.steady.runner import Runner, SteadyError, run, setup_logging

    settings = settings_from(ctx)
    try:
        if once:
            setup_logging()
            runner = Runner(settings, from_generator=from_generator, seed=seed)
            try:
                changes = runner.step()
            finally:
                runner.shutdown()
            for c in changes:
                out.print(f"alert {c.kind}: {c.alert.signal} {c.alert.direction} ({c.alert.id})")
            nxt = runner.saved.next_minute
            out.print(f"judged {runner.stats.minutes_judged} minute(s)" + (f"; the next is {nxt:%Y-%m-%d %H:%M} UTC" if nxt else ""))
            raise typer.Exit(0)

        def ready(r: Runner) -> None:
            out.print(f"pang steady: /metrics and /healthz on http://{settings.steady_http_host}:{r.http_port}", soft_wrap=True)

        code = run(settings, from_generator=from_generator, seed=seed, on_ready=ready)
    except (RollupError, SteadyError, NotifyError) as exc:
        fail(str(exc))
    except ValueError as exc:  # the signals or the model's settings (SignalError, ModelError)
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"cannot start: {exc.strerror or exc} (see PANG_STEADY_HTTP_PORT and PANG_STATE_DIR)")
    raise typer.Exit(code)


@steady_app.command("status")
def steady_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Each signal's last complete minute: value, expected, band, confidence, and its open alert."""
    from zoneinfo import ZoneInfo

    from pang.steady.rollups import RollupError
    from pang.steady.runner import SteadyError, status

    settings = settings_from(ctx)
    try:
        rows = status(settings)
    except (RollupError, SteadyError) as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc), 2)
    if as_json:
        out.print_json(json.dumps([r.as_json() for r in rows]))
        return
    zone = ZoneInfo(settings.business_timezone)

    def num(v: float | None, ratio: bool) -> str:
        return "-" if v is None else (f"{v:.2%}" if ratio else f"{v:,.0f}")

    table = Table("signal", "minute", "value", "expected", "band", "confidence", "state", "alert")
    for r in rows:
        ratio = r.ratio
        minute = f"{r.minute.astimezone(zone):%Y-%m-%d %H:%M %Z}" if r.minute else "-"
        band = "-" if r.lower is None or r.upper is None else f"{num(r.lower, ratio)} - {num(r.upper, ratio)}"
        alert = f"{r.alert['severity']} since {datetime.fromisoformat(r.alert['opened'].replace('Z', '+00:00')).astimezone(zone):%H:%M}" if r.alert else ""
        state = {"ok": "[green]ok[/]", "unknown": "unknown"}.get(r.state, f"[red]{r.state}[/]")
        table.add_row(r.signal, minute, num(r.observed, ratio), num(r.expected, ratio), band,
                      "low" if r.low_confidence else "ok", state, alert)
    out.print(table)


@steady_app.command("backtest")
def steady_backtest(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option("--from", help="Start of the scored range (ISO 8601). Without --from/--to: the generator's default month.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End of the scored range (ISO 8601, excluded).")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="CSV of incident windows (start,end); default: the generator's ground truth.")] = None,
    from_generator: Annotated[bool, typer.Option("--from-generator", help="With --from/--to: replay the generator's counts instead of the stored rollups.")] = False,
    seed: Annotated[int | None, typer.Option(help="The generator's seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON (delays in seconds; the baseline under 'baseline').")] = False,
    series_path: Annotated[Path | None, typer.Option("--series", help="A CSV file of timestamp,value rows (step 1 min .. 1 h), or a directory of them: backtest your own series.")] = None,
    alarms_out: Annotated[Path | None, typer.Option("--alarms-out", help="With --series: write timestamp,value,expected,lower,upper,alarm, one row per input row.")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="With --series: a labelled window counts as found only if an alert opens within its first K points.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="With --series: the series' local time zone (naive timestamps, cycles, DST, holidays); default: naive = UTC, cycles in PANG_BUSINESS_TIMEZONE.")] = None,
    holidays: Annotated[str | None, typer.Option("--holidays", help="With --series: special days compared with their own kind, comma-separated ISO dates or country codes (DE, US-NY); default: PANG_STEADY_HOLIDAYS.")] = None,
) -> None:
    """Replay rollups through the model and the alert rule; score them against labelled incidents.

    Prints per signal precision, recall (within 3 minutes, and at all), false alarms per week and the
    detection delay (median, worst), by band of expected count, next to a seasonal-naive baseline (the
    same minute last week, +-20 %), and whether issue 6's minimum is met. Exit 0: the figures are the output.
    With --series: the same figures, event-window recall and point-wise precision/recall/F1 for your own
    series and labelled windows (--labels: JSON [[start, end], ...] or CSV start,end).
    """
    from datetime import timedelta

    from pang.steady import backtest as bt
    from pang.steady.model import ModelError, model_config
    from pang.steady.signals import SignalError, signals_from

    settings = settings_from(ctx)
    if series_path is not None:
        _series_backtest(settings, series_path, labels, alarms_out, k, timezone, holidays, as_json)
        return
    if alarms_out is not None or k is not None or timezone is not None or holidays is not None:
        fail("--alarms-out, --k, --timezone and --holidays go with --series", 2)
    try:
        config = model_config(settings)
        signals = signals_from(settings)
    except (ModelError, SignalError) as exc:
        fail(str(exc), 2)
    ratios = [s.name for s in signals if s.is_ratio]
    lo, hi = _when(start), _when(end)
    if (lo is None) != (hi is None):
        fail("give both --from and --to, or neither (the generator's default month)", 2)
    try:
        if lo is None or hi is None or from_generator:
            if lo is None or hi is None:
                series, truth, lo, hi = bt.generator_inputs(seed, settings.business_timezone)
            else:
                series, truth = bt.generator_series(lo, hi, seed, settings.business_timezone)
            series = _with_ratios(series, signals)
        else:
            from pang.steady.rollups import RollupError, read_rollups

            if hi - lo > timedelta(days=400):
                fail("the range is longer than 400 days; backtest a shorter one", 2)
            history = timedelta(weeks=config.history_weeks, days=2)
            try:
                series = read_rollups(settings, lo - max(history, timedelta(days=31 * config.month_history)), hi, signals)
            except RollupError as exc:
                fail(str(exc))
            truth = bt.generator_labels(lo, hi, seed, settings.business_timezone) if labels is None else []
        if labels is not None:
            try:
                text = labels.read_text(encoding="utf-8")
            except OSError as exc:
                fail(f"cannot read {labels}: {exc.strerror or exc}", 2)
            truth = bt.labels_from_csv(text)
        report = bt.backtest(series, truth, lo, hi, config, ratios=ratios)
    except (bt.BacktestError, ModelError) as exc:
        fail(str(exc), 2)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        out.print(bt.format_report(report), soft_wrap=True, highlight=False, markup=False)


def _series_backtest(settings: Settings, path: Path, labels: Path | None, alarms_out: Path | None, k: int | None,
                     timezone: str | None, holidays: str | None, as_json: bool) -> None:
    """`pang steady backtest --series`: users' CSV series and labelled windows (pang.steady.series)."""
    from dataclasses import replace

    from pang.steady import backtest as bt
    from pang.steady.model import ModelError, model_config
    from pang.steady.series import SeriesError, labels_for, read_labels, read_series, series_files

    try:
        config = model_config(settings)
        if timezone is not None:
            config = replace(config, timezone=timezone)
        if holidays is not None:
            config = replace(config, holidays=tuple(h.strip() for h in holidays.split(",") if h.strip()))
        files = [f for f in series_files(path) if alarms_out is None or f.resolve() != alarms_out.resolve()]  # not its own output
        windows = read_labels(labels, timezone=timezone) if labels is not None else {}
        reports = []
        for f in files:
            series = read_series(f, timezone=timezone)
            if path.is_dir():
                series.name = f.relative_to(path).as_posix()  # the table and --alarms-out name files as under the directory
            reports.append(bt.backtest_series(series, labels_for(windows, f, path), config, k=k))
    except (SeriesError, ModelError, bt.BacktestError) as exc:
        fail(str(exc), 2)
    if alarms_out is not None:
        try:
            with alarms_out.open("w", encoding="utf-8", newline="") as fh:
                bt.write_alarm_rows(reports, fh)
        except OSError as exc:
            fail(f"cannot write {alarms_out}: {exc.strerror or exc}", 2)
    if as_json:
        out.print_json(json.dumps(bt.series_json(reports)))
    else:
        out.print(bt.format_series_reports(reports, k), soft_wrap=True, highlight=False, markup=False)


def _with_ratios(series: dict, signals: list) -> dict:  # type: ignore[type-arg]
    """Add configured ratio signals to generator counts (a minute with a 0 denominator has no ratio)."""
    from pang.traffic import SIGNALS

    by_action = {action: series[name] for name, action in SIGNALS.items() if name in series}
    out = {s.name: by_action[s.action] for s in signals if s.is_count and s.action in by_action}
    for s in signals:
        if s.is_ratio and s.numerator in out and s.denominator in out:
            num, den = out[s.numerator], out[s.denominator]
            out[s.name] = {m: num[m] / d for m, d in den.items() if d and m in num}
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


from pang.events.cli import events_app  # noqa: E402 - the events sub-app lives with the events code

app.add_typer(events_app, name="events")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
