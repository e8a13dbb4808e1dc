"""The capture directory of `[mail] relay = "maildir:DIR"`: each mail the gateway sends as an `.eml`
file, written at most once for each outbox mail.

A mail is marked sent only after its send returned: a crash (kill -9, a power cut) between the file
landing and that mark sent it again at the next start, and the user found the answer twice. The
file's name is made from what a re-send cannot change, the outbox mail's id and a digest of the
file's bytes, and the file is linked into place only where no file has that name: the re-send
finds the first copy, writes none, and the mail is marked sent. The digest keeps a mail whose id
SQLite handed out again (the newest rows purged) from being taken for an older file of that id.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import os
import re
import time
from contextvars import ContextVar
from pathlib import Path

import structlog

from gateway.filemodes import private_dir, write_private_bytes
from gateway.store.rescue import fsync_path

log = structlog.get_logger(__name__)

# The outbox mail a send is for, set by the outbox worker's task for its send (each send its own
# task, with its own context): what names the file. None for a mail from anywhere else, which gets
# a name of its own each time.
OUTBOX_MAIL: ContextVar[int | None] = ContextVar("outbox_mail", default=None)

# A file system without hard links (FAT, some network shares) refuses the link with one of these:
# the file is renamed into place instead, after a look for it, which is as sure with the one
# writer an outbox mail has at a time.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV})


class MaildirError(Exception):
    """A mail the capture directory could not take, said naming `[mail] relay` and the path: the
    bare OSError (`FileNotFoundError(2, 'No such file or directory')`, its repr dropping the file
    name) was all `smsgw outbox list` showed. Tried again later like any failed send: a directory
    on a mount that comes back takes the mail then."""


class CaptureMailer:
    """Writes each mail to `DIR/<outbox id>-<digest>-<rcpt>.eml`, readable by any mail client.

    The file is written under a temporary name and fsynced, then linked to its name and the directory
    fsynced, so a half-written file never looks like a mail (as a Maildir delivery does) and a mail
    marked sent has its file on disk. The envelope is kept in `Return-Path` and `Delivered-To` lines
    at the top, as a local delivery agent adds them. Bounces and answers quote SMS texts, so the
    files are 0600 and the directory 0700 whatever the umask, as a mailbox is.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count(1)

    async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
        await asyncio.to_thread(self._write, mail_from, rcpt, content, OUTBOX_MAIL.get())

    def _write(self, mail_from: str, rcpt: str, content: bytes, mail_id: int | None) -> None:
        try:
            self._write_file(mail_from, rcpt, content, mail_id)
        except OSError as exc:
            where = exc.filename if exc.filename is not None else self.directory
            raise MaildirError(
                f"[mail] relay maildir {self.directory}: cannot write {where}: {exc.strerror or exc}"
            ) from exc

    def _write_file(self, mail_from: str, rcpt: str, content: bytes, mail_id: int | None) -> None:
        private_dir(self.directory)
        envelope = f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt}\n".encode("ascii", "replace")
        data = envelope + content
        name = self._name(rcpt, data, mail_id)
        final = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        if mail_id is not None and final.exists():
            # The earlier send may have died before its own sync, or after its link and before its
            # temporary file went: that copy of the mail's text goes now, or stays for good.
            tmp.unlink(missing_ok=True)
            fsync_path(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            _already_there(mail_id, final)
            return
        write_private_bytes(tmp, data)
        try:
            placed = _place(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        # The new name on disk before the mail is marked sent: a power cut could lose the file of a mail
        # the outbox holds as sent, and nothing would write it again.
        fsync_path(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        if not placed:
            assert mail_id is not None  # only a name made from the mail's id is taken already
            _already_there(mail_id, final)

    def _name(self, rcpt: str, data: bytes, mail_id: int | None) -> str:
        """Unique, and with no '/' or ':' (Maildir's rules): the recipient is cut to safe characters."""
        safe_rcpt = re.sub(r"[^A-Za-z0-9@._+-]", "_", rcpt)[:80] or "unknown"
        if mail_id is None:
            return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(self._seq):04d}-{safe_rcpt}.eml"
        digest = hashlib.sha256(data).hexdigest()[:16]
        return f"{mail_id:08d}-{digest}-{safe_rcpt}.eml"


def _place(tmp: Path, final: Path) -> bool:
    """`tmp` under the name `final` unless a file has it already (False then): a link fails rather
    than replace one, as a rename would."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if final.exists():
            return False
        os.replace(tmp, final)
    return True


def _already_there(mail_id: int, final: Path) -> None:
    log.info(
        "mail.capture_exists",
        mail=mail_id,
        file=final.name,
        note="written by an earlier send cut off before it was marked sent: not written again",
    )
