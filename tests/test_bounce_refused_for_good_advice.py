"""The advice of a bounce for an SMS the operator refused for good for anything but its number.

An SMS refused at submit for its sender (ESME_RINVSRCADR), its length, its form (ESME_RINVCMDID) or by
the operator's rules (ESME_RX_P_APPN) bounced with "the phone may be off or unable to take SMS; try
again later", while `smsgw queue retry` of the same SMS said "the SMSC refused it for good … it would
be refused again". The bounce now says that sending it again as it is will not help, and to tell the
gateway's administrator; a number refused keeps "check the number", a refusal for the time being the
advice it had.

Real peers: the daemon in this process, mail by a real SMTP client, an SMPP fake on the simulator's
server over TCP answering submit_sm_resp with a refusal, a real SMTP server taking the bounces.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from gateway.bounce import _advice, _status
from gateway.bouncewords import REFUSED_FOR_GOOD_ADVICE
from gateway.wording import BOUNCE_ADVICE
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_dsn_causes import dsn_mails, fields_of, text_part

# Number suffix → the status of its submit_sm_resp.
REFUSALS = {"3510": 0x0A, "3503": 0x03, "3565": 0x65, "3511": 0x0B}


class RefusingSMSC(FakeSMSC):
    """Refuses a submit to a number in `REFUSALS` with its status in the submit_sm_resp."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.answer_submit(seq, None, status=REFUSALS[sms.destination[-4:]])


def advice_of(reason: str, state: str = "failed") -> str:
    return _advice(state, reason, _status(state, reason))("en")


def test_the_advice_follows_whether_a_retry_can_help() -> None:
    for_good = REFUSED_FOR_GOOD_ADVICE("en")
    assert advice_of("ESME_RINVSRCADR (0x0A)") == for_good
    assert advice_of("part 1 of 2: generic_nack ESME_RINVMSGLEN (0x01) (part 2 not sent)") == for_good
    assert advice_of("CIMD2 900:306 incorrect originator address") == for_good
    assert advice_of("ESME_RINVDSTADR (0x0B)") == BOUNCE_ADVICE["number"]("en")
    assert advice_of("CIMD2 900:300 incorrect destination address") == BOUNCE_ADVICE["number"]("en")
    assert advice_of("UNDELIV err:001") == BOUNCE_ADVICE["failed"]("en")  # the phone, maybe for now
    assert advice_of("ESME_RSUBMITFAIL (0x45)") == for_good
    assert advice_of("ESME_RSYSERR (0x08)") == BOUNCE_ADVICE["failed"]("en")  # for the time being
    assert _advice("failed", "ESME_RINVSRCADR (0x0A)", "5.0.0")("pl") == REFUSED_FOR_GOOD_ADVICE("pl")


def bounce_to(reports: list[EmailMessage], number: str) -> str:
    for report in reports:
        if number in str(fields_of(report)[1]["Final-Recipient"]):
            return text_part(report)[1]
    raise AssertionError(f"no bounce for {number}")


async def test_an_sms_refused_for_good_bounces_without_try_again_later(tmp_path: Path) -> None:
    sink_port = free_port()
    numbers = [f"60112{suffix}" for suffix in REFUSALS]
    async with RefusingSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            for number in numbers:
                assert (await gw.send(mail(f"{number}@{DOMAIN}", "Gate code 4711"))).error is None
            await gw.until(lambda: gw.states() == ["failed"] * len(numbers))
            await sink.wait(len(numbers), timeout=30)
    reports = [report for _raw, report in dsn_mails(sink)]
    sender, form, rules, number = (bounce_to(reports, n) for n in numbers)
    said = REFUSED_FOR_GOOD_ADVICE("en")
    assert "the operator refused the sender number or name (ESME_RINVSRCADR, 0x0A)" in sender
    for text in (sender, form, rules):
        assert said in text and "try again later" not in text, text
    assert BOUNCE_ADVICE["number"]("en") in number and said not in number
