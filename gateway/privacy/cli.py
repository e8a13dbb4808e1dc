"""`smsgw phone show|forget NUMBER`: a person's request about their number (GDPR art. 15 and 17).

`show` answers "what do you hold about my number"; `forget` erases its texts and conversations in
one transaction beside the running daemon, as `optout add` and `queue cancel` write, and keeps what
the operator must keep: the billing facts and the opt-out entry. The number goes to the audit trail,
which is where the erasure is proven, and not to the log, which `forget` cannot reach: the lines
about what a phone sent (mo.*) name the MO by its id (`smsgw mo list` tells its phone while it is
kept). Lines about an SMS sent to a number (smtp.no_route, conversation.displaced, opt-out changes)
name it still, as a mail server's log names recipients.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import list_limit
from gateway.cli.audit import audited
from gateway.cli.common import EXIT_USAGE, CliError, open_store, say_zone, when
from gateway.cli.terminal import one_line

# The phone's queries (and through them the store) are imported by the commands that run them:
# adding the parsers (`smsgw --help` among others) imports none of them.
if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.privacy.erasure import Erased
    from gateway.privacy.repo import PhoneRepo


def _repo(cfg: Config, value: str) -> tuple[Any, PhoneRepo]:
    """The store and the phone's rows, the number read as the other commands read one."""
    from gateway.privacy.repo import PhoneRepo
    from gateway.smtp.addressing import BadNumber, to_e164

    region = cfg.gateway.default_region
    try:
        number = to_e164(value, region)
    except BadNumber as exc:
        raise CliError(f"{value!r} is not a phone number: {exc}", EXIT_USAGE) from exc
    store = open_store(cfg, must_exist=True)
    return store, PhoneRepo(store.db.conn, number)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 or word.endswith('SMS') else 's'}"


def _section(title: str, listed: dict[str, Any]) -> list[dict[str, Any]]:
    count, rows = listed["count"], listed["rows"]
    more = f" (the {len(rows)} newest listed)" if count > len(rows) else ""
    print(f"{title}: {count}{more}")
    return list(rows)


def _text(row: dict[str, Any], texts: bool) -> None:
    if texts and row.get("text") is not None:
        print(f"    text: {one_line(row['text'])}")


def cmd_phone_show(cfg: Config, args: argparse.Namespace) -> int:
    from billing_reports.render import pln  # money as `premium stats` shows it

    _, repo = _repo(cfg, args.number)
    held = repo.holdings(args.limit)
    timed = [
        *held["sent"]["rows"],
        *held["received"]["rows"],
        *held["premium"]["rows"],
        *held["mails"]["rows"],
    ]
    if timed or held["conversations"] or held["optout"]:
        say_zone([True], "")
    print(f"phone {repo.number}")
    for r in _section("sms sent to it", held["sent"]):
        by = f"  by {one_line(r['mail_from'])}" if r["mail_from"] else ""
        print(
            f"  sms {r['id']}  {when(r['created_at'])}  account {r['account'] or '-'}{by}"
            f"  from {one_line(r['source'])}  {r['state']}  {_plural(r['parts_total'], 'part')}"
        )
        _text(r, args.texts)
    for r in _section("sms received from it", held["received"]):
        user = f"  → {r['user']}" if r["user"] else ""
        print(
            f"  mo {r['id']}  {when(r['received_at'])}  to {one_line(r['destination'])}  {r['state']}{user}"
        )
        _text(r, args.texts)
    for r in _section("premium sms from it", held["premium"]):
        print(
            f"  premium {r['id']}  {when(r['received_at'])}  to {r['number']}  {r['password'] or '-'}"
            f"  {_plural(r['parts'], 'part')}  {pln(r['price'])} PLN  {r['state']}"
            f"  {_plural(r['answers'], 'free answer')}"
        )
        _text(r, args.texts)
    conversations = held["conversations"]
    print(f"conversations: {len(conversations)}")
    for c in conversations:
        print(
            f"  via {c['number']} with {c['user_email']}  started {when(c['started_at'])}"
            f"  last SMS {when(c['last_mt_at'])}"
        )
    optout = held["optout"]
    if optout is None:
        print("opt-out: not on the list")
    else:
        word = f", {one_line(optout['word'])}" if optout["word"] else ""
        print(f"opt-out: on the list since {when(optout['at'])} (by {optout['source']}{word})")
    kept = held["kept"]
    print(f"kept answers (past the hourly limit, not mailed yet): {kept['answers']}")
    print(f"parts of a long SMS from it waiting for the rest: {held['segments']}")
    print(f"premium sms kept until the client's address confirms: {held['awaiting']}")
    print(f"delivery reports never matched to an SMS: {held['reports_unmatched']}")
    records = _records(held["records"])
    print(f"records of mails to it or naming it, not sent as SMS (bounces, auto-replies): {records}")
    # `forget` says it as what it keeps; an answer to "what do you hold" that counted 0 records while
    # an upgraded install held some from before 0.2.10 said less than the erasure would. Only where
    # such records may be held: a database made at schema 54 or later has none.
    if unaddressed_records(repo):
        print(f"  {UNADDRESSED_RECORDS}: not counted")
    for r in _section("mails about it (outbox)", held["mails"]):
        print(f"  mail {r['id']}  {when(r['created_at'])}  {r['kind']} to {r['rcpt']}  {r['state']}")
    if not args.texts and (held["sent"]["count"] or held["received"]["count"] or held["premium"]["count"]):
        print("(the texts with --texts)")
    return 0


def _would(repo: PhoneRepo) -> list[str]:
    held = repo.holdings(1)
    shared = repo.mails_shared()
    return [
        f"texts of {_plural(held['sent']['count'], 'SMS')} sent to it (their parts and delivery reports too)",
        f"texts of {_plural(held['received']['count'], 'SMS')} received from it"
        f" ({held['kept']['answers']} of them kept past the hourly limit: not mailed)",
        f"texts of {_plural(held['premium']['count'], 'premium SMS')} from it and of the answers to them",
        *([_awaiting(held["awaiting"])] if held["awaiting"] else []),
        *([_segments(held["segments"])] if held["segments"] else []),
        f"{_plural(len(held['conversations']), 'conversation')} with it (deleted)",
        f"{_plural(held['mails']['count'], 'mail')} about it in the outbox (their text; one not"
        " sent yet is never sent; one naming other numbers too: only its number, and a queued one is still"
        " sent)",
        *([_unmatched(held["reports_unmatched"])] if held["reports_unmatched"] else []),
        *([_unsent(held["records"]["whole"])] if held["records"]["whole"] else []),
        *([_records_named(held["records"]["number"])] if held["records"]["number"] else []),
        f"text and subject of {_plural(repo.mails_own(), 'mail')} the SMS came in (all its SMS went to it)",
        *([_shared(shared)] if shared else []),
    ]


def _awaiting(n: int) -> str:
    return f"{_plural(n, 'premium SMS')} kept until the client's address confirms: ended, never mailed"


def _segments(n: int) -> str:
    return (
        f"{_plural(n, 'part')} of a long SMS from it waiting for the rest (deleted: the parts coming"
        " later make an incomplete SMS of their own)"
    )


def _unmatched(n: int) -> str:
    return f"{_plural(n, 'delivery report')} never matched to an SMS (as the SMSC wrote them)"


def _unsent(n: int) -> str:
    return f"{_plural(n, 'mail')} to it alone, not sent as SMS (bounces, out-of-office replies)"


def _records_named(n: int) -> str:
    return f"its number in the records of {_plural(n, 'mail')} not sent as SMS that name other numbers too"


def _records(records: dict[str, int]) -> str:
    total = records["whole"] + records["number"]
    return f"{total} ({records['number']} naming other numbers too)" if records["number"] else str(total)


def _shared(n: int) -> str:
    return f"kept: the text of {_plural(n, 'mail')} that went to other numbers too (its sender's)"


UNADDRESSED_RECORDS = (
    "the records of bounces and auto-replies that do not name the number in their subject or"
    " text and were recorded before the gateway noted their recipients (schema version 54)"
)


def unaddressed_records(repo: PhoneRepo) -> bool:
    """Whether records of mails never sent from before schema version 54 may be held, which name
    none of the numbers they were addressed to (`emails.numbers` is NULL).

    Such records are the oldest: the first one not erased tells. One recorded since has the numbers
    (NULL only in a mail addressed to none), and so has none in a database made at 54 or later."""
    from gateway.privacy.repo import ERASED

    row = repo.conn.execute(
        "SELECT numbers IS NULL FROM emails INDEXED BY emails_recorded"
        " WHERE automatic IS NOT NULL AND text <> ? ORDER BY id LIMIT 1",
        (ERASED,),
    ).fetchone()
    return bool(row and row[0])


def kept_lines(repo: PhoneRepo) -> list[str]:
    return [
        "kept: the billing facts of each SMS (number, time, parts, price, state): accounting rules oblige it",
        "kept: the billing files already written (they are the bills): not changed",
        *([f"kept: {UNADDRESSED_RECORDS}: nothing ties them to it"] if unaddressed_records(repo) else []),
        "kept: backups taken before still hold the texts until they are rotated",
    ]


# The daemon's reads kept the WAL from being emptied: `gateway.store.checkpoint` starts it over (a
# TRUNCATE) once it grows past 4 times its checkpoint limit, and passive checkpoints write over it.
WAL_KEPT = (
    "kept: the database's WAL file (its -wal file) still holds old copies of the texts: the running daemon"
    " was reading it; its checkpoints write over them (it empties the file once it passes 16 MB)"
)


def _kept_optout(repo: PhoneRepo) -> str:
    on = repo.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (repo.number,)).fetchone()
    if on is None:
        return "opt-out: the number is not on the opt-out list (nothing to keep)"
    return "kept: the opt-out entry: it is how the person's objection to SMS is honoured"


def _erased(e: Erased) -> list[str]:
    return [
        f"erased: texts of {_plural(e.sms_sent, 'SMS')} sent to it ({_plural(e.sms_parts, 'part')},"
        f" {_plural(e.reports, 'delivery report')})",
        f"erased: texts of {_plural(e.sms_received, 'SMS')} received from it"
        f" ({e.kept_answers} kept past the hourly limit: not mailed)",
        f"erased: texts of {_plural(e.premium_sms, 'premium SMS')}"
        f" and {_plural(e.premium_answers, 'answer')} to them",
        *([f"ended: {_awaiting(e.premium_awaiting)}"] if e.premium_awaiting else []),
        *([f"deleted: {_segments(e.segments)}"] if e.segments else []),
        f"erased: {_plural(e.mails_erased, 'mail')} the SMS came in (text and subject)",
        f"erased: {_plural(e.outbox_mails, 'outbox mail')} about it ({e.outbox_not_sent} queued: not sent"
        f"{_sending(e.outbox_sending)})",
        *(
            [f"erased: its number in {_plural(e.outbox_named, 'outbox mail')} naming other numbers too"]
            if e.outbox_named
            else []
        ),
        *([f"erased: {_unsent(e.mails_unsent)}"] if e.mails_unsent else []),
        *([f"erased: {_records_named(e.records_named)}"] if e.records_named else []),
        *([f"erased: {_unmatched(e.reports_unmatched)}"] if e.reports_unmatched else []),
        f"deleted: {_plural(e.conversations, 'conversation')}",
        *([_shared(e.mails_kept)] if e.mails_kept else []),
    ]


def _sending(n: int) -> str:
    # The relay may take it in the send under way: recorded sent then, and not sent again.
    return f"; {n} in a send at this moment, which the relay may still take" if n else ""


def own_copies(cfg: Config) -> list[str]:
    """The copies of the texts the gateway itself keeps outside its database, each named: the
    database a restore set aside (`gateway.cli.restore`, with its WAL) and the simulator's log of
    every SMS it took. Neither is opened here: the admin deletes the file, or erases the texts in it."""
    from gateway.cli.restore import COMPANIONS

    db = cfg.db_path
    aside = sorted(db.parent.glob(f"{db.name}.before-restore-*")) if db.parent.is_dir() else []
    lines = [
        f"kept: {path}, {'the WAL of ' if path.name.endswith(COMPANIONS) else ''}the database a restore"
        " set aside, holds the texts: delete it, or erase them in it"
        for path in aside
    ]
    log = cfg.path(cfg.simulator.log)
    if cfg.simulator.enabled and log.is_file():
        lines.append(
            f"kept: {log}, the simulator's log, holds the texts of the SMS it took: delete it,"
            " or erase them in it"
        )
    return lines


def _detail(number: str, e: Erased) -> str:
    """The audit row: what was erased, counted, and never a text."""
    return (
        f"{number}: texts erased: {_plural(e.sms_sent, 'SMS')} sent ({_plural(e.sms_parts, 'part')},"
        f" {_plural(e.reports, 'report')}), {e.sms_received} received ({e.kept_answers} kept),"
        f" {e.premium_sms} premium ({_plural(e.premium_answers, 'answer')}),"
        f" {_plural(e.mails_erased, 'mail')} ({e.mails_kept} to other numbers too kept),"
        f" {_plural(e.outbox_mails, 'outbox mail')}"
        f" ({e.outbox_not_sent} not sent); {_plural(e.conversations, 'conversation')} deleted"
        + (f", {_plural(e.segments, 'waiting part')} deleted" if e.segments else "")
        + (f", {e.premium_awaiting} premium awaiting confirmation ended" if e.premium_awaiting else "")
        + (f", its number in {_plural(e.outbox_named, 'outbox mail')}" if e.outbox_named else "")
        + (f", {_plural(e.mails_unsent, 'mail')} not sent as SMS" if e.mails_unsent else "")
        + (f", its number in {_plural(e.records_named, 'record')} of them" if e.records_named else "")
        + (f", {_plural(e.reports_unmatched, 'unmatched report')}" if e.reports_unmatched else "")
    )


def cmd_phone_forget(cfg: Config, args: argparse.Namespace) -> int:
    import structlog

    from gateway.premium.handlers import unclaim_erased
    from gateway.privacy.erasure import AWAITING_NOTE
    from gateway.store.checkpoint import BUSY_MS

    store, repo = _repo(cfg, args.number)
    if not args.yes:
        _refuse_waiting(repo)
        print(f"phone {repo.number}: `smsgw phone forget --yes` would erase:")
        for line in _would(repo):
            print(f"  {line}")
        print("and keep:")
        print(f"  {_kept_optout(repo)}")
        for line in [*kept_lines(repo), *own_copies(cfg)]:
            print(f"  {line}")
        raise CliError("nothing erased: give --yes to erase")
    repo.named()  # the mails' texts read before the write: in it, only those queued since
    # Freed space in the database's pages zeroed, not left holding the old texts.
    store.db.conn.execute("PRAGMA secure_delete = ON")
    with store.db.transaction():
        _refuse_waiting(repo)  # read again in the erasing write: the daemon queues beside it
        unclaim_erased(store, cfg, repo.number, AWAITING_NOTE)
        erased = repo.erase()
        audited(store, None, "phone.forget", _detail(repo.number, erased))
    structlog.get_logger(__name__).info("privacy.phone_forgotten", **erased._asdict())
    # The erased pages into the database file now and the WAL, which holds the old ones, emptied:
    # else its old copies stay until the daemon's checkpoints write them over.
    # Waiting as the daemon's checkpoint thread waits for readers, not the store's 30 s: the erasure is done.
    store.db.conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    busy = store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    print(f"phone {repo.number}:")
    for line in _erased(erased):
        print(f"  {line}")
    print(f"  {_kept_optout(repo)}")
    for line in [*kept_lines(repo), *own_copies(cfg)]:
        print(f"  {line}")
    if busy:
        print(f"  {WAL_KEPT}")
    return 0


def _refuse_waiting(repo: PhoneRepo) -> None:
    waiting = repo.waiting()
    if not waiting:
        return
    ids = ", ".join(str(i) for i, _ in waiting)
    active = any(state == "active" for _, state in waiting)
    raise CliError(
        f"{_plural(len(waiting), 'SMS')} to {repo.number} not sent yet (message {ids}): cancel them first"
        " (`smsgw queue cancel ID`)"
        + (", or wait for the one being sent now" if active else "")
        + "; nothing erased"
    )


def add_commands(sub: Any) -> None:
    """Register `phone show` and `phone forget` on the `smsgw` parser's subcommands."""
    p = sub.add_parser(
        "phone", help="what is held about a phone number, and erasing it (GDPR art. 15, 17)"
    ).add_subparsers(dest="sub", required=True, metavar="ACTION")
    show = p.add_parser(
        "show",
        help="what the database holds about a number",
        description="Everything the database holds about one phone number, counted and listed newest"
        " first: SMS sent to it, SMS and premium SMS received from it, its conversations, its opt-out"
        " entry, answers kept past the hourly limit, parts of a long SMS waiting for the rest, premium SMS"
        " awaiting confirmation, the mails about it (also the notices and bounces forwarded that name"
        " it), the delivery reports never matched to an SMS and the records of bounces and auto-replies"
        " to it or naming it. Times in [gateway] timezone.",
    )
    show.add_argument("number", help="the phone: +48601123456, or national as 601123456")
    show.add_argument("--texts", action="store_true", help="print the SMS texts too")
    show.add_argument("--limit", type=list_limit, default=50, help="at most this many of each (default 50)")
    show.set_defaults(func=cmd_phone_show)
    forget = p.add_parser(
        "forget",
        help="erase a number's texts and conversations",
        description="Erase in one transaction the texts of the SMS sent to the number and received from"
        " it (with their parts, delivery reports, premium answers and the mails about them), the mails"
        " they came in when every SMS of a mail went to it (and the notices about them), the notices"
        " and bounces forwarded that name it (one naming other numbers too: only its number, and a"
        " queued one is still sent) and the records of bounces and auto-replies to it or naming it"
        " (likewise), the delivery reports never matched to an SMS, and its"
        " conversations; delete the parts of a long SMS from it still waiting for the rest; end its"
        " premium SMS kept until the client's address confirms (never mailed). Kept: the billing"
        " facts, the opt-out entry (it honours the objection) and the billing files. Refused while an"
        " SMS to the number waits to be sent (cancel it first). Without --yes it says what it would"
        " erase and exits 1. Recorded in the audit trail.",
    )
    forget.add_argument("number", help="the phone: +48601123456, or national as 601123456")
    forget.add_argument("--yes", action="store_true", help="erase (without it: only say what would be)")
    forget.set_defaults(func=cmd_phone_forget)
