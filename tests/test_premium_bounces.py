"""Machine mail at the premium addresses (R-1.7, R-4.3), over SMTP against the running daemon.

A client's mail server bounces a premium SMS it could not deliver to the envelope sender the
gateway gave it, `premium-<token>@`: like a bounce on the relay port, it is recorded and handed
to the premium fallback address with an empty envelope sender, once however often it comes. No
automatic mail confirms a service's address: only a person answering the confirmation does.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.main import main
from gateway.config import Config, parse_config
from smsc.simulator.control import send_command
from tests.conftest import Sink, free_port, running_gateway, smtp_sink
from tests.test_bounces import FALLBACK, assert_forward_of, delivered, dsn, outbox
from tests.test_premium_loop import CLIENT, PHONE, premium_config, reply_to, smtp
from tests.test_two_way import parsed

DSN_SUBJECT = "Delivery Status Notification (Failure)"
NOT_A_CONFIRMATION = "250 2.0.0 OK: recorded, not sent as SMS ("


def config(tmp_path: Path, relay: int, *, fallback: bool, workers: int = 0) -> tuple[Path, Config]:
    """The premium loop's config (built-in SMSC), with test_bounces' fallback address or none, and
    the relay port in `workers` intake worker processes (0: in the daemon)."""
    path, _ = premium_config(tmp_path, "smpp", relay)
    line = f'fallback_address = "{FALLBACK}"' if fallback else ""
    text = path.read_text().replace('fallback_address = "ops@example.com"', line)
    text = text.replace("[smtp]\n", f"[smtp]\nintake_processes = {workers}\n", 1)
    path.write_text(text)
    return path, parse_config(text, source="test", base_dir=tmp_path)


async def add_service(gw: Any, path: Path, sink: Sink) -> EmailMessage:
    """`smsgw premium add KP123`; the confirmation mail it sends to the client."""
    added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
    assert await asyncio.to_thread(main, added) == 0
    gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
    await sink.wait(1)
    return parsed(sink.messages[0][2])


async def vote(gw: Any) -> None:
    mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP123 vote A"}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]


async def mailed_vote(gw: Any, path: Path, sink: Sink) -> str:
    """A confirmed service and a vote mailed to its client: the envelope sender of that mail,
    `premium-<token>@`, where the client's server sends its bounce."""
    ask = await add_service(gw, path, sink)
    assert (await smtp(gw.port, *reply_to(ask, "yes, that is us"))).error is None
    await vote(gw)
    await sink.wait(2)
    envelope_from, rcpts, _ = sink.messages[1]
    assert rcpts == [CLIENT] and envelope_from.startswith("premium-")
    return envelope_from


def answer_rows(gw: Any) -> list[tuple[str, str]]:
    return gw.store.db.conn.execute("SELECT state, reason FROM premium_answers ORDER BY id").fetchall()


def forwards(gw: Any) -> list[tuple[str, str, str]]:
    return [row for row in outbox(gw) if row[0] == "bounce-forward"]


async def test_a_bounce_of_a_premium_sms_mail_reaches_the_fallback_once(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        address = await mailed_vote(gw, path, sink)
        bounce = dsn("<dsn-premium@mx.acme.pl>")
        first = await delivered(gw.port, bounce, rcpt=address)
        assert forwards(gw) == [("bounce-forward", "", FALLBACK)]  # in the write the 250 waited for
        again = await delivered(gw.port, bounce, rcpt=address)  # our 250 was lost: sent again
        queued_again = forwards(gw)
        await sink.wait(3)
        await asyncio.sleep(0.5)  # a second forward, had one been queued, has been sent by now
        refused = answer_rows(gw)
        sms = len(gw.daemon.simulator.core.records)
    assert first.startswith("250 2.0.0 OK: recorded, not sent as SMS (delivery status notification")
    assert again == first
    assert queued_again == [("bounce-forward", "", FALLBACK)]
    assert len(sink.messages) == 3
    assert_forward_of(sink.messages[2], bounce, DSN_SUBJECT)
    told = parsed(sink.messages[2][2]).get_body(("plain",)).get_content()
    assert "To: premium SMS KP123 · 7355 · +48 601 123 456" in told
    # Still recorded against the MO, each time, and never an answer.
    assert [state for state, _ in refused] == ["refused", "refused"]
    assert all(reason.startswith("delivery status notification") for _, reason in refused)
    assert sms == 0


async def test_without_a_fallback_address_a_premium_bounce_goes_to_the_admin(tmp_path: Path) -> None:
    # Neither [premium] nor [replies] fallback_address: the operator's [mail] admin_address has it.
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=False)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        address = await mailed_vote(gw, path, sink)
        answer = await delivered(gw.port, dsn("<dsn-premium@mx.acme.pl>"), rcpt=address)
        queued = outbox(gw)
        refused = answer_rows(gw)
    assert answer.startswith("250 2.0.0 OK: recorded, not sent as SMS (delivery status notification")
    assert [(kind, rcpt) for kind, _from, rcpt in queued][1:] == [
        ("premium", CLIENT),
        ("bounce-forward", cfg.mail.admin_address),
    ]
    assert [state for state, _ in refused] == ["refused"]


def automatic_mails(to: str) -> list[tuple[str, bytes]]:
    """(envelope sender, mail) of what a client's server sends back on its own: none of it is consent."""
    head = f"From: {CLIENT}\r\nTo: {to}\r\n"
    return [
        (
            CLIENT,
            (
                f"{head}Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
                "Message-ID: <oof-1@acme.pl>\r\n\r\nI am away until Monday.\r\n"
            ).encode(),
        ),
        (
            "",  # RFC 3834: responders send from <>
            (
                f"{head}Subject: Re: Confirm premium SMS service KP123\r\nX-Autoreply: yes\r\n"
                "Message-ID: <oof-2@acme.pl>\r\n\r\nThank you for your mail.\r\n"
            ).encode(),
        ),
        (
            CLIENT,  # Outlook's, known by its subject and X-Auto-Response-Suppress only
            (
                f"{head}Subject: Out of office\r\nX-Auto-Response-Suppress: All\r\n"
                "Message-ID: <oof-3@acme.pl>\r\n\r\nBack on Monday.\r\n"
            ).encode(),
        ),
    ]


async def test_an_automatic_reply_does_not_confirm_a_premium_address(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        ask = await add_service(gw, path, sink)
        confirm = ask["Reply-To"].addresses[0].addr_spec
        await vote(gw)
        db = gw.store.db.conn
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("awaiting",))
        said = [
            await delivered(gw.port, raw, sender, rcpt=confirm) for sender, raw in automatic_mails(confirm)
        ]
        after_automatic = (
            db.execute("SELECT verified_at FROM premium_services").fetchone(),
            db.execute("SELECT used_at FROM premium_verifications").fetchone(),
            db.execute("SELECT state FROM premium_mo").fetchone(),
            [kind for kind, *_ in outbox(gw)],
        )
        # The token still works: the person who reads the confirmation answers it.
        assert (await smtp(gw.port, *reply_to(ask, "yes, that is us"))).error is None
        await sink.wait(2)
        confirmed = db.execute("SELECT state FROM premium_mo").fetchone()
    for reply in said:
        assert reply.startswith(NOT_A_CONFIRMATION) and "not a confirmation" in reply, reply
    assert "out-of-office reply" in said[0]
    assert after_automatic == ((None,), (None,), ("awaiting",), ["premium-verify"])
    assert confirmed == ("mailed",)
    assert parsed(sink.messages[1][2]).get_content().startswith("vote A\n")


async def test_a_bounce_to_a_confirmation_address_is_forwarded_and_confirms_nothing(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        ask = await add_service(gw, path, sink)
        confirm = ask["Reply-To"].addresses[0].addr_spec
        bounce = dsn("<dsn-confirm@mx.acme.pl>")
        said = [await delivered(gw.port, bounce, rcpt=confirm) for _ in range(2)]
        assert forwards(gw) == [("bounce-forward", "", FALLBACK)], said
        await sink.wait(2)
        await asyncio.sleep(0.5)
        verified = gw.store.db.conn.execute("SELECT verified_at FROM premium_services").fetchone()
    assert said[0] == said[1] and said[0].startswith(NOT_A_CONFIRMATION + "delivery status notification")
    assert "not a confirmation" in said[0]
    assert verified == (None,)
    assert len(sink.messages) == 2
    assert_forward_of(sink.messages[1], bounce, DSN_SUBJECT)
    told = parsed(sink.messages[1][2]).get_body(("plain",)).get_content()
    assert f"To: confirmation of premium service KP123, {CLIENT}" in told


@pytest.mark.parametrize("workers", [0, 1], ids=["relay-in-daemon", "relay-in-worker"])
async def test_the_forward_of_a_premium_bounce_names_the_server_that_sent_it(
    tmp_path: Path, workers: int
) -> None:
    # The forward said "Sent by: unknown": the client's address did not travel with the write (over
    # an intake worker's channel, as the shipped config runs the relay port, nor in the daemon), and
    # the recorded bounce had none either, unlike a bounce on the relay port's other addresses.
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True, workers=workers)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        assert (gw.daemon.intake is not None) == bool(workers)  # a worker, not the daemon, serves it
        address = await mailed_vote(gw, path, sink)
        confirm = parsed(sink.messages[0][2])["Reply-To"].addresses[0].addr_spec
        await delivered(gw.port, dsn("<dsn-premium@mx.acme.pl>"), rcpt=address)
        await delivered(gw.port, dsn("<dsn-confirm@mx.acme.pl>"), rcpt=confirm)
        await sink.wait(4)
        recorded = gw.store.db.conn.execute(
            "SELECT client_ip FROM emails WHERE automatic IS NOT NULL ORDER BY id"
        ).fetchall()
    told = [parsed(m[2]).get_body(("plain",)).get_content() for m in sink.messages[2:]]
    assert [line for text in told for line in text.splitlines() if line.startswith("Sent by:")] == [
        "Sent by: 127.0.0.1",
        "Sent by: 127.0.0.1",
    ]
    assert recorded == [("127.0.0.1",), ("127.0.0.1",)]
