"""Where each archived window lives: deterministic names, so a re-run replaces instead of duplicating.

``dataset=<ds>/dt=YYYY-MM-DD/hour=HH/part-<n>.parquet`` (hive style: DuckDB and
pyarrow prune by ``dataset``, ``dt`` and ``hour`` without opening files) and a
``_manifest.json`` beside the parts, written last: a window without its
manifest is not archived, whatever parts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, order=True)
class Window:
    """One closed hour of one dataset."""

    dataset: str
    start: datetime  # UTC, on the hour

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)

    @property
    def prefix(self) -> str:
        return f"dataset={self.dataset}/dt={self.start:%Y-%m-%d}/hour={self.start:%H}/"

    def part(self, n: int) -> str:
        return f"{self.prefix}part-{n}.parquet"

    @property
    def manifest(self) -> str:
        return f"{self.prefix}_manifest.json"

    def __str__(self) -> str:
        return f"{self.dataset} {self.start:%Y-%m-%dT%H}:00Z"


def hour_floor(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def parse_window_key(key: str) -> Window | None:
    """The window a key belongs to, from its ``dataset=/dt=/hour=`` parts (None if not one of ours)."""
    parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    try:
        start = datetime.strptime(f"{parts['dt']} {parts['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        return Window(parts["dataset"], start)
    except (KeyError, ValueError):
        return None
