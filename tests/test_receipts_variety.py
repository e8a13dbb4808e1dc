"""Receipts as SMSCs vary them, sent by a small SMPP SMSC over TCP to the running gateway: several
receipts that overtake one submit answer, a phone written with its trunk "0" under TON 1, a
message_state SMPP 3.4 does not define, and the hint on an id written in the other base."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from gateway.smtp.accept import accept
from gateway.store.db import Store
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_store import Clock, acceptance

STATS = {1: "ENROUTE", 2: "DELIVRD", 5: "UNDELIV", 6: "ACCEPTD"}


def receipt(
    smsc_id: str | None,
    stat: str | None,
    *,
    phone: str = "48601700101",
    ton: int = 1,
    state: int | None = None,
    tlv_id: str | None = None,
    seq: int = 7,
) -> bytes:
    """A deliver_sm receipt: the text's `id:` and `stat:` when given, the TLVs when given."""
    text = (
        ""
        if smsc_id is None
        else f"id:{smsc_id} sub:001 dlvrd:001 submit date:2612050600 done date:2612050601"
    )
    if stat is not None:
        text += f" stat:{stat} err:000"
    return encode_sm(DELIVER_SM, seq, esm_class=4, source_addr_ton=ton, source_addr=phone,
                     short_message=text.strip().encode(), message_state=state,
                     receipted_message_id=tlv_id)  # fmt: skip


def count(gw: object, sql: str) -> int:
    return int(gw.store.db.conn.execute(sql).fetchone()[0])  # type: ignore[attr-defined]


# --- 1. receipts that overtake the submit answer, several of them --------------------------------


@pytest.mark.parametrize(
    ("first", "then", "state", "bounced"),
    [(2, 1, "delivered", 0),  # DELIVRD, then ENROUTE: the final one was lost, the SMS stayed submitted
     (5, 6, "failed", 1),  # UNDELIV, then ACCEPTD: never bounced
     (1, 2, "delivered", 0),  # in the usual order, as before
     (6, 5, "failed", 1)],
    ids=["delivrd-enroute", "undeliv-acceptd", "enroute-delivrd", "acceptd-undeliv"],
)  # fmt: skip
async def test_a_final_receipt_before_the_answer_settles_the_sms_whatever_came_after_it(
    tmp_path: Path, first: int, then: int, state: str, bounced: int
) -> None:
    sink_port = free_port()
    async with HeldSMSC(message_id_format=lambda _id: "4711") as smsc, smtp_sink(sink_port) as sink:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Overtaken twice"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            for n, stat in enumerate((first, then)):
                smsc.send_raw(receipt("4711", STATS[stat], seq=10 + n))
                await gw.until(lambda n=n: count(gw, "SELECT COUNT(*) FROM dlrs") == n + 1)
            smsc.answer()
            await gw.until(lambda: gw.states() == [state])
            # Both receipts are the part's, none left to settle a later SMS given the same id.
            assert count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL") == 0
            if bounced:
                await sink.wait(1)
                assert b"+48601700101" in sink.messages[0][2]
            else:
                assert count(gw, "SELECT COUNT(*) FROM outbox") == 0


async def test_an_intermediate_receipt_before_the_answer_is_matched_and_settles_nothing(
    tmp_path: Path,
) -> None:
    async with HeldSMSC(message_id_format=lambda _id: "4712") as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Only en route"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.send_raw(receipt("4712", "ENROUTE"))
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs") == 1)
            smsc.answer()
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NOT NULL") == 1)
            assert gw.states() == ["submitted"]
            smsc.send_raw(receipt("4712", "DELIVRD", seq=11))  # the final one, after the answer
            await gw.until(lambda: gw.states() == ["delivered"])


# --- 2. a national number with its trunk "0" under TON 1 ----------------------------------------


@pytest.mark.parametrize(
    ("region", "number", "written"),
    [("PL", "601700101", "0601700101"),  # Poland has no trunk prefix: read as the receipt's own form
     ("DE", "+4915112345678", "015112345678")],  # Germany's trunk "0": the plan reads it into E.164
)  # fmt: skip
async def test_a_receipt_naming_the_phone_with_a_trunk_zero_under_ton_1_settles_its_sms(
    tmp_path: Path, region: str, number: str, written: str
) -> None:
    # Read as "+0601700101" it named no phone of any SMS: the SMS stayed submitted, to end unreported.
    async with HeldSMSC(message_id_format=lambda _id: "4713") as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, default_region=region)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(f"{number}@{DOMAIN}", "Trunk zero"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.answer()
            await gw.until(lambda: gw.states() == ["submitted"])
            smsc.send_raw(receipt("4713", "UNDELIV", phone=written, ton=1))
            await gw.until(lambda: gw.states() != ["submitted"])
            assert gw.states() == ["failed"]
            assert count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL") == 0


# --- 3. a message_state SMPP 3.4 does not define -------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stat", "expected"),
    [(0, "DELIVRD", "delivered"),  # SMPP 5.0's SCHEDULED: failed the SMS "0 err:000" and bounced it
     (9, "DELIVRD", "delivered"),  # SKIPPED
     (0, None, "submitted"),  # nothing final said: kept, settling nothing
     (2, "UNDELIV", "delivered")],  # a state it defines still comes first, as before
    ids=["0-delivrd", "9-delivrd", "0-alone", "2-undeliv"],
)  # fmt: skip
async def test_an_unknown_message_state_leaves_the_receipt_text_to_say(
    tmp_path: Path, state: int, stat: str | None, expected: str
) -> None:
    sink_port = free_port()
    async with HeldSMSC(message_id_format=lambda _id: "4714") as smsc, smtp_sink(sink_port):
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Scheduled"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.answer()
            await gw.until(lambda: gw.states() == ["submitted"])
            smsc.send_raw(receipt(None if stat is None else "4714", stat, state=state, tlv_id="4714"))
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NOT NULL") == 1)
            await gw.until(lambda: gw.states() == [expected])
            assert count(gw, "SELECT COUNT(*) FROM outbox") == 0


# --- 4. the hint on an id written in the other base ----------------------------------------------


@pytest.mark.parametrize(
    ("mode", "answered", "receipted", "advice"),
    [("hex_to_dec", "1FA", {"smsc_id": "1FA"}, "as_is"),  # hex both ways: said "dec_to_hex"
     ("dec_to_hex", "506", {"smsc_id": "506"}, "as_is"),  # decimal both ways: said "hex_to_dec"
     ("hex_to_dec", "1FA", {"smsc_id": None, "tlv_id": "506"}, None),  # said the hex_to_dec it had
     ("as_is", "1FA", {"smsc_id": "506"}, "hex_to_dec")],  # as before
    ids=["h2d-hex-receipts", "d2h-decimal-receipts", "h2d-decimal-tlv", "as-is"],
)  # fmt: skip
async def test_the_id_form_hint_accounts_for_the_links_current_setting(
    tmp_path: Path, mode: str, answered: str, receipted: dict[str, str | None], advice: str | None
) -> None:
    async with HeldSMSC(message_id_format=lambda _id: answered) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, smsc_extra=f'message_id_type = "{mode}"')
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(f"601700101@{DOMAIN}", "Which base"))).error is None
                await smsc.wait_until(lambda: len(smsc.held) == 1)
                smsc.answer()
                await gw.until(lambda: gw.states() == ["submitted"])
                smsc.send_raw(receipt(stat="DELIVRD", state=2, **receipted))  # type: ignore[arg-type]
                await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL") == 1)
    hints = [e["fix"] for e in logs if e["event"] == "dlr.id_form_mismatch"]
    assert hints == (
        [] if advice is None else [f'set message_id_type = "{advice}" in the [[smsc]] section of link main']
    )


async def test_no_id_form_hint_for_an_early_receipt_its_answer_then_matched(tmp_path: Path) -> None:
    # An SMS still waits under "64" (its receipt never came); the next one's receipt, "100", overtakes
    # its answer. "100" read as decimal is "64" in hex: the hint advised hex_to_dec for a receipt that
    # the answer matched a moment later.
    ids = iter(["64", "100"])
    answers: dict[str, str] = {}
    async with HeldSMSC(message_id_format=lambda i: answers.setdefault(i, next(ids))) as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                assert (await gw.send(mail(f"601700102@{DOMAIN}", "Its receipt never comes"))).error is None
                await smsc.wait_until(lambda: len(smsc.held) == 1)
                smsc.answer()
                await gw.until(lambda: gw.states() == ["submitted"])
                assert (await gw.send(mail(f"601700101@{DOMAIN}", "Overtaken"))).error is None
                await smsc.wait_until(lambda: len(smsc.held) == 1)
                smsc.send_raw(receipt("100", "DELIVRD"))
                await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs") == 1)
                smsc.answer()
                await gw.until(lambda: gw.states() == ["submitted", "delivered"])
    assert [e for e in logs if e["event"] == "dlr.id_form_mismatch"] == []


async def test_an_early_receipt_still_unmatched_after_the_answer_wait_gets_its_hint(tmp_path: Path) -> None:
    # The deferred hint speaks once a later unmatched receipt shows the first was no early one.
    clock = Clock()
    store = Store.open(tmp_path / "smsgw.db", clock=clock)
    try:
        await accept(store, acceptance(["+48601700101"]))
        await accept(store, acceptance(["+48601700102"]))
        first, second = store.queue.claim_due(10)
        store.queue.mark_submitted(first.id, "main", "1fa")  # answered in hex, receipts in decimal
        with structlog.testing.capture_logs() as logs:
            store.queue.record_report("main", "506", "delivered", None, "raw")  # `second` awaits its answer
            assert [e for e in logs if e["event"] == "dlr.id_form_mismatch"] == []
            store.queue.mark_submitted(second.id, "main", "1fb")  # not the receipt's
            clock.t += 61
            store.queue.record_report("main", "507", "delivered", None, "raw")
        [hint] = [e for e in logs if e["event"] == "dlr.id_form_mismatch"]
        assert hint["receipt_id"] == "506" and 'message_id_type = "hex_to_dec"' in hint["fix"]
        assert [row[0] for row in store.db.conn.execute("SELECT state FROM parts")] == ["submitted"] * 2
    finally:
        store.close()
