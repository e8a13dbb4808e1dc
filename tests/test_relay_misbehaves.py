"""The outbox against a real relay (aiosmtpd on 127.0.0.1, on the test's loop) that misbehaves: it
never answers the final dot of one recipient's mail, ends every session's mail after two with 452,
or refuses the null sender of bounces; and what `smsgw status` (a process) says of each.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import load_config
from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.relayfaults import wake_relay_faults
from gateway.store.db import Store
from gateway.store.outboxhealth import outbox_health
from tests.conftest import STAFF, Sink, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_mailer_reuse import until
from tests.test_process import smsgw
from tests.test_status_exit import links_up

ALICE = "alice@acme.example"
SENDER = "smsgw@sms.example.com"


class SilentForAlice(Sink):
    """Takes every mail, but answers the final dot of mail to ALICE only once `release` is set (a
    content filter hung on her mailbox): the gateway waits its ten minutes for each."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.stalled = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if ALICE in envelope.rcpt_tos:
            self.stalled += 1
            await self.release.wait()
        return await super().handle_DATA(server, session, envelope)


def mail(n: int) -> bytes:
    return f"Subject: answer {n}\r\n\r\nanswer {n}\r\n".encode()


async def test_a_recipient_the_relay_never_answers_holds_one_send_slot_and_status_says_so(
    tmp_path: Path,
) -> None:
    # Six answers to alice, whose mail the relay took but never answered, held all four send slots
    # for the dot's ten minutes: the answers to everyone else waited 12+ min, and status said fine.
    port = free_port()
    relay = SilentForAlice()
    async with HappySMSC() as smsc, smtp_sink(port, relay):
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        async with running_gateway(load_config(config)) as gw:
            try:
                store, box = gw.store, gw.store.outbox
                await store.write(
                    lambda: [box.enqueue_mail("reply", SENDER, ALICE, mail(n)) for n in range(6)]
                )
                others = [f"u{n}@acme.example" for n in range(3)]
                await store.write(lambda: [box.enqueue_mail("reply", SENDER, r, mail(9)) for r in others])
                await relay.wait(3, timeout=15)  # the others' answers go meanwhile
                assert sorted(r for _f, [r], _c in relay.messages) == others
                # Her first send may reach its dot after the others' (a busy machine): waited for.
                await gw.until(lambda: relay.stalled >= 1)
                active = "SELECT rcpt FROM outbox WHERE state = 'active'"
                await gw.until(lambda: store.db.conn.execute(active).fetchall() == [(ALICE,)])
                assert relay.stalled == 1  # one of alice's mails on one slot, the rest wait their turn
                await gw.until(lambda: links_up(gw.config.state_dir))
                fine = await asyncio.to_thread(smsgw, config, "status")
                # Her send began six minutes ago (its start is kept with the mail being sent).
                await store.write(
                    lambda: store.db.conn.execute(
                        "UPDATE outbox SET next_attempt_at = ? WHERE state = 'active'", (time.time() - 360,)
                    )
                )
                silent = await asyncio.to_thread(smsgw, config, "status")
                relay.release.set()
                await relay.wait(9, timeout=15)
            finally:
                relay.release.set()  # else the stop waits for her send
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert silent.returncode == 1, silent.stdout + silent.stderr
    assert "trouble: 1 send(s) waiting over 5 min for the relay's answer" in silent.stdout, silent.stdout


async def test_a_send_a_stop_cuts_off_after_its_dot_counts_as_unanswered(tmp_path: Path) -> None:
    # A stop gave up on a send whose dot the relay never answered; the next start sent it again with
    # its count of unanswered sends unchanged: the relay got it three times with a count of one.
    # Counted, it is given up on as most likely arrived after UNANSWERED_SENDS in all.
    port = free_port()
    relay = SilentForAlice()
    store = Store.open(tmp_path / "db.sqlite")
    try:
        async with smtp_sink(port, relay):
            store.db.serve()
            mailer = SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example")
            worker = OutboxWorker(store, mailer)
            [mail_id, other] = await store.write(
                lambda: [store.outbox.enqueue_mail("dsn", "", r, mail(1)) for r in (ALICE, STAFF)]
            )
            running = asyncio.create_task(worker.run())
            await until(lambda: relay.stalled == 1 and len(relay.messages) == 1)
            assert not await worker.stop(0.3)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            relay.release.set()
            rows = store.db.conn.execute("SELECT id, state, unanswered FROM outbox ORDER BY id").fetchall()
            # At the next start: sent again as a possible duplicate, the cut-off send counted.
            await store.write(store.outbox.recover_mail)
            [again] = await store.write(lambda: store.outbox.claim_mail(4))
            await mailer.close()
    finally:
        store.close()
    assert rows == [(mail_id, "active", 1), (other, "sent", 0)]
    assert (again.id, again.maybe_sent, again.unanswered) == (mail_id, True, 1)


class BusyAfterTwo(Sink):
    """Answers MAIL 452 4.5.3 after two mails on one connection (a relay's per-connection limit)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        taken = getattr(session, "taken", 0)
        if taken >= 2:
            self.refused += 1
            return "452 4.5.3 Error: too many mails on this connection"
        session.taken = taken + 1
        envelope.mail_from = address
        return "250 2.1.0 OK"


async def test_a_session_whose_mail_got_a_4xx_is_ended_and_the_mail_goes_on_a_new_one(tmp_path: Path) -> None:
    # The session that answered MAIL 452 was kept and handed to the next mail, which got the same:
    # 190 of 200 mails were deferred in 15 s and took some three hours to drain.
    port = free_port()
    relay = BusyAfterTwo()
    async with smtp_sink(port, relay):
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=free_port(), relay_port=port))
        async with running_gateway(load_config(config)) as gw:
            store, box = gw.store, gw.store.outbox
            await store.write(
                lambda: [box.enqueue_mail("notice", SENDER, f"u{n}@acme.example", mail(n)) for n in range(20)]
            )
            await relay.wait(20, timeout=20)
            states = "SELECT state, attempts, last_error FROM outbox"
            await gw.until(lambda: {r[0] for r in store.db.conn.execute(states)} == {"sent"})
            rows = store.db.conn.execute(states).fetchall()
    assert relay.refused > 0
    assert rows == [("sent", 1, None)] * 20  # none deferred: each refused one went on a new session


class RefusingNullSender(Sink):
    """An authenticated relay that will not take `MAIL FROM:<>` (553), and takes any other mail."""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in ("", "<>"):  # aiosmtpd hands the null sender over as "<>"
            return "553 5.7.1 <>: Sender address rejected: not logged in"
        envelope.mail_from = address
        return "250 2.1.0 OK"


async def test_bounces_the_relay_refuses_for_their_null_sender_fail_at_once_and_status_names_it(
    tmp_path: Path,
) -> None:
    # Each bounce was retried for five days as a session error, then lost, while status exited 0
    # ("the relay was unreachable", of a relay that answered) as other mail went.
    port = free_port()
    relay = RefusingNullSender()
    async with HappySMSC() as smsc, smtp_sink(port, relay):
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        with capture_logs() as logs:
            async with running_gateway(load_config(config)) as gw:
                store, box = gw.store, gw.store.outbox
                await store.write(lambda: [box.enqueue_mail("dsn", "", STAFF, mail(n)) for n in range(2)])
                await store.write(lambda: box.enqueue_mail("notice", SENDER, STAFF, mail(3)))
                await relay.wait(1, timeout=15)
                states = "SELECT kind, state, attempts FROM outbox ORDER BY id"
                await gw.until(
                    lambda: [r[1] for r in store.db.conn.execute(states)] == ["failed"] * 2 + ["sent"]
                )
                rows = store.db.conn.execute(states).fetchall()
                await gw.until(lambda: links_up(gw.config.state_dir))
                res = await asyncio.to_thread(smsgw, config, "status")
    assert rows == [("dsn", "failed", 1), ("dsn", "failed", 1), ("notice", "sent", 1)]
    said = [e for e in logs if e["event"] == "mail.relay_refuses_null_sender"]
    assert len(said) == 1 and "allow MAIL FROM:<>" in said[0]["note"], said
    assert res.returncode == 1, res.stdout + res.stderr
    assert "2 bounce(s) refused: the relay refuses the null sender <>" in res.stdout, res.stdout
    assert "553 5.7.1 <>: Sender address rejected" in res.stdout
    assert "unreachable" not in res.stdout


def test_mail_deferred_for_the_relays_setup_goes_when_it_takes_mail_and_status_names_the_latest(
    tmp_path: Path,
) -> None:
    # A refused login (535) was the relay's fault to status but not to the wake-up: the mail waited
    # out its back-off of up to an hour after the relay took mail again. Status named the error of
    # the mail with the longest back-off (deferred hours ago), not the latest.
    now = 1_000_000.0
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: now)
    try:
        box = store.outbox
        old, login, busy, grey = (
            box.enqueue_mail("notice", SENDER, f"u{n}@acme.example", mail(n)) for n in range(4)
        )
        deferred = [
            # (id, attempts, next try, error): the old one deferred ~50 min ago with an hour's back-off
            (old, 10, now + 600, "SMTPConnectError('Error connecting to 127.0.0.1 on port 25')"),
            (login, 1, now + 25, "SMTPAuthenticationError(535, '5.7.8 Authentication credentials invalid')"),
            (busy, 1, now + 20, "SMTPSenderRefused(452, '4.5.3 Error: too many mails', '')"),
            (grey, 1, now + 29, "SMTPRecipientsRefused({'u3@acme.example': (450, 'greylisted')})"),
        ]
        with store.db.transaction():
            for mail_id, attempts, due, error in deferred:
                store.db.conn.execute(
                    "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, created_at = ?"
                    " WHERE id = ?",
                    (attempts, due, error, now - 7200, mail_id),
                )
        health = outbox_health(store.db.conn, now)
        woken = wake_relay_faults(box)
        due = [
            r[0] for r in store.db.conn.execute("SELECT id FROM outbox WHERE next_attempt_at <= ?", (now,))
        ]
    finally:
        store.close()
    assert health.last_error is not None and health.last_error.startswith("SMTPAuthenticationError(535")
    assert health.fault_kind == "login refused"
    assert health.stuck_for(now) is not None  # not a recipient's matter, waiting for two hours
    assert woken == 3 and sorted(due) == sorted([old, login, busy])  # the greylisted one keeps its back-off


def test_mail_deferred_for_itself_for_hours_is_trouble_while_other_mail_goes(tmp_path: Path) -> None:
    # Any mail sent in the last 30 minutes made the relay "fine": a mail whose end the relay answers
    # 451 at every try waited for hours, status exiting 0. A recipient's deferral stays no trouble.
    now = 1_000_000.0
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: now)
    try:
        box = store.outbox
        stuck, grey, sent = (
            box.enqueue_mail("notice", SENDER, f"u{n}@acme.example", mail(n)) for n in range(3)
        )
        rows = [
            (stuck, "queued", "SMTPDataError(451, '4.3.0 Error: queue file write error')", now - 7200, None),
            (
                grey,
                "queued",
                "SMTPRecipientsRefused({'u1@acme.example': (450, 'greylisted')})",
                now - 7200,
                None,
            ),
            (sent, "sent", None, now - 120, now - 60),
        ]
        with store.db.transaction():
            for mail_id, state, error, created, sent_at in rows:
                store.db.conn.execute(
                    "UPDATE outbox SET state = ?, last_error = ?, created_at = ?, sent_at = ?, attempts = 1,"
                    " next_attempt_at = ? WHERE id = ?",
                    (state, error, created, sent_at, now + 30, mail_id),
                )
        trouble = outbox_health(store.db.conn, now)
        with store.db.transaction():
            store.db.conn.execute("DELETE FROM outbox WHERE id = ?", (stuck,))
        fine = outbox_health(store.db.conn, now)
    finally:
        store.close()
    assert trouble.stuck_for(now) == 7200 and trouble.fault_kind is None
    assert fine.stuck_for(now) is None  # the greylisted one alone: the recipient's matter


def test_mail_refused_for_our_own_sender_keeps_its_back_off_when_a_bounce_goes(tmp_path: Path) -> None:
    # A relay refusing the gateway's own address (553 not owned by user) but taking bounces (from
    # <>): every bounce taken woke the refused answers, each woken send used an attempt, and the
    # answers failed after 125 of them in 90 s instead of being retried over five days.
    now = 1_000_000.0
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: now)
    try:
        box = store.outbox
        answer = box.enqueue_mail("reply", SENDER, ALICE, mail(1))
        said = f"5.7.1 <{SENDER}>: Sender address rejected: not owned by user"
        refused = f"SMTPSenderRefused(553, '{said}', '{SENDER}')"
        with store.db.transaction():
            store.db.conn.execute(
                "UPDATE outbox SET attempts = 3, next_attempt_at = ?, last_error = ?, created_at = ?"
                " WHERE id = ?",
                (now + 240, refused, now - 7200, answer),
            )
        woken = wake_relay_faults(box)
        health = outbox_health(store.db.conn, now)
    finally:
        store.close()
    assert woken == 0  # a bounce taken proves nothing of our own sender
    assert health.fault_kind == "our sender refused" and health.stuck_for(now) is not None
