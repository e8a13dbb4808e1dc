"""A receipt naming the phone behind a digit routing prefix (an MNP or hub code: "1448601123456" for
+48601123456) settles its SMS when its id is that of exactly one SMS waiting for its receipt.

The phone a receipt names is compared as the end of the recipient's number: the longer form matched
nothing, the SMS waited `submitted` to end `unreported`, and an UNDELIV was never bounced. Nothing
else is widened: an id the SMSC gave two waiting SMS leaves such a receipt unmatched, said once.
The gateway in this process against the SMPP simulator over loopback TCP, receipts written by hand.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import structlog

from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_faults import to

ROUTED = "1448601123456"  # "14", then +48601123456


def receipt(smsc_id: str, phone: str, stat: str, seq: int) -> bytes:
    text = f"id:{smsc_id} sub:001 dlvrd:000 submit date:2612071540 done date:2612071541 stat:{stat} err:001"
    return encode_sm(DELIVER_SM, seq, source_addr=phone, source_addr_ton=1, source_addr_npi=1,
                     destination_addr="48100200300", esm_class=0x04, short_message=text.encode())  # fmt: skip


def parts(db_path: Path) -> list[tuple[str, str | None]]:
    """Each part's state and SMSC id, read as another process would."""
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        return [(row[0], row[1]) for row in db.execute("SELECT state, smsc_id FROM parts ORDER BY id")]


def unmatched(db_path: Path) -> int:
    with closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0])


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), seconds)


async def test_a_receipt_naming_the_phone_behind_a_routing_prefix_fails_its_sms(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        db_path = cfg.gateway.state_dir / "smsgw.db"
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Routed"))).error is None
            await smsc.wait_for(1)
            smsc.answer(1)
            await until(lambda: parts(db_path)[0][0] == "submitted")
            smsc_id = parts(db_path)[0][1]
            assert smsc_id
            smsc.send_raw(receipt(smsc_id, ROUTED, "UNDELIV", 9001))
            await until(lambda: parts(db_path)[0][0] != "submitted")
        assert parts(db_path) == [("failed", smsc_id)]
        assert unmatched(db_path) == 0


async def test_an_id_on_two_waiting_sms_leaves_a_routed_receipt_unmatched(tmp_path: Path) -> None:
    # Ids repeat: matched by the id alone, the receipt could be either SMS's.
    async with HeldSMSC(message_id_format=lambda _id: "77") as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        db_path = cfg.gateway.state_dir / "smsgw.db"
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(to("601123456"), "First"))).error is None
                assert (await gw.send(mail(to("601123456"), "Second"))).error is None
                await smsc.wait_for(2)
                smsc.answer(2)
                await until(lambda: [state for state, _id in parts(db_path)] == ["submitted", "submitted"])
                smsc.send_raw(receipt("77", ROUTED, "UNDELIV", 9002))
                await until(lambda: unmatched(db_path) == 1)
        assert parts(db_path) == [("submitted", "77"), ("submitted", "77")]
    hints = [e for e in logs if e["event"] == "dlr.routing_prefix"]
    assert [(h["prefix"], h["matched"]) for h in hints] == [("14", False)], json.dumps(hints, default=str)
    assert "601123456" not in json.dumps(hints)  # no phone number in the log
