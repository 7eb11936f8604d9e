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

from pang.settings import Settings, SettingsError, describe_settings, load_settings

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
    err.print(f"[red]pang: error:[/] {message}", markup=True, soft_wrap=True)
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
        fail(f"cannot apply templates at {settings.opensearch_url}: {_short(exc)}")
    out.print(f"applied {len(names)} index templates: {', '.join(names)}")


@index_app.command("retention")
def index_retention(
    ctx: typer.Context,
    days: Annotated[int | None, typer.Option(help="Age in days (default PANG_INDEX_RETENTION_DAYS).", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted, delete nothing.")] = False,
) -> None:
    """Delete daily log indices past their age; refuse any index with an hour the archive does not hold."""
    from pang.archive.archiver import archived_check
    from pang.indexer.retention import retention

    settings = settings_from(ctx)
    try:
        result = retention(settings, archived_check(settings), older_than_days=days or settings.index_retention_days, dry_run=dry_run)
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
        fail(f"cannot read dead letters at {settings.opensearch_url}: {_short(exc)}")
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
        fail(f"replay failed at {settings.opensearch_url}: {_short(exc)}")
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


# --- config -----------------------------------------------------------------------------


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Every setting as its PANG_* variable and the value in effect (secrets masked)."""
    for key, value in describe_settings(settings_from(ctx)).items():
        out.print(f"{key}={value}")


# --- demo -------------------------------------------------------------------------------


@app.command("demo")
def demo(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option(help="Synthetic application log lines to index.", min=1, max=10_000_000)] = 20_000,
    query: Annotated[str, typer.Option(help="Full-text query to run over them afterwards.")] = "payment declined",
) -> None:
    """Start the stack, index synthetic application logs and search them."""
    from pang import stack
    from pang.demo import run_demo

    settings = settings_from(ctx)
    try:
        run_demo(settings, lines=lines, query=query, console=out)
    except stack.StackError as exc:
        fail(str(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
