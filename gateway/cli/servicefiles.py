"""The files `smsgw install-service` writes (gateway/cli/service.py): the unit, its drop-ins and the
config. `systemd/smsgw.service` holds the unit as rendered for the shipped layout; a test keeps the
two equal."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.common import EXIT_CONFIG, CliError

if TYPE_CHECKING:
    from gateway.config import Config

SHIPPED_EXEC = "/opt/smsgw/venv/bin/smsgw"
STATE_DIRECTORY = Path("/var/lib/smsgw")  # StateDirectory=smsgw: the one place ProtectSystem=strict leaves

UNIT = """\
# Written by `smsgw install-service`; README.md, section "Running under systemd", explains it.
[Unit]
Description=smsgw email-to-SMS gateway
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec} --config {config} run --json-logs
WatchdogSec=30
Restart=on-failure
RestartSec=5
# Exit status {exit_config}: a config error (or a port the config cannot have), or a database no restart can
# open (damaged, newer than this smsgw, not writable by this user); a restart cannot fix it.
RestartPreventExitStatus={exit_config}
# A stop ends its waits (mail being accepted, submits on the wire up to the links' response timeout,
# mail to the relay) within 75 s, then writes its last rows and closes the database: only a disk
# stalled past the 90 s meets the SIGKILL (a mail answered 250 is on the disk already).
TimeoutStopSec=90
KillSignal=SIGTERM
User={user}
Group={user}
StateDirectory=smsgw
StateDirectoryMode=0750
{writable}WorkingDirectory=/var/lib/smsgw
# Each SMTP session holds a descriptor; [smtp] max_connections (500 by default) must stay well below
# this, or new clients are dropped without a reply once the descriptors run out.
LimitNOFILE=4096
# No core files: a crash's would hold the links' and the relay's passwords and mail in transit (the
# daemon and its workers also set the limit to 0 themselves, for a start outside systemd).
LimitCORE=0
# Two log lines a mail at INFO: journald's default of 10,000 lines in 30 s per service would drop most
# of them from about 170 mails/s on; this takes 6,600 lines/s (a storm is cut by the daemon's own
# one-line-a-second throttle of what a peer can provoke).
LogRateLimitIntervalSec=30s
LogRateLimitBurst=200000
# Secrets readable by root only are handed over as credentials; a relative file name in the config
# (password_file, relay_password_file, tls_cert_file, tls_key_file) is looked up in
# $CREDENTIALS_DIRECTORY first. See systemd/smsgw-credentials.conf for the drop-in.

# Hardening
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# Ports below 1024 (25, 587): add the drop-in systemd/smsgw-low-port.conf.
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0027

[Install]
WantedBy=multi-user.target
"""

LOW_PORT_DROPIN = """\
# /etc/systemd/system/smsgw.service.d/low-port.conf: lets smsgw listen on ports below 1024
# (25, 587) without running as root. `smsgw install-service` writes it when a port needs it.
[Service]
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
"""

CREDENTIALS_DROPIN = """\
# /etc/systemd/system/smsgw.service.d/credentials.conf: secrets kept root-only in /etc/smsgw/private,
# handed to the service in $CREDENTIALS_DIRECTORY. In config.toml name them without a directory:
#   [smtp]   tls_cert_file = "tls-cert.pem"   tls_key_file = "tls-key.pem"
#   [[smsc]] password_file = "smsc-password"
#   [mail]   relay_password_file = "relay-password"
# Keep only the lines whose file exists: systemd refuses to start the service over a missing one.
[Service]
LoadCredential=tls-cert.pem:/etc/smsgw/private/tls-cert.pem
LoadCredential=tls-key.pem:/etc/smsgw/private/tls-key.pem
LoadCredential=smsc-password:/etc/smsgw/private/smsc-password
LoadCredential=relay-password:/etc/smsgw/private/relay-password
"""

CONFIG = """\
# smsgw configuration (written by `smsgw install-service`); every key: docs/config.md.
# Check it with `smsgw check-config` after each change, as the {user} user (sudo's PATH has no venv):
#   sudo -u {user} {command} --config /etc/smsgw/config.toml check-config

[gateway]
domains = ["{domain}"]
hostname = "{hostname}"
state_dir = "/var/lib/smsgw"
# Billing files go to /var/lib/smsgw/billing; a directory elsewhere must be in the unit's
# ReadWritePaths= (smsgw install-service adds it; set later, run it again), or it cannot be written.
# billing_dir = "/srv/smsgw/billing"
default_region = "PL"
# The number (or name) SMS go out from, for every account without its own `--sender`.
default_sender = {sender}{sender_note}

[smtp]
listen = "{listen}"
submission_listen = "{submission}"
# Without these a self-signed certificate is made in state_dir at the first start.
# tls_cert_file = "tls-cert.pem"
# tls_key_file = "tls-key.pem"

[mail]
relay = "{relay}"{relay_note}
from_address = "smsgw@{domain}"
admin_address = "{admin}"  # billing summaries and notices for the administrator

[replies]
# Phones' answers that no user gets (no SMS to the phone within the reply window, a user removed,
# the user's mail refused for good) and the bounces the gateway receives: mailed here. Without it
# they are only recorded (smsgw mo list). Also where premium SMS with an unknown password go.
fallback_address = "{admin}"

# Your operator's link: replace host, port, system_id; put the password in
# /etc/smsgw/private/smsc-password (see systemd/smsgw-credentials.conf).
[[smsc]]
name = "operator"
type = "smpp"
host = "smsc.operator.example"
port = 2775
system_id = "smsgw"
password_file = "smsc-password"

[simulator]
enabled = false
log = "/var/lib/smsgw/simulator.jsonl"

[web]
# The admin panel, on this machine only (/metrics answers without a login): from your desk
# `ssh -L 8080:127.0.0.1:8080 {hostname}`, then open http://127.0.0.1:8080/.
enabled = true
listen = "127.0.0.1:8080"

# The panel's first login: uncomment this block (your company, your address) before the first
# start; that start makes its first user the operator, with a password in
# /var/lib/smsgw/web-initial-password (sudo cat it; also that user's SMTP AUTH password; change it
# in the panel). Without it: smsgw account add / user add / user passwd / user set --role operator.
# [[account]]
# name = "it"
# users = ["it@example.com"]
"""

# The panel as CONFIG and the shipped config.toml run it: loopback only, as /metrics takes no login.
PANEL_HOST = "127.0.0.1"
PANEL_PORT = 8080


def panel_steps(user: str, command: str, hostname: str) -> str:
    """The lines of install-service's "next:" steps that say how to reach the panel and log in: it
    listens on loopback only, and its first password is in a file only the service's user and root
    read, so an admin who is not told looks for the panel on the network and for a password nowhere."""
    run = f"sudo -u {user} {command} --config /etc/smsgw/config.toml"
    return (
        f"  the admin panel listens on {PANEL_HOST}:{PANEL_PORT} only: from your desk\n"
        f"    ssh -L {PANEL_PORT}:{PANEL_HOST}:{PANEL_PORT} {hostname}, then open http://{PANEL_HOST}:{PANEL_PORT}/\n"
        "  its first login: uncomment [[account]] in /etc/smsgw/config.toml before the first start;\n"
        "    its first user becomes the operator, the password in /var/lib/smsgw/web-initial-password\n"
        "    (sudo cat /var/lib/smsgw/web-initial-password); or give one yourself:\n"
        f"    {run} user passwd EMAIL\n"
        f"    {run} user set EMAIL --role operator"
    )


def writable_dirs(cfg: Config) -> list[tuple[str, Path]]:
    """The directories the daemon writes that the unit must open, each with the setting that names it:
    ProtectSystem=strict makes every path outside its StateDirectory read-only. A billing_dir elsewhere
    failed each month's billing run (EROFS), retried for a week, while the SMS went out as usual; a
    state_dir elsewhere stopped the service at its start, a maildir relay's every mail and the
    simulator's log (and the reports it owes, kept beside it) likewise. One inside another is opened
    with it."""
    wanted = [("[gateway] state_dir", cfg.state_dir), ("[gateway] billing_dir", cfg.billing_dir)]
    if cfg.mail.capture_dir is not None:
        wanted.append(('[mail] relay "maildir:"', cfg.path(cfg.mail.capture_dir)))
    if cfg.simulator.enabled:
        wanted.append(("[simulator] log", cfg.path(cfg.simulator.log).parent))
    found: list[tuple[str, Path]] = []
    for setting, path in wanted:
        path = Path(os.path.normpath(path))
        if path.is_relative_to(STATE_DIRECTORY) or any(path.is_relative_to(opened) for _, opened in found):
            continue
        _refuse_shared(path, setting)
        _unit_path(path, setting)  # refused here, before install-service makes any of them
        found = [(s, p) for s, p in found if not p.is_relative_to(path)] + [(setting, path)]
    return found


# Directories of the system's or of many, which a setting may name (a simulator log in /var/log).
_SHARED = frozenset(
    Path(p) for p in "/ /var /var/lib /var/log /var/tmp /tmp /srv /opt /etc /home /usr /mnt /root".split()
)


def _refuse_shared(path: Path, setting: str) -> None:
    """A file directly in one of the system's directories (a simulator log in /var/log) is refused:
    opening the whole of /var/log to the service still left the log unwritten (root's, 755, and not
    to be given to smsgw), so the simulator's start failed while install-service said it writable."""
    if path in _SHARED:
        raise CliError(
            f"{setting}: {path} is a directory of the system's, which the service may not write in (nor"
            f" be given): choose a directory of its own, e.g. {path / 'smsgw'}",
            EXIT_CONFIG,
        )


def writable_paths(cfg: Config) -> list[Path]:
    """The directories of `writable_dirs`, as the unit's ReadWritePaths= name them."""
    return [path for _, path in writable_dirs(cfg)]


def _unit_path(path: Path, setting: str = "ReadWritePaths=") -> str:
    """A path as a word of a unit file's list: `%` starts a specifier there, and a space or a quote
    would split or unquote it (refused: such a directory is a drop-in the admin writes)."""
    text = str(path)
    if not path.is_absolute() or any(c.isspace() or c in "\\\"'" or not c.isprintable() for c in text):
        raise CliError(
            f"{setting}: {text!r} cannot be named in the unit: ReadWritePaths= needs an absolute"
            " path without spaces, quotes or backslashes; choose another directory",
            EXIT_CONFIG,
        )
    return text.replace("%", "%%")


def _unit_command(command: str) -> str:
    """The command (shell words, as `--exec` is given) as ExecStart's words: a word with a blank, a
    quote or a backslash double-quoted the systemd way (a venv under "/srv/my venv" made systemd run
    "/srv/my"), `%` and `$` doubled, which systemd would read as a specifier and a variable."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: one word, as written
        words = [command]
    return " ".join(_unit_word(word) for word in words)


def _unit_word(word: str) -> str:
    if not word or any(c.isspace() or c in "\\\"'" for c in word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word.replace("%", "%%").replace("$", "$$")


def render_unit(
    exec_cmd: str = SHIPPED_EXEC,
    config: str = "/etc/smsgw/config.toml",
    user: str = "smsgw",
    writable: Sequence[Path] = (),
) -> str:
    """The unit; `writable` (`writable_paths` of the config it runs) are opened with ReadWritePaths=."""
    lines = "".join(f"ReadWritePaths={_unit_path(p)}\n" for p in writable)
    if lines:
        lines = (
            "# What the config has the daemon write outside the state directory, which ProtectSystem=strict\n"
            "# leaves the only writable place\n" + lines
        )
    return UNIT.format(
        exec=_unit_command(exec_cmd), config=config, user=user, exit_config=EXIT_CONFIG, writable=lines
    )
