"""The archiver against the real node and the real S3 server (and the file:// default)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pang.archive.archiver import archive_window, manifests, run
from pang.archive.layout import Window
from pang.archive.query import dataset, query
from pang.archive.schema import to_documents, to_table
from pang.archive.store import ObjectStore, ensure_bucket, open_store
from pang.indexer.client import client, connection
from pang.indexer.naming import index_for
from pang.settings import Settings
from pang.shippers.sink.bulk import BulkClient, encode_action

pytestmark = pytest.mark.stack


def _docs(day: datetime, hours: int, per_hour: int, seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for h in range(hours):
        for i in range(per_hour):
            ts = day + timedelta(hours=h, seconds=rng.uniform(0, 3599.999))
            doc = {
                "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "message": f"order {i} placed in hour {h}" if i % 7 else f"payment declined for order {i}",
                "log": {"level": "ERROR" if i % 7 == 0 else "INFO", "file": {"path": "/pang/logs/app/order/app.log"}, "offset": h * 10**6 + i},
                "service": {"name": rng.choice(["order", "payment", "cart"]), "environment": "test"},
                "host": {"name": "h1"},
                "event": {"dataset": "app"},
                "trace": {"id": f"{rng.getrandbits(128):032x}"},
                "app": {"order_id": i, "customer": f"c{rng.randint(1, 50)}", "nested": {"k": [1, 2]}},
                "tags": ["pang.truncated"] if i == 3 else None,
            }
            if doc["tags"] is None:
                del doc["tags"]
            out.append((f"{seed}-{h}-{i}", doc))
    return out


def _index(settings: Settings, docs: list[tuple[str, dict]]) -> None:
    bulk = BulkClient(connection(settings))
    actions = [encode_action(index_for("app", datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00"))), i, orjson.dumps(d)) for i, d in docs]
    for k in range(0, len(actions), 5000):
        result = bulk.post(actions[k : k + 5000], refresh=True)
        assert not result.rejected and not result.retry


@pytest.fixture
def day(unique: str) -> datetime:
    """A past day of its own, so windows of other tests never mix in."""
    n = int(unique[:6], 16)
    return datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=n % 1500)


@pytest.fixture
def s3_archive(stack_settings: Settings, unique: str) -> Iterator[Settings]:
    ensure_bucket(stack_settings)
    yield stack_settings.model_copy(update={
        "s3_endpoint": stack_settings.s3_effective_endpoint,
        "archive_url": f"s3://{stack_settings.s3_bucket}/test-{unique}",
    })


def test_schema_round_trip_keeps_every_field() -> None:
    docs = _docs(datetime(2026, 1, 1, tzinfo=UTC), 1, 50, seed=1)
    table = to_table([{"_id": i, "_source": d} for i, d in docs])
    back = dict(to_documents(table))
    for doc_id, doc in docs:
        assert back[doc_id] == doc


def test_archived_hours_match_opensearch_and_rerun_writes_nothing(s3_archive: Settings, day: datetime, unique: str) -> None:
    settings = s3_archive
    docs = _docs(day, hours=3, per_hour=1500, seed=int(unique[:6], 16))
    _index(settings, docs)
    first = run(settings, start=day, end=day + timedelta(days=1), datasets=["app"])
    assert [(str(w.window), w.rows) for w in first.archived] == [
        (str(Window("app", day + timedelta(hours=h))), 1500) for h in range(3)
    ]
    store = open_store(settings)
    found = manifests(store)
    assert {w.start.hour: m["rows"] for w, m in found.items()} == {0: 1500, 1: 1500, 2: 1500}

    # One hour, field for field against OpenSearch.
    window = Window("app", day + timedelta(hours=1))
    fs, root = store.arrow()
    table = pq.read_table(f"{root}/{window.part(0)}", filesystem=fs)
    times = table.column("@timestamp").to_pylist()
    assert times == sorted(times)  # sorted by time, for pruning inside the file
    archived = dict(to_documents(table))
    expected = {i: d for i, d in docs if i.split("-")[1] == "1"}
    assert archived.keys() == expected.keys()
    for doc_id in random.Random(0).sample(sorted(expected), 100):
        assert archived[doc_id] == expected[doc_id]

    before = {k: s for k, s in store.list()}
    second = run(settings, start=day, end=day + timedelta(days=1), datasets=["app"])
    assert second.archived == [] and second.skipped == 3
    assert {k: s for k, s in store.list()} == before


def test_late_documents_trigger_a_rearchive(s3_archive: Settings, day: datetime, unique: str) -> None:
    settings = s3_archive
    docs = _docs(day, hours=1, per_hour=500, seed=7)
    _index(settings, docs)
    run(settings, start=day, end=day + timedelta(hours=1), datasets=["app"])
    late = [(f"late-{i}", {**d, "message": f"late {i}"}) for i, (_, d) in enumerate(_docs(day, 1, 20, seed=8))]
    _index(settings, late)
    again = run(settings, start=day, end=day + timedelta(hours=1), datasets=["app"])
    assert [w.rows for w in again.archived] == [520]
    store = open_store(settings)
    (manifest,) = manifests(store).values()
    assert manifest["rows"] == 520
    parquet_keys = [k for k, _ in store.list() if k.endswith(".parquet")]
    assert len(parquet_keys) == 1  # replaced, not added


class _Crash(RuntimeError):
    pass


class _CrashAfterParts(ObjectStore):
    """The real store, but the process 'dies' right after the parts, before the manifest."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url

    def put_file(self, key: str, path: Path) -> None:
        self.inner.put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        raise _Crash(key)

    def list(self, prefix: str = "") -> list[tuple[str, int]]:
        return self.inner.list(prefix)

    def delete(self, keys: list[str]) -> None:
        self.inner.delete(keys)


def test_a_crash_before_the_manifest_is_redone_by_the_next_run(s3_archive: Settings, day: datetime) -> None:
    settings = s3_archive
    _index(settings, _docs(day, hours=1, per_hour=300, seed=9))
    store = open_store(settings)
    with pytest.raises(_Crash):
        archive_window(settings, _CrashAfterParts(store), Window("app", day))
    assert manifests(store) == {}  # not archived, whatever parts exist
    result = run(settings, start=day, end=day + timedelta(hours=1), datasets=["app"])
    assert [w.rows for w in result.archived] == [300]
    assert len([k for k, _ in store.list() if k.endswith(".parquet")]) == 1


def test_query_prunes_partitions(s3_archive: Settings, day: datetime) -> None:
    settings = s3_archive
    _index(settings, _docs(day, hours=4, per_hour=200, seed=11))
    run(settings, start=day, end=day + timedelta(days=1), datasets=["app"])
    dt = f"{day:%Y-%m-%d}"
    names, rows = query(settings, f"SELECT hour, count(*) AS n FROM logs WHERE dataset = 'app' AND dt = '{dt}' GROUP BY hour ORDER BY hour")
    assert names == ["hour", "n"] and rows == [(0, 200), (1, 200), (2, 200), (3, 200)]
    _, rows = query(settings, f"SELECT service.name, log.level, count(*) FROM logs WHERE dt = '{dt}' AND hour = 2 GROUP BY ALL")
    assert sum(r[2] for r in rows) == 200
    # The same filter, on the dataset DuckDB reads: only the asked hour's file is opened.
    ds = dataset(settings)
    chosen = list(ds.get_fragments(filter=(pads.field("dt") == dt) & (pads.field("hour") == 2)))
    assert len(chosen) == 1 and "hour=02/" in chosen[0].path
    assert len(list(ds.get_fragments())) == 4


def test_file_archive_is_the_default_without_s3(stack_settings: Settings, day: datetime, tmp_path: Path) -> None:
    settings = stack_settings.model_copy(update={"s3_endpoint": None, "archive_url": None, "state_dir": tmp_path})
    assert settings.archive.startswith("file://")
    _index(settings, _docs(day + timedelta(days=1), hours=1, per_hour=100, seed=12))
    result = run(settings, start=day + timedelta(days=1), end=day + timedelta(days=2), datasets=["app"])
    assert [w.rows for w in result.archived] == [100]
    assert list((tmp_path / "archive").rglob("*.parquet"))
    _, rows = query(settings, "SELECT count(*) FROM logs")
    assert rows == [(100,)]


def test_rehydrate_brings_back_exactly_the_asked_rows(s3_archive: Settings, day: datetime) -> None:
    from pang.archive.rehydrate import rehydrate
    from tests.agent_util import all_docs

    settings = s3_archive
    docs = _docs(day, hours=3, per_hour=300, seed=13)
    _index(settings, docs)
    run(settings, start=day, end=day + timedelta(days=1), datasets=["app"])
    start, end = day + timedelta(hours=1, minutes=30), day + timedelta(hours=2, minutes=30)
    n = rehydrate(settings, start, end, where="service.name = 'payment'")
    wanted = {
        i: d for i, d in docs
        if start <= datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")) < end and d["service"]["name"] == "payment"
    }
    index = f"rehydrated-{day:%Y.%m.%d}"
    back = {d.pop("_id"): d for d in all_docs(settings, index)}
    assert n == len(wanted) == len(back) > 0
    for doc_id, doc in back.items():
        for meta in ("_version", "_index"):
            doc.pop(meta)
        assert doc == wanted[doc_id]
    assert rehydrate(settings, start, end, where="service.name = 'payment'") == n  # again: same ids, no copies
    assert len(all_docs(settings, index)) == n


def test_retention_refuses_an_index_with_unarchived_hours(s3_archive: Settings, day: datetime) -> None:
    from pang.archive.archiver import archived_check
    from pang.indexer.retention import retention

    settings = s3_archive
    _index(settings, _docs(day, hours=3, per_hour=50, seed=14))
    index = f"logs-app-{day:%Y.%m.%d}"
    # Only the first two hours are archived: the index must stay.
    run(settings, start=day, end=day + timedelta(hours=2), datasets=["app"])
    first = retention(settings, archived_check(settings), older_than_days=30, datasets=["app"])
    assert index in first.refused and first.refused[index] == [f"{day:%Y-%m-%d}T02:00Z"]
    assert client(settings).indices.exists(index=index)
    run(settings, start=day, end=day + timedelta(days=1), datasets=["app"])
    second = retention(settings, archived_check(settings), older_than_days=30, datasets=["app"])
    assert index in second.deleted
    assert not client(settings).indices.exists(index=index)


def test_lifecycle_rules_set_and_read_back_on_the_real_server(s3_archive: Settings) -> None:
    from pang.archive.lifecycle import LifecycleError, apply, show
    from pang.settings import LifecycleRule

    settings = s3_archive.model_copy(update={"archive_lifecycle": [
        LifecycleRule(id="app-1y", prefix="dataset=app/", expire_days=365),
        LifecycleRule(id="uploads", abort_multipart_days=2),
    ]})
    store = open_store(settings)
    store.s3.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={"Rules": [
        {"ID": "someone-elses", "Filter": {"Prefix": "other/"}, "Status": "Enabled", "Expiration": {"Days": 9}},
    ]})
    apply(settings, store)
    rules = {r["ID"]: r for r in show(store)}
    assert rules["pang-app-1y"]["Expiration"]["Days"] == 365
    assert rules["pang-app-1y"]["Filter"]["Prefix"] == store.prefix + "dataset=app/"
    assert rules["pang-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2
    assert "someone-elses" in rules  # not pang's: kept
    with pytest.raises(LifecycleError, match="transitions"):
        apply(settings.model_copy(update={"archive_lifecycle": [
            LifecycleRule(id="cold", transition_days=30, storage_class="GLACIER"),
        ]}), store)


def test_expiration_on_the_file_archive(stack_settings: Settings, day: datetime, tmp_path: Path) -> None:
    from pang.archive.lifecycle import expire_local
    from pang.settings import LifecycleRule

    settings = stack_settings.model_copy(update={
        "s3_endpoint": None, "archive_url": (tmp_path / "arch").as_uri(),
        "archive_lifecycle": [LifecycleRule(id="app-30d", prefix="dataset=app/", expire_days=30)],
    })
    _index(settings, _docs(day + timedelta(days=2), hours=2, per_hour=10, seed=15))
    run(settings, start=day + timedelta(days=2), end=day + timedelta(days=3), datasets=["app"])
    store = open_store(settings)
    assert len(manifests(store)) == 2
    # 30 days after the first window ended, only that one is past its rule.
    first_end = day + timedelta(days=2, hours=1)
    assert expire_local(settings, store, now=first_end + timedelta(days=30, minutes=30)) == 1
    assert [w.start.hour for w in manifests(store)] == [1]
    assert not list((tmp_path / "arch").rglob("hour=00/*"))


def test_business_rollups_are_archived_like_logs(s3_archive: Settings, day: datetime, unique: str) -> None:
    """The steady state's per-minute rollups (long retention) go to the archive's dataset=business, exactly."""
    from pang.steady.rollups import write_rollups

    hour = day + timedelta(hours=7)
    series = {f"orders{unique}": {hour + timedelta(minutes=m): 100 + m for m in range(60)},
              f"payments{unique}": {hour + timedelta(minutes=m): 90 + m for m in range(60)}}
    write_rollups(s3_archive, series)
    result = run(s3_archive, start=hour, end=hour + timedelta(hours=1), grace=timedelta(0))
    assert any(w.window.dataset == "business" and w.rows == 120 for w in result.archived)
    _, rows = query(s3_archive, "SELECT extra->>'$.business.metric' AS metric, sum(CAST(extra->>'$.business.count' AS BIGINT)) "
                                f"FROM logs WHERE dataset = 'business' "
                                f"AND dt = '{hour:%Y-%m-%d}' AND hour = 7 GROUP BY ALL ORDER BY 1")
    assert rows == [(f"orders{unique}", sum(100 + m for m in range(60))), (f"payments{unique}", sum(90 + m for m in range(60)))]
