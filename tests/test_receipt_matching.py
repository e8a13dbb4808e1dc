"""Which SMS a delivery report settles when the SMSC's ids repeat: a real SMPP peer (the simulator's
SMPP server, giving every submit the same id), the running gateway, a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from gateway.smtp.accept import accept
from gateway.store.db import Store
from smsc.base import ReportStatus
from tests.conftest import free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_policy import to
from tests.test_store import Clock, acceptance


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


@pytest.mark.parametrize(
    ("phone", "owner"),
    [("+48601100402", "+48601100402"),  # as it should be
     ("+601100402", "+48601100402"),  # a national number labelled international (TON 1)
     ("+48100200300", "+48601100401"),  # our own number where the phone belongs: it cannot tell
     ("601100402", "+48601100401"),  # a form the numbering plan did not read: it cannot tell
     (None, "+48601100401")],
    ids=["e164", "national-as-international", "our-number", "unread", "none"],
)  # fmt: skip
async def test_a_receipt_for_a_reused_id_waits_for_its_own_sms_rather_than_fail_another(
    tmp_path: Path, phone: str | None, owner: str
) -> None:
    # The first SMS's report never came; the second got the same id, and its FAILED receipt
    # overtook its submit answer. With only the first waiting under that id, the receipt failed it,
    # although it named the second's phone: that sender was told of a failure not theirs. Left
    # unmatched, it is taken by the second's submit answer. A phone that cannot be compared only
    # orders the parts, as before.
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    try:
        await accept(store, acceptance(["+48601100401"]))
        (first,) = store.queue.claim_due(10)
        store.queue.mark_submitted(first.id, "main", "777")
        clock.t += 3600
        await accept(store, acceptance(["+48601100402"]))
        (second,) = store.queue.claim_due(10)
        clock.t += 1
        store.queue.record_report("main", "777", "failed", "UNDELIV err:001", "raw", phone)
        store.queue.mark_submitted(second.id, "main", "777")
        states = dict(
            store.db.conn.execute(
                "SELECT m.recipient, p.state FROM parts p JOIN messages m ON m.id = p.message_id"
            ).fetchall()
        )
    finally:
        store.close()
    other = ({"+48601100401", "+48601100402"} - {owner}).pop()
    assert states == {owner: "failed", other: "submitted"}


async def test_a_receipt_that_comes_by_another_link_than_its_sms_names_smsc_account(tmp_path: Path) -> None:
    # An operator whose binds share receipts: those of SMS sent by link plus came by link main,
    # matched nothing, and each SMS waited two days to end `unreported`, a failed one never bounced,
    # with an info line per receipt as the only trace. The fix, one smsc_account on both, was never said.
    store = Store.open(tmp_path / "smsgw.db", clock=Clock())
    store.queue.link_names = {"main": "smpp", "plus": "smpp", "spare": "smpp"}
    try:
        await accept(store, acceptance(["+48601100401", "+48601100402"]))
        parts = store.queue.claim_due(2)
        for part, smsc_id in zip(parts, ("5001", "5002"), strict=True):
            store.queue.mark_submitted(part.id, "plus", smsc_id)
        with structlog.testing.capture_logs() as logs:
            # Another SMSC's receipt whose id is the same, for another phone: no advice.
            assert store.queue.record_report("main", "5001", "delivered", None, "raw", "+48509876543") == []
            assert not [e for e in logs if e["event"] == "dlr.other_link"]
            for smsc_id in ("5001", "5002", "9999"):
                assert store.queue.record_report("main", smsc_id, "delivered", None, "raw") == []
    finally:
        store.close()
    hints = [e for e in logs if e["event"] == "dlr.other_link"]
    assert len(hints) == 1, logs  # once an hour a link, not per receipt
    assert hints[0]["sent_by"] == "plus" and hints[0]["link"] == "main"
    assert "smsc_account" in hints[0]["fix"] and "plus" in hints[0]["fix"]


async def test_a_receipt_matching_an_sms_of_a_link_of_another_protocol_names_no_smsc_account(
    tmp_path: Path,
) -> None:
    # An SMPP SMSC's receipt whose id a CIMD2 link's SMS was given too: two SMSCs, whose ids may meet.
    # The hint told the admin to give both one smsc_account, which check-config refuses.
    store = Store.open(tmp_path / "smsgw.db", clock=Clock())
    store.queue.link_names = {"main": "smpp", "plus": "cimd2"}
    try:
        await accept(store, acceptance(["+48601100401"]))
        (part,) = store.queue.claim_due(1)
        store.queue.mark_submitted(part.id, "plus", "5001")
        with structlog.testing.capture_logs() as logs:
            assert store.queue.record_report("main", "5001", "delivered", None, "raw") == []
    finally:
        store.close()
    assert not [e for e in logs if e["event"] == "dlr.other_link"], logs
