"""What the expiry of a long SMS's part says when it waited for its SMS's link down, or behind a part
of it held: "validity period expired before it could be sent" hid both, and its bounce told the user
to send it again (into the same outage, or past an SMS an admin had to see to).

Real SMPP SMSCs (`tests/fakes/smsc.py`) over TCP, the daemon in-process, a real SMTP client, relay
sink and SQLite file; time moved by the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from gateway import housekeeping
from gateway.bouncewords import NO_LINK_ADVICE
from gateway.config import parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import STUCK_EXPIRED, TIED_EXPIRED, TIED_WAIT, WITH_STUCK_PART
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_dsn_causes import dsn_mails, text_part
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER
from tests.test_long_sms_tied_wait import ESME_RSYSERR, Clock
from tests.test_long_sms_unanswered import config
from tests.test_policy import to


class GoneAfterPartOne(FakeSMSC):
    """Takes parts 1 and 3, refuses part 2 for now (ESME_RSYSERR), and then is gone: no session, no
    new one."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.udh and sms.udh[-1] == 2:
            session.answer_submit(seq, None, status=ESME_RSYSERR)
            if self.server.listener is not None:
                self.server.listener.close()
            asyncio.get_running_loop().call_later(0.05, self.drop_all)  # after its answer is read
            return
        await super().on_submit(session, seq, sms)


async def test_a_part_that_waited_for_its_link_down_expires_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    clock = Clock()
    async with contextlib.AsyncExitStack() as stack:
        plus = await stack.enter_async_context(GoneAfterPartOne())
        orange = await stack.enter_async_context(HappySMSC())
        sink = await stack.enter_async_context(smtp_sink(relay := free_port()))
        async with running_gateway(config(tmp_path, plus, orange, 1, relay_port=relay), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            conn = gw.store.db.conn
            sql = "SELECT error FROM parts WHERE seq = 2 AND state = 'deferred'"  # 3 went meanwhile
            await gw.until(lambda: conn.execute(sql).fetchall() == [(TIED_WAIT.format("plus", "down"),)])
            # Its validity ends before the SMS could go again by orange (a short Expiry-Date).
            expires = conn.execute("SELECT expires_at FROM parts WHERE seq = 2").fetchone()[0]
            clock.offset = expires - time.time() + 1
            await gw.until(lambda: gw.states() == ["expired"], timeout=30)
            await sink.wait(1, timeout=30)
            error = conn.execute("SELECT error FROM parts WHERE seq = 2").fetchone()[0]
    assert orange.received == []
    assert error == TIED_EXPIRED.format("plus", "down")  # `smsgw queue` and the panel read it
    [(_raw, report)] = dsn_mails(sink)
    _encoding, text = text_part(report)
    assert TIED_EXPIRED.format("plus", "down") in " ".join(text.split()), text
    assert NO_LINK_ADVICE("en") in " ".join(text.split())
    assert "before it could be sent" not in text


async def test_a_part_behind_a_held_one_expires_naming_it(tmp_path: Path) -> None:
    clock = Clock()
    async with HappySMSC() as first, HappySMSC() as second:
        text = config_text(tmp_path, smsc_port=first.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            await first.wait_until(lambda: len(first.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: len(first.received) == 3)
        # As when part 2 was held after its 50 attempts and the link then removed from the config.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = CASE seq WHEN 2 THEN 'hold' ELSE 'queued' END, link = NULL,"
                " smsc_id = NULL, submitted_at = NULL, done_at = NULL,"
                " error = CASE seq WHEN 2 THEN '50 attempts failed; last: ESME_RSYSERR (0x08)' END"
                " WHERE seq > 1"
            )
        removed = text.replace('name = "main"', 'name = "other"', 1).replace(
            f"port = {first.port}", f"port = {second.port}", 1
        )
        async with running_gateway(parse_config(removed, base_dir=tmp_path), clock=clock) as gw:
            choice, db = gw.daemon.dispatcher.choice, gw.store.db.conn
            await gw.until(lambda: choice.waiting() == 1)
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            sql = "SELECT state, error FROM parts WHERE seq = 3"
            await gw.until(lambda: db.execute(sql).fetchone() == ("deferred", WITH_STUCK_PART.format(2)))
            expires = db.execute("SELECT expires_at FROM parts WHERE seq = 3").fetchone()[0]
            clock.offset = expires - time.time() + 1
            await gw.until(lambda: db.execute(sql).fetchone()[0] == "expired", timeout=30)
            assert db.execute(sql).fetchone() == ("expired", STUCK_EXPIRED.format(2))
    assert second.received == []
