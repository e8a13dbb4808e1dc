"""A user removed and the address added again for someone else: the new holder gets none of the
leaver's mail (R-3.3, README "Two-way SMS": answers to a removed user's SMS go to the fallback).

Three ways it leaked: an answer mail waiting in the outbox while the relay failed was sent to the
new holder once the relay came back; the bounce of the leaver's SMS, still queued at the removal,
went to the new holder, quoting its text and the customer's number; and the name the leaver's mail
gave the phone came back as the From of the new holder's answers. Real daemon, the built-in
simulator (or a fake SMSC) over SMPP, a real SMTP relay on 127.0.0.1, the SQLite file.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Sink, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_dsn_notify import transaction
from tests.test_kept_answers import T0, answer, flood_config, states
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import mo_row, outbox, sms_and_answer
from tests.test_two_way import parsed


class FlakyRelay(Sink):
    """The company relay: `451` at RCPT while `down`, then takes and keeps every mail."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.deferred = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.down:
            self.deferred += 1
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


async def readd(gw: Any, email: str = STAFF, account: str = "acme") -> None:
    """`smsgw user remove` then `smsgw user add` of the same address: a new employee is given it."""
    await gw.store.write(lambda: gw.store.accounts.remove_user(email))
    await gw.store.write(lambda: gw.store.accounts.add_user(email, account))


def no_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay is probed at the start only (nothing waits then), not every 30 s of the real clock.

    A probe that finds the relay answering makes a deferred mail due at once (`gateway.relayprobe`):
    one landing as the address changed hands was claimed for the leaver, and the relay, up again by
    then, took it. Nothing here waits for a probe: `due_now` makes the deferred mail due."""
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", 3600.0)


def waiting_out_backoff(gw: Any, now: float) -> bool:
    """Every mail in the outbox deferred and waiting out its back-off: none being sent, none due.

    The relay counts its `451` before the gateway records it, and a mail queued meanwhile may not be
    tried yet: a send claimed then went on while the address changed hands and reached the leaver."""
    rows = gw.store.db.conn.execute("SELECT state, next_attempt_at FROM outbox").fetchall()
    return bool(rows) and all(state == "queued" and due > now for state, due in rows)


def due_now(gw: Any) -> None:
    """Mail waiting out its back-off is due (what `smsgw outbox retry` does), not 30 s on."""
    with gw.store.outbox.transaction():
        gw.store.db.conn.execute("UPDATE outbox SET next_attempt_at = 0 WHERE state = 'queued'")
    gw.store.outbox.on_queued()


async def test_an_answer_waiting_in_the_outbox_goes_to_the_fallback_once_the_address_changed_hands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_probes(monkeypatch)
    port = free_port()
    async with (
        smtp_sink(port, FlakyRelay()) as relay,
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        await sms_and_answer(gw, "Prywatna odpowiedz dla Anny")
        await gw.until(lambda: relay.deferred >= 1 and outbox(gw) == [("reply", STAFF, "queued")])
        await readd(gw)
        relay.down = False
        await gw.store.write(lambda: due_now(gw))
        await relay.wait(1)
        await gw.until(lambda: outbox(gw)[-1][2] == "sent")
        assert outbox(gw) == [("reply", STAFF, "failed"), ("reply-fallback", FALLBACK, "sent")]
        assert [rcpts for _, rcpts, _ in relay.messages] == [[FALLBACK]]  # never to the new holder
        copy = parsed(relay.messages[0][2])
        said = f"not sent to {STAFF}: it answers {STAFF}, whose address was added again as a user after"
        assert said in copy.get_content() and "Prywatna odpowiedz dla Anny" in copy.get_content()
        # Held back by the gateway, not refused by the relay: its subject says so.
        assert str(copy["Subject"]).endswith(f"for {STAFF} (not sent to that address)"), copy["Subject"]
        state, note = mo_row(gw)
        assert state == "fallback" and note.startswith(said) and note.endswith(f"; sent to {FALLBACK}"), note


async def test_an_answer_waiting_for_a_removed_user_without_a_fallback_is_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_probes(monkeypatch)
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    cfg = cfg.model_copy(update={"replies": cfg.replies.model_copy(update={"fallback_address": None})})
    async with smtp_sink(port, FlakyRelay()) as relay, running_gateway(cfg) as gw:
        await sms_and_answer(gw, "Prywatna odpowiedz")
        await gw.until(lambda: relay.deferred >= 1 and outbox(gw) == [("reply", STAFF, "queued")])
        await gw.store.write(lambda: gw.store.accounts.remove_user(STAFF))
        relay.down = False
        await gw.store.write(lambda: due_now(gw))
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "failed")])
        assert relay.messages == []
        state, note = mo_row(gw)
        assert state == "failed" and f"{STAFF}, who is no longer a user of the gateway" in note, note


def _bounce_config(tmp_path: Path, smsc: int, relay: int, extra: str = "") -> Any:
    return make_config(
        tmp_path,
        smsc_port=smsc,
        relay_port=relay,
        extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n{extra}',
    )


async def test_the_bounce_of_a_leavers_sms_goes_to_the_fallback_not_to_the_new_holder(tmp_path: Path) -> None:
    relay_port, smsc_port = free_port(), free_port()
    async with (
        smtp_sink(relay_port) as relay,
        running_gateway(_bounce_config(tmp_path, smsc_port, relay_port)) as gw,
    ):
        # The SMSC is unreachable: the SMS waits in the queue while the address changes hands.
        sent = mail(f"601120013@{DOMAIN}", body="Wyniki badan pana Kowalskiego", subject="Wyniki")
        assert (await gw.send(sent)).error is None
        await readd(gw)
        async with FakeSMSC(port=smsc_port, reject_suffixes=["13"]):
            await gw.until(lambda: gw.states() == ["failed"])
            await relay.wait(1)
        [(_, rcpts, raw)] = relay.messages
        assert rcpts == [FALLBACK]
        report = parsed(raw)
        assert report["To"] == FALLBACK
        human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
        assert human.startswith(f"This report is about an SMS sent by {STAFF} of account acme.")
        assert "Wyniki badan pana Kowalskiego" in human  # the rest of the bounce as it was
        assert any(p.get_content_type() == "message/delivery-status" for p in report.walk())


async def test_a_bounce_of_the_users_own_sms_still_goes_to_them(tmp_path: Path) -> None:
    relay_port, smsc_port = free_port(), free_port()
    async with (
        smtp_sink(relay_port) as relay,
        running_gateway(_bounce_config(tmp_path, smsc_port, relay_port)) as gw,
    ):
        await readd(gw)  # added again before the mail: the mail is the new holder's own
        assert (await gw.send(mail(f"601120013@{DOMAIN}", body="Moje SMS"))).error is None
        async with FakeSMSC(port=smsc_port, reject_suffixes=["13"]):
            await gw.until(lambda: gw.states() == ["failed"])
            await relay.wait(1)
        [(_, rcpts, raw)] = relay.messages
        assert rcpts == [STAFF]
        human = next(p for p in parsed(raw).walk() if p.get_content_type() == "text/plain").get_content()
        assert "This report is about" not in human


async def test_the_name_a_leaver_gave_the_phone_is_not_shown_to_the_new_holder(tmp_path: Path) -> None:
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(own_config(tmp_path, "smpp", port)) as gw:
        core = gw.daemon.simulator.core
        named = EmailMessage()
        named["From"] = STAFF
        named["To"] = f'"Pacjent Onkologia Kowalski" <601222222@{DOMAIN}>'
        named["Subject"] = "Wizyta"
        named.set_content("Termin 12.03")
        assert (await gw.send(named, [f"601222222@{DOMAIN}"])).error is None
        await gw.until(lambda: len(core.records) == 1)
        await readd(gw)
        assert (
            await gw.send(mail(f"601222222@{DOMAIN}", body="Dzien dobry", subject="Oferta"))
        ).error is None
        await gw.until(lambda: len(core.records) == 2)
        command = {"op": "mo", "reply_to_last": True, "text": "Kto pisze?"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await relay.wait(1)
        [(_, rcpts, raw)] = relay.messages
        assert rcpts == [STAFF]
        answer = parsed(raw)
        assert "Kowalski" not in str(answer["From"]) and "Kowalski" not in raw.decode(errors="replace")


async def test_a_delivered_notice_of_a_leavers_sms_goes_to_the_fallback_saying_why(tmp_path: Path) -> None:
    relay_port, smsc_port = free_port(), free_port()
    async with (
        smtp_sink(relay_port) as relay,
        running_gateway(_bounce_config(tmp_path, smsc_port, relay_port)) as gw,
    ):
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))
        sent = mail(f"601120014@{DOMAIN}", body="Wyniki badan", subject="Wyniki")
        assert (await gw.send(sent)).error is None
        await readd(gw)
        async with FakeSMSC(port=smsc_port):
            await gw.until(lambda: gw.states() == ["delivered"])
            await relay.wait(1)
        [(_, rcpts, raw)] = relay.messages
        assert rcpts == [FALLBACK]
        notice = parsed(raw)
        assert notice["To"] == FALLBACK and notice["Subject"]
        text = notice.get_content()
        assert text.startswith(f"This report is about an SMS sent by {STAFF} of account acme."), text
        assert "601120014" in text  # the notice itself follows


async def test_with_a_notify_address_the_leavers_bounce_goes_there_once(tmp_path: Path) -> None:
    relay_port, smsc_port = free_port(), free_port()
    async with (
        smtp_sink(relay_port) as relay,
        running_gateway(_bounce_config(tmp_path, smsc_port, relay_port)) as gw,
    ):
        notify = "raporty@acme.example"
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", notify_address=notify))
        # A relaying MTA asked for a DSN on failure: the sender's own copy (RFC 3461) besides the rule's.
        rcpts = [(f"601120013@{DOMAIN}", ["NOTIFY=FAILURE"])]
        raw = mail(f"601120013@{DOMAIN}", body="Wyniki").as_bytes()
        said = await asyncio.to_thread(transaction, gw.port, [], rcpts, raw)
        assert said["DATA"][0] == 250, said
        await readd(gw)
        async with FakeSMSC(port=smsc_port, reject_suffixes=["13"]):
            await gw.until(lambda: gw.states() == ["failed"])
            await relay.wait(1)
            await gw.until(lambda: outbox(gw) and all(state != "queued" for *_, state in outbox(gw)))
        assert [rcpts for _, rcpts, _ in relay.messages] == [[notify]]


async def test_a_mail_of_kept_answers_waiting_in_the_outbox_goes_to_the_fallback_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    no_probes(monkeypatch)
    now = [T0]
    port = free_port()
    cfg = flood_config(tmp_path, port, f'mails_per_phone_per_hour = 1\nfallback_address = "{FALLBACK}"')
    async with smtp_sink(port, FlakyRelay()) as relay, running_gateway(cfg, lambda: now[0]) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00?", subject="Termin"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        for n in range(3):
            now[0] += 60
            await answer(gw, f"odpowiedz {n}")
        now[0] += 3601  # the phone quiet for an hour: its two kept answers are mailed in one
        await gw.until(lambda: [k for k, *_ in outbox(gw)] == ["reply", "reply-kept"])
        # Both tried since the hour passed and deferred, as recorded: waiting for the relay's second
        # `451` let the kept answers' first send start as the address changed hands, and the relay,
        # up again by then, took it for anna (CI runs under load).
        await gw.until(lambda: waiting_out_backoff(gw, now[0]))
        assert relay.deferred >= 2
        # A moment later, within the outbox's back-off (30 s): nothing comes due before the hand-over.
        now[0] += 1
        await readd(gw)
        relay.down = False
        await gw.store.write(lambda: due_now(gw))
        await relay.wait(2)
        await gw.until(lambda: all(state != "queued" for *_, state in outbox(gw)))
        assert {tuple(rcpts) for _, rcpts, _ in relay.messages} == {(FALLBACK,)}
        assert ("reply-kept", STAFF, "failed") in outbox(gw) and (
            "reply-kept-fallback",
            FALLBACK,
            "sent",
        ) in outbox(gw)
        assert states(gw) == ["fallback"] * 3
