"""A phone's answer whose mail the relay refuses for good goes to the fallback address (R-3, R-4).

A user sent an SMS and left the company; the phone answered, and the company relay refused the
answer mail at RCPT (`550 5.1.1 User unknown`). The outbox marked it failed and nothing more: the
answer was lost although `[replies] fallback_address` was set (the same failure reported later by
a bounce was forwarded there), and `smsgw mo list` still said "mailed". The same for a premium SMS
whose client's address is gone. Real mail over SMTP, the built-in simulator over SMPP, the daemon's
outbox worker against a real SMTP relay that refuses at RCPT, the CLI on the same SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.main import main
from gateway.web.counts import count
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_account_show import CLI
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_premium_loop import CLIENT, premium_config, reply_to, smtp
from tests.test_two_way import parsed, two_way_config

USER_UNKNOWN = "550 5.1.1 <{}>: User unknown"


class RefusingRelay(Sink):
    """The company relay: the addresses in `gone` are unknown at RCPT (or, `later`, greylisted for
    ever); everyone else's mail is taken and kept."""

    def __init__(self, *gone: str, later: bool = False) -> None:
        super().__init__()
        self.gone = {address.casefold() for address in gone}
        self.later = later
        self.refused: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.casefold() in self.gone:
            self.refused.append(address)
            return "450 4.2.0 Greylisted, try later" if self.later else USER_UNKNOWN.format(address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


async def sms_and_answer(gw: Any, answer: str = "Tak, będę o 10:00") -> None:
    """The user's SMS to the phone, and the phone's answer to it."""
    core = gw.daemon.simulator.core
    first = mail(
        f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie", Message_ID="<r1@acme.example>"
    )
    assert (await gw.send(first)).error is None
    await gw.until(lambda: len(core.records) == 1)
    command = {"op": "mo", "reply_to_last": True, "text": answer}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]


def outbox(gw: Any) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in gw.store.db.conn.execute("SELECT kind, rcpt, state FROM outbox ORDER BY id")]


async def refused(gw: Any, kind: str, rcpt: str) -> None:
    """Until the outbox has recorded the relay's refusal of the mail (as it did before the fix):
    what became of the answer is decided in that very write, and can be asserted at once."""
    await gw.until(lambda: (kind, rcpt, "failed") in outbox(gw))


def mo_row(gw: Any) -> tuple[str, str]:
    [row] = gw.store.db.conn.execute("SELECT state, note FROM mo ORDER BY id").fetchall()
    return row[0], row[1]


def mo_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`smsgw mo list` on the daemon's database, in this process once the daemon has stopped (its
    log lines would be read as the command's)."""
    path = tmp_path / "cli.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))  # the same state_dir
    [line] = CLI(path, capsys).ok("mo", "list")
    return line


async def test_an_answer_the_relay_refuses_goes_to_the_fallback_and_the_mo_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    async with (
        smtp_sink(port, RefusingRelay(STAFF)) as relay,
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        await sms_and_answer(gw)
        await refused(gw, "reply", STAFF)
        refusal = f"the mail relay refused the mail to {STAFF} ({USER_UNKNOWN.format(STAFF)})"
        assert mo_row(gw) == ("fallback", f"{refusal}; sent to {FALLBACK}")
        assert [(kind, rcpt) for kind, rcpt, _ in outbox(gw)] == [
            ("reply", STAFF),
            ("reply-fallback", FALLBACK),
        ]
        await relay.wait(1)
        assert relay.refused == [STAFF]
        _, rcpts, raw = relay.messages[0]
        assert rcpts == [FALLBACK]
        copy = parsed(raw)
        [phone] = copy["From"].addresses  # a Reply there answers the phone
        assert (phone.display_name, phone.addr_spec) == ("+48 601 222 222", "+48601222222@sms.example.com")
        assert copy["Subject"] == (
            f"SMS from +48601222222 to +48100200300 for {STAFF} (its mail was refused)"
        )
        assert copy["In-Reply-To"] is None  # the fallback has not the user's mail to thread it under
        body = copy.get_content()
        assert body.startswith("Tak, będę o 10:00\n")
        assert f"[Not delivered: {refusal}. Sent to the fallback address instead]" in body
        # What the user wrote that the phone answers, as the user's: it came with no quote at all.
        assert f", {STAFF} wrote to +48 601 222 222:\n> Spotkanie: Czy 10:00?\n" in body, body
        await gw.until(lambda: outbox(gw)[-1][2] == "sent")
        assert outbox(gw) == [("reply", STAFF, "failed"), ("reply-fallback", FALLBACK, "sent")]
        # The /metrics counter of answers mailed does not fall (Prometheus would read a reset).
        assert sorted(count(gw.store.db.conn).mo) == [("fallback", 1), ("mailed", 1)]
    line = mo_list(tmp_path, capsys)
    assert f"fallback   → {STAFF}  ({refusal}; sent to {FALLBACK})" in line, line


async def test_a_fallback_the_relay_refuses_too_is_not_sent_on_again(tmp_path: Path) -> None:
    port = free_port()
    async with (
        smtp_sink(port, RefusingRelay(STAFF, FALLBACK)) as relay,
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        await sms_and_answer(gw)
        await refused(gw, "reply", STAFF)
        assert [kind for kind, *_ in outbox(gw)] == ["reply", "reply-fallback"]
        await refused(gw, "reply-fallback", FALLBACK)
        await asyncio.sleep(1.0)  # a loop would have queued the next copy by now
        assert outbox(gw) == [("reply", STAFF, "failed"), ("reply-fallback", FALLBACK, "failed")]
        assert relay.refused == [STAFF, FALLBACK] and relay.messages == []
        state, note = mo_row(gw)
        assert state == "failed"
        assert note == (
            f"the mail relay refused the mail to {STAFF} ({USER_UNKNOWN.format(STAFF)}); sent to {FALLBACK};"
            f" the mail relay refused the mail to {FALLBACK} ({USER_UNKNOWN.format(FALLBACK)})"
        )


async def test_without_a_fallback_a_refused_answer_is_failed_with_the_relays_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=port)
    assert cfg.replies.fallback_address is None
    async with smtp_sink(port, RefusingRelay(STAFF)) as relay, running_gateway(cfg) as gw:
        await sms_and_answer(gw)
        await refused(gw, "reply", STAFF)
        refusal = f"the mail relay refused the mail to {STAFF} ({USER_UNKNOWN.format(STAFF)})"
        assert mo_row(gw) == (
            "failed",
            f"{refusal}; no other address to send it to ([replies] fallback_address)",
        )
        assert outbox(gw) == [("reply", STAFF, "failed")] and relay.messages == []
    line = mo_list(tmp_path, capsys)
    assert f"failed     → {STAFF}  ({refusal}; no other address" in line, line


async def test_an_answer_out_of_attempts_goes_to_the_fallback_too(tmp_path: Path) -> None:
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    cfg = cfg.model_copy(update={"mail": cfg.mail.model_copy(update={"max_attempts": 1})})
    async with smtp_sink(port, RefusingRelay(STAFF, later=True)) as relay, running_gateway(cfg) as gw:
        await sms_and_answer(gw, "Ok")
        await refused(gw, "reply", STAFF)
        said = f"the mail to {STAFF} was given up after 1 attempt (the last: 450 4.2.0 Greylisted, try later)"
        assert mo_row(gw)[0] == "fallback" and mo_row(gw)[1].startswith(said), mo_row(gw)
        await relay.wait(1)
        assert relay.messages[0][1] == [FALLBACK]
        assert said in parsed(relay.messages[0][2]).get_content()


async def test_a_premium_sms_whose_client_is_refused_goes_to_the_premium_fallback(tmp_path: Path) -> None:
    port = free_port()
    path, cfg = premium_config(tmp_path, "smpp", port)
    ops = "ops@example.com"  # [premium] fallback_address of that config
    async with smtp_sink(port, RefusingRelay()) as relay, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
        assert await asyncio.to_thread(main, added) == 0
        gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
        await relay.wait(1)
        assert (await smtp(gw.port, *reply_to(parsed(relay.messages[0][2]), "yes"))).error is None
        relay.gone.add(CLIENT)  # the client's address is gone since it confirmed
        mo = {"op": "mo", "source": "+48601123456", "destination": "7355", "text": "KP123 vote A"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
        await refused(gw, "premium", CLIENT)
        assert [(kind, rcpt) for kind, rcpt, _ in outbox(gw)[1:]] == [
            ("premium", CLIENT),
            ("premium-fallback", ops),
        ]
        await relay.wait(2)
        assert relay.refused == [CLIENT]
        _, rcpts, raw = relay.messages[1]
        copy = parsed(raw)
        assert rcpts == [ops] and copy["Subject"] == "KP123 · 7355 · +48 601 123 456"
        assert copy["Reply-To"] is None  # the client's answer token stays the client's
        refusal = f"the mail relay refused the mail to {CLIENT} ({USER_UNKNOWN.format(CLIENT)})"
        content = copy.get_content()
        assert content.startswith("vote A\n") and f"[Not forwarded to a client: {refusal}]" in content
        db = gw.store.db.conn
        await gw.until(lambda: outbox(gw)[-1][2] == "sent")
        assert outbox(gw)[1:] == [("premium", CLIENT, "failed"), ("premium-fallback", ops, "sent")]
        pmo = db.execute("SELECT state, note, price, service_id IS NOT NULL FROM premium_mo").fetchone()
        assert pmo[:2] == ("fallback", refusal) and pmo[3] == 1  # the money record stays the client's
        assert db.execute("SELECT state, note FROM mo").fetchone() == (
            "premium",
            f"KP123: mailed to {CLIENT}; {refusal}; sent to {ops}",
        )


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        # What the outbox worker records: a refusal at RCPT, one after DATA, out of attempts.
        (
            "[SMTPRecipientRefused(550, '5.1.1 <a@b.example>: User unknown', 'a@b.example')]",
            550,
            "550 5.1.1 <a@b.example>: User unknown",
        ),
        ("554 5.7.1 Message rejected\nas spam", 554, "554 5.7.1 Message rejected as spam"),
        ("SMTPServerDisconnected('Connection lost')", None, "Connection lost"),
        (
            "ConnectionRefusedError(111, 'Connect call failed')",
            None,
            "ConnectionRefusedError(111, 'Connect call failed')",
        ),
    ],
)
def test_the_relays_words_are_read_out_of_the_recorded_error(
    error: str, code: int | None, words: str
) -> None:
    from gateway.store.outbox import relay_reply  # here: the tests above load on a tree without it

    assert relay_reply(error) == (code, words)


async def test_an_answer_retried_by_the_admin_sends_no_second_copy_and_its_delivery_is_told(
    tmp_path: Path,
) -> None:
    # `smsgw outbox retry` of the refused answer: refused again, the fallback got a second copy and
    # the MO's note the same sentence twice; delivered (the mailbox made again), the MO went on
    # saying the answer was refused.
    port = free_port()
    relay = RefusingRelay(STAFF)
    async with smtp_sink(port, relay), running_gateway(own_config(tmp_path, "smpp", port)) as gw:
        store = gw.store
        await sms_and_answer(gw)
        await refused(gw, "reply", STAFF)
        await gw.until(lambda: outbox(gw)[-1][2] == "sent")  # the copy to the fallback
        _, first_note = mo_row(gw)
        assert await store.write(lambda: store.admin.retry_outbox()) == 1
        await gw.until(lambda: outbox(gw)[0][2] == "failed" and relay.refused == [STAFF, STAFF])
        await asyncio.sleep(0.5)  # a second copy would be queued in the refusal's own write
        assert [kind for kind, *_ in outbox(gw)] == ["reply", "reply-fallback"]
        assert mo_row(gw) == ("fallback", first_note)
        relay.gone.clear()  # the user's mailbox is back
        assert await store.write(lambda: store.admin.retry_outbox()) == 1
        await gw.until(lambda: outbox(gw)[0][2] == "sent")
        assert mo_row(gw) == ("fallback", f"{first_note}; mailed to {STAFF} after all, on a retry")


async def test_an_answer_that_reached_nobody_and_is_delivered_on_a_retry_is_mailed(tmp_path: Path) -> None:
    # Without a fallback the MO turned `failed`; delivered later by `smsgw outbox retry`, it stayed
    # `failed` (reached nobody) in `mo list`, the panel and /metrics.
    port = free_port()
    relay = RefusingRelay(STAFF)
    async with (
        smtp_sink(port, relay),
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=port)) as gw,
    ):
        store = gw.store
        await sms_and_answer(gw)
        await refused(gw, "reply", STAFF)
        state, note = mo_row(gw)
        assert state == "failed"
        relay.gone.clear()
        assert await store.write(lambda: store.admin.retry_outbox()) == 1
        await gw.until(lambda: outbox(gw)[0][2] == "sent")
        assert mo_row(gw) == ("mailed", f"{note}; mailed to {STAFF} after all, on a retry")
        counted = dict(count(store.db.conn).mo)
    assert counted["failed"] == 1 and counted["mailed"] >= 1  # the counters did not fall
