"""Scheduled jobs: the retention purge (R-2.5), run daily and once at start.

APScheduler keeps its jobs in memory, so anything missed while the daemon was down is caught up by
running the job at start; the purge is idempotent, so running it again costs nothing.
"""

from __future__ import annotations

import asyncio

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from gateway.config import Config
from gateway.store.db import Store

log = structlog.get_logger(__name__)


def purge(store: Store, config: Config) -> int:
    cutoff = store.clock() - config.gateway.retention_days * 86400
    removed = store.purge_before(cutoff)
    if removed:
        log.info("retention.purged", emails=removed, older_than_days=config.gateway.retention_days)
    return removed


def start_scheduler(store: Store, config: Config) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=config.gateway.timezone)
    scheduler.add_job(
        purge,
        CronTrigger(hour=3, minute=30, timezone=config.gateway.timezone),
        args=(store, config),
        id="retention-purge",
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.start()
    try:
        purge(store, config)
    except Exception:
        log.exception("retention.purge_failed")
    return scheduler
