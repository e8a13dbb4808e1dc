"""A billing run or retention purge that failed, kept until a run of the same job succeeds.

Both jobs only logged a failure (`billing.failed`, `retention.purge_failed`): `smsgw status` exited 0,
/healthz said ok, the panel's billing page said "No billing files yet" and nobody was mailed, while
the month stayed unbilled and the purge held every row since it (`gateway.scheduler.purge`), so the
database grew past the retention unseen. The failure is kept in `billing_state` (the status, the
panel and /healthz read it from the database, whichever process they run in), with the month owed,
the error in one line and the fix where one is known; the administrator is mailed once a day per job.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from billing_reports.failedjobs import KINDS, WHAT, Kind, failures, key, unkept, words
from billing_reports.repo import BillingRepo, state
from gateway import mailheaders as h
from gateway.config import Config
from gateway.notify import plain, stamp
from gateway.store.db import Store

log = structlog.get_logger(__name__)

KIND_MAIL = "job_failed"  # the outbox's kind of the mail to the administrator


class MonthFailed(Exception):
    """The billing of `month` failed (the cause chained): the months after it wait for it."""

    def __init__(self, month: str) -> None:
        super().__init__(month)
        self.month = month


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:300]


def _file_in_the_way(path: Path) -> Path | None:
    """The file standing where a directory of `path` must be (ENOTDIR, EEXIST on mkdir)."""
    for place in (path, *path.parents):
        if place.exists() or place.is_symlink():
            return place if not place.is_dir() else None
    return None


def _directories_in_the_way(exc: BaseException) -> str | None:
    """The accounts' files a month's run could not write because a directory stands where each goes
    (`writer.MonthIncomplete`: "Is a directory", whose own file is the month's directory): the fix
    was null, and the admin was left to find which of the month's names to move."""
    from billing_reports.writer import MonthIncomplete

    if not isinstance(exc, MonthIncomplete):
        return None
    found = [f.path for f in exc.files.failed if f.path.is_dir() and not f.path.is_symlink()]
    if not found:
        return None
    named = ", ".join(str(path) for path in found[:3]) + (
        f" and {len(found) - 3} more" if len(found) > 3 else ""
    )
    moves = "; ".join(f"mv {path} {path}.aside" for path in found[:3])
    if len(found) == 1:
        return f"{named} is a directory: move it aside ({moves})"
    return f"{named} are directories: move them aside ({moves})"


def _directory_at_target(exc: BaseException) -> Path | None:
    """The directory standing where a file is written whole (`files.write_atomic`'s rename: "Is a
    directory", naming the temporary file first and the target second). The month's summary blocked
    so had a fix of null: only the accounts' files were looked for (`_directories_in_the_way`)."""
    if not isinstance(exc, IsADirectoryError):
        return None
    for name in (exc.filename2, exc.filename):
        if name and (path := Path(str(name))).is_dir() and not path.is_symlink():
            return path
    return None


def fix_for(exc: BaseException, cfg: Config) -> str | None:
    """What makes the next run succeed, where the error tells it."""
    from billing_reports.dirproblem import start_problem

    if (moved := _directories_in_the_way(exc)) is not None:
        return moved
    if (directory := _directory_at_target(exc)) is not None:
        return f"{directory} is a directory: move it aside (mv {directory} {directory}.aside)"
    if isinstance(exc, OSError) and exc.filename:
        if (file := _file_in_the_way(Path(str(exc.filename)))) is not None:
            return f"{file} is a file, not a directory: move it aside (mv {file} {file}.aside)"
        if isinstance(exc, PermissionError | NotADirectoryError | FileExistsError):
            return start_problem(cfg.gateway.billing_dir)
    return None


def _mail(cfg: Config, kind: Kind, line: str, now: float) -> bytes:
    msg = EmailMessage(policy=h.POLICY)
    subject = f"SMS gateway: the {WHAT[kind]} failed"
    stamp(
        msg,
        now=now,
        sender=cfg.mail.from_address,
        rcpt=cfg.mail.admin_address,
        subject=subject,
        domain=cfg.gateway.hostname,
        auto="auto-generated",
    )
    text = (
        f"The {line}.\n\nIt is tried again every hour until it succeeds; `smsgw status` shows it"
        " meanwhile. This mail comes at most once a day while it fails.\n"
    )
    return plain(msg, text)


async def record(store: Store, cfg: Config, kind: Kind, exc: BaseException, month: str | None) -> None:
    """Keep the failure (its first time kept), and mail the administrator if not mailed today.

    A database that refuses the record (a full disk fails the job and this write alike) leaves it
    held in memory (`failedjobs.unkept`), said by the status file and /healthz meanwhile and written
    by `keep_unkept` once the store takes writes again. It was logged and dropped, and
    `billing.failure_kept` logged anyway: after the space came back `smsgw status` exited 0, nobody
    was mailed and the month waited for the next hourly run."""
    now = store.clock()
    held = unkept(store).get(kind, {})
    failure = {
        "month": month,
        "error": one_line(exc),
        "fix": fix_for(exc, cfg),
        "since": held.get("since", now),
    }
    failure["last"] = now
    if await _keep(store, cfg, kind, failure):
        log.warning(
            "billing.failure_kept", kind=kind, month=month, error=failure["error"], fix=failure["fix"]
        )


async def _keep(store: Store, cfg: Config, kind: Kind, failure: dict[str, Any], mail: bool = True) -> bool:
    """Write the failure, or hold it in memory; whether it was written. `mail`: the administrator is
    mailed of it (once a day), unless the job is to run again first (`keep_unkept`)."""
    tz = ZoneInfo(cfg.gateway.timezone)
    today = datetime.fromtimestamp(failure["last"], tz).date().isoformat()

    def write() -> None:
        billing = BillingRepo(store.db, store.clock)
        before = failures(store.db.conn).get(kind, {})
        kept = {**failure, "since": min(before.get("since", failure["since"]), failure["since"])}
        kept["mailed_on"] = before.get("mailed_on")
        with billing.transaction():
            if mail and kept["mailed_on"] != today:
                content = _mail(cfg, kind, words(kind, kept, tz), failure["last"])
                store.outbox.enqueue_mail(KIND_MAIL, cfg.mail.from_address, cfg.mail.admin_address, content)
                kept["mailed_on"] = today
            billing.put(key(kind), json.dumps(kept))

    held = unkept(store)
    try:
        await store.write(write)
    except Exception:  # the database itself failing: held until it takes writes again
        if kind not in held:
            log.exception("billing.failure_not_kept", kind=kind, held="in memory until the database writes")
        held[kind] = {**failure, "unkept": True}
        return False
    held.pop(kind, None)
    return True


async def keep_unkept(store: Store, cfg: Config) -> list[Kind]:
    """Write the failures held in memory (`record`), if the store takes writes again: the jobs whose
    failure was written now, which are to run again at once, not at their next hour (the purge: the
    next day) — their own failure was most likely the same want of room. Not mailed: the run again
    mails it if it fails too, and one that succeeds ends it (a notice of a failure already over, "tried
    again every hour", and no word after, was all the administrator had). Costs nothing while none is
    held; a write refused again is said by the store's own log."""
    done: list[Kind] = []
    for kind in KINDS:
        if (failure := unkept(store).get(kind)) is None:
            continue
        held = {k: v for k, v in failure.items() if k != "unkept"}
        if await _keep(store, cfg, kind, held, mail=False):
            log.warning("billing.failure_kept", kind=kind, month=held.get("month"), error=held.get("error"))
            done.append(kind)
    return done


async def clear(store: Store, kind: Kind) -> None:
    """The job succeeded: its failure kept before is over (read first: no write on every run)."""
    if unkept(store).pop(kind, None) is not None:
        log.info("billing.failure_over", kind=kind, kept=False)
    if state(store.db.conn, key(kind)) is None:
        return

    def write() -> None:
        billing = BillingRepo(store.db, store.clock)
        with billing.transaction():
            billing.conn.execute("DELETE FROM billing_state WHERE key = ?", (key(kind),))

    await store.write(write)
    log.info("billing.failure_over", kind=kind)


def cleared_by_hand(store: Store, month: str) -> dict[str, Any] | None:
    """A run by hand (`smsgw billing run --month`) wrote every file of `month` and its summary: the
    billing failure kept for that month is over, as a scheduled run's success ends it. It stayed until
    the next hourly run, `smsgw status` exiting 1 and the panel saying the month failed although its
    cause was fixed and its files written. Returns the failure cleared, or None. The month is still
    mailed by the scheduled run (or `--send`), as any month not billed yet."""
    kept = failures(store.db.conn).get("billing")
    if kept is None or kept.get("month") != month:
        return None
    billing = BillingRepo(store.db, store.clock)
    with billing.transaction():
        billing.conn.execute("DELETE FROM billing_state WHERE key = ?", (key("billing"),))
    log.info("billing.failure_over", kind="billing", month=month, by="billing run")
    return kept
