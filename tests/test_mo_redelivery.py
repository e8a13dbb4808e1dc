"""An SMS the SMSC delivers again versus the same text sent again by the phone (R-3, R-4, R-7.5), with
the daemon running against an SMSC peer over TCP.

The SMSC delivers an MO again when it did not get our acknowledgement (a crash after the MO was
stored, or the connection dropped right after the deliver_sm_resp), however long the daemon was
down; a phone that sends the same vote twice pays twice. Which is which is told by whether the
earlier copy's acknowledgement is known to have reached the SMSC, not by how long ago it came.
Time is moved, not slept: the in-process daemon takes an injected clock that the test sets ahead;
for the process killed with -9, the times it stored are moved back by the length of the outage.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import Config, parse_config
from smsc.base import ACK_LATE_SECONDS, OWED_SECONDS, Concat, InboundSms, MoAcks
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    config_text,
    free_port,
    mail,
    running_gateway,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_mo_crash import AckLosingSMSC, HoldingSink, mo_states, until
from tests.test_process import smsgw, start_daemon
from tests.test_two_way import parsed

PHONE = "+48601123456"
SENDER = "+48100200300"  # the acme account's sender in tests.conftest
CLIENT = "konkurs@acme.example"
PREMIUM = '\n[premium]\nnumbers = ["7355"]\n'
OUTAGE = 130.0  # longer than the 2 minutes an identical MO used to be taken for the same one


def charges(db_path: Path) -> list[tuple[str, int]]:
    with closing(sqlite3.connect(db_path, timeout=30)) as db:
        return list(db.execute("SELECT text, price FROM premium_mo ORDER BY id"))


def confirm_service(db_path: Path) -> None:
    """The client's address confirmed, as by its answer to the confirmation mail."""
    with closing(sqlite3.connect(db_path, timeout=30)) as db, db:
        db.execute("UPDATE premium_services SET verified_at = 1")


def first_lines(sink: Sink, rcpt: str) -> list[str]:
    """The first body line of each mail `rcpt` got, but the premium service's confirmation request."""
    found = []
    for _, rcpts, raw in sink.messages:
        msg = parsed(raw)
        if rcpts == [rcpt] and not str(msg["Subject"]).startswith("Confirm premium"):
            found.append(msg.get_content().split("\n")[0])
    return sorted(found)


def acks_recorded(db: sqlite3.Connection, n: int) -> bool:
    """At least `n` MOs are known to have had their acknowledgement read by the SMSC."""
    try:
        return db.execute("SELECT COUNT(*) FROM mo WHERE acked_at IS NOT NULL").fetchone()[0] >= n
    except sqlite3.OperationalError:  # a schema from before acknowledgements were recorded
        return True


async def confirmed_kp123(gw: Running, path: Path, sink: Sink | None = None) -> None:
    """Acme's premium service KP123, added by the CLI and confirmed (after its request was mailed
    to `sink`, if given)."""
    added = ["-c", str(path), "premium", "add", "KP123", "--account", "acme", "--email", CLIENT]
    assert await asyncio.to_thread(main, added) == 0
    if sink is not None:
        gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
        await sink.wait(1)
    confirm_service(gw.config.db_path)


@asynccontextmanager
async def premium_gateway(
    tmp_path: Path, smsc: HappySMSC | AckLosingSMSC, ahead: list[float]
) -> AsyncIterator[tuple[Running, Config, Sink]]:
    """The gateway on `smsc` with a confirmed premium service KP123 of acme, its clock `ahead[0]`
    seconds ahead of the real one, and the relay sink its mail goes to."""
    relay = free_port()
    async with smtp_sink(relay) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=relay, extra=PREMIUM)
        path = tmp_path / "config.toml"
        path.write_text(text)
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg, clock=lambda: time.time() + ahead[0]) as gw:
            await confirmed_kp123(gw, path, sink)
            yield gw, cfg, sink


async def ask_and_wait(smtp_port: int, smsc: HappySMSC | AckLosingSMSC) -> None:
    """A staff member's SMS to the phone, so that its answer has a conversation to go to."""
    to = f"601123456@{DOMAIN}"
    res = await asyncio.to_thread(send_blocking, smtp_port, mail(to, "Czy 10:00?", "Spotkanie"), [to])
    assert res.error is None
    await smsc.wait_for(1, timeout=20)


async def test_an_mo_stored_but_never_acknowledged_and_delivered_again_after_130_s_is_mailed_and_charged_once(
    tmp_path: Path,
) -> None:
    # (a) kill -9 after an answer and a premium vote were stored and mailed, before the SMSC had their
    # acknowledgements; the daemon stays down longer than 2 minutes; after the next bind the SMSC
    # delivers both again. Each is mailed once, the vote charged once.
    smtp_port, relay_port = free_port(), free_port()
    db_path = tmp_path / "state" / "smsgw.db"
    sink = HoldingSink()  # mails reach it only once released: the outbox's own resend plays no part
    sink.holding = False
    async with AckLosingSMSC() as smsc, smtp_sink(relay_port, sink):
        config = tmp_path / "config.toml"
        ports = {"smtp_port": smtp_port, "relay_port": relay_port}
        config.write_text(config_text(tmp_path, smsc_port=smsc.port, extra=PREMIUM, **ports))
        proc = await start_daemon(config, smtp_port)
        try:
            added = await asyncio.to_thread(
                smsgw, config, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT
            )
            assert added.returncode == 0, added.stderr
            await sink.wait(1)  # the confirmation request
            confirm_service(db_path)
            await ask_and_wait(smtp_port, smsc)
            sink.holding = True
            assert await smsc.inject_mo(PHONE, SENDER, "Tak, będę") == 1
            assert await smsc.inject_mo(PHONE, "7355", "KP123 vote A") == 1
            await until(lambda: sink.held == 2)  # both stored, with their mails to the staff and the client
            assert charges(db_path) == [("vote A", 300)]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        await until(lambda: not smsc.sessions)  # the SMSC saw the session go, both MOs unacknowledged
        with closing(sqlite3.connect(db_path, timeout=30)) as db, db:  # down OUTAGE seconds
            for table, columns in (
                ("mo", ("received_at", "acked_at")),
                ("premium_mo", ("received_at", "forwarded_at")),
                ("conversations", ("started_at", "last_mt_at")),
                # The users too: a user added after their conversation's SMS is another holder of the
                # address, whose predecessor's answer it must not get (`ConversationsRepo.gone`).
                ("users", ("created_at",)),
            ):
                for column in columns:
                    if column in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                        db.execute(f"UPDATE {table} SET {column} = {column} - ?", (OUTAGE,))
        smsc.losing = False
        sink.holding = False
        sink.release.set()
        proc = await start_daemon(config, smtp_port)
        try:
            await until(lambda: len(mo_states(db_path)) == 4, timeout=30)  # both delivered again
            assert await smsc.inject_mo(PHONE, "7355", "KP123 marker") == 1
            await until(lambda: len(mo_states(db_path)) == 5, timeout=30)
            await until(lambda: "marker" in first_lines(sink, CLIENT), timeout=30)
            await asyncio.sleep(0.5)  # a second mail of either would have gone out with the marker's
            assert first_lines(sink, STAFF) == ["Tak, będę"]
            assert first_lines(sink, CLIENT) == ["marker", "vote A"]
            assert charges(db_path) == [("vote A", 300), ("marker", 300)]
            assert mo_states(db_path) == ["mailed", "premium", "duplicate", "duplicate", "premium"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0


async def test_two_identical_premium_votes_acknowledged_seconds_apart_are_two_charges_and_two_mails(
    tmp_path: Path,
) -> None:
    # (b) The phone sends the same vote twice, 3 s apart; the SMSC got our acknowledgement of each.
    # Two SMS the phone paid for: two charges, two mails to the client.
    ahead = [0.0]  # the daemon's clock runs this far ahead of the real one
    async with HappySMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, sink):
        db = gw.store.db.conn
        for i in (1, 2):
            assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
            await gw.until(lambda i=i: smsc.stats.deliver_answered == i)  # type: ignore[misc]
            await gw.until(lambda i=i: acks_recorded(db, i))  # type: ignore[misc]
            ahead[0] += 3
        unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent'"
        await gw.until(lambda: db.execute(unsent).fetchone()[0] == 0)  # both votes mailed, or one
        await asyncio.sleep(0.3)
        assert smsc.stats.deliver_responses == [("mo", 0), ("mo", 0)]
        assert charges(cfg.db_path) == [("A", 300), ("A", 300)]
        assert first_lines(sink, CLIENT) == ["A", "A"]


async def test_two_identical_votes_the_smsc_delivers_back_to_back_are_two_charges_and_two_mails(
    tmp_path: Path,
) -> None:
    # (b') The phone voted twice while the link was down; the SMSC flushes both at once, each
    # delivered once, the second before our acknowledgement of the first was confirmed. The SMSC
    # cannot be delivering the first again on the same connection while it waits for our answer.
    ahead = [0.0]
    async with HappySMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, sink):
        db = gw.store.db.conn
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: smsc.stats.deliver_answered == 2)
        await gw.until(lambda: acks_recorded(db, 2))
        unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent'"
        await gw.until(lambda: db.execute(unsent).fetchone()[0] == 0)
        await asyncio.sleep(0.3)
        assert smsc.stats.deliver_responses == [("mo", 0), ("mo", 0)]
        assert charges(cfg.db_path) == [("A", 300), ("A", 300)]
        assert first_lines(sink, CLIENT) == ["A", "A"]


async def test_a_repeat_on_the_connection_counts_only_within_the_smscs_wait_and_not_after_a_refusal() -> None:
    # What makes an MO `repeated`: an identical one-part MO read on the same connection less than
    # ACK_LATE_SECONDS before, not answered with an error (the SMSC delivers a refused one again,
    # and that copy is the same SMS), read with it (or after our answer to it: `smsc.mocopies`;
    # read later with our answer unwritten, it is the SMSC's re-send, tests.test_smpp_mo_resent).
    acks = MoAcks(lambda _sms, _ok: None, lambda: True)
    vote = InboundSms(source=PHONE, destination="7355", text="KP123 A")
    assert not acks.arrived(vote, 100.0).repeated
    assert acks.arrived(vote, 100.5).repeated  # flushed with the first: the SMSC still waits for our answer
    assert not acks.arrived(vote, 101.0 + ACK_LATE_SECONDS).repeated  # it may have stopped waiting
    acks.refused(vote, 101.0 + ACK_LATE_SECONDS)
    assert not acks.arrived(vote, 102.0 + ACK_LATE_SECONDS).repeated  # the refused one, again
    assert not acks.arrived(replace(vote, text="KP123 B"), 103.0 + ACK_LATE_SECONDS).repeated
    long = replace(vote, concat=Concat(ref=1, total=2, seq=1))
    assert not acks.arrived(long, 104.0 + ACK_LATE_SECONDS).repeated
    assert not acks.arrived(long, 104.5 + ACK_LATE_SECONDS).repeated  # segments are judged whole


async def test_a_new_sms_answered_with_an_error_is_new_again_when_the_smsc_delivers_it_later() -> None:
    # A second genuine vote (read while the SMSC waited for our answer to the first) refused by
    # store trouble comes again after the SMSC's retry delay, well past ACK_LATE_SECONDS: that copy
    # is the second vote, not a redelivery of the first (which was stored), so it stays `repeated`,
    # once per refusal.
    acks = MoAcks(lambda _sms, _ok: None, lambda: True)
    vote = InboundSms(source=PHONE, destination="7355", text="KP123 A")
    assert not acks.arrived(vote, 100.0).repeated
    second = acks.arrived(vote, 100.5)
    assert second.repeated
    acks.refused(second, 100.5)
    assert acks.arrived(vote, 160.0).repeated  # the SMSC's retry, a minute on
    assert not acks.arrived(vote, 220.0).repeated  # owed once only: this one is a redelivery
    third = acks.arrived(vote, 220.5)
    acks.refused(third, 220.5)
    assert not acks.arrived(vote, 220.5 + OWED_SECONDS).repeated  # remembered for an hour at most


@pytest.mark.parametrize("later", [3.0, OUTAGE])
async def test_an_mo_delivered_again_after_an_ack_whose_connection_dropped_is_mailed_and_charged_once(
    tmp_path: Path, later: float
) -> None:
    # (c) The deliver_sm_resp of an answer and of a vote were written, but the connection dropped
    # before the SMSC read them (it answered nothing written after them): after the reconnect it
    # delivers both again, `later` seconds on. The same SMS: mailed once, charged once.
    ahead = [0.0]  # the daemon's clock runs this far ahead of the real one
    async with AckLosingSMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, sink):
        await ask_and_wait(gw.port, smsc)
        assert await smsc.inject_mo(PHONE, SENDER, "Tak, będę") == 1
        assert await smsc.inject_mo(PHONE, "7355", "KP123 vote A") == 1
        await sink.wait(3)
        # Both answered; what the gateway wrote after the answers went unanswered.
        await gw.until(lambda: smsc.stats.commands["ignored"] >= 3)
        ahead[0] += later
        smsc.losing = False
        smsc.drop_all()
        await gw.until(lambda: len(mo_states(cfg.db_path)) == 4)  # both delivered again
        assert await smsc.inject_mo(PHONE, "7355", "KP123 marker") == 1
        await gw.until(lambda: "marker" in first_lines(sink, CLIENT))
        await asyncio.sleep(0.3)
        assert first_lines(sink, STAFF) == ["Tak, będę"]
        assert first_lines(sink, CLIENT) == ["marker", "vote A"]
        assert charges(cfg.db_path) == [("vote A", 300), ("marker", 300)]
        assert mo_states(cfg.db_path) == ["mailed", "premium", "duplicate", "duplicate", "premium"]
