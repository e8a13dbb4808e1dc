"""The `smsgw` command line: running the daemon, its status and queue, the simulator.

Admin commands for accounts, users and opt-outs live in `cli_admin`. Errors are one line naming
the problem, with a non-zero exit code; nothing prints a traceback at an admin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from gateway.cli.admin import add_admin_commands
from gateway.cli.billing import add_billing_commands
from gateway.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE, CliError, open_store, when
from gateway.config import Config, ConfigError, exposed_secrets, load_config
from gateway.conversations import add_commands as add_conversation_commands
from gateway.conversations import unanswerable
from gateway.logging import end_torn_line
from gateway.premium import add_commands as add_premium_commands
from gateway.store.accounts import Conflict, NotFound
from gateway.store.db import StoreError

# ---- commands ---------------------------------------------------------------------------------


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from gateway import logging as gwlog
    from gateway.daemon import Daemon

    gwlog.configure(json=True if args.json_logs else None, level=args.log_level)
    for exposed in exposed_secrets(cfg, args.config):  # a log line like any other (JSON under systemd)
        structlog.get_logger(__name__).warning("config.secret_readable", **exposed._asdict())
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
    for exposed in exposed_secrets(cfg, args.config):
        print(f"smsgw: warning: {exposed.line()}", file=sys.stderr)
    print(
        f"config OK: {len(cfg.smsc)} SMSC link(s), SMTP on {cfg.smtp.listen},"
        f" domains {', '.join(cfg.gateway.domains)}"
    )
    for line in unanswerable(cfg):
        print(f"note: {line}")
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.housekeeping import read_status

    store = open_store(cfg)
    counts = store.admin.queue_counts()
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
    for name, worker in status.get("workers", {}).items():
        line = f"worker {name}: {worker['state']}, restarts {worker['restarts']}"
        if worker.get("last_error"):
            line += f", last error {when(worker['last_error_at'])}: {worker['last_error']}"
        print(line)
    return 0


def cmd_queue_list(cfg: Config, args: argparse.Namespace) -> int:
    rows = open_store(cfg).admin.list_messages(args.state, args.limit)
    if not rows:
        print("no messages")
    for r in rows:
        reason = f"  ({r['reason']})" if r["reason"] else ""
        print(
            f"{r['id']:>8}  {when(r['created_at'])}  {r['recipient']:<16} {r['state']:<10}"
            f" {r['parts_total']} part(s)  from {r['mail_from']}{reason}"
        )
    return 0


def cmd_queue_retry(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = open_store(cfg).admin.retry_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    print(f"message {args.id}: {n} part(s) queued again")
    return 0


def cmd_queue_cancel(cfg: Config, args: argparse.Namespace) -> int:
    try:
        n = open_store(cfg).admin.cancel_message(args.id)
    except KeyError as exc:
        raise CliError(f"no message with id {args.id}") from exc
    if n == 0:
        raise CliError(f"message {args.id} has no part waiting to be sent; nothing cancelled")
    print(f"message {args.id}: {n} part(s) cancelled")
    return 0


def cmd_simulator_run(cfg: Config, args: argparse.Namespace) -> int:
    """Only the built-in SMSC, in its own process (for a gateway elsewhere, or a fair benchmark)."""
    from gateway import logging as gwlog
    from smsc.simulator import Simulator

    gwlog.configure(level=args.log_level)

    async def serve() -> None:
        sim = Simulator(cfg.simulator, cfg.path(cfg.simulator.log), region=cfg.gateway.default_region)
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

    if args.reply_to_last == (args.source is not None or args.destination is not None):
        raise CliError("give --from PHONE and --to NUMBER, or --reply-to-last", EXIT_USAGE)
    if not args.reply_to_last and (args.source is None or args.destination is None):
        raise CliError("give both --from PHONE and --to NUMBER", EXIT_USAGE)
    command: dict[str, Any] = {"op": "mo", "text": args.text, "shuffle": args.shuffle}
    if args.reply_to_last:
        command["reply_to_last"] = True
    else:
        command.update(source=args.source, destination=args.destination)
    if args.parts is not None:
        command["parts"] = args.parts
    try:
        answer = asyncio.run(send_command(cfg.simulator.host, cfg.simulator.control_port, command))
    except OSError as exc:
        raise CliError(
            f"cannot reach the simulator on port {cfg.simulator.control_port}: {exc.strerror}"
        ) from exc
    if not answer.get("ok"):
        raise CliError(f"simulator: {answer.get('error', 'refused')}")
    route = f"from {answer.get('source', args.source)} to {answer.get('destination', args.destination)}"
    if answer.get("sessions"):
        print(f"MO {route} handed to the gateway")
    else:
        print(f"MO {route} held: no gateway is logged in to the simulator yet")
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

    add_admin_commands(sub)
    add_conversation_commands(sub)
    add_premium_commands(sub)
    add_billing_commands(sub)

    sim = sub.add_parser("simulator", help="drive the built-in SMSC simulator")
    sim.set_defaults(links_required=False)  # the simulator is the SMSC; it needs no [[smsc]] link
    s = sim.add_subparsers(dest="sub", required=True)
    srun = s.add_parser("run", help="run only the simulator (SMPP, CIMD2 and control ports from [simulator])")
    srun.add_argument("--log-level", default="INFO")
    srun.set_defaults(func=cmd_simulator_run)
    mo = s.add_parser("send-mo", help="make a phone send an SMS to the gateway")
    mo.add_argument("--from", dest="source", metavar="PHONE")
    mo.add_argument("--to", dest="destination", metavar="NUMBER")
    mo.add_argument(
        "--reply-to-last", action="store_true", help="answer the last SMS the simulator received"
    )
    mo.add_argument("--parts", type=int, metavar="N", help="send the text as N concatenated segments")
    mo.add_argument("--shuffle", action="store_true", help="send the segments out of order")
    mo.add_argument("text")
    mo.set_defaults(func=cmd_simulator_send_mo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything is written: a config warning must not merge with a line a killed run left torn.
    end_torn_line(sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, links_required=getattr(args, "links_required", True))
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
