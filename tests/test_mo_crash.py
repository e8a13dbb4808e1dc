"""Two-way faults with the daemon as a real process (issue 10): kill -9 after an MO was stored and
before the SMSC had its acknowledgement; `check-config` naming senders that cannot be answered."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.conftest import DOMAIN, Sink, config_text, free_port, mail, send_blocking, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_process import smsgw, start_daemon
from tests.test_two_way import parsed

PHONE = "+48601123456"
SENDER = "+48100200300"  # the acme account's sender in tests.conftest
DELIVER_SM_RESP = 0x80000005
ENQUIRE_LINK = 0x00000015


class AckLosingSMSC(FakeSMSC):
    """While `losing`, the client's deliver_sm_resp and enquire_link never reach this SMSC, as when the
    client dies right after storing an MO: every MO is unacknowledged, so it is delivered again after
    the client's next login (the simulator holds what a session left). The enquire_link the client
    writes after a resp to learn that the SMSC read it is lost too, as a dead client never writes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(resend_timeout=600, **kwargs)  # no resend on the same session
        self.losing = True

    @property
    def ignored_commands(self) -> frozenset[int]:  # type: ignore[override]
        return frozenset({DELIVER_SM_RESP, ENQUIRE_LINK}) if self.losing else frozenset()


class HoldingSink(Sink):
    """A relay that, while `holding`, takes DATA and never answers it: the mail is not delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = True
        self.held = 0
        self.release = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.holding:
            return await super().handle_DATA(server, session, envelope)
        self.held += 1
        await self.release.wait()
        return "451 4.3.0 not taken"


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def mo_states(db_path: Path) -> list[str]:
    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT state FROM mo WHERE state NOT IN ('segment', 'joined') ORDER BY id")
        return [r[0] for r in rows]


async def test_sigkill_after_storing_an_mo_before_its_ack_mails_the_answer_once(tmp_path: Path) -> None:
    smtp_port, relay_port = free_port(), free_port()
    db_path = tmp_path / "state" / "smsgw.db"
    sink = HoldingSink()
    async with AckLosingSMSC() as smsc, smtp_sink(relay_port, sink):
        config = tmp_path / "config.toml"
        config.write_text(
            config_text(tmp_path, smsc_port=smsc.port, smtp_port=smtp_port, relay_port=relay_port)
        )
        proc = await start_daemon(config, smtp_port)
        try:
            res = await asyncio.to_thread(
                send_blocking,
                smtp_port,
                mail(f"601123456@{DOMAIN}", "Czy 10:00?", "Spotkanie"),
                [f"601123456@{DOMAIN}"],
            )
            assert res.error is None
            await smsc.wait_for(1, timeout=20)
            assert await smsc.inject_mo(PHONE, SENDER, "Tak, będę") == 1
            # The reply mail reached the relay: the MO and its mail were committed together.
            await until(lambda: sink.held == 1)
            assert mo_states(db_path) == ["mailed"]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        await until(lambda: not smsc.sessions)  # the SMSC saw the session go, its MO unacknowledged
        smsc.losing = False
        sink.holding = False
        sink.release.set()
        proc = await start_daemon(config, smtp_port)
        try:
            await until(lambda: mo_states(db_path) == ["mailed", "duplicate"])  # delivered again
            assert await smsc.inject_mo(PHONE, SENDER, "Marker") == 1
            await sink.wait(2)
            texts = sorted(parsed(raw).get_content().split("\n")[0] for _, _, raw in sink.messages)
            assert texts == ["Marker", "Tak, będę"]
            assert mo_states(db_path) == ["mailed", "duplicate", "mailed"]
        finally:
            proc.send_signal(signal.SIGTERM)
            # Off the loop: the relay sink runs on it, and the stop waits for a send in flight to it.
            assert await asyncio.to_thread(proc.wait, 30) == 0


def test_check_config_names_a_sender_phones_cannot_answer(tmp_path: Path) -> None:
    text = config_text(
        tmp_path, smsc_port=free_port(), extra='\n[[account]]\nname = "shop"\nsender = "ACME"\n'
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    out = smsgw(path, "check-config")
    assert out.returncode == 0, out.stderr
    assert "note: account shop: sender 'ACME' is alphanumeric: phones cannot answer it" in out.stdout
    assert "alphanumeric" not in out.stderr  # said once (the config's reader said it too)
    assert "acme" not in out.stdout.replace("ACME", "")  # the numeric sender of account acme is fine


def premium_rows(db_path: Path) -> list[tuple[str, int]]:
    with closing(sqlite3.connect(db_path)) as db:
        return list(db.execute("SELECT text, price FROM premium_mo ORDER BY id"))


async def test_sigkill_after_storing_a_premium_mo_before_its_ack_is_one_mail_and_one_charge(
    tmp_path: Path,
) -> None:
    # Issue 11: every premium SMS is money. Killed after the MO (and its mail to the client) was
    # committed but before the SMSC had its ack: the redelivery is neither mailed nor charged again.
    smtp_port, relay_port = free_port(), free_port()
    db_path = tmp_path / "state" / "smsgw.db"
    sink = HoldingSink()
    sink.holding = False  # the confirmation mail may pass
    async with AckLosingSMSC() as smsc, smtp_sink(relay_port, sink):
        config = tmp_path / "config.toml"
        extra = '\n[premium]\nnumbers = ["7355"]\n'
        config.write_text(
            config_text(
                tmp_path, smsc_port=smsc.port, smtp_port=smtp_port, relay_port=relay_port, extra=extra
            )
        )
        proc = await start_daemon(config, smtp_port)
        try:
            add = ("premium", "add", "KP123", "--account", "acme", "--email", "konkurs@acme.example")
            added = await asyncio.to_thread(smsgw, config, *add)
            assert added.returncode == 0, added.stderr
            await sink.wait(1)
            with closing(sqlite3.connect(db_path, timeout=30)) as db, db:  # confirmed, as by a reply
                db.execute("UPDATE premium_services SET verified_at = 1")
            sink.holding = True
            await until(lambda: bool(smsc.sessions))
            assert await smsc.inject_mo(PHONE, "7355", "KP123 vote A") == 1
            await until(lambda: sink.held == 1)  # the MO and its mail to the client are committed
            assert premium_rows(db_path) == [("vote A", 300)]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        await until(lambda: not smsc.sessions)
        smsc.losing = False
        sink.holding = False
        sink.release.set()
        proc = await start_daemon(config, smtp_port)
        try:
            await until(lambda: "duplicate" in mo_states(db_path))  # the SMSC delivered it again
            assert await smsc.inject_mo(PHONE, "7355", "KP123 marker") == 1
            await sink.wait(3)
            mails = [parsed(raw) for _, _, raw in sink.messages]
            bodies = sorted(m.get_content().split("\n")[0] for m in mails if m["Subject"].startswith("KP123"))
            assert bodies == ["marker", "vote A"]
            assert premium_rows(db_path) == [("vote A", 300), ("marker", 300)]
        finally:
            proc.send_signal(signal.SIGTERM)
            # Off the loop: the relay sink runs on it, and the stop waits for a send in flight to it.
            assert await asyncio.to_thread(proc.wait, 30) == 0
