"""`smsgw status`: the queue, the outbox and the daemon as its status file tells them, and an exit
status a monitoring check can read alone (it exited 0 also with the daemon crashed)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.cli.commandpath import as_user
from gateway.cli.common import EXIT_CONFIG, CliError, DaemonStarting, database_error, open_store
from gateway.cli.statusdaemon import (
    STATUS_STALE_SECONDS as STATUS_STALE_SECONDS,  # (gateway.web.attention reads it here)
)
from gateway.cli.statusdaemon import (
    UNKNOWN,
    DatabaseLocked,
    daemon_json,
    daemon_now,
    daemon_state,
    lock_holder,
    print_unread,
    probe_lock,
    refuse_unreadable,
    running_words,
    when,
)
from gateway.cli.statuslinks import link_lines, links_words
from gateway.cli.statusupgrade import upgrade_waits
from gateway.cli.statusworkers import none_serving, silent_workers, worker_lines
from gateway.cli.terminal import one_line

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.routing import Route
    from gateway.store.db import Store

# An SMS with a part due that has waited this long since it was accepted is trouble: an SMSC that
# throttled every submit left the queue standing for minutes while the link was up and status said 0.
QUEUE_STUCK_SECONDS = 600.0


# A database another process holds (`gateway.store.trouble.LockWatch`), and what ends it: the status's
# line, and /healthz and STATUS= in the same words (/healthz once said `StoreBusy`, a class name).
STORE_LOCKED = "database locked by another process"
STORE_LOCKED_ADVICE = "end the sqlite3 shell or the backup holding it"


# `smsgw status` exits as `systemctl status` and LSB init scripts do, so that a monitoring check
# or a script can tell from the code alone (it exited 0 also with the daemon crashed).
STATUS_HEALTHY = 0
STATUS_TROUBLE = 1
STATUS_NOT_RUNNING = 3  # LSB's "program is not running"
STATUS_UNKNOWN = 4  # LSB's "program or service status is unknown": the config cannot be read
STATUS_CODES = (
    "Exit status, as for `systemctl status`: 0 the daemon runs and nothing is wrong; 1 it runs with"
    " trouble: its store is failing or locked by another process, state_dir's disk is nearly full,"
    " a reader pins the WAL, an SMS due has waited over 10 min, a worker is stalled or restarting (or an"
    " intake process silent over 5 s, or none serving the relay port: restarting or starting, as /healthz's"
    " 503), no"
    " SMSC link is up (or none for some prefix), the submission port is configured but off, the"
    " outbox's mail has waited for the relay over 30"
    " min, a billing run or the retention purge failed (until a run succeeds), or it has not written"
    " its status for 30 s (1 also when status itself fails, e.g. on a"
    " database this user may not open, or one refused as every command refuses it, such as one"
    " hard-linked from another state_dir: stderr says why), also while it starts (checking or upgrading the"
    " database: status says which); 2 a usage error, also status run as root in the service user's"
    f" state_dir (run it as the smsgw user: {as_user('smsgw', 'status')}); 3 it is not running: stopped, or"
    " exited without a clean stop (3 also while another process holds its database locked: status waits"
    " 2 s for it, then names that process's pid on stderr; 3 also on a database older than this smsgw's,"
    " which status does not upgrade: the daemon's start does), or no database where state_dir points (no"
    " daemon ever ran there, e.g. a mistyped state_dir, or a database missing where one existed: stderr"
    " says so); 4 unknown: the config cannot be read or is refused (a --config that does not exist, a"
    " key misspelt), so status cannot tell whether the daemon runs (every other command exits 3 for"
    " it). For a Nagios-style check, read 3 as CRITICAL and 4 as UNKNOWN."
)


def active_locks(status: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """The login locks in the status file still running at `now` (the file is a few seconds old)."""
    elapsed = now - float(status.get("updated_at", now))
    return [lock for lock in status.get("auth_locks", []) if lock["seconds_left"] - elapsed > 0]


def _active(status: dict[str, Any]) -> Callable[[str], bool]:
    links = status.get("links", {})
    return lambda name: links.get(name, {}).get("state") == "active"


def status_exit(
    status: dict[str, Any] | None,
    now: float,
    routes: Sequence[Route] = (),
    outbox_stuck: bool = False,
    holder: int | None = UNKNOWN,
    queue_stuck: bool = False,
    pinned: Mapping[str, int] | None = None,
    siblings: Mapping[str, Sequence[str]] | None = None,
    jobs_failed: bool = False,
) -> int:
    """The exit status of `smsgw status` for a status file read at `now` (see STATUS_CODES).

    A link down whose numbers another link up takes is shown and not counted: an SMSC's
    maintenance is common and the other links carry the mail. With none up, or none up for some
    of the `routes` (the config's links and their prefixes), their SMS wait, which /healthz answers
    503 too; so do parts `pinned` to a link down (premium answers, `gateway.routing.unserved`). A
    daemon that stopped writing its status still has its pid: running, in trouble; one
    that holds the state directory's lock (`holder`) and has written no status yet is starting: 1."""
    from gateway.routing import unserved

    if (down := daemon_state(status, now, holder)) is not None:
        return STATUS_NOT_RUNNING if down.startswith("not running") else STATUS_TROUBLE
    assert status is not None  # (daemon_state says why otherwise)
    workers = status.get("workers", {}).values()
    links = status.get("links", {}).values()
    trouble = (
        status.get("store")
        or status.get("store_locked")
        or (status.get("disk") or {}).get("low")
        or status.get("wal_pinned")
        or status.get("submission_off")  # configured, not listening: mail clients are refused
        or any(w.get("state") not in ("running", "starting") for w in workers)
        or bool(silent_workers(status, now))  # an intake process without heartbeats: its share takes no mail
        or none_serving(status, now)  # /healthz's 503: the relay port takes no mail (restarting, starting)
        or not any(link.get("state") == "active" for link in links)
        or bool(routes and unserved(routes, _active(status), pinned, siblings))
        or outbox_stuck
        or queue_stuck
        or jobs_failed  # a billing run or purge failing (`billing_reports.failures`): kept until one succeeds
    )
    return STATUS_TROUBLE if trouble else STATUS_HEALTHY


def running_routes(cfg: Config, status: dict[str, Any] | None) -> tuple[list[Route], bool]:
    """The routes the running daemon serves, and whether the config file was edited since it read it.

    Judged by the edited file, an exclusive link added and not yet started was an outage, and one
    commented out for the next restart hid the outage the daemon still had."""
    loaded = (status or {}).get("config")
    if not isinstance(loaded, dict) or not isinstance(loaded.get("routes"), list):
        return list(cfg.routes()), False  # a daemon of an older version: the file is all there is
    routes: list[Route] = [(str(r[0]), list(r[1]), bool(r[2])) for r in loaded["routes"]]
    return routes, bool(cfg.digest and loaded.get("digest") and loaded["digest"] != cfg.digest)


def _began(status: dict[str, Any], trouble: dict[str, Any]) -> float:
    """When a trouble the status file reports (`for_seconds` at its `updated_at`) began."""
    return float(status["updated_at"]) - float(trouble["for_seconds"])


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    refuse_unreadable(cfg, args.json)  # the daemon's user's database: whose it is, who to run as
    try:
        store = _open(cfg, args)
    except DaemonStarting as exc:
        # It checks or upgrades the database: what it holds can be read once it has, not before.
        if args.json:
            print(json.dumps({"daemon": {"state": exc.state}}, indent=2))
        else:
            print(f"daemon    {exc.state}; try again when it runs")
        return STATUS_TROUBLE
    except CliError as exc:
        raise _unread(cfg, args, exc) from exc
    if store is None:
        return STATUS_NOT_RUNNING
    try:
        return _show(cfg, args, store)
    except sqlite3.Error as exc:  # a lock taken after the open, held past the busy wait
        raise _unread(cfg, args, CliError(database_error(cfg.db_path, exc))) from exc


def _open(cfg: Config, args: argparse.Namespace) -> Store | None:
    """The store, after a short look at whether another process holds the database (DatabaseLocked):
    SQLite's busy wait made a stopped daemon's locked database a 34-s wait and an exit 1. None where
    the database waits for its upgrade (`statusupgrade`: said, not upgraded)."""
    holder = lock_holder(cfg)
    probe_lock(cfg, STORE_LOCKED_ADVICE, besides=holder if holder and holder > 0 else None)
    if upgrade_waits(cfg, args.json):  # said, not upgraded (no daemon runs on it)
        return None
    return open_store(cfg, must_exist=True)


def _unread(cfg: Config, args: argparse.Namespace, exc: CliError) -> CliError:
    """The error status exits with where it cannot read the database, its code told by the daemon's
    state, which needs no database; with `--json` the object saying why is printed first (stdout
    was empty, and a check parsing it found nothing at all)."""
    from gateway.statusfile import read_status

    if not cfg.db_path.exists():
        # No database: no daemon ever ran on this state_dir (it makes one), so nothing runs. Exit 1
        # read as "running with trouble" to a monitor that tells the two apart.
        if args.json:
            print_unread(None, str(exc), "not running")
        return CliError(str(exc), STATUS_NOT_RUNNING if exc.code == STATUS_TROUBLE else exc.code)
    status = read_status(cfg.state_dir)
    down = daemon_now(cfg, status, time.time(), lock_holder(cfg))
    state = down if down is not None else "running"
    # Which smsgw runs, and how to restart it: a daemon of an older version, across a schema change,
    # is why this one may not open the database (stderr), and the line README promises was missing.
    line = running_words(cfg, status) if down is None and status is not None else state
    code = exc.code
    locked = isinstance(exc, DatabaseLocked) or (code == STATUS_TROUBLE and _lock_error(str(exc)))
    if locked or code == EXIT_CONFIG:
        # Held by another process, or refused as it is (a second name, a hard link in another
        # state_dir; damaged; newer than this smsgw), whose code 3 said "not running" of a daemon
        # running on it: stopped, the daemon is not running (3) whatever the file's trouble; running
        # or starting, it is in trouble (1), as the status of a running one says.
        code = STATUS_NOT_RUNNING if state.startswith("not running") else STATUS_TROUBLE
        if not args.json:
            print(f"daemon    {line}")  # stderr says why the rest is not shown
    elif not args.json and line != state and not line.startswith("running, pid"):
        print(f"daemon    {line}")
    if args.json:
        running = daemon_json(down, status) if down is None and status is not None else None
        print_unread(cfg.db_path, str(exc), state, running)
    return CliError(str(exc), code)


def _lock_error(text: str) -> bool:
    """Whether an error opening the database is SQLite's lock wait running out."""
    return "database is locked" in text or "database is busy" in text


def _show(cfg: Config, args: argparse.Namespace, store: Store) -> int:
    """The status read from the open store, printed as text or JSON; its exit code."""
    from gateway.adminrules import age, quiet_held
    from gateway.cli.statusrelay import (
        failed_lines,
        outbox_json,
        outbox_lines,
        outbox_trouble,
        relay_login_json,
        relay_login_lines,
    )
    from gateway.configdoubts import maildir_doubts
    from gateway.configlinks import receipt_siblings
    from gateway.routing import unserved
    from gateway.statusfile import read_status, size_words
    from gateway.store.outboxhealth import outbox_health
    from gateway.store.trouble import wal_words

    counts = store.admin.queue_counts()
    held, release = store.admin.quiet_held()
    status = read_status(cfg.state_dir)
    now = time.time()
    mail = outbox_health(store.db.conn, now)
    holder = lock_holder(cfg)
    down = daemon_now(cfg, status, now, holder)
    routes, edited = running_routes(cfg, status)
    held_for_link, siblings = store.admin.pinned_waiting(), receipt_siblings(cfg.smsc)
    # The routes whose SMS wait (an exclusive prefix's links down, premium answers pinned to a link
    # down): the text's routes line, and --json's `routes_unserved`, which exited 1 saying nothing.
    waiting_routes = (
        None
        if down is not None or status is None
        else unserved(routes, _active(status), held_for_link, siblings)
    )
    # README promises that status names the schema: what an upgrade's notes and a restore ask for.
    schema = int(store.db.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0)
    from gateway.store.queueage import queue_oldest

    oldest_due = queue_oldest(store.db.conn, now)
    due_for = None if oldest_due is None else now - oldest_due
    queue_stuck = due_for is not None and due_for > QUEUE_STUCK_SECONDS
    from billing_reports import takenunrecorded
    from billing_reports.failedjobs import failures, words

    failed_jobs = failures(store.db.conn)
    if down is None and status is not None:  # the running daemon's that its database refused to keep
        failed_jobs.update(status.get("jobs_unkept") or {})
    tz = ZoneInfo(cfg.gateway.timezone)
    for kind, failure in failed_jobs.items():
        failure["words"] = words(kind, failure, tz)
    taken = takenunrecorded.holding(store.db.conn)  # no exit 1: the daemon runs as it should
    code = status_exit(
        status,
        now,
        routes,
        outbox_stuck=outbox_trouble(mail, now),
        holder=holder,
        queue_stuck=queue_stuck,
        pinned=held_for_link,
        siblings=siblings,
        jobs_failed=bool(failed_jobs),
    )
    if args.json:
        outbox = outbox_json(mail, now)
        quiet = {"parts": held, "first_release": release}
        queue = {
            **counts,
            "held_for_quiet_hours": quiet,
            "oldest_due_age_seconds": None if due_for is None else round(due_for, 1),
            "stuck": queue_stuck,
        }
        daemon = daemon_json(down, status)
        report = {
            "queue": queue,
            "outbox": outbox,
            "schema": schema,
            "daemon": daemon,
            "routes_unserved": waiting_routes,
            "config_changed": edited,
            # A refusal of the relay login held (no send logs in), or its authentication failing for now.
            "relay_login": relay_login_json(status) if down is None else None,
            # A billing run or retention purge failing, by kind ("billing", "purge"), until one succeeds.
            "failed_jobs": failed_jobs,
            "billing_taken_unrecorded": [{"month": m, "words": takenunrecorded.words(m)} for m in taken],
        }
        print(json.dumps(report, indent=2))
        return code
    for what, by_state in counts.items():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "none"
        print(f"{what:9} {shown}")
        if what == "parts" and held:  # queued, and not to go before the window ends
            print(f"{'':9} {held} of them {quiet_held(release, ZoneInfo(cfg.gateway.timezone), now)}")
    if queue_stuck and due_for is not None:
        links = links_words(status)
        print(f"{'':9} trouble: an SMS due has waited {age(due_for)} since {when(oldest_due)}{links}")
    for line in outbox_lines(mail, now) + (relay_login_lines(status, now) if down is None else []):
        print(line)
    if maildir_doubts(cfg):  # a production gateway whose mail all lands in files (check-config says more)
        print(f"mail      relay {cfg.mail.relay} (nothing leaves this machine)")
    for line in failed_lines(mail):
        print(line)
    print(f"schema    {schema}")
    for kind, failure in failed_jobs.items():
        print(f"{kind:9} {failure['words']}")
    for month in taken:
        print(f"billing   {takenunrecorded.words(month)}")
    if down is not None or status is None:
        print(f"daemon    {down}")
        return code
    print(f"daemon    {running_words(cfg, status)}")
    if edited:
        print(
            f"config    {args.config} changed since the daemon started: restart it to apply;"
            " the routes below are those it runs with"
        )
    if off := status.get("submission_off"):  # gateway.submissionretry: tried again every minute
        print(f"submission off: {one_line(str(off))}")
    if relay_off := status.get("relay_starttls_off"):  # mail still flows, in clear: no exit 1
        print(one_line(str(relay_off)))
    if trouble := status.get("store"):  # GroupCommit.trouble(): writes failed within the last 30 s
        print(
            f"store     failing since {when(_began(status, trouble))}: {one_line(str(trouble['error']))},"
            f" {trouble['failures']} failed write(s), the last {float(trouble['last_seconds_ago']):.0f} s"
            " ago; new mail is refused while writes fail (shown until none has for 30 s)"
        )
    if locked := status.get("store_locked"):  # gateway.store.trouble.LockWatch
        print(
            f"store     {STORE_LOCKED} since {when(_began(status, locked))}: {STORE_LOCKED_ADVICE}"
            " (new mail gets 451 meanwhile)"
        )
    if (disk := status.get("disk")) and disk.get("low"):  # gateway.store.trouble.DiskSpace
        print(
            f"disk      state_dir {cfg.state_dir} nearly full: {size_words(disk['free_bytes'])} free of"
            f" {size_words(disk['total_bytes'])}, under {size_words(disk['floor_bytes'])}; new mail is"
            " refused (452) once it is full: free space there (old logs, backups) or grow the filesystem"
            + wal_words(disk)  # the WAL, once large: what the daemon gives back itself
        )
    if pinned := status.get("wal_pinned"):  # gateway.store.walpin.PinWatch
        print(
            f"store     WAL pinned since {when(_began(status, pinned))}:"
            f" {pinned['wal_bytes'] / 1e6:.1f} MB and growing with every mail; a reader holds an old"
            " snapshot (an sqlite3 shell left in a transaction, a long report or backup): end it and the"
            " next checkpoint cuts the WAL back"
        )
    for cert in status.get("tls", {}).values():  # gateway.tlscert.CertificateWatch, every minute
        for doubt in cert.get("doubts", []):
            print(f"tls       {doubt}")
    for line in link_lines(status, now):
        print(line)
    if any(_active(status)(route[0]) for route in routes) and waiting_routes:
        # (with no link up at all, the links' own lines say it)
        print(f"routes    no link up for {', '.join(waiting_routes)}: their SMS wait")
    for line in worker_lines(status, now):
        print(line)
    locked = len(active_locks(status, now))
    if locked:
        print(f"logins    {locked} locked after failed attempts (`smsgw auth list`, `smsgw auth unlock`)")
    return code
