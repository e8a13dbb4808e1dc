"""Day-to-day commands: `queue` and `outbox`; `status` and `send` are registered here and live in
`gateway.cli.status` and `gateway.cli.send`.

Every command that only reads (or changes an existing row) opens the store with `must_exist`: a
mistyped `state_dir` is reported as "no database at PATH" rather than answered from a fresh, empty
database.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.adminrules import MESSAGE_STATES
from gateway.cli.argtypes import bounded_int, list_limit, mailbox
from gateway.cli.common import EXIT_USAGE, CliError, open_store, say_zone, since_time, when
from gateway.cli.mailview import cmd_queue_show
from gateway.cli.send import cmd_send
from gateway.cli.status import STATUS_CODES, cmd_status
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config

row_id = bounded_int("an id")  # an id above SQLite's INTEGER would overflow in the query
# States `smsgw status` counts parts in and no message is in: `queue list --state deferred` lists the
# messages with such a part (it was refused, "invalid choice", for a state status had just shown).
PART_STATES = ("deferred", "active")


def _number(cfg: Config, value: str) -> str:
    """`queue list --number` in any form a mail's recipient may take (`0048 601-123-456`,
    `"601 123 456"@domain`), read as intake reads it: messages hold the E.164 form it wrote."""
    from gateway.smtp.addressing import BadNumber, split_address, to_e164

    local = value.strip()
    try:
        if "@" in local:
            local, _domain = split_address(local)
        return to_e164(local, cfg.gateway.default_region)
    except BadNumber as exc:
        raise CliError(f"--number {value!r}: {exc}", EXIT_USAGE) from exc


def cmd_queue_list(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.adminrules import quiet_held
    from gateway.reasons import human_reason
    from gateway.store.mailrecord import search_messages

    # The number and the date first: a typo in either is a usage error, before the database is opened.
    number = _number(cfg, args.number) if args.number else None
    since = since_time(cfg, args.since) if args.since else None
    store = open_store(cfg, must_exist=True)
    part_state = args.state if args.state in PART_STATES else None
    state = None if part_state else args.state
    filters = {"number": number, "user": args.user, "since": since, "state": state, "part_state": part_state}
    # The panel's search (`gateway.store.mailrecord`): the same filters find the same messages.
    rows = search_messages(store.db.conn, None, **filters, limit=args.limit, now=store.clock())
    filtered = number or args.user or since
    say_zone(rows, "no messages matching the filters" if filtered else "no messages")
    for r in rows:
        # An SMSC's words among the reasons, worded as `queue show` and the panel word them (the raw
        # code stays after the words); a held message has none, and looked stuck without it.
        note = (
            one_line(human_reason(r["reason"]))
            if r["reason"]
            else quiet_held(r["held_until"], ZoneInfo(cfg.gateway.timezone), store.clock())
        )
        reason = f"  ({note})" if note else ""
        print(
            f"{r['id']:>8}  {when(r['created_at'])}  {r['recipient']:<16} {r['state']:<10}"
            f" {r['parts_total']} part(s)  from {r['mail_from']}{reason}"
        )
    return 0


def cmd_queue_recorded(cfg: Config, args: argparse.Namespace) -> int:
    """Mail recorded and not sent as SMS (R-1.7, R-2.5): no message, so `queue list` never shows it."""
    rows = open_store(cfg, must_exist=True).admin.list_recorded(args.limit)
    say_zone(rows, "no mail recorded without SMS")
    for r in rows:
        # Sender, subject and reason come from the mail (a bounce's, a stranger's): one line each.
        sender = one_line(r["mail_from"]) or "<>"  # a bounce's envelope sender is empty
        said = one_line(r["subject"] or "")
        said = said if len(said) <= 200 else said[:199] + "…"  # a stranger's 5,000 characters
        subject = f'"{said}"' if said else "(no subject)"
        print(
            f"{r['id']:>8}  {when(r['received_at'])}  from {sender} [{r['client_ip'] or '-'}]"
            f"  account {r['account'] or '-'}  {subject}  ({one_line(r['reason'])})"
        )
    return 0


# Why a message in this state has nothing `queue retry` sends again (its parts are none of held,
# failed, expired or cancelled).
NOTHING_TO_RETRY = {
    "delivered": "every part reached the phone",
    "submitted": "its parts are with the SMSC, waiting for a delivery report",
    "unreported": "the SMSC took its parts and never said whether they arrived; sending again may"
    " send it twice",
}


def cmd_queue_retry(cfg: Config, args: argparse.Namespace) -> int:
    from billing_reports import mtlate
    from gateway.bouncegroup import regroup
    from gateway.cli.audit import audited
    from gateway.reasons import refused_for_good
    from gateway.store.mailrecord import message_detail
    from gateway.store.retryrules import AccountSuspended, MailExpired, OptedOut, TextErased

    store = open_store(cfg, must_exist=True)
    admin = store.admin
    try:
        # The panel's rule (`gateway.reasons`): a number the SMSC refused for good is refused again.
        if (why_not := refused_for_good(admin.message_info(args.id)["reason"], retry=True)) is not None:
            raise CliError(f"message {args.id} is not sent again: {why_not}; it would be refused again")
        with store.db.transaction():
            n = admin.retry_message(
                args.id,
                before_reset=mtlate.retried,  # billing's record of the attempt the retry ends
                default_validity_hours=cfg.gateway.validity_hours,
                ignore_expiry=args.ignore_expiry,
                regroup=regroup(store, cfg),  # its mail's unsent bounce naming it, built without it
            )
            if n:  # as the panel: no row of a retry that did nothing
                audited(store, admin.message_info(args.id)["account_id"], "message.retry", str(args.id))
        state = admin.message_info(args.id)["state"] if n == 0 else ""
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    except TextErased as exc:  # the marker would go to the phone that asked to be forgotten, and be billed
        raise CliError(f"message {args.id} is not sent again: {exc}") from exc
    except AccountSuspended as exc:  # held again at its claim: "queued again" would be untrue
        raise CliError(f"message {args.id} is not sent again: {exc}") from exc
    except OptedOut as exc:  # its claim would end it again, and its sender get a second bounce
        raise CliError(f"message {args.id} is not sent again: {exc.said(cfg.gateway.timezone)}") from exc
    except MailExpired as exc:  # the sender's reminder would reach the phone after its date
        raise CliError(
            f"message {args.id} is not sent again: {exc.said(cfg.gateway.timezone)};"
            " add --ignore-expiry to send it all the same"
        ) from exc
    if n == 0:
        # As `queue cancel` refuses a message with nothing to cancel: "0 part(s) queued again" and
        # exit 0 read as a retry done.
        why = NOTHING_TO_RETRY.get(state, "no part of it is held, failed, expired or cancelled")
        raise CliError(f"message {args.id} is {state}: {why}; nothing sent again")
    # A bulk SMS retried in its account's quiet hours waits for their end (`retry_start`): said, or the
    # admin expects it on the phone now.
    detail = message_detail(store.db.conn, args.id, store.clock())
    if detail is not None and (held := detail["held_until"]) is not None:
        at = datetime.fromtimestamp(held, ZoneInfo(cfg.gateway.timezone))
        print(f"message {args.id}: {n} part(s) released; goes at {at:%H:%M} (quiet hours)")
        return 0
    print(f"message {args.id}: {n} part(s) queued again")
    return 0


def cmd_queue_cancel(cfg: Config, args: argparse.Namespace) -> int:
    """The sender is told as of any other end (R-8.1): the cancel queues its DSN in the outbox in the
    same transaction (`Notifier`), and the daemon's outbox worker, which looks for other processes'
    commits, sends it.

    A part the running daemon has claimed is the dispatcher's: the cancel asks it (`adminstops`) and
    waits for its verdict: ended unsent, or on its way to the SMSC, which cannot be called back. Said
    "nothing cancelled" of a claimed part, the SMS went a moment later; "cancelled" of one already on
    the wire would be untrue."""
    import time

    from gateway.cli.audit import audited
    from gateway.cli.common import running_pid
    from gateway.notifier import Notifier
    from gateway.store import adminstops
    from gateway.store.settling import FINAL_PART

    store = open_store(cfg, must_exist=True)
    claimed = "ask" if running_pid(cfg) is not None else "end"  # none: nothing holds them
    try:
        with store.db.transaction():
            n = store.admin.cancel_message(args.id, tell=Notifier(store, cfg), claimed=claimed)
            parts = adminstops.parts_now(store.db.conn, args.id)
            asked = {seq for seq, _state, ask in parts if ask}
            if n or asked:
                account = store.admin.message_info(args.id)["account_id"]
                audited(store, account, "message.cancel", str(args.id))
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    deadline = time.monotonic() + adminstops.CANCEL_VERDICT_SECONDS
    while any(ask for *_, ask in parts) and time.monotonic() < deadline:
        time.sleep(0.05)
        parts = adminstops.parts_now(store.db.conn, args.id)
    if any(seq in asked and state in ("queued", "deferred") for seq, state, _ask in parts):
        with store.db.transaction():  # put back to the queue meanwhile, not sent: a waiting part now
            store.admin.cancel_message(args.id, tell=Notifier(store, cfg), claimed=claimed)
        parts = adminstops.parts_now(store.db.conn, args.id)
    n += sum(1 for seq, state, _ask in parts if seq in asked and state == "cancelled")
    said = adminstops.cannot_call_back(parts, len(parts))
    if n == 0:
        # As `queue retry` says why it sent nothing: the message's state, so the admin need not look;
        # of one still under way, its parts' (which its state, `queued`, did not say).
        state = store.admin.message_info(args.id)["state"]
        if said and state not in FINAL_PART:
            raise CliError(f"message {args.id}: {'; '.join(said)}; nothing cancelled")
        raise CliError(f"message {args.id} is {state}: no part of it waits to be sent; nothing cancelled")
    print(f"message {args.id}: {n} part(s) cancelled")
    for line in said:
        print(f"message {args.id}: {line}")
    return 0


def cmd_outbox_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = open_store(cfg, must_exist=True).admin.list_outbox(args.state, args.limit)
    say_zone(rows, "outbox empty")
    # Kinds run from `dsn` to `premium-fallback`: the widest one shown sets the column.
    kind_width = max((len(r["kind"]) for r in rows), default=0)
    for r in rows:
        nxt = when(r["next_attempt_at"]) if r["state"] == "queued" else "-"
        error = f"  last error: {r['last_error']}" if r["last_error"] else ""
        print(
            f"{r['id']:>6}  {r['kind']:<{kind_width}} to {r['rcpt']:<28} {r['state']:<7}"
            f" attempts {r['attempts']}  next {nxt}{error}"
        )
    return 0


def cmd_outbox_retry(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.audit import audited

    if (args.id is None) == (not args.all):
        raise CliError("give a mail ID or --all", EXIT_USAGE)
    store = open_store(cfg, must_exist=True)
    admin = store.admin
    with store.db.transaction():
        n = admin.retry_outbox(args.id)
        if n:  # as `queue retry`: no row of a retry that did nothing
            audited(store, None, "outbox.retry", str(args.id) if args.id is not None else f"all: {n} mail(s)")
    if args.id is not None and n == 0:
        raise CliError(f"no waiting or failed mail with id {args.id} (see `smsgw outbox list`)")
    print(f"{n} mail(s) will be sent again now (a running daemon takes them on its next pass)")
    if args.id is None and (skipped := admin.outbox_most_likely_arrived()):
        ids = " ".join(map(str, skipped[:10])) + (" …" if len(skipped) > 10 else "")
        print(
            f"{len(skipped)} failed mail(s) not sent again: the relay took each without answering, so it"
            f" has most likely arrived (ids {ids}); `smsgw outbox retry ID` sends one again"
        )
    return 0


def add_ops_commands(sub: Any) -> None:
    st = sub.add_parser(
        "status",
        help="queue counts, outbox age, daemon and link states",
        description="Queue counts, outbox age, the daemon's store, link and worker states.",
        epilog=STATUS_CODES,
    )
    st.add_argument("--json", action="store_true", help="machine-readable")
    st.set_defaults(func=cmd_status)

    q = sub.add_parser(
        "queue", help="list, show, retry or cancel SMS messages; list mail recorded, not sent"
    ).add_subparsers(dest="sub", required=True, metavar="ACTION")
    ql = q.add_parser("list", help="the latest messages, newest first")
    ql.add_argument(
        "--state",
        choices=MESSAGE_STATES + PART_STATES,
        help="only messages in this state, or with a part deferred or active as `smsgw status` counts"
        " them (default: all)",
    )
    ql.add_argument(
        "--number",
        help="only messages to this phone, in any form a mail may give it (+48601123456, 601 123 456)",
    )
    ql.add_argument(
        "--user", metavar="EMAIL", help="only mail from this envelope sender, any case (default: all)"
    )
    ql.add_argument(
        "--since",
        metavar="WHEN",
        help="created since 7d, 12h, 30m ago, or YYYY-MM-DD[ HH:MM] in [gateway] timezone (default: ever)",
    )
    ql.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    ql.set_defaults(func=cmd_queue_list)
    qs = q.add_parser(
        "show",
        help="one mail's audit record: sender, user, client IP, time, text, and every SMS it became",
        description="The mail a message came from, as accepted: envelope sender, user and"
        " account, client IP, when, subject, text, what cleaning removed; then each SMS it became:"
        " number, parts, state, reason, times, SMSC message ids and delivery reports.",
    )
    qs.add_argument(
        "id", type=row_id, help="the message's id, the first column of `smsgw queue list` (or with --mail)"
    )
    qs.add_argument(
        "--mail",
        action="store_true",
        help="ID is the mail's: the N of the SMTP reply `queued as N`, or of `smsgw queue recorded`",
    )
    qs.set_defaults(func=cmd_queue_show)
    qr = q.add_parser(
        "recorded",
        help="mail recorded and not sent as SMS (auto-replies, bounces, recalls), newest first",
    )
    qr.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    qr.set_defaults(func=cmd_queue_recorded)
    for name, func, text in (
        ("retry", cmd_queue_retry, "send a held, failed or expired message again"),
        ("cancel", cmd_queue_cancel, "cancel the parts of a message not yet sent"),
    ):
        qp = q.add_parser(name, help=text)
        qp.add_argument("id", type=row_id, help="the message's id, the first column of `smsgw queue list`")
        if name == "retry":
            qp.add_argument(
                "--ignore-expiry",
                action="store_true",
                help="send it even though its mail's own Expiry-Date has passed",
            )
        qp.set_defaults(func=func)

    o = sub.add_parser(
        "outbox", help="bounces, notices and replies waiting for the mail relay"
    ).add_subparsers(dest="sub", required=True, metavar="ACTION")
    ol = o.add_parser("list", help="kind, recipient, attempts, last error, next attempt")
    ol.add_argument(
        "--state",
        choices=("queued", "active", "sent", "failed"),
        help="only mail in this state (default: all)",
    )
    ol.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    ol.set_defaults(func=cmd_outbox_list)
    orr = o.add_parser("retry", help="send waiting or failed mail again now")
    orr.add_argument(
        "id", type=row_id, nargs="?", help="the mail's id, the first column of `smsgw outbox list` (or --all)"
    )
    orr.add_argument("--all", action="store_true", help="every waiting or failed mail")
    orr.set_defaults(func=cmd_outbox_retry)

    s = sub.add_parser("send", help="send a test SMS through the gateway's own SMTP listener")
    s.add_argument(
        "number",
        help="the phone: international (+48601123456) or national in [gateway] default_region (601123456)",
    )
    s.add_argument("text", help="the SMS text (the mail's body)")
    s.add_argument(
        "--as",
        dest="sender",
        type=mailbox,
        metavar="EMAIL",
        help="the user who sends (needed when several exist)",
    )
    s.add_argument(
        "--subject",
        help="a mail subject: put before the text as for any mail (see [gateway] subject_max; default none)",
    )
    s.add_argument("--wait", action="store_true", help="wait for the final state and print it")
    s.add_argument("--wait-seconds", type=float, default=120, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_send)
