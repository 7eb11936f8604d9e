"""The object store behind the archive: an S3-compatible server through boto3, or a local folder.

Only this module builds S3 clients, so endpoint, credentials, path-style
addressing and TLS verification are decided once.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pyarrow.fs as pafs
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


# --- the archive's object store: s3:// or file:// behind one small interface -----------------


class ObjectStore:
    """Keys under the archive root. Writes are atomic: an object is visible complete or not at all."""

    url: str

    def put_file(self, key: str, path: Path) -> None:
        raise NotImplementedError

    def put_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes | None:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, sorted by key."""
        raise NotImplementedError

    def delete(self, keys: list[str]) -> None:
        raise NotImplementedError

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root path in it, for reading with pyarrow and DuckDB."""
        raise NotImplementedError


class FileStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the archive")
        return path

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str = "") -> list[tuple[str, int]]:
        base = self.root
        if not base.exists():
            return []
        out = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    out.append((key, path.stat().st_size))
        return sorted(out)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        return pafs.LocalFileSystem(), str(self.root)


class S3Store(ObjectStore):
    def __init__(self, settings: Settings, bucket: str, prefix: str) -> None:
        self.settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.s3 = s3_client(settings)

    def put_file(self, key: str, path: Path) -> None:
        # upload_file switches to multipart for large files and aborts the upload if it fails,
        # so a partial object never becomes visible.
        self.s3.upload_file(str(path), self.bucket, self.prefix + key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def list(self, prefix: str = "") -> list[tuple[str, int]]:
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                out.append((obj["Key"][len(self.prefix):], obj["Size"]))
        return sorted(out)

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": self.prefix + k} for k in keys[i : i + 1000]]
            if chunk:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})

    def abort_stale_uploads(self) -> int:
        """Abort multipart uploads left by a crashed run (they are invisible, but hold space)."""
        n = 0
        for up in self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
            n += 1
        return n

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        endpoint = urlsplit(self.settings.s3_effective_endpoint)
        fs = pafs.S3FileSystem(
            access_key=self.settings.s3_access_key.get_secret_value(),
            secret_key=self.settings.s3_secret_key.get_secret_value(),
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme,
            region=self.settings.s3_region,
            allow_bucket_creation=False,
            # the same CA bundle boto3 verifies with (pyarrow has no switch to turn verification off)
            tls_ca_file_path=str(self.settings.s3_ca_bundle) if self.settings.s3_ca_bundle else None,
        )
        return fs, f"{self.bucket}/{self.prefix}".rstrip("/")


def open_store(settings: Settings, url: str | None = None) -> ObjectStore:
    """The archive named by ``url`` (default: the settings' archive)."""
    url = url or settings.archive
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FileStore(Path(parts.path))
    if parts.scheme == "s3":
        return S3Store(settings, parts.netloc, parts.path)
    raise ValueError(f"archive URL {url!r}: expected s3://bucket/prefix or file:///path")
