"""Background server processes that pang starts, finds again, and stops by process id.

A started server gets its own session (process group), a log file and a pid
file holding what identifies it: the pid alone is not enough, because a pid
is reused once the process is gone, and ``down`` must never signal a process
that is not ours. So the pid file also records a marker (the server's data
folder) that must appear in ``/proc/<pid>/cmdline``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A local server could not be built, started or stopped; ``str(err)`` is for a person."""


@dataclass(frozen=True)
class PortSpec:
    """A port a server binds, and the setting a user changes when it is busy."""

    port: int
    setting: str


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port`` (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(name: str, ports: Sequence[PortSpec]) -> None:
    """Fail before starting ``name`` if one of its ports is taken, naming the setting to change."""
    for spec in ports:
        if not port_is_free(spec.port):
            raise StackError(
                f"{name}: port {spec.port} on 127.0.0.1 is busy; "
                f"stop what uses it or set {spec.setting} to another port"
            )


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log, for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` from /proc, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


@dataclass
class ManagedProcess:
    """One server process under ``run_dir``: its pid file and its log."""

    name: str
    run_dir: Path
    marker: str  # a string unique to this instance that appears on its command line

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running instance, or None (a stale pid file is removed)."""
        try:
            info = json.loads(self.pid_file.read_text())
            pid = int(info["pid"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            cmdline, state = "", "X"
        if self.marker not in cmdline or state in ("Z", "X"):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start ``argv`` detached in its own session, logging to :attr:`log_file`."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- pang: starting {self.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env={**os.environ, **(env or {})},
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"{self.name}: cannot run {argv[0]}: {exc.strerror}") from None
        self._popen = proc  # keep a handle so the child is reaped, not left a zombie
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "argv": list(argv), "started": time.time()}))
        return proc.pid

    def exited(self) -> int | None:
        """Exit status if the process we started in this interpreter has ended."""
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        if popen is None:
            return None if self.pid() else -1
        return popen.poll()

    def wait_healthy(self, healthy: Callable[[], bool], timeout: float, on_tick: Callable[[float], None] | None = None) -> None:
        """Poll ``healthy`` until it holds; raise with the log's tail if the process dies or time runs out."""
        start = time.monotonic()
        while True:
            if healthy():
                return
            code = self.exited()
            if code is not None:
                self.pid_file.unlink(missing_ok=True)
                raise StackError(
                    f"{self.name} exited with status {code} during start; last lines of {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            waited = time.monotonic() - start
            if waited > timeout:
                self.stop()
                raise StackError(
                    f"{self.name} did not become healthy within {timeout:.0f} s "
                    f"(PANG_STACK_START_TIMEOUT); last lines of {self.log_file}:\n{tail(self.log_file)}"
                )
            if on_tick:
                on_tick(waited)
            time.sleep(0.25)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``; True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            self._reap()
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                self._reap()
                time.sleep(0.05)
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        return True

    def _reap(self) -> None:
        popen: subprocess.Popen[bytes] | None = getattr(self, "_popen", None)
        if popen is not None:
            popen.poll()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
