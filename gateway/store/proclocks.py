"""Which processes hold SQLite's locks on a database, read from /proc/locks: whether a WAL is a
crash's leftover or in use (`gateway.store.walcheck`), and who holds the database (`smsgw status`).
SQLite's connections lock the database file and its -shm for as long as they are open. A holder's
command line, as an error names it, is `process_command`'s."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from gateway.store.walfile import shm_path

PROC_LOCKS = Path("/proc/locks")


def _file_id(st: os.stat_result) -> str:
    """A file as /proc/locks names it: `major:minor:inode`."""
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def _lines() -> list[str] | None:
    try:
        return PROC_LOCKS.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None


def flock_holders(fd: int) -> list[int] | None:
    """The processes holding a flock on the file of `fd` (a blocked waiter is none of them), in pid
    order; None when /proc/locks cannot be read (not Linux)."""
    here, lines = _file_id(os.fstat(fd)), _lines()
    if lines is None:
        return None
    locks = [line.split() for line in lines]  # `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
    return sorted({int(p[4]) for p in locks if len(p) > 5 and p[1] == "FLOCK" and p[5] == here})


def lock_entries(db: Path) -> list[tuple[str, bool]] | None:
    """(pid, waiting) of every lock /proc/locks lists on the database or its -shm, a blocked waiter's
    too; None when /proc/locks cannot be read (not Linux)."""
    ids = set()
    for path in (db, shm_path(db)):
        try:
            st = os.stat(path)
        except OSError:
            continue
        ids.add(_file_id(st))
    lines = _lines()
    if lines is None:
        return None
    found = []
    for line in lines:
        fields = line.split()
        # `1: POSIX  ADVISORY  READ 1234 fe:00:5678 128 128` (a blocked waiter: `1: -> POSIX ...`)
        waiting = bool(fields) and fields[1] == "->"
        if waiting:
            fields = fields[1:]
        if len(fields) > 5 and fields[5] in ids:
            found.append((fields[4], waiting))
    return found


def in_use(db: Path, *, others: bool = False) -> bool | None:
    """Whether any process (this one too, unless `others`) holds a lock on the database or its -shm,
    as SQLite's connections do for as long as they are open; None when /proc/locks cannot be read."""
    entries = lock_entries(db)
    if entries is None:
        return None
    return any(not (others and pid == str(os.getpid())) for pid, _ in entries)


COMMAND_SHOWN = 120  # characters of a holder's command line: which program, not a page of arguments
# Control characters as bash's $'...' writes them: the named ones by name, the rest by number.
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def shell_word(word: str) -> str:
    """`word` as a shell reads it back: quoted where needed (`shlex.quote`), and one holding a
    control character (a `python -c` script's line breaks) in bash's `$'...'`, each such character
    escaped, never raw: printed raw, it broke the error's line, or showed as a log's `\\x0a`."""
    if word.isprintable():
        return shlex.quote(word)
    return "$'" + "".join(_ESCAPES.get(c) or (c if c.isprintable() else _number(ord(c))) for c in word) + "'"


def _number(code: int) -> str:
    """A character as bash's `$'...'` makes it again: `\\xHH` is a byte, so only below 0x80 (a NBSP
    written `\\xa0` came back as the byte a0, not UTF-8's c2 a0); above, its code point, which bash
    writes in the locale's encoding."""
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def command_line(argv: list[str], limit: int = COMMAND_SHOWN) -> str:
    """`argv` as one line of shell words (`shell_word`), separated by spaces, at most about `limit`
    characters: a word that does not fit is cut, still quoted whole, and `...` follows."""
    shown: list[str] = []
    room = limit
    for word in argv:
        said = shell_word(word)
        if len(said) > room:
            while word and len(said := shell_word(word)) > room:
                word = word[: max(0, min(len(word) - 1, room))]
            shown.append(f"{said}..." if word else "...")
            break
        shown.append(said)
        room -= len(said) + 1
    return " ".join(shown)


def process_command(pid: int) -> str | None:
    """The command line of the process `pid` as `command_line` writes it (its arguments as /proc
    has them, each ended by a NUL), or None where /proc does not tell (gone, not Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    argv = raw.decode(errors="replace").split("\0")
    return command_line(argv[:-1] if argv and not argv[-1] else argv) or None
