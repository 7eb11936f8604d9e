"""Index templates: explicit ECS mappings for every daily index pang writes.

Explicit mappings matter for logs: without them the first document decides a
field's type, ``message`` would lose full-text search or its keyword, and a
burst of unusual JSON fields could blow up the mapping. Strings are keywords
unless named here as text; ``message`` and stack traces are text.

Templates are composable: ``pang-settings`` (codec, shards, refresh) and
``pang-ecs`` (fields every dataset shares) are component templates, and each
dataset's index template adds its own fields. Overlapping patterns get
different priorities (``metrics-business-*`` above ``metrics-*``), or
OpenSearch refuses the second one.
"""

from __future__ import annotations

from typing import Any

from pang.settings import Settings

TEMPLATE_VERSION = 3

KEYWORD = {"type": "keyword", "ignore_above": 1024}
TEXT = {"type": "text"}
LONG = {"type": "long"}
DOUBLE = {"type": "double"}
DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
IP = {"type": "ip"}


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {"properties": props}


# Fields every dataset shares, by ECS name.
ECS_BASE: dict[str, Any] = {
    "@timestamp": DATE,
    "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    "tags": KEYWORD,
    "labels": {"type": "object", "dynamic": True},
    "ecs": _obj(version=KEYWORD),
    "agent": _obj(id=KEYWORD, name=KEYWORD, type=KEYWORD, version=KEYWORD, ephemeral_id=KEYWORD),
    "host": _obj(name=KEYWORD, hostname=KEYWORD, ip=IP, architecture=KEYWORD, os=_obj(name=KEYWORD, version=KEYWORD)),
    "service": _obj(name=KEYWORD, version=KEYWORD, environment=KEYWORD, type=KEYWORD, node=_obj(name=KEYWORD)),
    "event": _obj(
        dataset=KEYWORD, module=KEYWORD, kind=KEYWORD, category=KEYWORD, type=KEYWORD, action=KEYWORD,
        outcome=KEYWORD, severity=LONG, sequence=LONG, duration=LONG, ingested=DATE, created=DATE,
        start=DATE, end=DATE, id=KEYWORD, reason=KEYWORD, url=KEYWORD, provider=KEYWORD,
        original={"type": "keyword", "index": False, "doc_values": False},
    ),
    "log": _obj(
        level=KEYWORD, logger=KEYWORD, offset=LONG,
        file=_obj(path=KEYWORD, device_id=KEYWORD, inode=KEYWORD, fingerprint=KEYWORD),
        origin=_obj(function=KEYWORD, file=_obj(name=KEYWORD, line=LONG)),
    ),
    "error": _obj(message=TEXT, type=KEYWORD, code=KEYWORD, stack_trace={"type": "text", "index_options": "offsets"}),
    "trace": _obj(id=KEYWORD),
    "span": _obj(id=KEYWORD),
    "transaction": _obj(id=KEYWORD),
    "process": _obj(pid=LONG, name=KEYWORD, thread=_obj(name=KEYWORD, id=LONG)),
    "http": _obj(
        request=_obj(method=KEYWORD, id=KEYWORD, bytes=LONG),
        response=_obj(status_code=LONG, bytes=LONG),
    ),
    "url": _obj(path=KEYWORD, original=KEYWORD, full=KEYWORD, query=KEYWORD),
    "user": _obj(id=KEYWORD, name=KEYWORD),
    "client": _obj(ip=IP, address=KEYWORD),
    "source": _obj(ip=IP, address=KEYWORD),
    "data_stream": _obj(dataset=KEYWORD),
}

# Strings that no explicit mapping names become keywords, never text + keyword pairs.
STRINGS_AS_KEYWORDS = {"strings_as_keywords": {"match_mapping_type": "string", "mapping": KEYWORD}}

# An application's own JSON fields are keywords whatever their JSON type: services in one daily index
# disagree (order_id 42 here, "O-42" there), and a keyword takes numbers, booleans and dates alike, so
# only an object-vs-value clash still ends in dead letters. Search treats app.* as keywords too.
APP_VALUES_AS_KEYWORDS = [
    {f"app_{kind}_as_keyword": {"path_match": "app.*", "match_mapping_type": kind, "mapping": {"type": "keyword", "ignore_above": 1024}}}
    for kind in ("string", "long", "double", "boolean", "date")
]

SYSLOG = {
    "log": _obj(
        syslog=_obj(
            priority=LONG,
            version=LONG,
            facility=_obj(code=LONG, name=KEYWORD),
            severity=_obj(code=LONG, name=KEYWORD),
            hostname=KEYWORD,
            appname=KEYWORD,
            procid=KEYWORD,
            msgid=KEYWORD,
            structured_data={"type": "flat_object"},
        )
    ),
}

APP = {
    # An application's own JSON fields, kept whole under one prefix so they never collide with ECS.
    "app": {"type": "object", "dynamic": True},
}

METRICS = {
    "metricset": _obj(name=KEYWORD, period=LONG),
    "metric": _obj(name=KEYWORD, value=DOUBLE, unit=KEYWORD),
}

BUSINESS = {
    "business": _obj(
        metric=KEYWORD,  # e.g. orders.placed, payments.approved
        count=LONG,
        window=KEYWORD,  # e.g. 1m
    ),
}

EVENTS = {
    # One schema for what changed (pang/events/schema.py): deploys, alerts, config changes, incidents.
    "pang": _obj(type=KEYWORD),  # deployment | alert | config | incident | note: the timeline's type filter
    "rule": _obj(name=KEYWORD, id=KEYWORD),
    "alert": _obj(id=KEYWORD, state=KEYWORD, severity=KEYWORD, direction=KEYWORD, expected=DOUBLE, observed=DOUBLE,
                  signal=KEYWORD, kind=KEYWORD,  # kind: steady (business signal) | errors (error rate)
                  evidence={"type": "flat_object"}),  # evidence varies by model version: never a mapping conflict
    "deployment": _obj(id=KEYWORD, phase=KEYWORD, build=KEYWORD, from_version=KEYWORD, to_version=KEYWORD),
    "incident": _obj(id=KEYWORD, severity=KEYWORD, state=KEYWORD, component=KEYWORD),
}

DEADLETTER = {
    "pang": _obj(
        deadletter=_obj(
            index=KEYWORD,  # where the document was meant to go
            id=KEYWORD,  # its deterministic _id, so a replay lands on the same one
            status=LONG,  # the HTTP status of its item in the bulk response
            replayed=DATE,
        )
    ),
}


def _settings_component() -> dict[str, Any]:
    return {
        "template": {
            "settings": {
                "index": {
                    "codec": "best_compression",
                    "number_of_shards": 1,
                    # 0 replicas on one node (green), 1 as soon as a second node exists.
                    "auto_expand_replicas": "0-1",
                    "refresh_interval": "5s",
                    "mapping": {"total_fields": {"limit": 2000}},
                    "query": {"default_field": ["message"]},
                }
            }
        },
        "version": TEMPLATE_VERSION,
        "_meta": {"managed_by": "pang"},
    }


def _ecs_component() -> dict[str, Any]:
    return {
        "template": {
            "mappings": {
                "dynamic_templates": [STRINGS_AS_KEYWORDS],
                "properties": ECS_BASE,
            }
        },
        "version": TEMPLATE_VERSION,
        "_meta": {"managed_by": "pang"},
    }


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge property trees (``log`` of ECS and ``log.syslog`` stay one object)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in out and "properties" in value and "properties" in out[key]:
                out[key] = {**out[key], "properties": _merge(out[key]["properties"], value["properties"])}
            else:
                out[key] = value
    return out


def index_templates() -> dict[str, dict[str, Any]]:
    """Index templates by name, each over the two component templates."""

    def tmpl(patterns: list[str], priority: int, properties: dict[str, Any], dynamic: list[Any] | None = None) -> dict[str, Any]:
        mappings: dict[str, Any] = {"properties": properties}
        if dynamic:
            mappings["dynamic_templates"] = dynamic
        return {
            "index_patterns": patterns,
            "priority": priority,
            "composed_of": ["pang-settings", "pang-ecs"],
            "template": {"mappings": mappings},
            "version": TEMPLATE_VERSION,
            "_meta": {"managed_by": "pang"},
        }

    # Numbers in metrics are doubles whatever the first sample looked like (3 then 3.5 must both fit).
    numbers_as_doubles = {"numbers_as_doubles": {"match_mapping_type": "long", "mapping": DOUBLE}}
    floats_as_doubles = {"floats_as_doubles": {"match_mapping_type": "double", "mapping": DOUBLE}}  # not 32-bit float
    return {
        "pang-logs-app": tmpl(["logs-app-*"], 100, APP, [*APP_VALUES_AS_KEYWORDS, STRINGS_AS_KEYWORDS]),
        "pang-logs-syslog": tmpl(["logs-syslog-*"], 100, SYSLOG),
        "pang-metrics": tmpl(["metrics-*"], 100, METRICS, [numbers_as_doubles, floats_as_doubles, STRINGS_AS_KEYWORDS]),
        "pang-metrics-business": tmpl(["metrics-business-*"], 200, BUSINESS),
        "pang-events": tmpl(["events-*"], 100, EVENTS),
        "pang-deadletter": tmpl(["deadletter-*"], 100, DEADLETTER),
        # Archived rows loaded back keep the shape of any log dataset.
        "pang-rehydrated": tmpl(["rehydrated-*"], 100, _merge(APP, SYSLOG), [*APP_VALUES_AS_KEYWORDS, STRINGS_AS_KEYWORDS]),
    }


def component_templates() -> dict[str, dict[str, Any]]:
    return {"pang-settings": _settings_component(), "pang-ecs": _ecs_component()}


def apply_templates(settings: Settings) -> list[str]:
    """PUT every component and index template (idempotent); returns the index template names."""
    from pang.indexer.client import client

    es = client(settings)
    for name, body in component_templates().items():
        es.cluster.put_component_template(name=name, body=body)
    names = []
    for name, body in index_templates().items():
        es.indices.put_index_template(name=name, body=body)
        names.append(name)
    return names
