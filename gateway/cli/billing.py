"""`smsgw billing run|list|show`: monthly billing files by hand (R-5.3; `billing --month` is `run`).

Works while the daemon runs: the files are rendered from a read-only connection of their own, and
`--send` queues mail in the same SQLite file, which the daemon's outbox worker sends. A run by hand
writes the files and mails nothing unless `--send` is given; `--send` marks what it queued as the
scheduled run does, so neither mails a file twice, and a file mailed before needs `--again`.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from gateway.cli.billingmisses import before_accounts, how_to_write, meant
from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE, CliError, open_store

if TYPE_CHECKING:
    from billing_reports import job
    from billing_reports.monthly import Month
    from billing_reports.writer import AccountFile
    from gateway.config import Config
    from gateway.store.db import Store


def _month(value: str) -> Month:
    from billing_reports.monthly import Month

    try:
        return Month.parse(value, option="--month")
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _not_mailed(
    path: Path, what: str, mark: str, sha: str, kept: dict[Path, Path], tz: ZoneInfo, who: str
) -> str:
    """The words for a file written again with other bytes than those mailed, and where those lie."""
    from billing_reports import job

    at = job.mailed_at(mark)
    when = f" on {datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M}" if at is not None else ""
    copy = kept.get(path)
    where = f", kept here as {copy}" if copy is not None else ""
    again = "`--send --again`" + (" without --account" if what == "summary" else "")
    return (
        f"{path}: not the {what} mailed{when} (sha256:{mark.split()[0][:12]}…, now sha256:{sha[:12]}…):"
        f" the rows changed since; {who} the mailed one{where} ({again} mails this one)"
    )


def cmd_billing_run(cfg: Config, args: argparse.Namespace) -> int:
    from billing_reports import job, mtlate
    from billing_reports import repo as billing_repo
    from billing_reports.dirproblem import billing_dir_problem
    from billing_reports.files import RunUnderWay
    from billing_reports.render import pln
    from billing_reports.writer import ArchiveKept, write_month

    month = _month(args.month)
    tz = ZoneInfo(cfg.gateway.timezone)
    if args.again and not args.send:
        raise CliError("--again only goes with --send", EXIT_USAGE)
    if month.bounds(tz)[0] > time.time():
        # Its files would be empty, and kept: `billing list` would show a month billed before it began.
        raise CliError(
            f"{month} has not begun (it starts {month.start(tz):%Y-%m-%d %H:%M} {tz.key}):"
            " there is nothing to bill yet"
        )
    if args.send and month.bounds(tz)[1] > time.time():
        # Mailed now, the file would lack the rest of the month, and the scheduled run would then
        # skip it as mailed: the account would never get the whole month.
        raise CliError(
            f"{month} has not ended (it ends {month.next().start(tz):%Y-%m-%d %H:%M} {tz.key}); the"
            " scheduled run mails it then. Run without --send to look at the month so far."
        )
    # Migrates the database before the read-only connection reads it; a missing one is refused, as
    # an empty one made here would bill nothing and say so as if the month had been quiet.
    store = open_store(cfg, must_exist=True)
    end = month.bounds(tz)[1]
    if (first := before_accounts(store, month, tz)) is not None:
        # Its files would be empty, and kept: `billing list` and the panel would show a month billed
        # from before the gateway had anyone to bill (an account with history is never deleted).
        if args.account is not None:  # a name asked for is one no account had then: a typo as after
            raise CliError(
                f"no account named {args.account!r} existed in {month} ({first}){meant(store, args.account)}"
            )
        # Not an error: a cron job billing each month must not report a quiet month as failed.
        print(f"{month} ended before this gateway had an account ({first}): nothing to bill")
        return 0
    if (problem := billing_dir_problem(cfg.billing_dir, cfg.state_dir)) is not None:
        raise CliError(problem, EXIT_CONFIG)  # the config's directory: exit 3, as for state_dir
    fresh = False  # the month's bill time recorded by this run: kept unless no file of it could be written
    if args.send:  # a bill that goes out: its MTs as they are now, later changes corrections
        with store.db.transaction():
            fresh = mtlate.record_as_of(store.db.conn, month, tz, store.clock())
    written = False
    try:
        files = write_month(
            cfg.db_path, cfg.state_dir, month, tz, account=args.account, billing_dir=cfg.billing_dir
        )
        written = True
    except KeyboardInterrupt:
        # Exit 130 as for any Ctrl-C, but not in silence: some files are new, some not, no summary.
        print(_interrupted(cfg, month), file=sys.stderr)
        raise
    except LookupError as exc:
        raise CliError(f"{exc}{meant(store, args.account or '')}") from exc
    except ArchiveKept as exc:
        raise CliError(str(exc)) from exc
    except RunUnderWay as exc:
        raise CliError(exc.strerror) from exc  # nothing written: EXIT 1, as a refused run
    except OSError as exc:
        where = exc.filename or cfg.billing_dir
        raise CliError(f"cannot write the billing files: {where}: {exc.strerror or exc}") from exc
    finally:
        if fresh and not written and not billing_repo.billed(store.db.conn, str(month)):
            # Nothing went out billed as of it: the first bill mailed is billed as of its own time.
            # Once any file went (one account's too), later runs write the month as of the same time,
            # or a change between the two would be on the mailed file and then on a correction too,
            # or on neither.
            with store.db.transaction():
                mtlate.forget_as_of(store.db.conn, month)
    if files.redone:
        print(f"{month}: a run before this one stopped partway; every file of the month was written again")
    for f in files.accounts:
        s = f.sums
        print(f"{f.path}: {s.sms} SMS, {s.parts} part(s), premium {pln(s.price)} PLN")
        if not args.again and (mark := job.mailed_other(store, month, f)) is not None:
            # Rewritten in silence, the file on disk no longer matched the one the account was sent.
            print(
                _not_mailed(
                    f.path, "file", mark, f.sha256, files.kept, tz, "the account and the operator hold"
                ),
                file=sys.stderr,
            )
    # A run for one account never mails the summary, --again or not: the operator keeps the old one.
    if (not args.again or files.only is not None) and (
        mark := job.summary_mailed_other(store, files)
    ) is not None:
        assert files.summary is not None
        sha = hashlib.sha256(files.summary.read_bytes()).hexdigest()
        print(
            _not_mailed(files.summary, "summary", mark, sha, files.kept, tz, "the operator holds"),
            file=sys.stderr,
        )
    if files.summary is not None and files.only is not None:
        # The summary is there because a run of the whole month wrote it, not because it was billed.
        if billing_repo.billed(store.db.conn, str(month)):
            why = "the month was billed"
        elif end > time.time():
            ends = f"{month.next().start(tz):%Y-%m-%d %H:%M}"
            why = f"a run of the whole month wrote one; the month has not ended: it ends {ends}"
        else:
            why = "a run of the whole month wrote one; the month is not billed yet"
        if args.send:
            why += "; not mailed: a run for one account mails that account's file alone"
        print(f"{files.summary}: summary rewritten with it ({why})")
    elif files.summary is not None:
        print(f"{files.summary}: summary of {len(files.accounts)} account(s)")
        _failure_over(store, month, tz, mailed=args.send)
    if not args.send:
        return 0
    done = job.queue_mails(store, cfg, files, again=args.again, audit=_send_row(store, month, args.again))
    print(f"{done.mails} mail(s) queued")
    for path, mark in done.held:
        at = job.mailed_at(mark)
        when = f" on {datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M}" if at is not None else ""
        print(
            # "mailed" read as the relay having taken it, which a restore then said is not known.
            f"{path}: {month} was already queued to be mailed{when} (whether the relay took it, its log"
            " says); not queued again (add --again to mail it again)",
            file=sys.stderr,
        )
    return EXIT_FAILURE if done.held else 0


def _failure_over(store: Store, month: Month, tz: ZoneInfo, *, mailed: bool) -> None:
    """Every file of the month written: a scheduled run's failure of it kept is over (`status`,
    /healthz, /metrics and the panel said it failed until the next hourly run)."""
    from billing_reports.failures import cleared_by_hand

    kept = cleared_by_hand(store, str(month))
    if kept is None:
        return
    since = datetime.fromtimestamp(float(kept.get("since") or 0), tz)
    then = "" if mailed else "; the scheduled run mails it within the hour"
    print(f"the failure of the billing run of {month} (since {since:%Y-%m-%d %H:%M}) is over{then}")


def _interrupted(cfg: Config, month: Month) -> str:
    from billing_reports.files import is_incomplete
    from billing_reports.writer import month_dir

    directory = month_dir(cfg.state_dir, month, cfg.billing_dir)
    if not is_incomplete(directory):  # a run of one account, or stopped before it began
        return f"smsgw: interrupted: the billing files of {month} written so far stay as they are"
    return (
        f"smsgw: interrupted: {month} is incomplete in {directory} (some account files are from this"
        f" run, some older or missing, and the summary is not written); `smsgw billing run --month {month}`"
        " writes it again"
    )


def _send_row(store: Store, month: Month, again: bool) -> job.Audit:
    """The row of each file a `--send` mails, written with its mails: who mailed which account's
    money file (or the month's summary), of which month, to which addresses. One row per file, on
    its account, so that `smsgw audit --account` shows the account's file was mailed, and a run
    that stops partway leaves the rows of what it did mail.
    """
    from gateway.cli.audit import audited

    def row(f: AccountFile | None, rcpts: list[str]) -> None:
        what = "summary" if f is None else f"file of account {f.account}"
        detail = f"{month} {what}{' (--again)' if again else ''}: mailed to {', '.join(rcpts)}"
        audited(store, None if f is None else f.account_id, "billing.send", detail)

    return row


def cmd_billing_list(cfg: Config, args: argparse.Namespace) -> int:
    from billing_reports.files import is_incomplete
    from billing_reports.writer import SUMMARY, month_dir, months

    written = months(cfg.billing_dir)
    if not written:
        print(f"no billing files in {cfg.billing_dir}")
    again = _billed_again(cfg)
    for month in written:
        d = month_dir(cfg.state_dir, month, cfg.billing_dir)
        names = sorted(p.name for p in d.glob("*.txt") if p.name != SUMMARY)
        summary = " + summary" if (d / SUMMARY).exists() else ""
        if is_incomplete(d):
            # A run stopped partway (Ctrl-C, a crash): its files are not a month to hand on.
            summary = " + an older summary" if summary else ", no summary"
            print(
                f"{d.name}: INCOMPLETE, a run stopped partway: {len(names)} account file(s){summary};"
                f" `smsgw billing run --month {d.name}` writes it again"
            )
        else:
            print(f"{d.name}: {len(names)} account file(s){summary}")
            if summary and not (said := _written(cfg, _month(d.name)))[1]:  # a run by hand: no bill
                print(f"  {said[0]}")
        if d.name in again:
            print(f"  {again[d.name]}")
        for name in names:
            print(f"  {d / name}")
        for copies in sorted((p for p in d.glob("mailed*") if p.is_dir()), key=_mailed_order):
            kept = sum(1 for _ in copies.glob("*.txt"))
            print(f"  {copies}/: {kept} file(s) as mailed, written again since")
    return 0


def _billed_again(cfg: Config) -> dict[str, str]:
    """The months the clock stepped back into after they were billed (`billing_reports.rebill`), and
    what to say of each; none when there is no database here (files copied elsewhere)."""
    from billing_reports import rebill

    try:
        store = open_store(cfg, must_exist=True)
    except CliError:
        return {}
    return rebill.waiting(store.db.conn, ZoneInfo(cfg.gateway.timezone))


def _mailed_order(copies: Path) -> tuple[str, str, int]:
    """A copy directory's place among the month's mailings: by name, `-10` after `-2`."""
    m = re.fullmatch(r"mailed-(\d{4}-\d{2}-\d{2})-(\d+)(?:-(\d+))?", copies.name)
    if m is None:
        return (copies.name, "", 0)
    return (m[1], m[2].ljust(6, "0"), int(m[3] or 1))


def cmd_billing_show(cfg: Config, args: argparse.Namespace) -> int:
    from billing_reports.writer import SUMMARY, file_name, month_dir

    path = month_dir(cfg.state_dir, _month(args.month), cfg.billing_dir) / (
        SUMMARY if args.account is None else file_name(args.account)
    )
    if not path.exists():
        if args.account is not None and (path.parent / SUMMARY).exists():
            # A run of the whole month wrote the month: running it again would not make this file (it
            # said so, in circles), unless the account came since. A name in the wrong case (`acme`
            # for `ACME`) is told the file's name, as `account show` is.
            alike = [f.name for f in path.parent.glob("*.txt") if f.name.casefold() == path.name.casefold()]
            meant = f" (did you mean {unquote(alike[0].removesuffix('.txt'))!r}?)" if len(alike) == 1 else ""
            written, billed = _written(cfg, _month(args.month))
            again = (
                ""
                if billed
                else f"; an account added since gets its file at `smsgw billing run --month {args.month}`"
            )
            raise CliError(
                f"no file {path}: {written}, and no account named {args.account!r} was in it{meant}"
                f" (`smsgw billing list` shows the files; `smsgw account list` the names){again}"
            )
        raise CliError(f"no file {path}; {how_to_write(cfg, _month(args.month))}")
    from billing_reports.files import is_incomplete

    if is_incomplete(path.parent):
        print(
            f"smsgw: {path.parent.name} is incomplete (a run stopped partway): this file may not match the"
            f" others; `smsgw billing run --month {path.parent.name}` writes the month again",
            file=sys.stderr,
        )
    written, billed = _written(cfg, _month(args.month))
    if not billed:  # the file reads as a bill: that it is a run by hand of a month not billed goes beside it
        print(f"smsgw: note: {written}", file=sys.stderr)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    return 0


def _written(cfg: Config, month: Month) -> tuple[str, bool]:
    """What a month with a summary on disk is, and whether it was billed (or that cannot be told): billed,
    or written by a run by hand of the month so far or of one not billed yet. `billing show` said "was
    billed" of a month that had not ended."""
    from billing_reports import repo as billing_repo

    tz = ZoneInfo(cfg.gateway.timezone)
    end = month.bounds(tz)[1]
    try:
        billed = billing_repo.billed(open_store(cfg, must_exist=True).db.conn, str(month))
    except CliError:  # no database here (files copied elsewhere): say only what the disk shows
        return f"{month} has a summary", True
    if billed:
        return f"{month} was billed", True
    if end > time.time():
        ends = f"{month.next().start(tz):%Y-%m-%d %H:%M} {tz.key}"
        return f"{month} has not ended (it ends {ends}); a run of the month so far wrote its files", False
    return f"{month} is not billed yet; a run of the whole month wrote its files", False


def cmd_billing_month(cfg: Config, args: argparse.Namespace) -> int:
    """`smsgw billing --month YYYY-MM`, the form R-5.3 gives: `billing run` for that month."""
    if args.month is None:
        raise CliError(
            "say what to do: `smsgw billing run|list|show …`, or `smsgw billing --month YYYY-MM`", EXIT_USAGE
        )
    return cmd_billing_run(cfg, args)


def add_billing_commands(sub: Any) -> None:
    billing = sub.add_parser("billing", help="monthly billing files")
    billing.add_argument(
        "--month", metavar="YYYY-MM", help="without ACTION: the same as `billing run --month`"
    )
    billing.set_defaults(func=cmd_billing_month, account=None, send=False, again=False)
    b = billing.add_subparsers(dest="sub", metavar="ACTION")
    run = b.add_parser("run", help="write a month's billing files (mail them only with --send)")
    run.add_argument(
        "--month", required=True, metavar="YYYY-MM", help="the calendar month, in [gateway] timezone"
    )
    run.add_argument(
        "--account", metavar="NAME", help="only this account's file (and the summary, if the month has one)"
    )
    run.add_argument(
        "--send", action="store_true", help="also queue the mails not mailed before (account and operator)"
    )
    run.add_argument("--again", action="store_true", help="with --send: also mail what was mailed before")
    run.set_defaults(func=cmd_billing_run)
    b.add_parser("list", help="months and files written").set_defaults(func=cmd_billing_list)
    show = b.add_parser("show", help="print a billing file (the summary without --account)")
    show.add_argument("--month", required=True, metavar="YYYY-MM", help="a month written by `billing run`")
    show.add_argument("--account", metavar="NAME", help="this account's file (default: the summary)")
    show.set_defaults(func=cmd_billing_show)
