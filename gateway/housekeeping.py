"""The housekeeping worker: expiry, reassembly timeouts, the status file for `smsgw status`, the
one-line status systemd shows in `systemctl status` (`STATUS=` over sd_notify), and the watch for
the wall clock stepping back.

These run every few seconds and must keep running for as long as the daemon says it is healthy,
so they form a supervised worker (heartbeat, restart on a crash, shown in the status) rather than
scheduler jobs, whose failures would only be logged. Their writes go through the store's shared
`write()`, on the event loop, like every other write.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from gateway import reassembly
from gateway.events import GatewayEvents, Notifier
from gateway.filemodes import write_private
from gateway.store.db import Store
from gateway.supervisor import beat, sd_notify

log = structlog.get_logger(__name__)

STATUS_FILE = "status.json"
EXPIRY_INTERVAL = 15.0
STATUS_INTERVAL = 2.0
# A wall clock behind its last reading plus the monotonic time since by more than this was stepped
# back (NTP at boot, an admin, a VM restored); NTP's slewing and timer jitter stay far below it.
# Above STATUS_INTERVAL, so that a clock standing still (a test's frozen clock) is not taken for one
# stepping back at every look; a smaller step costs waiting parts at most these seconds.
CLOCK_STEP_SECONDS = 5.0


class Housekeeping:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        events: GatewayEvents,
        status: Callable[[], dict[str, Any]],
        status_path: Path,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.events = events
        self.status = status
        self.status_path = status_path
        self.monotonic = monotonic
        self._said = ""
        # The last (wall, monotonic) reading; kept across a restart of the worker, so that a step
        # during its pause is still seen.
        self._readings: tuple[float, float] | None = None

    async def run(self) -> None:
        last_expiry: float | None = None
        while True:
            beat()
            await self.check_clock()  # before expiry: validities move with a step
            now = self.monotonic()
            if last_expiry is None or now - last_expiry >= EXPIRY_INTERVAL:
                last_expiry = now
                await self.expire()
            status = self.status()
            write_status(self.status_path, status)
            said = status_line(status)
            if said != self._said:  # only changes: the journal keeps every STATUS= as a record
                sd_notify(f"STATUS={said}")
                self._said = said
            await asyncio.sleep(STATUS_INTERVAL)

    async def check_clock(self) -> float:
        """Catch the wall clock stepping back, and move the queue's and outbox's waits with it.

        Their next tries are stamped in wall-clock time; after a step back of an hour, parts and
        mail waiting would not be due for an hour while new mail overtakes them. The monotonic clock
        does not step, so the wall clock's expected reading is the last one plus the monotonic time
        since. A step forward needs nothing: waits end early at worst, as after a long pause.
        Returns the step back found (0 when none).
        """
        wall, mono = self.store.clock(), self.monotonic()
        last = self._readings
        step = 0.0 if last is None else last[0] + (mono - last[1]) - wall
        if step > CLOCK_STEP_SECONDS:
            store = self.store

            def shift() -> tuple[int, int]:
                return store.queue.shift_for_clock_step(step), store.outbox.shift_for_clock_step(step)

            # One write for both: a failed one leaves the last reading, so the next look finds the step again.
            parts, mails = await store.write(shift)
            log.warning("clock.stepped_back", seconds=round(step, 3), parts=parts, mails=mails)
        self._readings = (wall, mono)
        return step if step > CLOCK_STEP_SECONDS else 0.0

    async def expire(self) -> None:
        """Parts past their validity fail (bounces queued with them); stale MO segments are joined."""
        store = self.store

        def work() -> None:
            self.notifier(store.queue.expire_due())
            for mo_id in store.mo.join_stale_segments(store.clock() - reassembly.TIMEOUT_SECONDS):
                self.events.whole_mo(mo_id)

        await store.write(work)


def status_line(status: dict[str, Any]) -> str:
    """What `systemctl status` shows: parts waiting, links up, mail waiting, workers in trouble."""
    links = status.get("links", {})
    up = sum(1 for link in links.values() if link.get("state") == "active")
    line = f"queued {status.get('queued', 0)}, links up {up}/{len(links)}, outbox {status.get('outbox', 0)}"
    troubled = [n for n, w in status.get("workers", {}).items() if w.get("state") not in (None, "running")]
    if troubled:
        line += f", workers not running: {', '.join(sorted(troubled))}"
    return line


def write_status(path: Path, data: dict[str, Any]) -> None:
    """Replace the status file whole (a reader never sees half of it), private like the database."""
    tmp = path.with_suffix(".tmp")
    try:
        write_private(tmp, json.dumps({"pid": os.getpid(), "updated_at": time.time(), **data}))
        tmp.replace(path)
    except OSError:
        log.warning("status.write_failed", path=str(path))


def remove_status(path: Path) -> None:
    """On a clean stop: `smsgw status` then says "not running" at once, not after the file goes stale."""
    path.unlink(missing_ok=True)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
