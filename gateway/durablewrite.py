"""A write whose content exists nowhere else, made again and again while the store is in trouble.

An SMSC's answer to a submit and a relay's answer to a sent mail are known only in memory until
they are on disk. Given up on a full disk or a lock held past its wait, the SMS was sent again at
the next start although the SMSC took it, or the relay got the mail twice. A file replaced or a
failed fsync is no trouble that passes: those stop the daemon, and the start's recovery takes over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.supervisor import beat

T = TypeVar("T")

# A write the store refused is made again after this pause, doubling up to the most.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


async def until_on_disk(
    store: Store,
    work: Callable[[], T],
    refused: Callable[[Exception, float, int], None],
    *,
    replayable: bool = False,
) -> T:
    """`work`'s result once the store took it; `refused(exc, retry_in, times)` after each refusal
    that passes (the caller says it once or rate-limited: a full disk refuses each try alike)."""
    pause = RETRY_FIRST_SECONDS
    times = 0
    while True:
        try:
            return await store.write(work, replayable=replayable)
        except Exception as exc:
            if not store_trouble(exc) or store.db.replaced is not None:
                raise
            times += 1
            refused(exc, pause, times)
        # Waiting on the disk is no hang: a supervised worker's watchdog is kept fed meanwhile.
        beat()
        await asyncio.sleep(pause)
        beat()
        pause = min(pause * 2, RETRY_MAX_SECONDS)
