"""`smsgw send`: a test SMS through the real SMTP path, as a mail client would send it, so that the
test covers the listener, the account rules and the link; a refusal is explained with what the
admin can read of the accounts (the relay port itself never says which check failed).
"""

from __future__ import annotations

import argparse
import re
import shlex
import smtplib
import socket
import sqlite3
import sys
import time
from email.message import EmailMessage
from typing import TYPE_CHECKING

from gateway.cli.common import EXIT_USAGE, CliError, open_store

if TYPE_CHECKING:
    from gateway.config import Config


def _sender(cfg: Config, given: str | None, client_ip: str | None) -> str:
    """The one user, or the refusal naming the users and one to try: a user of an account that relays
    from `client_ip`, the address this command mails from. The first user by name was suggested, who
    could well be of an account the relay port refuses from here."""
    if given is not None:
        return given
    store = open_store(cfg, must_exist=True)
    users = store.accounts.list_users(None)
    if len(users) == 1:
        return users[0].email
    if not users:
        raise CliError("no users yet: add one with `smsgw user add EMAIL --account NAME`", EXIT_USAGE)
    owners = store.accounts.relay_owners(client_ip) if client_ip else frozenset()
    able = [
        u
        for u in users
        if u.account_id in owners and not store.accounts.account_by_id(u.account_id).suspended_at
    ]
    named = ", ".join(u.email for u in users[:3]) + (", …" if len(users) > 3 else "")
    pick = (able or users)[0]
    here = f"{client_ip}, the address `smsgw send` mails from"
    whose = ""
    if able:
        whose = f" (of account {pick.account}, which relays from {here})"
    elif client_ip:
        whose = f"; no account relays from {here} (see `smsgw account list`)"
    raise CliError(
        f"{len(users)} users exist ({named}): say which one sends with --as EMAIL,"
        f" e.g. smsgw send --as {pick.email} NUMBER TEXT{whose}",
        EXIT_USAGE,
    )


def _mails_from(host: str, port: int) -> str | None:
    """The address a connection to the relay port leaves from, as the kernel picks it (a datagram
    socket's connect sends nothing): what the relay port checks the accounts' networks against."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(addr)
            return str(probe.getsockname()[0])
    except OSError:
        return None


def _typed_number(typed: str) -> str:
    """The number as staff write it (`+48 601 123 461`, `601-123-461`, `(22) 555.01.02`) with the
    separators mail takes in a local part (`addressing.SEPARATORS`) dropped: the digits, `+` first
    when given. Which numbers exist is the gateway's to say, at RCPT, as for any mail.

    Digits of another script (٦٠١…) are read as 0-9 by phonenumbers, as `optout add` and `phone show`
    read them: sent as typed they stopped the mail itself ("'ascii' codec can't encode"), the number
    unnamed. Superscripts are no decimal digits there and are refused here."""
    from phonenumbers import normalize_digits_only

    from gateway.smtp.addressing import SEPARATORS

    digits = SEPARATORS.sub("", typed)
    if not re.fullmatch(r"\+?\d+", digits):
        raise CliError(f"{typed!r} is not a phone number (e.g. +48601123456)", EXIT_USAGE)
    if digits.isascii():
        return digits
    plain = "+" * digits.startswith("+") + normalize_digits_only(digits)
    print(f"{typed} read as {plain}")
    return plain


def cmd_send(cfg: Config, args: argparse.Namespace) -> int:
    """Send as a mail client would, so the test covers the listener, the account rules and the link."""
    from gateway import mailheaders as h  # here: it imports the SMS encodings, which `--help` needs not
    from gateway.peeraddr import is_ipv6_any

    host, port = _listening(cfg)
    # "[::]" takes IPv4 as well (`peeraddr.listen_hosts`): 127.0.0.1, which the shipped demo account's
    # 127.0.0.0/8 holds (from ::1 the mail was refused 550 with that config).
    if host == "0.0.0.0" or is_ipv6_any(host):
        host = "127.0.0.1"
    sender = _sender(cfg, args.sender, None if args.sender else _mails_from(host, port))
    rcpt = f"{_typed_number(args.number)}@{cfg.gateway.domains[0]}"
    if args.subject and not args.subject.isprintable():
        raise CliError(
            "--subject: one line of printable text (no line breaks or control characters)", EXIT_USAGE
        )
    msg = EmailMessage(policy=h.POLICY)  # a Polish subject keeps its spaces (`mailheaders.POLICY`)
    msg["From"], msg["To"] = sender, rcpt
    if args.subject:
        msg["Subject"] = args.subject
    msg.set_content(args.text)
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            client_ip = smtp.sock.getsockname()[0]  # what the relay port checks the networks against
            smtp.ehlo("localhost")
            # A refused sender is answered at MAIL, or at RCPT when premium answers may come in.
            code, text = smtp.mail(sender)
            if code < 400:
                code, text = smtp.rcpt(rcpt)
            if code >= 400:
                _refused(cfg, sender, client_ip, code, text.decode(errors="replace"))
            code, text = smtp.data(msg.as_bytes())
    except OSError as exc:
        raise CliError(
            f"cannot reach the gateway on [smtp] listen {host}:{port}: {exc} (is it running?)"
        ) from exc
    except smtplib.SMTPException as exc:
        raise CliError(f"refused: {exc}") from exc
    reply = text.decode(errors="replace")
    if code >= 400:
        raise CliError(f"refused: {code} {reply}")
    email_id = reply.rpartition(" ")[2]
    print(f"accepted: {code} {reply}")
    if email_id.isdigit():
        _say_messages(cfg, int(email_id))
    if not args.wait:
        return 0
    if not email_id.isdigit():
        print("(not queued as SMS; nothing to wait for)")
        return 0
    return _wait(cfg, int(email_id), args.wait_seconds)


def _listening(cfg: Config) -> tuple[str, int]:
    """Where the running daemon listens: `[smtp] listen` as it read it at its start (status file),
    else the file's. After an edit of the address awaiting a restart, the file's refused the
    connection ("is it running?") while the daemon ran and took mail where it always had."""
    from gateway.cli.common import running_pid
    from gateway.statusfile import read_status

    edited = cfg.smtp.listen_addr
    loaded = ((read_status(cfg.state_dir) or {}).get("config") or {}).get("smtp_listen")
    if not (isinstance(loaded, list) and len(loaded) == 2 and isinstance(loaded[1], int)):
        return edited
    running = (str(loaded[0]), loaded[1])
    if running == tuple(edited) or running_pid(cfg) is None:
        return edited
    print(
        f"(the daemon listens on {running[0]}:{running[1]} as it started; [smtp] listen"
        f" {edited[0]}:{edited[1]} of the edited file applies at its restart)"
    )
    return running


def _say_messages(cfg: Config, email_id: int) -> None:
    """The ids `smsgw queue show/retry/cancel` take, which are the messages', not the mail's.

    The `queued as N` of the SMTP reply is the mail's id: after the first mail to two numbers the
    two count apart, and `queue show N` showed another account's message. Read from the store, where
    the mail was committed before its `250`; a store this user cannot open only loses this line.
    """
    try:
        ids = [m["id"] for m in open_store(cfg, must_exist=True).admin.messages_of_email(email_id)]
    except (CliError, OSError, sqlite3.Error):
        return
    if not ids:
        return
    named = f"message {ids[0]}" if len(ids) == 1 else f"messages {', '.join(map(str, ids))}"
    print(f"{named} (`smsgw queue show {ids[0]}`; the {email_id} above is the mail's id)")


def _refused(cfg: Config, sender: str, client_ip: str, code: int, reply: str) -> None:
    """Raise the refusal, with why and what to do when the store can tell.

    The relay port answers a bare 5.7.1 to a sender it does not trust (it never tells a client
    which check failed), but the admin running `send` may read the accounts: most often the
    sender's account does not list the address `send` connects from.
    """
    refused = f"refused: {code} {reply}"
    hint = _relay_hint(cfg, sender, client_ip) if "5.7.1" in reply else None
    if hint is None:
        raise CliError(refused)
    print(f"smsgw: {refused}", file=sys.stderr)
    raise CliError(hint)


def _relay_hint(cfg: Config, sender: str, client_ip: str) -> str | None:
    """Why the relay port refused `sender` from here and the fix, as its `smtp.sender_refused` log
    line gives them (`senderfix.admin_fix`: `--shared` for a network another account holds, or the
    other account's narrower network that takes the address). None where the reply says it all (a
    suspension). Unlike the log's, a fix is given where no account's network holds the address: the
    client is this machine, and the admin asking."""
    from gateway.smtp.senderfix import admin_fix, host_cidr

    try:
        store = open_store(cfg, must_exist=True)
    except CliError:
        return None
    user = store.accounts.find_user(sender)
    if user is None:
        return (
            f"{sender} is not a user of any account; add it with"
            f" `smsgw user add {sender} --account NAME` (see `smsgw account list`)"
        )
    account = store.accounts.account_by_id(user.account_id)
    fields = admin_fix(store, client_ip, sender, account, set(store.accounts.relay_owners(client_ip)))
    if not fields:
        return None  # the networks allow it: the reply itself says why (a suspension)
    fix = str(
        fields.get("fix")
        or f"smsgw account set {shlex.quote(account.name)} --add-network {host_cidr(client_ip)}"
    )
    cidr = fix.split("--add-network ", 1)[1].split()[0]
    networks = ", ".join(account.networks) or "none"
    here = f"{client_ip}, the address `smsgw send` mails from to the relay port ([smtp] listen)"
    why = (
        f"{sender} belongs to account {account.name}, whose relay networks ({networks}) do not include {here}"
        if "reason" not in fields
        else f"{sender} is refused from {here}: {fields['reason']}"  # the log's words
    )
    # What the network gives away, said with the fix: the relay port asks no password, so every
    # process here could then send as the account's users, and bill it, until it is taken back.
    return (
        f"{why}; allow it with `{fix}`\n"
        f"smsgw: note: that lets every process on this machine send as any user of {account.name}, with no"
        f" password, until `smsgw account set {shlex.quote(account.name)} --remove-network {cidr}`; a mail"
        " client logging in with the user's password on the submission port needs no network"
    )


def _wait(cfg: Config, email_id: int, limit: float) -> int:
    from gateway.store.settling import FINAL_PART

    store = open_store(cfg, must_exist=True)
    deadline = time.monotonic() + limit
    seen: dict[int, str] = {}
    told: dict[int, str | None] = {}  # per message, what the last line said it waits for
    why = None
    while True:
        messages = store.admin.messages_of_email(email_id)
        for m in messages:
            if seen.get(m["id"]) != m["state"]:
                seen[m["id"]] = m["state"]
                reason = f" ({m['reason']})" if m["reason"] else ""
                print(f"message {m['id']} to {m['recipient']}: {m['state']}{reason}", flush=True)
            if m["state"] not in FINAL_PART:
                why = _held_by(cfg, m["recipient"])
                if (said := why.partition(" (")[0] if why else None) != told.get(m["id"]):
                    told[m["id"]] = said
                    if why:
                        print(f"message {m['id']}: waiting: {why}", flush=True)
        if messages and all(m["state"] in FINAL_PART for m in messages):
            return 0 if all(m["state"] == "delivered" for m in messages) else 1
        if time.monotonic() > deadline:
            still = f": {why}" if why else ""
            raise CliError(f"no final state within {limit:.0f} s{still}; follow it with `smsgw queue list`")
        time.sleep(0.2)


def _held_by(cfg: Config, recipient: str) -> str | None:
    """Why an SMS to `recipient` does not go, as the daemon's status file tells (`queue show`'s
    words): no link up for it, since when each is down, or the daemon not running. `send --wait`
    with the link down printed "queued", then after 120 s "no final state", nothing of the link."""
    from gateway.cli.common import when
    from gateway.cli.statusdaemon import daemon_state, lock_holder
    from gateway.linkstatus import waiting_for
    from gateway.statusfile import read_status

    status, now = read_status(cfg.state_dir), time.time()
    if (down := daemon_state(status, now, lock_holder(cfg))) is not None:
        return f"the daemon is {down}"
    links = (status or {}).get("links", {})
    return waiting_for(recipient, links, cfg.routes(), now, when)
