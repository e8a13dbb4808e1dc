"""`smsgw install-service`: the packaged layout a systemd machine needs, and `smsgw tls selfsigned`.

The layout works as written: a system user, `/etc/smsgw/config.toml` readable by that user's group
(simulator off, every path absolute), `/var/lib/smsgw` owned by the user, and the unit, rendered
from gateway/cli/servicefiles.py with `ExecStart` pointing at the smsgw that ran the command.
`--root DIR` writes the same files under DIR without creating the user or changing owners: for
packaging and for tests. Whether the service can run the command the unit names is
`gateway.cli.serviceexec`'s.
"""

from __future__ import annotations

import argparse
import errno
import grp
import json
import os
import pwd
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.adminrules import DEMO_SENDER
from gateway.cli.commandpath import as_user
from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE, CliError, refuse_root_in_service_dir
from gateway.cli.diskroom import room_note

if TYPE_CHECKING:
    from gateway.config import Config


def _ensure_user(user: str, dry: bool) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    if dry:
        print(f"would create system user {user} (not with --root)")
        return
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            "/var/lib/smsgw",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ],
        check=True,
    )
    print(f"created system user {user}")


# What useradd accepts on every distribution; the name also lands in the unit (User=) and the config.
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _checked_names(args: argparse.Namespace) -> None:
    """The names pasted into config.toml and the unit: anything else (a quote, a newline) would
    write a config that is not TOML, or a unit with lines nobody asked for."""
    from gateway.configbase import is_hostname

    hostname = ("--hostname", args.hostname) if args.hostname else ("this machine's name", socket.getfqdn())
    for option, value in (("--domain", args.domain), hostname):
        if not is_hostname(value):
            raise CliError(
                f"{option} {value!r} is not a host name (letters, digits, hyphens and dots, such as"
                ' "sms.example.com"); give another with --domain / --hostname',
                EXIT_USAGE,
            )
    if not _USER_NAME.match(args.user):
        raise CliError(f"--user {args.user!r} is not a user name (such as smsgw)", EXIT_USAGE)


def _refuse_root(user: str, *, kept: bool) -> None:
    """A unit running the service as uid 0: refused when asked for (`--user root`), warned of when an
    installed unit has it (refused, a re-run could not keep it, and another --user is refused too).

    It wrote User=root without a word. The unit takes every capability away, but uid 0 still owns
    most of the machine's files: a flaw in parsing mail or SMSC traffic would read /etc/shadow and
    write whatever root-owned file the unit leaves writable."""
    try:
        if pwd.getpwnam(user).pw_uid != 0:
            return
    except KeyError:
        return  # created by useradd below: a system user, never uid 0
    why = (
        f"runs the service as {user} (uid 0): the unit takes its capabilities away, but uid 0 still owns"
        " most of the machine's files, so a flaw in parsing mail or SMSC traffic would read /etc/shadow"
        " and write the root-owned files the unit leaves writable"
    )
    if kept:
        print(f"smsgw: warning: the installed unit {why}; give it a user of its own", file=sys.stderr)
        return
    raise CliError(
        f"--user {user} {why}: leave --user out for the system user smsgw (created if missing), or name"
        " another user that is not root",
        EXIT_USAGE,
    )


def _admin_address(args: argparse.Namespace) -> str:
    """`[mail] admin_address`: --admin-address, else postmaster of the domain above --domain.

    Never --domain itself (postmaster@sms.example.com was the default): the relay delivers mail for
    it to the gateway, its MX, which refuses the billing summaries and suspension notices. The
    domain above is where the company's own mail server has a postmaster (RFC 5321 4.5.1); with
    none (`--domain example.com`) the admin must name a mailbox."""
    from gateway.mailheaders import is_plain_address

    given = args.admin_address
    if given is None:
        parent = args.domain.lower().rstrip(".").partition(".")[2]
        if "." not in parent:
            raise CliError(
                f"--domain {args.domain} has no domain above it for the administrator's mailbox: give"
                " --admin-address, a mailbox on your mail server (e.g. it@example.com)",
                EXIT_USAGE,
            )
        return f"postmaster@{parent}"
    if not is_plain_address(given):
        raise CliError(
            f"--admin-address {given!r} is not a mail address (a bare one such as it@example.com)", EXIT_USAGE
        )
    return given.strip()


def _refuse_loops(text: str, admin: str) -> None:
    """The written config's admin address read as `check-config` reads it: one that would come
    back to the gateway (the domain, or the host's name while it takes port 25) is refused here,
    before a config that `run` would refuse is written."""
    from gateway.config import parse_config
    from gateway.configloops import loop_reason

    why = loop_reason(parse_config(text, source="the config to write"), admin)
    if why is not None:
        raise CliError(
            f"--admin-address {admin}: {why}, so mail to it would come back to the gateway and be"
            " refused; give a mailbox elsewhere (e.g. --admin-address it@example.com)",
            EXIT_USAGE,
        )


def _sender(given: str | None) -> tuple[str, str]:
    """`default_sender` to write and a comment for it: --sender, else the walkthrough's demo number
    marked to be replaced (check-config and run warn while it stays), as the SMSC's host is."""
    from gateway.senderrules import sender_problem

    if given is None:
        return json.dumps(DEMO_SENDER), "  # made up: set the number your operator gave you"
    sender = given.strip()
    if (problem := sender_problem(sender)) is not None:
        if sender.casefold() in ("default", "none", ""):  # account set's words, no number here
            problem = "give the number your operator gave you, or leave --sender out"
        raise CliError(f"--sender: {problem}", EXIT_USAGE)
    return json.dumps(sender), ""  # a TOML string: a name may hold a quote


def _not_written(exc: OSError, root: Path) -> str:
    """An install that could not write one of its files: which, why, and what to do about it."""
    where = exc.filename or root
    if exc.errno == errno.EROFS:
        hint = "it is on a read-only filesystem; give a --root on a writable disk"
    elif exc.errno in (errno.EACCES, errno.EPERM) and os.geteuid() == 0:
        hint = "it refuses even root (immutable, or on a read-only mount); give another --root"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = "run it as root, or give a --root this user may write in"
    elif exc.errno == errno.ENOTDIR:
        hint = "a part of that path is a file, not a directory"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk is full; free space there"
    else:
        hint = "check that path"
    return f"cannot write {where}: {exc.strerror or exc}; {hint}; a file said above as written stays"


LOCAL_RELAY = "127.0.0.1:25"
CAPTURE_DIR = "/var/lib/smsgw/mail"


def _relay(
    given: str | None, listeners: list[tuple[str, tuple[str, int], str]], hostname: str
) -> tuple[str, str]:
    """The `[mail] relay` to write and a comment for it.

    Without --relay: a mail server on this machine's port 25, unless the gateway takes that port
    itself (the default --listen 0.0.0.0:25); then its mail is kept as files until the admin names
    the mail server, since a relay that is the gateway would take every bounce back in, for ever.
    """
    from gateway.configbase import host_port
    from gateway.configloops import same_host

    relay = given or LOCAL_RELAY
    try:
        host, port = host_port(relay, "--relay", LOCAL_RELAY, listener=False)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    own = [f"{key} {addr}" for key, (h, p), addr in listeners if p == port and same_host(host, h, hostname)]
    if own and given is not None:
        raise CliError(
            f"--relay {given}: that is the gateway's own {own[0]}: its bounces, notices and answers"
            " would come back to it; give your mail server, e.g. --relay mail.example.com:25",
            EXIT_USAGE,
        )
    if own:
        note = f'  # the gateway takes port {port} itself: set your mail server, e.g. "mail.example.com:25"'
        return f"maildir:{CAPTURE_DIR}", note
    return relay, ""


def cmd_install_service(_cfg: Config | None, args: argparse.Namespace) -> int:
    from gateway.cli.lowport import place_low_port_dropin
    from gateway.cli.serviceexec import own_command, refuse_unreachable
    from gateway.cli.servicefiles import CONFIG, panel_steps
    from gateway.cli.servicekept import keep_unit_choices, rerun_steps
    from gateway.cli.serviceunit import config_on_disk, place_unit, write_file
    from gateway.configbase import host_port

    root = args.root or Path("/")
    dry = args.root is not None
    if dry and root.exists() and not root.is_dir():
        raise CliError(
            f"--root {root} is not a directory; give the directory to write the files under", EXIT_USAGE
        )
    if not dry and os.geteuid() != 0:
        raise CliError(
            "install-service writes to /etc and creates a user: run it as root (or give --root DIR)"
        )
    units = root / "etc/systemd/system"
    given = args.user
    keep_unit_choices(args, units)  # a re-run keeps the installed unit's user and command
    _refuse_root(args.user, kept=given is None)
    _checked_names(args)
    listeners = []
    for key, addr in (("--listen", args.listen), ("--submission", args.submission)):
        try:
            listeners.append((key, host_port(addr, key), addr))
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
    hostname = args.hostname or socket.getfqdn()
    relay, relay_note = _relay(args.relay, listeners, hostname.lower())
    admin = _admin_address(args)
    sender, sender_note = _sender(args.sender)
    command = args.exec or own_command()  # shell words, by its full path: sudo's PATH has no venv in it
    text = CONFIG.format(
        user=args.user, command=command, domain=args.domain,
        hostname=hostname,
        sender=sender, sender_note=sender_note,
        listen=args.listen, submission=args.submission, relay=relay, relay_note=relay_note, admin=admin,
    )  # fmt: skip
    _refuse_loops(text, admin)
    refuse_unreachable(command, dry)
    _ensure_user(args.user, dry)
    try:
        etc, state = root / "etc/smsgw", root / "var/lib/smsgw"
        config = etc / "config.toml"
        kept = config.exists() and not args.force
        if write_file(config, text, 0o640, keep=not args.force) and args.admin_address is None:
            print(
                f"admin_address {admin}: billing summaries, notices and the answers no user gets go there"
                " (--admin-address to choose)"
            )
        (etc / "private").mkdir(parents=True, exist_ok=True)
        (etc / "private").chmod(0o700)
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o750)
        on_disk = config_on_disk(config)
        place_unit(units, on_disk, command, args.user, root, dry)
        place_low_port_dropin(units, on_disk)
        if not dry:
            uid, gid = pwd.getpwnam(args.user).pw_uid, grp.getgrnam(args.user).gr_gid
            os.chown(config, 0, gid)  # the service reads it; only root changes it
            os.chown(etc, 0, gid)
            os.chown(state, uid, gid)
    except OSError as exc:  # a --root on a read-only disk, or under a file: said, not a traceback
        raise CliError(_not_written(exc, root)) from None
    if kept:
        print(rerun_steps(on_disk, root, args.user, command))
        return 0
    to_edit = (
        ["[[smsc]]", "domains"] + ["default_sender"] * bool(sender_note) + ["[mail] relay"] * bool(relay_note)
    )
    if not args.hostname and "." not in hostname:
        print(
            f"warning: this machine's name {hostname!r} has no domain; SMTP greets and bounces name it:"
            " set [gateway] hostname (or run again with --hostname gw.example.com --force)"
        )
    print(
        f"next: edit /etc/smsgw/config.toml ({', '.join(to_edit)}), put the SMSC password in\n"
        "  /etc/smsgw/private/smsc-password and its LoadCredential= line in a drop-in\n"
        "  (systemd/smsgw-credentials.conf; see the README), then\n"
        f"  sudo -u {args.user} {command} --config /etc/smsgw/config.toml check-config\n"
        "  systemctl daemon-reload && systemctl enable --now smsgw\n"
        "  systemctl status smsgw    # the STATUS line shows queued parts and links up\n"
        + panel_steps(args.user, command, hostname)
    )
    return 0


def cmd_tls_selfsigned(cfg: Config, args: argparse.Namespace) -> int:
    from gateway.configcheck import state_dir_problem
    from gateway.tlscert import CertError, make_selfsigned
    from gateway.tlsdoubts import other_names

    # `sudo smsgw tls selfsigned --force` made a key only root could read: the next start of the
    # service exited 3, which systemd does not restart.
    refuse_root_in_service_dir(cfg)
    # The pair goes into state_dir: say why it cannot, as `run` does, instead of an OSError's traceback.
    problem = state_dir_problem(cfg)
    if problem is not None:
        raise CliError(problem, EXIT_CONFIG)
    try:
        cert, key, created = make_selfsigned(cfg, force=args.force)
    except CertError as exc:
        raise CliError(str(exc)) from exc
    except PermissionError as exc:  # state_dir is writable, but a file of an earlier pair is not ours
        raise CliError(
            f"cannot write {exc.filename}: permission denied for this user; run the command as the"
            f" service's user (e.g. `{as_user('smsgw', 'tls selfsigned')}`) or fix the file's owner"
        ) from exc
    except OSError as exc:  # a full disk: the room left and what to do, as every command says it
        said = f"cannot write the certificate into {cfg.state_dir}: {exc.strerror or exc}"
        raise CliError(said + room_note(cfg.state_dir, exc)) from exc
    if not created and (old := other_names(cert, cfg.gateway.hostname)) is not None:
        print(
            f"kept {cert} and {key}, made for {', '.join(old)}, not for {cfg.gateway.hostname} ([gateway]"
            " hostname): mail clients warn of it and mail servers that verify it refuse it;"
            " `smsgw tls selfsigned --force` makes new ones for it"
        )
    elif not created:
        print(f"kept {cert} and {key} (exist; --force makes new ones)")
    else:
        print(f"wrote {cert} and {key} (for {cfg.gateway.hostname})")
    if cfg.smtp.tls_cert_file is not None:
        print("note: [smtp] tls_cert_file is set, so the daemon uses that file, not these")
    print("mail clients must trust it once; for a real certificate set [smtp] tls_cert_file and tls_key_file")
    return 0


def add_service_commands(sub: Any) -> None:
    ins = sub.add_parser(
        "install-service", help="create the smsgw user, /etc/smsgw/config.toml, state dir and systemd unit"
    )
    ins.add_argument("--root", type=Path, help="write under this directory instead of / (no user, no chown)")
    ins.add_argument(
        "--user",
        help="the system user the daemon runs as, created if missing (default: the installed unit's,"
        " else smsgw)",
    )
    ins.add_argument(
        "--domain", default="sms.example.com", help="the mail domain users send to (NUMBER@DOMAIN)"
    )
    ins.add_argument("--hostname", help="this machine's name in SMTP banners (default: its FQDN)")
    ins.add_argument(
        "--admin-address",
        metavar="EMAIL",
        help="the administrator's mailbox for billing summaries and notices, not on --domain"
        " (default: postmaster of the domain above --domain, e.g. postmaster@example.com)",
    )
    ins.add_argument("--listen", default="0.0.0.0:25", help="relay listener (default 0.0.0.0:25)")
    ins.add_argument("--submission", default="0.0.0.0:587", help="submission listener (default 0.0.0.0:587)")
    ins.add_argument(
        "--relay",
        metavar="HOST:PORT",
        help=f"the mail server for bounces, notices and answers (default {LOCAL_RELAY}; when the gateway"
        f" listens on that port itself, its mail is kept under {CAPTURE_DIR} until [mail] relay is set)",
    )
    ins.add_argument(
        "--sender",
        metavar="NUMBER",
        help="[gateway] default_sender: the number your operator gave you, which SMS go out from"
        f" (default: the walkthrough's made-up {DEMO_SENDER}, to be replaced)",
    )
    ins.add_argument(
        "--exec",
        help="command line systemd runs, shell words (quote a path with a blank; default: the installed"
        " unit's, else this smsgw)",
    )
    ins.add_argument("--force", action="store_true", help="replace an existing config.toml")
    ins.set_defaults(func=cmd_install_service, needs_config=False)

    tls = sub.add_parser("tls", help="the submission port's certificate").add_subparsers(
        dest="sub", required=True, metavar="ACTION"
    )
    ss = tls.add_parser(
        "selfsigned", help="make a self-signed certificate in state_dir (also done at first start)"
    )
    ss.add_argument("--force", action="store_true", help="replace the existing pair")
    ss.set_defaults(func=cmd_tls_selfsigned, links_required=False)
