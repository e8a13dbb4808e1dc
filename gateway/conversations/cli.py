"""`smsgw mo list` and `smsgw conversation list`: what came back from phones, and who talks to whom.

The conversations' own modules are imported by the commands that read them: adding the parsers
(`smsgw --help` among others) imports none of the store.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import list_limit
from gateway.cli.common import EXIT_USAGE, CliError, open_store, say_zone, since_time, when
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.conversations.repo import ConversationsRepo


def _number(cfg: Config, repo: ConversationsRepo, value: str | None) -> tuple[tuple[str, ...] | None, bool]:
    """Every form of `--number`, and whether it is one of ours (a sender, pool or premium number)
    rather than a phone's: the lists look it up at that end only (see `ConversationsRepo.list_mo`)."""
    from gateway.conversations.numbers import written_forms

    if value is None:
        return None, False
    value = phone_part(value)
    if sender_id(value):  # its dots, dashes and blanks are its own, not a number's separators
        return (value.strip(),), False
    forms = written_forms(value, cfg.gateway.default_region)
    ours = {cfg.gateway.default_sender, *cfg.replies.pool_numbers, *cfg.premium.tariffs}
    ours.update(a.sender for a in cfg.account if a.sender)
    ours.update(repo.account_senders())
    return forms, not ours.isdisjoint(forms)


def phone_part(value: str) -> str:
    """`--number` as a mail's recipient too (`601123456@sms.example.com`, `"601 123 456"@domain`),
    as `queue list --number` takes it: its local part. `conversation list` refused that form (exit 2)
    and `mo list` read it as a sender ID and found nothing; a sender ID holds no "@"."""
    from gateway.smtp.addressing import BadNumber, split_address

    if "@" not in value:
        return value
    try:
        return split_address(value)[0]
    except BadNumber as exc:
        raise CliError(f"--number {value!r}: {exc}", EXIT_USAGE) from exc


def checked_number(cfg: Config, value: str) -> None:
    """`conversation list --number` read as `queue list --number` reads a phone, before the database
    is opened: `--number xyz` said "no conversations" and exit 0, as if no one had written to it.
    Digits pass as they are (our own numbers, which the numbering plan may not know, +48 100 200 300),
    as `written_forms` takes them; anything else is told what `queue list` tells of it, exit 2."""
    import re

    from gateway.smtp.addressing import SEPARATORS, BadNumber, to_e164

    local = phone_part(value).strip()
    if re.fullmatch(r"(\+|00)?\d{3,}", SEPARATORS.sub("", local)):
        return
    try:
        to_e164(local, cfg.gateway.default_region)
    except BadNumber as exc:
        raise CliError(f"--number {value!r}: {exc}", EXIT_USAGE) from exc


def sender_id(value: str) -> bool:
    """Whether `--number` is a sender ID ("PROMO", "Allegro.pl"): letters, which no phone number has."""
    return any(c.isalpha() for c in value)


def _repo(cfg: Config) -> ConversationsRepo:
    from gateway.conversations.repo import ConversationsRepo

    store = open_store(cfg, must_exist=True)
    return ConversationsRepo(store.db, store.clock)


def cmd_mo_list(cfg: Config, args: argparse.Namespace) -> int:
    since = since_time(cfg, args.since) if args.since else None
    number = None if args.number is None else phone_part(args.number)
    repo = _repo(cfg)
    numbers, ours = _number(cfg, repo, number)
    any_case = number is not None and sender_id(number)  # "PROMO" and "Promo" are one sender
    rows = repo.list_mo(since=since, numbers=numbers, limit=args.limit, ours=ours, any_case=any_case)
    say_zone(rows, "no MO messages")
    sending = being_sent_to(repo)
    for r in rows:
        who = f" → {r['user']}" if r["user"] else ""
        notes = [r["note"]] if r["note"] and r["state"] != "mailed" else []
        state, waiting = r["state"], mail_waiting(r, behind=r["mail_to"] in sending)
        if waiting is not None:
            notes.append(waiting)
            state = "queued" if state == "mailed" and r["mail_state"] != "failed" else state
        note = f"  ({one_line('; '.join(notes))})" if notes else ""
        source, destination = one_line(r["source"]), one_line(r["destination"])  # as the SMSC sent them
        print(
            f"{r['id']:>8}  {when(r['received_at'])}  {source:<16} → {destination:<16} {state:<10}{who}{note}"
        )
    return 0


def being_sent_to(repo: Any) -> set[str]:
    """The addresses a mail is being sent to now: the outbox sends one mail at a time to an address
    the relay has not answered yet (`gateway.store.outboxclaim`), and the others queued to it, "not
    tried yet", read as if nothing held them. One read for a whole list (few mails are `active`)."""
    return {r for (r,) in repo.conn.execute("SELECT DISTINCT rcpt FROM outbox WHERE state = 'active'")}


# The words `gateway.outboxbatch.unanswered_outcome` gives up with, and the mail they name.
_GIVEN_UP = re.compile(r"most likely arrived; `smsgw outbox retry (\d+)`")


def mail_waiting(row: dict[str, Any], *, behind: bool = False) -> str | None:
    """What `mo list` (and the panel) says of an MO whose mail the relay has not taken yet, or None.

    An MO is recorded `mailed` (or `optout`, `fallback`) when its mail is queued, and a relay that
    answers 451 defers that mail for hours or days: the list said "mailed → bob@…" all along. The
    MO's state stays as it is (the mail is the outbox's to send); the line says it is queued, the
    relay's last words and when it is tried again, and turns `mailed` once the relay took it.
    A mail given up as most likely arrived (the relay read it whole and closed without a reply, three
    times) left a plain `mailed`: it is said to be unsure, with the command that sends it again.
    `behind`: queued behind another mail to its address being sent (`being_sent_to`)."""
    given_up = _GIVEN_UP.search(row["mail_error"] or "") if row["mail_state"] == "failed" else None
    if given_up is not None:
        return (
            f"its mail to {one_line(row['mail_to'] or '')} may not have arrived: the relay never answered;"
            f" `smsgw outbox retry {given_up[1]}`"
        )
    if row["mail_state"] not in ("queued", "active"):
        return None
    from gateway.store.outbox import relay_reply

    to = one_line(row["mail_to"] or "")
    if row["mail_state"] == "active":
        return f"its mail to {to} is being handed to the mail relay"
    if not row["mail_error"] and behind and row["mail_state"] == "queued":
        return f"its mail to {to} waits behind a send to that address in progress"
    if not row["mail_error"]:
        return f"its mail to {to} is queued, not tried yet"
    _, words = relay_reply(row["mail_error"])
    return (
        f"its mail to {to} is not taken by the mail relay yet, the last try: {one_line(words)};"
        f" next try {when(row['mail_next'])}"
    )


def cmd_conversation_list(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.conversations import states
    from gateway.conversations.repo import ConversationsRepo

    if args.number is not None:
        checked_number(cfg, args.number)
    store = open_store(cfg, must_exist=True)
    repo = ConversationsRepo(store.db, store.clock)
    numbers, ours = _number(cfg, repo, args.number)
    rows = repo.list_conversations(user=args.user, numbers=numbers, limit=args.limit, ours=ours)
    say_zone(rows, "no conversations")
    own = {a.id: a.reply_window_days for a in store.accounts.list_accounts()}
    now = store.clock()
    found = states.listed(cfg, store.db.conn, rows, own, now)
    for c, state in zip(rows, found, strict=True):
        state = states.told(state, c, store.db.conn, cfg.replies.fallback_address, now)
        print(f"{c.phone:<16} via {c.number:<16} {c.user_email:<32} last SMS {when(c.last_mt_at)}  {state}")
    return 0


# What `mo list` shows an MO became (`mo.state`; the parts of a long SMS are listed as it). Besides
# them, "queued" stands for `mailed` while the relay has not taken the mail (`mail_waiting`).
MO_STATES = (
    "mailed",
    "fallback",
    "unmatched",
    "optout",
    "duplicate",
    "throttled",
    "failed",
    "premium",
    "waiting",
    "new",
)


def add_commands(sub: Any) -> None:
    """Register `mo` and `conversation` on the `smsgw` parser's subcommands."""
    mo = sub.add_parser("mo", help="SMS received from phones").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    ml = mo.add_parser(
        "list",
        help=f"newest first, each with what became of it: {', '.join(MO_STATES)}",
        description="The SMS received from phones, newest first, each with what became of it:"
        " mailed (to the user it answers), queued (its mail to the user waits for the mail relay:"
        " the relay's last words and the next try are shown), fallback (to the fallback or inbound"
        " address), unmatched (no conversation and nowhere to mail it: recorded), optout (a STOP"
        " word: the number is on the opt-out list), duplicate (the SMSC delivered it again),"
        " throttled (kept past the phone's hourly limit), failed (it could not be mailed, or handling"
        " it failed: the note says why), premium (a premium-rate SMS: `smsgw premium` tells the"
        " rest), waiting (the phone answered before the SMSC answered the submit of an SMS to it: mailed"
        " once that answer comes), new (not handled yet).",
    )
    ml.add_argument(
        "--since",
        metavar="WHEN",
        help="7d, 12h, 30m ago, or YYYY-MM-DD[ HH:MM] in [gateway] timezone (default: any time)",
    )
    ml.add_argument(
        "--number",
        help="the phone or our number, or a sender ID, its ASCII letters in any case (PROMO, Promo; not"
        " other letters: Żabka finds no ŻABKA) (default: all)",
    )
    ml.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    ml.set_defaults(func=cmd_mo_list)
    conv = sub.add_parser("conversation", help="who writes to which phone, from which number")
    cs = conv.add_subparsers(dest="sub", required=True, metavar="ACTION")
    cl = cs.add_parser(
        "list",
        help="newest first: open, displaced (a newer SMS from the number gets the answers), unreached"
        " (its SMS has not reached the phone) or closed",
        description="Who writes to which phone from which number, newest first, each open (an answer"
        " reaches its user), displaced (a newer SMS from the same number reached the phone since: an"
        " answer goes to that SMS's sender, not to this user), unreached (its SMS has not reached the"
        " phone: held, queued, cancelled, expired or failed) or closed (the reply window is over).",
    )
    cl.add_argument("--user", metavar="EMAIL", help="only this user's conversations (default: all)")
    cl.add_argument("--number", help="the phone or our number (default: all)")
    cl.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    cl.set_defaults(func=cmd_conversation_list)
