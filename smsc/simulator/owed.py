"""The delivery reports the simulator still owes, kept in a small file beside its log.

A report waits `dlr_delay_seconds` after its submit, and longer when no client of that login is bound
(it is held for the next bind). All of that lived only in memory: a stop of the daemon (Ctrl-C,
SIGTERM, kill -9) lost every report not yet acknowledged, and the gateway kept those SMS `submitted`
until their validity ran out. A real SMSC keeps them. So each report owed is appended here when the
submit is answered, and settled when the client acknowledges it (or the SMSC gives up on it); the next
start reads what is still owed and sends it, after what is left of its delay, once the client binds.

The file holds no text, only what a report needs: message id, login, the two numbers, the submit
time (CIMD2 names an SMS by it) and the outcome. It is rewritten with only what is still owed at
every start and whenever it has grown well past that, so a start reads a small file; and it reads at
most `TAIL_BYTES` of its end in any case, so that no file stalls the start. One simulator at a time
keeps it: a second one on the same log (two configs in one directory, or `smsgw simulator run` beside
the daemon) would rename a new file over the one the first appends to, so it keeps none.

Most reports are acknowledged within milliseconds of the submit (`dlr_delay_seconds` 0): a line owed
and one settled for each SMS made the simulator a third dearer a part and, appending to a file on the
disk the gateway fsyncs its WAL on, the gateway's own fsyncs too (ext4 commits every file's appended
data with them). So a report due within `HOLD_SECONDS` is written only if still owed then, and the
settled lines go in one write with them: a stop of the daemon writes what waits (`close`); a kill -9
loses at most the reports due in that last moment (on the shipped 0.2 s delay, those of the SMS taken
in it: `smsgw simulator send-report ID` sends one by hand, the restarted simulator finding its SMS in
the log), and the settled lines, whose reports a start then sends again (which the gateway reads as
the duplicates they are). Writing each owed line at once measured some 7 µs more a report here
(5 → 12 µs for its owed and settled lines), besides the fsyncs it makes the gateway's dearer.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from smsc.base import ReportStatus

log = structlog.get_logger(__name__)

MODE = 0o600  # the numbers an SMS went to and from: its owner's only, as the log
TAIL_BYTES = 4 * 1024 * 1024  # what a start reads at most (some 15,000 owed reports)
COMPACT_AFTER = 10_000  # lines appended before the file may be rewritten with only what is owed
MAX_OWED = 100_000  # as many as the core remembers message ids for; the oldest is forgotten first
HOLD_SECONDS = 0.5  # a report due sooner is written only if still owed this long after (see above)


def owed_path(log_path: Path) -> Path:
    """Where the reports owed are kept: beside the log, named after it (var/simulator.jsonl.owed)."""
    return log_path.with_name(log_path.name + ".owed")


@dataclass(frozen=True)
class Owed:
    """One report the simulator owes: everything `SimSession.send_report` needs, and when it is due."""

    message_id: str
    protocol: str
    system_id: str
    source: str
    destination: str
    submitted_at: datetime
    status: ReportStatus
    due: datetime

    def record(self) -> dict[str, str]:
        return {
            "owed": self.message_id,
            "protocol": self.protocol,
            "system_id": self.system_id,
            "source": self.source,
            "destination": self.destination,
            "submitted_at": self.submitted_at.isoformat(),
            "status": self.status.value,
            "due": self.due.isoformat(),
        }

    @classmethod
    def read(cls, record: dict[str, Any]) -> Owed | None:
        """The report a line names, or None for a line this version cannot use (never a crash)."""
        try:
            owed = cls(
                message_id=_text(record["owed"]),
                protocol=_text(record["protocol"]),
                system_id=_text(record["system_id"]),
                source=_text(record["source"]),
                destination=_text(record["destination"]),
                submitted_at=_moment(record["submitted_at"]),
                status=ReportStatus(record["status"]),
                due=_moment(record["due"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return None if owed.status is ReportStatus.PENDING else owed


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _moment(value: object) -> datetime:
    """A time as `record` wrote it; one without a zone is UTC, as the simulator's clocks are."""
    moment = datetime.fromisoformat(_text(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class OwedReports:
    """The file of reports owed and its in-memory copy (what a rewrite writes)."""

    def __init__(self, path: Path, lock: Path) -> None:
        self.path = path
        self.lock = lock  # the file whose lock says which simulator keeps `path` (its log)
        self._lock_fd: int | None = None
        self._owed: OrderedDict[str, Owed] = OrderedDict()
        self._fd: int | None = None
        self._appended = 0  # lines appended since the file was last rewritten
        self._failing = False  # a write failed: logged once, until one succeeds again
        self._closed = False
        self._held: dict[str, dict[str, str]] = {}  # owed lines of reports due soon, not written yet
        self._settled: list[str] = []  # settled lines not written yet
        self._flush_at: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._owed)

    def load(self) -> list[Owed] | None:
        """What an earlier run left owed, oldest first; the file is rewritten with only that, and kept
        open for appending. None when another simulator keeps the file (or its lock cannot be had):
        this one then keeps nothing. Blocking: the caller runs it in a thread."""
        try:
            # Only opened (created as the log would be): its mode is the log's business.
            flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            self._lock_fd = os.open(self.lock, flags, MODE)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            busy = isinstance(exc, BlockingIOError)
            log.warning(
                "sim.owed_not_kept",
                path=str(self.path),
                error="another simulator keeps this file (it runs with the same log)" if busy else str(exc),
                note="reports owed are lost if this simulator stops before sending them",
            )
            self.close()
            return None
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                tail = f.read()
        except FileNotFoundError:
            tail, size = b"", 0
        except OSError as exc:
            log.error("sim.owed_unreadable", path=str(self.path), error=str(exc))
            tail, size = b"", 0
        lines = tail.split(b"\n")
        if size > TAIL_BYTES:
            lines = lines[1:]  # the line the cut went through
            log.warning("sim.owed_tail_only", path=str(self.path), size=size, read=TAIL_BYTES)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # empty, or torn by a full disk
                continue
            if not isinstance(record, dict):
                continue
            if isinstance(settled := record.get("settled"), str):
                self._owed.pop(settled, None)
            elif (owed := Owed.read(record)) is not None:
                self._remember(owed)
        self._rewrite()
        return list(self._owed.values())

    def owe(self, owed: Owed) -> None:
        self._remember(owed)
        if (owed.due - owed.submitted_at).total_seconds() < HOLD_SECONDS:
            self._held[owed.message_id] = owed.record()
            self._flush_soon()
        else:
            self._append([owed.record()])

    def settle(self, message_id: str) -> None:
        """The report on `message_id` was acknowledged (or given up on): no later start sends it."""
        if self._owed.pop(message_id, None) is not None and self._held.pop(message_id, None) is None:
            self._settled.append(message_id)
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_at is None:
            try:
                self._flush_at = asyncio.get_running_loop().call_later(HOLD_SECONDS, self.flush)
            except RuntimeError:  # no loop (a test, a tool): at once
                self.flush()

    def flush(self) -> None:
        """Write the owed lines held back and the settled lines, in one write."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        records = [*self._held.values(), *({"settled": mid} for mid in self._settled)]
        self._held, self._settled = {}, []
        if records:
            self._append(records)

    def close(self) -> None:
        self.flush()
        self._closed = True
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)  # the lock goes with it
        self._fd = self._lock_fd = None

    def _remember(self, owed: Owed) -> None:
        self._owed[owed.message_id] = owed
        self._owed.move_to_end(owed.message_id)
        while len(self._owed) > MAX_OWED:
            self._owed.popitem(last=False)

    def _append(self, records: list[dict[str, str]]) -> None:
        if self._closed:
            return
        try:
            if self._fd is None:
                self._fd = self._open(self.path, os.O_APPEND)
            os.write(self._fd, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())
        except OSError as exc:  # a full disk must not stop the simulator: only a later start loses them
            self._failed(exc)
            return
        self._failing = False
        self._appended += len(records)
        if self._appended > COMPACT_AFTER and self._appended > 2 * len(self._owed):
            self._rewrite()

    def _rewrite(self) -> None:
        """Replace the file with one line per report still owed (a new file, renamed over the old:
        a kill in between leaves the old one whole)."""
        if self._closed:
            return
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = "".join(json.dumps(o.record(), ensure_ascii=False) + "\n" for o in self._owed.values())
        try:
            if self.path.exists() and not stat.S_ISREG(self.path.stat().st_mode):
                raise OSError(f"{self.path} is not a regular file")
            with os.fdopen(self._open(tmp, os.O_TRUNC), "wb") as f:
                f.write(data.encode())
            os.replace(tmp, self.path)
            self._fd = self._open(self.path, os.O_APPEND)
        except OSError as exc:
            self._failed(exc)
            return
        self._appended = 0
        self._held.clear()  # the file says exactly what is owed now
        self._settled.clear()

    @staticmethod
    def _open(path: Path, mode: int) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | mode  # never through a link
        fd = os.open(path, flags, MODE)
        os.fchmod(fd, MODE)
        return fd

    def _failed(self, exc: OSError) -> None:
        if not self._failing:
            self._failing = True
            log.error(
                "sim.owed_write_failed",
                path=str(self.path),
                error=str(exc),
                note="reports owed now are lost if the simulator stops before sending them",
            )
