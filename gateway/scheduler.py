"""Calendar jobs: the retention purge (R-2.5) and the monthly billing (R-5), each also right after start;
and the look at the TLS certificates every minute (`gateway.tlsrenewal.CertificateWatch`).

APScheduler's `AsyncIOScheduler` runs coroutine jobs as tasks on the daemon's event loop, so a job
uses the store like any other coroutine (through `write()`, on the loop thread); plain functions
would be sent to a worker thread and must never be added here. Jobs are kept in memory, so a run
missed while the daemon was down is caught up by the run right after start; the purge is
idempotent, so running it again costs nothing. That first run is scheduled, not awaited, so it
never delays `READY=1`. Billing runs just after each local month end and at start; it bills
every month that ended since the last one it recorded, so a month end missed while the daemon was
down is caught up, and a month already billed is not mailed again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from billing_reports import failures, mailedrecord
from billing_reports import job as billing
from billing_reports.monthly import Month, due_months
from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway import retentionpurge, tlsrenewal
from gateway.config import Config
from gateway.store import retention
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.forwardsteps import window_start
from gateway.tlsrenewal import CertificateWatch

log = structlog.get_logger(__name__)


def unbilled_from(store: Store, config: Config) -> tuple[Month, float]:
    """The oldest month the billing still has to list, and its start (R-5.2).

    The same rule as the billing run's (`due_months`): the month after the last one billed, or
    without that record the month of the first SMS or MO (also one before the first account), else
    the month just ended if an account existed in it; the month under way when none is due.
    """
    tz = ZoneInfo(config.gateway.timezone)
    billing = BillingRepo(store.db, store.clock)
    last = billing.get(LAST_BILLED)
    now = store.clock()
    due = due_months(
        Month.parse(last) if last else None, now, tz, billing.installed_at(), billing.first_use()
    )
    month = due[0] if due else Month.containing(now, tz)
    return month, month.bounds(tz)[0]


async def purge(store: Store, config: Config) -> int:
    """Delete detail rows older than the retention, but never those of a month not billed yet.

    A retention shorter than a month (or a billing run that keeps failing) would otherwise delete
    SMS its billing file must list; they wait until the month is billed, the next run deletes them.
    """
    days = config.gateway.retention_days
    try:
        cutoff = store.clock() - days * 86400
        unbilled, unbilled_start = unbilled_from(store, config)
        if unbilled_start < cutoff:
            cutoff = unbilled_start
            kept_from = datetime.fromtimestamp(cutoff, ZoneInfo(config.gateway.timezone))
            log.info(
                "retention.held_for_billing",
                month=str(unbilled),
                kept_from=kept_from.isoformat(),
                older_than_days=days,
            )
        removed = await retentionpurge.purge_before(
            store, cutoff, reply_window=config.replies.window_seconds, unbilled_from=unbilled_start
        )
        today = datetime.fromtimestamp(store.clock(), ZoneInfo(config.gateway.timezone)).date()
        await retention.forget_past_days(store, (today - timedelta(days=1)).isoformat())
        # Billing files of a month older than this say that its detail rows are gone: up to the
        # cutoff as the purge counted it, a step forward of the clock since not passed (`purge_before`).
        await store.write(
            lambda: BillingRepo(store.db, store.clock).purged_up_to(window_start(store.db.conn, cutoff, 0.0))
        )
    except asyncio.CancelledError:
        # Stopped by a shutdown: each chunk was its own commit, so the next run simply goes on.
        log.info("retention.purge_interrupted")
        return 0
    except Exception as exc:
        if store_trouble(exc):  # the disk full or the database held: said, kept and tried again, no traceback
            log.error("retention.purge_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            log.exception("retention.purge_failed")
        await failures.record(store, config, "purge", exc, None)
        if store_trouble(exc):  # tried again once a write goes through (its failure's record not counted)
            _AGAIN.setdefault(store, {})["purge"] = store.db.conn.total_changes
        return 0
    await failures.clear(store, "purge")
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
    scheduler.add_job(
        bill,
        billing_trigger(tz),
        args=(store, config),
        id="monthly-billing",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(scheduler.timezone),  # catch-up of a month end missed while down
    )
    # Certificates renewed on disk are served without a restart; one near its end is said daily.
    certificates = CertificateWatch(config)
    scheduler.add_job(
        certificates.check,
        IntervalTrigger(seconds=tlsrenewal.RELOAD_CHECK_SECONDS, timezone=tz),
        id="tls-certificates",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(scheduler.timezone),  # the status shows the certificates at once
    )
    scheduler.add_job(
        failures_unkept,
        IntervalTrigger(seconds=UNKEPT_SECONDS, timezone=tz),
        args=(store, config, scheduler),
        id="failures-unkept",
        coalesce=True,
        max_instances=1,
    )
    scheduler.start()
    return scheduler


# How often a job's failure the database refused to keep is written again (nothing to do otherwise).
UNKEPT_SECONDS = 5.0
_JOB_IDS = {"billing": "monthly-billing", "purge": "retention-purge"}


# The purge a full disk or a held database failed, by store, though its failure was written: run again
# once the store writes (`failures_unkept`). It waited for the next day's run, failing meanwhile. Kept
# with the connection's count of changed rows then: the store's trouble ends 30 s after its last failed
# write even with nothing written since, and a write given up on another process's lock is no trouble;
# only rows changed since say a write went through (at most one more try after a failed one).
_AGAIN: WeakKeyDictionary[object, dict[str, int]] = WeakKeyDictionary()


# The purge to run once the billing run under way ends (`failures_unkept`): both run again at one
# instant, the purge held the month being billed (`retention.held_for_billing`) until the next day's.
_PURGE_AFTER_BILLING: WeakKeyDictionary[object, AsyncIOScheduler] = WeakKeyDictionary()


async def failures_unkept(store: Store, config: Config, scheduler: AsyncIOScheduler) -> None:
    """A failure a full disk kept from the database (`failures.record`), written once the store takes
    writes again; its job then runs at once. The month stayed unbilled and unsaid until the next
    hourly run after the space came back, the purge until the next day's. The administrator is
    mailed only if the run again fails too: mailed as it was written, the notice "tried again every
    hour" came at the moment of the run that ended it, and no word after. Billing runs first, the
    purge after it: the month it bills is then the purge's to delete."""
    again = _AGAIN.get(store, {})
    due: list[str] = []
    for kind in await failures.keep_unkept(store, config):
        again.pop(kind, None)
        log.info("billing.job_again", kind=kind, why="its failure is kept now: the database writes again")
        due.append(kind)
    if again and store.db.trouble() is None:
        for kind in [
            kind for kind, changes in sorted(again.items()) if store.db.conn.total_changes > changes
        ]:
            del again[kind]
            log.info(
                "billing.job_again",
                kind=kind,
                why="it failed for the store's trouble: the database writes again",
            )
            due.append(kind)
    if "billing" in due and "purge" in due:
        due.remove("purge")
        _PURGE_AFTER_BILLING[store] = scheduler
    for kind in due:
        scheduler.modify_job(_JOB_IDS[kind], next_run_time=datetime.now(scheduler.timezone))


def billing_trigger(tz: str) -> CronTrigger:
    """Hourly (local time, DST or not): the month is billed at 00:05 on the 1st, and a run that failed
    (a full disk, a file where the month's directory goes) is tried again within the hour for as long
    as it fails, not only through the first week: a month owed holds the retention purge. Once a
    month is billed a run only reads one row."""
    return CronTrigger(minute=5, timezone=tz)


async def bill(store: Store, config: Config) -> None:
    """Bill the months that ended and were not billed yet; a failure is kept (`failures`: status,
    /healthz, the panel, a mail a day) and the month stays unbilled, so the next hourly run (or the
    next start) tries it again."""
    try:
        await record_marked(store, config)
        await billing.run_due(store, config)
    except asyncio.CancelledError:
        log.info("billing.interrupted")
        return
    except failures.MonthFailed as failed:  # (logged with its month by the job)
        await failures.record(store, config, "billing", failed.__cause__ or failed, failed.month)
    except Exception as exc:
        log.exception("billing.failed")
        await failures.record(store, config, "billing", exc, None)
    else:
        await failures.clear(store, "billing")
    if (scheduler := _PURGE_AFTER_BILLING.pop(store, None)) is not None:
        scheduler.modify_job(_JOB_IDS["purge"], next_run_time=datetime.now(scheduler.timezone))


async def record_marked(store: Store, config: Config) -> None:
    """The `_mailed` record of each month mailed by a release that wrote none, from the database's
    marks (`mailedrecord.record_marked`): without it a restore over this database lost bills and
    mails the month again. Each run looks (one read of the marks' keys): the start's run could find
    the billing directory unwritable. Failing, the billing runs still: the record is for a restore."""
    try:
        written = await mailedrecord.record_marked_from_loop(store, config.state_dir, config.billing_dir)
    except Exception as exc:  # (not a cancellation: `bill` says that)
        log.warning("billing.record_from_marks_failed", error=f"{type(exc).__name__}: {exc}")
        return
    if written:
        log.info("billing.recorded_from_marks", months=[str(m) for m in written])
