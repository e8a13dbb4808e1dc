"""Which SMS a delivery report settles when the SMSC's ids repeat: a real SMPP peer (the simulator's
SMPP server, giving every submit the same id), the running gateway, a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from gateway.store.db import Store
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


@pytest.mark.parametrize(
    ("answered", "reported", "mode"),
    [(lambda i: format(int(i) + 183, "X"), lambda i: str(int(i) + 183), "hex_to_dec"),
     (lambda i: str(int(i) + 183), lambda i: format(int(i) + 183, "x"), "dec_to_hex")],
    ids=["hex-answers-decimal-receipts", "decimal-answers-hex-receipts"],
)  # fmt: skip
async def test_receipts_written_in_the_other_base_name_the_setting_that_matches_them(
    tmp_path: Path, answered: Callable[[str], str], reported: Callable[[str], str], mode: str
) -> None:
    # Kannel's well-known mismatch: every receipt missed, the SMS waited two days and ended
    # `unreported`, and an info line per receipt was the only trace.
    async with HappySMSC(message_id_format=answered, receipt_id_format=reported) as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                for n in range(3):
                    assert (await gw.send(mail(to(f"60110040{n}"), "Hi"))).error is None
                unmatched = "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL"
                await gw.until(lambda: gw.store.db.conn.execute(unmatched).fetchone()[0] == 3)
    hints = [e for e in logs if e["event"] == "dlr.id_form_mismatch"]
    assert len(hints) == 1 and f'message_id_type = "{mode}"' in hints[0]["fix"]  # once, not per receipt


@pytest.mark.parametrize("smsc_id", ["²", "", "٣", "x-1"])
def test_an_unmatched_receipt_id_no_base_reads_is_stored_not_raised(tmp_path: Path, smsc_id: str) -> None:
    # The hint read the id as a number: "²".isdigit() holds and int() refuses it, inside the write
    # that stores the receipt (answered RETRY, delivered again, for ever).
    store = Store.open(tmp_path / "smsgw.db")
    try:
        assert store.queue.record_report("main", smsc_id, "delivered", None, "raw") == []
        assert store.db.conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone() == (1,)
    finally:
        store.close()
