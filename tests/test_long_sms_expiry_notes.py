"""What the expiry of a long SMS's part says when it waited for its SMS's link down, or behind a part
of it held: "validity period expired before it could be sent" hid both, and its bounce told the user
to send it again (into the same outage, or past an SMS an admin had to see to).

Real SMPP SMSCs (`tests/fakes/smsc.py`) over TCP, the daemon in-process, a real SMTP client, relay
sink and SQLite file; time moved by the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import sqlite3
import time
from contextlib import closing
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway import bounce, housekeeping
from gateway.bouncewords import STUCK_ADVICE, TIED_DOWN_ADVICE, TIED_REMOVED_ADVICE
from gateway.config import parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import LINK_GONE, STUCK_EXPIRED, TIED_EXPIRED, TIED_WAIT, WITH_STUCK_PART
from gateway.wording import Language
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
    # Told as no link to the operator at all, though orange was up.
    assert TIED_DOWN_ADVICE("en") in " ".join(text.split())
    assert "before it could be sent" not in text


def advice_of(info: dict[str, Any], lang: Language) -> str:
    """The text a person reads in the bounce of the message (`info`: `AdminRepo.message_info`)."""
    where = {
        "sender": "gw@example.com",
        "rcpt": "user@example.com",
        "reporting_mta": "gw",
        "domain": "e.test",
    }
    report = email.message_from_bytes(bounce.dsn(info, lang=lang, **where), policy=email.policy.default)
    assert isinstance(report, EmailMessage)
    _encoding, text = text_part(report)
    return " ".join(text.split())


async def sent_by_a_link_then_removed(tmp_path: Path, held: bool) -> tuple[str, str, dict[str, Any]]:
    """Link "main" took all 3 parts; the store then set as when it had taken part 1 alone (with part 2
    held after its attempts if `held`) and "main" was removed from the config for "other", another
    SMSC. Runs until the parts waiting expire: the note of part 3 before and after, and the message."""
    clock = Clock()
    async with HappySMSC() as first, HappySMSC() as second:
        text = config_text(tmp_path, smsc_port=first.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            await first.wait_until(lambda: len(first.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: len(first.received) == 3)
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = CASE seq WHEN 2 THEN ? ELSE 'queued' END, link = NULL,"
                " smsc_id = NULL, submitted_at = NULL, done_at = NULL,"
                " error = CASE seq WHEN 2 THEN ? END WHERE seq > 1",
                ("hold", "50 attempts failed; last: ESME_RSYSERR (0x08)") if held else ("queued", None),
            )
        removed = text.replace('name = "main"', 'name = "other"', 1).replace(
            f"port = {first.port}", f"port = {second.port}", 1
        )
        async with running_gateway(parse_config(removed, base_dir=tmp_path), clock=clock) as gw:
            choice, db = gw.daemon.dispatcher.choice, gw.store.db.conn
            sql = "SELECT state, error FROM parts WHERE seq = 3"
            if held:
                await gw.until(lambda: choice.waiting() == 1)
                clock.offset += LONG_SMS_WAIT_SECONDS + 1
                await gw.until(lambda: db.execute(sql).fetchone() == ("deferred", WITH_STUCK_PART.format(2)))
            else:
                await gw.until(lambda: db.execute(sql).fetchone()[0] == "deferred" and choice.waiting() == 1)
            waiting = db.execute(sql).fetchone()[1]
            expires = db.execute("SELECT expires_at FROM parts WHERE seq = 3").fetchone()[0]
            clock.offset = expires - time.time() + 1
            await gw.until(lambda: db.execute(sql).fetchone()[0] == "expired", timeout=30)
            info = gw.store.admin.message_info(1)
            expired = db.execute(sql).fetchone()[1]
    assert second.received == []
    return waiting, expired, info


async def test_a_part_behind_a_held_one_expires_naming_it(tmp_path: Path) -> None:
    _waiting, expired, info = await sent_by_a_link_then_removed(tmp_path, held=True)
    assert expired == STUCK_EXPIRED.format(2)
    for lang in ("en", "pl"):
        # "Send it again", while its note said an admin's retry sends it: the phone got it twice.
        assert STUCK_ADVICE(lang) in advice_of(info, lang)


async def test_a_part_that_waited_for_its_link_removed_is_not_told_to_wait_for_it(tmp_path: Path) -> None:
    waiting, expired, info = await sent_by_a_link_then_removed(tmp_path, held=False)
    assert waiting == TIED_WAIT.format("main", LINK_GONE)
    assert expired == TIED_EXPIRED.format("main", LINK_GONE)
    for lang in ("en", "pl"):
        # "Send it again once the link is back": a link removed does not come back.
        assert TIED_REMOVED_ADVICE(lang) in advice_of(info, lang)
