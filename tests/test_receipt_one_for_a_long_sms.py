"""An SMSC that gives every part of a long SMS the same message id and sends one receipt for it: the
receipt settled the oldest part only, the others waited `submitted` and the SMS ended `unreported`
a day past its validity. A real SMPP SMSC (the fake one over loopback TCP) and the running gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_receipts_variety import count, receipt

LONG = "A notice long enough for three parts. " * 11  # some 420 characters of GSM text


@pytest.mark.parametrize(("stat", "state"), [("DELIVRD", "delivered"), ("UNDELIV", "failed")])
async def test_one_receipt_for_the_id_every_part_was_given_settles_the_whole_sms(
    tmp_path: Path, stat: str, state: str
) -> None:
    async with HeldSMSC(message_id_format=lambda _id: "4730") as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", LONG))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 3)
            smsc.answer(3)
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM parts WHERE state = 'submitted'") == 3)
            smsc.send_raw(receipt("4730", stat))
            await gw.until(lambda: gw.states() != ["submitted"])
            assert gw.states() == [state]
            parts = gw.store.db.conn.execute("SELECT state FROM parts ORDER BY seq").fetchall()
            assert parts == [(state,)] * 3


async def test_a_receipt_settles_no_part_of_another_sms_given_the_same_id(tmp_path: Path) -> None:
    # Only the parts of the receipt's own SMS: another SMS's part that shares the id (an id the
    # SMSC gave again) still waits for a receipt of its own.
    async with HeldSMSC(message_id_format=lambda _id: "4731") as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", LONG))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 3)
            smsc.answer(3)
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Short one"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.answer()
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM parts WHERE state = 'submitted'") == 4)
            smsc.send_raw(receipt("4731", "DELIVRD"))
            await gw.until(lambda: gw.states()[0] != "submitted")
            assert gw.states() == ["delivered", "submitted"]


@pytest.mark.parametrize(
    ("stats", "state", "parts"),
    [
        (["DELIVRD", "DELIVRD", "UNDELIV"], "failed", ["delivered", "delivered", "failed"]),
        (["UNDELIV", "DELIVRD", "DELIVRD"], "failed", ["failed", "delivered", "delivered"]),
        (["DELIVRD", "DELIVRD", "DELIVRD"], "delivered", ["delivered"] * 3),
    ],
)
async def test_a_receipt_a_part_for_the_one_id_lands_on_each_part(
    tmp_path: Path, stats: list[str], state: str, parts: list[str]
) -> None:
    # Another SMSC gives every part one id but sends a receipt a part: the first settles the whole SMS,
    # the later ones take the parts it settled by spread in their order. The third part's UNDELIV was
    # stored unmatched, the SMS stayed "delivered" and the sender was never told of the failure.
    async with HeldSMSC(message_id_format=lambda _id: "4740") as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", LONG))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 3)
            smsc.answer(3)
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM parts WHERE state = 'submitted'") == 3)
            for n, stat in enumerate(stats):
                smsc.send_raw(receipt("4740", stat, seq=20 + n))
                await gw.until(lambda n=n: count(gw, "SELECT COUNT(*) FROM dlrs") == n + 1)
            conn = gw.store.db.conn
            assert gw.states() == [state]
            assert [r[0] for r in conn.execute("SELECT state FROM parts ORDER BY seq")] == parts
            assert count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL") == 0
            bounces = count(gw, "SELECT COUNT(*) FROM outbox WHERE kind IN ('dsn', 'dsn-group')")
    assert bounces == (state == "failed"), bounces
