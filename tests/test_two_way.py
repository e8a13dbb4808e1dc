"""The two-way loop against real peers (issue 10): SMTP in → built-in SMSC (SMPP or CIMD2) → MO back
through the simulator's control port → reply mail caught by a real SMTP sink → the user answers
it over SMTP → a second SMS to the phone from the same originating number.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink

PHONE = "+48601123456"
BOB = "bob@other.example"
REPLY = "FROM outbox WHERE kind = 'reply'"


def two_way_config(tmp_path: Path, protocol: str, *, relay_port: int, pool: str = "") -> Any:
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=cimd2 if protocol == "cimd2" else smpp,
        relay_port=relay_port,
        extra=f'\n[[account]]\nname = "other"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{BOB}"]\n'
        f'sender = "+48100200300"\n\n[replies]\npool = [{pool}]\n',
    )
    text = text.replace('type = "smpp"', f'type = "{protocol}"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


def e164(number: object) -> str:
    return "+" + str(number).lstrip("+")  # SMPP carries our international sender without "+"


def answer_to(reply: EmailMessage, body: str, sender: str = STAFF) -> EmailMessage:
    """What Outlook sends on Reply: To the From address, Re: subject, threading headers, quote."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = reply["From"]
    msg["Subject"] = (
        reply["Subject"] if str(reply["Subject"]).startswith("Re:") else f"Re: {reply['Subject']}"
    )
    msg["In-Reply-To"] = reply["Message-ID"]
    msg["References"] = reply["Message-ID"]
    quoted = "".join(f"> {line}\n" for line in reply.get_content().splitlines())
    msg.set_content(f"{body}\n\n{quoted}")
    return msg


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_the_two_way_loop(tmp_path: Path, protocol: str) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, protocol, relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(
            f"601123456@{DOMAIN}",
            body="Czy 10:00 pasuje?",
            subject="Spotkanie",
            Message_ID="<m1@acme.example>",
        )
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        number = e164(core.records[0]["source"])
        answer = {"op": "mo", "reply_to_last": True, "text": "Tak, będę o 10:00"}
        sent = await send_command("127.0.0.1", gw.daemon.simulator.control_port, answer)
        assert sent["ok"] and (sent["source"], sent["destination"]) == (PHONE, number)
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        reply = parsed(raw)
        assert rcpts == [STAFF]
        assert reply["From"].addresses[0].addr_spec == f"+48601123456@{DOMAIN}"
        assert reply["In-Reply-To"] == "<m1@acme.example>"
        assert reply["Subject"] == "Re: Spotkanie (SMS from +48 601 123 456)"
        assert reply.get_content().startswith("Tak, będę o 10:00\n")
        # The user presses Reply: a second SMS to the phone, from the same number.
        assert (await gw.send(answer_to(reply, "Świetnie, do zobaczenia"))).error is None
        await gw.until(lambda: len(core.records) == 2)
        second = core.records[1]
        assert (second["destination"], e164(second["source"])) == (PHONE, number)
        assert "Świetnie, do zobaczenia" in str(second["text"]) and "> " not in str(second["text"])


async def test_two_users_one_phone_pool_of_two(tmp_path: Path) -> None:
    # Each answer reaches the user whose SMS it answers, though both wrote to the same phone.
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay, pool='"+48500100200", "+48500100201"')
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        port = gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Anna here", subject="A"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        bob = mail(f"+48601123456@{DOMAIN}", body="Bob here", subject="B")
        bob.replace_header("From", BOB)
        assert (await gw.send(bob, sender=BOB)).error is None
        await gw.until(lambda: len(core.records) == 2)
        by_text = {str(r["text"]).split(": ", 1)[1]: e164(r["source"]) for r in core.records}
        assert set(by_text.values()) == {"+48500100200", "+48500100201"}
        for to, text in ((by_text["Bob here"], "to Bob"), (by_text["Anna here"], "to Anna")):
            sent = await send_command(
                "127.0.0.1", port, {"op": "mo", "source": PHONE, "destination": to, "text": text}
            )
            assert sent["ok"]
        await sink.wait(2)
        got = {parsed(raw).get_content().split("\n")[0]: rcpts[0] for _, rcpts, raw in sink.messages}
        assert got == {"to Bob": BOB, "to Anna": STAFF}


async def test_a_reply_waits_out_a_relay_outage(tmp_path: Path) -> None:
    # The relay is down when the answer arrives: the mail stays queued, retried, then delivered.
    relay = free_port()
    now = [1_800_000_000.0]
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with running_gateway(cfg, clock=lambda: now[0]) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        sent = await send_command(
            "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": "pong"}
        )
        assert sent["ok"]

        def deferred() -> bool:
            row = gw.store.db.conn.execute(
                "SELECT state, attempts FROM outbox WHERE kind = 'reply'"
            ).fetchone()
            return row is not None and row == ("queued", 1)

        await gw.until(deferred)
        async with smtp_sink(relay) as sink:
            now[0] += 3600
            gw.store.outbox.on_queued()
            await sink.wait(1)
            assert parsed(sink.messages[0][2]).get_content().startswith("pong")
        await gw.until(
            lambda: (
                gw.store.db.conn.execute("SELECT state FROM outbox WHERE kind = 'reply'").fetchone()[0]
                == "sent"
            )
        )


async def test_shipped_capture_writes_the_reply_as_eml(tmp_path: Path) -> None:
    # `relay = "maildir:..."`: no mail server needed to see the reply.
    cfg = two_way_config(tmp_path, "smpp", relay_port=1)
    cfg = cfg.model_copy(update={"mail": cfg.mail.model_copy(update={"relay": "maildir:mail"})})
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping", subject="Test"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        await send_command(
            "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": "OK"}
        )
        await gw.until(
            lambda: any((tmp_path / "mail").glob("*.eml")) if (tmp_path / "mail").exists() else False
        )
        (path,) = (tmp_path / "mail").glob("*.eml")
        reply = parsed(path.read_bytes())
        assert reply["Subject"] == "Re: Test (SMS from +48 601 123 456)" and reply["Delivered-To"] == STAFF


async def test_a_multipart_mo_sent_shuffled_is_mailed_whole(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "cimd2", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        text = "one two three four five six"
        command = {"op": "mo", "reply_to_last": True, "text": text, "parts": 3, "shuffle": True}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        assert parsed(sink.messages[0][2]).get_content().startswith(text + "\n")


async def test_reply_to_last_answers_the_last_sms_a_phone_got(tmp_path: Path) -> None:
    # A number ending in 13 fails at the simulator: that phone never read its SMS, and the sender got
    # a bounce for it. "--reply-to-last" answers the SMS sent before it, which the phone has, also
    # from the log file alone (a restarted simulator keeps no SMS in memory).
    cfg = two_way_config(tmp_path, "smpp", relay_port=1)
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for number in ("601123456", "601123413", "601120000"):
            assert (await gw.send(mail(f"{number}@{DOMAIN}", body=f"to {number}"))).error is None
        await gw.until(lambda: len(core.records) == 3)
        await gw.until(lambda: [r["verdict"] for r in core.records] == ["delivered", "failed", "rejected"])
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        answer = await send_command("127.0.0.1", gw.daemon.simulator.control_port, command)
        assert answer["ok"] and answer["source"] == PHONE
        core.records.clear()  # as after a restart: only the log file remembers
        answer = await send_command("127.0.0.1", gw.daemon.simulator.control_port, dict(command, text="Nie"))
        assert answer["ok"] and answer["source"] == PHONE
