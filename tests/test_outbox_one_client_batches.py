"""One client's backlog through the outbox against a real relay (aiosmtpd on 127.0.0.1): a TV vote's
mails, one per vote to one address, went one at a time, each with a claim write and a result write
of its own (10-15 mails/s over a relay that takes 1,900/s). An answered recipient's mail now goes
on up to all but one send slot, each mail claimed and recorded as it goes (batches of several mails
a slot were tried and measured no faster with eight slots, and left mails unrecorded for a crash,
an erasure and a held dot to catch); a stop leaves what it had not sent untouched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.config import load_config
from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import Sink, config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_mailer_reuse import until

CLIENT = "tv@acme.example"
SENDER = "smsgw@sms.example.com"


def vote(n: int) -> bytes:
    return f"Subject: vote {n}\r\n\r\nKP123 yes {n}\r\n".encode()


class Counting(Sink):
    """Takes every mail after a short wait for its dot (a relay's queue file), counting how many
    transactions to the client it held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.most = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
        return await super().handle_DATA(server, session, envelope)


async def test_one_clients_backlog_goes_on_all_but_one_send_slot(
    tmp_path: Path,
) -> None:
    port = free_port()
    relay = Counting()
    async with HappySMSC() as smsc, smtp_sink(port, relay):
        config = tmp_path / "config.toml"
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, relay_port=port))
        async with running_gateway(load_config(config)) as gw:
            store, box = gw.store, gw.store.outbox
            await store.write(lambda: box.enqueue_mail("premium", SENDER, CLIENT, vote(0)))
            await relay.wait(1)
            await store.write(
                lambda: [box.enqueue_mail("premium", SENDER, CLIENT, vote(n)) for n in range(1, 61)]
            )
            await relay.wait(61, timeout=30)
            sent = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: store.db.conn.execute(sent).fetchone() == (61,))
            rows = store.db.conn.execute(
                "SELECT state, attempts, next_attempt_at FROM outbox ORDER BY id"
            ).fetchall()
    assert sorted(c for _f, _r, c in relay.messages) == sorted(vote(n) for n in range(61))
    assert {(state, attempts) for state, attempts, _claimed in rows} == {("sent", 1)}
    # Up to seven of the eight slots sent her mail at once (most of them, on a loaded machine);
    # one stays for everyone else's.
    assert 5 <= relay.most <= 7, relay.most


class StallsThird(Sink):
    """Takes the client's mails, but answers the dot of the third only once `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.started = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started += 1
        if self.started == 3:
            await self.release.wait()
        return await super().handle_DATA(server, session, envelope)


async def test_a_stop_cutting_off_a_backlog_leaves_only_the_mail_on_the_wire_suspect(tmp_path: Path) -> None:
    # The client answered once; her next ten go one at a time (two slots: one for her, one for
    # the others). The stop gives up on the second of them, whose dot the relay holds: the first is
    # recorded sent, the second stays as cut off after its dot, and the other eight are in the
    # queue as they were: no attempt counted, never a possible duplicate.
    port = free_port()
    relay = StallsThird()
    store = Store.open(tmp_path / "db.sqlite")
    try:
        async with smtp_sink(port, relay):
            store.db.serve()
            mailer = SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example")
            worker = OutboxWorker(store, mailer, concurrency=2)
            box = store.outbox
            running = asyncio.create_task(worker.run())
            await store.write(lambda: box.enqueue_mail("premium", SENDER, CLIENT, vote(0)))
            await until(lambda: len(relay.messages) == 1)
            await asyncio.sleep(0.1)  # recorded
            ids = await store.write(
                lambda: [box.enqueue_mail("premium", SENDER, CLIENT, vote(n)) for n in range(1, 11)]
            )
            due = dict(store.db.conn.execute(f"SELECT id, next_attempt_at FROM outbox WHERE id >= {ids[0]}"))
            await until(lambda: relay.started == 3)
            assert not await worker.stop(0.3)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            relay.release.set()
            rows = store.db.conn.execute(
                "SELECT id, state, attempts, unanswered, last_error, next_attempt_at FROM outbox"
                " WHERE id >= ? ORDER BY id",
                (ids[0],),
            ).fetchall()
            recovered = await store.write(box.recover_mail)
            suspects = store.db.conn.execute(
                "SELECT id FROM outbox WHERE unanswered > 0 OR last_error IS NOT NULL"
            ).fetchall()
            await mailer.close()
    finally:
        store.close()
    [first, wire, *rest] = rows
    assert first[1:4] == ("sent", 1, 0)
    assert wire[1:4] == ("active", 1, 1)
    assert [r[1:] for r in rest] == [("queued", 0, 0, None, due[r[0]]) for r in rest]
    assert recovered == 1
    assert suspects == [(wire[0],)]  # the one a restart sends again as a possible duplicate


async def test_mails_sent_before_a_slow_send_to_their_address_are_recorded_meanwhile(tmp_path: Path) -> None:
    # Batches of mails a slot (since removed) wrote their outcomes at the batch's end: while the
    # relay held one mail's dot (up to ten minutes), the mails sent before it were `active` on disk,
    # and a crash then sent them again. Each is on disk as sent while the next one's dot is held.
    port = free_port()
    relay = StallsThird()
    store = Store.open(tmp_path / "db.sqlite")
    try:
        async with smtp_sink(port, relay):
            store.db.serve()
            mailer = SmtpRelayMailer(MailSection(relay=f"127.0.0.1:{port}"), "gw.example")
            worker = OutboxWorker(store, mailer, concurrency=2)
            box = store.outbox
            running = asyncio.create_task(worker.run())
            await store.write(lambda: box.enqueue_mail("premium", SENDER, CLIENT, vote(0)))
            await until(lambda: len(relay.messages) == 1)
            await asyncio.sleep(0.1)  # recorded: the client is answered, her next mails go one after another
            ids = await store.write(
                lambda: [box.enqueue_mail("premium", SENDER, CLIENT, vote(n)) for n in range(1, 6)]
            )
            await until(lambda: relay.started == 3)  # ids[1]'s dot held
            states = f"SELECT state FROM outbox WHERE id = {ids[0]}"
            await until(lambda: store.db.conn.execute(states).fetchone() == ("sent",))
            held = store.db.conn.execute(f"SELECT state FROM outbox WHERE id = {ids[1]}").fetchone()
            relay.release.set()
            await until(lambda: len(relay.messages) == 6)
            assert await worker.stop(5)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            rows = store.db.conn.execute("SELECT state, attempts FROM outbox ORDER BY id").fetchall()
            await mailer.close()
    finally:
        store.close()
    assert held == ("active",)  # its send under way; the one before it on disk as sent meanwhile
    assert rows == [("sent", 1)] * 6


def test_a_claim_reads_a_bounded_stretch_of_the_due_mail_for_a_recipients_other_mail(tmp_path: Path) -> None:
    # The look for a recipient's other due mail read every due mail (no index leads by the
    # recipient): with 50,000 due after a relay's outage, 19 ms of the loop at each claim for a
    # recipient with one mail. Counted in SQLite's steps, not in time.
    from gateway.store import outboxclaim

    store = Store.open(tmp_path / "db.sqlite")
    try:
        with store.db.transaction():
            first = store.outbox.enqueue_mail("reply", SENDER, CLIENT, vote(0))
            for n in range(20_000):
                store.outbox.enqueue_mail("reply", SENDER, f"u{n}@acme.example", vote(n))
        conn = store.db.conn
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 100)
        ids = outboxclaim.claim_ids(conn, store.clock() + 1, 8, answered={CLIENT}, share=7)
        conn.set_progress_handler(None, 0)
    finally:
        store.close()
    assert first in ids
    # Counted every 100 SQLite steps: the read of all 20,000 due mails against its bounded stretch.
    assert steps[0] < 700, steps[0]  # 1,400 before, 260 now


def test_a_claim_reads_no_row_twice_and_an_empty_one_writes_nothing(tmp_path: Path) -> None:
    # Each claim read the due times of the mails it took by their keys (for putting back a batch's
    # unsent mails, which one mail a slot never has), and an empty claim ran its update on no ids.
    store = Store.open(tmp_path / "db.sqlite")
    try:
        store.outbox.enqueue_mail("reply", SENDER, CLIENT, vote(0))
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        [mail] = store.outbox.claim_mail(8)
        claim, seen[:] = list(seen), []
        assert store.outbox.claim_mail(8) == []  # the one due is being sent
        empty = list(seen)
        store.db.conn.set_trace_callback(None)
    finally:
        store.close()
    assert mail.rcpt == CLIENT
    verbs = [" ".join(s.split()[:2]) for s in claim]
    assert verbs == ["BEGIN IMMEDIATE", "SELECT rcpt,", "SELECT *", "UPDATE outbox", "COMMIT"], claim
    assert not any(s.startswith("UPDATE") for s in empty), empty
