"""The `smsgw` command line: the daemon and every admin task.

Admin commands open the same SQLite file as the running daemon (WAL lets both work at once) and
change rows through the store's verbs, so the daemon sees the change on the next mail. Errors are
one line naming the problem, with a non-zero exit code; nothing prints a traceback at an admin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.cli_acl import add_user_commands
from gateway.config import Config, ConfigError, load_config, network
from gateway.store import Store, StoreError
from gateway.store_accounts import Conflict, NotFound

EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_FAILURE = 1


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _store(cfg: Config) -> Store:
    return Store.open(cfg.db_path, create=True)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


# ---- commands ---------------------------------------------------------------------------------


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from gateway import logging as gwlog
    from gateway.daemon import Daemon

    gwlog.configure(json=True if args.json_logs else None, level=args.log_level)
    try:
        import uvloop  # optional: faster event loop where installed

        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(Daemon(cfg).run())
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot start: {exc}") from exc
    return 0


def cmd_check_config(cfg: Config, args: argparse.Namespace) -> int:
    print(
        f"config OK: {len(cfg.smsc)} SMSC link(s), SMTP on {cfg.smtp.listen},"
        f" domains {', '.join(cfg.gateway.domains)}"
    )
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.daemon import read_status

    store = _store(cfg)
    counts = store.queue_counts()
    status = read_status(cfg.state_dir)
    if args.json:
        print(json.dumps({"queue": counts, "daemon": status}, indent=2))
        return 0
    for what, by_state in counts.items():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "none"
        print(f"{what:9} {shown}")
    if status is None or time.time() - status.get("updated_at", 0) > 30:
        print("daemon    not running (no recent status)")
        return 0
    print(f"daemon    running, pid {status['pid']}")
    for name, link in status["links"].items():
        print(
            f"link {name}: {link['state']}, window {link['in_flight']}/{link['window']},"
            f" {link.get('rate', 0)}/s now (max {link['rate_limit']}/s), submitted {link['submitted']},"
            f" throttled {link['throttled']},"
            f" reconnects {link['reconnects']}"
        )
    return 0


def cmd_queue_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = _store(cfg).list_messages(args.state, args.limit)
    if not rows:
        print("no messages")
    for r in rows:
        reason = f"  ({r['reason']})" if r["reason"] else ""
        print(
            f"{r['id']:>8}  {_when(r['created_at'])}  {r['recipient']:<16} {r['state']:<10}"
            f" {r['parts_total']} part(s)  from {r['mail_from']}{reason}"
        )
    return 0


def cmd_queue_retry(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = _store(cfg).retry_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    print(f"message {args.id}: {n} part(s) queued again")
    return 0


def cmd_queue_cancel(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = _store(cfg).cancel_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    if n == 0:
        raise CliError(f"message {args.id} has no part waiting to be sent; nothing cancelled")
    print(f"message {args.id}: {n} part(s) cancelled")
    return 0


def cmd_account_add(cfg: Config, args: argparse.Namespace) -> int:
    for cidr in args.relay_network:
        network(cidr)
    acc = _store(cfg).add_account(args.name, networks=args.relay_network, sender=args.sender)
    print(f"account {acc.name} added (networks: {', '.join(acc.networks) or 'none'})")
    return 0


def cmd_account_list(cfg: Config, args: argparse.Namespace) -> int:
    accounts = _store(cfg).list_accounts()
    if not accounts:
        print("no accounts")
    for a in accounts:
        state = f"SUSPENDED ({a.suspended_reason})" if a.suspended_at else "active"
        print(
            f"{a.name}: sender {a.sender or cfg.gateway.default_sender},"
            f" networks {', '.join(a.networks) or '-'},"
            f" split {a.split_mode}, transliterate {'yes' if a.transliterate else 'no'}, {state}"
        )
    return 0


def _limit(value: str) -> int | None:
    if value.lower() in ("none", "off", "-"):
        return None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of SMS parts (or 'none')")
    return int(value)


def cmd_account_set(cfg: Config, args: argparse.Namespace) -> int:
    from acl.quiet import parse_window

    store = _store(cfg)
    settings: dict[str, Any] = {}
    for key in (
        "sender",
        "split_mode",
        "overflow",
        "validity_hours",
        "end_marker",
        "dlr_mail",
        "notify_address",
    ):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    for key in ("monthly_limit", "daily_limit"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = _limit(value)
    for key in ("transliterate", "bulk", "confirm"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = int(value == "on")
    if args.quiet_hours is not None:
        if args.quiet_hours.lower() in ("none", "off"):
            settings["quiet_start"] = settings["quiet_end"] = None
        else:
            try:
                settings["quiet_start"], settings["quiet_end"] = parse_window(args.quiet_hours)
            except ValueError as exc:
                raise CliError(f"--quiet-hours: {exc}", EXIT_USAGE) from exc
    for cidr in args.add_network + args.remove_network:
        network(cidr)
    if not settings and not args.add_network and not args.remove_network:
        raise CliError("nothing to change; see `smsgw account set --help`", EXIT_USAGE)
    store.update_account(args.name, **settings)
    acc = store.set_account_networks(args.name, add=args.add_network, remove=args.remove_network)
    print(f"account {acc.name} updated")
    return 0


def cmd_account_suspend(cfg: Config, args: argparse.Namespace) -> int:
    store = _store(cfg)
    acc = store.get_account(args.name)
    store.suspend_account(acc.id, args.reason)
    print(f"account {acc.name} suspended")
    return 0


def cmd_account_resume(cfg: Config, args: argparse.Namespace) -> int:
    store = _store(cfg)
    acc = store.get_account(args.name)
    if acc.suspended_at is None:
        raise CliError(f"account {acc.name} is not suspended")
    store.resume_account(acc.id)
    print(f"account {acc.name} resumed")
    return 0


def cmd_user_set(cfg: Config, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    for key in ("monthly_limit", "daily_limit"):
        value = getattr(args, key)
        if value is not None:
            fields[key] = _limit(value)
    if not fields:
        raise CliError("nothing to change; give --monthly-limit and/or --daily-limit", EXIT_USAGE)
    user = _store(cfg).set_user(args.email, **fields)
    print(f"user {user.email} updated")
    return 0


def _number(cfg: Config, value: str) -> str:
    from gateway.addressing import BadNumber, to_e164

    try:
        return to_e164(value, cfg.gateway.default_region)
    except BadNumber as exc:
        raise CliError(f"{value!r} is not a phone number: {exc}", EXIT_USAGE) from exc


def cmd_optout_add(cfg: Config, args: argparse.Namespace) -> int:
    number = _number(cfg, args.number)
    added = _store(cfg).add_optout(number, word=None, source="admin")
    print(f"{number} {'added to' if added else 'already on'} the opt-out list")
    return 0


def cmd_optout_remove(cfg: Config, args: argparse.Namespace) -> int:
    number = _number(cfg, args.number)
    if not _store(cfg).remove_optout(number):
        raise CliError(f"{number} is not on the opt-out list")
    print(f"{number} removed from the opt-out list")
    return 0


def cmd_optout_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = _store(cfg).list_optouts()
    if not rows:
        print("no opt-outs")
    for r in rows:
        word = f" ({r['word']})" if r["word"] else ""
        print(f"{r['number']:<16} {_when(r['created_at'])}  by {r['source']}{word}")
    return 0


def cmd_user_add(cfg: Config, args: argparse.Namespace) -> int:
    if "@" not in args.email:
        raise CliError(f"{args.email!r} is not an email address", EXIT_USAGE)
    user = _store(cfg).add_user(args.email, args.account)
    print(f"user {user.email} added to account {user.account}")
    return 0


def cmd_user_list(cfg: Config, args: argparse.Namespace) -> int:
    users = _store(cfg).list_users(args.account)
    if not users:
        print("no users")
    for u in users:
        print(f"{u.email}  account {u.account}  password {'set' if u.password_hash else 'not set'}")
    return 0


def cmd_user_remove(cfg: Config, args: argparse.Namespace) -> int:
    _store(cfg).remove_user(args.email)
    print(f"user {args.email} removed")
    return 0


def cmd_simulator_run(cfg: Config, args: argparse.Namespace) -> int:
    """Only the built-in SMSC, in its own process (for a gateway elsewhere, or a fair benchmark)."""
    from gateway import logging as gwlog
    from smsc.simulator import Simulator

    gwlog.configure(level=args.log_level)

    async def serve() -> None:
        sim = Simulator(cfg.simulator, cfg.path(cfg.simulator.log))
        await sim.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    asyncio.run(serve())
    return 0


def cmd_simulator_send_mo(cfg: Config, args: argparse.Namespace) -> int:
    from smsc.simulator.control import send_command

    command = {"op": "mo", "source": args.source, "destination": args.destination, "text": args.text}
    try:
        answer = asyncio.run(send_command(cfg.simulator.host, cfg.simulator.control_port, command))
    except OSError as exc:
        raise CliError(
            f"cannot reach the simulator on port {cfg.simulator.control_port}: {exc.strerror}"
        ) from exc
    if not answer.get("ok"):
        raise CliError(f"simulator: {answer.get('error', 'refused')}")
    print(f"MO injected into {answer.get('sessions', 0)} bound session(s)")
    return 0


# ---- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsgw", description="Email-to-SMS gateway")
    p.add_argument(
        "-c", "--config", type=Path, default=Path("config.toml"), help="config file (default ./config.toml)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--json-logs", action="store_true", help="JSON logs even on a terminal")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_run)
    sub.add_parser("check-config", help="validate the config and exit").set_defaults(func=cmd_check_config)
    st = sub.add_parser("status", help="queue counts and link states")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    q = sub.add_parser("queue", help="list, retry or cancel messages").add_subparsers(
        dest="sub", required=True
    )
    ql = q.add_parser("list")
    ql.add_argument("--state", help="queued, submitted, delivered, failed, expired, hold, cancelled")
    ql.add_argument("--limit", type=int, default=50)
    ql.set_defaults(func=cmd_queue_list)
    for name, func in (("retry", cmd_queue_retry), ("cancel", cmd_queue_cancel)):
        qp = q.add_parser(name)
        qp.add_argument("id", type=int)
        qp.set_defaults(func=func)

    a = sub.add_parser("account", help="client companies").add_subparsers(dest="sub", required=True)
    aa = a.add_parser("add")
    aa.add_argument("name")
    aa.add_argument("--relay-network", action="append", default=[], metavar="CIDR")
    aa.add_argument("--sender", metavar="NUMBER_OR_NAME")
    aa.set_defaults(func=cmd_account_add)
    a.add_parser("list").set_defaults(func=cmd_account_list)
    aset = a.add_parser("set", help="change an account's settings")
    aset.add_argument("name")
    aset.add_argument(
        "--sender", metavar="NUMBER_OR_NAME", help="originating address (a name cannot be answered)"
    )
    aset.add_argument("--monthly-limit", metavar="PARTS", help="SMS parts per calendar month, or 'none'")
    aset.add_argument("--daily-limit", metavar="PARTS", help="SMS parts per day, or 'none'")
    aset.add_argument("--split-mode", choices=["concatenated", "separate"])
    aset.add_argument("--transliterate", choices=["on", "off"], help="Polish letters to ASCII to stay in GSM")
    aset.add_argument("--overflow", choices=["truncate", "reject"], help="text over the part limit")
    aset.add_argument("--validity-hours", type=float)
    aset.add_argument("--end-marker", metavar="TEXT")
    aset.add_argument("--confirm", choices=["on", "off"], help="acceptance confirmation email")
    aset.add_argument("--dlr-mail", choices=["none", "failed", "all"])
    aset.add_argument("--notify-address", metavar="EMAIL", help="bounces go here instead of to the sender")
    aset.add_argument("--quiet-hours", metavar="HH:MM-HH:MM", help="hold bulk SMS in this window, or 'none'")
    aset.add_argument("--bulk", choices=["on", "off"], help="treat all of this account's mail as bulk")
    aset.add_argument("--add-network", action="append", default=[], metavar="CIDR")
    aset.add_argument("--remove-network", action="append", default=[], metavar="CIDR")
    aset.set_defaults(func=cmd_account_set)
    asus = a.add_parser("suspend")
    asus.add_argument("name")
    asus.add_argument("--reason", default="suspended by admin")
    asus.set_defaults(func=cmd_account_suspend)
    ares = a.add_parser("resume", help="lift a suspension")
    ares.add_argument("name")
    ares.set_defaults(func=cmd_account_resume)

    u = sub.add_parser("user", help="addresses allowed to send").add_subparsers(dest="sub", required=True)
    ua = u.add_parser("add")
    ua.add_argument("email")
    ua.add_argument("--account", required=True)
    ua.set_defaults(func=cmd_user_add)
    ul = u.add_parser("list")
    ul.add_argument("--account")
    ul.set_defaults(func=cmd_user_list)
    ur = u.add_parser("remove")
    ur.add_argument("email")
    ur.set_defaults(func=cmd_user_remove)
    us = u.add_parser("set", help="per-user limits")
    us.add_argument("email")
    us.add_argument("--monthly-limit", metavar="PARTS")
    us.add_argument("--daily-limit", metavar="PARTS")
    us.set_defaults(func=cmd_user_set)
    add_user_commands(u)

    o = sub.add_parser("optout", help="numbers that asked for no more SMS").add_subparsers(
        dest="sub", required=True
    )
    for name, func in (("add", cmd_optout_add), ("remove", cmd_optout_remove)):
        op = o.add_parser(name)
        op.add_argument("number")
        op.set_defaults(func=func)
    o.add_parser("list").set_defaults(func=cmd_optout_list)

    s = sub.add_parser("simulator", help="drive the built-in SMSC simulator").add_subparsers(
        dest="sub", required=True
    )
    srun = s.add_parser("run", help="run only the simulator (SMPP, CIMD2 and control ports from [simulator])")
    srun.add_argument("--log-level", default="INFO")
    srun.set_defaults(func=cmd_simulator_run)
    mo = s.add_parser("send-mo", help="make a phone send an SMS to the gateway")
    mo.add_argument("--from", dest="source", required=True, metavar="PHONE")
    mo.add_argument("--to", dest="destination", required=True, metavar="NUMBER")
    mo.add_argument("text")
    mo.set_defaults(func=cmd_simulator_send_mo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return int(args.func(cfg, args))
    except CliError as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        return exc.code
    except (NotFound, Conflict, ConfigError, StoreError, argparse.ArgumentTypeError, ValueError) as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
