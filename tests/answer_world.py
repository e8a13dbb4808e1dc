"""The set-up the tests of answers to the SMS a phone got share (R-3.1, R-3.3, R-3.4, R-5.2): a real
daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the daemon's
own housekeeping (joining a long answer's parts, mailing kept answers) on an injected clock, the
SQLite file and the billing files written from it.

A user's SMS that reached the phone (`World.texts`), the phone's two-part answer (`World.part`), the
mails from the phone (`World.answers`) and the MO-reply lines each account's billing file has
(`World.billed`): each of those tests had its own copy of all this.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway import housekeeping as housekeeping_module
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import DOMAIN, STAFF, Sink, free_port, mail, running_gateway, smtp_sink
from tests.test_own_numbers import OURS, PHONE, own_config
from tests.test_two_way import parsed

T0 = 1_800_000_000.0
POOL = '"+48500100200", "+48500100201"'
# The phone's long answer: two parts.
TEXT = "Zgoda na warunki umowy numer 77, " * 5 + "podpisze jutro rano w biurze"
# The MO's note when the user of the SMS answered is gone since, by how.
WHY = {
    "other-company": f"it answers {STAFF}, who belongs to another account since",
    "successor": f"it answers an SMS {STAFF} sent before the address was added again as a user",
}


@dataclass
class World:
    gw: Any
    sink: Sink
    cfg: Any
    tmp_path: Path
    clock: Callable[[], float]
    now: list[float]  # the daemon's clock when injected (`world(..., wall_clock=False)`)
    ours: str  # the number the phone answers: the pool's first, or the default sender

    async def texts(self, body: str, subject: str, message_id: str) -> None:
        """STAFF's SMS to the phone, once it has reached it (its report in)."""
        gw, core = self.gw, self.gw.daemon.simulator.core
        sent = len(core.records)
        msg = mail(f"601222222@{DOMAIN}", body=body, subject=subject, Message_ID=message_id)
        assert (await gw.send(msg)).error is None
        await gw.until(lambda: len(core.records) == sent + 1)
        await gw.until(lambda: "submitted" not in gw.states() and "queued" not in gw.states())

    async def part(self, seq: int, ref: int = 0x31) -> None:
        """Part `seq` of the phone's 2-part answer (`TEXT`) to `ours`, as the SMSC delivers it."""
        core = self.gw.daemon.simulator.core
        await self.gw.until(lambda: core._pick("smpp") is not None)
        esm, dc, sm = mo_parts(TEXT, ref=ref, parts=2)[seq - 1]
        fields = dict(address_fields(PHONE, self.ours), esm_class=esm, data_coding=dc, short_message=sm)
        await core._pick("smpp").send_part(tuple(fields.items()))

    def segments(self) -> int:
        """The parts waiting to be joined."""
        sql = "SELECT COUNT(*) FROM mo WHERE state = 'segment'"
        return int(self.gw.store.db.conn.execute(sql).fetchone()[0])

    def answers(self) -> list[tuple[list[str], EmailMessage]]:
        """(recipients, mail) of the mails from the phone's address: a bounce or notice is none."""
        return answers(self.sink)

    def account_id(self, name: str) -> int:
        sql = "SELECT id FROM accounts WHERE name = ?"
        return int(self.gw.store.db.conn.execute(sql, (name,)).fetchone()[0])

    def last_mo(self) -> tuple[Any, ...]:
        """(state, note, billed account, follows) of the latest whole MO."""
        return tuple(
            self.gw.store.db.conn.execute(
                "SELECT state, note, account_id, follows FROM mo WHERE state NOT IN ('segment', 'joined')"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
        )

    def bills(self) -> dict[str, str]:
        """Each account's billing file of the month now, as written from the SQLite file."""
        tz = ZoneInfo(self.cfg.gateway.timezone)
        month = Month.containing(self.clock(), tz)
        files = write_month(self.gw.store.path, self.tmp_path / "state", month, tz)
        return {f.account: f.path.read_text() for f in files.accounts}

    def billed(self) -> dict[str, int]:
        """Each account's MO-reply lines in its billing file of the month now."""
        return {account: mo_lines(bill) for account, bill in self.bills().items()}


def answers(sink: Sink) -> list[tuple[list[str], EmailMessage]]:
    """(recipients, mail) of the mails `sink` got from the phone's address."""
    return [
        (rcpts, parsed(raw))
        for _, rcpts, raw in sink.messages
        if parsed(raw)["From"].addresses[0].addr_spec == f"{PHONE}@{DOMAIN}"
    ]


def mo_lines(bill: str) -> int:
    """The MO-reply lines of an account's billing file (not its totals)."""
    return sum(1 for line in bill.splitlines() if line[:1].isdigit() and "\tMO-reply\t" in line)


@asynccontextmanager
async def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    pool: str = "",
    relay: Sink | None = None,
    replies: dict[str, Any] | None = None,
    wall_clock: bool = False,
) -> AsyncIterator[World]:
    """The daemon (`own_config`: a fallback address, accounts acme and other, `pool` if given) and
    its relay (`relay`, else a sink taking everything); `replies` sets `[replies]` keys.
    `wall_clock`: the daemon reads the real clock (quiet hours are read off it), else `World.now`."""
    if not wall_clock:  # its chores as often as the test moves the clock on
        for name in ("EXPIRY_INTERVAL", "STATUS_INTERVAL", "KEPT_INTERVAL"):
            monkeypatch.setattr(housekeeping_module, name, 0.05)
    now = [T0]
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port, pool=pool)
    if replies:
        cfg = cfg.model_copy(update={"replies": cfg.replies.model_copy(update=replies)})
    clock = time.time if wall_clock else (lambda: now[0])
    ours = "+48500100200" if pool else OURS
    async with smtp_sink(port, relay) as sink, running_gateway(cfg, None if wall_clock else clock) as gw:
        yield World(gw, sink, cfg, tmp_path, clock, now, ours)
