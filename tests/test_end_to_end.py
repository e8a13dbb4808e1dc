"""Mail in, SMS out: a real SMTP client → the gateway → a fake SMSC over TCP, and back by DLR."""

from __future__ import annotations

import asyncio
import email
import smtplib
import time
from email import policy
from pathlib import Path

from gateway.smtp import replies
from smsc.encoding import parse_udh
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC, ThrottlingSMSC


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


async def test_gsm_text_reaches_the_smsc(tmp_path: Path) -> None:
    # A plain text mail becomes one GSM SMS from the account's sender to the E.164 number.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(to("601123456"), "Meeting moved to 10:00"))
        assert res.error is None and res.refused == {}
        await smsc.wait_for(1)
        sms = smsc.received[0]
        assert sms.destination.lstrip("+") == "48601123456"
        assert sms.source.lstrip("+") == "48100200300"
        assert sms.data_coding == 0 and sms.udh == b""
        assert sms.text == "Meeting moved to 10:00"
        await gw.until(lambda: gw.states() == ["delivered"])


async def test_polish_text_goes_as_ucs2(tmp_path: Path) -> None:
    # Polish letters are not in GSM 03.38: the SMS is UCS-2 and the text arrives intact.
    text = "Zażółć gęślą jaźń"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("+48601123456"), text))
        await smsc.wait_for(1)
        assert smsc.received[0].data_coding == 8
        assert smsc.received[0].text == text


async def test_long_text_is_concatenated_with_udh(tmp_path: Path) -> None:
    # 400 GSM characters → 3 parts of ≤153 with one reference, seq 1..3, reassembling to the text.
    words = ("alpha beta gamma delta epsilon " * 20)[:400].strip()
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("0048601123456"), words))
        await smsc.wait_for(3)
        udhs = [parse_udh(s.udh) for s in smsc.received]
        assert all(u is not None for u in udhs)
        assert {u.ref for u in udhs if u} == {udhs[0].ref}  # type: ignore[union-attr]
        assert sorted((u.seq, u.total) for u in udhs if u) == [(1, 3), (2, 3), (3, 3)]
        ordered = sorted(smsc.received, key=lambda s: parse_udh(s.udh).seq)  # type: ignore[union-attr]
        assert "".join(s.text for s in ordered) == words
        await gw.until(lambda: gw.states() == ["delivered"])


async def test_subject_is_put_in_front(tmp_path: Path) -> None:
    # The subject, cut to at most 30 characters (at a word end), leads the SMS, followed by ": ".
    subject = "Delivery window for tomorrow morning changed"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("601123456"), "Come at 8.", subject=subject))
        await smsc.wait_for(1)
        assert smsc.received[0].text == "Delivery window for tomorrow: Come at 8."


async def test_one_invalid_recipient_does_not_stop_the_others(tmp_path: Path) -> None:
    # per-recipient verdicts; the bad number is refused with 5.1.1 and says why.
    rcpts = [to("601123456"), to("12"), to("+48-601-123-457"), "601123458@elsewhere.example"]
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(rcpts, "Hi all"), rcpts)
        assert res.error is None
        assert set(res.refused) == {to("12"), "601123458@elsewhere.example"}
        code, text = res.refused[to("12")]
        assert code == 550 and text.startswith(b"5.1.1")
        assert res.refused["601123458@elsewhere.example"][1].startswith(b"5.7.1")
        await smsc.wait_for(2)
        assert sorted(s.destination.lstrip("+") for s in smsc.received) == ["48601123456", "48601123457"]


async def test_an_accepted_mail_is_recorded_with_who_from_which_ip_and_when(tmp_path: Path) -> None:
    # the audit record holds the sender, the client's IP, the time, the text and its SMS.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        before = time.time()
        res = await gw.send(mail(to("601123456"), "Audit me", subject="Note"), source="127.0.0.2")
        assert res.error is None
        after = time.time()
        row = gw.store.db.conn.execute(
            "SELECT e.mail_from, e.client_ip, e.received_at, e.text, u.email, a.name, m.recipient, m.text"
            " FROM emails e JOIN users u ON u.id = e.user_id JOIN accounts a ON a.id = e.account_id"
            " JOIN messages m ON m.email_id = e.id"
        ).fetchall()
        assert len(row) == 1
        mail_from, client_ip, received_at, text, user, account, recipient, sms = row[0]
        assert (mail_from, client_ip, user, account) == (STAFF, "127.0.0.2", STAFF, "acme")
        assert before - 1 <= received_at <= after + 1
        assert "Audit me" in text
        assert (recipient, sms) == ("+48601123456", "Note: Audit me")


async def test_unknown_sender_is_refused_before_data(tmp_path: Path) -> None:
    # Senders outside the ACL are refused at MAIL FROM; nothing is queued.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(to("601123456")), sender="eve@evil.example")
        assert res.error is not None and getattr(res.error, "smtp_code", None) == 550
        assert gw.store.admin.count_messages() == 0


async def test_failed_dlr_bounces_to_the_sender_as_a_dsn(tmp_path: Path) -> None:
    # A failed delivery report produces one RFC 3464 bounce naming the number and the reason.
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(to("601123413"), "This one fails", Message_ID="<fail-1@acme.example>"))
            await sink.wait(1)
            mail_from, rcpts, content = sink.messages[0]
            assert mail_from in ("", "<>") and rcpts == [STAFF]
            report = email.message_from_bytes(content, policy=policy.default)
            assert report.get_content_type() == "multipart/report"
            assert report.get_param("report-type") == "delivery-status"
            assert "+48601123413" in str(report["Subject"])
            assert report["In-Reply-To"] == "<fail-1@acme.example>"
            status = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
            assert status, "no machine-readable delivery status part"
            assert gw.states() == ["failed"]
            # A later failing mail is the marker: a second bounce for the first would come before its own.
            await gw.send(mail(to("601124413"), "This one fails too"))
            await sink.wait(2)
            subjects = [str(email.message_from_bytes(m[2])["Subject"]) for m in sink.messages]
            assert ["+48601123413" in s for s in subjects] == [True, False]  # once per message, not per retry
            assert "+48601124413" in subjects[1]


async def test_failed_dlr_bounces_to_the_accounts_designated_address(tmp_path: Path) -> None:
    # an account with a notify address gets the bounce there, not at the sender's mailbox.
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", notify_address="sms-ops@acme.example")
            )
            await gw.send(mail(to("601123413"), "This one fails", Message_ID="<fail-2@acme.example>"))
            await sink.wait(1)
            mail_from, rcpts, content = sink.messages[0]
            assert mail_from in ("", "<>") and rcpts == ["sms-ops@acme.example"]
            report = email.message_from_bytes(content, policy=policy.default)
            assert report.get_content_type() == "multipart/report"
            assert str(report["To"]) == "sms-ops@acme.example"
            assert "+48601123413" in str(report["Subject"])
            assert gw.states() == ["failed"]


async def test_dlr_mail_none_sends_no_bounce(tmp_path: Path) -> None:
    # `dlr_mail = "none"` mails nothing about a final failure, to the sender or anyone else.
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="none"))
            await gw.send(mail(to("601123413"), "This one fails quietly"))
            await gw.until(lambda: gw.states() == ["failed"])
            # A mail the gateway does send is the marker: a bounce queued with the failure goes first.
            assert (await gw.send(mail(to("info"), ""), [to("info")])).error is None
            await sink.wait(1)
            assert [rcpts for _, rcpts, _ in sink.messages] == [[STAFF]]
            kinds = [r[0] for r in gw.store.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
            assert kinds == ["info"]


async def test_smsc_down_at_start_message_waits_then_goes(tmp_path: Path) -> None:
    # Accepted while no SMSC answers; sent once the SMSC comes up, nothing failed.
    port = free_port()
    attempts: list[None] = []  # the SMSC is "down": every connection is closed at once

    def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(None)
        writer.close()

    down = await asyncio.start_server(hang_up, "127.0.0.1", port)
    async with down, running_gateway(make_config(tmp_path, smsc_port=port)) as gw:
        res = await gw.send(mail(to("601123456"), "Waiting for the link"))
        assert res.error is None
        tried = len(attempts)
        await gw.until(lambda: len(attempts) > tried)  # the link failed again with the mail queued
        assert gw.states() == ["queued"]
        down.close()
        await down.wait_closed()
        async with HappySMSC(port=port) as smsc:
            await smsc.wait_for(1, timeout=20)
            await gw.until(lambda: gw.states() == ["delivered"])


async def test_throttling_smsc_slows_down_but_fails_nothing(tmp_path: Path) -> None:
    # ESME_RTHROTTLED answers make the gateway retry later; every SMS still goes, none fails.
    async with (
        ThrottlingSMSC(accept_per_second=20) as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        numbers = [to(f"60112{i:04d}") for i in range(30)]
        await gw.send(mail(numbers, "Bulk notice"), numbers)
        await gw.until(lambda: gw.states().count("delivered") == 30, timeout=60)
        assert "failed" not in gw.states()
        assert len({s.destination for s in smsc.received}) == 30


async def test_oversize_mail_gets_552_and_no_sms(tmp_path: Path) -> None:
    # F11: never 250 for a message over the SIZE limit, never an SMS from it.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        big = mail(to("601123456"), "x" * 2_000_000)
        res = await gw.send(big)
        assert res.error is not None
        assert getattr(res.error, "smtp_code", None) == 552
        assert replies.TOO_BIG.split(" ", 2)[1].encode() in getattr(res.error, "smtp_error", b"")
        assert gw.store.admin.count_messages() == 0


def _data_without_size(port: int, msg: bytes) -> tuple[int, bytes]:
    """A client that declares no SIZE= at MAIL (smtplib adds it when the server offers SIZE)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        assert client.mail(STAFF)[0] == 250
        assert client.rcpt(to("601123456"))[0] == 250
        try:
            return client.data(msg)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error


def _body_of(size: int) -> bytes:
    """A mail of exactly `size` octets as DATA carries them (CRLF lines, none starting with a dot)."""
    head = f"From: {STAFF}\r\nTo: {to('601123456')}\r\nSubject: Big\r\n\r\n".encode()
    line = b"A line of an overlong mail, one of many" + b"." * 59 + b"\r\n"  # 100 octets
    lines, rest = divmod(size - len(head), len(line))
    return head + line * (lines - 1) + b"x" * (len(line) + rest - 2) + b"\r\n"


async def test_oversize_body_without_size_gets_552_and_no_sms(tmp_path: Path) -> None:
    # F11 for a client that says nothing at MAIL: the body itself, counted as it arrives, is over
    # the limit. The SIZE= test above never reaches DATA. One octet over is the case only the body
    # count catches (far over, a line reader's own buffer limit answers 552 as well).
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        limit = gw.config.smtp.max_message_bytes
        for size in (limit + 1, 3 * limit):
            body = _body_of(size)
            assert len(body) == size
            code, text = await asyncio.to_thread(_data_without_size, gw.port, body)
            assert code == 552, (size, code, text)
            assert text.startswith(replies.TOO_BIG.split(" ", 2)[1].encode()), (size, text)
        assert gw.store.admin.count_messages() == 0
        code, _ = await asyncio.to_thread(_data_without_size, gw.port, _body_of(limit))
        assert code == 250  # the limit itself is allowed
        await smsc.wait_for(1)
        assert len(smsc.received) >= 1 and gw.store.admin.count_messages() == 1


async def test_a_person_whose_mail_looks_like_an_out_of_office_reply_hears_it_was_not_sent(
    tmp_path: Path,
) -> None:
    # "Nieobecność jutro" with the X-Auto-Response-Suppress header ordinary Outlook mails carry too
    # was answered 250 and never sent: the user believed the phone had it. It is still not sent
    # (a real out-of-office reply must not reach a phone), but its sender is told; a responder's
    # "Odpowiedź automatyczna: …" template is recorded without a word, as before.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        guess = mail(to("601123456"), "Jutro mnie nie ma, dzwoń do Ani", subject="Nieobecność jutro")
        guess["X-Auto-Response-Suppress"] = "All"
        template = mail(to("601123457"), "Wracam 5 stycznia", subject="Odpowiedź automatyczna: Oferta")
        template["X-Auto-Response-Suppress"] = "All"
        assert (await gw.send(guess)).error is None and (await gw.send(template)).error is None
        await gw.send(mail(to("601123458"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Marker"]
        told = gw.store.db.conn.execute("SELECT kind, rcpt, content FROM outbox").fetchall()
        assert [(kind, rcpt) for kind, rcpt, _ in told] == [("not-sent", STAFF)]
        notice = email.message_from_bytes(told[0][2], policy=policy.default)
        assert notice["Subject"] == "Not sent as SMS: Nieobecność jutro"
        assert notice["Auto-Submitted"] == "auto-replied"
        assert "+48601123456" in notice.get_content() and "another subject" in notice.get_content()


async def test_a_mail_rule_sending_the_gateways_own_notices_back_to_a_phone_is_not_an_sms_loop(
    tmp_path: Path,
) -> None:
    # "Forward everything to my phone" in Exchange, with delivery confirmations on: each
    # confirmation was forwarded to the phone's address, became an SMS, whose confirmation was
    # forwarded again, until the identical-SMS rule refused the fourth. A forward keeps the
    # gateway's address in its quoted header block; a redirect keeps its From.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        own = gw.config.mail.from_address
        notice = "Your SMS to +48601123456 was delivered (1 part(s))."
        forward = mail(
            to("601123456"),
            f"\n\nFrom: SMS gateway <{own}>\nSent: Monday, 30 November 2026 10:00\nTo: {STAFF}\n"
            f"Subject: SMS delivered to +48601123456\n\n{notice}\n",
            subject="FW: SMS delivered to +48601123456",
        )
        forward["X-MS-Exchange-Inbox-Rules-Loop"] = STAFF
        redirect = mail(to("601123457"), notice, subject="SMS delivered to +48601123457")
        redirect.replace_header("From", f"SMS gateway <{own}>")
        # A person's mail forwarded by the same rule is what the rule is for: it is sent, also when
        # its own history quotes a notice further down; and an address that merely contains the
        # gateway's is another sender.
        wanted = mail(to("601123458"), "\n\nFrom: Boss <boss@acme.example>\n\nCall me", subject="FW: Urgent")
        wanted["X-MS-Exchange-Inbox-Rules-Loop"] = STAFF
        history = mail(
            to("601123459"),
            f"\n\nFrom: Anna <anna@acme.example>\nSubject: Meeting\n\nMoved to 11:00, room 4.\n\n"
            f"From: SMS gateway <{own}>\nSubject: SMS delivered\n\n{notice}\n",
            subject="FW: Meeting",
        )
        history["X-MS-Exchange-Inbox-Rules-Loop"] = STAFF
        lookalike = mail(to("601123450"), "Disk full on srv1", subject="Alert")
        lookalike.replace_header("From", f"Alerts <it-{own}>")
        for msg in (forward, redirect, wanted, history, lookalike):
            assert (await gw.send(msg)).error is None
        sent = lambda: {s.destination[-3:] for s in smsc.received}  # noqa: E731
        await smsc.wait_until(lambda: sent() >= {"450", "458", "459"})
        assert sent() == {"450", "458", "459"}
        recorded = gw.store.db.conn.execute("SELECT automatic FROM emails ORDER BY id").fetchall()
        assert [r[0] for r in recorded][:2] == ["the gateway's own notice, sent back by a mail rule"] * 2


async def test_a_scripts_mail_with_lf_lines_loses_the_dots_its_client_doubled(tmp_path: Path) -> None:
    # `smtplib.sendmail(..., msg.as_bytes())`, as monitoring scripts send: the lines end in a bare LF
    # and smtplib doubles the dot that starts any of them, as Postfix and Exim read such lines. A
    # quoted-printable Polish text wraps before a full stop ("piątek=\n.") just as easily.
    msg = mail(to("601123456"), ".NET service restarted\nDisk check done\n...and the backup too")
    assert msg.as_bytes().count(b"\n.") == 2  # LF lines, dots at line starts
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(msg.as_bytes(), [to("601123456")])
        assert res.error is None and res.refused == {}
        await smsc.wait_for(1)
        text = smsc.received[0].text
        assert ".NET service restarted" in text and "..NET" not in text
        assert "...and the backup too" in text and "....and" not in text
