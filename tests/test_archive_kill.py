"""SIGKILL of `pang archive run` in the middle of a multipart upload to the real S3 server.

The window's part is made big enough (random, incompressible messages) for
boto3 to upload it in several parts, and the test kills the archiver as soon
as the server lists the upload as in progress. Each trial then checks what a
user would see: no half object and no manifest for the new count; the next
`archive run` aborts the stale upload and finishes the window with exactly the
documents OpenSearch has, in one complete copy. Trials add late documents to
the window first, so every one of them re-archives a window that was already
complete (the old copy must stay readable until the new one replaces it).
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pang.archive.archiver import manifests
from pang.archive.query import query
from pang.archive.store import ensure_bucket, open_store, s3_client
from pang.indexer.client import connection
from pang.indexer.naming import index_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action
from tests.test_stack import _env

pytestmark = pytest.mark.stack

TRIALS = 6
DOCS_PER_BATCH = 4000  # ~2 KiB of random text each: a part of ~8 MB or more, so boto3 uploads it in parts


def _index_batch(settings: Settings, hour: datetime, batch: int, rng: random.Random) -> None:
    bulk = BulkClient(connection(settings))
    actions = []
    for i in range(DOCS_PER_BATCH):
        ts = hour + timedelta(seconds=rng.uniform(0, 3599.9))
        noise = base64.b64encode(rng.randbytes(1536)).decode()
        doc = {"@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "message": f"blob {noise}",
               "service": {"name": "kill-test"}, "event": {"dataset": "app"}}
        actions.append(encode_action(index_for("app", ts), f"k{batch}-{i}", orjson.dumps(doc)))
    for k in range(0, len(actions), 1000):
        result = bulk.post(actions[k : k + 1000], refresh=True)
        assert not result.rejected and not result.retry


def test_kill_during_multipart_upload_leaves_no_partial_object_and_next_run_completes(stack_settings: Settings, unique: str) -> None:
    n = int(unique[:6], 16)
    first_hour = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=n % 700, hours=n % 20)
    ensure_bucket(stack_settings)
    prefix = f"kill-{unique}"
    settings = stack_settings.model_copy(update={"archive_url": f"s3://{stack_settings.s3_bucket}/{prefix}"})
    env = {**_env(stack_settings), "PANG_ARCHIVE_URL": settings.archive_url, "PANG_ARCHIVE_GRACE_SECONDS": "0"}
    cli = [sys.executable, "-m", "pang.cli", "archive", "run"]
    s3 = s3_client(settings)
    store = open_store(settings)
    rng = random.Random(n)
    killed_mid_upload = 0
    expected: dict[datetime, int] = {}
    for trial in range(TRIALS):
        # two trials per hour: the first archives a new window, the second re-archives it after late documents
        hour = first_hour + timedelta(hours=trial // 2)
        argv = [*cli, "--from", hour.isoformat(), "--to", (hour + timedelta(hours=1)).isoformat()]
        _index_batch(settings, hour, trial, rng)
        before = expected.get(hour, 0)
        expected[hour] = before + DOCS_PER_BATCH
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(0, 0.01)  # how long after the upload shows up: early or late in it
        seen = None
        while proc.poll() is None:
            uploads = s3.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=prefix).get("Uploads", [])
            if uploads:
                seen = seen or time.monotonic()
                if time.monotonic() - seen >= delay:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.002)
        code = proc.wait(60)
        if code == -signal.SIGKILL:
            killed_mid_upload += 1
            # What a reader sees now: the previous complete copy (or nothing), never the new half.
            done = {w.start: m["rows"] for w, m in manifests(store).items()}
            assert done.get(hour, 0) == before, done
            parts = [k for k, _ in store.list() if k.endswith(".parquet") and f"dt={hour:%Y-%m-%d}/hour={hour:%H}/" in k]
            assert len(parts) == (1 if before else 0), parts
        else:
            assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else code
        # the next run (not killed) finishes the window with one complete copy
        rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert s3.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=prefix).get("Uploads", []) == []
        assert {w.start: m["rows"] for w, m in manifests(store).items()} == expected
        parts = [k for k, _ in store.list() if k.endswith(".parquet")]
        assert len(parts) == len(expected), parts
        _, rows = query(settings, f"SELECT count(*), count(DISTINCT _id) FROM logs WHERE dt = '{hour:%Y-%m-%d}' AND hour = {hour.hour}")
        assert rows[0] == (expected[hour], expected[hour])
    print(f"{killed_mid_upload} of {TRIALS} kills landed during a multipart upload")
    assert killed_mid_upload >= TRIALS // 3, f"only {killed_mid_upload} of {TRIALS} kills landed during an upload"
