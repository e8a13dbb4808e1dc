"""Which SMS a delivery report settles when the SMSC's ids repeat: a real SMPP peer (the simulator's
SMPP server, giving every submit the same id), the running gateway, a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from smsc.base import ReportStatus
from tests.conftest import free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_policy import to


async def test_a_report_for_a_reused_id_settles_the_sms_to_the_phone_it_names(tmp_path: Path) -> None:
    # Ids repeat (an SMSC restarted, a counter wrapped). The first SMS's report never came, so it
    # waits `submitted` for a day past its validity; the second SMS got the same id and failed. Its
    # report failed the first one instead: that sender was told of a failure not theirs, and the
    # second sender was never told.
    sink_port = free_port()
    same = lambda _id: "777"  # noqa: E731
    async with HappySMSC(message_id_format=same, receipt_id_format=same, dlr_delay_seconds=3600) as smsc:
        async with (
            smtp_sink(sink_port) as sink,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw,
        ):
            for number, text in (("601100401", "First, its report never comes"), ("601100402", "Second")):
                assert (await gw.send(mail(to(number), text))).error is None
            await smsc.wait_for(2)
            parts = (
                "SELECT m.recipient, p.smsc_id, p.state FROM parts p JOIN messages m ON m.id = p.message_id"
            )
            await gw.until(lambda: [r[2] for r in gw.store.db.conn.execute(parts)] == ["submitted"] * 2)
            assert await smsc.inject_report("2", ReportStatus.FAILED)  # the simulator's own id of the second
            await gw.until(lambda: "failed" in gw.states())
            assert sorted(gw.store.db.conn.execute(parts)) == [
                ("+48601100401", "777", "submitted"),
                ("+48601100402", "777", "failed"),
            ]
            await sink.wait(1)
            assert b"+48601100402" in sink.messages[0][2] and b"+48601100401" not in sink.messages[0][2]
