"""Calendar jobs: the retention purge (R-2.5), daily and once right after start.

APScheduler's `AsyncIOScheduler` runs coroutine jobs as tasks on the daemon's event loop, so a job
uses the store like any other coroutine (through `write()`, on the loop thread); plain functions
would be sent to a worker thread and must never be added here. Jobs are kept in memory, so a run
missed while the daemon was down is caught up by the run right after start; the purge is
idempotent, so running it again costs nothing. That first run is scheduled, not awaited, so it
never delays `READY=1`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from gateway.config import Config
from gateway.store import retention
from gateway.store.db import Store

log = structlog.get_logger(__name__)


async def purge(store: Store, config: Config) -> int:
    days = config.gateway.retention_days
    try:
        removed = await retention.purge_before(
            store, store.clock() - days * 86400, reply_window=config.replies.window_seconds
        )
    except asyncio.CancelledError:
        # Stopped by a shutdown: each chunk was its own commit, so the next run simply goes on.
        log.info("retention.purge_interrupted")
        return 0
    except Exception:
        log.exception("retention.purge_failed")
        return 0
    if removed:
        log.info("retention.purged", emails=removed, older_than_days=days)
    return removed


def start_scheduler(store: Store, config: Config) -> AsyncIOScheduler:
    tz = config.gateway.timezone
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=tz)
    scheduler.add_job(
        purge,
        CronTrigger(hour=3, minute=30, timezone=tz),
        args=(store, config),
        id="retention-purge",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
        next_run_time=datetime.now(scheduler.timezone),  # the catch-up run, right after start
    )
    scheduler.start()
    return scheduler
