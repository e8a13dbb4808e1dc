"""`smsgw phone show|forget` and the mails that name the phone with no SMS of its own behind them: bounces
and auto-replies to its address (forwarded, or only recorded), a relay's DSN quoting its answer's mail,
a bounce of its premium SMS's mail, the number as the gateway writes it for a person, a queued forward
naming other numbers too, and a mailbox whose name merely ends in its digits. Real peers make the
rows, as in test_phone_privacy.py; split from it by subject (that module was over 400 lines)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from gateway.config import Config, parse_config
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_phone_privacy import ERASED, OTHER, cli, file_bytes, written_two_way
from tests.test_process import smsgw
from tests.test_two_way import PHONE

FALLBACK = "ops@acme.example"


OOF_WORD = "Urlopowo"  # in an out-of-office reply to the phone alone: never sent, its notice names it


BOUNCE_WORD = "Odbiciowo"  # in a bounce sent to the phone's address


DSN_WORD = "Zwrotowo"  # in a bounce of a mail the gateway wrote about the phone (its answer)


def named_config(tmp_path: Path, relay: int) -> tuple[Path, Config]:
    """The two-way world with one identical SMS a day to a number and bounces forwarded."""
    path, _ = written_two_way(tmp_path, relay)
    text = path.read_text().replace("[gateway]\n", "[gateway]\nidentical_per_day = 1\n", 1)
    text = text.replace("[replies]\npool = []", f'[replies]\npool = []\nfallback_address = "{FALLBACK}"')
    path.write_text(text)
    return path, parse_config(text, source=str(path), base_dir=tmp_path)


def dsn_about_the_phone() -> bytes:
    """A relay's DSN about the mail that carried the phone's answer to a user, sent back to the
    gateway's From address: it quotes that mail's subject and headers, which name the phone."""
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@" + DOMAIN + "\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-phone@mx.acme.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        f'Your message "SMS from {PHONE}: Dobrze {DSN_WORD}" to jan@acme.example could not be delivered.\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
        "Final-Recipient: rfc822; jan@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {PHONE}@{DOMAIN}\r\nTo: jan@acme.example\r\nSubject: SMS from {PHONE}: Dobrze {DSN_WORD}\r\n"
        "--b--\r\n"
    ).encode()


def plain_text(content: bytes) -> str:
    from email import message_from_bytes, policy

    msg = message_from_bytes(content, policy=policy.default)
    return f"{msg['Subject']}\n{msg.get_body(('plain',)).get_content()}"  # type: ignore[union-attr]


async def test_the_mails_naming_the_phone_with_no_sms_to_it_behind_them_are_found_and_erased(
    tmp_path: Path,
) -> None:
    """Mails that name the phone with no row of it behind them: the notice of a group mail that left
    it out (it had its identical SMS today), the notice of an out-of-office reply to it (never
    sent), a bounce to its address forwarded, and a bounce of a mail about it forwarded. Each is
    found; the group mail's notice loses only the number (the sender's subject and the other number
    stay), the others go whole, and so do the records of the mails and bounces to it alone."""
    from tests.test_bounces import bounce, delivered

    relay = free_port()
    path, cfg = named_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "o 10", "Zebranie"))).error is None
        group = mail([f"601123456@{DOMAIN}", f"601123457@{DOMAIN}"], "o 10", "Zebranie")
        assert (await gw.send(group)).error is None
        oof = mail(f"601123456@{DOMAIN}", "Wracam w poniedzialek", f"Out of office {OOF_WORD}")
        oof["X-Auto-Response-Suppress"] = "All"
        assert (await gw.send(oof)).error is None
        own = f"601123456@{DOMAIN}"
        to_phone = bounce("<bounce-phone@mx.acme.example>", f"Undelivered {BOUNCE_WORD}")
        assert (await delivered(gw.port, to_phone, rcpt=own)).startswith("250 ")
        assert (await delivered(gw.port, dsn_about_the_phone(), rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        await sink.wait(4)
        mails = dict(conn.execute("SELECT id, kind FROM outbox ORDER BY id").fetchall())
        assert sorted(mails.values()) == ["bounce-forward", "bounce-forward", "not-sent", "not-sent"]
        left_out, oof_notice, phone_bounce, dsn_forward = sorted(mails)
        records = dict(conn.execute("SELECT id, email_ref FROM outbox").fetchall())
        before = plain_text(
            conn.execute("SELECT content FROM outbox WHERE id = ?", (left_out,)).fetchone()[0]
        )
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        after = dict(conn.execute("SELECT id, content FROM outbox").fetchall())
        emails = {r[0]: r[1:] for r in conn.execute("SELECT id, subject, text FROM emails")}
        shown_after = await cli(path, "phone", "show", PHONE)
    assert PHONE in before and OTHER in before and "Zebranie" in before  # the group mail's notice
    assert shown.returncode == 0, shown.stderr
    assert "mails about it (outbox): 4" in shown.stdout.splitlines(), shown.stdout
    for id_ in mails:
        assert any(line.startswith(f"  mail {id_} ") for line in shown.stdout.splitlines()), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    said = forgot.stdout.splitlines()
    assert "  erased: its number in 1 outbox mail naming other numbers too" in said, forgot.stdout
    assert "  erased: 3 mails to it alone, not sent as SMS (bounces, out-of-office replies)" in said, said
    # The group mail's notice: the sender still hears the other number got it, of the phone nothing.
    told = plain_text(after[left_out])
    assert PHONE not in told and OTHER in told and "Zebranie" in told and ERASED in told
    assert after[oof_notice] == after[phone_bounce] == after[dsn_forward] == ERASED.encode()
    for id_ in (oof_notice, phone_bounce, dsn_forward):
        assert emails[records[id_]] == (None, ERASED)
    assert emails[records[left_out]][1] == "Zebranie: o 10"  # the group mail: its sender's, kept
    # Found by what they said: erased, they name it no more.
    assert "mails about it (outbox): 0" in shown_after.stdout.splitlines(), shown_after.stdout
    raw = file_bytes(cfg.db_path)
    for word in (OOF_WORD, BOUNCE_WORD, DSN_WORD):
        assert word.encode() not in raw, word


PREMIUM_BOUNCE_WORD = "Zwrotkowo"  # in the client's server's bounce of the mail of the phone's premium SMS


async def test_the_record_of_a_bounce_of_the_phones_premium_sms_mail_is_erased(tmp_path: Path) -> None:
    """The client's server bounces the mail that carried the phone's vote, quoting it: the forward
    was found by its premium SMS already; the bounce's own record (`emails`) is now found with it."""
    from tests.test_bounces import delivered, dsn
    from tests.test_premium_bounces import config, mailed_vote

    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        address = await mailed_vote(gw, path, sink)
        bounce = dsn("<dsn-vote@mx.acme.pl>").replace(
            b"could not be delivered.", f"could not be delivered: KP123 vote {PREMIUM_BOUNCE_WORD}.".encode()
        )
        assert (await delivered(gw.port, bounce, rcpt=address)).startswith("250 ")
        db = gw.store.db.conn
        (record,) = db.execute("SELECT id FROM emails WHERE automatic IS NOT NULL").fetchone()
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        row = db.execute("SELECT subject, text FROM emails WHERE id = ?", (record,)).fetchone()
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: 1 mail to it alone, not sent as SMS (bounces, out-of-office replies)" in (
        forgot.stdout.splitlines()
    ), forgot.stdout
    assert row == (None, ERASED)
    assert PREMIUM_BOUNCE_WORD.encode() not in file_bytes(cfg.db_path)


SPACED = "+48 601 123 456"  # the phone as the gateway writes it for a person (`numbers.display`)


SPACED_WORD = "Spacjowo"  # in a bounce quoting an answer mail's subject, which names the phone so


GROUP_WORD = "Grupowo"  # in a bounce naming the phone and another number


def ndr(subject_line: str, word: str, mid: str) -> bytes:
    """A plain-text bounce to the gateway's own address quoting the subject of the mail it bounces."""
    return (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@{DOMAIN}\r\n"
        f"Subject: Undeliverable: {subject_line}\r\n"
        f"Message-ID: {mid}\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Your message to jan@acme.example couldn't be delivered.\r\nSubject: {subject_line}\r\n"
        f"Quoted: {word}\r\n"
    ).encode()


async def test_a_bounce_naming_the_phone_as_the_gateway_writes_it_for_a_person_is_found(
    tmp_path: Path,
) -> None:
    """An answer mail's subject names the phone as a person writes it ("SMS from +48 601 123 456");
    a bounce of it quotes that subject only. Its forward and its record are the phone's too."""
    from tests.test_bounces import delivered

    relay = free_port()
    path, cfg = named_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        raw = ndr(f"Re: Zebranie (SMS from {SPACED}) {SPACED_WORD}", SPACED_WORD, "<ndr-1@mx.acme.example>")
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        await sink.wait(1)
        conn = gw.store.db.conn
        shown = await cli(path, "phone", "show", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        left = conn.execute("SELECT content FROM outbox").fetchone()[0]
    assert "mails about it (outbox): 1" in shown.stdout.splitlines(), shown.stdout
    assert forgot.returncode == 0, forgot.stderr
    assert left == ERASED.encode()
    assert SPACED_WORD.encode() not in file_bytes(cfg.db_path)


NOFB_WORD = "Bezodpowiedzi"  # in a bounce to the phone's address, no fallback address to forward it to


AUTO_WORD = "Nieobecnowo"  # in an auto-reply (RFC 3834) to the phone's address, not forwarded


BOTH_WORD = "Obojgowo"  # in an auto-reply naming the phone and another number: theirs too


async def test_the_records_of_bounces_and_auto_replies_to_the_phone_with_no_mail_about_them_are_found(
    tmp_path: Path,
) -> None:
    """With no fallback address a bounce is recorded, never forwarded, and an auto-reply is never
    forwarded: no mail names the phone, only the record (its recipients, its subject). `show` and
    the dry run count them; `forget` erases them, one that names another number too loses only the
    phone's number."""
    from tests.test_bounces import bounce, delivered

    relay = free_port()
    path, cfg = written_two_way(tmp_path, relay)  # no [replies] fallback_address
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        to_phone = bounce("<bounce-nofb@mx.acme.example>", f"Undelivered {NOFB_WORD}")
        assert (await delivered(gw.port, to_phone, rcpt=f"601123456@{DOMAIN}")).startswith("250 ")
        for mid, subject, word in (
            ("<oof-1@acme.example>", f"Re: Zebranie (SMS from {SPACED})", AUTO_WORD),
            ("<oof-2@acme.example>", f"Re: Zebranie (SMS from {PHONE}, {OTHER})", BOTH_WORD),
        ):
            reply = (
                f"From: {STAFF}\r\nTo: {PHONE}@{DOMAIN}\r\nSubject: Automatic reply: {subject}\r\n"
                f"Message-ID: {mid}\r\nAuto-Submitted: auto-replied\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nI am away until Monday {word}.\r\n"
            ).encode()
            rcpt = f"{PHONE if word == AUTO_WORD else OTHER}@{DOMAIN}"
            assert (await delivered(gw.port, reply, sender=STAFF, rcpt=rcpt)).startswith("250 ")
        conn = gw.store.db.conn
        recorded = conn.execute("SELECT COUNT(*) FROM emails WHERE automatic IS NOT NULL").fetchone()
        outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        shown = await cli(path, "phone", "show", PHONE)
        asked = await cli(path, "phone", "forget", PHONE)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        rows = conn.execute("SELECT text, subject, numbers FROM emails").fetchall()
        shown_after = await cli(path, "phone", "show", PHONE)
    assert recorded == (3,) and outbox == (0,)
    line = "records of mails to it or naming it, not sent as SMS (bounces, auto-replies): 3"
    line += " (1 naming other numbers too)"
    assert line in shown.stdout.splitlines(), shown.stdout
    # A database made at schema 54 or later holds no records from before it: no note of them.
    assert "schema version 54" not in shown.stdout + asked.stdout + forgot.stdout, shown.stdout
    assert asked.returncode == 1
    for said in (
        "  2 mails to it alone, not sent as SMS (bounces, out-of-office replies)",
        "  its number in the records of 1 mail not sent as SMS that name other numbers too",
    ):
        assert said in asked.stdout.splitlines(), asked.stdout
    assert forgot.returncode == 0, forgot.stderr
    for said in (
        "  erased: 2 mails to it alone, not sent as SMS (bounces, out-of-office replies)",
        "  erased: its number in the records of 1 mail not sent as SMS that name other numbers too",
    ):
        assert said in forgot.stdout.splitlines(), forgot.stdout
    [(subject, numbers)] = [r[1:] for r in rows if BOTH_WORD in r[0]]
    assert subject == f"Automatic reply: Re: Zebranie (SMS from {ERASED}, {OTHER})" and numbers == OTHER
    assert [r for r in rows if r[0] == ERASED] == [(ERASED, None, None), (ERASED, None, None)]
    assert line.replace("3 (1 naming other numbers too)", "0") in shown_after.stdout.splitlines()
    raw = file_bytes(cfg.db_path)
    assert NOFB_WORD.encode() not in raw and AUTO_WORD.encode() not in raw and BOTH_WORD.encode() in raw


def test_the_records_from_before_schema_54_are_said_only_where_they_may_be(tmp_path: Path) -> None:
    """What `forget` keeps unfound, `show` says too (it counted 0 records of an upgraded install's old
    ones): the records of mails never sent made before migration 54 noted their recipients. A
    database made since has none, and said so on every `phone show` as if it had."""
    path, cfg = written_two_way(tmp_path, free_port())
    with closing(Store.open(cfg.db_path)) as store, store.db.transaction() as conn:
        insert = (
            "INSERT INTO emails (mail_from, text, automatic, received_at, numbers) VALUES (?, ?, ?, ?, ?)"
        )
        conn.execute(insert, ("", "Undelivered", "bounce", time.time(), PHONE))
    unaddressed = "  the records of bounces and auto-replies that do not name the number in their subject or"
    unaddressed += " text and were recorded before the gateway noted their recipients (schema version 54)"
    shown, asked = smsgw(path, "phone", "show", OTHER), smsgw(path, "phone", "forget", OTHER)
    assert shown.returncode == 0 and asked.returncode == 1, shown.stderr + asked.stderr
    assert "schema version 54" not in shown.stdout + asked.stdout, shown.stdout + asked.stdout
    # As an upgraded install holds it: recorded before its recipients were (NULL), and so the oldest.
    with closing(sqlite3.connect(cfg.db_path)) as conn, conn:
        conn.execute("UPDATE emails SET numbers = NULL")
    shown, asked = smsgw(path, "phone", "show", OTHER), smsgw(path, "phone", "forget", OTHER)
    assert f"{unaddressed}: not counted" in shown.stdout.splitlines(), shown.stdout
    kept = f"  kept: {unaddressed.strip()}: nothing ties them to it"
    assert kept in asked.stdout.splitlines(), asked.stdout


async def test_a_queued_bounce_forward_naming_other_numbers_too_loses_only_the_phones_number(
    tmp_path: Path,
) -> None:
    """A bounce quoting a confirmation to the phone and another number, forwarded to the operator's
    fallback mailbox and still queued (the relay is down): erased whole and failed, the mailbox never
    heard of the other number. The phone's number goes from its text, the forward still goes."""
    from email import message_from_bytes, policy

    from tests.test_bounces import delivered

    path, cfg = named_config(tmp_path, free_port())  # nothing listens: the forward stays queued
    async with running_gateway(cfg) as gw:
        raw = ndr(f"Accepted: Zebranie, sent to {PHONE}, {OTHER}", GROUP_WORD, "<ndr-2@mx.acme.example>")
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        conn = gw.store.db.conn
        await gw.until(
            lambda: (
                conn.execute("SELECT state, last_error IS NOT NULL FROM outbox").fetchone() == ("queued", 1)
            )
        )
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        state, content = conn.execute("SELECT state, content FROM outbox").fetchone()
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: its number in 1 outbox mail naming other numbers too" in forgot.stdout.splitlines()
    assert state == "queued"
    msg = message_from_bytes(content, policy=policy.default)
    assert not msg.defects and PHONE not in msg["Subject"] and OTHER in msg["Subject"]
    told = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert PHONE not in told and OTHER in told and ERASED in told
    (original,) = list(msg.iter_attachments())
    quoted = original.get_content()
    assert (
        PHONE not in quoted.as_string() and OTHER in quoted.as_string() and GROUP_WORD in quoted.as_string()
    )
    assert PHONE.encode() not in content


MAILBOX_WORD = "Skrzynkowo"  # in a bounce about someone's mailbox whose name ends in the phone's digits


async def test_a_mailbox_whose_name_ends_in_the_phones_digits_is_not_the_phone(tmp_path: Path) -> None:
    from tests.test_bounces import delivered

    relay = free_port()  # down: the forward stays queued
    path, cfg = named_config(tmp_path, relay)
    raw = (
        f"From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@{DOMAIN}\r\nSubject: Undeliverable\r\n"
        "Message-ID: <ndr-mailbox@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Your message to jan.601123456@acme.example and x601123456@acme.example couldn't be"
        f" delivered: mailbox full {MAILBOX_WORD}.\r\n"
    ).encode()
    async with running_gateway(cfg) as gw:
        assert (await delivered(gw.port, raw, rcpt=f"smsgw@{DOMAIN}")).startswith("250 ")
        conn = gw.store.db.conn
        await gw.until(lambda: conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1)
        forgot = await cli(path, "phone", "forget", PHONE, "--yes")
        assert forgot.returncode == 0, forgot.stderr
        [(state, content)] = conn.execute("SELECT state, content FROM outbox").fetchall()
        [(text,)] = conn.execute("SELECT text FROM emails").fetchall()
    assert state in ("queued", "deferred") and MAILBOX_WORD.encode() in bytes(content), state
    assert MAILBOX_WORD in text and ERASED not in text
