"""The one line `systemctl status` shows for the daemon (`STATUS=` over sd_notify), composed from
the status the housekeeping writes (`gateway.housekeeping`); apart from it, which owns the chores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.cli.status import STORE_LOCKED


def status_line(status: dict[str, Any], unserved: Sequence[str] = (), queue_stuck: bool = False) -> str:
    """What `systemctl status` shows: parts waiting, links up, mail waiting, workers and store in trouble.

    During 100 s of full disk every mail got 452 while this said "queued 0, links up 1/1, outbox 0":
    the store's trouble is named too. No counts or durations in it (failed writes, the WAL's size):
    the line is sent only when it changes, and the journal keeps each one. "links up 1/2" reads the
    same for a spare link down and for one whose prefix no other link takes: the routes whose SMS
    wait (`unserved`, as `smsgw status` words them) are named, and a queue that stands."""
    links = status.get("links", {})
    up = sum(1 for link in links.values() if link.get("state") == "active")
    line = f"queued {status.get('queued', 0)}, links up {up}/{len(links)}, outbox {status.get('outbox', 0)}"
    if unserved:
        line += f", no link up for {', '.join(unserved)}"
    if queue_stuck:
        line += ", queue stuck"
    troubled = [n for n, w in status.get("workers", {}).items() if w.get("state") not in (None, "running")]
    if troubled:
        line += f", workers not running: {', '.join(sorted(troubled))}"
    if trouble := status.get("store"):
        # SQLite's or the OS's words ("database or disk is full"), never a path or user data.
        line += f", store failing: {' '.join(str(trouble.get('error', '')).split())[:60]}"
    if status.get("wal_pinned"):
        line += ", WAL pinned by a reader"
    if status.get("store_locked"):
        line += f", {STORE_LOCKED}"
    if (disk := status.get("disk")) and disk.get("low"):
        line += ", state_dir nearly full"
    if status.get("relay_stuck"):
        line += ", relay not taking mail"
    for said in status.get("failed_jobs", {}).values():  # "billing run of 2026-02 has failed"
        line += f", {said}"
    return line
