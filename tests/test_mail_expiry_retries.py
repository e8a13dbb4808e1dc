"""Retries of a mail past its `Expiry-Date:`: a retry of a mail taken before its expiry is answered as a
retry; one naming new numbers sends them nothing and says so; a late retry sent again tells its
sender once, and does not call late a number the first copy named. A real gateway on 127.0.0.1 with
an SMPP simulator and an injected clock, as in test_mail_expiry.py; split from it by subject (it was
over 400 lines)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_mail_expiry import Clock, expiry_date, said, to


async def test_a_retry_after_the_expiry_of_a_mail_taken_before_it_is_answered_as_a_retry(
    tmp_path: Path,
) -> None:
    # the sender's server never read our 250 and sends the same mail 20 min later, past its
    # Expiry-Date. The phone has its SMS: a 554 "no SMS was sent" would bounce it to its sender.
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            expiry = expiry_date(int(clock()) + 120)
            one = mail(
                to("601123461"), "Meeting moved", Expiry_Date=expiry, Message_ID="<late-1@example.com>"
            )
            group = mail(
                [to("601123462"), to("601123463")],
                "Room 4",
                Expiry_Date=expiry,
                Message_ID="<late-2@example.com>",
            )
            assert (await gw.send(one)).error is None
            assert (await gw.send(group)).error is None
            await smsc.wait_for(3)
            clock.skew += 20 * 60
            for again in (one, group):
                res = await gw.send(again)
                assert res.error is None and not res.refused, said(res)
            # Another mail with that expiry is refused as before: it was never taken.
            other = mail(
                to("601123461"), "Meeting moved", Expiry_Date=expiry, Message_ID="<late-3@example.com>"
            )
            assert said(await gw.send(other))[0] == 554
            db = gw.store.db.conn
            assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3
            kinds = [r[0] for r in db.execute("SELECT kind FROM outbox ORDER BY id")]
            assert kinds.count("confirmation") == 2  # one per mail taken, none for the retries
            await asyncio.sleep(0.3)
    assert sorted(s.destination.lstrip("+") for s in smsc.received) == [
        "48601123461",
        "48601123462",
        "48601123463",
    ]


async def test_a_retry_after_the_expiry_naming_new_numbers_sends_them_nothing_and_says_so(
    tmp_path: Path,
) -> None:
    # The first copy went to one number before its expiry; the sender's server, its 250 lost, sends
    # it again 20 min later to that number and a new one (a recipient it had deferred). The number
    # reached has its SMS (the retry's 250, no second SMS); the new one gets none, as the expired
    # mail alone would have (it used to get the SMS, valid 5 min), and its sender is told so.
    sink_port = free_port()
    clock = Clock()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            at = int(clock()) + 120
            first = mail(
                to("601123481"),
                "Meeting moved",
                "Room 4",
                Expiry_Date=expiry_date(at),
                Message_ID="<late-4@example.com>",
            )
            assert (await gw.send(first)).error is None
            await smsc.wait_for(1)
            clock.skew += 20 * 60
            res = await gw.send(first, rcpts=[to("601123481"), to("601123482")])
            assert res.error is None and not res.refused, said(res)
            db = gw.store.db.conn
            [(email_id,)] = db.execute("SELECT id FROM emails").fetchall()
            assert len(gw.states()) == 1  # no SMS row for the new number
            rows = db.execute("SELECT kind, email_ref, content FROM outbox ORDER BY id").fetchall()
            assert [r[0] for r in rows] == ["confirmation", "not-sent"]
            assert rows[1][1] == email_id  # about the mail that went (`smsgw phone forget` finds it)
            await sink.wait(2)
            await asyncio.sleep(0.3)
    assert [s.destination.lstrip("+") for s in smsc.received] == ["48601123481"]
    notice = message_from_bytes(
        next(raw for _, _, raw in sink.messages if b"Not sent" in raw), policy=policy.default
    )
    assert notice["Subject"] == "Not sent as SMS to +48601123482: Room 4"
    assert notice["In-Reply-To"] == "<late-4@example.com>"
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    until = datetime.fromtimestamp(at, ZoneInfo(cfg.gateway.timezone))
    assert "+48601123481" in text and "+48601123482" in text, text
    assert f"{until:%Y-%m-%d %H:%M %Z}" in text, text


async def test_a_late_retry_sent_again_tells_its_sender_once(tmp_path: Path) -> None:
    # The late retry's own 250 lost too: its server sends it twice more. One notice, not three.
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=1)
        async with running_gateway(cfg, clock) as gw:
            first = mail(
                to("601123481"),
                "Meeting moved",
                "Room 4",
                Expiry_Date=expiry_date(int(clock()) + 120),
                Message_ID="<late-5@example.com>",
            )
            assert (await gw.send(first)).error is None
            await smsc.wait_for(1)
            clock.skew += 20 * 60
            for _ in range(3):
                res = await gw.send(first, rcpts=[to("601123481"), to("601123482")])
                assert res.error is None and not res.refused, said(res)
            kinds = [k for (k,) in gw.store.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
    assert kinds.count("not-sent") == 1, kinds
    assert len(smsc.received) == 1


async def test_a_late_retry_does_not_call_late_a_number_the_first_copy_named(tmp_path: Path) -> None:
    # The first copy named both numbers in time; the identical-text rule left the second out and its
    # sender was told so. The same mail retried after its expiry told them again, wrongly: "named
    # only after that date had passed".
    clock = Clock()
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=1, identical_per_day=1)
        async with running_gateway(cfg, clock) as gw:
            assert (await gw.send(mail(to("601123492"), "Meeting moved", "Room 4"))).error is None
            first = mail(
                to("601123491"),
                "Meeting moved",
                "Room 4",
                Expiry_Date=expiry_date(int(clock()) + 120),
                Message_ID="<late-6@example.com>",
            )
            both = [to("601123491"), to("601123492")]
            assert (await gw.send(first, rcpts=both)).error is None
            await smsc.wait_for(2)
            clock.skew += 20 * 60
            res = await gw.send(first, rcpts=both)
            assert res.error is None and not res.refused, said(res)
            kinds = [k for (k,) in gw.store.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
    assert kinds.count("not-sent") == 1, kinds
