"""Which log events count as which business signal: configuration, not code.

A *count* signal is the number of log events per minute whose ``event.action``
is the signal's action (``orders`` = ``order.placed``). A *ratio* signal is one
count divided by another (``payment_failure_ratio`` =
``payment_failures / payments``); it has no events of its own, so rollups keep
its two counts and compute the ratio from them.

The settings say which signals exist (``steady_signals``: name -> action,
``steady_ratios``: name -> ``"numerator/denominator"``); :func:`signals_from`
turns them into checked :class:`Signal` objects, and refuses a ratio that names
a signal that does not exist, with a sentence a person understands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_SIGNALS", "Signal", "SignalError", "parse_signals", "signals_from"]

DEFAULT_SIGNALS: dict[str, str] = {
    "orders": "order.placed",
    "payments": "payment.approved",
    "payment_failures": "payment.failed",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SignalError(ValueError):
    """The signal configuration cannot be used; ``str(err)`` is one line for a person."""


@dataclass(frozen=True)
class Signal:
    """One business signal: a count of events (``action``) or a ratio of two other signals."""

    name: str
    action: str | None = None
    numerator: str | None = None
    denominator: str | None = None

    @property
    def is_ratio(self) -> bool:
        return self.action is None

    @property
    def is_count(self) -> bool:
        return self.action is not None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SignalError(
            f"signal name {str(name)[:80]!r} is not usable: lower-case letters, digits and _, starting with a letter, at most 63 characters"
        )
    return name


def parse_signals(counts: Mapping[str, str], ratios: Mapping[str, str] | None = None) -> list[Signal]:
    """Count signals from ``name -> event.action`` and ratios from ``name -> "numerator/denominator"``.

    Counts come first (in the given order), then ratios; a ratio may only name
    count signals (a ratio of ratios would hide which events it is made of).
    """
    out: list[Signal] = []
    for name, action in counts.items():
        _check_name(name)
        if not isinstance(action, str) or not action.strip() or len(action) > 256:
            raise SignalError(f"signal {name!r}: its event.action must be a non-empty string of at most 256 characters")
        out.append(Signal(name, action=action.strip()))
    known = {s.name for s in out}
    for name, spec in (ratios or {}).items():
        _check_name(name)
        if name in known:
            raise SignalError(f"ratio signal {name!r} has the name of a count signal; give it its own name")
        parts = [p.strip() for p in str(spec).split("/")] if isinstance(spec, str) else []
        if len(parts) != 2 or not all(parts):
            raise SignalError(f"ratio signal {name!r}: expected \"numerator/denominator\", got {str(spec)[:80]!r}")
        for part in parts:
            if part not in known:
                raise SignalError(
                    f"ratio signal {name!r} uses {part[:80]!r}, which is not a count signal (known: {', '.join(sorted(known)) or 'none'})"
                )
        out.append(Signal(name, numerator=parts[0], denominator=parts[1]))
    if not out:
        raise SignalError("no business signals configured (steady_signals is empty)")
    return out


def signals_from(settings: Any) -> list[Signal]:
    """The signals pang's settings configure (``steady_signals``, ``steady_ratios``)."""
    counts = getattr(settings, "steady_signals", None)
    ratios = getattr(settings, "steady_ratios", None)
    return parse_signals(DEFAULT_SIGNALS if counts is None else counts, ratios or {})
