"""The anti-spam rule on identical texts (R-2.3): a fourth identical text to a number the same day is
refused (hours later too, and with another subject), and goes the next day. Real SMTP sessions
against a running gateway and a fake SMSC, as in test_policy.py; split from it by subject (it was
over 400 lines)."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import (
    STAFF,
    mail,
    make_config,
    running_gateway,
)
from tests.fakes.smsc import HappySMSC
from tests.test_policy import code, error_text, to


async def test_fourth_identical_text_hours_later_the_same_day_is_refused_and_goes_the_next_day(
    tmp_path: Path,
) -> None:
    # F13 "on the same day": the count spans the whole day ([gateway] timezone), not a recent
    # window. Sent one a minute apart, the four identical mails of the test above say nothing of
    # mails hours apart: at 08:00, 09:00, 10:00 and 11:00 the fourth is refused 5.7.x; the next
    # morning the same text goes again.
    tz = ZoneInfo("Europe/Warsaw")
    now = [datetime(2026, 3, 10, 8, 0, tzinfo=tz).timestamp()]
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port), lambda: now[0]) as gw,
    ):
        results = []
        for hour in (8, 9, 10, 11):
            now[0] = datetime(2026, 3, 10, hour, 0, tzinfo=tz).timestamp()
            msg = mail(to("601123456"), "Buy now!", Message_ID=f"<hourly-{hour}@acme.example>")
            results.append(await gw.send(msg))
        assert [r.error is None for r in results] == [True, True, True, False]
        assert code(results[3]) == 550 and error_text(results[3]).startswith("5.7.")
        assert "identical" in error_text(results[3])
        await smsc.wait_for(3)
        now[0] = datetime(2026, 3, 11, 8, 0, tzinfo=tz).timestamp()
        next_day = mail(to("601123456"), "Buy now!", Message_ID="<next-day@acme.example>")
        assert (await gw.send(next_day)).error is None
        await smsc.wait_for(4)
        assert [s.text for s in smsc.received] == ["Buy now!"] * 4


async def test_fourth_identical_text_to_a_number_is_refused(tmp_path: Path) -> None:
    # F13: three identical SMS to one number in a day go; the fourth (new Message-ID) is refused.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        results = []
        for i in range(4):
            results.append(
                await gw.send(mail(to("601123456"), "Buy now!", Message_ID=f"<spam-{i}@acme.example>"))
            )
        assert [r.error is None for r in results] == [True, True, True, False]
        assert code(results[3]) == 550 and "identical" in error_text(results[3])
        other = await gw.send(mail(to("601123457"), "Buy now!"))
        assert other.error is None  # the rule is per number
        await smsc.wait_for(4)
        # A group mail with that number among others: refused whole, the others got nothing. Now
        # only that number is left out, and the sender is told which (once, not at each retry).
        group = [to("601123456"), to("601123458"), to("601123459")]
        msg = mail(group, "Buy now!", Message_ID="<group@acme.example>")
        for _ in range(2):
            assert (await gw.send(msg, group)).error is None
        await smsc.wait_for(6)
        await asyncio.sleep(0.3)
        assert sorted(s.destination for s in smsc.received[4:]) == ["+48601123458", "+48601123459"]
        told = gw.store.db.conn.execute("SELECT rcpt, content FROM outbox WHERE kind = 'not-sent'").fetchall()
        assert len(told) == 1 and told[0][0] == STAFF
        notice = email.message_from_bytes(told[0][1], policy=policy.default)
        assert "+48601123456" in notice["Subject"] and "identical" in notice.get_content()
        # The same mail split by the client into transactions (Postfix: 50 recipients each): the
        # one holding only the blocked number is refused, as a mail of its own would be; it was
        # answered 250 and nobody heard of it.
        res = await gw.send(msg, [to("601123456")])
        assert code(res) == 550 and "identical" in error_text(res)
        # With confirmations on, the confirmation names only the numbers sent.
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
        both = [to("601123456"), to("601123460")]
        assert (await gw.send(mail(both, "Buy now!"), both)).error is None
        confirmations = gw.store.db.conn.execute(
            "SELECT content FROM outbox WHERE kind = 'confirmation' ORDER BY id"
        ).fetchall()
        said = email.message_from_bytes(confirmations[-1][0], policy=policy.default).get_content()
        assert "+48601123460" in said and "+48601123456" not in said, said


async def test_a_subject_does_not_let_a_fourth_identical_text_through(tmp_path: Path) -> None:
    # A Reply (RE:) to a phone with the subject of the conversation loses its subject (it is an
    # answer in that conversation): the first SMS read "Hi: same text", the next three "same
    # text", and the rule saw two different texts, so four went and the fifth was refused.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        sent = []
        conn = gw.store.db.conn
        submitted = "SELECT COUNT(submitted_at) FROM parts"
        for i in range(4):
            subject = "RE: Hi" if i else "Hi"
            msg = mail(to("601300001"), "same text", subject=subject, Message_ID=f"<same-{i}@acme.example>")
            sent.append(await gw.send(msg))
            # The subject is left out once an SMS under it reached the phone: each before the next mail.
            went = min(i + 1, 3)
            await gw.until(lambda n=went: conn.execute(submitted).fetchone()[0] >= n)
        assert [r.error is None for r in sent] == [True, True, True, False]
        assert code(sent[3]) == 550 and "identical" in error_text(sent[3])
        await smsc.wait_for(3)
        assert [s.text for s in smsc.received] == ["Hi: same text", "same text", "same text"]
