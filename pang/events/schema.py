"""One schema for everything that changed: deploys, alerts, config changes, incidents.

In an incident channel the first questions are "is it recovered?" and "what
changed in the last hour?". Both are answered from ``events-*``, so every
writer (the traffic generator's deploys, the steady-state and error-rate
alerts, ``pang events post``, the HTTP endpoint and its CI/CD webhook
mappings) builds its document here and nowhere else.

:class:`EventIn` is pang's own JSON for a posted event: flat, short names, every
field checked (an unknown field is an error, not silently dropped), so a bad
payload is refused with the field's name. :meth:`EventIn.document` turns it into
the ECS document that is indexed:

- ``pang.type``: ``deployment`` | ``alert`` | ``config`` | ``incident`` | ``note``
  (the timeline's type filter and counts);
- ``event.*`` (ECS): ``kind`` (``event``, or ``alert`` for alerts), ``action``
  (``deployment.started``, ``alert.opened``, ``config.changed``...),
  ``outcome``, ``provider`` (the deploy tool, e.g. ``bolt2``), ``url`` (the diff
  or build link), ``id`` (the idempotency key, also the document's ``_id``);
- ``service.name`` (one or more roles), ``service.version``, ``user.name`` (the
  actor), ``deployment.{id, phase, build, from_version, to_version}``.

``event.outcome`` takes ECS's ``success`` and ``failure`` and one value of
pang's own, ``started``: a deploy phase is announced when it begins, and ECS's
``unknown`` would not say that.

The same event posted twice must be one document. Its id is the caller's
``id`` when given; otherwise a hash of what identifies it: for a deploy
phase, the service, the rollout (deployment id, else build, else version),
the phase and the outcome, so a CI retry of the same notification is a no-op
even when its timestamps differ; for anything else, the type, services,
timestamp and message.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "EVENT_TYPES",
    "OUTCOMES",
    "PHASES",
    "EventError",
    "EventIn",
    "event_id",
    "parse_event",
]

EventType = Literal["deployment", "alert", "config", "incident", "note"]
EVENT_TYPES: tuple[str, ...] = ("deployment", "alert", "config", "incident", "note")
Phase = Literal["STAGE", "CANARY", "CANARY_ANALYSIS", "UPDATE_IC", "DEPLOY_ALL", "WRAP_UP", "ROLLBACK"]
# The order a rollout goes through; ROLLBACK is a phase of its own (the old version going back out).
PHASES: tuple[str, ...] = ("STAGE", "CANARY", "CANARY_ANALYSIS", "UPDATE_IC", "DEPLOY_ALL", "WRAP_UP", "ROLLBACK")
Outcome = Literal["started", "success", "failure"]
OUTCOMES: tuple[str, ...] = ("started", "success", "failure")
Severity = Literal["info", "warning", "critical"]

# What a role, an actor or a label may look like: short, printable, no control characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
MAX_SERVICES = 20
MAX_MESSAGE = 4000
MAX_LABELS = 20


class EventError(ValueError):
    """A posted event is not valid; ``field`` names the offending field (``str(err)`` says what is wrong)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso_ms(t: datetime) -> str:
    """``2026-10-05T09:12:00.000Z``: the form every pang document uses."""
    t = _utc(t)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class EventIn(BaseModel):
    """An event as a person, a script or a CI/CD tool posts it (pang's own JSON)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    type: EventType
    service: list[str] = Field(min_length=1, max_length=MAX_SERVICES, description="The role(s) it concerns.")
    timestamp: datetime | None = Field(default=None, description="When it happened (ISO 8601; default: when it was received).")
    message: str | None = Field(default=None, max_length=MAX_MESSAGE)
    phase: Phase | None = None
    outcome: Outcome | None = None
    actor: str | None = Field(default=None, max_length=128, description="Who did it (user.name); `System` for pang itself.")
    provider: str | None = Field(default=None, max_length=64, description="The tool that did it, e.g. bolt2, github, argocd.")
    build: str | None = Field(default=None, max_length=64, description="Build number.")
    version: str | None = Field(default=None, max_length=128, description="The version going out (service.version).")
    from_version: str | None = Field(default=None, max_length=128)
    deployment_id: str | None = Field(default=None, max_length=200, description="Groups the phases of one rollout.")
    environment: str | None = Field(default=None, max_length=64)
    link: str | None = Field(default=None, max_length=2000, description="A diff, build or run link (http or https).")
    severity: Severity | None = None
    id: str | None = Field(default=None, max_length=200, description="Idempotency key: the same id is the same document.")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS)

    @field_validator("service", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator("service")
    @classmethod
    def _service_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"{name[:40]!r} is not a service name (letters, digits and ._:/@+- , up to 128)")
        return sorted(set(value), key=value.index)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if not 1970 <= value.year <= 2999:
            raise ValueError("must be between 1970 and 2999")
        return _utc(value)

    @field_validator("link")
    @classmethod
    def _http_link(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @field_validator("actor", "provider", "build", "version", "from_version", "deployment_id", "environment", "id")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(ord(c) < 32 for c in value)):
            raise ValueError("must be non-empty printable text")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not re.match(r"^[a-z][a-z0-9_]{0,63}$", key):
                raise ValueError(f"label name {key[:40]!r} must be lower-case letters, digits and _")
            if len(text) > 256:
                raise ValueError(f"label {key} is longer than 256 characters")
        return value

    @model_validator(mode="after")
    def _deploys_have_phase(self) -> EventIn:
        if self.type == "deployment":
            if self.phase is None:
                raise ValueError("phase: a deployment needs one of " + ", ".join(PHASES))
            if self.outcome is None:
                raise ValueError("outcome: a deployment needs one of " + ", ".join(OUTCOMES))
        return self

    # -- the document ---------------------------------------------------------------------------

    def at(self, received: datetime | None = None) -> datetime:
        return self.timestamp or _utc(received or datetime.now(UTC))

    def event_id(self, received: datetime | None = None) -> str:
        return self.id or event_id(self, self.at(received))

    def default_message(self) -> str:
        who = f" by {self.actor}" if self.actor else ""
        services = ", ".join(self.service)
        if self.type == "deployment":
            version = f" {self.version}" if self.version else ""
            build = f" #{self.build}" if self.build else ""
            return f"{services}{version}{build}: {self.phase} {self.outcome}{who}"
        return f"{self.type} {services}{who}"

    def document(self, received: datetime | None = None) -> dict[str, Any]:
        """The ECS document for ``events-*`` (its ``event.id`` is the ``_id`` to index it under)."""
        at = self.at(received)
        kind = "alert" if self.type == "alert" else "event"
        if self.type == "deployment":
            action = f"deployment.{self.outcome}"
        elif self.type == "alert":
            action = "alert.resolved" if self.outcome == "success" else "alert.opened"
        else:
            action = {"config": "config.changed", "incident": "incident.noted", "note": "note.added"}[self.type]
        event: dict[str, Any] = {"dataset": "events", "kind": kind, "action": action, "id": self.event_id(received),
                                 "created": iso_ms(received or datetime.now(UTC))}
        if self.outcome:
            event["outcome"] = self.outcome
            event["type"] = ["start"] if self.outcome == "started" else ["end"]
        if self.provider:
            event["provider"] = self.provider
        if self.link:
            event["url"] = self.link
        if self.severity:
            event["severity"] = {"info": 1, "warning": 2, "critical": 3}[self.severity]
        doc: dict[str, Any] = {
            "@timestamp": iso_ms(at),
            "message": self.message or self.default_message(),
            "pang": {"type": self.type},
            "event": event,
            "service": {"name": self.service if len(self.service) > 1 else self.service[0]},
        }
        if self.version:
            doc["service"]["version"] = self.version
        if self.environment:
            doc["service"]["environment"] = self.environment
        if self.actor:
            doc["user"] = {"name": self.actor}
        if self.type == "deployment":
            dep = {"phase": self.phase, "id": self.deployment_id, "build": self.build,
                   "from_version": self.from_version, "to_version": self.version}
            doc["deployment"] = {k: v for k, v in dep.items() if v is not None}
        if self.labels:
            doc["labels"] = dict(self.labels)
        return doc


def event_id(ev: EventIn, at: datetime) -> str:
    """The idempotency key of an event without one (see the module's docstring)."""
    if ev.type == "deployment" and (ev.deployment_id or ev.build or ev.version):
        key: list[Any] = ["deployment", ev.service, ev.deployment_id or ev.build or ev.version, ev.phase, ev.outcome]
    else:
        key = [ev.type, ev.service, iso_ms(at), ev.phase, ev.outcome, ev.message or ""]
    digest = hashlib.sha256(orjson.dumps(key)).hexdigest()[:24]
    return f"evt-{digest}"


def parse_event(data: Any) -> EventIn:
    """An :class:`EventIn` from decoded JSON, or :class:`EventError` naming the first bad field."""
    if not isinstance(data, dict):
        raise EventError("the body must be a JSON object", None)
    try:
        return EventIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or None
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if loc is None and re.match(r"^[a-z_]+: ", msg):  # a rule across fields names its field first
            loc, msg = msg.split(": ", 1)
        if first.get("type") == "extra_forbidden":
            msg = "unknown field"
        raise EventError(f"{loc}: {msg}" if loc else str(msg), loc) from None
