"""A send's outcome written to the outbox whatever the store's trouble, as the SMS side writes an
SMSC's answer (`gateway.outcomes.OutcomeRecorder.write`).

The relay's answer exists nowhere else until it is on disk. A write refused for a full disk made
the send's task fail and the worker crash; its restart put the mail, still `active`, back in the
queue as cut off by a crash, and the relay got it again: every phone answer and bounce it had
already answered 250 for went twice once there was room again. The answer is now kept in memory
and written again, after a back-off, until the store takes it; the mail is not sent meanwhile.
Only a stop that cannot wait so long (the disk full past the stop's wait) or a real crash leaves
the mail `active`, for the next start to send once more as a possible duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import structlog

from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.supervisor import beat

log = structlog.get_logger(__name__)

T = TypeVar("T")

# A send's outcome the store refused is written again after this pause, doubling up to the most.
RECORD_RETRY_FIRST_SECONDS = 0.5
RECORD_RETRY_MAX_SECONDS = 30.0


class OutcomeWriter:
    """The outcomes known and not yet on disk (`unwritten`, mail id -> state), for the stop's line."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.unwritten: dict[int, str] = {}

    async def write(self, mail_id: int, state: str, work: Callable[[], T]) -> T:
        """Write `work` (the outcome `state` of mail `mail_id`), again and again while the store is
        in trouble. Logged once per mail when first refused, and once when it is on disk at last:
        a full disk refuses each try alike. A database replaced underneath (or a failed fsync) is
        no trouble that passes: that stops the daemon, and the start's recovery takes over."""
        pause = RECORD_RETRY_FIRST_SECONDS
        refused = 0
        self.unwritten[mail_id] = state
        try:
            while True:
                try:
                    result = await self.store.write(work)
                except Exception as exc:
                    if not store_trouble(exc) or self.store.db.replaced is not None:
                        raise
                    refused += 1
                    if refused == 1:
                        log.warning(
                            "outbox.record_retry",
                            mail=mail_id,
                            state=state,
                            error=repr(exc)[:200],
                            retry_in=pause,
                            note="kept until the store takes it; the mail is not sent again meanwhile",
                        )
                else:
                    if refused:
                        log.info("outbox.recorded", mail=mail_id, state=state, refused=refused)
                    return result
                # Waiting on the disk is no hang: the supervisor's watchdog is kept fed meanwhile.
                beat()
                await asyncio.sleep(pause)
                beat()
                pause = min(pause * 2, RECORD_RETRY_MAX_SECONDS)
        finally:
            self.unwritten.pop(mail_id, None)
