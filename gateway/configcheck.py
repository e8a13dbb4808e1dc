"""Checks of a loaded config against the machine: files holding secrets that others can read,
a state directory the daemon could not use, files the daemon reads that are missing or unreadable,
paths it writes under, users named by two accounts; mail that would loop back into the gateway is
`gateway.configloops`'. Said by `check-config` and at start.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from gateway.config import Config
from gateway.configbase import ConfigError, at, credential_path, link_place, quoted
from gateway.configlinks import SmscSection
from gateway.configloops import endpoints, is_this_machine, mail_loop_problems
from gateway.filemodes import mode_text, readable_by_others
from gateway.readonlyfs import READ_ONLY_FS, filesystem_read_only
from gateway.statedircheck import state_dir_problem as state_dir_problem  # callers import it from here
from gateway.sudoline import check_as
from gateway.tlscert import credential_or_path, tls_context
from gateway.tlsdoubts import configured_certificates, file_facts

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


class Exposure(NamedTuple):
    """A file holding a password that every user of the machine may read."""

    file: str
    mode: str
    holds: str
    fix: str

    def line(self) -> str:
        readable = f"is readable by every user (mode {self.mode})"
        return f"{self.file} holds {self.holds} and {readable}; fix: {self.fix}"


def exposed_secrets(cfg: Config, config_path: Path) -> list[Exposure]:
    """The files holding a password that every user of the machine may read.

    Not refused (a test machine may not care), but said on every start and by `check-config`, which
    the systemd unit runs first: the SMSC password gives anyone who reads it the operator's account.

    A secret or certificate file the daemon reads at start that cannot be opened, or a path it
    writes under that a file stands in the way of, is refused first, with ConfigError naming it
    (`check_files`): check-config and run both call this before anything starts, so check-config no
    longer passes a config that `run` then stops on.
    """
    check_files(cfg)
    found: list[Exposure] = []
    # The enabled simulator's password guards nothing of an operator's: warning of it would greet
    # every first start of the shipped config.
    inline = [
        link_place(s.name, "password")
        for s in cfg.smsc
        if s.password is not None and not goes_to_simulator(cfg, s)
    ]
    if cfg.mail.relay_password is not None:
        inline.append("[mail] relay_password")
    if inline and (mode := readable_by_others(config_path)) is not None:
        # `[[smsc]] "orange" password` is the key that holds it: "the passwords of" it read garbled.
        holds = f"{'a password' if len(inline) == 1 else 'passwords'} ({', '.join(inline)})"
        found.append(Exposure(str(config_path), mode_text(mode), holds, f"chmod 640 {config_path}"))
    for s in cfg.smsc:
        path = s.password_path(cfg.base_dir)
        if path is not None and (mode := readable_by_others(path)) is not None:
            holds = f"a password ({link_place(s.name, 'password_file')})"
            found.append(Exposure(str(path), mode_text(mode), holds, f"chmod 600 {path}"))
        tls = s.tls_settings(cfg.base_dir)
        if tls is not None and tls.cert_file is not None:
            # The client certificate's key authenticates the bind as a password does (the
            # certificate's file holds it when no tls_key_file is given).
            key, named = (tls.key_file, "tls_key_file") if tls.key_file else (tls.cert_file, "tls_cert_file")
            if (mode := readable_by_others(key)) is not None:
                holds = f"a private key ({link_place(s.name, named)})"
                found.append(Exposure(str(key), mode_text(mode), holds, f"chmod 600 {key}"))
    # The listeners' keys: whoever reads one poses as this gateway to the mail clients and browsers.
    for where, key in (
        ("smtp", cfg.smtp.tls_key_file),
        ("web", cfg.web.tls_key_file if cfg.web.enabled else None),
    ):
        path = None if key is None else credential_or_path(cfg, key) if where == "smtp" else cfg.path(key)
        if path is not None and (mode := readable_by_others(path)) is not None:
            holds = f"a private key ([{where}] tls_key_file)"
            found.append(Exposure(str(path), mode_text(mode), holds, f"chmod 600 {path}"))
    relay = cfg.mail.relay_password_path(cfg.base_dir)
    if relay is not None and (mode := readable_by_others(relay)) is not None:
        holds = "a password ([mail] relay_password_file)"
        found.append(Exposure(str(relay), mode_text(mode), holds, f"chmod 600 {relay}"))
    return found


def goes_to_simulator(cfg: Config, link: SmscSection) -> bool:
    """The link goes to the built-in simulator: it is enabled, and the link points at its port for
    the link's protocol on an address it listens on. Any other link goes to an operator, loopback or
    not: an stunnel or ssh tunnel to the operator's SMSC listens on 127.0.0.1 too."""
    sim = cfg.simulator
    if not sim.enabled or link.port != (sim.cimd2_port if link.type == "cimd2" else sim.smpp_port):
        return False
    listens = endpoints(sim.host)
    if any(not isinstance(e, str) and e.is_unspecified for e in listens):  # 0.0.0.0: any of its names
        return is_this_machine(link.host, cfg.gateway.hostname.lower())
    return bool(endpoints(link.host) & listens)


class NeededFile(NamedTuple):
    """A file the daemon reads at start with this config."""

    setting: str  # how the admin finds it in config.toml: `[smtp] tls_cert_file`
    configured: Path
    credential: bool  # a bare name is looked up in $CREDENTIALS_DIRECTORY first (configbase.credential_path)


def needed_files(cfg: Config) -> list[NeededFile]:
    """The files the daemon would read at start: only those of the features this config turns on."""
    found: list[NeededFile] = []
    smtp = cfg.smtp
    if (
        smtp.tls_cert_file is not None and smtp.tls_key_file is not None
    ):  # submission and the relay's STARTTLS
        found += [
            NeededFile("[smtp] tls_cert_file", smtp.tls_cert_file, True),
            NeededFile("[smtp] tls_key_file", smtp.tls_key_file, True),
        ]
    web = cfg.web
    if web.enabled and web.tls_cert_file is not None and web.tls_key_file is not None:
        # The panel resolves its files beside the config only (gateway/web/server.py).
        found += [
            NeededFile("[web] tls_cert_file", web.tls_cert_file, False),
            NeededFile("[web] tls_key_file", web.tls_key_file, False),
        ]
    found += [
        NeededFile(link_place(s.name, "password_file"), s.password_file, True)
        for s in cfg.smsc
        if s.password_file is not None
    ]
    # A "maildir:" relay writes files and never logs in: its password file is not read.
    if cfg.mail.capture_dir is None and cfg.mail.relay_password_file is not None:
        found.append(NeededFile("[mail] relay_password_file", cfg.mail.relay_password_file, True))
    if cfg.mail.capture_dir is None and cfg.mail.relay_tls_ca_file is not None:
        found.append(NeededFile("[mail] relay_tls_ca_file", cfg.mail.relay_tls_ca_file, False))
    return found


def file_problems(cfg: Config) -> tuple[list[str], list[str]]:
    """(problems, doubts) about the files the daemon reads at start, each naming the setting and file.

    A problem stops `run` as surely as it would later, when the file is opened. A doubt is a bare
    name that is not beside the config while no $CREDENTIALS_DIRECTORY is set: systemd hands such a
    file to the service alone (LoadCredential=), so `check-config` run by hand cannot see it.
    """
    problems: list[str] = []
    doubts: list[str] = []
    creds = os.environ.get(CREDENTIALS_ENV)
    for need in needed_files(cfg):
        path = cfg.path(need.configured)
        if need.credential:
            path = credential_path(need.configured, cfg.base_dir) or path
        why = _unreadable(path)
        if why is None:
            continue
        name = need.configured
        bare = need.credential and not name.is_absolute() and len(name.parts) == 1
        load = f"LoadCredential={name}:/etc/smsgw/private/{name} (systemd/smsgw-credentials.conf)"
        if bare and isinstance(why, FileNotFoundError) and not creds:
            doubts.append(
                f'{need.setting}: "{name}" is not beside the config ({path}) and ${CREDENTIALS_ENV} is'
                f" not set: under systemd the unit must hand it over with {load}; a `smsgw run`"
                " started by hand stops on it"
            )
        elif bare and isinstance(why, FileNotFoundError):
            problems.append(
                f'{need.setting}: no file "{name}" in ${CREDENTIALS_ENV} ({creds}) nor beside the'
                f" config ({path}); give the unit {load} or fix the name"
            )
        elif isinstance(why, PermissionError):
            how = check_as(cfg.state_dir, "fix the file's owner or mode")
            problems.append(f"{need.setting}: cannot read {path}: permission denied for this user; {how}")
        else:
            problems.append(f"{need.setting}: cannot read {path}: {why.strerror or why}")
    for link in cfg.smsc:  # a password the link could never log in with, read as `run` reads it
        path = link.password_path(cfg.base_dir)
        if path is not None and _unreadable(path) is None:
            try:
                link.secret(cfg.base_dir)
            except ConfigError as exc:
                problems.append(str(exc))
    problems += _tls_pair_problems(cfg)
    # A link's TLS files as `run` loads them (each connect again), the simulator's as it listens.
    problems += [problem for link in cfg.smsc if (problem := link.tls_problem(cfg.base_dir)) is not None]
    if cfg.simulator.enabled:
        from smsc.simulator import listener_tls
        from smsc.tls import TlsFileError

        try:
            listener_tls(cfg.simulator, cfg.base_dir)
        except TlsFileError as exc:
            problems.append(f"[simulator] {exc}")
    return problems, doubts


def _tls_pair_problems(cfg: Config) -> list[str]:
    """Readable certificates and keys that do not load together (a key of another certificate, not
    PEM, encrypted): `run` refuses them, so `check-config` must not say OK. The SMTP pair may be a
    systemd credential; the panel's is resolved beside the config only, as the panel reads it."""
    pairs: list[tuple[str, Path, Path]] = []
    smtp, web = cfg.smtp, cfg.web
    if smtp.tls_cert_file is not None and smtp.tls_key_file is not None:
        pairs.append(
            ("smtp", credential_or_path(cfg, smtp.tls_cert_file), credential_or_path(cfg, smtp.tls_key_file))
        )
    if web.enabled and web.tls_cert_file is not None and web.tls_key_file is not None:
        pairs.append(("web", cfg.path(web.tls_cert_file), cfg.path(web.tls_key_file)))
    found = []
    for section, cert, key in pairs:
        if _unreadable(cert) is not None or _unreadable(key) is not None:
            continue  # named above, or a credential only systemd hands over
        try:
            tls_context(cert, key, section=section)
        except ConfigError as exc:
            found.append(str(exc))
    return found


def tls_doubts(cfg: Config, now: float | None = None) -> list[str]:
    """What a mail server that verifies the certificates would refuse (`gateway.tlsdoubts`): expired
    or expiring within two weeks, not naming [gateway] hostname, its issuer's certificate missing
    from the file, a CA's certificate first. Doubts, not problems: an expired certificate still
    encrypts for the many peers that do not check it, and a start refused would lose their mail
    too. A file that cannot be read is named by `file_problems`."""
    found: list[str] = []
    when = time.time() if now is None else now
    for where, path, hostname in configured_certificates(cfg):
        if _unreadable(path) is not None:
            continue
        facts = file_facts(path, f"{where} {path}", hostname, when)
        found += [facts] if isinstance(facts, str) else facts.doubts
    return found


def _unreadable(path: Path) -> OSError | None:
    """Why `path` cannot be opened for reading, by trying as the daemon will (a mode says less)."""
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return exc


def write_path_problems(cfg: Config, passing: list[str] | None = None) -> list[str]:
    """Paths the daemon writes under (besides `state_dir`) that a file stands in the way of.

    `run` would stop on the simulator's log with an unnamed "File exists", and a capture directory
    under a file would fail every mail, retried for days; both are said naming the key instead.
    A maildir whose filesystem is read-only itself (`READ_ONLY_FS`) goes to `passing`: no config
    change is wanted, and the start is to be tried again once it is writable.
    """
    problems: list[str] = []
    if cfg.simulator.enabled:
        log = cfg.path(cfg.simulator.log)
        example = 'e.g. log = "var/simulator.jsonl"'
        if log.is_dir():
            problems.append(f"[simulator] log: {log} is a directory, not a file ({example})")
        elif (blocked := _blocked_dir(log.parent)) is not None:
            problems.append(
                f"[simulator] log: {log} cannot be written: {blocked} is a file, not a directory ({example})"
            )
    capture = cfg.mail.capture_dir
    if capture is not None and (blocked := _blocked_dir(cfg.path(capture))) is not None:
        problems.append(
            f"[mail] relay: the maildir {cfg.path(capture)} cannot be created: {blocked} is a file, not a"
            ' directory (e.g. relay = "maildir:var/mail")'
        )
    elif capture is not None and (why := maildir_problem(cfg.path(capture), cfg.state_dir)) is not None:
        if why.endswith(READ_ONLY_FS) and passing is not None:
            passing.append(f"[mail] relay: the maildir {why}")
        else:
            problems.append(f'[mail] relay: the maildir {why} (e.g. relay = "maildir:var/mail")')
    return problems


def maildir_problem(directory: Path, state_dir: Path | None = None, what: str = "the maildir") -> str | None:
    """Why the capture directory cannot be made or written in, found by doing it as the mailer will
    (`gateway.mailer.CaptureMailer`), or None.

    A mode or os.access() says nothing true for root, nor for /proc, a read-only mount or systemd's
    ProtectSystem=strict: `relay = "maildir:/proc/nope/mail"` passed, and every bounce and answer
    then waited in the outbox for days with a bare FileNotFoundError. Only the first missing
    directory is made, and removed again, or one empty file made and removed: a check leaves
    nothing behind.
    """
    existing = directory
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    writing = existing == directory
    target = directory if writing else existing / directory.relative_to(existing).parts[0]
    verb = "written in" if writing else "created"
    try:
        if writing:
            fd, probe = tempfile.mkstemp(prefix=".smsgw-check-", dir=directory)
            os.close(fd)
            os.unlink(probe)
        else:
            os.mkdir(target, 0o700)
            with suppress(OSError):  # the daemon's first mail may have used it meanwhile: it stays
                os.rmdir(target)
    except FileExistsError:
        return None  # made by another writer in between (the daemon's first mail)
    except PermissionError as exc:
        return (
            f"{directory} cannot be {verb}: {target}: {exc.strerror} for this user;"
            f" {check_as(state_dir or existing, 'choose a directory the service may write')}"
        )
    except OSError as exc:
        if exc.errno == errno.EROFS and filesystem_read_only(existing):
            return f"{directory} cannot be {verb}: {target}: {exc.strerror}: {READ_ONLY_FS}"
        if exc.errno == errno.EROFS:  # as a state_dir is told: no owner or mode makes it writable
            return (
                f"{directory} cannot be {verb}: {target}: {exc.strerror}, which no chown or chmod changes:"
                f" under systemd (ProtectSystem=strict) add ReadWritePaths={directory} to the"
                f" unit (install-service, run again, adds it), or keep {what} under /var/lib/smsgw"
            )
        return f"{directory} cannot be {verb}: {target}: {exc.strerror or exc}"
    return None


def _blocked_dir(directory: Path) -> Path | None:
    """The file standing where `directory` or one of its parents would be, or None."""
    path = directory
    while not os.path.exists(path) and path != path.parent:  # False, not an error, where we may not look
        path = path.parent  # (a path under a file does not exist either: ENOTDIR)
    return None if path.is_dir() else path


def seed_problems(cfg: Config) -> list[str]:
    """A user named under two `[[account]]` blocks: a user belongs to one account, and the second
    block's was dropped without a word at the first start."""
    first: dict[str, str] = {}
    problems = []
    for seed in cfg.account:
        for email in seed.users:
            other = first.setdefault(email.casefold(), seed.name)
            if other != seed.name:
                problems.append(
                    f"{at(f'[[account]] {quoted(seed.name)}', 'users')}: {email} is named by [[account]]"
                    f" {quoted(other)} too: a user belongs to one account, keep one"
                )
    return problems


def check_files(cfg: Config) -> None:
    """ConfigError naming every file the daemon would fail to open at start, every path it would
    fail to write under, and every setting that sends its mail back into it; doubts go to stderr."""
    problems, doubts = file_problems(cfg)
    passing: list[str] = []
    problems = [*mail_loop_problems(cfg), *write_path_problems(cfg, passing), *seed_problems(cfg), *problems]
    for doubt in doubts:
        print(f"smsgw: warning: {doubt}", file=sys.stderr)
    if problems:
        raise ConfigError("; ".join([*problems, *passing]))
    if passing:  # exit 1, not 3 (which the unit does not restart on): no config change is wanted
        from gateway.cli.common import CliError

        raise CliError("; ".join(passing))
