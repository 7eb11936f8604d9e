"""CI/CD deployment webhooks -> pang's :class:`~pang.events.schema.EventIn` (one documented mapping each).

A deploy tool already knows when a rollout starts and how it ends; asking
people to write a script that re-posts that in pang's JSON is how events go
missing. So the endpoint takes the tools' own bodies and maps them here:

- GitHub ``deployment_status`` (the repository webhook, header ``X-GitHub-Event``);
- Argo CD notifications (``argocd-notifications``' webhook service; its body is
  user-templated, the README gives the template whose JSON this reads);
- Jenkins' Notification plugin (its JSON format: ``name``, ``url``, ``build.*``).

Each mapper is pure (headers and decoded JSON in, events out) so the recorded
payloads in ``tests/data/webhooks/`` test it without a server. A body the
mapping cannot use raises :class:`EventError` naming the tool's own field
(``deployment_status.state``), so the tool's delivery log says what to fix.
A notification that is not a change (GitHub's ``ping`` when the hook is
created, a Jenkins build still in the queue) is answered as *ignored*: it is
not an error of the sender's, and nothing is written.

Ids are left to :func:`pang.events.schema.event_id`: the rollout id, the phase
and the outcome. A redelivered notification, and GitHub's ``queued`` then
``in_progress`` (both "started"), are therefore one document each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pang.events.schema import EventError, EventIn, parse_event

__all__ = ["PROVIDERS", "WebhookResult", "from_argocd", "from_github", "from_jenkins", "map_webhook"]

# Go templates render a missing map key as "<no value>"; an empty template field is "".
_ABSENT = ("", "<no value>", "null", "None")


@dataclass(frozen=True)
class WebhookResult:
    """What a webhook body becomes: events to write, or why it was ignored (then ``events`` is empty)."""

    events: list[EventIn] = field(default_factory=list)
    ignored: str | None = None


def _get(data: Any, path: str) -> Any:
    """``a.b.c`` of nested objects, ``None`` when any step is missing or a template left it empty."""
    cur = data
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    if isinstance(cur, str) and cur.strip() in _ABSENT:
        return None
    return cur


def _need(data: Any, path: str, kind: type | tuple[type, ...] = str) -> Any:
    value = _get(data, path)
    if value is None:
        raise EventError(f"{path}: missing", path)
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise EventError(f"{path}: expected {names}, got {type(value).__name__}", path)
    return value


def _opt_str(data: Any, path: str) -> str | None:
    value = _get(data, path)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise EventError(f"{path}: expected text, got {type(value).__name__}", path)
    return str(value)


def _event(fields: dict[str, Any], field_of: Mapping[str, str]) -> EventIn:
    """Validate the mapped fields as pang's JSON; an error names the tool's field it came from."""
    try:
        return parse_event({k: v for k, v in fields.items() if v is not None})
    except EventError as exc:
        source = field_of.get(exc.field or "", exc.field)
        detail = str(exc).split(": ", 1)[-1]
        raise EventError(f"{source}: {detail}", source) from None


def _services(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value
    raise EventError(f"{path}: expected a service name or a list of them", path)


# --- GitHub ------------------------------------------------------------------------------------------

_GITHUB_OUTCOME = {"pending": "started", "queued": "started", "in_progress": "started", "waiting": "started",
                   "success": "success", "failure": "failure", "error": "failure"}


def from_github(headers: Mapping[str, str], body: Any) -> WebhookResult:
    """A ``deployment_status`` event of a repository webhook (``X-GitHub-Event: deployment_status``)."""
    kind = _header(headers, "X-GitHub-Event")
    if kind == "ping":
        return WebhookResult(ignored="ping: the webhook is set up; pang takes deployment_status events")
    if kind != "deployment_status":
        raise EventError(f"X-GitHub-Event: {kind or 'missing'}; pang takes deployment_status (and ping)", "X-GitHub-Event")
    if not isinstance(body, Mapping):
        raise EventError("the body must be a JSON object", None)
    state = _need(body, "deployment_status.state")
    if state == "inactive":
        return WebhookResult(ignored="deployment_status.state inactive: an older deployment was superseded, not a change")
    if state not in _GITHUB_OUTCOME:
        raise EventError(f"deployment_status.state: {state[:40]!r} is not one of {', '.join(_GITHUB_OUTCOME)}",
                         "deployment_status.state")
    repo = _need(body, "repository.name")
    dep_id = _need(body, "deployment.id", (int, str))
    sha = _opt_str(body, "deployment.sha")
    payload = _get(body, "deployment.payload")
    if not isinstance(payload, Mapping):
        payload = {}  # GitHub sends {} or a string when the deployment was created without a JSON payload
    service: Any = payload.get("service") or repo
    phase = payload.get("phase") or "DEPLOY_ALL"
    environment = _opt_str(body, "deployment_status.environment") or _opt_str(body, "deployment.environment")
    ref = _opt_str(body, "deployment.ref")
    description = _opt_str(body, "deployment_status.description")
    version = payload.get("version") or (sha[:12] if sha else ref)
    where = f" to {environment}" if environment else ""
    what = f"{ref}@{sha[:7]}" if ref and sha else (ref or (sha or "")[:7])
    message = f"{repo} {what}{where}: {state}" + (f" ({description})" if description else "")
    fields = {
        "type": "deployment",
        "service": _services(service, "deployment.payload.service"),
        "timestamp": _opt_str(body, "deployment_status.updated_at") or _opt_str(body, "deployment_status.created_at"),
        "message": message,
        "phase": phase,
        "outcome": _GITHUB_OUTCOME[state],
        "actor": _opt_str(body, "deployment_status.creator.login") or _opt_str(body, "deployment.creator.login"),
        "provider": "github",
        "version": version,
        "deployment_id": f"github:{_opt_str(body, 'repository.full_name') or repo}:{dep_id}",
        "environment": environment,
        "link": _opt_str(body, "deployment_status.target_url") or _opt_str(body, "deployment_status.log_url")
        or _opt_str(body, "deployment_status.environment_url"),
    }
    return WebhookResult([_event(fields, {
        "service": "repository.name", "timestamp": "deployment_status.updated_at", "phase": "deployment.payload.phase",
        "actor": "deployment_status.creator.login", "version": "deployment.sha", "deployment_id": "deployment.id",
        "environment": "deployment_status.environment", "link": "deployment_status.target_url",
    })])


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value.strip()
    return None


# --- Argo CD -----------------------------------------------------------------------------------------

_ARGO_OUTCOME = {"Running": "started", "Succeeded": "success", "Failed": "failure", "Error": "failure"}


def from_argocd(headers: Mapping[str, str], body: Any) -> WebhookResult:
    """The body of the README's ``argocd-notifications`` template: ``{"app": <Application>, "argocdUrl": ...}``.

    Read from the Application: ``metadata.name`` (the service unless the
    ``pang.service`` label says otherwise), ``status.operationState``
    (``phase``, ``startedAt``, ``finishedAt``, ``message``,
    ``syncResult.revision``, ``operation.initiatedBy.username``) and
    ``status.sync.revision`` when the operation carries none.
    """
    if not isinstance(body, Mapping):
        raise EventError("the body must be a JSON object", None)
    name = _need(body, "app.metadata.name")
    phase = _need(body, "app.status.operationState.phase")
    if phase not in _ARGO_OUTCOME:
        raise EventError(f"app.status.operationState.phase: {phase[:40]!r} is not one of {', '.join(_ARGO_OUTCOME)}",
                         "app.status.operationState.phase")
    outcome = _ARGO_OUTCOME[phase]
    revision = (_opt_str(body, "app.status.operationState.syncResult.revision")
                or _opt_str(body, "app.status.operationState.operation.sync.revision")
                or _opt_str(body, "app.status.sync.revision"))
    if revision is None:
        raise EventError("app.status.operationState.syncResult.revision: missing (and no app.status.sync.revision)",
                         "app.status.operationState.syncResult.revision")
    started = _opt_str(body, "app.status.operationState.startedAt")
    finished = _opt_str(body, "app.status.operationState.finishedAt")
    labels = _get(body, "app.metadata.labels")
    service: Any = (labels.get("pang.service") if isinstance(labels, Mapping) else None) or name
    namespace = _opt_str(body, "app.spec.destination.namespace")
    base = _opt_str(body, "argocdUrl")
    detail = _opt_str(body, "app.status.operationState.message")
    message = f"argocd {name} sync to {revision[:12]}: {phase}" + (f" ({detail[:300]})" if detail else "")
    fields = {
        "type": "deployment",
        "service": _services(service, "app.metadata.labels.pang.service"),
        "timestamp": (finished if outcome != "started" else None) or started,
        "message": message,
        "phase": "DEPLOY_ALL",
        "outcome": outcome,
        "actor": _opt_str(body, "app.status.operationState.operation.initiatedBy.username")
        or ("automated" if _get(body, "app.status.operationState.operation.initiatedBy.automated") else None),
        "provider": "argocd",
        "version": revision[:40],
        # An operation is identified by its start: a re-sync of the same revision is a new rollout.
        "deployment_id": f"argocd:{name}:{revision[:40]}:{started or ''}",
        "environment": namespace,
        "link": f"{base.rstrip('/')}/applications/{name}" if base else None,
    }
    return WebhookResult([_event(fields, {
        "service": "app.metadata.name", "timestamp": "app.status.operationState.finishedAt",
        "actor": "app.status.operationState.operation.initiatedBy.username",
        "version": "app.status.operationState.syncResult.revision", "deployment_id": "app.metadata.name",
        "environment": "app.spec.destination.namespace", "link": "argocdUrl",
    })])


# --- Jenkins -----------------------------------------------------------------------------------------

_JENKINS_FAILED = {"FAILURE", "ABORTED", "UNSTABLE", "NOT_BUILT"}


def from_jenkins(headers: Mapping[str, str], body: Any) -> WebhookResult:
    """The Notification plugin's JSON: ``{"name", "url", "build": {"number", "phase", "status", "full_url", "scm"}}``.

    ``STARTED`` is the rollout starting; ``COMPLETED`` and ``FINALIZED`` are its
    end (the same document twice, by id); ``QUEUED`` is not a change yet. The
    service is the job's name unless the build has a ``SERVICE`` parameter;
    the version is a ``VERSION`` parameter, else the commit.
    """
    if not isinstance(body, Mapping):
        raise EventError("the body must be a JSON object", None)
    name = _need(body, "name")
    number = _need(body, "build.number", (int, str))
    phase = _need(body, "build.phase")
    if phase in ("QUEUED", "NONE"):
        return WebhookResult(ignored=f"build.phase {phase}: not a change (the build has not started)")
    if phase not in ("STARTED", "COMPLETED", "FINALIZED"):
        raise EventError(f"build.phase: {phase[:40]!r} is not one of QUEUED, STARTED, COMPLETED, FINALIZED", "build.phase")
    if phase == "STARTED":
        outcome, status = "started", None
    else:
        status = _need(body, "build.status")
        if status != "SUCCESS" and status not in _JENKINS_FAILED:
            raise EventError(f"build.status: {status[:40]!r} is not one of SUCCESS, {', '.join(sorted(_JENKINS_FAILED))}",
                             "build.status")
        outcome = "success" if status == "SUCCESS" else "failure"
    params = _get(body, "build.parameters")
    params = params if isinstance(params, Mapping) else {}
    commit = _opt_str(body, "build.scm.commit")
    branch = _opt_str(body, "build.scm.branch")
    at = _jenkins_time(_get(body, "build.timestamp"))
    version = params.get("VERSION") or (commit[:12] if commit else None)
    on = f" {branch}@{commit[:7]}" if branch and commit else (f" {commit[:7]}" if commit else "")
    message = f"jenkins {name} #{number}{on}: {phase.lower()}" + (f" {status}" if status else "")
    fields = {
        "type": "deployment",
        "service": _services(params.get("SERVICE") or name, "build.parameters.SERVICE"),
        "timestamp": at,
        "message": message,
        "phase": params.get("PANG_PHASE") or "DEPLOY_ALL",
        "outcome": outcome,
        "provider": "jenkins",
        "build": str(number),
        "version": version,
        "deployment_id": f"jenkins:{name}:{number}",
        "environment": params.get("ENVIRONMENT"),
        "link": _opt_str(body, "build.full_url"),
    }
    return WebhookResult([_event(fields, {
        "service": "name", "phase": "build.parameters.PANG_PHASE", "build": "build.number",
        "version": "build.scm.commit", "deployment_id": "name", "environment": "build.parameters.ENVIRONMENT",
        "link": "build.full_url", "timestamp": "build.timestamp",
    })])


# Some plugin versions format the time with SimpleDateFormat's "ss.Sz": the fraction is the
# millisecond count unpadded (".5" is 5 ms, not half a second) and the zone is "+00:00".
_JENKINS_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?(Z|[+-]\d\d:?\d\d)?$")


def _jenkins_time(stamp: Any) -> str | None:
    """``build.timestamp``: epoch milliseconds (most versions) or the ``ss.Sz`` text form; absent in old ones."""
    if isinstance(stamp, bool) or stamp is None:
        return None
    if isinstance(stamp, (int, float)):
        if stamp <= 0:
            raise EventError("build.timestamp: must be epoch milliseconds after 1970", "build.timestamp")
        try:
            return datetime.fromtimestamp(stamp / 1000, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise EventError("build.timestamp: out of range", "build.timestamp") from None
    m = _JENKINS_TIME.match(str(stamp).strip())
    if not m:
        raise EventError(f"build.timestamp: {str(stamp)[:40]!r} is neither epoch milliseconds nor an ISO time",
                         "build.timestamp")
    ms = int(m.group(2) or 0)
    return f"{m.group(1)}.{ms:03d}{m.group(3) or 'Z'}"


PROVIDERS: dict[str, Callable[[Mapping[str, str], Any], WebhookResult]] = {
    "github": from_github,
    "argocd": from_argocd,
    "jenkins": from_jenkins,
}


def map_webhook(provider: str, headers: Mapping[str, str], body: Any) -> WebhookResult:
    """Dispatch on the URL's provider name (``/api/webhooks/<provider>``)."""
    try:
        mapper = PROVIDERS[provider]
    except KeyError:
        raise EventError(f"unknown webhook provider {provider[:40]!r}; pang maps {', '.join(PROVIDERS)}", "provider") from None
    return mapper(headers, body)
