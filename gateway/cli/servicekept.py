"""What `smsgw install-service` run again keeps: the installed unit's user and command, and next steps
that follow the config on disk instead of the first install's checklist.

The upgrade notes ask for a re-run (a new ReadWritePaths=, the low-port drop-in). It rebuilt the unit
from the command's defaults: a service installed with `--user smsgate` came back as User=smsgw, whose
files in state_dir (the database, 0600) stayed smsgate's, so the next start exited 3 and systemd did
not restart it. And its closing words were the first install's: set the SMSC, uncomment [[account]],
`--force` (which replaces the whole config), `enable --now` (which leaves a running service on the
old unit).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from gateway.config import Config

DEFAULT_USER = "smsgw"


def installed(units: Path) -> tuple[str | None, str | None]:
    """The User= and the command of ExecStart= (shell words, as `--exec` takes them) the installed
    unit runs with, its drop-ins' later lines winning as systemd reads them; None for one not there."""
    unit = units / "smsgw.service"
    files = [unit, *sorted((units / "smsgw.service.d").glob("*.conf"))] if unit.exists() else []
    user = command = None
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "User" and value.strip():
                user = value.strip()
            elif key.strip() == "ExecStart":
                command = _command_of(value.strip())  # an empty one resets, as for systemd
    return user, command


def _command_of(exec_start: str) -> str | None:
    """The words before `--config` of an ExecStart line as written by `render_unit`, its `%%` and
    `$$` undone; None when the line is not one of those."""
    try:
        words = shlex.split(exec_start)
    except ValueError:
        return None
    if "--config" not in words or words.index("--config") == 0:
        return None
    return shlex.join(w.replace("%%", "%").replace("$$", "$") for w in words[: words.index("--config")])


def keep_unit_choices(args: argparse.Namespace, units: Path) -> None:
    """`args.user` and `args.exec` as the installed unit has them where not given; a different
    `--user` is refused: the files the old user wrote would stay closed to the new one."""
    user, command = installed(units)
    if args.user is None:
        args.user = user or DEFAULT_USER
        if user is not None:
            # Not "--user would change it": another --user is refused below, saying what to do instead.
            print(f"kept User={user} of the installed unit (another --user is refused)")
    elif user is not None and args.user != user:
        raise CliError(
            f"the installed unit runs the service as {user}; --user {args.user} would change it, and the"
            f" files {user} wrote in state_dir (the database, readable by it alone) would stay closed to"
            f" {args.user}: the service could not start. Leave --user out (or give --user {user}) to keep"
            f" it; to move the service to {args.user}, stop it, `chown -R {args.user}:{args.user}` its"
            f" state_dir and the directories the unit's ReadWritePaths= name, remove"
            f" {units / 'smsgw.service'} and run install-service again",
            EXIT_USAGE,
        )
    if args.exec is None and command is not None:
        args.exec = command
        print(f"kept the installed unit's command {command} (--exec would change it)")
    elif args.exec is not None and command is not None and args.exec != command:
        print(f"the unit ran {command}; ExecStart now runs {args.exec}")


def _still_to_set(cfg: Config, root: Path) -> list[str]:
    """What the kept config still has of the template: the first install's list, each only while so."""
    from gateway.adminrules import DEMO_SENDER
    from gateway.cli.demoaccount import is_example
    from gateway.configdoubts import TEMPLATE_SMSC_HOST

    found = [f"[[smsc]] {link.name}'s host" for link in cfg.smsc if link.host == TEMPLATE_SMSC_HOST]
    found += [f"domains ({d} is an example)" for d in cfg.gateway.domains if is_example(d)]
    if cfg.gateway.default_sender == DEMO_SENDER:
        found.append(f"default_sender ({DEMO_SENDER} is made up)")
    if cfg.mail.capture_dir is not None:
        found.append("[mail] relay (mail is kept in files)")
    for link in cfg.smsc:
        name = link.password_file
        if link.password is None and name is not None and not name.is_absolute():
            # The credential's file, or where the daemon reads a bare name without one: beside the
            # config (`configbase.credential_path`), which the admin may have chosen instead.
            places = (root / "etc/smsgw/private" / name, root / "etc/smsgw" / name)
            if not any(place.exists() for place in places):
                found.append(
                    f"the SMSC password in /etc/smsgw/private/{name} (systemd/smsgw-credentials.conf)"
                )
    return found


def rerun_steps(cfg: Config | None, root: Path, user: str, command: str) -> str:
    """The closing words of a re-run that kept the config: what it still lacks, read from it, and a
    restart, since `enable --now` leaves a running service on the unit it started with. The enable
    stays in: an admin who re-ran while fixing the config may never have enabled the service, and a
    restart alone would leave it stopped after the next boot. A config that does not load gets no
    restart at all: the service would exit on it, and the re-run that follows the fix says it."""
    from gateway.web.initialpassword import INITIAL_PASSWORD_FILE

    if cfg is None:
        return "next: fix /etc/smsgw/config.toml until check-config passes, then run install-service again"
    run = f"sudo -u {user} {command} --config /etc/smsgw/config.toml"
    lines: list[str] = []
    if "." not in cfg.gateway.hostname:
        lines.append(
            f"warning: [gateway] hostname {cfg.gateway.hostname!r} has no domain; SMTP greets and bounces"
            " name it: set it in /etc/smsgw/config.toml (e.g. gw.example.com)"
        )
    if to_set := _still_to_set(cfg, root):
        lines.append(f"still to set in /etc/smsgw/config.toml: {'; '.join(to_set)}")
    password = cfg.state_dir / INITIAL_PASSWORD_FILE
    if (root / password.relative_to("/")).exists():
        lines.append(f"the panel's first password is in {password} (sudo cat {password})")
    lines += [
        "next (the config was kept):",
        f"  {run} check-config",
        "  systemctl daemon-reload && systemctl enable smsgw && systemctl restart smsgw",
        "  systemctl status smsgw",
    ]
    return "\n".join(lines)
