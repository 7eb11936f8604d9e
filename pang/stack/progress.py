"""Progress for long steps (downloads, builds, waiting for health).

On a terminal a rich spinner shows the step, its elapsed time and a live
detail (artifacts downloaded, packages compiled). Without a terminal (CI,
logs) it prints one line when a step starts and a heartbeat every 30 s, so a
slow cold build is visibly alive without flooding the log.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from pang.stack.process import StackError

_console = Console(stderr=True, highlight=False)


class Step:
    """A running step; :meth:`detail` updates what the spinner or heartbeat says."""

    def __init__(self, label: str, status: object | None) -> None:
        self.label = label
        self._status = status
        self._start = time.monotonic()
        self._last_beat = self._start
        self._detail = ""

    def detail(self, text: str) -> None:
        self._detail = text
        elapsed = time.monotonic() - self._start
        if self._status is not None:
            self._status.update(f"{self.label} [dim]{elapsed:4.0f}s {text}[/]")  # type: ignore[attr-defined]
        elif time.monotonic() - self._last_beat >= 30:
            self._last_beat = time.monotonic()
            print(f"pang:   ... {self.label}: {elapsed:.0f}s {text}", file=sys.stderr, flush=True)


def quiet() -> bool:
    return os.environ.get("PANG_QUIET", "") not in ("", "0")


@contextmanager
def step(label: str) -> Iterator[Step]:
    """Announce a step; print how long it took when it ends."""
    start = time.monotonic()
    if quiet():
        yield Step(label, None)
        return
    if _console.is_terminal:
        with _console.status(label) as status:
            yield Step(label, status)
    else:
        print(f"pang: {label} ...", file=sys.stderr, flush=True)
        yield Step(label, None)
    took = time.monotonic() - start
    if _console.is_terminal:
        _console.print(f"[green]✓[/] {label} ({took:.1f}s)")
    else:
        print(f"pang: {label}: done in {took:.1f}s", file=sys.stderr, flush=True)


def info(text: str) -> None:
    if not quiet():
        _console.print(text)


def run_build(
    argv: Sequence[str],
    label: str,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    count: str | None = None,
    noun: str = "lines",
) -> None:
    """Run a build command, streaming its output into the progress detail.

    ``count`` is a regex; matching output lines are counted and shown
    (e.g. Maven's "Downloaded from"). On failure the last 40 lines are in the error.
    """
    pattern = re.compile(count) if count else None
    recent: collections.deque[str] = collections.deque(maxlen=40)
    matched = 0
    with step(label) as s:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise StackError(f"{label}: cannot run {argv[0]}: {exc.strerror}") from None
        assert proc.stdout is not None
        for line in proc.stdout:
            recent.append(line.rstrip())
            if pattern and pattern.search(line):
                matched += 1
            s.detail(f"{matched} {noun}" if pattern else line.strip()[:60])
        code = proc.wait()
    if code != 0:
        joined = "\n".join(recent)
        raise StackError(f"{label} failed (exit {code}); last output:\n{joined}")
