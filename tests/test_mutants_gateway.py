"""What a client's mail server hears from the running gateway, and what a throttled SMS costs, where no
test held the rule: an account's own opt-out and its suspension refused as early as SMTP can, a
group mail sent again after a lost reply told of no identical-text refusal it did not get, and a
throttled submit spending none of the part's attempts.

Real peers: smtplib against the daemon's listener on 127.0.0.1, an SMPP SMSC over TCP, the daemon's
own SQLite store read as `smsgw queue` reads it."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_policy import BETA

ESME_RTHROTTLED = 0x58
BOB = "bob@beta.example"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def session(port: int, sender: str, rcpts: list[str], source: str = "127.0.0.1") -> list[tuple[int, str]]:
    """MAIL and each RCPT's reply, step by step, as a mail server reads them; no DATA."""
    client = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30)
    try:
        client.ehlo("mx.acme.example")
        replies = [client.mail(sender)]
        if replies[0][0] == 250:
            replies += [client.rcpt(r) for r in rcpts]
        client.rset()
        return [(code, text.decode()) for code, text in replies]
    finally:
        client.quit()


async def test_an_accounts_own_opt_out_is_refused_at_rcpt_and_not_for_another_account(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port(), extra=BETA)
    async with running_gateway(cfg) as gw:
        store = gw.store
        await store.write(
            lambda: store.policy.add_account_optout(store.accounts.get_account("acme").id, "+48601123456")
        )
        acme = await asyncio.to_thread(session, gw.port, STAFF, [to("601123456"), to("601123457")])
        beta = await asyncio.to_thread(session, gw.port, BOB, [to("601123456")], "127.0.0.2")
    (mail_reply, (code, said), other) = acme
    assert mail_reply[0] == 250 and other[0] == 250
    # At RCPT, the number named: not accepted and then failed, with a "Not sent" notice later.
    assert code == 550 and "<601123456@" in said and "opted out of SMS from this account" in said, said
    assert [c for c, _ in beta] == [250, 250]  # the list is acme's, not the shared one


async def test_a_suspended_accounts_mail_is_refused_at_mail_from(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port(), extra=BETA)
    async with running_gateway(cfg) as gw:
        store = gw.store
        await store.write(
            lambda: store.policy.suspend_account(store.accounts.get_account("acme").id, "unpaid")
        )
        acme = await asyncio.to_thread(session, gw.port, STAFF, [to("601123456")])
        beta = await asyncio.to_thread(session, gw.port, BOB, [to("601123456")], "127.0.0.2")
        messages = store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    [(code, said)] = acme  # refused at MAIL FROM: no RCPT was asked, no DATA sent for nothing
    assert code == 550 and "Account acme is suspended: unpaid" in said, said
    assert [c for c, _ in beta] == [250, 250]
    assert messages == 0


async def test_a_group_mail_sent_again_after_a_lost_reply_gets_no_identical_text_notice(
    tmp_path: Path,
) -> None:
    # identical_per_day = 1: the first copy made each number's one SMS of the text today. The same
    # mail again (its Message-ID: a client that lost the 250) reached them already: no SMS again,
    # and no "Not sent as SMS" notice telling its sender the rule kept the numbers from it.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=free_port(), identical_per_day=1)
        async with running_gateway(cfg) as gw:
            both = [to("601123491"), to("601123492")]
            msg = mail(both, "Meeting moved", "Room 4", Message_ID="<retry-1@acme.example>")
            assert (await gw.send(msg, both)).error is None
            await smsc.wait_for(2)
            again = await gw.send(msg, both)
            await asyncio.sleep(0.3)  # time for a third submit, had the copy been sent again
            kinds = [k for (k,) in gw.store.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
            messages = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert again.error is None and not again.refused, again
    assert "not-sent" not in kinds, kinds
    assert messages == 2 and len(smsc.received) == 2


class FirstThrottledSMSC(HappySMSC):
    """Answers ESME_RTHROTTLED to the first `throttles` submits, then takes every one."""

    def __init__(self, throttles: int) -> None:
        super().__init__()
        self.throttles = throttles

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.throttles > 0:
            self.throttles -= 1
            session.answer_submit(seq, None, status=ESME_RTHROTTLED)
            return
        await super().on_submit(session, seq, sms)


async def test_a_throttled_submit_spends_none_of_the_parts_attempts(tmp_path: Path) -> None:
    # The operator's sending limit is the link's, not the SMS's: counted, an hour of throttling
    # put waiting SMS on hold as if each had failed 50 times.
    async with FirstThrottledSMSC(throttles=6) as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(to("601123456"), "Throttled first"))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
            attempts = gw.store.db.conn.execute("SELECT attempts FROM parts").fetchall()
    assert smsc.throttles == 0  # each throttle was answered to a submit of this part
    assert attempts == [(1,)]  # the one submit the SMSC took
