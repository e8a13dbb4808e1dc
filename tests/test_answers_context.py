"""An answer that comes after the reply window goes to `[replies] fallback_address` (R-3.3) with
what the operator needs to forward it: whose the last SMS to that phone from that number was (user,
account, when, how long ago) and that SMS quoted. It is never mailed to that user on its own: the
number may have changed hands since. An opt-out word after the window is acted on (R-2.4) and
mailed there too, saying the phone is now opted out: it was mailed to nobody, and the staff member
only learnt of it from a 550 to their next mail.

A real daemon with its built-in SMSC simulator, real SMTP in and a real relay sink out; the
daemon's clock is injected, so that the window passes without waiting.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import Config, parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed

OPS = "ops@gw.example"
PHONE = "+48601123456"
DAY = 86400.0


def answers_config(
    tmp_path: Path, relay: int, replies: str = f'fallback_address = "{OPS}"', accounts: str = ""
) -> Config:
    """The simulator on free ports, mail out to the relay sink on `relay`, `[replies]` as given,
    `accounts` besides acme's; written to tmp_path/config.toml too, for the CLI."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    extra = f"{accounts}\n[replies]\n{replies}\n"
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay, extra=extra)
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return parse_config(text, source=str(path), base_dir=tmp_path)


async def texted(gw: Any, body: str, user: str = STAFF) -> str:
    """`user`'s mail becomes an SMS the phone gets; the number it came from, in E.164."""
    core = gw.daemon.simulator.core
    before = len(core.records)
    msg = mail(f"601123456@{DOMAIN}", body=body, subject="Spotkanie")
    msg.replace_header("From", user)
    assert (await gw.send(msg, sender=user)).error is None
    await gw.until(lambda: len(core.records) == before + 1)
    # Taken by the SMSC by the gateway's clock too: a clock moved on before then dates the SMS later.
    sql = "SELECT COUNT(*) FROM parts WHERE state NOT IN ('submitted', 'delivered', 'unreported')"
    await gw.until(lambda: gw.store.db.conn.execute(sql).fetchone()[0] == 0)
    return "+" + str(core.records[-1]["source"]).lstrip("+")  # SMPP carries it without its "+"


async def answers(gw: Any, text: str) -> None:
    """The phone answers the last SMS it got, through the simulator's control port."""
    command = {"op": "mo", "reply_to_last": True, "text": text}
    sent = await send_command("127.0.0.1", gw.daemon.simulator.control_port, command)
    assert sent["ok"] and sent["source"] == PHONE


def last_sms(cfg: Config, at: float, days: int) -> str:
    when = datetime.fromtimestamp(at, ZoneInfo(cfg.gateway.timezone))
    return (
        f"the newest SMS to this phone from this number was {STAFF}'s (acme) on {when:%Y-%m-%d %H:%M},"
        f" {days} days ago, past its reply window of 7 days"
    )


def mails(gw: Any) -> list[tuple[str, str]]:
    """(kind, recipient) of each answer mail queued."""
    sql = "SELECT kind, rcpt FROM outbox WHERE kind LIKE 'reply%' ORDER BY id"
    return [(k, r) for k, r in gw.store.db.conn.execute(sql)]


async def test_an_answer_after_the_window_names_whose_sms_it_likely_answers(tmp_path: Path) -> None:
    # The fallback mail said only "no SMS was sent … within the reply window": the operator had to
    # dig for whose customer it was, and the staff member never learnt of the answer.
    relay = free_port()
    now = [time.time()]
    cfg = answers_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        sent_at = now[0]
        await texted(gw, "Czy 10:00 pasuje?")
        now[0] += 9 * DAY + 3600
        await answers(gw, "Tak, pasuje")
        await sink.wait(1)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [OPS]
        msg = parsed(raw)
        assert msg["Subject"] == f"SMS from {PHONE} to +48100200300 (no conversation)"
        body = msg.get_content()
        assert body.startswith("Tak, pasuje\n")
        assert last_sms(cfg, sent_at, 9) in " ".join(body.split())
        assert "not mailed to them, as the number may have changed hands" in " ".join(body.split())
        # The SMS it likely answers, quoted as the staff member's.
        quoted = body[body.index(f"{STAFF} wrote to") :]
        assert "Czy 10:00 pasuje?" in "".join(
            line[2:] for line in quoted.splitlines() if line.startswith("> ")
        )
        assert mails(gw) == [("reply-fallback", OPS)]  # ops decide: never to the staff member
        (note,) = gw.store.db.conn.execute("SELECT note FROM mo").fetchone()
        assert last_sms(cfg, sent_at, 9) in note  # `smsgw mo list` and the panel say it too


async def test_a_stop_after_the_window_is_mailed_to_the_fallback_saying_the_phone_is_opted_out(
    tmp_path: Path,
) -> None:
    # The STOP was put on the opt-out list and mailed to nobody, though a fallback address was set.
    relay = free_port()
    now = [time.time()]
    cfg = answers_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        sent_at = now[0]
        await texted(gw, "Nowa oferta na grudzień")
        now[0] += 12 * DAY
        await answers(gw, "STOP")
        await sink.wait(1, timeout=10)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [OPS]
        body = " ".join(parsed(raw).get_content().split())
        assert body.startswith("STOP ")
        assert "+48 601 123 456 is now opted out: further SMS to it are refused" in body
        assert last_sms(cfg, sent_at, 12) in body
        assert mails(gw) == [("reply-fallback", OPS)]
        assert gw.store.policy.is_opted_out(PHONE)
        assert [r[0] for r in gw.store.db.conn.execute("SELECT state FROM mo")] == ["optout"]
        # What the staff member meets next: their mail to the phone is refused.
        refused = await gw.send(mail(f"601123456@{DOMAIN}", body="Halo?"))
        assert refused.error is not None or refused.refused


async def test_a_stop_after_the_window_without_a_fallback_address_is_still_acted_on(tmp_path: Path) -> None:
    relay = free_port()
    now = [time.time()]
    cfg = answers_config(tmp_path, relay, replies="")
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        await texted(gw, "Nowa oferta")
        now[0] += 8 * DAY
        await answers(gw, "STOP")
        await gw.until(lambda: gw.store.db.conn.execute("SELECT state FROM mo").fetchone() == ("optout",))
        assert gw.store.policy.is_opted_out(PHONE)
        assert mails(gw) == [] and sink.messages == []
