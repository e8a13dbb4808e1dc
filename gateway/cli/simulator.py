"""`smsgw simulator`: the built-in SMSC alone, and a phone's SMS or an operator's delivery report
injected into it (R-6.5) through its control port."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gateway.cli.argtypes import bounded_int
from gateway.cli.binderror import bind_error
from gateway.cli.common import EXIT_FAILURE, EXIT_USAGE, LOG_LEVEL_HELP, LOG_LEVELS, CliError, loop_runner

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.config import Config


def port_file(cfg: Config) -> Path:
    """Where a simulator with `control_port = 0` says its port (`smsc.simulator.portfile`)."""
    from smsc.simulator.portfile import port_file as beside

    return beside(cfg.path(cfg.simulator.log))


def cmd_simulator_run(cfg: Config, args: argparse.Namespace) -> int:
    """Only the built-in SMSC, in its own process (for a gateway elsewhere, or a fair benchmark)."""
    import asyncio
    import signal

    from gateway import logging as gwlog
    from gateway.listening import simulator_bind_error
    from smsc.simulator import Simulator
    from smsc.tls import TlsFileError

    gwlog.configure(level=args.log_level)

    async def serve() -> None:
        try:  # TLS files beside the config, as the daemon's
            sim = Simulator(cfg.simulator, cfg.path(cfg.simulator.log), region=cfg.gateway.default_region,
                            base_dir=cfg.base_dir)  # fmt: skip
        except TlsFileError as exc:
            raise CliError(f"[simulator] {exc}") from exc
        try:
            await sim.start()
        except OSError as exc:
            err = simulator_bind_error(sim, exc)
            raise CliError(bind_error(err.key, err.host, err.port, exc, cfg)) from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    loop_runner()(serve())
    return 0


DEMO_PHONE = "+48601123456"


def ask(cfg: Config, command: dict[str, Any]) -> dict[str, Any]:
    """The simulator's answer to a control command; a CliError saying why when there is none."""
    import asyncio

    from smsc.simulator.control import send_command

    port, where = control_port(cfg)
    try:
        answer = asyncio.run(send_command(cfg.simulator.host, port, command))
    except OSError as exc:
        raise CliError(
            f"cannot reach the simulator on port {port}{where}: {exc.strerror or exc};"
            " is `smsgw run` (with [simulator] enabled) or `smsgw simulator run` going?"
        ) from exc
    if not answer.get("ok"):
        raise CliError(f"simulator: {answer.get('error', 'refused')}")
    return answer


def control_port(cfg: Config) -> tuple[int, str]:
    """The simulator's control port, and where it was read when not from the config (for the
    message should it not answer there)."""
    if cfg.simulator.control_port:
        return cfg.simulator.control_port, ""
    from smsc.simulator.portfile import read_port

    path = port_file(cfg)
    found = read_port(path)
    port = found.get("control_port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise CliError(
            f"[simulator] control_port = 0: the simulator's control port is picked when it starts, and"
            f" no running simulator wrote it to {path}; start `smsgw run` (with [simulator] enabled) or"
            " `smsgw simulator run` with this config, or set a fixed control_port"
        )
    return port, f" (read from {path}, written by the simulator pid {found.get('pid', '?')})"


def cmd_simulator_send_mo(cfg: Config, args: argparse.Namespace) -> int:
    if args.reply_to_last == (args.source is not None or args.destination is not None):
        raise CliError("give --to NUMBER [--from PHONE], or --reply-to-last", EXIT_USAGE)
    if not args.reply_to_last and args.destination is None:
        raise CliError("give --to NUMBER (and --from PHONE, default a demo phone)", EXIT_USAGE)
    if not args.reply_to_last and args.source is None:
        args.source = DEMO_PHONE  # a premium vote or a test MO needs some phone; this one is valid
    for option, value in (("--from", args.source), ("--to", args.destination)):
        if value is not None and not (value.isascii() and value.isprintable() and 0 < len(value) <= 20):
            # An SMSC address is ASCII, at most 20 characters (SMPP's source_addr): the control
            # command crashed with an encoding error on anything else.
            raise CliError(
                f"{option}: a phone number or a sender name in ASCII, at most 20 characters", EXIT_USAGE
            )
    command: dict[str, Any] = {"op": "mo", "text": args.text, "shuffle": args.shuffle}
    if args.reply_to_last:
        command["reply_to_last"] = True
    else:
        command.update(source=args.source, destination=args.destination)
    if args.parts is not None:
        command["parts"] = args.parts
    answer = ask(cfg, command)
    route = f"from {answer.get('source', args.source)} to {answer.get('destination', args.destination)}"
    if answer.get("sessions"):
        print(f"MO {route} handed to the gateway")
    else:
        print(f"MO {route} held: no gateway is logged in to the simulator yet")
    return 0


def cmd_simulator_send_report(cfg: Config, args: argparse.Namespace) -> int:
    """R-6.5: a delivery report of the operator's choosing (a late failure, one still pending) for an
    SMS the simulator took, which its own reports (a number's suffix decides) cannot give."""
    if args.last == (args.message_id is not None):
        raise CliError("give the SMSC's MESSAGE_ID (the simulator log's message_id), or --last", EXIT_USAGE)
    command: dict[str, Any] = {"op": "report", "status": args.status}
    if args.error is not None:
        if args.status in ("delivered", "pending"):
            raise CliError("--error goes with a failed --status (failed, expired, rejected, ...)", EXIT_USAGE)
        command["error"] = args.error
    if args.last:
        command["last"] = True
    else:
        command["message_id"] = args.message_id
    answer = ask(cfg, command)
    message_id = answer.get("message_id", args.message_id)
    err = f" (err {args.error:03d})" if args.error is not None else ""
    print(f"report {args.status}{err} for message {message_id} sent")
    if isinstance(already := answer.get("already"), dict):
        print(report_too_late(cfg, already))
        return EXIT_FAILURE  # a script (or the admin's `&&`) must not go on as if the SMS now failed
    elif answer.get("from_log"):
        log = cfg.path(cfg.simulator.log)
        print(
            f"(an SMS the simulator took before its restart, found in its log {log}: if its own report"
            " reached the gateway then, this one changes nothing; `smsgw queue list` says)"
        )
    return 0


def report_too_late(cfg: Config, already: dict[str, Any]) -> str:
    """Why a report injected after the simulator's own final one changes nothing, and how to inject
    one that does: "sent" alone let an admin believe the SMS now failed (the gateway keeps the first
    final report and logs this one `dlr.unmatched`), on the shipped config for every SMS."""
    at = str(already.get("at", ""))[11:19] or "?"
    delay = cfg.simulator.dlr_delay_seconds
    return (
        f"but it changes nothing: the simulator had already reported this SMS {already.get('status')}"
        f" (at {at} UTC), and the gateway keeps an SMS's first final report. The simulator reports each"
        f" SMS {delay:g} s after taking it ([simulator] dlr_delay_seconds): to choose an SMS's report,"
        " raise it (say to 60) in the config, restart, and send the report within that time"
    )


def add_simulator_commands(sub: Any) -> None:
    sim = sub.add_parser("simulator", help="drive the built-in SMSC simulator")
    sim.set_defaults(links_required=False)  # the simulator is the SMSC; it needs no [[smsc]] link
    s = sim.add_subparsers(dest="sub", required=True, metavar="ACTION")
    srun = s.add_parser("run", help="run only the simulator (SMPP, CIMD2 and control ports from [simulator])")
    srun.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help=LOG_LEVEL_HELP)
    srun.set_defaults(func=cmd_simulator_run)
    mo = s.add_parser("send-mo", help="make a phone send an SMS to the gateway")
    mo.add_argument("--from", dest="source", metavar="PHONE", help=f"sending phone (default {DEMO_PHONE})")
    mo.add_argument(
        "--to",
        dest="destination",
        metavar="NUMBER",
        help="the gateway's number the phone writes to (needed without --reply-to-last)",
    )
    mo.add_argument(
        "--reply-to-last",
        action="store_true",
        help="answer the last SMS a phone got (one that failed or was refused never reached a phone),"
        " from that phone to the number it came from, a premium number's too (a paid SMS); after a"
        " restart, the last such SMS in the simulator's log",
    )
    mo.add_argument(
        "--parts",
        type=bounded_int("a number of segments", 1, 255),  # the concatenation header counts in one octet
        metavar="N",
        help="send the text as N concatenated segments",
    )
    mo.add_argument("--shuffle", action="store_true", help="send the segments out of order")
    mo.add_argument("text", help="the SMS text the phone sends")
    mo.set_defaults(func=cmd_simulator_send_mo)
    rep = s.add_parser("send-report", help="send a delivery report for an SMS the simulator took")
    rep.add_argument(
        "message_id", nargs="?", metavar="MESSAGE_ID", help="the SMSC's id (the simulator log's)"
    )
    rep.add_argument("--last", action="store_true", help="for the last SMS the simulator took")
    rep.add_argument(
        "--status",
        default="delivered",
        choices=("delivered", "failed", "pending", "expired", "rejected", "undeliverable", "deleted"),
        help="what the report says: delivered; failed (the sender gets a bounce); pending (not final:"
        " the SMS waits for a later report); or the final state of a failed one, as an operator's"
        " receipt names it: expired (EXPIRED), rejected (REJECTD), undeliverable (UNDELIV), deleted"
        " (DELETED); on CIMD2 its 061 status code (default delivered)",
    )
    rep.add_argument(
        "--error",
        type=bounded_int("an error code", 0, 999),
        metavar="N",
        help="the error code of a failed report: SMPP's err: in the receipt, CIMD2's 062 reason"
        " (default 001, unknown subscriber)",
    )
    rep.set_defaults(func=cmd_simulator_send_report)
