"""The ten minutes' budget of failed logins at the relay (`gateway.relayloginbudget`) kept across a
restart, in the state directory beside the status file (`relay-logins.json`).

The budget lived in memory alone: a restart's first login tried every mechanism offered again, so a
daemon restarted after four failed logins (by systemd after a crash, by an admin trying a config
change) made three more within the same ten minutes, and a relay banning at five (fail2ban's Postfix
SASL jail) or locking the account at N failures did. The status file is no place for it: it is
written once a housekeeping pass, and removed at a stop. So each failed login's wall-clock time
is written here at once (a few a ten minutes at most), with the relay's last answer, and read at the
start: those within the last ten minutes fill the budget again. Until a login is taken after the
start, none goes while the budget has no room: a send fails at once with the relay's last answer
and the time the next login may go, as a refused login (or, after a 454, as the relay's
authentication failing for now), and a probe waits for that time (`LoginHeld`). The refusal itself
is not kept: a password fixed in the config goes at the first login the budget has room for.

The file names the relay (host and port) and the account its failed logins were at, and is read
only for the same two: an admin who moved `[mail] relay` or `relay_username` after a lockout had no
login for up to ten minutes, every mail failing with the old relay's answer. A wall clock stepped
back leaves a failed login "in the future": counted as made at the start that finds it, and written
back so, the budget errs on the relay's side once (counted as made just now at every start, logins
waited ten minutes after each, for as long as the clock stayed behind). A time that is no finite
number (`Infinity`, an integer too large for a float) is dropped, never blocking the start nor
every login.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import structlog

from gateway.filemodes import write_private_bytes
from gateway.relayloginbudget import FINDTIME, MOST_FAILED, LoginBudget
from gateway.relayloginerrors import LoginFailingForNow, LoginHeld, failing_for_now
from gateway.relayloginstatus import FAILING, REFUSED, WAITING

log = structlog.get_logger(__name__)

KEPT_FILE = "relay-logins.json"


class KeptLogins:
    """The wall-clock times of the last MOST_FAILED failed logins at `relay` ("host:port") as
    `user`, and the relay's answer to the last, as the file has them; written at each failed login."""

    def __init__(self, path: Path, *, relay: str, user: str, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self.relay, self.user = relay, user
        self.wall = wall
        self.failed: list[float] = []
        self.state = REFUSED
        self.code = 535
        self.reply = ""
        self._unwritten = False  # said once in the log, until a write goes again
        self._mended = False  # a time dropped as no finite number: the file written again
        self._read()

    def _read(self) -> None:
        try:
            kept = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("mail.relay_logins_unread", path=str(self.path), error=repr(exc)[:200])
            return
        if not isinstance(kept, dict):
            return
        if kept.get("relay") != self.relay or kept.get("user") != self.user:
            return  # another relay's or account's failed logins, or none named: nothing of ours
        failed = kept.get("failed")
        if isinstance(failed, list):
            times = _finite(failed)
            self._mended = len(times) != len(failed)
            self.failed = times[-MOST_FAILED:]
        if kept.get("state") in (REFUSED, FAILING):
            self.state = kept["state"]
        if isinstance(code := kept.get("code"), int) and 400 <= code < 600:
            self.code = code
        if isinstance(reply := kept.get("reply"), str):
            self.reply = reply[:300]

    def restore(self, budget: LoginBudget, now: float) -> int:
        """The failed logins of the last FINDTIME into `budget`, on the logins' clock (`now` its
        reading); how many. One after the wall clock's reading is taken as made now, and kept so."""
        wall = self.wall()
        clamped = [min(t, wall) for t in self.failed]
        if clamped != self.failed or self._mended:
            self.failed, self._mended = clamped, False
            self._write()
        recent = [now - (wall - t) for t in self.failed if wall - t < FINDTIME]
        for at in recent:
            budget.spend(at)
        return len(recent)

    def spent(self, code: int, reply: str) -> None:
        """One failed login, its answer `code` and `reply` (cleaned already): written at once."""
        self.failed = [*self.failed, self.wall()][-MOST_FAILED:]
        self.state = FAILING if failing_for_now(code) else REFUSED
        self.code, self.reply = code, reply
        self._write()

    def _write(self) -> None:
        data = {
            "relay": self.relay,
            "user": self.user,
            "failed": self.failed,
            "state": self.state,
            "code": self.code,
            "reply": self.reply,
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            write_private_bytes(tmp, json.dumps(data).encode())
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._unwritten:
                self._unwritten = True
                log.warning(
                    "mail.relay_logins_unwritten",
                    path=str(self.path),
                    error=repr(exc)[:200],
                    note="a restart may make more failed logins at the relay than its ten minutes allow",
                )
            return
        self._unwritten = False


def _finite(failed: list[Any]) -> list[float]:
    """The times that are finite numbers: a damaged file's `Infinity` blocked every login for good,
    and an integer too large for a float stopped the start."""
    times: list[float] = []
    for t in failed:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            continue
        try:
            at = float(t)
        except OverflowError:
            continue
        if math.isfinite(at):
            times.append(at)
    return times


def budget_spent(kept: KeptLogins | None, wait: float, *, probe: bool) -> Exception:
    """What a login raises while the budget has no room and no login was taken since the start."""
    code, reply, state = (kept.code, kept.reply, kept.state) if kept else (535, "", REFUSED)
    said = (
        f"{reply + '; ' if reply else ''}no login to the relay for {wait:.0f} s: {MOST_FAILED} failed logins"
        f" in the last {FINDTIME / 60:.0f} minutes, before a restart too"
    )
    error = (
        LoginFailingForNow(code, said) if state == FAILING else aiosmtplib.SMTPAuthenticationError(code, said)
    )
    return LoginHeld(error, wait) if probe else error


def budget_report(kept: KeptLogins | None, budget: LoginBudget, now: float) -> dict[str, Any]:
    """What `smsgw status` shows while no login goes for the budget alone."""
    first = min((t for t in budget.times if t > now - FINDTIME), default=now)
    return {
        "state": WAITING,
        "for_seconds": round(max(now - first, 0.0), 1),
        "last_seconds_ago": round(max(now - max(budget.times, default=now), 0.0), 1),
        "by": "a restart",
        "mechanisms": [],
        "reply": kept.reply if kept else "",
        "failed_logins": MOST_FAILED - budget.room(now),
        "next_login_in_seconds": round(max(budget.open_at() - now, 0.0), 1),
    }
