"""The premium loop against real peers (issue 11): `smsgw premium add` → confirmation mail at a real
SMTP sink → the client confirms over SMTP → a phone's premium MO through the built-in SMSC (SMPP
and CIMD2) → mail to the client → the client answers over SMTP → one free SMS from the premium
number at the simulator.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog

from gateway import outboxworker
from gateway.cli.main import main
from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, running_gateway, send_blocking, smtp_sink
from tests.test_two_way import parsed

PHONE = "+48601123456"
CLIENT = "konkurs@acme.pl"


def premium_config(tmp_path: Path, protocol: str, relay: int) -> tuple[Path, object]:
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=cimd2 if protocol == "cimd2" else smpp,
        relay_port=relay,
        extra='\n[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "ops@example.com"\n',
    )
    text = text.replace('type = "smpp"', f'type = "{protocol}"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, parse_config(text, source="test", base_dir=tmp_path)


def reply_to(original: EmailMessage, body: str, sender: str = CLIENT) -> tuple[bytes, str]:
    """What a mail client sends on Reply: to Reply-To, the quote below."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = original["Reply-To"]
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["In-Reply-To"] = original["Message-ID"]
    quoted = "".join(f"> {line}\n" for line in original.get_content().splitlines())
    msg.set_content(f"{body}\n\n{quoted}")
    return msg.as_bytes(), original["Reply-To"].addresses[0].addr_spec


async def smtp(port: int, raw: bytes, rcpt: str, sender: str = CLIENT) -> object:
    return await asyncio.to_thread(send_blocking, port, raw, [rcpt], sender)


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_the_premium_loop(tmp_path: Path, protocol: str) -> None:
    relay = free_port()
    path, cfg = premium_config(tmp_path, protocol, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        core = gw.daemon.simulator.core
        port = gw.daemon.simulator.control_port
        added = ["-c", str(path), "premium", "add", "kp123", "--account", "acme", "--email", CLIENT]
        assert await asyncio.to_thread(main, [*added, "--number", "7355"]) == 0
        gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
        await sink.wait(1)  # the confirmation (queued by the CLI, sent by the daemon's outbox worker)
        _, rcpts, raw = sink.messages[0]
        ask = parsed(raw)
        assert rcpts == [CLIENT] and ask["Subject"] == "Confirm premium SMS service KP123"
        # A vote before the address confirmed is kept, not mailed, not lost.
        mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP123 vote A"}
        assert (await send_command("127.0.0.1", port, mo))["ok"]
        db = gw.store.db.conn
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("awaiting",))
        # The client presses Reply on the confirmation, from outside the relay networks' ACL.
        assert (await smtp(gw.port, *reply_to(ask, "yes, that is us"))).error is None
        await sink.wait(2)
        _, rcpts, raw = sink.messages[1]
        vote = parsed(raw)
        assert rcpts == [CLIENT] and vote["Subject"] == "KP123 · 7355 · +48 601 123 456"
        assert vote.get_content().startswith("vote A\n")
        # The client answers the vote: one free SMS from 7355 to the phone.
        answer, to = reply_to(vote, "Thank you, your vote counts! " + "x" * 200)
        result = await smtp(gw.port, answer, to)
        assert result.error is None and result.refused == {}  # type: ignore[attr-defined]
        await gw.until(lambda: len(core.records) == 1)
        sms = core.records[0]
        assert (sms["destination"], str(sms["source"])) == (PHONE, "7355")
        assert str(sms["text"]).startswith("Thank you, your vote counts!") and len(str(sms["text"])) == 160
        # A second answer to the same vote is refused at DATA, and nothing more is sent.
        again = await smtp(gw.port, reply_to(vote, "and again")[0], to)
        assert isinstance(again.error, smtplib.SMTPDataError) and again.error.smtp_code == 550  # type: ignore[attr-defined]
        await sink.wait(3)  # the notice that the first answer was cut (a later marker than any SMS)
        assert parsed(sink.messages[2][2])["Subject"].startswith(
            "Your answer to +48 601 123 456 was shortened"
        )
        assert len(core.records) == 1


async def test_answers_from_outside_the_acl_or_with_a_forged_token(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    with structlog.testing.capture_logs() as logs:
        async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
            added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
            assert await asyncio.to_thread(main, added) == 0
            gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
            await sink.wait(1)
            assert (await smtp(gw.port, *reply_to(parsed(sink.messages[0][2]), "ok"))).error is None
            mo = {"op": "mo", "source": PHONE, "destination": "7155", "text": "kp123 B"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
            await sink.wait(2)
            vote = parsed(sink.messages[1][2])
            answer, to = reply_to(vote, "free SMS for eve", sender="eve@evil.example")
            refused = await smtp(gw.port, answer, to, sender="eve@evil.example")
            assert isinstance(refused.error, smtplib.SMTPDataError) and refused.error.smtp_code == 550  # type: ignore[attr-defined]
            forged = to.replace(to[8:14], "aaaaaa")
            unknown = await smtp(gw.port, reply_to(vote, "guess")[0], forged)
            assert isinstance(unknown.error, smtplib.SMTPRecipientsRefused)  # type: ignore[attr-defined]
            # An SMS address from an untrusted sender is still refused (only answers come from anywhere),
            # and only that is logged as a refused sender: the confirmation and answers are none.
            sms = await smtp(
                gw.port, b"Subject: x\r\n\r\nhello\r\n", f"601123456@{DOMAIN}", sender="eve@evil.example"
            )
            assert isinstance(sms.error, smtplib.SMTPRecipientsRefused)  # type: ignore[attr-defined]
            refusals = [e for e in logs if e["event"] == "smtp.sender_refused"]
            assert [e["sender"] for e in refusals] == ["eve@evil.example"]
            # The refusal used up nothing: the client's own answer still goes out.
            assert (await smtp(gw.port, *reply_to(vote, "counted"))).error is None
            core = gw.daemon.simulator.core
            await gw.until(lambda: len(core.records) == 1)
            assert str(core.records[0]["text"]) == "counted" and str(core.records[0]["source"]) == "7155"
            rows = gw.store.db.conn.execute(
                "SELECT state, mail_from FROM premium_answers ORDER BY id"
            ).fetchall()
            assert rows == [("refused", "eve@evil.example"), ("sent", CLIENT)]


async def test_mail_a_command_queued_leaves_without_waiting_for_the_outboxs_next_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `premium add` (another process, another connection) queues the confirmation; the daemon's
    # outbox found it only at its next look, up to 5 s on. It now sees the other process's commit.
    monkeypatch.setattr(outboxworker, "IDLE_LOOK", 120.0)  # a look that would come after the sink's wait
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg):  # type: ignore[arg-type]
        added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
        assert await asyncio.to_thread(main, added) == 0
        await sink.wait(1, timeout=10)
        assert parsed(sink.messages[0][2])["Subject"] == "Confirm premium SMS service KP123"


async def test_a_commands_mail_queued_between_the_claim_and_the_wait_leaves_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox's idle wait compared the other process's commits with what it read as the wait
    # began: `premium add` committing after the claim found nothing and before that reading (the
    # daemon's first look, the command run at its start) was in neither, and its confirmation
    # waited for the next look (5 s; 120 s here).
    monkeypatch.setattr(outboxworker, "IDLE_LOOK", 120.0)
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
    claim = outboxworker.OutboxWorker._claim
    ran: list[int] = []

    async def claim_then_command(self: outboxworker.OutboxWorker, free: int) -> object:
        sending = await claim(self, free)
        if not ran:
            ran.append(await asyncio.to_thread(main, added))  # committed after the claim's read
        return sending

    monkeypatch.setattr(outboxworker.OutboxWorker, "_claim", claim_then_command)
    async with smtp_sink(relay) as sink, running_gateway(cfg):  # type: ignore[arg-type]
        await sink.wait(1, timeout=10)
    assert ran == [0]
    assert parsed(sink.messages[0][2])["Subject"] == "Confirm premium SMS service KP123"
