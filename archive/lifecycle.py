"""Lifecycle rules for the archive: expiration (and transition where the server has it) per prefix.

Rules come from settings (``PANG_ARCHIVE_LIFECYCLE``, a JSON list) and are
checked here before anything is sent, because S3-compatible servers differ:
SeaweedFS keeps ``Expiration.Days`` under a prefix and the multipart abort,
answers 501 to transitions, and accepts some rules AWS would reject. On S3,
``apply`` merges pang's rules (ids ``pang-*``) into the bucket's existing
configuration; on a ``file://`` archive, :func:`expire_local` applies
expiration itself on every ``pang archive run``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pang.archive.layout import parse_window_key
from pang.archive.store import FileStore, ObjectStore, S3Store
from pang.settings import LifecycleRule, Settings, mask_userinfo


class LifecycleError(ValueError):
    pass


def s3_rules(rules: list[LifecycleRule], base_prefix: str) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        body: dict[str, Any] = {"ID": f"pang-{rule.id}", "Status": "Enabled", "Filter": {"Prefix": base_prefix + rule.prefix}}
        if rule.expire_days:
            body["Expiration"] = {"Days": rule.expire_days}
        if rule.transition_days:
            body["Transitions"] = [{"Days": rule.transition_days, "StorageClass": rule.storage_class}]
        if rule.abort_multipart_days:
            body["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": rule.abort_multipart_days}
        out.append(body)
    return out


def apply(settings: Settings, store: ObjectStore) -> list[dict[str, Any]]:
    """Put pang's rules on the bucket, keeping rules that are not pang's; returns what the bucket now holds."""
    rules = settings.archive_lifecycle
    if not isinstance(store, S3Store):
        return [r.model_dump() for r in rules]  # file://: applied by `archive run` itself
    try:
        existing = store.s3.get_bucket_lifecycle_configuration(Bucket=store.bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchLifecycleConfiguration", "404"):
            raise
        existing = []
    merged = [r for r in existing if not str(r.get("ID", "")).startswith("pang-")] + s3_rules(rules, store.prefix)
    try:
        if merged:
            store.s3.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={"Rules": merged})
        else:
            store.s3.delete_bucket_lifecycle(Bucket=store.bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NotImplemented":
            raise LifecycleError(
                f"the S3 server at {mask_userinfo(settings.s3_effective_endpoint)} does not implement part of these rules "
                "(SeaweedFS has no storage-class transitions); remove transition_days"
            ) from None
        raise LifecycleError(f"the bucket refused the lifecycle rules: {code}: {exc.response.get('Error', {}).get('Message', '')}") from None
    return show(store)


def show(store: ObjectStore) -> list[dict[str, Any]]:
    if not isinstance(store, S3Store):
        return []
    try:
        return list(store.s3.get_bucket_lifecycle_configuration(Bucket=store.bucket).get("Rules", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchLifecycleConfiguration", "404"):
            return []
        raise


def expire_local(settings: Settings, store: ObjectStore, now: datetime | None = None) -> int:
    """On a file:// archive, delete windows older than their rule's expiration; returns windows removed."""
    if not isinstance(store, FileStore):
        return 0
    now = now or datetime.now(UTC)
    removed = 0
    keys = store.list()
    windows: dict[str, list[str]] = {}
    for key, _ in keys:
        window = parse_window_key(key)
        if window:
            windows.setdefault(window.prefix, []).append(key)
    for rule in settings.archive_lifecycle:
        if not rule.expire_days:
            continue
        for prefix, members in windows.items():
            window = parse_window_key(members[0])
            if prefix.startswith(rule.prefix) and window and window.end + timedelta(days=rule.expire_days) <= now:
                # the manifest first: a window without one is "not archived", never half there
                store.delete(sorted(members, key=lambda k: not k.endswith("_manifest.json")))
                removed += 1
    return removed
