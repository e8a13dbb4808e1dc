"""A delivery receipt whose text is UCS-2 (data_coding 8), as an SMSC writes the receipt of an SMS sent
in UCS-2: read as Latin-1 it had a NUL before each character, no field was found (`smpp.bad_receipt
fields:[]`), the SMS ended `unreported` and an UNDELIV was never bounced. The text is read by its
data_coding now. A small SMPP SMSC over TCP and the running gateway."""

from __future__ import annotations

from pathlib import Path

import structlog

from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_receipts_variety import count


def ucs2_receipt(smsc_id: str, stat: str, seq: int) -> bytes:
    text = f"id:{smsc_id} sub:001 dlvrd:000 submit date:2612050600 done date:2612050601 stat:{stat} err:001"
    text += " text:zażółć gęślą"
    return encode_sm(DELIVER_SM, seq, esm_class=4, source_addr_ton=1, source_addr="48601700101",
                     data_coding=8, short_message=text.encode("utf-16-be"))  # fmt: skip


async def test_an_undeliv_receipt_in_ucs2_fails_the_sms_and_bounces_it(tmp_path: Path) -> None:
    sink_port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with HeldSMSC(message_id_format=lambda _id: "4911") as smsc, smtp_sink(sink_port) as sink:
            cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(f"601700101@{DOMAIN}", "Zażółć gęślą jaźń"))).error is None
                await smsc.wait_until(lambda: len(smsc.held) == 1)
                smsc.answer()
                await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM parts WHERE smsc_id = '4911'") == 1)
                smsc.send_raw(ucs2_receipt("4911", "UNDELIV", seq=10))
                await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs") == 1, timeout=5)
                await gw.until(lambda: gw.states() == ["failed"])
                await sink.wait(1)  # the bounce
                raw = gw.store.db.conn.execute("SELECT raw FROM dlrs").fetchone()[0]
    assert b"+48601700101" in sink.messages[0][2]
    assert "stat:UNDELIV" in raw and "gęślą" not in raw  # the SMS's quote is not kept
    assert not [e for e in logs if e["event"] == "smpp.bad_receipt"]
