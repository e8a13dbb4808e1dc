"""`smsgw queue show`: one accepted mail's audit record (R-2.5) and every SMS it became.

Who sent it (envelope sender, user, account), from which IP, when, the subject and text as the
gateway accepted them, what cleaning removed, then each SMS: number, parts, state, reason, times,
the SMSC's message ids and delivery reports. Read by `gateway.store.mailrecord`, the reader of the
panel's message page, so the two never tell a message two ways. Everything from a mail, a phone or
an SMSC is printed on its own line (`one_line`), the text indented under its heading, so that no
line of it can pass for a field. A part still to go says why it waits: its next try and the reason
the row holds, and no link up for its number, as the daemon's status file tells the links. A part
sent again after a submit that went unanswered says that the phone may have it twice, and by which
link that submit went, in the panel's words.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.cli.common import CliError, open_store, say_zone, when
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config

INDENT = "  "


def cmd_queue_show(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.store.mailrecord import mail_of_message, mail_record

    store = open_store(cfg, must_exist=True)
    conn = store.db.conn
    email_id = args.id if args.mail else mail_of_message(conn, args.id)
    record = mail_record(conn, email_id, store.clock()) if email_id is not None else None
    if record is None:
        if args.mail:
            raise CliError(f"no mail with id {args.id} (see `smsgw queue recorded`, or the SMTP reply)")
        raise CliError(f"no message with id {args.id} (see `smsgw queue list`; a mail's id: --mail)")
    say_zone([record], "")
    zone = ZoneInfo(cfg.gateway.timezone)
    waiting = why_waiting(cfg, conn, record)
    shown = None if args.mail else args.id
    for line in mail_lines(record, shown=shown, zone=zone, now=store.clock(), waiting=waiting):
        print(line)
    return 0


def why_waiting(cfg: Config, conn: sqlite3.Connection, record: dict[str, Any]) -> dict[int, str]:
    """Why each part of the record still to go waits, by part id (`gateway.waitwords`, the panel's
    words too): `part 1: queued, attempts 0, link -` said nothing during a 20-minute SMSC outage. The
    links as the daemon's status file tells them."""
    from gateway.cli.status import daemon_state, lock_holder
    from gateway.statusfile import read_status
    from gateway.waitwords import WAITING, parts_wait

    parts = [(m["recipient"], p) for m in record["messages"] for p in m["parts"] if p["state"] in WAITING]
    if not parts:
        return {}
    status = read_status(cfg.state_dir)
    now = time.time()
    down = daemon_state(status, now, lock_holder(cfg))
    links = (status or {}).get("links", {}) if down is None else None
    return parts_wait(conn, parts, links=links, down=down, routes=cfg.routes(), now=now, when=when)


def mail_lines(
    record: dict[str, Any],
    *,
    shown: int | None,
    zone: ZoneInfo,
    now: float,
    waiting: dict[int, str] | None = None,
) -> list[str]:
    """The record as `key: value` lines, as `account show` prints an account; `shown` marks the
    message asked for among its mail's SMS; `waiting` says why a part still to go waits (`why_waiting`)."""
    from gateway.smtp.dsnparams import dsn_asked

    sender = one_line(record["mail_from"]) or "<>"  # a bounce's envelope sender is empty
    user = one_line(record["user"]) if record["user"] else "none (not a user's mail)"
    lines = [
        f"mail {record['id']}",
        f"received: {when(record['received_at'])}",
        f"from: {sender}",
        f"user: {user}",
        f"account: {one_line(record['account'] or '-')}",
        f"client-ip: {record['client_ip'] or '-'}",
        f"message-id: {one_line(record['header_message_id'] or '-')}",
        f"subject: {one_line(record['subject']) if record['subject'] else '(none)'}",
    ]
    if record["envid"] or record["dsn_ret"]:
        lines.append(f"dsn: {one_line(dsn_asked(record['envid'], record['dsn_ret']))}")
    if record["removed"]:
        lines.append(f"removed: {one_line(record['removed'])}")
    if record["automatic"]:
        lines.append(f"recorded, not sent as SMS: {one_line(record['automatic'])}")
    lines.append("text:")
    lines += _block(record["text"])
    if not record["messages"]:
        lines.append("sms: none")
    for m in record["messages"]:
        lines += _sms_lines(
            m, asked=m["id"] == shown, zone=zone, now=now, mail_text=record["text"], waiting=waiting or {}
        )
    return lines


def _block(text: str | None) -> list[str]:
    """A mail's or an SMS's text, each of its lines indented under the heading."""
    return [f"{INDENT}{one_line(line)}" for line in (text or "").splitlines()] or [f"{INDENT}(empty)"]


def _sms_lines(
    m: dict[str, Any], *, asked: bool, zone: ZoneInfo, now: float, mail_text: str, waiting: dict[int, str]
) -> list[str]:
    """One SMS: its own text only where it is not the mail's (cut to the part limit, transliterated),
    so that a mail to ten numbers does not print its text eleven times."""
    from gateway.adminrules import quiet_held
    from gateway.reasons import human_reason
    from gateway.smtp.dsnparams import notices_asked

    held = quiet_held(m["held_until"], zone, now)
    state = f"{m['state']} ({held})" if held else m["state"]
    lines = [
        "",
        f"sms {m['id']}" + ("  (the message asked for)" if asked else ""),
        f"to: {m['recipient']}",
        f"sender: {one_line(m['source'])}",
        f"state: {state}",
        f"parts: {m['parts_total']}",
        f"created: {when(m['created_at'])}",
        f"valid-until: {when(m['expires_at'])}",
        f"finished: {when(m['finished_at'])}",
    ]
    if m["reason"]:
        lines.append(f"reason: {one_line(human_reason(m['reason']))}")  # in words, the code after
    if m["notify"]:
        lines.append(f"notices-asked: {notices_asked(m['notify'])}")
    if m["orcpt"]:
        lines.append(f"original-recipient: {one_line(m['orcpt'])}")
    if m["text"] == mail_text:
        lines.append("sms-text: the mail's text")
    else:
        lines.append("sms-text:")
        lines += _block(m["text"])
    for p in m["parts"]:
        smsc = f", SMSC id {one_line(p['smsc_id'])}" if p["smsc_id"] else ""
        error = f", error {one_line(human_reason(p['error']))}" if p["error"] else ""
        lines.append(
            f"part {p['seq']}: {p['state']}, attempts {p['attempts']}, link {one_line(p['link'] or '-')}"
            f"{smsc}, submitted {when(p['submitted_at'])}, done {when(p['done_at'])}{error}"
        )
        if p["twice"]:  # sent again after a submit that went unanswered (`partnotes.resent_words`)
            lines.append(f"{INDENT}{one_line(p['twice'])}")
        if p["id"] in waiting:
            lines.append(f"{INDENT}waiting: {waiting[p['id']]}")
    for d in m["dlrs"]:
        error = f", error {one_line(d['error'])}" if d["error"] else ""
        lines.append(
            f"report: {when(d['received_at'])} part {d['seq']} {one_line(d['status'])}"
            f" (link {one_line(d['link'])}, SMSC id {one_line(d['smsc_id'])}){error}"
        )
    for o in m["mails"]:
        lines.append(
            f"mail-sent: {o['kind']} to {one_line(o['rcpt'])}, {o['state']}, queued {when(o['created_at'])},"
            f" sent {when(o['sent_at'])}"
        )
    return lines
