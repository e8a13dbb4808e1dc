"""What to tell an admin where a file or directory this user may not use stopped this command
(`gateway.configcheck`, `gateway.store.opening`, `gateway.cli.common`): the line to type to run it
again as the user the path belongs to, or, where no such line can work, the owner or mode to change.

Those hints said `(sudo -u smsgw ...)`: no program, no config, no command, so an admin copying one
ran nothing. Here the line names the program by its full path (`gateway.cli.commandpath`: sudo's
PATH has no venv in it), the config by its full path (sudo drops $SMSGW_CONFIG, and the service's
user may not enter the directory a relative path starts from) and the command's own words, each as
a shell reads it back (`proclocks.shell_word`: a text's line break escaped; quoted raw, it split
the message's line). A config given as argparse takes it, by any prefix of `--config`, is found.

A sudo line is said only where it can work: the path's owner has a name, and is neither root nor
the user running now. A uid with no name (a backup restored from another machine) cannot be named
to sudo (`sudo -u '#54321'` is refused while `runas_allow_unknown_id` is off, its default), and a
path root owns, or this very user, is not opened by running as anyone else: the daemon systemd
started, already its service's user, was told to run itself again as `smsgw`. There the hint says
whose it is and what to change (`chown` to the user that runs the service, or the mode). A daemon
an admin started by hand as another user keeps its sudo line: told to chown the service's state
directory to that user, the admin broke the installed service.
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
from pathlib import Path

from gateway.cli.commandpath import as_user
from gateway.readonlyfs import READ_ONLY_FS, filesystem_read_only
from gateway.store.proclocks import shell_word

SERVICE_USER = "smsgw"  # install-service's default user: named where nothing tells another
# Where an installed smsgw unit is (install-service's, or a package's): none there, no service user.
UNITS = tuple(
    Path(d, "smsgw.service")
    for d in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
)
VALUED_OPTIONS = ("--log-level",)  # the options before the command that take a value, but the config
# What the process was started as when its arguments are smsgw's: the script, or `python -m gateway.cli`.
_PROGRAMS = ("smsgw", *(os.path.join("gateway", "cli", name) for name in ("__main__.py", "main.py")))
_SHORTEST = 3  # `--c`: argparse takes any prefix of a long option that names it alone


def user_name(uid: int) -> str | None:
    """The name of `uid` on this machine, or None for a uid with no name."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def the_daemon(argv: list[str] | None = None) -> bool:
    """Whether this process is the daemon (`smsgw run`, `argv` default its own): the service itself."""
    argv = sys.argv if argv is None else argv
    return bool(argv) and argv[0].endswith(_PROGRAMS) and _command(without_config(argv[1:])[0]) == "run"


def the_service(argv: list[str] | None = None) -> bool:
    """Whether this process is the daemon as systemd started it: systemd gives every unit's run an
    INVOCATION_ID. A daemon run by hand (`smsgw run` in a terminal) is told what a command is."""
    return the_daemon(argv) and "INVOCATION_ID" in os.environ


def sudo_line(owner_of: Path, *, daemon: bool | None = None) -> str | None:
    """This command as the user `owner_of` belongs to (`again_as`), where that user has a name and
    is neither root nor this one (with no owner to see, as the user that runs the service, if this
    machine has it); None where no sudo line can help. Never to the service (`daemon`, by default
    `the_service()`): its hint is read in its log, where running a command as another user starts
    no daemon as that user; what to change is the path's owner or mode. Its state_dir hint named
    `sudo -u` where the directory was another user's."""
    if the_service() if daemon is None else daemon:
        return None
    try:
        uid = owner_of.stat().st_uid
    except OSError:
        try:
            uid = pwd.getpwnam(runs_service()).pw_uid
        except KeyError:
            return None
    name = user_name(uid)
    return again_as(name) if name is not None and uid not in (0, os.geteuid()) else None


def owner_remedy(path: Path, *, verb: str = "run", other: str = "fix its owner") -> str:
    """What to do where this user may not use `path`, as the words after "...by this user; ":
    nothing of owners or modes on a read-only filesystem (`read_only`); else run as its owner
    (`sudo_line`), or give it to the user that runs the service, or fix its mode."""
    if (frozen := read_only(path)) is not None:
        return frozen
    line = sudo_line(path)
    if line is not None:
        return f"{verb} as the service's user (`{line}`) or {other}"
    try:
        uid = path.stat().st_uid
    except OSError:
        return f"{other} (the service runs as {runs_service()})"
    owner = user_name(uid)
    if owner is None:
        return nameless(path, uid)
    if (pid := daemon_of(path, uid)) is not None:
        return (
            f"it belongs to {owner}: {verb} this as {owner} (the daemon runs as {owner}, pid {pid}):"
            f" `{again_as(owner)}`"
        )
    runs = runs_service()
    if owner == runs:  # no other user to give it to: its mode keeps its owner out
        chmod = f"chmod {'u+rwx' if path.is_dir() else 'u+rw'} {shell_word(str(path))}"
        return f"it belongs to {owner}, the user that runs the service: fix its mode (`{chmod}`)"
    given = giving(path, runs)
    return f"it belongs to {owner}: {given}" + ("" if _shared(_held_in(path)) else " or fix its mode")


def daemon_of(path: Path, uid: int) -> int | None:
    """The pid of the daemon running on the state directory `path` is (or is in) as `uid`, its owner;
    None where none does, or this user cannot tell. Told to give that directory to the service's user,
    an admin took it from the daemon running on it (root's, started by hand): its next writes failed,
    and `status` as that user could no longer read what it wrote."""
    from gateway import statelock

    try:
        pid = statelock.daemon_pid(_held_in(path))
        return pid if pid and os.stat(f"/proc/{pid}").st_uid == uid else None
    except OSError:
        return None


def read_only(path: Path) -> str | None:
    """Why no owner or mode makes `path` writable, where its filesystem is mounted read-only (a
    systemd unit's ProtectSystem=strict leaves only /var/lib/smsgw and its ReadWritePaths=
    writable: install-service adds one for billing_dir alone); None where it is not. A filesystem
    read-only itself (remounted so after I/O errors) is told to be remounted, in words ending in
    `READ_ONLY_FS` (`refusal_exit`: exit 1, restarted): no unit line makes it writable."""
    # Before statvfs, which calls an ext4 that errors made read-only (`emergency_ro`) writable.
    if filesystem_read_only(path):
        return f"{path}: {READ_ONLY_FS}"
    try:
        if not os.statvfs(path).f_flag & os.ST_RDONLY:
            return None
    except OSError:
        return None
    where = shell_word(str(_held_in(path)))
    return (
        f"{path} is on a read-only filesystem, which no chown or chmod changes: under systemd"
        f" (ProtectSystem=strict) add ReadWritePaths={where} to the unit, or keep state_dir under"
        " /var/lib/smsgw"
    )


def check_as(owner_of: Path, other: str) -> str:
    """Check as the service's user (`sudo ...`) or OTHER, the service's user being `owner_of`'s
    owner (the state directory's), where a sudo line can work; else OTHER, naming that user."""
    line = sudo_line(owner_of)
    if line is not None:
        return f"check as the service's user (`{line}`) or {other}"
    return f"{other} (the service runs as {runs_service()})"


def nameless(path: Path, uid: int) -> str:
    """`path` belongs to a uid with no user here: sudo cannot run as it, so the owner is to change."""
    return (
        f"{path} belongs to uid {uid}, which has no user on this machine (restored from another"
        f" machine's backup?): {giving(path, runs_service())}"
    )


def giving(path: Path, user: str) -> str:
    """How to give `path` to `user`: `chown -R` of its directory (a file's: the database's -wal and
    -shm are made beside it), only where that directory holds smsgw's files alone; a directory
    shared with other things (/var/lib, /opt, the config's own) is not smsgw's to be given."""
    held = _held_in(path)
    if (why := _shared(held)) is not None:
        return (
            f"state_dir {held} {why}, not smsgw's to give: give smsgw a directory of its own"
            ' (e.g. state_dir = "/var/lib/smsgw")'
        )
    given = f"`chown -R {shell_word(user)}: {shell_word(str(held))}`"
    if held == path:
        return f"give it to the user that runs the service ({given})"
    beside = "with the -wal and -shm files beside it"
    return f"give its directory, {beside}, to the user that runs the service ({given})"


def _held_in(path: Path) -> Path:
    """The directory whose owner decides whether `path` can be used: itself, or a file's."""
    return path if path.is_dir() or not path.exists() else path.parent


# What smsgw keeps in its state directory (`gateway.cli.daemonfiles`): its database and companions,
# its lock, status and relay-login files, the self-signed pair and its work directories, billing/.
_OWN_PREFIXES = ("smsgw.", ".selfsigned.")
# Directories of the system's or of many: a state_dir set to one of them is never given away whole.
_SYSTEM_DIRS = frozenset(
    Path(p) for p in ("/", "/var", "/var/lib", "/opt", "/usr", "/usr/local", "/etc", "/home", "/srv", "/root")
)


def _own_names() -> frozenset[str]:
    from gateway.cli.daemonfiles import own_files

    return frozenset({*own_files(), "billing"})


def _shared(directory: Path) -> str | None:
    """Why `directory` is no directory of smsgw's own (a system directory, the config's, or one with
    anything in it but smsgw's files), or None where it is: `chown -R` of it gives away only smsgw's."""
    try:
        real = directory.resolve()
    except (OSError, RuntimeError):
        real = directory.absolute()
    config = _config_of(sys.argv)
    if real in _SYSTEM_DIRS:
        return "is a system directory, shared with other things"
    if config is not None and real == Path(config).resolve().parent:
        return "is the config file's own directory, shared with other things"
    own = _own_names()
    try:
        names = os.listdir(directory)
    except OSError:
        return None  # nothing to see in it: only its owner was asked
    others = [name for name in names if name not in own and not name.startswith(_OWN_PREFIXES)]
    if others:
        return f"holds more than smsgw's files ({shell_word(sorted(others)[0])}...), shared with other things"
    return None


def runs_service(argv: list[str] | None = None) -> str:
    """Who runs the service: this user where this command is the daemon (`smsgw run`, as its unit's
    User=), else the user the config file is given to by its group (install-service makes it
    root:USER), else this user where no unit is installed (the daemon is then started by hand, by a
    user other than root as themself: check-config told `chown smsgw:` where `run` told the user's
    own name), else SERVICE_USER."""
    me = user_name(os.geteuid()) if os.geteuid() != 0 else None  # root's unit has no User=
    if the_daemon(argv) and me is not None:
        return me
    if (given := _given_to(argv)) is not None:
        return given
    return me if me is not None and not any(unit.exists() for unit in UNITS) else SERVICE_USER


def service_user_at(state_dir: Path, owner_of: Path) -> str:
    """`runs_service`, never a user this machine does not have: where it falls back to SERVICE_USER
    and no such user exists (no unit installed, the daemon started by hand as another user), the
    user of the daemon running on `state_dir`, else the owner of `owner_of`. Root's check-config was
    told `chown smsgw:` of a directory while the daemon ran as nobody and there was no user smsgw."""
    named = runs_service()
    try:
        pwd.getpwnam(named)
        return named
    except KeyError:
        pass
    try:
        uid = os.stat(owner_of).st_uid
    except OSError:
        uid = None
    return _daemon_user(state_dir) or (user_name(uid) if uid is not None else None) or named


def _daemon_user(state_dir: Path) -> str | None:
    """The user of the daemon holding `state_dir`'s lock (`gateway.statelock`), None where none runs
    or this user cannot tell."""
    from gateway import statelock  # here: it imports this module

    try:
        pid = statelock.daemon_pid(state_dir)
        return user_name(os.stat(f"/proc/{pid}").st_uid) if pid else None
    except OSError:
        return None


def service_user(argv: list[str] | None = None) -> str:
    """Who the service runs as, whoever this process is: `runs_service` answers this user for any
    `smsgw run`, and a daemon an admin started by hand as another user (or root) was told to give
    the service's billing_dir to that user. The daemon systemd started is the service (its unit's
    User=, root where it has none); else the user the config is given to by its group, else
    SERVICE_USER where a unit is installed and that user exists, else this user (no unit: the daemon
    is started by hand, by whoever runs it)."""
    me = user_name(os.geteuid()) or str(os.geteuid())
    if the_service(argv):
        return me
    if (given := _given_to(argv)) is not None:
        return given
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return me
    return SERVICE_USER if any(unit.exists() for unit in UNITS) else me


def _given_to(argv: list[str] | None) -> str | None:
    """The user the config file is given to by its group (install-service makes it root:USER), or
    None where its group is root's or no user's."""
    config = _config_of(argv)
    try:
        group = grp.getgrgid(os.stat(config).st_gid).gr_name if config else "root"
        pwd.getpwnam(group)  # a user of that name: the group install-service's useradd made with it
    except (OSError, KeyError):
        return None
    return None if group == "root" else group


def _config_of(argv: list[str] | None) -> str | None:
    """The config this command (`argv`, default its own) reads: the one its arguments give, or the
    one it finds."""
    argv = sys.argv if argv is None else argv
    given = without_config(argv[1:])[1] if argv and argv[0].endswith(_PROGRAMS) else None
    return given or _found_config()


def again_as(user: str, argv: list[str] | None = None) -> str:
    """`sudo -u USER '/full/path/smsgw' --config '/full/config.toml' COMMAND...`: this process's
    command (`argv`, default its own) as `user`; `...` for the command where the process is no
    smsgw command (one run in another program), as the CLI's other hints say it."""
    argv = sys.argv if argv is None else argv
    if not argv or not argv[0].endswith(_PROGRAMS):
        return as_user(shell_word(user), "...")
    words, config = without_config(argv[1:])
    if config is None:
        config = _found_config()
    named = ["--config", os.path.abspath(config)] if config else []
    return as_user(shell_word(user), " ".join(shell_word(word) for word in [*named, *words]))


def _option(arg: str, name: str) -> tuple[bool, str | None]:
    """Whether `arg` is the long option `name` as argparse reads it (whole, or a prefix of at least
    `_SHORTEST` characters: `--conf`), and its value where `arg` holds it (`--conf=x.toml`)."""
    given, equals, value = arg.partition("=")
    matches = len(given) >= _SHORTEST and name.startswith(given) and given.startswith("--")
    return matches, (value if equals else None)


def without_config(args: list[str]) -> tuple[list[str], str | None]:
    """The command's words without its config option, and the config it names (the last, as argparse
    takes it), or None. `-c` only before the command, as the parser reads it: after it, a text may
    start with "-c"; `--config` (or a prefix of it) anywhere (`gateway.cli.commands.config_after`),
    but after `--`, where every word is the command's as it stands."""
    words: list[str] = []
    config: str | None = None
    before = True  # the command's name not met yet
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            words += [arg, *rest]
            break
        is_config, value = _option(arg, "--config")
        if is_config or (before and arg == "-c"):
            config = value if value is not None else next(rest, config)
        elif before and arg.startswith("-c") and not arg.startswith("--"):
            config = arg[2:].removeprefix("=")  # `-c/etc/smsgw/config.toml`, `-c=...` (argparse splits on =)
        else:
            words.append(arg)
            if before and _valued(arg):
                words += [value for value in (next(rest, None),) if value is not None]
            before = before and arg.startswith("-")
    return words, config


def _command(words: list[str]) -> str | None:
    """The command's name: the first of `words` that is no option (nor an option's value)."""
    rest = iter(words)
    for word in rest:
        if not word.startswith("-"):
            return word
        if _valued(word):
            next(rest, None)
    return None


def _valued(arg: str) -> bool:
    """Whether `arg` is an option before the command whose value is the next word."""
    return any(_option(arg, name) == (True, None) for name in VALUED_OPTIONS)


def _found_config() -> str | None:
    """The config this command found without being given one ($SMSGW_CONFIG, ./config.toml, the
    system's), as `gateway.cli.common.find_config` finds it; None where none is found."""
    from gateway.cli.common import CliError, find_config

    try:
        return str(find_config(None)[0])
    except CliError:
        return None
