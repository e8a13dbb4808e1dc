"""Why `[gateway] billing_dir` cannot take the month's files, said before a month ends.

Otherwise the first sign is the billing run failing at 00:05 on the 1st, retried hourly until it succeeds.
A command (`check-config`, `billing run`) is told the line to run it as the service's user; the
daemon (`start_problem`, in its log at the start) is told what to change for the user the service
runs as. Both read it as the billing run does (`billing_reports.files.safe_dir`): a directory of this
user or root's, writable by it, no user's but its owner's to write.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.filemodes import mode_text, owner_name
from gateway.readonlyfs import MOUNTINFO, READ_ONLY_FS, filesystem_read_only

KEY = "[gateway] billing_dir"
# The kernel's own filesystems: access(2) lets root "write" in /proc, yet no directory can be made there.
_KERNEL_FS = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs"})
_KERNEL_FS |= {"securityfs", "configfs", "bpf", "pstore", "mqueue", "efivarfs", "fusectl", "binfmt_misc"}


def kernel_fs(path: Path) -> str | None:
    """The type of the kernel's filesystem `path` is on (`proc`), or None: a disk's, or not told.
    Shared with `gateway.statedircheck.state_dir_problem`: root's access(2) passes both there alike."""
    try:
        device = f"{os.major(path.stat().st_dev)}:{os.minor(path.stat().st_dev)}"
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[2] == device and "-" in fields[:-1]:
            kind = fields[fields.index("-") + 1]
            return kind if kind in _KERNEL_FS else None
    return None


def _foreign_problem(billing_dir: Path, fix: str, theirs: bool) -> str | None:
    """Another user's billing_dir, or one every user may write: the run refuses it
    (`billing_reports.files.safe_dir`), so `check-config` and the start say so first. `theirs`: the
    service's user's, refused only to another user (root's `check-config`), which `fix` runs as it."""
    st = billing_dir.stat()
    if st.st_uid not in (os.geteuid(), 0):
        why = (
            "the service's user, whose directory a run by this user refuses"
            if theirs
            else "who could make the bills land in files they read"
        )
        return f"{KEY}: {billing_dir} belongs to user {owner_name(st.st_uid)}, {why}; {fix}"
    return _open_to_all(billing_dir, st)


def _open_to_all(billing_dir: Path, st: os.stat_result) -> str | None:
    if st.st_mode & stat.S_IWOTH:
        return (
            f"{KEY}: {billing_dir} is writable by every user ({mode_text(st.st_mode)}): another user could"
            f" put links there to read the bills or overwrite other files; chmod o-w {billing_dir}"
        )
    return None


def _nearest(billing_dir: Path) -> Path:
    """`billing_dir`, or the nearest directory above it that exists (the run makes the rest)."""
    existing = billing_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # (a path under a file does not exist either: ENOTDIR)
    return existing


def _no_owner_helps(billing_dir: Path, existing: Path) -> str | None:
    """Why no owner or mode makes `existing` (`_nearest`) take the files: a file, a read-only mount."""
    if not existing.is_dir():
        return (
            f"{KEY}: {billing_dir} cannot be created: {existing} is a file, not a directory"
            ' (e.g. billing_dir = "/srv/smsgw/billing")'
        )
    if (kind := kernel_fs(existing)) is not None:  # as root, access(2) said yes, and every run failed
        return (
            f"{KEY}: {billing_dir} is on {existing}, the kernel's {kind} filesystem, where no files can be"
            ' made: name a directory on a disk (e.g. billing_dir = "/srv/smsgw/billing")'
        )
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    if filesystem_read_only(existing):  # no unit line helps: remounted read-only after I/O errors?
        return f"{KEY}: {existing}: {READ_ONLY_FS}"
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        return (
            f"{KEY}: {existing} is on a read-only file system; under systemd the unit must name"
            f" {billing_dir} in ReadWritePaths= (a drop-in: systemctl edit smsgw)"
        )
    return None


def billing_dir_problem(billing_dir: Path, state_dir: Path) -> str | None:
    """Why a command (`check-config`, `billing run`) could not write the month's files under
    `billing_dir`. Under systemd's ProtectSystem=strict a directory outside the state directory is
    read-only unless the unit names it in ReadWritePaths=, and access(2) then says so (EROFS) here too.
    The service's user is never one the machine does not have (`service_user_at`: the daemon running
    on `state_dir`, else the directory's owner).
    """
    from gateway.store.proclocks import shell_word
    from gateway.sudoline import service_user_at, sudo_line

    existing = _nearest(billing_dir)
    if (frozen := _no_owner_helps(billing_dir, existing)) is not None:
        return frozen
    service = service_user_at(state_dir, existing)
    user, made = shell_word(service), shell_word(str(billing_dir))
    # The service's user's own directory, for a command another user runs: run it as the service's user.
    theirs = owner_name(existing.stat().st_uid) == service
    line = sudo_line(existing) if theirs else None
    given = f"give it to the user that runs the service (`chown {user}: {made}`)"
    fix = f"run as the service's user (`{line}`)" if line else given
    if os.access(existing, os.W_OK | os.X_OK):
        return _foreign_problem(existing, fix, line is not None) if existing == billing_dir else None
    if existing == billing_dir:
        return f"{KEY}: {billing_dir} is not writable by this user; {fix} or fix its mode"
    return (
        f"{KEY}: {billing_dir} does not exist and cannot be created by this user ({existing} is not"
        f" writable); create it: mkdir -p {made} && chown {user}: {made}"
    )


def start_problem(billing_dir: Path) -> str | None:
    """Why the daemon (`smsgw run`) could not write the month's files under `billing_dir`, for its
    log at the start: the directory, its owner, the user this daemon runs as, and what to type.

    The service's user (`gateway.sudoline.service_user`) is who is to write there. A daemon that is
    not it (started by hand as root or another user) was told to `chown` the service's directory to
    itself, which locked the installed service out of its bills: it is told to start as that user.
    Its own directory, which only its mode keeps it out of, was told to be given to itself: `chmod`.
    """
    from gateway.store.proclocks import shell_word
    from gateway.sudoline import again_as, service_user, user_name

    existing = _nearest(billing_dir)
    if (frozen := _no_owner_helps(billing_dir, existing)) is not None:
        return frozen
    me, service = user_name(os.geteuid()) or str(os.geteuid()), service_user()
    st = existing.stat()
    owner, mode, made = owner_name(st.st_uid), mode_text(st.st_mode), shell_word(str(existing))
    runs = f"this daemon runs as {me}" + (", the service's user" if me == service else "")
    start_as = f"start the daemon as {service} (`{again_as(service)}`)"
    then = "" if me == service else f", then {start_as}"
    give = f"`chown {shell_word(service)}: {made}`{then}"
    if os.access(existing, os.W_OK | os.X_OK):
        if existing != billing_dir:
            return None  # made by this run, its own
        if st.st_uid in (os.geteuid(), 0):
            return _open_to_all(billing_dir, st)
        refused = f"{KEY}: {billing_dir} belongs to user {owner}, and {runs}; its billing run refuses"
        if owner == service:  # root's run: the service's own directory, right for the service
            return f"{refused} a directory of another user's: {start_as}"
        return f"{refused} it, as {owner} could make the bills land in files they read; {give}"
    if existing != billing_dir:
        wanted = shell_word(str(billing_dir))
        return (
            f"{KEY}: {billing_dir} does not exist, and {me}, the user this daemon runs as, cannot create"
            f" it ({existing} belongs to {owner}, mode {mode}); create it:"
            f" `mkdir -p {wanted} && chown {shell_word(service)}: {wanted}`{then}"
        )
    cannot = f"{KEY}: {billing_dir} is not writable by {me}, the user this daemon runs as"
    if st.st_uid == os.geteuid():  # its own: giving it to itself changes nothing
        return f"{cannot}, and its owner: its mode ({mode}) keeps it out; `chmod u+rwx {made}`"
    if owner == service:
        return f"{cannot}; it belongs to {owner}, the service's user: {start_as}"
    return f"{cannot}; it belongs to {owner} (mode {mode}), and the service runs as {service}: {give}"
