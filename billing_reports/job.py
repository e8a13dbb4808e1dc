"""Which months are due, and their mail: the scheduled run (with catch-up) and `--send`.

The daemon runs `run_due` after each month end and once right after start. A month is due when it
ended (local midnight in `[gateway] timezone`) after the last month recorded as billed; a month end
missed while the daemon was down is therefore billed on the next start, and one already billed is
not mailed again. Files are rendered in a worker thread on a read-only connection of their own, so
the loop keeps answering SMTP; mail is queued through `write()` (the outbox retries it), each
account's mails in one write with a mark that they were queued, and the month is recorded as billed
after the last of them: a crash in between re-writes the same files and queues only what was missing.
`billing run --send` queues and marks so too: the scheduled run skips what it mailed, and a second
`--send` mails nothing without `--again`."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from billing_reports import failures, mailedrecord, rebill, repo, runlog
from billing_reports.attachments import attachment_name
from billing_reports.files import RunUnderWay
from billing_reports.monthly import Month, due_months
from billing_reports.render import pln
from billing_reports.writer import AccountFile, MonthFiles, MonthIncomplete, month_dir, write_month
from gateway import billingwords as w
from gateway import mailheaders, notify, polish
from gateway.config import Config
from gateway.store.db import Store
from gateway.wording import Language

log = structlog.get_logger(__name__)

KIND = "billing"  # outbox kind of every billing mail


# The biggest billing mail queued with its file attached: Postfix's default message_size_limit.
# A relay refuses a bigger one for good (552 at MAIL with SIZE=), so such a mail names where the
# file lies on the gateway instead, beside the same summary.
MAIL_SIZE_LIMIT = 10_000_000


def _body(month: Month, tz: ZoneInfo, f: AccountFile, attached: str | None, lang: Language = "en") -> str:
    """The mail's text; `attached`: the name the file is attached under, None when it is not. A
    Polish mail says the statuses and amounts in Polish ("doręczone 55", "6,00 zł"); the file keeps
    its English words and "6.00", as its documented format has them."""
    s = f.sums
    counts = ", ".join(w.BILLING_COUNT(lang, n=n, status=k) for k, n in s.by_status.items())
    money = ""
    if s.price or s.commission:
        amount = polish.zloty if lang == "pl" else pln
        money = w.BILLING_MONEY(lang, price=amount(s.price), commission=amount(s.commission))
    the_file = w.BILLING_ATTACHED(lang, name=attached) if attached is not None else w.BILLING_ON_DISK(lang)
    head = w.BILLING_HEAD(
        lang, account=f.shown, month=month, zone=tz.key, sms=s.sms, parts=s.parts, counts=counts
    )
    return f"{head}{money}\n{w.BILLING_FILE(lang, the_file=the_file)}"


def _file_mail(
    cfg: Config,
    rcpt: str,
    subject: str,
    text: Callable[[bool], str],
    name: str,
    path: Path,
    content: bytes | None,
    now: float | None,
) -> bytes:
    """One billing file's mail, dated `now` (`notify.mail_date`): `text(True)` above the file attached,
    or `text(False)` and where the file lies on the gateway, if the mail with it (or the file itself:
    `content` None, left unread) would be past MAIL_SIZE_LIMIT."""
    head = dict(sender=cfg.mail.from_address, rcpt=rcpt, domain=cfg.gateway.domains[0], subject=subject)
    if content is not None:
        mail = notify.billing_file(**head, now=now, summary=text(True), filename=name, content=content)
        if len(mail) <= MAIL_SIZE_LIMIT:
            return mail
    msg = EmailMessage(policy=mailheaders.POLICY)
    notify.stamp(msg, **head, now=now, auto="auto-generated")
    where = w.BILLING_TOO_BIG(
        cfg.gateway.language, size=path.stat().st_size, limit=MAIL_SIZE_LIMIT, path=path
    )
    return notify.plain(msg, text(False) + where)


def _read_within_limit(path: Path) -> bytes | None:
    return path.read_bytes() if path.stat().st_size <= MAIL_SIZE_LIMIT else None


def recipients(store: Store, cfg: Config, f: AccountFile) -> list[str]:
    """The account's billing addresses (its opt-in), and always the operator; each once."""
    found = store.accounts.billing_addresses(f.account_id) if f.account_id is not None else []
    unique: dict[str, str] = {}
    for rcpt in [*found, cfg.mail.admin_address]:
        unique.setdefault(rcpt.casefold(), rcpt)
    return list(unique.values())


def account_mails(
    cfg: Config,
    month: Month,
    f: AccountFile,
    rcpts: list[str],
    now: float | None = None,
    *,
    clash: bool = False,
    replaces: str | None = None,
) -> list[tuple[str, bytes]]:
    """(recipient, mail) for one account's file; no database (runs in a worker thread). `clash`:
    another account's name differs from this one's in case only (`repo.clashing_names`); `replaces`:
    the mark of another version of the file mailed before (`mailed_other`), which this one corrects."""
    tz, lang = ZoneInfo(cfg.gateway.timezone), cfg.gateway.language
    content = _read_within_limit(f.path)
    subject = (w.BILLING_SUBJECT_CORRECTED if replaces else w.BILLING_SUBJECT)(
        lang, month=month, account=f.shown
    )
    name = attachment_name(month, f, clash=clash)
    prior = ""
    if replaces is not None:
        at = mailed_at(replaces)
        when = f" ({datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M})" if at is not None else ""
        prior = w.BILLING_REPLACES(lang, when=when)

    def text(attached: bool) -> str:
        return prior + _body(month, tz, f, name if attached else None, lang)

    return [(rcpt, _file_mail(cfg, rcpt, subject, text, name, f.path, content, now)) for rcpt in rcpts]


def fate(
    store: Store, cfg: Config, f: AccountFile, rcpts: list[str] | None, before: str | None = None
) -> str:
    """The summary mail's line for one account's file: the addresses `rcpts` it was queued to with
    the summary, or (None) mailed `before` by an earlier run. Said on the loop (it reads the database)."""
    lang, name = cfg.gateway.language, f.shown
    if rcpts is None:
        at = mailed_at(before or "")
        tz = ZoneInfo(cfg.gateway.timezone)
        when = f" ({datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M})" if at is not None else ""
        return w.BILLING_FATE_BEFORE(lang, account=name, when=when)
    admin = cfg.mail.admin_address.casefold()
    theirs = [r for r in rcpts if r.casefold() != admin]
    if theirs:
        return w.BILLING_FATE_TO(lang, account=name, to=", ".join(theirs))
    own = f.account_id is not None and store.accounts.billing_addresses(f.account_id)
    return (w.BILLING_FATE_OWN if own else w.BILLING_FATE_NOBODY)(lang, account=name)


def summary_mail(
    cfg: Config, files: MonthFiles, fates: list[str], now: float | None = None
) -> tuple[str, bytes]:
    """(sha256 of the summary file, its mail to the operator); no database (runs in a worker thread).
    `fates`: a line per account saying what became of its file (`fate`)."""
    path = files.summary
    assert path is not None
    content = _read_within_limit(path)
    sha = hashlib.sha256(content if content is not None else path.read_bytes()).hexdigest()
    name = f"{files.month}-summary.txt"
    lang = cfg.gateway.language
    subject = w.BILLING_SUMMARY_SUBJECT(lang, month=files.month, accounts=len(files.accounts))

    def text(attached: bool) -> str:
        the_summary = (w.BILLING_SUMMARY_ATTACHED if attached else w.BILLING_SUMMARY_PLAIN)(lang)
        return w.summary_text(lang, files.month, the_summary, "\n".join(fates), unclaimed=files.unclaimed)

    return sha, _file_mail(cfg, cfg.mail.admin_address, subject, text, name, path, content, now)


@dataclass
class Queued:
    """What a `--send` did: mails queued, and what was held back because it was mailed before."""

    mails: int = 0
    # (the file not mailed, earlier mark): by path, as an account may be called "summary" too
    held: list[tuple[Path, str]] = field(default_factory=list)


# Writes a file's row of the audit trail, in the transaction that queues its mails: its account's
# file (None: the month's summary) and the addresses it is mailed to.
Audit = Callable[[AccountFile | None, list[str]], None]


def queue_mails(
    store: Store, cfg: Config, files: MonthFiles, *, again: bool, audit: Audit | None = None
) -> Queued:
    """`billing run --send` (no loop): queue and mark the month's mails as the scheduled run does,
    so that neither mails a file twice; `again` mails what was mailed before too.

    A run for one account (`files.only`) mails that account's file alone: the others it rewrote
    were for the summary (which is not mailed either), and were mailed, or refused as mailed, too.
    `audit` writes each file's row with its mails and mark: a run that fails partway (the database
    locked past its busy timeout, a file that cannot be read) leaves a row of every file it mailed."""
    done, at = Queued(), store.clock()
    clashing = repo.clashing_names(store.db.conn)
    directory = month_dir(cfg.state_dir, files.month, cfg.billing_dir)
    with mailedrecord.queuing(store.db.conn, directory, files.month, at) as intend:  # for a restore
        fates = []
        for f in files.accounts:
            if files.only is not None and f.account != files.only:
                continue
            key = _key(f)
            if not again and (before := mailed(store, files.month, key)) is not None:
                done.held.append((f.path, before))
                fates.append(fate(store, cfg, f, None, before))
                continue
            rcpts, clash = recipients(store, cfg, f), f.account in clashing
            fates.append(fate(store, cfg, f, rcpts))
            replaces = mailed_other(store, files.month, f) if again else None
            mails = account_mails(cfg, files.month, f, rcpts, at, clash=clash, replaces=replaces)
            row = None if audit is None else lambda f=f, m=mails: audit(f, [rcpt for rcpt, _ in m])
            intend(key, f.sha256)
            done.mails += _queue(store, cfg, files.month, key, f.sha256, mails, again, at, row)
        if files.summary is not None and files.only is None:
            if not again and (before := mailed(store, files.month, "summary")) is not None:
                done.held.append((files.summary, before))
            else:
                sha, content = summary_mail(cfg, files, fates, at)
                rcpt = cfg.mail.admin_address
                row = None if audit is None else lambda: audit(None, [rcpt])
                mails = [(rcpt, content)]
                intend("summary", sha)
                done.mails += _queue(store, cfg, files.month, "summary", sha, mails, again, at, row)
    return done


def _key(f: AccountFile) -> str:
    return str(f.account_id)


def mailed(store: Store, month: Month, key: str) -> str | None:
    """The mark of a file already queued for mail (`<sha256> <unix time>`), or None."""
    return repo.BillingRepo(store.db, store.clock).get(repo.mailed_key(month, key))


def mailed_other(store: Store, month: Month, f: AccountFile) -> str | None:
    """The mark of the mail that took another version of `f` (rows changed after it was mailed: a
    late report, a user renamed), or None. The account and the operator hold that one."""
    mark = mailed(store, month, _key(f))
    return mark if mark is not None and mark.split()[0] != f.sha256 else None


def mailed_at(mark: str) -> float | None:
    """When a mark says its mail was queued (marks written before that was kept say nothing)."""
    return repo.mark_parts(mark)[1]


def summary_mailed_other(store: Store, files: MonthFiles) -> str | None:
    """The mark of the mail that took another version of the month's summary, or None (as
    `mailed_other`: the operator holds that one)."""
    if files.summary is None:
        return None
    mark = mailed(store, files.month, "summary")
    if mark is None:
        return None
    return mark if mark.split()[0] != hashlib.sha256(files.summary.read_bytes()).hexdigest() else None


def _queue(
    store: Store,
    cfg: Config,
    month: Month,
    key: str,
    sha: str,
    mails: list[tuple[str, bytes]],
    again: bool,
    at: float,
    audit: Callable[[], None] | None = None,
) -> int:
    """Queue the mails and mark them mailed in one transaction: a crash leaves both or neither.
    `audit` writes their row of the audit trail in it too (`billing run --send` only: the
    scheduled run is nobody's change, and the daemon's log says what it mailed).

    `at` is the run's one time for all its files: the copies kept when they are written again are
    named by it (`mailed.mailed_copy`), and a run whose files were stamped each by its own second
    left its copies in two directories when it crossed a second.

    Checked again inside the transaction (BEGIN IMMEDIATE), so that the daemon's run and a `--send`
    at the same moment cannot both queue the same file.
    """
    billing = repo.BillingRepo(store.db, store.clock)
    with store.db.transaction():
        if not again and billing.get(repo.mailed_key(month, key)) is not None:
            return 0
        for rcpt, content in mails:
            store.outbox.enqueue_mail(KIND, cfg.mail.from_address, rcpt, content)
        billing.put(repo.mailed_key(month, key), f"{sha} {at:.0f}")
        if audit is not None:
            audit()
    return len(mails)


async def bill_month(store: Store, cfg: Config, month: Month) -> MonthFiles:
    """Write the month's files (in a thread) and queue each mail once; then record the month billed.

    An account whose file cannot be written stops neither the others' files nor their mails; the
    month is then not recorded as billed (MonthIncomplete), nor its summary mailed, so the next
    run tries it again, and the mails already queued are not queued again (their marks).
    """
    tz = ZoneInfo(cfg.gateway.timezone)
    await store.write(lambda: rebill.run_begins(store, month, tz))  # a step back from now on bills it again
    files = await asyncio.to_thread(
        write_month, store.path, cfg.state_dir, month, tz, keep_going=True, billing_dir=cfg.billing_dir
    )
    if files.redone:
        log.warning("billing.redone_interrupted", month=str(month))  # a crash mid-run left it half written
    queued, at = 0, store.clock()
    clashing = repo.clashing_names(store.db.conn)
    # Billed again after the clock stepped back into it (`rebill`): a file whose rows changed since
    # it was mailed is mailed again, as `--send --again` mails it.
    again = rebill.again(store.db.conn, month)
    directory = month_dir(cfg.state_dir, month, cfg.billing_dir)
    # On disk that the mails went, for a restore over a database lost (`restoreblind`).
    async with mailedrecord.queuing_from_loop(store, directory, month, at) as intend:
        fates = []
        for f in files.accounts:  # one account's file in memory at a time, however many accounts
            if (before := mailed(store, month, _key(f))) is not None and not (
                again and mailed_other(store, month, f)
            ):
                fates.append(fate(store, cfg, f, None, before))
                continue  # queued by an earlier run (a crash after it) or by `billing run --send`
            rcpts, clash = recipients(store, cfg, f), f.account in clashing
            fates.append(fate(store, cfg, f, rcpts))
            replaces = before if again else None  # (`before` is then another version's: see above)
            built = await asyncio.to_thread(
                account_mails, cfg, month, f, rcpts, at, clash=clash, replaces=replaces
            )
            queue = partial(_queue, store, cfg, month, _key(f), f.sha256, built, before is not None, at)
            await intend(_key(f), f.sha256)
            queued += await store.write(queue)
        if files.failed:
            for bad in files.failed:
                log.error("billing.account_failed", month=str(month), account=bad.account, error=bad.line())
            raise MonthIncomplete(files, directory)
        summary_before = mailed(store, month, "summary")
        due = summary_before is None or (again and summary_mailed_other(store, files))
        if due and (files.accounts or files.unclaimed):  # before the first account: the fallback's paid votes
            sha, summary = await asyncio.to_thread(summary_mail, cfg, files, fates, at)
            rcpt, a = cfg.mail.admin_address, summary_before is not None
            await intend("summary", sha)
            queued += await store.write(
                lambda: _queue(store, cfg, month, "summary", sha, [(rcpt, summary)], a, at)
            )
    if not await store.write(lambda: rebill.run_ends(store, month)):
        # The clock stepped back into the month during the run: billed again after its end.
        log.warning("billing.month_stepped_back_during_run", month=str(month), mails=queued)
        return files
    if again:
        log.warning(
            "billing.month_billed_again", month=str(month), accounts=len(files.accounts), mails=queued
        )
    log.info("billing.month_billed", month=str(month), accounts=len(files.accounts), mails=queued)
    return files


async def run_due(store: Store, cfg: Config) -> list[Month]:
    """The scheduled job: bill every month that ended since the last one billed (catch-up included);
    a month that fails raises `failures.MonthFailed`, the later ones left for the next run."""
    tz = ZoneInfo(cfg.gateway.timezone)
    billing = repo.BillingRepo(store.db, store.clock)
    last = billing.get(repo.LAST_BILLED)
    due = due_months(
        Month.parse(last) if last else None, store.clock(), tz, billing.installed_at(), billing.first_use()
    )
    if not due:
        runlog.up_to_date(store, last, tz)  # at INFO once a day: the run is tried every hour
    billed = []
    for month in due:
        end = month.bounds(tz)[1]
        if store.clock() < end:
            # The clock stepped back into it while an earlier month of the catch-up was billed: due
            # when it ends again, by the reading of then (`rebill`), not by the list made before.
            log.info("billing.not_ended", month=str(month))
            break
        if store.clock() < end + repo.PARTS_BOUND_SECONDS and repo.parts_waiting(store.db.conn, end):
            # Its whole MO goes by its first part, in this month: billed now, it would be in no
            # month's mail. The reassembly timeout joins it; the next hourly run bills the month.
            log.info("billing.waiting_for_parts", month=str(month))
            break
        try:
            await bill_month(store, cfg, month)
        except asyncio.CancelledError:
            log.info("billing.interrupted", month=str(month))
            raise
        except RunUnderWay:  # `smsgw billing run` of the month by hand: the next hourly run bills it
            log.warning("billing.run_under_way", month=str(month))
            break
        except Exception as exc:  # kept and said by the caller (`failures`); the next run tries it again
            log.exception("billing.failed", month=str(month))
            raise failures.MonthFailed(str(month)) from exc
        if billing.get(repo.LAST_BILLED) != str(month):
            break  # a step back into it during the run: billed again, the later months after it
        billed.append(month)
    return billed
