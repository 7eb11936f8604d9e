"""The local stack: one OpenSearch node and one S3-compatible server on loopback.

``up`` starts what settings do not point elsewhere (a non-loopback
``PANG_OPENSEARCH_URL`` or ``PANG_S3_ENDPOINT`` means "use that one"), waits
for health, creates the archive bucket and applies the index templates. It is
idempotent: running servers of this state folder are kept. ``down`` stops only
processes whose pid file and command line say they are ours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from pang.settings import Settings, mask_userinfo
from pang.stack import opensearch, seaweedfs
from pang.stack.process import ManagedProcess, StackError, rss_bytes
from pang.stack.progress import info, step

__all__ = ["ServiceStatus", "StackError", "build", "down", "status", "up"]


@dataclass(frozen=True)
class ServiceStatus:
    """What `pang stack status` reports for one service."""

    name: str
    url: str
    managed: bool  # started by this state folder's stack (False: configured elsewhere)
    healthy: bool
    version: str | None
    pid: int | None
    rss_bytes: int | None
    data_dir: str | None
    log_file: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def build(settings: Settings) -> dict[str, Path]:
    """Build the local servers this configuration runs (cached per version); returns their locations."""
    built: dict[str, Path] = {}
    if settings.opensearch_is_local:
        built["OpenSearch launcher"] = opensearch.ensure_launcher(settings)
    if settings.s3_is_local:
        built["SeaweedFS"] = seaweedfs.ensure_binary(settings)
    return built


def up(settings: Settings) -> list[ServiceStatus]:
    """Start (or keep) the local servers, then create the bucket and the index templates."""
    from pang.archive.store import ensure_bucket
    from pang.indexer.templates import apply_templates

    local = [m for m, on in ((opensearch, settings.opensearch_is_local), (seaweedfs, settings.s3_is_local)) if on]
    started: list[tuple[ManagedProcess, ModuleType]] = []
    try:
        for module in local:
            proc = module.process(settings)
            if proc.pid() is None:
                started.append((module.start(settings), module))
            else:
                info(f"{module.NAME} already running (pid {proc.pid()})")
        # Started together, awaited in turn: the node's ~10 s start hides the S3 server's.
        for proc, module in started:
            module.wait(settings, proc)
        if settings.s3_is_local or settings.s3_endpoint:
            with step(f"creating bucket {settings.s3_bucket}"):
                ensure_bucket(settings)
        with step("applying index templates"):
            apply_templates(settings)
    except BaseException:
        for proc, _ in started:
            proc.stop()
        raise
    return status(settings)


def down(settings: Settings) -> list[str]:
    """Stop the servers this state folder started; returns the names of those stopped."""
    stopped = []
    for module in (seaweedfs, opensearch):
        if module.process(settings).stop():
            stopped.append(module.NAME)
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Versions, health, URLs, pids and data folders of both services."""
    os_proc = opensearch.process(settings)
    os_pid = os_proc.pid()
    os_version = opensearch.version(settings) if settings.opensearch_is_local else _remote_version(settings)
    s3_proc = seaweedfs.process(settings)
    s3_pid = s3_proc.pid()
    return [
        ServiceStatus(
            name="opensearch",
            url=settings.display_opensearch_url,
            managed=settings.opensearch_is_local,
            healthy=(opensearch.health(settings) is not None) if settings.opensearch_is_local else os_version is not None,
            version=os_version,
            pid=os_pid,
            rss_bytes=rss_bytes(os_pid) if os_pid else None,
            data_dir=str(opensearch.home_dir(settings)) if settings.opensearch_is_local else None,
            log_file=_log(os_proc) if settings.opensearch_is_local else None,
        ),
        ServiceStatus(
            name="s3",
            url=mask_userinfo(settings.s3_effective_endpoint),
            managed=settings.s3_is_local,
            healthy=seaweedfs.healthy(settings),
            version=seaweedfs.DISPLAY_VERSION if settings.s3_is_local else None,
            pid=s3_pid,
            rss_bytes=rss_bytes(s3_pid) if s3_pid else None,
            data_dir=str(seaweedfs.data_dir(settings)) if settings.s3_is_local else None,
            log_file=_log(s3_proc) if settings.s3_is_local else None,
        ),
    ]


def _log(proc: ManagedProcess) -> str | None:
    return str(proc.log_file) if Path(proc.log_file).exists() else None


def _remote_version(settings: Settings) -> str | None:
    from pang.indexer.client import client

    try:
        return str(client(settings).info()["version"]["number"])
    except Exception:
        return None
