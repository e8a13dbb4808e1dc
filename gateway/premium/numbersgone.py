"""What a premium service bound to short numbers `[premium]` no longer has still does, in one wording
for check-config, the start and the panel.

A tariff renumbered in the config (7355 -> 7356) left a service on the old number alone: every vote
to the new one went to the fallback address with no word. The first wording listed every configured
number the service was not on as losing its votes, numbers the service had never run on among them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def gone(bound: Sequence[str], configured: Collection[str]) -> list[str]:
    """The numbers of `bound` (a service's own; none is every configured number) the config lacks."""
    return [n for n in bound if n not in configured]


def still_runs(bound: Sequence[str], configured: Collection[str]) -> str:
    """Where the service still takes votes, and where they go instead: plain text."""
    kept = [n for n in bound if n in configured]
    if not kept:
        return "it runs on no configured number: every vote for it goes to the fallback address"
    return f"it still runs on {' '.join(kept)}; votes for it on any other number go to the fallback address"
