"""Two SMS to one phone answered with one 060 (an SMSC stamping to the minute, or a stuck clock):
their reports, coming in the other order, marked the failed one delivered and bounced the delivered
one. A repeated key names no one SMS: both reports are kept unmatched, neither SMS is settled by the
other's report, and the link says so once, naming no phone. The daemon over CIMD2 to a scripted SMSC,
real SQLite."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from gateway.config import parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_late_answer import next_submit, warnings

PHONE = "+48601777002"


async def test_reports_under_a_060_given_twice_to_one_phone_settle_neither_sms(tmp_path: Path) -> None:
    stamp = time.strftime("%y%m%d%H%M", time.gmtime()) + "00"  # to the minute
    async with ScriptedSmsc() as peer:
        text = config_text(tmp_path, smsc_port=peer.port).replace('type = "smpp"', 'type = "cimd2"')
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                conn = await peer.accept()
                await conn.login()
                db = gw.store.db.conn
                for n, body in enumerate(("first: this one FAILS", "second: this one is DELIVERED"), 1):
                    await gw.send(mail(f"{PHONE[3:]}@{DOMAIN}", body))
                    submit = await next_submit(conn)
                    conn.send(
                        Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, PHONE), (P.SCTS, stamp))
                    )
                    await gw.until(
                        lambda n=n: (
                            db.execute("SELECT COUNT(*) FROM parts WHERE state = 'submitted'").fetchone()[0]
                            == n
                        )
                    )
                # The second's report (delivered) first, then the first's (failed).
                for number, code in ((0, 4), (2, 3)):
                    report = (P.DESTINATION, PHONE), (P.SCTS, stamp), (P.STATUS_CODE, code)
                    conn.send(Packet.make(Op.STATUS_REPORT, number, *report, (P.DISCHARGE_TIME, stamp)))
                    assert (await conn.next()).op == Op.STATUS_REPORT_RESP
                await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 2)
                parts = db.execute("SELECT state, smsc_id FROM parts ORDER BY id").fetchall()
                dlrs = db.execute("SELECT part_id FROM dlrs").fetchall()
    # Both keep the key in a form no report names (`gateway.store.sharedkeys`): after a restart, which
    # the link's memory of its keys does not outlive, the first still took the next report under it.
    assert parts == [("submitted", f"{stamp}-shared:48601777002")] * 2
    assert dlrs == [(None,), (None,)]
    (said,) = warnings(logs, "cimd2.submit_060_repeated")
    assert said["link"] == "main" and "601777002" not in str(said)
