"""The `smsgw` command line: running the daemon, checking the config, the simulator.

Status, queue, outbox and send live in `ops`; accounts, users and opt-outs in `admin`; the
systemd layout and certificates in `service`. Errors are one line naming
the problem, with a non-zero exit code; nothing prints a traceback at an admin.

Each command imports what it needs when it runs, and its parser's module only when it is the
command given (`gateway.cli.commands`): monitoring runs `smsgw status` every minute, and `smsgw --version`
or `--help` imported most of the daemon (seconds of CPU on a small machine) before saying a line.
"""

from __future__ import annotations

try:  # Ctrl-C while Python still imports (the first half second): exit 130 as `main` does, no traceback
    import argparse
    import signal
    import sys

    if "run" in sys.argv[1:]:  # as `_main` does once the arguments are read, before the imports below:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a HUP in them ended the daemon (status 129)
    from collections.abc import Sequence
    from pathlib import Path
    from typing import TYPE_CHECKING

    from gateway.cli.commands import Commands, Parser
    from gateway.cli.common import EXIT_FAILURE, CliError
    from gateway.cli.diskroom import full_disk_note  # here: no import may be left for an EMFILE
    from gateway.cli.mainerrors import file_error, stray_arguments, unknown_option
except KeyboardInterrupt:
    raise SystemExit(130) from None

if TYPE_CHECKING:
    from gateway.config import Config

# ---- commands ---------------------------------------------------------------------------------


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    import signal

    from gateway import logging as gwlog
    from gateway.cli.common import refuse_root_in_service_dir
    from gateway.statelock import StateDirBusy
    from gateway.upgradewait import claim_at_start

    # Ignored from the start (its default ends the process, and systemd then leaves the gateway
    # down); the running loop logs it (`gateway.daemon`).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Before the first file: the pid, status and WAL files root made there locked the service out.
    refuse_root_in_service_dir(cfg)
    gwlog.configure(json=True if args.json_logs else None, level=args.log_level)
    try:
        # Before the imports below (a second or more): a command run meanwhile saw no daemon and
        # upgraded the database itself. One upgrading it now is waited for.
        claim_at_start(cfg)
    except StateDirBusy as exc:
        raise CliError(str(exc)) from exc
    import errno
    import sqlite3
    import time

    import structlog

    from billing_reports.dirproblem import start_problem
    from gateway.cli.binderror import cannot_bind, first_busy
    from gateway.cli.common import EXIT_CONFIG, database_error, loop_runner
    from gateway.cli.demoaccount import demo_doubts
    from gateway.cli.diskroom import room_note
    from gateway.cli.stored import start_warnings
    from gateway.codestamp import CodeChanged
    from gateway.configcheck import exposed_secrets, state_dir_problem
    from gateway.configdoubts import setup_doubts
    from gateway.daemon import Daemon
    from gateway.listening import ListenError
    from gateway.readonlyfs import refusal_exit
    from gateway.store.db import StoreError, StoreUnusable
    from gateway.store.walcheck import refuse_lost_commits
    from gateway.vital import DaemonTaskLost

    problem = state_dir_problem(cfg)
    if problem is not None:  # a filesystem read-only itself exits 1: the unit starts it again
        raise CliError(problem, refusal_exit(problem))
    log = structlog.get_logger(__name__)
    for exposed in exposed_secrets(cfg, args.config):  # a log line like any other (JSON under systemd)
        log.warning("config.secret_readable", **exposed._asdict())
    for event, doubt in setup_doubts(cfg):
        log.warning(event, detail=doubt)
    if (billing := start_problem(cfg.billing_dir)) is not None:  # SMS go on; said at once
        log.warning("config.billing_dir_unwritable", detail=billing)
    # Before anything is made (database, demo account, web password), after the warnings that make
    # nothing: a start refused for its ports still says what else its admin must fix.
    if (busy := first_busy(cfg)) is not None:
        raise cannot_bind(cfg, *busy, OSError(errno.EADDRINUSE, "in use"))
    try:
        # Before the first read of the database (`start_warnings`): SQLite would hide a damaged WAL.
        refuse_lost_commits(cfg.db_path, time.time())
    except StoreUnusable as exc:
        raise CliError(str(exc), EXIT_CONFIG) from exc
    for event, line in start_warnings(cfg):
        log.warning(event, detail=line)
    for line in demo_doubts(cfg):
        log.warning("config.demo_left", detail=line)
    runner = loop_runner()
    try:
        daemon = Daemon(cfg, config_path=args.config.resolve(), log_level=args.log_level)
        daemon.json_logs = True if args.json_logs else None
        runner(daemon.run())
    except ListenError as exc:
        raise cannot_bind(cfg, exc.key, exc.host, exc.port, exc.cause) from exc
    except (StateDirBusy, CodeChanged, DaemonTaskLost) as exc:  # exit 1: systemd starts it again
        raise CliError(str(exc)) from exc
    except StoreUnusable as exc:
        # A database newer than this smsgw, damaged, or not writable by its user: a restart cannot
        # help, and systemd restarting every 5 s for ever would only fill the journal (exit 3 is the
        # unit's RestartPreventExitStatus). A full disk or a lock at start is no such thing: exit 1.
        raise CliError(str(exc), EXIT_CONFIG) from exc
    except StoreError as exc:  # an open failing on a full disk says an I/O error: the room said
        raise CliError(f"{exc}{room_note(cfg.state_dir, exc)}") from exc
    except sqlite3.Error as exc:
        raise CliError(database_error(cfg.db_path, exc)) from exc
    except PermissionError as exc:
        raise CliError(f"cannot start: {exc.filename or ''}: permission denied for this user") from exc
    except OSError as exc:
        raise CliError(f"cannot start: {exc}{room_note(cfg.state_dir, exc, ': ')}") from exc
    return 0


def cmd_accept_wal_loss(cfg: Config, args: argparse.Namespace) -> int:
    """The "start anyway" that a start refused for its WAL (`gateway.store.walcheck`) names."""
    import sqlite3
    import time

    from gateway import statelock
    from gateway.cli.common import EXIT_CONFIG, database_error, refuse_root_in_service_dir
    from gateway.statelock import StateDirBusy
    from gateway.store.db import StoreUnusable
    from gateway.store.walcheck import accept_loss, nothing_lost

    refuse_root_in_service_dir(cfg)
    db = cfg.db_path
    if not (db.exists() and db.stat().st_size > 0):
        raise CliError(f"no database at {db} (is state_dir right?)")
    try:
        with statelock.held(cfg.state_dir), statelock.database_alone(cfg.state_dir, 5):
            if nothing_lost(db):
                # A clean stop, or a crash whose WAL is whole: the start goes ahead with every commit.
                # Nothing to accept, and no loss to log (a warning here reads as mail lost).
                print(f"{db}: its WAL lost nothing, so there is no loss to accept; nothing was changed")
                print("start the daemon as it is (systemctl start smsgw)")
                return 0
            kept, frames = accept_loss(db, time.time())
    except StateDirBusy as exc:
        who = f"pid {exc.pid}" if exc.pid else "another process"
        raise CliError(
            f"smsgw is running ({who}) with state_dir {cfg.state_dir}: its start was not refused, so there"
            " is no WAL loss to accept; accept-wal-loss is for a start refused for its WAL, with the daemon"
            " stopped"
        ) from exc
    except statelock.DatabaseInUse as exc:
        raise CliError(
            f"database {db} is open in another smsgw command ({exc}): wait for it to end (or stop it),"
            " then run accept-wal-loss again"
        ) from exc
    except StoreUnusable as exc:
        raise CliError(str(exc), EXIT_CONFIG) from exc
    except sqlite3.Error as exc:
        raise CliError(database_error(db, exc)) from exc
    print(f"{db}: took {frames} valid WAL frame(s) into the database; what the WAL lost is lost")
    for path in kept:
        print(f"kept as it was: {path} (delete it once you no longer need it)")
    print("start the daemon (systemctl start smsgw)")
    return 0


def cmd_check_config(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.cli.checkconfig import check_config

    return check_config(cfg, args)


# ---- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from gateway import __version__
    from gateway.cli.common import CONFIG_ENV, LOG_LEVELS, SYSTEM_CONFIG

    p = Parser(prog="smsgw", description="Email-to-SMS gateway")  # an address may begin with "-"
    p.add_argument("--version", action="version", version=f"smsgw {__version__}")
    p.add_argument(
        "--log-level",
        dest="cli_log_level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="log lines of a command (on stderr) of this level and above: "
        f"{', '.join(LOG_LEVELS)} (default WARNING; `run` has its own --log-level)",
    )
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help=f"config file (default: ${CONFIG_ENV}, else ./config.toml, else {SYSTEM_CONFIG})",
    )
    p.add_subparsers(dest="command", required=True, metavar="COMMAND", action=Commands)
    return p


def add_daemon_commands(sub: argparse._SubParsersAction) -> None:
    from gateway.cli.common import LOG_LEVEL_HELP, LOG_LEVELS

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--json-logs", action="store_true", help="JSON logs even on a terminal")
    run.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help=LOG_LEVEL_HELP)
    run.set_defaults(func=cmd_run)
    sub.add_parser(
        "check-config",
        help="validate the config and exit",
        description="Read the config as `smsgw run` would, check its values and the state directory,"
        " warn about secrets other users may read, and exit 0 if it is fine, 3 if not.",
    ).set_defaults(func=cmd_check_config)


def add_wal_loss_command(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "accept-wal-loss",
        help="start anyway after a start refused a damaged or missing WAL",
        description="After `smsgw run` exited 3 because smsgw.db-wal was damaged or missing (mail"
        " answered 250 would be lost): keep a copy of the WAL and -shm, take what is still valid of the"
        " WAL into the database and let the next start go ahead. Restoring a backup is the"
        " alternative. The daemon must be stopped.",
    ).set_defaults(func=cmd_accept_wal_loss)


# Options whose value may be all dashes: argparse reads `--end-marker ---` as a second option.
DASH_VALUE_OPTIONS = frozenset({"--end-marker"})


def dash_values(argv: list[str]) -> list[str]:
    """`--end-marker ---` as `--end-marker=---`, which argparse takes (a bare `--` it still drops from
    the joined form too: `common.EndMarker` puts it back).

    Only a value that cannot be an option name is joined (`-`, `--`, `---`, `-- `): a forgotten
    value before the next option (`--end-marker --dlr-mail all`) is still refused by argparse.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # everything after it is positional already
            return out + argv[i:]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if arg in DASH_VALUE_OPTIONS and following is not None and not following.lstrip("-")[:1].isalnum():
            out.append(f"{arg}={following}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _config_exit(args: argparse.Namespace) -> int:
    """The exit status of a config that cannot be read or is refused: 3, the unit's
    RestartPreventExitStatus (a daemon refusing its config is not started again every 5 s, and units
    installed before list no other), and what scripts of every other command read; for `status` 4,
    LSB's "status unknown", since its 3 says "not running": a check given a config that does not
    exist took a gateway running fine for one stopped."""
    from gateway.cli.common import EXIT_CONFIG

    if getattr(getattr(args, "func", None), "__name__", "") == "cmd_status":
        from gateway.cli.status import STATUS_UNKNOWN

        return STATUS_UNKNOWN
    return EXIT_CONFIG


def _status_json_unread(args: argparse.Namespace, error: str) -> None:
    """`status --json` prints its object even when no config could be read (a misspelt key): a
    monitoring check parsing stdout found nothing there. Whether a daemon runs is then unknown."""
    if getattr(args, "json", False) and getattr(args.func, "__name__", "") == "cmd_status":
        from gateway.cli.statusdaemon import print_unread

        print_unread(None, error, "unknown")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` (default: the process's arguments) and return its exit status.

    Ctrl-C and file errors are caught around the whole run, not only the command's call: a Ctrl-C
    in the imports before it printed a KeyboardInterrupt traceback, and an OSError no command
    foresaw (`install-service --root` on a file) a traceback that named the file only at its end."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the command's own handling: its imports, the config's reading
        return 130
    except OSError as exc:  # a file error no command foresaw: one line naming the file, not a traceback
        print(f"smsgw: {file_error(exc)}{full_disk_note(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _main(argv: Sequence[str] | None) -> int:
    from gateway.tornline import end_torn_line

    # Before anything is written: a config warning must not merge with a line a killed run left torn.
    end_torn_line(sys.stderr)
    parser = build_parser()
    given = dash_values(sys.argv[1:] if argv is None else list(argv))
    if (unknown := unknown_option(parser, given)) is not None:  # not "invalid choice" of its value
        parser.error(unknown)
    args, extras = parser.parse_known_args(given)
    if getattr(args, "func", None) is cmd_run:
        # At once, not once the config is read: a HUP in the first seconds ended the daemon without a
        # word, which systemd takes for a clean stop and does not restart (see `cmd_run`).
        import signal

        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if extras:  # in the usage of the command they were given to (exit 2, as argparse's own errors)
        command: argparse.ArgumentParser = getattr(args, "_parser", parser)
        command.error(stray_arguments(command, given, extras))
    # Past the arguments (`--version`, `--help` and a usage error exit before): what running needs.
    import os
    import signal
    import sqlite3
    from contextlib import nullcontext

    from gateway import statelock
    from gateway.cli.common import EXIT_USAGE, database_error, find_config, use_zone
    from gateway.cli.diskroom import room_note
    from gateway.cli.terminal import Printable
    from gateway.config import ConfigError, load_config
    from gateway.logging import CLI_LOG_LEVEL, cli_console
    from gateway.store.accounts import Conflict, NotFound
    from gateway.store.db import StoreError

    try:
        cfg: Config | None = None
        if getattr(args, "needs_config", True):
            args.config, found = find_config(args.config)
            if found is not None:
                print(f"smsgw: using config {args.config} ({found})", file=sys.stderr)
            cfg = load_config(args.config, links_required=getattr(args, "links_required", True))
            use_zone(cfg)
    except ConfigError as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        _status_json_unread(args, str(exc))
        return _config_exit(args)
    except CliError as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        _status_json_unread(args, str(exc))
        return exc.code
    sys.stdout = Printable(sys.stdout)  # type: ignore[assignment]  # listings show data from outside
    # `run` and `simulator run` set up their own logging (their --log-level): every other command
    # keeps its INFO lines off the terminal.
    console = nullcontext() if "log_level" in vars(args) else cli_console(args.cli_log_level or CLI_LOG_LEVEL)
    try:
        with console:
            code = int(args.func(cfg, args))
        sys.stdout.flush()  # a reader gone (`| head`) shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # As a Unix tool that SIGPIPE ends: quietly, status 128 + SIGPIPE. Python would flush the
        # rest at exit into the closed pipe again, so stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except CliError as exc:
        print(f"smsgw: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        # Raised while running too (a certificate or password_file that cannot be read): the
        # unit's RestartPreventExitStatus keeps systemd from restarting into the same error.
        print(f"smsgw: {exc}", file=sys.stderr)
        return _config_exit(args)
    except sqlite3.Error as exc:
        # A write after the open: most often the lock someone else held past the busy wait.
        where = cfg.db_path if cfg is not None else Path("(unknown)")
        print(f"smsgw: {database_error(where, exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except OverflowError as exc:
        # Argument types bound their numbers; this catches one that reaches SQLite unbounded.
        print(f"smsgw: a number given is too large ({exc})", file=sys.stderr)
        return EXIT_USAGE
    except (NotFound, Conflict, StoreError, argparse.ArgumentTypeError, ValueError) as exc:
        where = cfg.state_dir if cfg is not None and isinstance(exc, StoreError) else None
        print(f"smsgw: {exc}{room_note(where, exc)}", file=sys.stderr)  # an open on a full disk
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    finally:
        statelock.release_database()  # the command is over: a restore may replace the file now


if __name__ == "__main__":
    sys.exit(main())
