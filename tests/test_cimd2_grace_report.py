"""A submit the SMSC took but never answered, whose status report comes on the next session within
the late-answer grace: the report settles the part (no second copy on the phone). The daemon over
CIMD2 to a scripted SMSC, real SQLite."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import structlog

from gateway.config import Config, parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_late_answer import next_submit, to, warnings


def cimd2_config(tmp_path: Path, port: int, grace: float) -> Config:
    text = config_text(tmp_path, smsc_port=port).replace('type = "smpp"', 'type = "cimd2"')
    cfg = parse_config(text, source="test config", base_dir=tmp_path)
    timers = {"response_timeout_seconds": 0.5, "late_answer_grace_seconds": grace}
    return cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=timers)]})


async def test_a_report_within_the_grace_settles_the_unanswered_submit(tmp_path: Path) -> None:
    # The SMSC takes the submit and never answers it; the link times out and logs in again. Within
    # the grace the SMSC reports that SMS DELIVERED, stamped with the second the submit was written.
    # That report was stored unmatched and the SMS went again when the grace ran out.
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, 30)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Taken, never answered"))
                unanswered = await next_submit(first)
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
                again = await peer.accept()  # the link gave the silent connection up
                await again.login()
                await gw.until(lambda: bool(warnings(logs, "mt.unanswered")))
                phone = unanswered.get(P.DESTINATION)
                again.send(Packet.make(Op.STATUS_REPORT, 2, (P.DESTINATION, phone), (P.SCTS, stamp),
                                       (P.STATUS_CODE, 4), (P.DISCHARGE_TIME, stamp)))  # fmt: skip
                assert (await again.next()).op == Op.STATUS_REPORT_RESP
                await gw.until(lambda: gw.states() == ["delivered"])
                db = gw.store.db.conn
                [(smsc_id,)] = db.execute("SELECT smsc_id FROM parts")
                [(matched,)] = db.execute("SELECT part_id IS NOT NULL FROM dlrs")
                assert gw.daemon.dispatcher.possible_duplicates("main") == 0
    assert smsc_id == f"{stamp}:48601123456" and matched
    assert not warnings(logs, "mt.possible_duplicate")
    assert warnings(logs, "cimd2.unanswered_submit_reported")


async def test_a_report_read_before_the_write_of_the_sms_hours_earlier_settles_no_new_submit(
    tmp_path: Path,
) -> None:
    # Hourly alerts to one phone: right after a start the SMSC (in UTC) reports the SMS of an hour
    # ago, and no key of the last run is known. The first submit after it goes unanswered: the kept
    # report, an hour off, was taken as its answer (the SMSC's zone unknown, tried by whole hours),
    # the new SMS marked delivered under the old one's key and never sent again: lost. A report read
    # before the write is tried only as stamped; the SMS goes again after the grace.
    async with ScriptedSmsc() as peer:
        text = config_text(tmp_path, smsc_port=peer.port).replace('type = "smpp"', 'type = "cimd2"')
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        timers = {"response_timeout_seconds": 0.5, "late_answer_grace_seconds": 2}
        cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=timers)]})
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                first = await peer.accept()
                await first.login()
                db = gw.store.db.conn
                # The second the new alert will be written, an hour earlier: the last run's alert.
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime(time.time() + 1 - 3600))
                first.send(Packet.make(Op.STATUS_REPORT, 2, (P.DESTINATION, "48601123456"), (P.SCTS, stamp),
                                       (P.STATUS_CODE, 4), (P.DISCHARGE_TIME, stamp)))  # fmt: skip
                assert (await first.next()).op == Op.STATUS_REPORT_RESP
                await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 1)
                await gw.send(mail(to("601123456"), "Alert, hourly"))
                await next_submit(first)  # never answered
                again = await peer.accept()
                await again.login()
                # After the grace it goes again: not taken as the old SMS's (then it was never sent).
                resent = asyncio.create_task(next_submit(again))
                await gw.until(lambda: resent.done() or warnings(logs, "cimd2.unanswered_submit_reported"))
                if warnings(logs, "cimd2.unanswered_submit_reported"):
                    resent.cancel()
                    raise AssertionError(f"the new SMS taken as the old one's: {gw.states()}")
                now = time.strftime("%y%m%d%H%M%S", time.gmtime())
                again.send(Packet.make(Op.SUBMIT_RESP, (await resent).number, (P.DESTINATION, "48601123456"),
                                       (P.SCTS, now)))  # fmt: skip
                await gw.until(lambda: gw.states() == ["submitted"])
                [(smsc_id,)] = db.execute("SELECT smsc_id FROM parts")
    assert not smsc_id.startswith(stamp)
    assert not warnings(logs, "cimd2.unanswered_submit_reported")


@pytest.mark.parametrize("hours_off", [1, -1, -5])
async def test_a_report_hours_off_before_any_answer_settles_nothing_and_the_sms_goes_again(
    tmp_path: Path, hours_off: int
) -> None:
    # The first submit after a start goes unanswered and the SMSC reports an SMS to that phone
    # stamped whole hours off: its own SMS stamped in local time with no zone, or (the same to the
    # gateway) the phone's SMS of hours ago, reported late. Taken as this SMS's report it was marked
    # delivered under the old key and never sent: lost. It goes again after the grace: at worst a
    # possible duplicate.
    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, 2)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Alert, hourly"))
                unanswered = await next_submit(first)  # never answered
                stamp = time.strftime("%y%m%d%H%M%S", time.gmtime(time.time() + hours_off * 3600))
                phone = unanswered.get(P.DESTINATION)
                first.send(Packet.make(Op.STATUS_REPORT, 2, (P.DESTINATION, phone), (P.SCTS, stamp),
                                       (P.STATUS_CODE, 4), (P.DISCHARGE_TIME, stamp)))  # fmt: skip
                again = await peer.accept()
                await again.login()
                resent = asyncio.create_task(next_submit(again))
                await gw.until(lambda: resent.done() or warnings(logs, "cimd2.unanswered_submit_reported"))
                if warnings(logs, "cimd2.unanswered_submit_reported"):
                    resent.cancel()
                    raise AssertionError(f"the new SMS taken as reported {hours_off} h off: {gw.states()}")
                now = time.strftime("%y%m%d%H%M%S", time.gmtime())
                again.send(Packet.make(Op.SUBMIT_RESP, (await resent).number, (P.DESTINATION, "48601123456"),
                                       (P.SCTS, now)))  # fmt: skip
                await gw.until(lambda: gw.states() == ["submitted"])
                [(smsc_id, attempts)] = gw.store.db.conn.execute("SELECT smsc_id, attempts FROM parts")
    assert smsc_id == f"{now}:48601123456" and attempts == 2
    assert warnings(logs, "mt.possible_duplicate")


async def test_a_report_in_the_zone_an_answer_taught_settles_the_unanswered_submit(tmp_path: Path) -> None:
    # An SMSC stamping local time an hour ahead, with no zone: once one of its answers taught the link
    # that offset, the report of an unanswered submit stamped in it settles it.
    def ahead() -> str:
        return time.strftime("%y%m%d%H%M%S", time.gmtime(time.time() + 3600))

    async with ScriptedSmsc() as peer:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cimd2_config(tmp_path, peer.port, 30)) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Answered"))
                answered = await next_submit(first)
                first.send(Packet.make(Op.SUBMIT_RESP, answered.number, (P.DESTINATION, "48601123456"),
                                       (P.SCTS, ahead())))  # fmt: skip
                await gw.until(lambda: gw.states() == ["submitted"])
                await gw.send(mail(to("601123456"), "Taken, never answered"))
                unanswered = await next_submit(first)
                stamp = ahead()
                again = await peer.accept()
                await again.login()
                await gw.until(lambda: bool(warnings(logs, "mt.unanswered")))
                phone = unanswered.get(P.DESTINATION)
                again.send(Packet.make(Op.STATUS_REPORT, 2, (P.DESTINATION, phone), (P.SCTS, stamp),
                                       (P.STATUS_CODE, 4), (P.DISCHARGE_TIME, stamp)))  # fmt: skip
                assert (await again.next()).op == Op.STATUS_REPORT_RESP
                await gw.until(lambda: gw.states()[1:] == ["delivered"])
                [(smsc_id, attempts)] = gw.store.db.conn.execute(
                    "SELECT smsc_id, attempts FROM parts WHERE id = 2"
                )
    assert smsc_id == f"{stamp}:48601123456" and attempts == 1
    assert not warnings(logs, "mt.possible_duplicate")
