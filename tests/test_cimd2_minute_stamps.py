"""A CIMD2 report finds its SMS by the SMSC's 060 stamp, which must name one second (protocols.md 1.9).

- An SMSC that writes its 060 without seconds (yymmddhhmm) gave two SMS to one phone within a minute
  one key: each took the other's report, and the sender of a delivered SMS was sent a bounce. Such an
  SMS now gets no key, as one answered without a 060: no report can reach it (it ends `unreported`),
  and the link says once that its SMSC's stamps cannot match reports.
- A 060 written with its century ("20261207032102") in the report and without it in the submit answer
  (or the other way round) matched nothing: the SMS stayed `submitted`. Both keys are the 060's 12
  digits.

Against the real daemon (SMTP in, the relay a real aiosmtpd sink) and a scripted SMSC over TCP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog

from tests.conftest import DOMAIN, Running, mail
from tests.test_cimd2_report_keys import Submit, bounce_text, gateway_and_smsc

MINUTE = "2612070321"  # yymmddhhmm: the SMSC's clock without its seconds


def unmatched_reports(gw: Running) -> int:
    return int(gw.store.db.conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0])


def keys(gw: Running) -> list[str | None]:
    rows = gw.store.db.conn.execute("SELECT smsc_id FROM parts ORDER BY id")
    return [r[0] for r in rows]


async def test_sms_answered_with_a_060_without_seconds_never_take_each_others_reports(tmp_path: Path) -> None:
    # Two mails to one phone within one minute; the SMSC reports the second failed, then the first
    # delivered, each by the stamp it answered with. Both stamps are the same minute.
    with structlog.testing.capture_logs() as logs:
        async with gateway_and_smsc(tmp_path) as (gw, smsc, sink):
            original = smsc.answer

            def by_the_minute(submit: Submit) -> None:
                submit.stamp = MINUTE
                original(submit)

            smsc.answer = by_the_minute  # type: ignore[method-assign]
            await gw.send(mail(f"601557011@{DOMAIN}", "First"))
            await gw.send(mail(f"601557011@{DOMAIN}", "Second"))
            first, second = await smsc.until_submits(2)
            await gw.until(lambda: gw.states() == ["submitted"] * 2)
            await smsc.report(second, "601557011", 3, 29)  # each returns once the report is committed
            await smsc.report(first, "601557011", 4)
            await asyncio.sleep(0.5)  # a bounce, were one made, would be on its way
            assert gw.states() == ["submitted", "submitted"]  # to end `unreported`, never bounced
            assert sink.messages == []
            assert keys(gw) == [None, None] and unmatched_reports(gw) == 2  # kept: they name no SMS
    said = [e for e in logs if e["event"] == "cimd2.submit_060_not_a_time"]
    assert len(said) == 1 and said[0]["log_level"] == "warning", said  # once for the link, not per SMS
    assert said[0]["effect"] == "no SMS on this link can be matched to its delivery report"


@pytest.mark.parametrize(("answered", "reported"), [("", "20"), ("20", "")], ids=["report_14", "answer_14"])
async def test_a_060_with_its_century_on_one_side_still_matches(
    tmp_path: Path, answered: str, reported: str
) -> None:
    async with gateway_and_smsc(tmp_path) as (gw, smsc, sink):
        original = smsc.answer

        def with_century(submit: Submit) -> None:
            stamp = submit.stamp
            submit.stamp = answered + stamp
            original(submit)
            submit.stamp = reported + stamp  # the report's 060

        smsc.answer = with_century  # type: ignore[method-assign]
        await gw.send(mail(f"601557012@{DOMAIN}", "Century"))
        (submit,) = await smsc.until_submits(1)
        await gw.until(lambda: gw.states() == ["submitted"] and keys(gw)[0] is not None)
        assert keys(gw)[0] == f"{submit.stamp[-12:]}:48601557012"
        await smsc.report(submit, "601557012", 3, 1)
        await gw.until(lambda: gw.states() == ["failed"], timeout=10)
        await sink.wait(1)
        assert "Century" in bounce_text(sink)


def test_a_submit_answer_and_a_report_make_one_key_from_any_form_of_the_stamp() -> None:
    from smsc.base import OutboundSms, Outcome
    from smsc.cimd2.messages import Once, parse_report, submit_result
    from smsc.cimd2.packet import Op, P, Packet

    sms = OutboundSms(1, "7155", "+48601557013", 0, b"", "x")
    said: list[str] = []
    once = Once(lambda event, **_fields: said.append(event))
    for stamp in ("261207032102", " 20261207032102 ", "261207032102+04"):
        answer = Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601557013"), (P.SCTS, stamp))
        assert submit_result(sms, answer, link="c2", unstamped=once).message_id == "261207032102:48601557013"
        report = Packet.make(
            Op.STATUS_REPORT, 2, (P.DESTINATION, "48601557013"), (P.SCTS, stamp), (P.STATUS_CODE, 4)
        )
        item = parse_report(report, link="c2")
        assert not isinstance(item, str) and item.message_id == "261207032102:48601557013"
    for stamp in (MINUTE, MINUTE + "+04", "261207032102+4", "26120703210x"):
        answer = Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601557013"), (P.SCTS, stamp))
        result = submit_result(sms, answer, link="c2", unstamped=once)
        assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, None), stamp
        assert result.error == "SMSC gave a 060 that is no full time: no delivery report match"
    assert said == ["cimd2.submit_060_not_a_time"]


def test_a_repeated_key_is_looked_up_by_its_stamp_and_number_and_forgotten_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report names a repeated key by its stamp and the end of its number (national or E.164), no
    other stamp's nor number's; a key pushed out of those kept names none any more."""
    from smsc.base import DeliveryReport, Outcome, ReportStatus, SubmitResult
    from smsc.cimd2 import stampkeys

    monkeypatch.setattr(stampkeys, "KEPT", 3)
    keys = stampkeys.StampKeys("op")

    def repeat(key: str) -> None:
        for _ in range(2):
            keys.answered(SubmitResult(Outcome.ACCEPTED, key))

    def unmatched(message_id: str) -> bool:
        report = DeliveryReport(message_id, ReportStatus.DELIVERED)
        return keys.report(report).message_id != message_id

    repeat("261203120500:48601234567")
    assert unmatched("261203120500:48601234567") and unmatched("261203120500:0601234567")
    assert not unmatched("261203120600:48601234567")  # another minute
    assert not unmatched("261203120500:48601234568")  # another phone
    for n in range(3):
        repeat(f"261203130{n}00:4860765432{n}")
    assert not unmatched("261203120500:48601234567")  # pushed out by three later ones
    assert unmatched("261203130000:0607654320")
