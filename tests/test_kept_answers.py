"""The answers kept past `[replies] mails_per_phone_per_hour` reach the staff member once the phone
has been quiet for an hour, in one mail (SPEC R-3): they were kept in the gateway for good, where
staff cannot look. Through the daemon, its built-in SMSC and a real SMTP sink on an injected clock,
and below the network for the mail's limits and where it goes. Whose they are, how many go, how old
and in which words, and a refused mail of them retried, have modules of their own
(test_kept_answers_whose.py, test_kept_answers_refused.py); the helpers they import stay here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_conversations import World
from tests.test_two_way import parsed

T0 = 1_800_000_000.0
SETTLED = "SELECT state FROM mo WHERE state NOT IN ('new', 'segment', 'joined') ORDER BY id"


def flood_config(tmp_path: Path, relay: int, replies: str) -> Any:
    """A two-way gateway (`tests.test_two_way`) whose phones may have 3 answers mailed an hour."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay, extra=f"\n[replies]\n{replies}\n")
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def answer(gw: Any, text: str) -> None:
    """The phone answers the last SMS; returns once the gateway has settled the answer."""
    db = gw.store.db.conn
    before = len(db.execute(SETTLED).fetchall())
    sent = await send_command(
        "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": text}
    )
    assert sent["ok"]
    await gw.until(lambda: len(db.execute(SETTLED).fetchall()) == before + 1)


def states(gw: Any) -> list[str]:
    return [r[0] for r in gw.store.db.conn.execute(SETTLED)]


async def looked(seconds: float = 0.6) -> None:
    """Time for the housekeeping to look many times (every 0.05 s here) and the outbox to send."""
    await asyncio.sleep(seconds)


async def test_kept_answers_reach_the_staff_member_once_after_a_quiet_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A customer answers seven times in 40 minutes; the limit is 3 an hour. The last 4 answers
    # were kept for good ("smsgw mo list, or the panel", which staff do not have). Now: while
    # the phone keeps answering past the limit nothing more is mailed; an hour after its last
    # kept answer, one mail brings all four, to the user who wrote, threaded with the others;
    # restarts before and after it neither lose nor repeat it.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = flood_config(tmp_path, relay, "mails_per_phone_per_hour = 3")
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, lambda: now[0]) as gw:
            core = gw.daemon.simulator.core
            first = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie")
            assert (await gw.send(first)).error is None
            await gw.until(lambda: len(core.records) == 1)
            for n in range(6):
                now[0] += 60
                await answer(gw, f"answer {n}")
            await sink.wait(3)
            assert states(gw) == ["mailed"] * 3 + ["throttled"] * 3
            bodies = {parsed(raw).get_content().partition("\n")[0]: raw for _, _, raw in sink.messages}
            last_mailed = parsed(bodies["answer 2"]).get_content()
            assert "come together in one mail once an hour passes" in last_mailed
            now[0] += 1800  # still answering: kept, and the phone is not quiet yet
            await answer(gw, "still here")
            now[0] += 1800  # an hour since the first kept answer, half of one since the last
            await looked()
            assert len(sink.messages) == 3 and states(gw)[-4:] == ["throttled"] * 4
        async with running_gateway(cfg, lambda: now[0]) as gw:  # restarted while they wait
            now[0] += 1801  # an hour since the last kept answer
            await sink.wait(4)
            await looked()
            assert len(sink.messages) == 4
            assert states(gw) == ["mailed"] * 7
        async with running_gateway(cfg, lambda: now[0]) as gw:  # and again, after it went
            now[0] += 7200
            await looked()
            assert len(sink.messages) == 4 and states(gw) == ["mailed"] * 7
    _, rcpts, raw = sink.messages[3]
    digest = parsed(raw)
    assert rcpts == [STAFF]
    assert digest["From"].addresses[0].addr_spec == f"+48601123456@{DOMAIN}"  # a Reply answers the phone
    assert digest["In-Reply-To"] == parsed(sink.messages[0][2])["In-Reply-To"]
    body = digest.get_content()
    assert body.startswith("4 answers from +48 601 123 456 kept during a flood between ")
    texts = ["answer 3", "answer 4", "answer 5", "still here"]
    assert [body.index(f"\n{t}\n") for t in texts] == sorted(body.index(f"\n{t}\n") for t in texts)
    assert "more:" not in body


async def test_a_phone_that_keeps_flooding_gets_no_mail_of_its_kept_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A phone in a loop, an answer every 20 minutes past a limit of 1: it is never quiet for an
    # hour, so its kept answers wait: one answer an hour is mailed, nothing more until it stops.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = flood_config(tmp_path, relay, "mails_per_phone_per_hour = 1")
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        for n in range(12):
            now[0] += 60
            await answer(gw, f"loop {n}")
            now[0] += 19 * 60
            await looked(0.2)
        # An answer mailed, two kept, the next still within the hour of the mailed one: kept too.
        assert states(gw) == ["mailed", "throttled", "throttled", "throttled"] * 3
        await sink.wait(3)
        await looked()
        assert len(sink.messages) == 3
        bodies = [parsed(raw).get_content() for _, _, raw in sink.messages]
        assert all(body.startswith("loop ") for body in bodies)
        now[0] += 3600  # the loop stopped an hour ago: all nine in one mail, once
        await sink.wait(4)
        await looked()
        assert len(sink.messages) == 4 and states(gw) == ["mailed"] * 12
        assert parsed(sink.messages[3][2]).get_content().startswith("9 answers from +48 601 123 456 kept")


# ---- below the network: what one mail holds, and where it goes ----------------------------------


async def mail_due(w: World) -> int:
    from gateway.conversations import kept

    return await w.store.write(lambda: kept.mail_due(w.store, w.config))  # type: ignore[arg-type]


def kept_mails(w: World) -> list[tuple[str, str, str]]:
    return [(k, r, m.get_content()) for k, r, m in w.outbox() if k.startswith("reply-kept")]


async def test_one_mail_holds_fifty_answers_and_the_rest_follow_an_hour_later(tmp_path: Path) -> None:
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    for n in range(61):
        await w.mo(f"answer {n:02}")
        w.now += 10
    assert w.mo_states() == ["mailed"] + ["throttled"] * 60
    assert await mail_due(w) == 0  # not an hour since the last
    w.now += 3600
    assert await mail_due(w) == 1
    ((kind, rcpt, body),) = kept_mails(w)
    assert (kind, rcpt) == ("reply-kept", "anna@acme.example")
    assert body.startswith("60 answers from +48 601 123 456 kept during a flood between ")
    assert "\nanswer 50\n" in body and "answer 51" not in body
    assert "… and 10 more: they follow in the next mail, an hour from now at the earliest" in body
    assert w.mo_states() == ["mailed"] * 51 + ["throttled"] * 10
    assert await mail_due(w) == 0  # at most one an hour
    w.now += 3599
    assert await mail_due(w) == 0
    w.now += 2
    assert await mail_due(w) == 1
    body = kept_mails(w)[1][2]
    assert body.startswith("10 answers from") and "\nanswer 51\n" in body and "more:" not in body
    assert w.mo_states() == ["mailed"] * 61
    assert await mail_due(w) == 0


async def test_one_mail_holds_twenty_thousand_characters(tmp_path: Path) -> None:
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    for n in range(31):
        await w.mo(f"{n:02}" + "x" * 998)
        w.now += 10
    w.now += 3600
    assert await mail_due(w) == 1
    body = kept_mails(w)[0][2]
    # The first was mailed; of the 30 kept, 20 of 1000 characters fill the mail.
    assert "\n20" + "x" * 998 + "\n" in body and "\n21xxx" not in body
    assert "… and 10 more" in body


@pytest.mark.parametrize(
    ("fallback", "state"), [('fallback_address = "ops@example.com"', "fallback"), ("", "unmatched")]
)
async def test_the_kept_answers_of_a_user_gone_go_where_answers_go(
    tmp_path: Path, fallback: str, state: str
) -> None:
    # Anna was removed while her customer's answers were kept: a mail to her would reach a former
    # employee. They go to the fallback address, as her answers do now, or are recorded unmatched.
    w = World(tmp_path, f"mails_per_phone_per_hour = 1\n{fallback}")
    w.send("anna@acme.example")
    for n in range(3):
        await w.mo(f"answer {n}")
        w.now += 60
    w.store.accounts.remove_user("anna@acme.example")
    w.now += 3600
    await mail_due(w)
    assert w.mo_states() == ["mailed", state, state]
    mails = kept_mails(w)
    if fallback:
        ((kind, rcpt, body),) = mails
        assert (kind, rcpt) == ("reply-kept-fallback", "ops@example.com")
        assert body.startswith("2 answers from +48 601 123 456 kept during a flood")
        assert "anna@acme.example, who is no longer a user" in body
    else:
        assert mails == []


@pytest.mark.parametrize(
    ("fallback", "state"), [('fallback_address = "ops@example.com"', "fallback"), ("", "failed")]
)
async def test_a_refused_mail_of_kept_answers_goes_on_to_the_fallback(
    tmp_path: Path, fallback: str, state: str
) -> None:
    # Anna's mailbox is gone (550 at RCPT): each answer the mail carried goes to the fallback
    # address, as a single answer's refused mail does, or says it reached nobody.
    w = World(tmp_path, f"mails_per_phone_per_hour = 1\n{fallback}")
    w.send("anna@acme.example")
    for n in range(3):
        await w.mo(f"answer {n}")
        w.now += 60
    w.now += 3600
    assert await mail_due(w) == 1
    (mail_id,) = w.store.db.conn.execute("SELECT id FROM outbox WHERE kind = 'reply-kept'").fetchone()
    error = "SMTPRecipientRefused(550, '5.1.1 User unknown', 'anna@acme.example')"
    await w.store.write(lambda: w.store.outbox.finish_mail(mail_id, "failed", error))
    assert w.mo_states() == ["mailed", state, state]
    notes = [n for (n,) in w.store.db.conn.execute("SELECT note FROM mo WHERE id > 1 ORDER BY id")]
    assert all("550 5.1.1 User unknown" in n for n in notes)
    copies = [m for m in kept_mails(w) if m[0] == "reply-kept-fallback"]
    if fallback:
        ((_, rcpt, body),) = copies
        assert rcpt == "ops@example.com" and body.startswith("2 answers from +48 601 123 456 kept during")
        assert (
            "\nanswer 1\n" in body and "\nanswer 2\n" in body and "Not delivered to anna@acme.example" in body
        )
    else:
        assert copies == []
