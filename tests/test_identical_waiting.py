"""R-2.4's "at most 3 identical SMS a day to one phone" counts the day the SMS reach the phone: SMS
of an earlier day still waiting to go (held for quiet hours, queued behind a link outage, held by
an admin) count toward today, whatever day their mail was accepted. Counted by the day of the mail
alone, three held at 23:00 and three more accepted at 00:30 all went at 08:00. Once they go they
count toward the day they went: counted by their mail's day again, three more accepted after the
08:00 release reached the phone that day too, six in one day.

Through real SMTP sessions against a running gateway with an injected clock, and a fake SMPP SMSC
over TCP (or none listening, for the outage).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from tests.conftest import Running, mail, make_config, running_gateway
from tests.fakes.ports import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_policy import code, error_text, to
from tests.test_quiet_hours import WARSAW, Clock

REFUSED = (
    "5.7.1 More than 3 identical SMS to +48601123456 today are not allowed (operator anti-spam rule);"
    " change the text or send it tomorrow"
)


@asynccontextmanager
async def three_held_overnight(tmp_path: Path) -> AsyncIterator[tuple[Clock, HappySMSC, Running]]:
    """Monday 23:00 in Warsaw, acme's quiet hours 21:00-08:00: three identical bulk SMS to one phone
    accepted and held until Tuesday 08:00, the day they count toward once they go."""
    clock = Clock(datetime(2026, 12, 7, 23, 0, tzinfo=WARSAW))  # Monday
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, timezone="Europe/Warsaw")
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            for i in range(3):  # held until Tuesday 08:00
                res = await gw.send(
                    mail(to("601123456"), "Same text", Precedence="bulk", Message_ID=f"<m{i}@a>")
                )
                assert res.error is None
            yield clock, smsc, gw


async def test_sms_held_over_midnight_for_quiet_hours_count_toward_the_day_they_go(tmp_path: Path) -> None:
    async with three_held_overnight(tmp_path) as (clock, smsc, gw):
        clock.t = datetime(2026, 12, 8, 0, 30, tzinfo=WARSAW).timestamp()  # Tuesday
        res = await gw.send(mail(to("601123456"), "Same text", Precedence="bulk", Message_ID="<t0@a>"))
        assert (code(res), error_text(res)) == (550, REFUSED)
        # A mail to two numbers goes to the other one only (the check before its rows are written).
        res = await gw.send(
            mail([to("601123456"), to("601123457")], "Same text", Precedence="bulk", Message_ID="<t1@a>")
        )
        assert res.error is None and not res.refused
        assert (await gw.send(mail(to("601123456"), "Other text", Precedence="bulk"))).error is None
        clock.t = datetime(2026, 12, 8, 8, 1, tzinfo=WARSAW).timestamp()
        gw.daemon.dispatcher.wake()
        await smsc.wait_for(5)
        got = sorted((s.destination, s.text) for s in smsc.received)
    assert got == [("+48601123456", "Other text")] + [("+48601123456", "Same text")] * 3 + [
        ("+48601123457", "Same text")
    ], got


async def test_sms_left_waiting_over_midnight_by_a_link_outage_count_until_they_end(tmp_path: Path) -> None:
    # No SMSC listens: Monday's three wait. On Tuesday they count, held by an admin too; one the
    # admin cancels will never go, and the next identical mail is taken.
    clock = Clock(datetime(2026, 12, 7, 23, 50, tzinfo=WARSAW))
    cfg = make_config(tmp_path, smsc_port=free_port(), timezone="Europe/Warsaw")
    async with running_gateway(cfg, clock) as gw:
        for i in range(3):
            assert (await gw.send(mail(to("601123456"), "Same text", Message_ID=f"<m{i}@a>"))).error is None
        clock.t = datetime(2026, 12, 8, 0, 10, tzinfo=WARSAW).timestamp()
        res = await gw.send(mail(to("601123456"), "Same text", Message_ID="<t0@a>"))
        assert (code(res), error_text(res)) == (550, REFUSED)
        first, second = [
            r[0] for r in gw.store.db.conn.execute("SELECT id FROM messages ORDER BY id LIMIT 2")
        ]
        assert await gw.store.write(lambda: gw.store.admin.hold_message(first)) == 1
        res = await gw.send(mail(to("601123456"), "Same text", Message_ID="<t1@a>"))
        assert (code(res), error_text(res)) == (550, REFUSED)
        assert await gw.store.write(lambda: gw.store.admin.cancel_message(second)) == 1
        assert (await gw.send(mail(to("601123456"), "Same text", Message_ID="<t2@a>"))).error is None
        assert gw.states() == ["hold", "cancelled", "queued", "queued"]


async def test_sms_held_overnight_count_toward_the_day_they_went_once_sent(tmp_path: Path) -> None:
    # Three held at 23:00 go at 08:00 on Tuesday: three more accepted after that reached the phone too.
    async with three_held_overnight(tmp_path) as (clock, smsc, gw):
        clock.t = datetime(2026, 12, 8, 8, 1, tzinfo=WARSAW).timestamp()
        gw.daemon.dispatcher.wake()
        await smsc.wait_for(3)
        await gw.until(lambda: set(gw.states()) <= {"submitted", "delivered"})
        clock.t = datetime(2026, 12, 8, 9, 0, tzinfo=WARSAW).timestamp()
        res = await gw.send(mail(to("601123456"), "Same text", Precedence="bulk", Message_ID="<t0@a>"))
        assert (code(res), error_text(res)) == (550, REFUSED)
        res = await gw.send(
            mail([to("601123456"), to("601123457")], "Same text", Precedence="bulk", Message_ID="<t1@a>")
        )
        assert res.error is None and not res.refused
        await smsc.wait_for(4)
        # Wednesday: Tuesday's three do not count, whatever day their mail came.
        clock.t = datetime(2026, 12, 9, 8, 30, tzinfo=WARSAW).timestamp()
        res = await gw.send(mail(to("601123456"), "Same text", Precedence="bulk", Message_ID="<w0@a>"))
        assert res.error is None
        await smsc.wait_for(5)
        got = sorted((s.destination, s.text) for s in smsc.received)
    assert got == [("+48601123456", "Same text")] * 4 + [("+48601123457", "Same text")], got


async def test_a_long_sms_sent_counts_once_whatever_its_parts(tmp_path: Path) -> None:
    # Counted by its parts' submit times, a 2-part SMS is one SMS of the three, not two.
    text = "Same long text " * 12  # 180 characters: 2 parts
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        for i in range(3):
            res = await gw.send(mail(to("601123456"), text, Message_ID=f"<l{i}@a>"))
            assert res.error is None, i
            await smsc.wait_for(2 * (i + 1))
            await gw.until(lambda n=i + 1: gw.states().count("delivered") == n)
        res = await gw.send(mail(to("601123456"), text, Message_ID="<l3@a>"))
        assert (code(res), error_text(res)) == (550, REFUSED)
