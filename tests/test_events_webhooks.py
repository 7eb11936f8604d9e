"""The CI/CD webhook mappings on recorded payloads (tests/data/webhooks/): what each tool's body becomes, and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pang.events.schema import EventError
from pang.events.webhooks import from_argocd, from_github, from_jenkins, map_webhook

DATA = Path(__file__).parent / "data" / "webhooks"
GH = {"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_github_success_maps_to_a_finished_deploy() -> None:
    (ev,) = from_github(GH, load("github_deployment_status_success.json")).events
    doc = ev.document()
    assert doc["service"]["name"] == "payment"  # repository.name, the payload names no service
    assert doc["event"]["outcome"] == "success" and doc["event"]["action"] == "deployment.success"
    assert doc["event"]["provider"] == "github"
    assert doc["@timestamp"] == "2026-11-24T09:41:12.000Z"
    assert doc["user"]["name"] == "priya-nair"
    assert doc["service"]["environment"] == "production"
    assert doc["deployment"]["id"] == "github:shop/payment:1187745042"
    assert doc["service"]["version"] == "9f2c1e4b7a0d"  # the sha, short
    assert doc["event"]["url"].startswith("https://github.com/shop/payment/actions/runs/")
    assert "main@9f2c1e4" in doc["message"]


def test_github_payload_names_service_and_version_and_states_map_to_outcomes() -> None:
    (started,) = from_github(GH, load("github_deployment_status_in_progress.json")).events
    (failed,) = from_github(GH, load("github_deployment_status_failure.json")).events
    assert started.outcome == "started" and failed.outcome == "failure"
    assert started.service == ["payment"] and started.version == "2.14.0"
    assert started.event_id() != failed.event_id()


def test_github_redelivery_and_queued_then_in_progress_are_one_document() -> None:
    body = load("github_deployment_status_in_progress.json")
    queued = json.loads(json.dumps(body))
    queued["deployment_status"].update(state="queued", id=1, updated_at="2026-11-24T09:37:58Z")
    a = from_github(GH, body).events[0].event_id()
    b = from_github(GH, body).events[0].event_id()
    c = from_github(GH, queued).events[0].event_id()
    assert a == b == c


def test_github_ping_is_ignored_and_other_events_refused_naming_the_header() -> None:
    result = from_github({"X-GitHub-Event": "ping"}, load("github_ping.json"))
    assert result.events == [] and "ping" in (result.ignored or "")
    with pytest.raises(EventError) as exc:
        from_github({"X-GitHub-Event": "push"}, load("github_ping.json"))
    assert exc.value.field == "X-GitHub-Event"
    with pytest.raises(EventError) as exc:
        from_github({}, load("github_deployment_status_success.json"))
    assert exc.value.field == "X-GitHub-Event"


@pytest.mark.parametrize(("path", "value", "field"), [
    ("deployment_status.state", None, "deployment_status.state"),
    ("deployment_status.state", "exploded", "deployment_status.state"),
    ("repository.name", None, "repository.name"),
    ("deployment.id", None, "deployment.id"),
    ("deployment.id", {"x": 1}, "deployment.id"),
    ("deployment_status.target_url", "ftp://nope", "deployment_status.target_url"),
    ("deployment_status.updated_at", "yesterday", "deployment_status.updated_at"),
])
def test_github_bad_fields_are_named(path: str, value: Any, field: str) -> None:
    body = load("github_deployment_status_success.json")
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    if path == "deployment_status.target_url":
        del body["deployment_status"]["log_url"]
    with pytest.raises(EventError) as exc:
        from_github(GH, body)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_github_inactive_is_ignored() -> None:
    body = load("github_deployment_status_success.json")
    body["deployment_status"]["state"] = "inactive"
    assert from_github(GH, body).events == []


def test_argocd_sync_phases() -> None:
    (done,) = from_argocd({}, load("argocd_sync_succeeded.json")).events
    (running,) = from_argocd({}, load("argocd_sync_running.json")).events
    (failed,) = from_argocd({}, load("argocd_sync_failed.json")).events
    doc = done.document()
    assert doc["service"]["name"] == "cart"  # the pang.service label, not the app name
    assert doc["event"]["outcome"] == "success" and doc["event"]["provider"] == "argocd"
    assert doc["@timestamp"] == "2026-11-24T10:02:49.000Z"  # finishedAt
    assert doc["user"]["name"] == "marco.rossi"
    assert doc["service"]["version"] == "4be1c0a93e2f7d8a6b5c4d3e2f1a0b9c8d7e6f5a"
    assert doc["event"]["url"] == "https://argocd.example.com/applications/checkout-cart"
    assert doc["service"]["environment"] == "shop-prod"
    assert running.outcome == "started" and running.document()["@timestamp"] == "2026-11-24T10:02:11.000Z"
    assert failed.outcome == "failure" and "is invalid" in failed.document()["message"]
    assert len({done.event_id(), running.event_id(), failed.event_id()}) == 3
    assert done.deployment_id == running.deployment_id  # one operation


def test_argocd_without_label_uses_the_app_name_and_go_template_blanks_count_as_missing() -> None:
    body = load("argocd_sync_succeeded.json")
    del body["app"]["metadata"]["labels"]
    body["argocdUrl"] = "<no value>"
    (ev,) = from_argocd({}, body).events
    assert ev.service == ["checkout-cart"] and ev.link is None
    body["app"]["status"]["operationState"]["phase"] = "<no value>"
    with pytest.raises(EventError) as exc:
        from_argocd({}, body)
    assert exc.value.field == "app.status.operationState.phase"


def test_argocd_refusals_name_the_field() -> None:
    body = load("argocd_sync_succeeded.json")
    del body["app"]["metadata"]["name"]
    with pytest.raises(EventError) as exc:
        from_argocd({}, body)
    assert exc.value.field == "app.metadata.name"
    body = load("argocd_sync_succeeded.json")
    body["app"]["status"]["operationState"]["phase"] = "Terminating"
    with pytest.raises(EventError) as exc:
        from_argocd({}, body)
    assert exc.value.field == "app.status.operationState.phase"
    body = load("argocd_sync_succeeded.json")
    del body["app"]["status"]["operationState"]["syncResult"]
    del body["app"]["status"]["operationState"]["operation"]["sync"]
    del body["app"]["status"]["sync"]["revision"]
    with pytest.raises(EventError) as exc:
        from_argocd({}, body)
    assert "revision" in (exc.value.field or "")


def test_jenkins_phases_and_completed_finalized_are_one_document() -> None:
    (started,) = from_jenkins({}, load("jenkins_started.json")).events
    (completed,) = from_jenkins({}, load("jenkins_completed_failure.json")).events
    (finalized,) = from_jenkins({}, load("jenkins_finalized_failure.json")).events
    assert started.outcome == "started" and completed.outcome == "failure"
    assert completed.event_id() == finalized.event_id() != started.event_id()
    doc = started.document()
    assert doc["service"]["name"] == "deploy-order" and doc["deployment"]["build"] == "412"
    assert doc["service"]["version"] == "5.3.1" and doc["service"]["environment"] == "production"
    assert doc["event"]["url"] == "https://jenkins.example.com/job/deploy-order/412/"
    assert doc["@timestamp"] == "2026-11-25T10:00:00.000Z"
    assert from_jenkins({}, load("jenkins_queued.json")).events == []


def test_jenkins_refusals_name_the_field() -> None:
    body = load("jenkins_completed_failure.json")
    del body["build"]["status"]
    with pytest.raises(EventError) as exc:
        from_jenkins({}, body)
    assert exc.value.field == "build.status"
    body = load("jenkins_started.json")
    body["build"]["number"] = True
    with pytest.raises(EventError) as exc:
        from_jenkins({}, body)
    assert exc.value.field == "build.number"
    with pytest.raises(EventError) as exc:
        from_jenkins({}, {"build": {"number": 1, "phase": "STARTED"}})
    assert exc.value.field == "name"
    with pytest.raises(EventError) as exc:
        map_webhook("gitlab", {}, {})
    assert exc.value.field == "provider"
    with pytest.raises(EventError):
        from_jenkins({}, ["not", "an", "object"])


def test_jenkins_timestamp_forms() -> None:
    (completed,) = from_jenkins({}, load("jenkins_completed_failure.json")).events
    assert completed.document()["@timestamp"] == "2026-11-25T10:03:04.007Z"  # ".7" is 7 ms in SimpleDateFormat's S
    body = load("jenkins_started.json")
    body["build"]["timestamp"] = "last tuesday"
    with pytest.raises(EventError) as exc:
        from_jenkins({}, body)
    assert exc.value.field == "build.timestamp"
    del body["build"]["timestamp"]
    assert from_jenkins({}, body).events[0].timestamp is None  # then: when received
