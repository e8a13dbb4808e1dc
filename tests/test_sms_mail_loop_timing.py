"""The loop guard's phone-side speed, from when the phone had the SMS.

Measured from the SMS's submit with a minute's threshold, a phone's auto-reply app looping with a
program's alike mails got through when the SMSC held each SMS a minute and a half and its receipt came
after the answer, or never: eight alerts, eight SMS. And an on-call person answering each alert "ack"
half a minute after it arrived had the fifth to eighth refused 550 and was told to stop an auto-reply
the phone does not have. The delay now counts from the receipt's arrival when it came before the
answer; without one it is unknown and counted fast; fast is 15 seconds.

Counted fast without a receipt also where none was asked (a CIMD2 link with `status_reports =
false`: none ever comes), a person answering "ack" two minutes after each alert had the fifth to
eighth refused, and the 550 said the answers came "within 15 seconds of the SMS", which nobody knew.
There the answer is timed by the submit now, and a refusal whose answers no receipt timed says so.

The real daemon, the simulator over SMPP (CIMD2 for a link asking no receipts) answering as the phone
(and sending the receipts, or holding them), a real SMTP sink as the relay, the daemon's clock injected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_sms_mail_loop import REFUSED, T0
from tests.test_sms_mail_loop_people import alert
from tests.test_two_way import two_way_config

NO_AUTO_REPLY = "stop the phone's auto-reply"
TIMED = "sent within 15 seconds of the SMS, as an auto-reply app does"
UNTIMED = "sent before the SMS's receipt came to time it, so taken for an auto-reply app's"
OURS = "+48100200300"  # the number the alerts go from (`two_way_config`)


async def alerts(tmp_path: Path, receipt: str, answer_after: float) -> list[str | None]:
    """Eight alerts to one phone, four minutes apart, each answered "ack" `answer_after` seconds after
    the phone had it (its submit, for receipts that come late or never). `receipt`: "first" (the
    SMSC's receipt comes before the answer), "after" (it comes two seconds after the answer mail),
    "never", or "unasked" (a CIMD2 link with `status_reports = false`: no receipt asked, none sent).
    The SMTP error of each alert, None where it went."""
    relay = free_port()
    now = [T0]
    config = two_way_config(tmp_path, "cimd2" if receipt == "unasked" else "smpp", relay_port=relay)
    if receipt == "unasked":
        link = config.smsc[0].model_copy(update={"status_reports": False})
        config = config.model_copy(update={"smsc": [link]})
    async with smtp_sink(relay) as sink, running_gateway(config, lambda: now[0]) as gw:
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        if receipt != "first":  # the SMSC holds the SMS (a queue, a phone just back in coverage)
            core.cfg = core.cfg.model_copy(update={"dlr_delay_seconds": 10**7})
        conn = gw.store.db.conn

        def receipts() -> int:
            return int(conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'delivered'").fetchone()[0])

        def submitted() -> int:  # its submit answered, at the clock's time before the phone answers
            return int(
                conn.execute("SELECT COUNT(*) FROM parts WHERE submitted_at IS NOT NULL").fetchone()[0]
            )

        errors: list[str | None] = []
        for i in range(8):
            sent, had = len(core.records), receipts()
            result = await gw.send(mail(f"601123456@{DOMAIN}", **alert(i, False)))
            errors.append(None if result.error is None else str(result.error))
            if result.error is not None:
                continue
            await gw.until(lambda sent=sent: len(core.records) == sent + 1)
            await gw.until(lambda: submitted() == errors.count(None))
            if receipt == "first":
                await gw.until(lambda had=had: receipts() == had + 1)
            now[0] += answer_after
            command = {"op": "mo", "source": "+48601123456", "destination": OURS, "text": "ack"}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(errors.count(None))
            if receipt == "after":
                now[0] += 2
                report = {"op": "report", "last": True, "status": "delivered"}
                assert (await send_command("127.0.0.1", control, report))["ok"]
                await gw.until(lambda had=had: receipts() == had + 1)
            now[0] += 240
    return errors


@pytest.mark.parametrize("receipt", ["never", "after"])
async def test_an_auto_reply_to_sms_the_smsc_held_is_still_a_loop(tmp_path: Path, receipt: str) -> None:
    errors = await alerts(tmp_path, receipt, answer_after=90.0)
    assert errors[:4] == [None] * 4, errors
    assert all(e is not None and REFUSED in e and NO_AUTO_REPLY in e for e in errors[4:]), errors
    # No receipt timed the answers: the 550 does not say they came within 15 seconds.
    assert all(UNTIMED in str(e) and "within 15 seconds" not in str(e) for e in errors[4:]), errors


async def test_a_person_acking_two_minutes_later_where_no_receipt_is_asked_is_no_loop(tmp_path: Path) -> None:
    errors = await alerts(tmp_path, "unasked", answer_after=120.0)
    assert errors == [None] * 8, errors


async def test_an_auto_reply_seconds_after_the_submit_where_no_receipt_is_asked_is_a_loop(
    tmp_path: Path,
) -> None:
    errors = await alerts(tmp_path, "unasked", answer_after=5.0)
    assert errors[:4] == [None] * 4, errors
    assert all(e is not None and REFUSED in e and TIMED in e for e in errors[4:]), errors


async def test_a_person_acking_each_alert_half_a_minute_after_it_came_is_no_loop(tmp_path: Path) -> None:
    errors = await alerts(tmp_path, "first", answer_after=30.0)
    assert errors == [None] * 8, errors


async def test_an_auto_reply_seconds_after_the_receipt_is_a_loop(tmp_path: Path) -> None:
    errors = await alerts(tmp_path, "first", answer_after=8.0)
    assert errors[:4] == [None] * 4 and all(e is not None and REFUSED in e for e in errors[4:]), errors
    assert all(TIMED in str(e) for e in errors[4:]), errors
