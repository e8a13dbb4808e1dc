"""Day-to-day commands: `status`, `queue`, `outbox` and `send` (a test SMS through the real SMTP path).

Every command that only reads (or changes an existing row) opens the store with `must_exist`: a
mistyped `state_dir` is reported as "no database at PATH" rather than answered from a fresh, empty
database.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import smtplib
import sys
import time
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from gateway.adminrules import MESSAGE_STATES, quiet_held
from gateway.cli.common import (
    EXIT_USAGE,
    CliError,
    age,
    bounded_int,
    list_limit,
    mailbox,
    open_store,
    pid_alive,
    when,
)
from gateway.cli.terminal import one_line
from gateway.config import Config
from gateway.store.settling import FINAL_PART

STATUS_STALE_SECONDS = 30  # the daemon rewrites its status file every 2 s
# `smsgw status` exits as `systemctl status` and LSB init scripts do, so that a monitoring check
# or a script can tell from the code alone (it exited 0 also with the daemon crashed).
STATUS_HEALTHY = 0
STATUS_TROUBLE = 1
STATUS_NOT_RUNNING = 3  # LSB's "program is not running"
STATUS_CODES = (
    "Exit status, as for `systemctl status`: 0 the daemon runs and nothing is wrong; 1 it runs with"
    " trouble: its store is failing, a reader pins the WAL, a worker is stalled or restarting, no"
    " SMSC link is up, or it has not written its status for 30 s (1 also when status itself fails,"
    " e.g. no database: stderr says why); 3 it is not running: stopped, or exited without a clean"
    " stop (3 also for a config error, as for every command: stderr says so)."
)
row_id = bounded_int("an id")  # an id above SQLite's INTEGER would overflow in the query


def active_locks(status: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """The login locks in the status file still running at `now` (the file is a few seconds old)."""
    elapsed = now - float(status.get("updated_at", now))
    return [lock for lock in status.get("auth_locks", []) if lock["seconds_left"] - elapsed > 0]


def daemon_state(status: dict[str, Any] | None, now: float) -> str | None:
    """Why the daemon counts as not running, or None when it runs."""
    if status is None:
        return "not running"
    if not pid_alive(int(status.get("pid", 0))):
        return f"not running (pid {status.get('pid')} has exited without a clean stop)"
    if now - status.get("updated_at", 0) > STATUS_STALE_SECONDS:
        return f"not answering: pid {status['pid']} last wrote its status {when(status.get('updated_at'))}"
    return None


def status_exit(status: dict[str, Any] | None, now: float) -> int:
    """The exit status of `smsgw status` for a status file read at `now` (see STATUS_CODES).

    A link down while another is up is shown and not counted: an SMSC's maintenance is common and
    the other links carry the mail. With none up nothing goes out, which /healthz answers 503 too.
    A daemon that stopped writing its status still has its pid: running, in trouble."""
    if status is None or not pid_alive(int(status.get("pid", 0))):
        return STATUS_NOT_RUNNING
    if daemon_state(status, now) is not None:
        return STATUS_TROUBLE
    workers = status.get("workers", {}).values()
    links = status.get("links", {}).values()
    trouble = (
        status.get("store")
        or status.get("wal_pinned")
        or any(w.get("state") not in ("running", "starting") for w in workers)
        or not any(link.get("state") == "active" for link in links)
    )
    return STATUS_TROUBLE if trouble else STATUS_HEALTHY


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.housekeeping import read_status

    store = open_store(cfg, must_exist=True)
    counts = store.admin.queue_counts()
    held, release = store.admin.quiet_held()
    waiting, oldest = store.admin.outbox_waiting()
    status = read_status(cfg.state_dir)
    now = time.time()
    down = daemon_state(status, now)
    code = status_exit(status, now)
    if args.json:
        outbox = {"waiting": waiting, "oldest_age_seconds": round(now - oldest, 1) if oldest else None}
        quiet = {"parts": held, "first_release": release}
        queue = {**counts, "held_for_quiet_hours": quiet}
        print(json.dumps({"queue": queue, "outbox": outbox, "daemon": None if down else status}, indent=2))
        return code
    for what, by_state in counts.items():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "none"
        print(f"{what:9} {shown}")
        if what == "parts" and held:  # queued, and not to go before the window ends
            print(f"{'':9} {held} of them {quiet_held(release, ZoneInfo(cfg.gateway.timezone))}")
    if waiting:
        print(
            f"outbox    {waiting} mail(s) waiting, oldest {age(now - oldest)} old (see `smsgw outbox list`)"
        )
    if down is not None or status is None:
        print(f"daemon    {down}")
        return code
    print(f"daemon    running, pid {status['pid']}")
    if trouble := status.get("store"):  # GroupCommit.trouble(): writes failed within the last 30 s
        since = float(status["updated_at"]) - float(trouble["for_seconds"])
        print(
            f"store     failing since {when(since)}: {one_line(str(trouble['error']))},"
            f" {trouble['failures']} failed write(s); new mail is refused until it writes again"
        )
    if pinned := status.get("wal_pinned"):  # gateway.store.checkpoint.PinWatch
        since = float(status["updated_at"]) - float(pinned["for_seconds"])
        print(
            f"store     WAL pinned since {when(since)}: {pinned['wal_bytes'] / 1e6:.1f} MB and growing with"
            " every mail; a reader holds an old snapshot (an sqlite3 shell left in a transaction,"
            " a long report or backup): end it and the next checkpoint cuts the WAL back"
        )
    for name, link in status["links"].items():
        print(
            f"link {name}: {link['state']}, window {link['in_flight']}/{link['window']},"
            f" {link.get('rate', 0)}/s now (max {_allowed(link)}/s), submitted {link['submitted']},"
            f" throttled {link['throttled']},"
            f" reconnects {link['reconnects']}"
        )
    for name, worker in status.get("workers", {}).items():
        line = f"worker {name}: {worker['state']}, restarts {worker['restarts']}"
        if pid := status.get("intake_pids", {}).get(name):
            line += f", pid {pid} (relay port)"
        if worker.get("last_error"):
            line += f", last error {when(worker['last_error_at'])}: {worker['last_error']}"
        print(line)
    locked = len(active_locks(status, now))
    if locked:
        print(f"logins    {locked} locked after failed attempts (`smsgw auth list`, `smsgw auth unlock`)")
    return code


def _allowed(link: dict[str, Any]) -> str:
    """The rate a link may send at, and the configured one when a throttling SMSC slowed it down."""
    now, configured = link["rate_limit"], link.get("rate_configured", link["rate_limit"])
    return f"{now:g}" if now >= configured else f"{now:g}, slowed from {configured:g} after throttling"


def cmd_queue_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = open_store(cfg, must_exist=True).admin.list_messages(args.state, args.limit)
    if not rows:
        print("no messages")
    for r in rows:
        # An SMSC's words among the reasons; a held message has none, and looked stuck without it.
        note = (
            one_line(r["reason"])
            if r["reason"]
            else quiet_held(r["held_until"], ZoneInfo(cfg.gateway.timezone))
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
    if not rows:
        print("no mail recorded without SMS")
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


def cmd_queue_retry(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = open_store(cfg, must_exist=True).admin.retry_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    print(f"message {args.id}: {n} part(s) queued again")
    return 0


def cmd_queue_cancel(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = open_store(cfg, must_exist=True).admin.cancel_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    if n == 0:
        raise CliError(f"message {args.id} has no part waiting to be sent; nothing cancelled")
    print(f"message {args.id}: {n} part(s) cancelled")
    return 0


def cmd_outbox_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = open_store(cfg, must_exist=True).admin.list_outbox(args.state, args.limit)
    if not rows:
        print("outbox empty")
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
    if (args.id is None) == (not args.all):
        raise CliError("give a mail ID or --all", EXIT_USAGE)
    n = open_store(cfg, must_exist=True).admin.retry_outbox(args.id)
    if args.id is not None and n == 0:
        raise CliError(f"no waiting or failed mail with id {args.id} (see `smsgw outbox list`)")
    print(f"{n} mail(s) will be sent again now (a running daemon takes them on its next pass)")
    return 0


def _sender(cfg: Config, given: str | None) -> str:
    if given is not None:
        return given
    users = open_store(cfg, must_exist=True).accounts.list_users(None)
    if len(users) == 1:
        return users[0].email
    if not users:
        raise CliError("no users yet: add one with `smsgw user add EMAIL --account NAME`", EXIT_USAGE)
    raise CliError(f"{len(users)} users exist: say which one sends with --as EMAIL", EXIT_USAGE)


def cmd_send(cfg: Config, args: argparse.Namespace) -> int:
    """Send as a mail client would, so the test covers the listener, the account rules and the link."""
    sender = _sender(cfg, args.sender)
    number = args.number.removeprefix("+")
    if not number.isdigit():
        raise CliError(f"{args.number!r} is not a phone number (e.g. +48601123456)", EXIT_USAGE)
    rcpt = f"{args.number}@{cfg.gateway.domains[0]}"
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, rcpt
    if args.subject:
        msg["Subject"] = args.subject
    msg.set_content(args.text)
    host, port = cfg.smtp.listen_addr
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
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
            f"cannot reach the gateway on smtp.listen {host}:{port}: {exc} (is it running?)"
        ) from exc
    except smtplib.SMTPException as exc:
        raise CliError(f"refused: {exc}") from exc
    reply = text.decode(errors="replace")
    if code >= 400:
        raise CliError(f"refused: {code} {reply}")
    email_id = reply.rpartition(" ")[2]
    print(f"accepted: {code} {reply}")
    if not args.wait:
        return 0
    if not email_id.isdigit():
        print("(not queued as SMS; nothing to wait for)")
        return 0
    return _wait(cfg, int(email_id), args.wait_seconds)


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
    from acl.accounts import trusted_accounts

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
    if trusted_accounts(client_ip, [(account.id, cidr) for cidr in account.networks]):
        return None  # the networks allow it: the reply itself says why (a suspension)
    host = ipaddress.ip_address(client_ip.split("%", 1)[0])
    return (
        f"{sender} belongs to account {account.name}, whose relay networks"
        f" ({', '.join(account.networks) or 'none'}) do not include {client_ip}, the address"
        " `smsgw send` mails from to the relay port (smtp.listen); allow it with"
        f" `smsgw account set {account.name} --add-network {host}/{host.max_prefixlen}`"
    )


def _wait(cfg: Config, email_id: int, limit: float) -> int:
    store = open_store(cfg, must_exist=True)
    deadline = time.monotonic() + limit
    seen: dict[int, str] = {}
    while True:
        messages = store.admin.messages_of_email(email_id)
        for m in messages:
            if seen.get(m["id"]) != m["state"]:
                seen[m["id"]] = m["state"]
                reason = f" ({m['reason']})" if m["reason"] else ""
                print(f"message {m['id']} to {m['recipient']}: {m['state']}{reason}", flush=True)
        if messages and all(m["state"] in FINAL_PART for m in messages):
            return 0 if all(m["state"] == "delivered" for m in messages) else 1
        if time.monotonic() > deadline:
            raise CliError(f"no final state within {limit:.0f} s; follow it with `smsgw queue list`")
        time.sleep(0.2)


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
        "queue", help="list, retry or cancel SMS messages; list mail recorded, not sent"
    ).add_subparsers(dest="sub", required=True, metavar="ACTION")
    ql = q.add_parser("list", help="the latest messages, newest first")
    ql.add_argument("--state", choices=MESSAGE_STATES, help="only messages in this state (default: all)")
    ql.add_argument("--limit", type=list_limit, default=50, help="at most this many lines (default 50)")
    ql.set_defaults(func=cmd_queue_list)
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
