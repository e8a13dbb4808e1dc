"""RFC 5321 4.5.1 over real SMTP: mail to postmaster (with or without our domain) is taken and
handed to `[mail] admin_address` through the outbox, from <> and with the loop mark, never as SMS;
a person answering a notice (mail to the notice sender address) is told where to write instead.
What postmaster forwards is capped per hour, per client (an IPv6 /64) and for strangers in all, at
RCPT and again in the write that records the mail; the count reads the hour's forwards alone.

A real smtplib client sends to the running gateway; an SMTP sink plays the outgoing mail relay.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from gateway.config import Config, parse_config
from gateway.forwarded import BOUNCE_ATTACH_MAX, BOUNCE_HEADERS_MAX, FORWARD_MARK
from gateway.smtp import postmaster
from gateway.store.db import Store
from gateway.store.records import Acceptance
from tests.conftest import DOMAIN, STAFF, config_text, free_port, running_gateway, smtp_sink
from tests.test_intake_workers import stop
from tests.test_process import start_daemon
from tests.test_store import Clock, vm_steps

ADMIN = "admin@acme.example"
PHONE = f"601123456@{DOMAIN}"


def config(tmp_path: Path, relay_port: int, extra: str = "") -> Config:
    text = config_text(tmp_path, smsc_port=1, relay_port=relay_port, extra=extra)
    text = text.replace("[mail]\n", f'[mail]\nadmin_address = "{ADMIN}"\n', 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


def letter(message_id: str, extra: str = "") -> bytes:
    return (
        f"From: {STAFF}\r\nTo: postmaster@{DOMAIN}\r\nSubject: Your server refuses our mail\r\n"
        f"Message-ID: {message_id}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Hello, since this morning our mail to you is refused. Anna\r\n"
    ).encode()


def session(
    port: int, rcpts: list[str], raw: bytes | None, source: str = "127.0.0.1", sender: str = STAFF
) -> tuple[list[str], str | None]:
    """Each RCPT's reply, then DATA's (None without accepted recipients or content)."""
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.acme.example")
        assert c.mail(sender)[0] == 250
        said = [f"{code} {text.decode()}" for code, text in (c.rcpt(r) for r in rcpts)]
        if raw is None or not any(s.startswith("250") for s in said):
            return said, None
        code, text = c.data(raw)
        return said, f"{code} {text.decode()}"


async def talk(
    port: int, rcpts: list[str], raw: bytes | None = None, source: str = "127.0.0.1", sender: str = STAFF
) -> tuple[list[str], str | None]:
    return await asyncio.wait_for(asyncio.to_thread(session, port, rcpts, raw, source, sender), 60)


def outbox(gw: Any) -> list[tuple[str, str, str]]:
    return gw.store.db.conn.execute("SELECT kind, mail_from, rcpt FROM outbox ORDER BY id").fetchall()


async def test_mail_to_postmaster_reaches_the_admin_address(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(config(tmp_path, relay)) as gw:
        bare = await talk(gw.port, ["<Postmaster>"], letter("<pm-1@acme.example>"))
        full = await talk(gw.port, [f"postmaster@{DOMAIN}"], letter("<pm-2@acme.example>"))
        await sink.wait(2)
        queued = outbox(gw)
        sms = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        recorded = gw.store.db.conn.execute("SELECT mail_from, automatic FROM emails").fetchall()
    for rcpt_said, data_said in (bare, full):
        assert rcpt_said == ["250 2.1.5 Recipient OK"]
        assert data_said is not None and data_said.startswith("250 2.0.0 OK: recorded, not sent as SMS")
        assert "administrator" in data_said
    assert sms == 0 and queued == [("postmaster-forward", "", ADMIN)] * 2
    assert [r[0] for r in recorded] == [STAFF, STAFF] and all("postmaster" in r[1] for r in recorded)
    # The outbox sends up to four mails at once: the sink may get the two forwards in either order.
    (
        mail_from,
        rcpts,
        content,
    ) = next(m for m in sink.messages if b"<pm-1@acme.example>" in m[2])
    assert mail_from == "<>" and rcpts == [ADMIN]
    msg = message_from_bytes(content, policy=policy.default)
    assert (
        msg["Subject"].strip()
        == "Mail to postmaster received by the SMS gateway: Your server refuses our mail"
    )
    assert msg[FORWARD_MARK] == "postmaster"
    assert f"Envelope sender: {STAFF}" in msg.get_body(("plain",)).get_content()
    assert letter("<pm-1@acme.example>").replace(b"\r\n", b"\n") in content.replace(b"\r\n", b"\n")


async def test_postmaster_goes_in_a_mail_of_its_own(tmp_path: Path) -> None:
    # One forward and one SMS cannot share a transaction's one reply: the client sends postmaster again.
    relay = free_port()
    async with smtp_sink(relay), running_gateway(config(tmp_path, relay)) as gw:
        first_phone, _ = await talk(gw.port, [PHONE, "postmaster"])
        first_postmaster, _ = await talk(gw.port, ["postmaster", PHONE])
    assert first_phone[0].startswith("250") and first_phone[1].startswith("452 4.5.3")
    assert first_postmaster[0].startswith("250") and first_postmaster[1].startswith("452 4.5.3")


async def test_our_own_forward_coming_back_is_not_forwarded_again(tmp_path: Path) -> None:
    # The admin address an alias of postmaster here: the forward arrives again and stops.
    relay = free_port()
    async with smtp_sink(relay), running_gateway(config(tmp_path, relay)) as gw:
        _, said = await talk(
            gw.port, ["postmaster"], letter("<pm-3@acme.example>", f"{FORWARD_MARK}: postmaster\r\n")
        )
        queued = outbox(gw)
    assert said is not None and said.startswith("250 2.0.0 OK: recorded, not sent as SMS") and queued == []


async def test_an_answer_to_a_notice_is_told_where_to_write(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay), running_gateway(config(tmp_path, relay)) as gw:
        notice_sender = gw.config.mail.from_address
        said, _ = await talk(gw.port, [notice_sender])
    assert said[0].startswith(f"550 5.7.1 <{notice_sender}>: this address only sends"), said
    assert ADMIN in said[0] and "phone number" not in said[0]


# ---- the hour's cap ------------------------------------------------------------------------------

STRANGER = "someone@elsewhere.example"


def open_text(tmp_path: Path, relay_port: int) -> Config:
    """Premium numbers configured: MAIL lets any sender through (answers come from anywhere), so
    postmaster takes mail from the whole internet. Only 127.0.0.1 is the customer's network."""
    text = config_text(
        tmp_path, smsc_port=1, relay_port=relay_port, extra='\n[premium]\nnumbers = ["7355"]\n'
    )
    text = text.replace("[mail]\n", f'[mail]\nadmin_address = "{ADMIN}"\n', 1)
    text = text.replace('relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]')
    return parse_config(text, source="test config", base_dir=tmp_path)


def anonymous(size: int = 0) -> bytes:
    """A stranger's mail to postmaster with no Message-ID, which no duplicate check can catch."""
    filler = ("x" * 76 + "\r\n") * (size // 78)
    return (
        f"From: {STRANGER}\r\nTo: postmaster@{DOMAIN}\r\nSubject: hello\r\n\r\nhello\r\n{filler}"
    ).encode()


def forwards(gw: Any) -> list[bytes]:
    rows = gw.store.db.conn.execute("SELECT content FROM outbox WHERE kind = 'postmaster-forward'")
    return [row[0] for row in rows]


async def test_one_server_flooding_postmaster_is_refused_past_its_hourly_cap(tmp_path: Path) -> None:
    now = [time.time()]
    cap = postmaster.PER_CLIENT_PER_HOUR
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(open_text(tmp_path, relay), clock=lambda: now[0]) as gw,
    ):
        said = []
        for i in range(cap + 3):  # the second one big: a forward attaches its headers alone
            raw = anonymous(2 * BOUNCE_ATTACH_MAX if i == 1 else 0)
            said.append(await talk(gw.port, ["postmaster"], raw, "127.0.0.2", STRANGER))
        taken = forwards(gw)
        await sink.wait(cap)
        await asyncio.sleep(0.5)  # nothing more comes
        mailed = len(sink.messages)
        customer = await talk(gw.port, ["postmaster"], letter("<pm-9@acme.example>"))  # another address
        now[0] += postmaster.WINDOW_SECONDS + 1
        an_hour_later = await talk(gw.port, ["postmaster"], anonymous(), "127.0.0.2", STRANGER)
    for rcpt_said, data_said in said[:cap]:
        assert (
            rcpt_said == ["250 2.1.5 Recipient OK"] and data_said is not None and data_said.startswith("250")
        )
    for rcpt_said, data_said in said[cap:]:
        assert rcpt_said[0].startswith("451 4.7.1 <postmaster@") and data_said is None, rcpt_said
        assert "from your address in the last hour" in rcpt_said[0]
    assert len(taken) == cap and mailed == cap
    assert all(len(content) < BOUNCE_ATTACH_MAX + 16 * 1024 for content in taken)
    assert len(taken[1]) < BOUNCE_HEADERS_MAX + 16 * 1024
    assert b"text/rfc822-headers" in taken[1] and b"x" * 76 not in taken[1]
    assert customer[1] is not None and customer[1].startswith("250")
    assert an_hour_later[1] is not None and an_hour_later[1].startswith("250")


async def test_strangers_from_many_addresses_share_one_cap_the_customers_do_not(tmp_path: Path) -> None:
    cap, per_client = postmaster.PER_HOUR, postmaster.PER_CLIENT_PER_HOUR
    sources = [f"127.0.0.{2 + i // per_client}" for i in range(cap)]
    relay = free_port()
    async with smtp_sink(relay), running_gateway(open_text(tmp_path, relay)) as gw:
        said = [await talk(gw.port, ["postmaster"], anonymous(), src, STRANGER) for src in sources]
        past_cap = await talk(gw.port, ["postmaster"], anonymous(), "127.0.0.100", STRANGER)
        customer = await talk(gw.port, ["postmaster"], letter("<pm-10@acme.example>"))
        taken = len(forwards(gw))
    assert all(d is not None and d.startswith("250") for _, d in said)
    assert past_cap[0][0].startswith("451 4.7.1 <postmaster@") and past_cap[1] is None
    assert "from your address" not in past_cap[0][0]
    assert customer[1] is not None and customer[1].startswith("250")  # on the ACL: its own cap only
    assert taken == cap + 1


def burst(port: int, n: int, source: str) -> list[tuple[str, str | None]]:
    """`n` sessions that all pass RCPT before any sends its mail, then send it one after another."""
    clients = [smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) for _ in range(n)]
    try:
        said = []
        for c in clients:
            c.ehlo("mx.elsewhere.example")
            assert c.mail(STRANGER)[0] == 250
            code, text = c.rcpt("postmaster")
            said.append(f"{code} {text.decode()}")
        data = []
        for c, rcpt_said in zip(clients, said, strict=True):
            code, text = c.data(anonymous()) if rcpt_said.startswith("250") else (0, b"")
            data.append((rcpt_said, f"{code} {text.decode()}" if code else None))
        return data
    finally:
        for c in clients:
            c.close()


def assert_capped(said: list[tuple[str, str | None]], cap: int) -> None:
    assert all(rcpt_said.startswith("250") for rcpt_said, _ in said)  # all passed RCPT at once
    assert all(d is not None and d.startswith("250 2.0.0 OK: recorded") for _, d in said[:cap]), said
    for _, data_said in said[cap:]:
        assert data_said == postmaster.BUSY_DATA.format(postmaster.FROM_CLIENT), data_said


async def test_sessions_past_rcpt_at_once_are_counted_again_when_their_mail_comes(tmp_path: Path) -> None:
    # The cap is read at RCPT, before the mail is recorded: each session that passed it at once
    # forwarded one more, as many as the listener lets connect (the admin's mailbox flooded at once).
    cap = postmaster.PER_CLIENT_PER_HOUR
    relay = free_port()
    async with smtp_sink(relay), running_gateway(open_text(tmp_path, relay)) as gw:
        said = await asyncio.wait_for(asyncio.to_thread(burst, gw.port, cap + 3, "127.0.0.2"), 60)
        taken = len(forwards(gw))
        recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    assert_capped(said, cap)
    assert taken == recorded == cap  # those refused are not recorded: their senders try again


async def test_an_intake_workers_sessions_are_counted_again_in_the_daemons_write(tmp_path: Path) -> None:
    # The shipped config: the relay port served by a worker process, its writes sent to the daemon.
    cap, smtp_port, relay = postmaster.PER_CLIENT_PER_HOUR, free_port(), free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, relay_port=relay)
    text = text.replace("[smtp]\n", "[smtp]\nintake_processes = 1\n", 1)
    text = text.replace("[mail]\n", f'[mail]\nadmin_address = "{ADMIN}"\n', 1)
    text = text.replace('relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]')
    path = tmp_path / "config.toml"
    path.write_text(text + '\n[premium]\nnumbers = ["7355"]\n')
    async with smtp_sink(relay) as sink:
        proc = await start_daemon(path, smtp_port)
        try:
            said = await asyncio.wait_for(asyncio.to_thread(burst, smtp_port, cap + 2, "127.0.0.2"), 60)
            await sink.wait(cap)
            await asyncio.sleep(0.5)  # nothing more comes
        finally:
            await stop(proc)
    assert_capped(said, cap)
    assert len(sink.messages) == cap


# ---- what the count reads ------------------------------------------------------------------------

PM = f"postmaster@{DOMAIN}"


def recorded(reason: str, client_ip: str, account_id: int | None = None) -> Acceptance:
    return Acceptance(STRANGER, client_ip, account_id, None, None, None, "hello", "hello", [], 0, reason)


async def test_the_count_reads_the_hours_forwards_not_all_mail_recorded(tmp_path: Path) -> None:
    # Each RCPT to postmaster counted on the event loop among every mail recorded and not sent in
    # the hour (bounces, info@, refused mail): 80-100 ms with 100,000 of them, and anyone may send
    # that RCPT again and again. Measured in SQLite VM instructions (machine speed aside).
    cap, client = postmaster.PER_CLIENT_PER_HOUR, "192.0.2.9"

    async def count(others: int, name: str) -> tuple[int, str | None, str | None, str]:
        clock = Clock()
        s = Store.open(tmp_path / name, clock=clock)
        rows = [recorded(postmaster.FORWARDED, client)] * cap  # over an hour ago: not counted
        await s.write(lambda: [s.queue.insert_email(a) for a in rows])
        clock.t += postmaster.WINDOW_SECONDS + 1
        rows = [recorded("bounce", client)] * others + [recorded(postmaster.FORWARDED, client)] * (cap - 1)
        await s.write(lambda: [s.queue.insert_email(a) for a in rows])
        steps, under = vm_steps(s.db.conn, lambda: postmaster.busy(s, PM, client, False))
        await s.write(lambda: s.queue.insert_email(recorded(postmaster.FORWARDED, client)))
        at_cap = postmaster.busy(s, PM, client, True)  # on the ACL too: the client's cap is everyone's
        plan = str(s.db.conn.execute("EXPLAIN QUERY PLAN " + postmaster._HOUR, (clock.t,)).fetchall())
        s.close()
        return steps, under, at_cap, plan

    small, small_under, small_at_cap, plan = await count(20, "small.sqlite")
    large, large_under, large_at_cap, _ = await count(20_000, "large.sqlite")
    assert large < 2 * small + 10, (small, large)
    assert "emails_postmaster" in plan, plan
    assert small_under is None and large_under is None
    assert small_at_cap == large_at_cap == postmaster.BUSY.format(PM, "postmaster", postmaster.FROM_CLIENT)


async def test_an_ipv6_host_is_one_client_whichever_address_of_its_64_it_sends_from(tmp_path: Path) -> None:
    # Counted per address, a host with a /64 (the least one is given) had a cap for each of 2^64.
    cap = postmaster.PER_CLIENT_PER_HOUR
    s = Store.open(tmp_path / "db.sqlite", clock=Clock())
    rows = [recorded(postmaster.FORWARDED, f"2001:db8:1:2::{i:x}") for i in range(1, cap + 1)]
    rows += [recorded(postmaster.FORWARDED, f"::ffff:192.0.2.{i}") for i in range(1, cap + 1)]
    await s.write(lambda: [s.queue.insert_email(a) for a in rows])
    same_64 = postmaster.busy(s, PM, "2001:db8:1:2:ffff:ffff:ffff:fffe", False)
    next_64 = postmaster.busy(s, PM, "2001:db8:1:3::1", False)
    other_ipv4 = postmaster.busy(s, PM, "::ffff:192.0.2.200", False)  # IPv4 by a dual-stack listener
    s.close()
    assert same_64 == postmaster.BUSY.format(PM, "postmaster", postmaster.FROM_CLIENT)
    assert next_64 is None and other_ipv4 is None
