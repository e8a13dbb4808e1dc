"""SMSC acceptances the store could not take before the daemon stopped, kept in a side file for the
next start.

An answer exists nowhere else until it is on disk, and its write is retried for as long as the store
refuses it (`gateway.durablewrite`); the dispatcher's stop cuts that off. The part then stayed
`active`, and the next start sent it again as a possible duplicate although the SMSC had taken it:
under a full disk or a file size limit every SMS answered meanwhile reached its phone twice. So the
stop appends each acceptance still unwritten to `JOURNAL_FILE` in state_dir (a JSON line each,
fsynced: a few hundred bytes, which fit where the database's next page did not), and the next start
writes them before it requeues the parts left `active` (`gateway.recovery`).

Only acceptances: a refusal or a fault left unwritten sends the part again to an SMSC that did not
take it, no second copy on a phone. An entry is applied only to its part while that part is still
`active` with the same message in the same database file (device and inode): a restore put in its
place, or a part settled after all (its write committed as the stop came), is left alone. Where even
this file cannot be written (the disk itself full, or stalled past `KEEP_SECONDS`), the stop says at
error which parts will go again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.store.db import ClaimedPart, Finished, Store
from gateway.store.rescue import fsync_path

log = structlog.get_logger(__name__)

JOURNAL_FILE = "answers-unwritten.jsonl"
# The stop's bound on the append and its fsync: a stalled disk must not hold systemd's stop.
KEEP_SECONDS = 2.0


class Accepted(BaseModel):
    """One SMSC acceptance as the side file holds it (no phone number: `phone forget` reaches no copy)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    part: int
    message: int
    link: str
    smsc_id: str | None
    resent_after: str | None = None  # `QueueRepo.mark_submitted`'s: a re-send's earlier link
    db: str  # the database file's device:inode, so that a restored file takes none of it


def journal_path(db: Path) -> Path:
    return db.parent / JOURNAL_FILE


def _file_of(db: Path) -> str:
    st = os.stat(db)
    return f"{st.st_dev}:{st.st_ino}"


class Unwritten:
    """The acceptances whose write is under way, by part: those a stop cut off go to the side file."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.answers: dict[int, Accepted] = {}
        try:  # the file the store opened: one replaced since stops the daemon and vouches for nothing
            self.file = _file_of(db)
        except OSError:
            self.file = ""

    @contextlib.contextmanager
    def accepted(
        self, part: ClaimedPart, link: str, smsc_id: str | None, resent_after: str | None
    ) -> Iterator[None]:
        """Around the acceptance's write: forgotten once written, or once it failed in a way the
        dispatcher's crash recovery takes over (that requeue knows the part); kept when cancelled."""
        self.answers[part.id] = Accepted(
            part=part.id, message=part.message_id, link=link, smsc_id=smsc_id, resent_after=resent_after,
            db=self.file,
        )  # fmt: skip
        cut = False
        try:
            yield
        except asyncio.CancelledError:
            cut = True
            raise
        finally:
            if not cut:
                self.answers.pop(part.id, None)

    async def keep(self) -> None:
        """At the dispatcher's stop, its submits ended: what is still unwritten goes to the side file."""
        if not self.answers:
            return
        answers, self.answers = list(self.answers.values()), {}
        parts = sorted(a.part for a in answers)
        path = journal_path(self.db)
        try:
            await asyncio.wait_for(asyncio.to_thread(_append, path, answers), KEEP_SECONDS)
        except (OSError, TimeoutError) as exc:
            log.error(
                "dispatcher.answers_lost",
                parts=parts,
                path=str(path),
                error=str(exc) or type(exc).__name__,
                note="the SMSC took these SMS, and neither the database nor this file could record it:"
                " the next start sends each again (a duplicate on its phone)",
            )
            return
        log.warning(
            "dispatcher.answers_kept",
            parts=parts,
            path=str(path),
            note="the SMSC took these SMS while the database refused writes: the next start records them"
            " from this file instead of sending them again",
        )


def _append(path: Path, answers: list[Accepted]) -> None:
    data = "".join(a.model_dump_json() + "\n" for a in answers).encode()
    new = not path.exists()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_path(path.parent, os.O_RDONLY | os.O_DIRECTORY)


def read(path: Path) -> tuple[list[Accepted], int]:
    """The entries of the side file, and how many lines could not be read (a line torn by a crash
    in the middle of the append: its part goes again, as it would have without the file)."""
    entries: list[Accepted] = []
    torn = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entries.append(Accepted.model_validate_json(line))
        except ValidationError:
            torn += 1
    return entries, torn


def apply(store: Store, on_finished: Callable[[list[Finished]], None]) -> list[int]:
    """At the start, before the parts left `active` are requeued (the store not yet serving): the
    acceptances a stop kept are written as the dispatcher would have, their senders told by
    `on_finished` in the same transaction; then, on disk, the file goes. Returns the parts recorded."""
    path = journal_path(store.path)
    try:
        entries, torn = read(path)
    except FileNotFoundError:
        return []
    here = _file_of(store.path)
    done: list[int] = []
    skipped: list[int] = []
    sql = "SELECT 1 FROM parts WHERE id = ? AND message_id = ? AND state = 'active'"
    with store.db.transaction() as conn:
        for e in entries:
            if e.db != here or e.part in done:
                skipped.append(e.part)
            elif conn.execute(sql, (e.part, e.message)).fetchone() is None:
                skipped.append(e.part)  # settled after all, or not this database's part
            else:
                on_finished(store.queue.mark_submitted(e.part, e.link, e.smsc_id, e.message, e.resent_after))
                done.append(e.part)
    for name in (Path(f"{store.path}-wal"), store.path):  # the daemon's own fsync has not started yet
        with contextlib.suppress(FileNotFoundError):
            fsync_path(name, os.O_RDONLY)
    path.unlink()
    fsync_path(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    log.warning(
        "queue.answers_recorded",
        parts=done,
        **({"skipped": skipped} if skipped else {}),
        **({"torn_lines": torn} if torn else {}),
        note="SMSC acceptances the last stop could not write to the database, kept in "
        f"{JOURNAL_FILE}: recorded now, not sent again",
    )
    return done
