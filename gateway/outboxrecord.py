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

from collections.abc import Callable
from typing import TypeVar

import structlog

from gateway.durablewrite import until_on_disk
from gateway.store.db import Store

log = structlog.get_logger(__name__)

T = TypeVar("T")


class OutcomeWriter:
    """The outcomes known and not yet on disk (`unwritten`, mail id -> state), for the stop's line."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.unwritten: dict[int, str] = {}

    async def write(self, mail_id: int, state: str, work: Callable[[], T]) -> T:
        """Write `work` (the outcome `state` of mail `mail_id`) until the store takes it
        (`gateway.durablewrite`). Logged once per mail when first refused, and once when it is on
        disk at last: a full disk refuses each try alike."""
        times = 0

        def refused(exc: Exception, retry_in: float, count: int) -> None:
            nonlocal times
            times = count
            if count == 1:
                log.warning(
                    "outbox.record_retry",
                    mail=mail_id,
                    state=state,
                    error=repr(exc)[:200],
                    retry_in=retry_in,
                    note="kept until the store takes it; the mail is not sent again meanwhile",
                )

        self.unwritten[mail_id] = state
        try:
            result = await until_on_disk(self.store, work, refused)
        finally:
            self.unwritten.pop(mail_id, None)
        if times:
            log.info("outbox.recorded", mail=mail_id, state=state, refused=times)
        return result
