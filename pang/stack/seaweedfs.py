"""The local S3-compatible server: SeaweedFS ``weed mini`` (Apache-2.0), built once from the Go module proxy.

``go install module@version`` is refused for SeaweedFS because its go.mod has
a replace directive, so the module is downloaded into the module cache,
copied out (the cache is read-only) and built with ``go build``. The binary
is cached per version under ``<cache_dir>/seaweedfs/<version>/weed``; later
starts need no Go at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from pang.settings import Settings, mask_userinfo
from pang.stack.process import ManagedProcess, PortSpec, StackError, check_ports
from pang.stack.progress import run_build, step

MODULE = "github.com/seaweedfs/seaweedfs"
NAME = "SeaweedFS"
# Pinned so every machine runs the same server; it reports itself as 4.53.
VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
DISPLAY_VERSION = "4.53 (" + VERSION + ")"
GRPC_OFFSET = 10000  # weed binds each service's gRPC port at its port + 10000


def binary_path(settings: Settings) -> Path:
    return settings.cache_dir / "seaweedfs" / VERSION / "weed"


def ensure_binary(settings: Settings) -> Path:
    """The cached ``weed`` binary, building it first if this version was never built here."""
    target = binary_path(settings)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise StackError("SeaweedFS must be built once and no Go toolchain was found: install Go (go.dev/doc/install) or put `go` on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {"GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto")}
    with step(f"downloading SeaweedFS {VERSION} from the Go module proxy") as s:
        try:
            out = subprocess.run(
                [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"],
                capture_output=True, text=True, check=True, env={**os.environ, **env},
            ).stdout
        except subprocess.CalledProcessError as exc:
            raise StackError(f"go mod download {MODULE}@{VERSION} failed:\n{exc.stdout[-2000:]}{exc.stderr[-2000:]}") from None
        source = Path(json.loads(out)["Dir"])
        s.detail(str(source))
    with tempfile.TemporaryDirectory(prefix="pang-weed-build-", dir=target.parent) as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(source, src)
        for path in [src, *src.rglob("*")]:  # the module cache is read-only; the build writes beside it
            path.chmod(path.stat().st_mode | 0o200)
        run_build(
            [go, "build", "-v", "-o", str(Path(tmp) / "weed"), "./weed"],
            "building SeaweedFS (once per version; several minutes cold)",
            cwd=src,
            env=env,
            count=r"^\S+/\S+$",
            noun="packages compiled",
        )
        os.replace(Path(tmp) / "weed", target)
    return target


def process(settings: Settings) -> ManagedProcess:
    data = data_dir(settings)
    return ManagedProcess("seaweedfs", settings.state_dir / "stack", marker=f"-dir={data}")


def data_dir(settings: Settings) -> Path:
    return (settings.state_dir / "seaweedfs").resolve()


def ports(settings: Settings) -> list[PortSpec]:
    s3 = "PANG_S3_ENDPOINT" if settings.s3_endpoint else "PANG_S3_LOCAL_PORT"
    main = [
        PortSpec(settings.s3_port, s3),
        PortSpec(settings.seaweedfs_master_port, "PANG_SEAWEEDFS_MASTER_PORT"),
        PortSpec(settings.seaweedfs_volume_port, "PANG_SEAWEEDFS_VOLUME_PORT"),
        PortSpec(settings.seaweedfs_filer_port, "PANG_SEAWEEDFS_FILER_PORT"),
        PortSpec(settings.seaweedfs_admin_port, "PANG_SEAWEEDFS_ADMIN_PORT"),
    ]
    return main + [PortSpec(p.port + GRPC_OFFSET, p.setting + " (its gRPC port is +10000)") for p in main]


def start(settings: Settings) -> ManagedProcess:
    """Start ``weed mini`` on loopback with the archive bucket and credentials; :func:`wait` for health."""
    weed = ensure_binary(settings)
    check_ports("SeaweedFS", ports(settings))
    data = data_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(weed), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={settings.s3_port}",
        f"-master.port={settings.seaweedfs_master_port}",
        f"-volume.port={settings.seaweedfs_volume_port}",
        f"-filer.port={settings.seaweedfs_filer_port}",
        f"-admin.port={settings.seaweedfs_admin_port}",
        "-admin.port.legacy=0",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    env = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key.get_secret_value(),
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        "S3_BUCKET": settings.s3_bucket,
    }
    proc = process(settings)
    proc.start(argv, env=env, cwd=data)
    return proc


def wait(settings: Settings, proc: ManagedProcess) -> None:
    with step(f"waiting for SeaweedFS S3 on {mask_userinfo(settings.s3_effective_endpoint)}") as s:
        proc.wait_healthy(lambda: healthy(settings), settings.stack_start_timeout, lambda t: s.detail(""))


def healthy(settings: Settings) -> bool:
    """The S3 port answers HTTP at all: an anonymous request gets 403, which proves S3 is up."""
    try:
        urllib.request.urlopen(settings.s3_effective_endpoint + "/", timeout=2)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True
