"""The object store behind the archive: an S3-compatible server through boto3, or a local folder.

Only this module builds S3 clients, so endpoint, credentials, path-style
addressing and TLS verification are decided once.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from pang.settings import Settings


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured (or local) S3-compatible endpoint."""
    verify: bool | str = str(settings.s3_ca_bundle) if settings.s3_ca_bundle else settings.s3_verify
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_effective_endpoint,
        aws_access_key_id=settings.s3_access_key.get_secret_value(),
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        verify=verify,
        config=Config(
            s3={"addressing_style": "path"},  # SeaweedFS, Ceph and most self-hosted servers want path style
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def ensure_bucket(settings: Settings, bucket: str | None = None) -> str:
    """Create the bucket if it does not exist yet (idempotent); returns its name."""
    name = bucket or settings.s3_bucket
    s3 = s3_client(settings)
    try:
        s3.head_bucket(Bucket=name)
        return name
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    return name
