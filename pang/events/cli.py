"""``pang events``: post a change, list a window of the timeline, ask what changed before an alert, serve the endpoint.

Thin wrappers: :func:`post_event` and :func:`list_events` are what tests and
scripts call; the commands only turn options into their arguments and their
results into a table or JSON. Bad input exits 2 with one line naming the
field (``pang: error: phase: ...``), OpenSearch trouble exits 1.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
import typer

from pang.events.schema import parse_event
from pang.events.store import EventPage, TimelineQuery, query_events, services_of, write_events
from pang.settings import Settings

__all__ = ["events_app", "list_events", "post_event"]

events_app = typer.Typer(
    help="Deploys, config changes, alerts and incidents in events-*: post them, list them, serve the HTTP endpoint.",
    no_args_is_help=True,
)


def post_event(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """Validate pang's JSON fields (EventError names the bad one) and write the event; returns its document."""
    event = parse_event({k: v for k, v in fields.items() if v not in (None, [], {})})
    return write_events(settings, [event], refresh=True)[0]


def list_events(settings: Settings, *, since: str | None = None, start: str | None = None, end: str | None = None,
                services: tuple[str, ...] = (), types: tuple[str, ...] = (), text: str = "", limit: int = 200) -> EventPage:
    """Events in ``[start, end)`` (default: the last hour), newest first. Raises TimeRangeError/ValueError on bad input."""
    from pang.indexer.timerange import parse_time_range

    window = parse_time_range(since if since or start else "1h", start, end)
    return query_events(settings, TimelineQuery(start=window.start, end=window.end, services=services, types=types,
                                                text=text, size=limit))


def _local(ts: str, zone: ZoneInfo) -> str:
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts


def _json_line(doc: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")


@events_app.command("post")
def post_command(
    ctx: typer.Context,
    service: Annotated[list[str], typer.Option("--service", "-s", help="The service(s) it concerns (repeatable).")],
    type_: Annotated[str, typer.Option("--type", "-t", help="deployment, config, incident, alert or note.")],
    phase: Annotated[str | None, typer.Option(help="A deployment's phase: STAGE, CANARY, CANARY_ANALYSIS, UPDATE_IC, DEPLOY_ALL, WRAP_UP, ROLLBACK.")] = None,
    outcome: Annotated[str | None, typer.Option(help="started, success or failure (deployments need one).")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What happened, for people (default: made from the fields).")] = None,
    link: Annotated[str | None, typer.Option(help="A diff, build or run link (http/https).")] = None,
    actor: Annotated[str | None, typer.Option(help="Who did it (user.name).")] = None,
    provider: Annotated[str | None, typer.Option(help="The tool that did it, e.g. bolt2, github.")] = None,
    build: Annotated[str | None, typer.Option(help="Build number.")] = None,
    version: Annotated[str | None, typer.Option(help="The version going out.")] = None,
    from_version: Annotated[str | None, typer.Option("--from-version", help="The version it replaces.")] = None,
    deployment_id: Annotated[str | None, typer.Option("--deployment-id", help="Groups the phases of one rollout.")] = None,
    environment: Annotated[str | None, typer.Option(help="e.g. production.")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning or critical.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="When it happened, ISO 8601 (default: now).")] = None,
    id_: Annotated[str | None, typer.Option("--id", help="Idempotency key: posting the same id again changes nothing.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the written document as JSON.")] = False,
) -> None:
    """Record one change: `pang events post --service payment --type deployment --phase DEPLOY_ALL --outcome started`.

    Prints the event's id. The same event posted twice (same --id, or the same rollout, phase and outcome) is one document.
    """
    from pang.cli import err, fail, out, settings_from
    from pang.events.schema import EventError
    from pang.events.store import EventStoreError

    settings = settings_from(ctx)
    fields = {"type": type_, "service": service, "phase": phase, "outcome": outcome, "message": message, "link": link,
              "actor": actor, "provider": provider or "pang-cli", "build": build, "version": version,
              "from_version": from_version, "deployment_id": deployment_id, "environment": environment,
              "severity": severity, "timestamp": at, "id": id_}
    try:
        doc = post_event(settings, fields)
    except EventError as exc:
        name = (exc.field or "event").split(".")[0]
        detail = str(exc).removeprefix(f"{exc.field}: ")
        fail(f"--{'at' if name == 'timestamp' else name.replace('_', '-')}: {detail}", 2)
    except EventStoreError as exc:
        fail(str(exc))
    if as_json:
        _json_line(doc)
    else:
        out.print(doc["event"]["id"])
        err.print(f"{doc['@timestamp']} {doc['message']}", markup=False)


@events_app.command("list")
def list_command(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="How far back: 15m, 1h, 24h, 7d (default 1h).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start: ISO 8601 (UTC if no zone), now or now-1h.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (exclusive), same forms; default now.")] = None,
    service: Annotated[list[str] | None, typer.Option("--service", "-s", help="Only this service (repeatable).")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only this type: deployment, config, alert, incident, note (repeatable).")] = None,
    text: Annotated[str, typer.Option("--text", help="Free text in the message, services, actor, deployment fields.")] = "",
    limit: Annotated[int, typer.Option("--limit", help="Events to show.", min=1, max=1000)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per line (_source plus _id and _index), nothing else.")] = False,
) -> None:
    """Events in a window, newest first, in PANG_BUSINESS_TIMEZONE: `pang events list --since 1h --type deployment`."""
    from rich.table import Table

    from pang.cli import fail, out, settings_from
    from pang.events.store import EventStoreError
    from pang.indexer.timerange import TimeRangeError

    settings = settings_from(ctx)
    try:
        page = list_events(settings, since=since, start=start, end=end, services=tuple(service or ()),
                           types=tuple(type_ or ()), text=text, limit=limit)
    except (TimeRangeError, ValueError) as exc:
        fail(str(exc), 2)
    except EventStoreError as exc:
        fail(str(exc))
    if as_json:
        for row in page.rows:
            _json_line(row)
        return
    zone = ZoneInfo(settings.business_timezone)
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in (f"time ({settings.business_timezone})", "type", "service", "message"):
        table.add_column(col, overflow="fold")
    for row in page.rows:
        table.add_row(_local(str(row.get("@timestamp", "")), zone), str((row.get("pang") or {}).get("type", "")),
                      ", ".join(services_of(row)), str(row.get("message", "")))
    out.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(page.counts.items()))
    out.print(f"{len(page.rows)} of {page.total} events" + (f" ({counts})" if counts else ""))


@events_app.command("changes")
def changes_command(
    ctx: typer.Context,
    before: Annotated[str, typer.Option("--before", help="The alert's id (alert.id, as the timeline shows it).")],
    window: Annotated[str, typer.Option("--window", help="How far back from the alert's opening (default 1h).")] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the alert, its services and the changes.")] = False,
) -> None:
    """What changed before an alert: deploys and config changes of the hour before it, its services' first.

    Order: changes on the alert's services, then on their neighbours (PANG_SERVICE_NEIGHBOURS), then the rest; newest first in each.
    """
    from rich.table import Table

    from pang.cli import fail, out, settings_from
    from pang.events.changes import ChangesError, changes_before
    from pang.indexer.timerange import TimeRangeError, parse_duration

    settings = settings_from(ctx)
    try:
        span: timedelta = parse_duration(window)
    except TimeRangeError as exc:
        fail(str(exc), 2)
    try:
        report = changes_before(settings, before, span)
    except ChangesError as exc:
        fail(str(exc))
    if as_json:
        _json_line(report.as_json())
        return
    zone = ZoneInfo(settings.business_timezone)
    out.print(f"alert {report.alert_id} opened {report.opened.astimezone(zone):%Y-%m-%d %H:%M:%S} "
              f"({settings.business_timezone}); services: {', '.join(report.affected) or '-'}; "
              f"neighbours: {', '.join(report.neighbours) or '-'}")
    if not report.changes:
        out.print(f"no deploys or config changes in the {window} before it")
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("", "time", "type", "service", "message"):
        table.add_column(col, overflow="fold")
    for c in report.changes:
        table.add_row(c.group, _local(c.at, zone), str((c.doc.get("pang") or {}).get("type", "")),
                      ", ".join(services_of(c.doc)), str(c.doc.get("message", "")))
    out.print(table)


@events_app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default PANG_EVENTS_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PANG_EVENTS_PORT, 8070; 0: any free port).", min=0, max=65535)] = None,
) -> None:
    """The HTTP endpoint: POST /api/events (pang's JSON), POST /api/webhooks/github|argocd|jenkins, GET /api/events, /healthz.

    Auth: PANG_EVENTS_TOKEN (Bearer) or PANG_EVENTS_USERNAME/PASSWORD (basic); without either it listens on loopback only.
    HTTPS with PANG_EVENTS_TLS_CERT/KEY. Runs until Ctrl-C.
    """
    from pang.cli import err, fail, out, settings_from
    from pang.events.http import EventsServeError, check_serving, make_server

    settings = settings_from(ctx)
    try:
        notes = check_serving(settings, host or settings.events_host)
        server = make_server(settings, host=host, port=port)
    except EventsServeError as exc:
        fail(str(exc), 2)
    for note in notes:
        err.print(f"pang: {note}", markup=False)
    out.print(f"events endpoint: {server.url}/api/events (webhooks under {server.url}/api/webhooks/)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()

