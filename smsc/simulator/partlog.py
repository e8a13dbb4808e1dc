"""The simulator's log of every part it receives (var/simulator.jsonl): one JSON line per part, with its
verdict, which `send-mo --reply-to-last` and `send-report --last` read after a restart and an admin
tails to see what a phone got."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from smsc.encoding import parse_udh

if TYPE_CHECKING:
    from smsc.simulator.core import SubmittedSms

log = structlog.get_logger(__name__)

LOG_MODE = 0o600
ID_TAIL_BYTES = 1024 * 1024  # how far back from its end a start looks for the highest id handed out


def part_record(sms: SubmittedSms, message_id: str, verdict: str, now: datetime) -> dict[str, object]:
    """The log line of one received part, as a dict (also kept in memory for tests and `status`)."""
    concat = parse_udh(sms.udh)
    return {
        "ts": now.astimezone(UTC).isoformat(),
        "protocol": sms.protocol,
        "system_id": sms.system_id,
        "message_id": message_id,
        "source": sms.source,
        "destination": sms.destination,
        "data_coding": sms.data_coding,
        "concat": {"ref": concat.ref, "total": concat.total, "seq": concat.seq} if concat else None,
        "text": sms.text,
        "verdict": verdict,
    }


def answer_numbers(record: dict[str, object]) -> tuple[str, str]:
    """(phone, our number) of an answer to the SMS of a log record: its destination and source."""
    source = str(record["source"])
    # SMPP carries an international sender (TON 1) without its "+"; a phone sees "+".
    if source.isdigit() and len(source) > 8:
        source = "+" + source
    return str(record["destination"]), source


def highest_id(path: Path, size: int = ID_TAIL_BYTES) -> int:
    """The highest numeric message id in the log's last `size` bytes (0: none, or no log). Ids are
    the clock's milliseconds + 1 a submit, so a run of more than 1,000 submits a second runs ahead
    of the clock, and the next start, from the clock alone, handed the same ids out again: a
    receipt for one then named two SMS. Every id is logged before its submit is answered."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, 2)
            f.seek(max(0, end - size))
            tail = f.read()
    except OSError:
        return 0
    best = 0
    for line in tail.splitlines():
        try:
            mid = json.loads(line).get("message_id")
        except (ValueError, AttributeError):  # the line the tail cut, or one a kill -9 left torn
            continue
        if isinstance(mid, str) and mid.isdigit() and len(mid) < 20:
            best = max(best, int(mid))
    return best


class PartLog:
    """Appends records to the log file, its owner's only: it holds every text sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._checked = False

    def append(self, record: dict[str, object]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            # One O_APPEND write per record (no file object): whole lines even with readers tailing it.
            fd = self._open()
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:  # the log is a convenience; a full disk must not stop the simulator
            log.error("sim.log_write_failed", path=str(self.path), error=str(exc))

    def _open(self) -> int:
        """Its owner's only whatever the umask (and narrowed once when an older run left it readable
        by every user). Only a regular file: a log of "/dev/null" narrowed, as root, the machine's
        /dev/null to 0660, and every other user's write to it (apt's signature checks) failed."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW  # never through a link
        fd = os.open(self.path, flags, LOG_MODE)
        if not self._checked:
            self._checked = True
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if mode & stat.S_IRWXO and stat.S_ISREG(st.st_mode):
                os.fchmod(fd, mode & ~stat.S_IRWXO)
                log.warning("sim.log_mode_tightened", path=str(self.path), mode=f"{mode:04o}")
        return fd
