"""Mail whose subject, text or Message-ID would break a notice header is accepted, and its notices go
out well formed (issue 9, item 1): before, each of these was refused with `451` on every retry, or
its delivery report was refused so that the SMSC sent it again forever.

Real SMTP into the running daemon, a fake SMPP SMSC, and a real SMTP sink for what it mails out.
"""

from __future__ import annotations

import email
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import DOMAIN, STAFF, Sink, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

NUMBER = "601123456"
# No Subject, so the notices quote the text's first 40 characters, which hold a line break.
BROKEN_START = "Hi Jan,\nthe report is attached below:\r\nline three"
FOLDED_ID = "abc.20240101\r\n\tdef@mail.acme.example"  # folded over two lines, no <>


def raw_mail(body: str, *, message_id: str | None = None, extra: str = "") -> bytes:
    head = f"From: {STAFF}\r\nTo: {NUMBER}@{DOMAIN}\r\n{extra}"
    if message_id is not None:
        head += f"Message-ID: {message_id}\r\n"
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode()


def outbound(sink: Sink) -> list[EmailMessage]:
    """What the gateway mailed out, each checked to parse back without header defects or breaks."""
    mails = []
    for _, _, raw in sink.messages:
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert not msg.defects
        for name, value in msg.items():
            assert not value.defects, (name, value)
            assert "\n" not in str(value) and "\r" not in str(value), (name, value)
        mails.append(msg)
    return mails


async def test_long_mail_without_subject_gets_250_and_a_clean_truncation_notice(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            body = BROKEN_START + " " + " ".join(f"w{i:04d}" for i in range(400))  # > 10 parts
            res = await gw.send(raw_mail(body), [f"{NUMBER}@{DOMAIN}"])
            assert res.error is None, res.error
            await smsc.wait_for(10)
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert str(notice["Subject"]).startswith("SMS text was shortened: Hi Jan, the report")


async def test_confirmation_of_mail_without_subject_gets_250(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            res = await gw.send(raw_mail(BROKEN_START), [f"{NUMBER}@{DOMAIN}"])
            assert res.error is None, res.error
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert str(notice["Subject"]).startswith("SMS accepted: Hi Jan, the report")


class Clock:
    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


async def test_bulk_mail_without_subject_in_quiet_hours_gets_250_and_is_held(tmp_path: Path) -> None:
    clock = Clock(datetime.now(ZoneInfo("Europe/Warsaw")).replace(hour=22, minute=0, second=0, microsecond=0))
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            res = await gw.send(raw_mail(BROKEN_START, extra="Precedence: bulk\r\n"), [f"{NUMBER}@{DOMAIN}"])
            assert res.error is None, res.error
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert str(notice["Subject"]).startswith("SMS held until 08:00: Hi Jan, the report")
            assert gw.states() == ["queued"]


async def test_folded_message_id_with_confirmation_gets_250(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            res = await gw.send(raw_mail("Meeting at 10", message_id=FOLDED_ID), [f"{NUMBER}@{DOMAIN}"])
            assert res.error is None, res.error
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert "\n" not in str(notice.get("In-Reply-To", ""))


async def test_folded_message_id_with_dlr_mail_all_acks_the_receipt_and_mails_out(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))
            res = await gw.send(raw_mail("Meeting at 10", message_id=FOLDED_ID), [f"{NUMBER}@{DOMAIN}"])
            assert res.error is None, res.error
            await smsc.wait_until(lambda: bool(smsc.stats.deliver_responses))
            assert smsc.stats.deliver_responses[0] == ("report", 0)  # acknowledged, not refused
            await gw.until(lambda: gw.states() == ["delivered"])
            await sink.wait(1)
            (notice,) = outbound(sink)
            assert str(notice["Subject"]) == "SMS delivered to +48601123456"


def test_a_billing_attachment_keeps_a_readable_name_and_its_extension() -> None:
    # Defect: the %XX-escaped file name was cut to 100 characters, which lost ".txt" (Windows could not
    # tell the file's type) and ended inside an escape. No peer is involved: the mail is only built.
    from gateway.notify import billing_file

    long_polish = "Spółdzielnia Usług Różnych „Łódź” w Żółkiewce i Okolicach Bardzo Dalekich Sp. z o.o."
    raw = billing_file(
        sender="smsgw@sms.example.com",
        rcpt="admin@example.com",
        domain="sms.example.com",
        subject="SMS billing 2026-11",
        summary="Zażółć",
        filename=f"2026-11-{long_polish}.txt",
        content=b"a\tb\n",
    )
    msg = email.message_from_bytes(raw, policy=policy.default)
    (attachment,) = msg.iter_attachments()
    name = attachment.get_filename()
    assert name.startswith("2026-11-Spoldzielnia Uslug Roznych Lodz w Zolkiewce") and name.endswith(".txt")
    assert name.isascii() and "%" not in name and len(name) <= 84
    assert attachment.get_content() == "a\tb\n"


async def test_every_notice_about_a_mail_answers_that_mail(tmp_path: Path) -> None:
    # Only the confirmation and the bounces carried In-Reply-To/References: the notices that a text
    # was cut, held for quiet hours, left out for a number (identical texts) or refused by a limit
    # each arrived as a conversation of its own, away from the mail they were about.
    clock = Clock(datetime.now(ZoneInfo("Europe/Warsaw")).replace(hour=22, minute=0, second=0, microsecond=0))
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, identical_per_day=1)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            long = " ".join(f"w{i:04d}" for i in range(400))  # over 10 parts: cut
            sends = [
                (raw_mail(long, message_id="<long@acme.example>", extra="Precedence: bulk\r\n"), [NUMBER]),
                (raw_mail("Same text", message_id="<same-1@acme.example>"), [NUMBER]),
                (raw_mail("Same text", message_id="<same-2@acme.example>"), [NUMBER, "601123457"]),
            ]
            for raw, numbers in sends:
                res = await gw.send(raw, [f"{n}@{DOMAIN}" for n in numbers])
                assert res.error is None and not res.refused, res
            await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=1))
            refused = await gw.send(
                raw_mail("Other " + long, message_id="<limit@acme.example>"), [f"{NUMBER}@{DOMAIN}"]
            )
            assert refused.error is not None, refused  # 550: the daily limit
            rows = gw.store.db.conn.execute("SELECT kind, content FROM outbox ORDER BY id").fetchall()
    answers = {}
    for kind, content in rows:
        notice = email.message_from_bytes(content, policy=policy.default)
        answers[kind] = (notice["In-Reply-To"], notice["References"])
    assert answers == {
        "held": ("<long@acme.example>",) * 2,
        "truncated": ("<long@acme.example>",) * 2,
        "not-sent": ("<same-2@acme.example>",) * 2,
        "limit": ("<limit@acme.example>",) * 2,
    }
