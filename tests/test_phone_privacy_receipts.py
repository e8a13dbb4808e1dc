"""`smsgw phone show|forget` and delivery receipts never matched to an SMS: found by the phone's number
however they name it and erased, while one naming another phone (its SMSC id given again) is neither
counted nor erased. Real peers make the rows, as in test_phone_privacy.py; split from it by subject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import DOMAIN, free_port, mail, running_gateway
from tests.test_phone_privacy import ACME_SENDER, ERASED, OTHER, cli, file_bytes, written_two_way
from tests.test_two_way import PHONE

RECEIPT_WORD = "Kwitowo"  # in the SMSC's quote of the phone's SMS, in a receipt never matched to it


OTHER_RECEIPT_WORD = "Cudzowo"  # in another phone's receipt never matched either: not the phone's


async def test_receipts_never_matched_to_an_sms_are_found_by_the_phone_and_erased(tmp_path: Path) -> None:
    """Receipts stored before they were stripped of the SMSC's quote of the text, and never matched
    to a part: an SMPP receipt of the phone's SMS saying otherwise after the SMS was settled (found
    by the SMSC id its part was given), and a CIMD2 report whose key ends in the phone's number. A
    report about another phone stays as it came. (A repeat of the receipt that settled it is kept
    with its part.)"""
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        assert (await gw.send(mail(f"601123456@{DOMAIN}", f"Termin {RECEIPT_WORD}"))).error is None
        await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
        link, smsc_id = conn.execute("SELECT link, smsc_id FROM parts").fetchone()
        quote = f"id:{smsc_id} sub:001 dlvrd:000 submit date:2612031200 done date:2612031201 stat:UNDELIV"
        receipts = [
            (link, smsc_id, f"{quote} err:000 text:Termin {RECEIPT_WORD}", PHONE),
            (link, f"2612031200:{PHONE[1:]}", f"021:{PHONE[1:]} 060:2612031200 033:{RECEIPT_WORD}", PHONE),
            (
                link,
                f"2612031200:{OTHER[1:]}",
                f"021:{OTHER[1:]} 060:2612031200 033:{OTHER_RECEIPT_WORD}",
                OTHER,
            ),
        ]
        for link_, id_, raw, phone in receipts:
            status = "failed" if "UNDELIV" in raw else "delivered"
            await gw.store.write(
                lambda link_=link_, id_=id_, raw=raw, phone=phone, status=status: queue.record_report(
                    link_, id_, status, None, raw, phone
                )
            )
        unmatched = conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        raws = [r[0] for r in conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL ORDER BY id")]
    assert unmatched == 3
    assert shown.returncode == 0, shown.stderr
    assert "delivery reports never matched to an SMS: 2" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: 2 delivery reports never matched to an SMS (as the SMSC wrote them)" in (
        forgot.stdout.splitlines()
    ), forgot.stdout
    assert raws[:2] == [ERASED, ERASED] and OTHER_RECEIPT_WORD in raws[2]
    raw = file_bytes(cfg.db_path)
    assert RECEIPT_WORD.encode() not in raw and OTHER_RECEIPT_WORD.encode() in raw


async def one_sms_delivered(gw: Any) -> tuple[str, str]:
    """A mail to the phone, its SMS delivered: the link and SMSC id of its one part."""
    conn = gw.store.db.conn
    assert (await gw.send(mail(f"601123456@{DOMAIN}", "Termin"))).error is None
    await gw.until(lambda: conn.execute("SELECT state FROM messages").fetchone() == ("delivered",))
    link, smsc_id = conn.execute("SELECT link, smsc_id FROM parts").fetchone()
    return link, smsc_id


async def test_a_receipt_never_matched_that_named_another_phone_is_not_the_phones(tmp_path: Path) -> None:
    """The SMSC gave the id of the phone's SMS again to a later SMS to another phone, whose receipt
    came unmatched naming that phone: not the phone's, neither counted nor erased."""
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        link, smsc_id = await one_sms_delivered(gw)
        raw = f"id:{smsc_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:{OTHER_RECEIPT_WORD}"
        await gw.store.write(lambda: queue.record_report(link, smsc_id, "delivered", None, raw, OTHER))
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        raws = [r[0] for r in conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL")]
    assert "delivery reports never matched to an SMS: 0" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert raws == [raw]


async def test_the_phones_own_unmatched_receipts_are_erased_however_they_name_it(tmp_path: Path) -> None:
    # Receipts of the phone's own SMS that came after it ended, saying otherwise (unmatched: a repeat
    # of the one that settled it is kept with its part), name the phone as the
    # receipt matcher reads it: our number (source and destination swapped), or the national number
    # labelled international. Compared as written, they kept the SMSC's quote of the text.
    path, cfg = written_two_way(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        conn, queue = gw.store.db.conn, gw.store.queue
        link, smsc_id = await one_sms_delivered(gw)
        for i, named in enumerate((ACME_SENDER, "+601123456", PHONE, None)):
            raw = f"id:{smsc_id} sub:001 dlvrd:000 stat:UNDELIV err:000 text:{RECEIPT_WORD}{i}"
            await gw.store.write(
                lambda raw=raw, named=named: queue.record_report(link, smsc_id, "failed", None, raw, named)
            )
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        assert forgot.returncode == 0, forgot.stderr
        left = conn.execute("SELECT raw FROM dlrs WHERE part_id IS NULL").fetchall()
    assert len(left) == 4 and not any(RECEIPT_WORD in (raw or "") for (raw,) in left), left
