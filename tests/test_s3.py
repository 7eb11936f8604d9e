"""boto3 against the real S3-compatible server that `pang stack up` runs (SeaweedFS)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pang.archive.store import ensure_bucket, s3_client
from pang.settings import Settings

pytestmark = pytest.mark.stack


@pytest.fixture
def s3(stack_settings: Settings):  # type: ignore[no-untyped-def]
    return s3_client(stack_settings)


def test_stack_created_the_archive_bucket(s3, stack_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert stack_settings.s3_bucket in names
    assert ensure_bucket(stack_settings) == stack_settings.s3_bucket  # idempotent


def test_put_get_and_list_with_prefix_and_delimiter(s3, stack_settings: Settings, unique: str) -> None:  # type: ignore[no-untyped-def]
    bucket = stack_settings.s3_bucket
    keys = [f"{unique}/dataset=app/dt=2026-11-24/hour={h:02d}/part-0.parquet" for h in (0, 1, 2)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=f"body {i}".encode())
    s3.put_object(Bucket=bucket, Key=f"{unique}-other/x", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key=keys[1])["Body"].read() == b"body 1"

    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{unique}/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(keys)  # the "-other" key is not under the prefix

    hours = s3.list_objects_v2(Bucket=bucket, Prefix=f"{unique}/dataset=app/dt=2026-11-24/", Delimiter="/")
    assert [p["Prefix"].rsplit("/", 2)[-2] for p in hours["CommonPrefixes"]] == ["hour=00", "hour=01", "hour=02"]
    assert "Contents" not in hours


def test_multipart_upload_and_abort(s3, stack_settings: Settings, unique: str) -> None:  # type: ignore[no-untyped-def]
    bucket = stack_settings.s3_bucket
    part = b"p" * (5 * 2**20)  # S3's minimum part size, except for the last part
    done_key, aborted_key = f"{unique}/complete.bin", f"{unique}/aborted.bin"

    upload = s3.create_multipart_upload(Bucket=bucket, Key=done_key)
    etags = [
        s3.upload_part(Bucket=bucket, Key=done_key, UploadId=upload["UploadId"], PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, part), (2, b"tail"))
    ]
    s3.complete_multipart_upload(
        Bucket=bucket, Key=done_key, UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert s3.head_object(Bucket=bucket, Key=done_key)["ContentLength"] == len(part) + 4

    upload = s3.create_multipart_upload(Bucket=bucket, Key=aborted_key)
    s3.upload_part(Bucket=bucket, Key=aborted_key, UploadId=upload["UploadId"], PartNumber=1, Body=part)
    s3.abort_multipart_upload(Bucket=bucket, Key=aborted_key, UploadId=upload["UploadId"])
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key=aborted_key)
    assert info.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    pending = s3.list_multipart_uploads(Bucket=bucket, Prefix=f"{unique}/").get("Uploads", [])
    assert [u for u in pending if u["Key"] == aborted_key] == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{unique}/")["Contents"]] == [done_key]


def test_conditional_put_refuses_to_overwrite(s3, stack_settings: Settings, unique: str) -> None:  # type: ignore[no-untyped-def]
    bucket, key = stack_settings.s3_bucket, f"{unique}/manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"


def test_lifecycle_configuration_round_trip(s3, stack_settings: Settings, unique: str) -> None:  # type: ignore[no-untyped-def]
    bucket = f"lc-{unique}"
    ensure_bucket(stack_settings, bucket)
    rules = [
        {
            "ID": "expire-app-logs",
            "Filter": {"Prefix": "archive/dataset=app/"},
            "Status": "Enabled",
            "Expiration": {"Days": 365},
        },
        {
            "ID": "abort-uploads",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        },
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    kept = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    # What SeaweedFS keeps of it: expiration by days under a prefix, and the multipart abort rule.
    assert kept["expire-app-logs"]["Expiration"]["Days"] == 365
    assert kept["expire-app-logs"].get("Filter", {}).get("Prefix", kept["expire-app-logs"].get("Prefix")) == "archive/dataset=app/"
    assert kept["abort-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2


def test_wrong_secret_is_refused(stack_settings: Settings) -> None:
    bad = stack_settings.model_copy(update={"s3_secret_key": type(stack_settings.s3_secret_key)("wrong")})
    with pytest.raises(ClientError) as info:
        s3_client(bad).list_buckets()
    assert info.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
