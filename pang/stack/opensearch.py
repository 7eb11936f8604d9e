"""The local OpenSearch node: 2.19.6 from Maven Central jars, run by the small Java main in docker/opensearch-launcher.

Where no Docker engine runs there is no official image to start, and the
distribution tarball is not on a package registry; the server and its
plugins are on Maven Central. Maven resolves them once into
``<cache_dir>/opensearch-launcher/<version>-<source hash>/lib``; the hash of the
launcher's sources makes an edited launcher rebuild, and a fresh checkout on a
machine that built it once starts in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from pang.settings import Settings
from pang.stack.process import ManagedProcess, PortSpec, StackError, check_ports
from pang.stack.progress import run_build, step

NAME = "OpenSearch"
VERSION = "2.19.6"
LAUNCHER_MAIN = "dev.pang.opensearch.Launcher"
SOURCE_DIR = Path(__file__).resolve().parents[2] / "docker" / "opensearch-launcher"


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCE_DIR.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(SOURCE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def launcher_dir(settings: Settings) -> Path:
    return settings.cache_dir / "opensearch-launcher" / f"{VERSION}-{_source_hash()}"


def ensure_launcher(settings: Settings) -> Path:
    """The folder holding the launcher jar and its runtime jars, built with Maven if missing."""
    if not (SOURCE_DIR / "pom.xml").is_file():
        raise StackError(f"the OpenSearch launcher sources are missing at {SOURCE_DIR}; run pang from its checkout")
    target = launcher_dir(settings)
    if (target / "READY").is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed once to fetch OpenSearch's jars: apt-get install maven")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pang-os-build-", dir=target.parent) as tmp:
        build = Path(tmp) / "build"
        shutil.copytree(SOURCE_DIR, build, ignore=shutil.ignore_patterns("target"))
        # -B keeps Maven's "Downloaded from" lines (counted for progress) and drops its progress bars.
        argv = [mvn, "-B", "package", "dependency:copy-dependencies",
                f"-DoutputDirectory={build / 'dist' / 'lib'}", "-DincludeScope=runtime"]
        if settings.maven_repo_local:
            argv.append(f"-Dmaven.repo.local={settings.maven_repo_local}")
        run_build(argv, f"fetching OpenSearch {VERSION} from Maven Central and building its launcher",
                  cwd=build, count=r"Downloaded from", noun="artifacts downloaded")
        jars = list((build / "target").glob("opensearch-launcher-*.jar"))
        if len(jars) != 1:
            raise StackError(f"the launcher build produced {len(jars)} jars in {build / 'target'}, expected 1")
        shutil.copy2(jars[0], build / "dist" / "lib" / jars[0].name)
        (build / "dist" / "READY").write_text(VERSION)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(build / "dist", target)
    return target


def home_dir(settings: Settings) -> Path:
    return (settings.state_dir / "opensearch").resolve()


def process(settings: Settings) -> ManagedProcess:
    return ManagedProcess("opensearch", settings.state_dir / "stack", marker=f"-Epath.home={home_dir(settings)}")


def ports(settings: Settings) -> list[PortSpec]:
    return [
        PortSpec(settings.opensearch_port, "PANG_OPENSEARCH_URL"),
        PortSpec(settings.opensearch_transport_port, "PANG_OPENSEARCH_TRANSPORT_PORT"),
    ]


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if java is None:
        raise StackError("Java 17 or newer is needed for the local OpenSearch node: apt-get install openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < 17:
        raise StackError(f"the local OpenSearch node needs Java 17 or newer; {java} says: {out.splitlines()[0] if out else '?'}")
    return java


def start(settings: Settings, extra: Sequence[str] = ()) -> ManagedProcess:
    """Start the node on 127.0.0.1 with data and logs under the state folder; :func:`wait` for health."""
    java = _java()
    lib = ensure_launcher(settings) / "lib"
    check_ports("OpenSearch", ports(settings))
    home = home_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    argv = [
        java, f"-Xms{settings.opensearch_heap}", f"-Xmx{settings.opensearch_heap}",
        "-XX:+UseG1GC", "-Djava.locale.providers=SPI,COMPAT", "-Dfile.encoding=UTF-8",
        "-XX:+HeapDumpOnOutOfMemoryError", f"-XX:HeapDumpPath={home / 'logs'}",
        "-cp", f"{lib}/*", LAUNCHER_MAIN,
        f"-Epath.home={home}",
        f"-Epath.data={home / 'data'}",
        f"-Epath.logs={home / 'logs'}",
        f"-Ehttp.port={settings.opensearch_port}",
        f"-Etransport.port={settings.opensearch_transport_port}",
        *extra,  # more -Ekey=value node settings (tests start a node with a tiny write queue)
    ]
    proc = process(settings)
    proc.start(argv, cwd=home)
    return proc


def wait(settings: Settings, proc: ManagedProcess) -> None:
    with step(f"waiting for OpenSearch on {settings.display_opensearch_url}") as s:
        proc.wait_healthy(lambda: health(settings) is not None, settings.stack_start_timeout, lambda t: s.detail(""))


def _get(settings: Settings, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(settings.opensearch_url + path, timeout=2) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def health(settings: Settings) -> str | None:
    """Cluster health colour of the local node (green/yellow), or None if it does not answer yet."""
    body = _get(settings, "/_cluster/health")
    status = body.get("status") if body else None
    return status if status in ("green", "yellow") else None


def version(settings: Settings) -> str | None:
    body = _get(settings, "/")
    return body.get("version", {}).get("number") if body else None
