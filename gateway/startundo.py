"""Letting go of a start that failed after the store opened (a port taken, the simulator's port taken).

Its start file goes too (`forget_failed_start`): it stays from the open until the first status file so
that a start killed in between is named, and left by a start that failed there and said why,
`smsgw status` took the port's error for a start "cut short while opening the database".

The start queues writes of its own before the listeners bind (the domains it served, recorded by the
gate): closed under them, their WAL fsync was answered after the close had checkpointed and SQLite had
deleted the WAL, and the file guard took the missing WAL for a deleted database ("restore the last
backup") on a start whose only fault was a port. The queued writes are committed first, as at a
normal stop, and only then is the store closed. The wait is short: with another process holding the
database's write lock the writes would wait out the store's patience (30 s) before the port's error
was said, and the next start writes them again anyway.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.statusfile import read_starting, remove_starting

if TYPE_CHECKING:
    from gateway.daemon import Daemon
    from gateway.store.db import Store

DRAIN_SECONDS = 3.0


async def close_store(store: Store) -> None:
    """The writes queued so far committed (or failed, each to its caller), then the store closed."""
    try:
        await asyncio.wait_for(store.drain(), DRAIN_SECONDS)
    except TimeoutError:
        pass  # the database locked by another process: what is left is written by the next start
    finally:
        store.close()


async def undo_start(daemon: Daemon) -> None:
    """What the start opened before it failed is closed again, so that the process exits."""
    for server in daemon.servers:
        server.close()
    for sock in daemon.intake.listeners if daemon.intake else ():
        sock.close()
    if daemon.simulator is not None:
        await daemon.simulator.stop()
    await close_store(daemon.store)


async def forget_failed_start(run: Coroutine[Any, Any, None], state_dir: Path) -> None:
    """The daemon's run; ended by an error, the start file it wrote goes (after the first status file
    there is none: `Housekeeping.report_status`). Another start's, killed before this one opened the
    database, is left to be named."""
    try:
        await run
    except BaseException:
        if (read_starting(state_dir) or {}).get("pid") == os.getpid():
            remove_starting(state_dir)
        raise
