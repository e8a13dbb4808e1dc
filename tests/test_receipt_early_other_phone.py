"""A receipt that overtakes the submit answer naming its id, but names another phone: an SMSC's ids
repeat, so it belongs to another SMS given that id, not to this one.

The ordinary order (the answer first) takes no receipt naming another phone, while the early one was
applied whatever phone it named: an UNDELIV of someone else's SMS bounced this one to its sender. It
stays unmatched now, as in the ordinary order, and the SMS waits for its own receipt.
A small SMPP SMSC over TCP that holds its submit answers, and the running gateway."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_receipts_variety import count, receipt


async def test_an_early_receipt_naming_another_phone_leaves_the_sms_to_its_own(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HeldSMSC(message_id_format=lambda _id: "4811") as smsc, smtp_sink(sink_port):
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Mine"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.send_raw(receipt("4811", "UNDELIV", phone="48601999999", seq=10))  # another phone's
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs") == 1)
            smsc.answer()
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM parts WHERE smsc_id = '4811'") == 1)
            smsc.send_raw(receipt("4811", "ENROUTE", seq=11))  # a receipt after the answer, matched
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NOT NULL") == 1)
            assert gw.states() == ["submitted"]
            assert (
                count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL AND phone = '+48601999999'") == 1
            )
            smsc.send_raw(receipt("4811", "DELIVRD", seq=12))  # its own
            await gw.until(lambda: gw.states() == ["delivered"])
            assert count(gw, "SELECT COUNT(*) FROM outbox") == 0  # no bounce
