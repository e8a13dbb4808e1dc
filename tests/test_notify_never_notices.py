"""RFC 3461 NOTIFY=NEVER at a number's RCPT keeps every notice of that SMS from its sender, not only
its bounce: the identical-text rule's leave-out and the quiet hours' hold told the sender anyway. A
notice of several numbers names only those without NEVER, and goes from the null sender as a bounce
does (RFC 5321 4.5.5): it went from the gateway's own address.

Real SMTP with DSN parameters against the running daemon, a fake SMSC over TCP, the notices caught
by a real SMTP sink; the clock injected for quiet hours.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_policy import Clock, to
from tests.test_two_way import parsed

NEVER = ["NOTIFY=NEVER"]


def send(port: int, msg: EmailMessage, rcpts: dict[str, list[str]]) -> tuple[int, bytes]:
    """One mail, each RCPT with its DSN options: the DATA's reply."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        assert client.has_extn("dsn")
        client.mail(STAFF)
        for rcpt, options in rcpts.items():
            assert client.rcpt(rcpt, options=options)[0] == 250
        return client.data(msg.as_bytes())


async def test_the_identical_text_leave_out_is_not_told_of_a_number_that_asked_never(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay, identical_per_day=1)
        async with running_gateway(cfg) as gw:
            text = "Spotkanie o 10"
            assert (await gw.send(mail(to("601123456"), text))).error is None
            assert (await gw.send(mail(to("601123457"), text))).error is None
            # Both numbers had it today; the third is new. Only the one without NEVER is told of.
            both = {to("601123456"): NEVER, to("601123457"): [], to("601123458"): []}
            said = await asyncio.to_thread(send, gw.port, mail(list(both), text), both)
            assert said[0] == 250, said
            await sink.wait(1)
            # Again with NEVER on both numbers left out: no notice at all.
            quiet = {to("601123456"): NEVER, to("601123457"): NEVER, to("601123459"): []}
            said = await asyncio.to_thread(send, gw.port, mail(list(quiet), text), quiet)
            assert said[0] == 250, said
            await gw.until(lambda: len(smsc.received) == 4)
            await gw.store.drain()
            await asyncio.sleep(1)
            assert len(sink.messages) == 1, [parsed(raw)["Subject"] for _f, _r, raw in sink.messages]
            mail_from, rcpts, raw = sink.messages[0]
            told = parsed(raw)
            assert (mail_from, rcpts) == ("<>", [STAFF])  # the null sender, as a bounce's
            assert "+48601123457" in str(told["Subject"]) and "+48601123456" not in str(told["Subject"])


def bulk(rcpts: dict[str, list[str]], text: str) -> EmailMessage:
    return mail(list(rcpts), text, Precedence="bulk")


async def test_the_quiet_hours_hold_is_not_told_of_a_number_that_asked_never(tmp_path: Path) -> None:
    relay = free_port()
    clock = Clock(datetime.now(ZoneInfo("Europe/Warsaw")).replace(hour=22, minute=0, second=0, microsecond=0))
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg, clock) as gw:
            quiet = {"quiet_start": "21:00", "quiet_end": "08:00"}
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", **quiet))
            alone = {to("601123456"): NEVER}
            said = await asyncio.to_thread(
                send, gw.port, mail(list(alone), "Promocja", Precedence="bulk"), alone
            )
            assert said[0] == 250, said
            two = {to("601123457"): NEVER, to("601123458"): ["NOTIFY=FAILURE"]}
            said = await asyncio.to_thread(
                send, gw.port, mail(list(two), "Promocja 2", Precedence="bulk"), two
            )
            assert said[0] == 250, said
            await sink.wait(1)
            await gw.store.drain()
            await asyncio.sleep(1)
            assert len(sink.messages) == 1, [parsed(raw)["Subject"] for _f, _r, raw in sink.messages]
            mail_from, rcpts, raw = sink.messages[0]
            body = " ".join(parsed(raw).get_body().get_content().split())  # type: ignore[union-attr]
            assert (mail_from, rcpts) == ("<>", [STAFF])
            assert "+48601123458" in body and "+48601123457" not in body and "+48601123456" not in body
            assert smsc.received == []
