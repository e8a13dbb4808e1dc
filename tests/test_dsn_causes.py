"""What a bounce says of why an SMS failed, and what it gives back of the client's DSN request.

1. An SMS the operator refused for the time being at every attempt (ESME_RSYSERR) until its validity
   ended bounced as "validity period expired before it could be sent … send it again", 5.4.7 and no
   diagnostic, the refusal overwritten in the part's error: neither the user nor the admin learnt the
   operator was at fault (R-6.3). The part keeps the refusal now, the bounce names it as the SMSC's
   diagnostic and in words, and tells to take it up with the admin rather than to resend.
2. `ORCPT=utf-8;józef@…` in raw UTF-8 (RFC 6533 utf-8-addr-unitext, as go-smtp and maddy send it to a
   server offering SMTPUTF8) was refused 501: taken now, and given back in RFC 6533's 7-bit form.
3. The operator's report EXPIRED bounced 5.0.0 with "try again later"; it is X.4.7 as the gateway's own
   expiry, with advice for a phone that stayed out of reach.
4. An ENVID with runs of spaces, and a long ORCPT, came back folded so that unfolding lost spaces.
5. The text a person reads was base64 (spam scorers count that): 7bit or quoted-printable now.

Real peers: the daemon in this process with an injected clock, mail by a real SMTP client, the SMPP
fake (the simulator's core) over TCP, a real SMTP server taking the bounces, the email package reading them.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import time
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping
from gateway.bouncewords import NO_LINK_ADVICE, OPERATOR_REFUSED_ADVICE, UNREACHABLE_ADVICE
from gateway.store.partnotes import NO_LINK_EXPIRED, REFUSED_EXPIRED
from smsc.base import ReportStatus
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.smpp_texts import address_fields, receipt_text
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC, _FakeSession
from tests.test_mail_expiry import Clock

ESME_RSYSERR = 0x08
ESME_RTHROTTLED = 0x58
REFUSING = f"601123477@{DOMAIN}"
EXPIRING = f"601123455@{DOMAIN}"
FAILS = f"601123413@{DOMAIN}"


class RefusingSMSC(FakeSMSC):
    """Answers every submit ESME_RSYSERR (0x08), a system error the gateway retries."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.answer_submit(seq, None, status=ESME_RSYSERR)


class ThrottlingSMSC(FakeSMSC):
    """Answers every submit ESME_RTHROTTLED (0x58): the operator's sending limit, for hours."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.answer_submit(seq, None, status=ESME_RTHROTTLED)


class _ExpiredSession(_FakeSession):
    """Reports a failed SMS as the operator does one whose validity ran out at the phone: stat EXPIRED,
    message_state 3 (SMPP 3.4 5.2.28)."""

    async def send_report(
        self,
        message_id: str,
        source: str,
        destination: str,
        status: ReportStatus,
        submitted_at: datetime,
        **extra: Any,
    ) -> None:
        if status is not ReportStatus.FAILED:
            await super().send_report(message_id, source, destination, status, submitted_at, **extra)
            return
        wire_id = self.server.format_receipt_id(message_id)
        text = receipt_text(wire_id, status, submitted_at, submitted_at).replace("UNDELIV", "EXPIRED")
        text = text.replace("err:001", "err:000")
        fields = dict(address_fields(destination, source), esm_class=0x04, data_coding=0,
                      short_message=text.encode("ascii"), receipted_message_id=wire_id,
                      message_state=3)  # fmt: skip
        self._deliveries.send("report", fields, ("report", message_id, status))


def dsn_mails(sink: Any) -> list[tuple[bytes, EmailMessage]]:
    """Each bounce as it came on the wire and as the email package reads it."""
    out = []
    for _from, _rcpts, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg.get_content_type() == "multipart/report":
            out.append((raw, msg))
    return out


def fields_of(report: EmailMessage) -> tuple[Message, Message]:
    (status,) = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    per_message, per_recipient = status.get_payload()
    return per_message, per_recipient


def text_part(report: EmailMessage) -> tuple[str, str]:
    """The part a person reads: its transfer encoding and its text, lines as Python writes them."""
    part = report.get_payload()[0]
    assert isinstance(part, EmailMessage)
    return str(part["Content-Transfer-Encoding"]), str(part.get_content()).replace("\r\n", "\n")


async def refused_until_expired(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smsc_class: type[FakeSMSC] | None = RefusingSMSC,
    **gateway: Any,
) -> tuple[EmailMessage, str | None]:
    """One SMS the SMSC refuses for the time being at each attempt (no SMSC listening at all with
    `smsc_class` None), then its validity ends; its bounce and its part's error."""
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    sink_port, clock = free_port(), Clock()
    async with contextlib.AsyncExitStack() as stack:
        smsc = await stack.enter_async_context(smsc_class()) if smsc_class else None
        sink = await stack.enter_async_context(smtp_sink(sink_port))
        port = smsc.port if smsc else free_port()  # nobody listens there
        cfg = make_config(tmp_path, smsc_port=port, relay_port=sink_port, **gateway)
        async with running_gateway(cfg, clock) as gw:
            assert (await gw.send(mail(REFUSING, "Pickup at 14:00", subject="Pickup"))).error is None
            if smsc:
                await smsc.wait_for(2, timeout=30)  # refused, retried, refused again
            expires = gw.store.db.conn.execute("SELECT expires_at FROM parts").fetchone()[0]
            clock.skew = expires - time.time() + 1
            await gw.until(lambda: gw.states() == ["expired"])
            await sink.wait(1, timeout=30)
            error = gw.store.db.conn.execute("SELECT error FROM parts").fetchone()[0]
    [(_raw, report)] = dsn_mails(sink)
    return report, error


async def test_an_sms_the_operator_kept_refusing_until_it_expired_bounces_with_that_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, error = await refused_until_expired(tmp_path, monkeypatch)
    assert error == f"{REFUSED_EXPIRED}ESME_RSYSERR (0x08)"  # `smsgw queue` and the panel read it
    _per_message, fields = fields_of(report)
    assert fields["Action"] == "failed" and fields["Status"] == "5.4.7"
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; ESME_RSYSERR (0x08)"
    encoding, text = text_part(report)
    assert encoding == "quoted-printable"  # ASCII, in lines over 78 (RFC 5322 2.1.1)
    assert "its last answer: the operator's system failed (ESME_RSYSERR, 0x08)\n" in text, text
    assert OPERATOR_REFUSED_ADVICE("en") in text
    assert "before it could be sent" not in text and "send it again if it is still needed." not in text


async def test_an_sms_throttled_until_it_expired_bounces_with_the_throttle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The throttled part went back to the queue without a word of why: its bounce said "expired before
    # it could be sent ... send it again", into the same sending limit.
    report, error = await refused_until_expired(tmp_path, monkeypatch, ThrottlingSMSC)
    assert error == f"{REFUSED_EXPIRED}ESME_RTHROTTLED (0x58)"
    _per_message, fields = fields_of(report)
    assert fields["Status"] == "5.4.7"
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; ESME_RTHROTTLED (0x58)"
    _encoding, text = text_part(report)
    assert OPERATOR_REFUSED_ADVICE("en") in text
    assert "before it could be sent" not in text


async def test_an_sms_that_expired_with_no_link_up_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The only link was down for the whole validity: the bounce said "expired before it could be sent
    # ... send it again", into the same outage, and nothing told the admin's outage from a slow queue.
    report, error = await refused_until_expired(tmp_path, monkeypatch, None)
    assert error == NO_LINK_EXPIRED
    _per_message, fields = fields_of(report)
    assert fields["Status"] == "5.4.7" and "Diagnostic-Code" not in fields
    _encoding, text = text_part(report)
    assert NO_LINK_EXPIRED in text and NO_LINK_ADVICE("en") in text
    assert "before it could be sent" not in text


async def test_a_polish_bounce_of_that_sms_says_it_in_polish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, _error = await refused_until_expired(tmp_path, monkeypatch, language="pl")
    encoding, text = text_part(report)
    assert encoding == "quoted-printable"
    assert "ostatnia odpowiedź: wystąpił błąd systemu operatora (ESME_RSYSERR, 0x08)\n" in text, text
    assert OPERATOR_REFUSED_ADVICE("pl") in text
    assert "validity" not in text and "What to do" not in text


async def test_the_operators_expired_report_bounces_as_delivery_time_expired(tmp_path: Path) -> None:
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["55"]) as smsc, smtp_sink(sink_port) as sink:
        smsc.server.session_class = _ExpiredSession
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(EXPIRING, "Your parcel waits"))).error is None
            await gw.until(lambda: gw.states() == ["failed"])
            await sink.wait(1, timeout=30)
    [(_raw, report)] = dsn_mails(sink)
    _per_message, fields = fields_of(report)
    # RFC 3463 X.4.7 "delivery time expired", as the gateway's own expiry; the operator's words stay.
    assert fields["Status"] == "5.4.7"
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; EXPIRED err:000"
    _encoding, text = text_part(report)
    assert UNREACHABLE_ADVICE("en") in text
    assert "try again later" not in text


def dsn_transaction(port: int, mail_options: list[str], rcpt: str, tries: list[list[str]]) -> list[int]:
    """One mail as a relaying MTA sends it (go-smtp: raw UTF-8 in ORCPT once SMTPUTF8 is offered), its
    RCPT tried with each of `tries`' parameters in turn; the replies' codes. The mail goes when the
    last try was taken."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        assert client.has_extn("smtputf8") and client.has_extn("dsn")
        client.command_encoding = "utf-8"
        assert client.mail(STAFF, mail_options)[0] == 250
        codes = [client.rcpt(rcpt, options)[0] for options in tries]
        if codes[-1] == 250:
            assert client.data(mail(rcpt, "Gate code 4711", subject="Gate").as_bytes())[0] == 250
        return codes


async def bounce_for(
    tmp_path: Path, mail_options: list[str], tries: list[list[str]], codes: list[int]
) -> tuple[bytes, Message, Message]:
    """The bounce of a mail whose RCPT was tried with `tries` (answered `codes`): as it came on the
    wire, its per-message and its per-recipient fields."""
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            said = await asyncio.to_thread(dsn_transaction, gw.port, mail_options, FAILS, tries)
            assert said == codes
            await sink.wait(1, timeout=30)
    [(raw, report)] = dsn_mails(sink)
    per_message, per_recipient = fields_of(report)
    return raw, per_message, per_recipient


async def test_a_raw_utf8_orcpt_is_taken_and_given_back_as_rfc_6533_says(tmp_path: Path) -> None:
    tries = [
        # A line break, encoded: no header may hold it.
        ["ORCPT=utf-8;j\u00f3zef\\x{0D}\\x{0A}Bcc:@acme.example"],
        ["ORCPT=utf-8;j\u0085zef@acme.example"],  # a C1 control, raw
        ["ORCPT=utf-8;j\u00f3+zef@acme.example"],  # "+" is \x{2B} in either form
        ["NOTIFY=FAILURE", "ORCPT=utf-8;j\u00f3zef@acme.example"],
    ]
    raw, _per_message, fields = await bounce_for(tmp_path, [], tries, [501, 501, 501, 250])
    # RFC 6533 3: in a message/delivery-status (7-bit), the utf-8-addr-xtext form.
    assert str(fields["Original-Recipient"]) == "utf-8; j\\x{F3}zef@acme.example"
    assert b"\r\nOriginal-Recipient: utf-8; j\\x{F3}zef@acme.example\r\n" in raw


async def test_envid_and_orcpt_come_back_exactly_as_given(tmp_path: Path) -> None:
    envid = "batch+207" + "+20" * 3 + "run" + "+20+20" + "X" * 60 + "+2Bend"  # "batch 7   run  XX…X+end"
    address = '"' + "a+20+20b" + "c" * 70 + '"@acme.example'
    raw, per_message, fields = await bounce_for(
        tmp_path, [f"ENVID={envid}"], [[f"ORCPT=rfc822;{address}"]], [250]
    )
    said = "batch 7   run  " + "X" * 60 + "+end"
    assert str(per_message["Original-Envelope-Id"]) == said
    assert f"\r\nOriginal-Envelope-Id: {said}\r\n".encode() in raw  # one line: no fold to undo
    given = '"a  b' + "c" * 70 + '"@acme.example'
    assert str(fields["Original-Recipient"]) == f"rfc822; {given}"
    assert f"\r\nOriginal-Recipient: rfc822; {given}\r\n".encode() in raw
