"""Incidents and deployments: a seeded schedule, and the ground truth a detector is scored against.

The schedule is drawn per local calendar week from the seed and the week alone,
so asking for any range gives the same incidents wherever it starts, and
:func:`pang.traffic.rollups` for three months agrees with the log lines written
for one hour of them.

Each week has 2-4 incidents at times people notice them:

``bad_deploy``
    a deploy of one service on a weekday during working hours (09:00-17:30 local)
    that slows another one (``slowed_service``: timeouts and ERROR lines with
    stack traces there, 5xx at the gateway), dropping orders and payments until
    the rollback at ``end`` (a second deployment event, back to the old version).
    When the slowed service is ``payment``, payments drop most and failed
    payments rise.
``provider_outage``
    the payment provider fails (any day, 08:00-22:00 local): approved payments
    drop, failed ones rise, orders do not move.

About two in three are *major* (a drop of 20-60 % for 5-40 minutes: a steady-state
alert must find them); the rest are *minor* (6-15 %: below what a per-minute
detector can be asked to see). Each week also has 3-8 uneventful deploys, so a
timeline of changes is not a list of culprits.

``effects`` maps a signal to the fraction of its expected count the incident
removes; a negative value adds (``-1.5`` makes 2.5 times as many). Counts of a
minute inside ``[start, end)`` are drawn around ``expected * (1 - drop)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pang.traffic.cycles import RateModel, floor_minute

__all__ = [
    "DEFAULT_MONTH",
    "DEFAULT_SEED",
    "Deployment",
    "Incident",
    "Schedule",
    "default_month",
    "inject",
]

DEFAULT_SEED = 7
DEFAULT_MONTH = (2026, 10)  # October 2026: in the past, with the European DST change (Oct 25) inside
SERVICES = ("gateway", "search", "cart", "order", "payment", "shipment")

# (deployed service, service it slows): plausible knock-on effects in a shop
_BAD_DEPLOYS = (
    ("search", "cart"),  # the new search floods the shared Redis the carts live in
    ("cart", "order"),  # cart sends bigger payloads, order's validation times out
    ("shipment", "order"),  # shipment holds row locks on the orders table
    ("order", "payment"),  # order retries payments in a tight loop
    ("gateway", "cart"),  # a gateway connection-pool change starves cart
    ("search", "order"),  # search's reindex job saturates the database
)
_EPOCH_MONDAY = date(1970, 1, 5)
_WEEK_STREAM = 0x1C1DE7


@dataclass(frozen=True)
class Deployment:
    """A rollout of one service version; ``rolled_back`` when it was undone (a bad deploy)."""

    id: str
    service: str
    at: datetime
    from_version: str
    to_version: str
    rolled_back: datetime | None = None
    incident_id: str | None = None

    def events(self) -> list[dict[str, Any]]:
        """ECS documents for ``events-*``: each phase of the rollout started and done, and the rollback if any.

        ``at`` is when the new version takes all traffic (DEPLOY_ALL starts):
        the incident of a bad deploy starts there. STAGE, the 10-minute
        CANARY and its analysis come before it, UPDATE_IC and WRAP_UP around
        it; a rollback is a ROLLBACK phase that ends at ``rolled_back``.
        """
        from pang.events.schema import EventIn

        rng = random.Random(f"deploy:{self.id}")
        actor = rng.choice(_DEPLOYERS)
        build = str(40_000 + rng.randrange(20_000))
        link = f"https://git.example.com/shop/{self.service}/compare/{self.from_version}...{self.to_version}"
        docs = []
        for phase, start_min, end_min in _PHASES:
            for outcome, minute in (("started", start_min), ("success", end_min)):
                by = "System" if phase == "CANARY_ANALYSIS" else actor
                ev = EventIn(type="deployment", service=[self.service], timestamp=self.at + timedelta(minutes=minute),
                             phase=phase, outcome=outcome, actor=by, provider="bolt2", build=build,
                             version=self.to_version, from_version=self.from_version, deployment_id=self.id,
                             link=link, id=f"{self.id}:{phase}:{outcome}")
                docs.append(ev.document(ev.timestamp))
        if self.rolled_back is not None:
            for outcome, minute in (("started", -1), ("success", 0)):
                ev = EventIn(type="deployment", service=[self.service], timestamp=self.rolled_back + timedelta(minutes=minute),
                             phase="ROLLBACK", outcome=outcome, actor=actor, provider="bolt2", build=build,
                             version=self.from_version, from_version=self.to_version, deployment_id=self.id,
                             message=f"{self.service}: rollback of {self.to_version} to {self.from_version} {outcome} by {actor}",
                             link=link, id=f"{self.id}:ROLLBACK:{outcome}")
                docs.append(ev.document(ev.timestamp))
        return sorted(docs, key=lambda d: d["@timestamp"])


# (phase, started, done) in minutes from ``Deployment.at`` (DEPLOY_ALL started: the new version takes all traffic)
_PHASES = (
    ("STAGE", -15, -13),
    ("CANARY", -13, -3),
    ("CANARY_ANALYSIS", -3, -2),
    ("UPDATE_IC", -2, -1),
    ("DEPLOY_ALL", 0, 3),
    ("WRAP_UP", 3, 4),
)
DEPLOY_LEAD = timedelta(minutes=15)  # the first phase starts this long before ``at``
DEPLOY_TAIL = timedelta(minutes=4)   # the last one ends this long after
_DEPLOYERS = ("anna.schmidt", "li.wei", "marco.rossi", "priya.nair", "tom.becker", "sofia.garcia")


@dataclass(frozen=True)
class Incident:
    """One incident: what broke, when (``[start, end)``, whole UTC minutes) and what it did to the signals."""

    id: str
    kind: str  # "bad_deploy" | "provider_outage"
    service: str  # the deployed service, or the failing one
    slowed_service: str | None
    start: datetime
    end: datetime
    effects: dict[str, float] = field(default_factory=dict)
    severity: str = "major"  # "major": >= 20 % for >= 5 minutes on orders or payments; else "minor"
    deployment: Deployment | None = None
    injected: bool = False  # started by hand during a live run, not from the seed's schedule

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"incident {self.id}: start {self.start} is not before end {self.end}")

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def must_detect(self) -> bool:
        """A drop of at least 20 % of orders or payments for at least 5 minutes."""
        big = max(self.effects.get("orders", 0.0), self.effects.get("payments", 0.0))
        return big >= 0.2 and self.minutes >= 5

    def covers(self, minute: datetime) -> bool:
        return self.start <= minute < self.end

    def record(self) -> dict[str, Any]:
        """The ground-truth line for ``incidents.jsonl``."""
        dep = self.deployment
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "slowed_service": self.slowed_service,
            "start": iso(self.start),
            "end": iso(self.end),
            "minutes": self.minutes,
            "effects": self.effects,
            "severity": self.severity,
            "must_detect": self.must_detect,
            "injected": self.injected,
            "deployment": None if dep is None else {
                "id": dep.id, "from_version": dep.from_version, "to_version": dep.to_version,
            },
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Incident:
        dep = rec.get("deployment")
        start, end = parse_iso(rec["start"]), parse_iso(rec["end"])
        deployment = None
        if dep:
            deployment = Deployment(dep["id"], rec["service"], start, dep["from_version"], dep["to_version"],
                                    rolled_back=end, incident_id=rec["id"])
        return cls(rec["id"], rec["kind"], rec["service"], rec.get("slowed_service"), start, end,
                   dict(rec.get("effects") or {}), rec.get("severity", "major"), deployment, bool(rec.get("injected")))


def iso(t: datetime) -> str:
    """``2026-10-05T09:12:00.000Z``: the form pang's documents use."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def effects_for(kind: str, slowed: str | None, drop: float) -> dict[str, float]:
    """What an incident of ``kind`` with a headline ``drop`` does to each signal."""
    drop = round(drop, 3)
    if kind == "provider_outage":
        return {"orders": 0.0, "payments": drop, "payment_failures": round(-4 * drop, 3)}
    if slowed == "payment":
        return {"orders": round(0.4 * drop, 3), "payments": drop, "payment_failures": -1.5}
    return {"orders": drop, "payments": drop, "payment_failures": drop}


# --------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class _Week:
    incidents: tuple[Incident, ...]
    deployments: tuple[Deployment, ...]


class Schedule:
    """The incidents and deployments of a seed, for any range (weeks are drawn once and cached)."""

    def __init__(self, seed: int = DEFAULT_SEED, model: RateModel | None = None, extra: Iterable[Incident] = ()) -> None:
        self.seed = seed
        self.model = model or RateModel()
        self.extra: list[Incident] = sorted(extra, key=lambda i: i.start)
        self._drafts: dict[int, _Draft] = {}
        self._weeks: dict[int, _Week] = {}

    def add(self, incident: Incident) -> None:
        """An incident beyond the seed's (``--inject-incident``)."""
        self.extra.append(incident)
        self.extra.sort(key=lambda i: i.start)

    def incidents(self, start: datetime, end: datetime) -> list[Incident]:
        """Incidents overlapping ``[start, end)``, by start."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        found = [i for w in self._week_range(start, end) for i in self._week(w).incidents]
        found += self.extra
        return sorted((i for i in found if i.start < end and i.end > start), key=lambda i: i.start)

    def deployments(self, start: datetime, end: datetime) -> list[Deployment]:
        """Deployments with a start or rollback in ``[start, end)``, by start."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        deps = [d for w in self._week_range(start, end) for d in self._week(w).deployments]
        deps += [i.deployment for i in self.extra if i.deployment is not None]

        def touches(d: Deployment) -> bool:
            return start <= d.at < end or (d.rolled_back is not None and start <= d.rolled_back < end)

        return sorted((d for d in deps if touches(d)), key=lambda d: d.at)

    def events(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Deployment event documents with ``@timestamp`` in ``[start, end)``, by time."""
        lo, hi = iso(start), iso(end)
        deps = self.deployments(start - DEPLOY_TAIL - timedelta(minutes=1), end + DEPLOY_LEAD + timedelta(minutes=1))
        docs = [e for d in deps for e in d.events() if lo <= e["@timestamp"] < hi]
        return sorted(docs, key=lambda e: e["@timestamp"])

    def active(self, minute: datetime) -> Incident | None:
        """The incident running during ``minute`` (incidents never overlap; an injected one wins)."""
        minute = floor_minute(minute)
        for inc in reversed(self.extra):
            if inc.covers(minute):
                return inc
        for inc in self._week(self._week_of(minute)).incidents:
            if inc.covers(minute):
                return inc
        return None

    def version_at(self, service: str, t: datetime) -> str:
        """The version ``service`` runs at ``t`` by the seed's deployments (a bad one only until its rollback)."""
        t = t.astimezone(UTC)
        w = self._week_of(t)
        version = self._base_versions(w)[service]
        for dep in self._week(w).deployments:
            if dep.service == service and dep.at <= t and (dep.rolled_back is None or t < dep.rolled_back):
                version = dep.to_version
        return version

    # ----------------------------------------------------------------- internals

    def _week_of(self, t: datetime) -> int:
        return (t.astimezone(self.model.tz).date() - _EPOCH_MONDAY).days // 7

    def _week_range(self, start: datetime, end: datetime) -> range:
        return range(self._week_of(start - timedelta(hours=1)), self._week_of(end + timedelta(hours=1)) + 1)

    def _draft(self, w: int) -> _Draft:
        draft = self._drafts.get(w)
        if draft is None:
            draft = self._drafts[w] = _draw_week(self.seed, self.model, w)
        return draft

    def _base_versions(self, w: int) -> dict[str, str]:
        """Each service's version when week ``w`` begins: its last kept deploy of the 8 weeks before.

        Looking back a fixed number of weeks keeps every answer a function of
        the week alone; a service not deployed for 8 weeks gets a label of its
        own (``<year>.<isoweek>.0``).
        """
        versions = {s: f"{_calver(w - _LOOKBACK_WEEKS)}.0" for s in SERVICES}
        for back in range(_LOOKBACK_WEEKS, 0, -1):
            for at, service, inc in self._draft(w - back).slots:
                if inc is None:
                    versions[service] = _version(at)
        return versions

    def _week(self, w: int) -> _Week:
        week = self._weeks.get(w)
        if week is not None:
            return week
        draft = self._draft(w)
        current = self._base_versions(w)
        deployments: list[Deployment] = []
        by_incident: dict[str, Deployment] = {}
        for at, service, inc in draft.slots:
            dep_id = f"deploy-{service}-{at:%Y%m%dT%H%MZ}"
            if inc is None:
                dep = Deployment(dep_id, service, at, current[service], _version(at))
                current[service] = dep.to_version
            else:  # rolled back: the service stays on its old version
                dep = Deployment(dep_id, service, at, current[service], _version(at), rolled_back=inc.end, incident_id=inc.id)
                by_incident[inc.id] = dep
            deployments.append(dep)
        incidents = tuple(
            Incident(i.id, i.kind, i.service, i.slowed_service, i.start, i.end, i.effects, i.severity, by_incident.get(i.id))
            for i in draft.incidents
        )
        week = self._weeks[w] = _Week(incidents, tuple(deployments))
        return week


_LOOKBACK_WEEKS = 8


def _calver(w: int) -> str:
    monday = _EPOCH_MONDAY + timedelta(weeks=w)
    year, isoweek, _ = monday.isocalendar()
    return f"{year}.{isoweek}"


def _version(at: datetime) -> str:
    """A release's version: its build time (calendar versioning), e.g. ``2026.10.08-0741``."""
    return f"{at - timedelta(minutes=30):%Y.%m.%d-%H%M}"  # built half an hour before it went out


@dataclass(frozen=True)
class _Draft:
    """A week as drawn: incidents without their deployment, and deploy slots (bad ones point to their incident)."""

    incidents: tuple[Incident, ...]
    slots: tuple[tuple[datetime, str, Incident | None], ...]


def _draw_week(seed: int, model: RateModel, w: int) -> _Draft:
    rng = random.Random(f"{seed}:incidents:{w}")
    tz = model.tz
    monday = _EPOCH_MONDAY + timedelta(weeks=w)

    def local(day: int, minute_of_day: int) -> datetime:
        t = datetime.combine(monday + timedelta(days=day), time(minute_of_day // 60, minute_of_day % 60), tzinfo=tz)
        return floor_minute(t.astimezone(UTC))

    incidents: list[Incident] = []
    taken: list[tuple[datetime, datetime]] = []

    def free(a: datetime, b: datetime, margin: timedelta) -> bool:
        return all(b + margin <= s or a >= e + margin for s, e in taken)

    for _ in range(rng.randint(2, 4)):
        kind = "bad_deploy" if rng.random() < 0.75 else "provider_outage"
        major = rng.random() < 0.65
        drop = rng.uniform(0.2, 0.6) if major else rng.uniform(0.06, 0.15)
        duration = rng.randint(5, 40) if major else rng.randint(5, 30)
        for _attempt in range(50):
            if kind == "bad_deploy":
                start = local(rng.randrange(5), rng.randint(9 * 60, 17 * 60 + 30))
            else:
                start = local(rng.randrange(7), rng.randint(8 * 60, 22 * 60 - duration))
            end = start + timedelta(minutes=duration)
            if free(start, end, timedelta(hours=2)):
                break
        else:
            continue
        taken.append((start, end))
        if kind == "bad_deploy":
            service, slowed = rng.choice(_BAD_DEPLOYS)
        else:
            service, slowed = "payment", None
        inc_id = f"inc-{start:%Y%m%dT%H%MZ}-{service}"
        effects = effects_for(kind, slowed, drop)
        incidents.append(Incident(inc_id, kind, service, slowed, start, end, effects, "major" if major else "minor"))

    # Uneventful deploys on weekdays in working hours, at least 30 minutes away from any incident.
    slots: list[tuple[datetime, str, Incident | None]] = [(i.start, i.service, i) for i in incidents if i.kind == "bad_deploy"]
    for _ in range(rng.randint(3, 8)):
        service = rng.choice(SERVICES)
        for _attempt in range(50):
            at = local(rng.randrange(5), rng.randint(9 * 60, 17 * 60 + 30))
            if free(at, at + timedelta(minutes=1), timedelta(minutes=30)) and all(at != s[0] for s in slots):
                slots.append((at, service, None))
                break
    slots.sort(key=lambda s: s[0])
    incidents.sort(key=lambda i: i.start)
    return _Draft(tuple(incidents), tuple(slots))


def inject(
    now: datetime,
    *,
    minutes: int = 10,
    drop: float = 0.4,
    pair: tuple[str, str] | None = None,
    schedule: Schedule | None = None,
) -> Incident:
    """A bad deploy starting at the next whole minute after ``now`` (a minute's counts are all-or-nothing).

    With a ``schedule``, it starts after the injected incidents already there
    and deploys over the version the schedule says the service runs.
    """
    if not 1 <= minutes <= 24 * 60:
        raise ValueError("an injected incident lasts 1 to 1440 minutes")
    if not 0 < drop <= 1:
        raise ValueError("an injected incident drops between 0 (excluded) and 1 of the orders")
    start = floor_minute(now) + timedelta(minutes=1)
    for inc in schedule.extra if schedule else ():  # never overlap another injected one: start after it
        if inc.end > start:
            start = inc.end
    end = start + timedelta(minutes=minutes)
    rng = random.Random(f"{schedule.seed if schedule else 0}:inject:{start.isoformat()}")
    service, slowed = pair or rng.choice(_BAD_DEPLOYS)
    if service not in SERVICES or slowed not in SERVICES or service == slowed:
        raise ValueError(f"an injected bad deploy needs two different services among {', '.join(SERVICES)}")
    inc_id = f"inc-{start:%Y%m%dT%H%MZ}-{service}-injected"
    dep = Deployment(f"deploy-{service}-{start:%Y%m%dT%H%MZ}-injected", service, start,
                     schedule.version_at(service, start) if schedule else "unknown", _version(start),
                     rolled_back=end, incident_id=inc_id)
    effects = effects_for("bad_deploy", slowed, drop)
    severity = "major" if max(effects["orders"], effects["payments"]) >= 0.2 and minutes >= 5 else "minor"
    return Incident(inc_id, "bad_deploy", service, slowed, start, end, effects, severity, dep, injected=True)


def default_month(model: RateModel | None = None) -> tuple[datetime, datetime]:
    """The month backtests score by default: local midnight of its 1st to the next 1st, as UTC instants."""
    tz = (model or RateModel()).tz
    year, month = DEFAULT_MONTH
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
