"""Fault matrix rows that need a running gateway (RELIABILITY.md F2, F5, F7, F8).

Automatic mail (F15, F16) and the daemon stopping under traffic (F10) have modules of their own
(test_faults_automatic_mail.py, test_faults_stop.py); `to` and `smtp_code`, which other modules
import, stay here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
import structlog

from gateway.recovery import requeue_orphans
from gateway.smtp import replies
from gateway.store.db import Db, StoreReplaced
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import DisconnectingSMSC, HappySMSC, HeldSMSC, SilentSMSC
from tests.test_attempts_spent_maybe_sent import bounce_text


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def smtp_code(res: object) -> int | None:
    return getattr(getattr(res, "error", None), "smtp_code", None)


async def test_same_mail_twice_gives_one_sms(tmp_path: Path) -> None:
    # F2 / R-1.8: a client retry after a lost 250 (same Message-ID and text) sends nothing new. The
    # 250 lost to a kill -9 between the fsync and the reply: tests/test_stop_in_flight.py.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        msg = mail(to("601123456"), "Only once", Message_ID="<retry-1@acme.example>")
        first = await gw.send(msg)
        second = await gw.send(msg)
        assert first.error is None and second.error is None
        assert gw.store.admin.count_messages() == 1
        # A later mail is the marker: a second SMS for the retry would be queued before it.
        await gw.send(mail(to("601123457"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Only once", "Marker"]


async def test_same_message_id_with_another_text_is_another_mail(tmp_path: Path) -> None:
    # a retry is the same Message-ID *and* content. A sender reusing a Message-ID for a new
    # text (a script with a fixed id, a client that never changes it) sends a new mail: its SMS
    # goes, and a retry of that one is again recognised.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        first = mail(to("601123456"), "Shift starts at 6", Message_ID="<fixed-id@acme.example>")
        second = mail(to("601123456"), "Shift starts at 7", Message_ID="<fixed-id@acme.example>")
        for msg in (first, second, second):
            assert (await gw.send(msg)).error is None
        assert gw.store.admin.count_messages() == 2
        await gw.send(mail(to("601123457"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Shift starts at 6", "Shift starts at 7", "Marker"]


async def test_connection_loss_with_submits_in_flight_loses_nothing(tmp_path: Path) -> None:
    # F5: the SMSC drops the link with submits outstanding; all go again after the rebind, none
    # fails, none goes twice (counted per phone: a set of destinations hid a second copy). Everything
    # is queued before the SMSC is up, so the first bind finds it all due at once and the drops cut
    # into a full window. Three mails to one phone queued first reach it in the order accepted, and so
    # do three to another phone queued last: claimed but not yet sent as the link went, they were
    # handed back a few milliseconds apart, each due a second after its own hand-back, and a later
    # one was claimed before an earlier one (about one run in eight). Every phone's SMS are checked.
    port = free_port()
    cfg = make_config(tmp_path, smsc_port=port)
    # This SMSC sends no receipt that could settle a submit lost with its session: waiting the settle
    # for one (30 s) would only slow the test; the re-send at the bind is what it checks.
    cfg.smsc[0] = cfg.smsc[0].model_copy(update={"lost_submit_settle_seconds": 0})
    async with running_gateway(cfg) as gw:
        for n in (1, 2, 3):
            assert (await gw.send(mail(to("601129999"), f"In order {n} of 3"))).error is None
        numbers = [to(f"60112{i:04d}") for i in range(12)]
        assert (await gw.send(mail(numbers, "Through a flaky link"), numbers)).error is None
        for n in (1, 2, 3):
            assert (await gw.send(mail(to("601128888"), f"Handed back {n} of 3"))).error is None
        async with DisconnectingSMSC(after=3, times=2, port=port) as smsc:
            await gw.until(lambda: gw.states().count("delivered") == 18, timeout=60)
            await gw.until(lambda: {s for (s,) in gw.store.db.conn.execute(_PART_STATES)} == {"delivered"})
            await asyncio.sleep(0.5)  # a second copy of any part would be on its way by now
        assert smsc.drops == 2
        sent = Counter(s.destination for s in smsc.received)
        ones = {f"+4860112{i:04d}": 1 for i in range(12)}
        assert sent == Counter(ones | {"+48601129999": 3, "+48601128888": 3})
        by_phone: dict[str, list[str]] = {}
        for s in smsc.received:
            by_phone.setdefault(s.destination, []).append(s.text)
        assert by_phone["+48601129999"] == ["In order 1 of 3", "In order 2 of 3", "In order 3 of 3"]
        assert by_phone["+48601128888"] == ["Handed back 1 of 3", "Handed back 2 of 3", "Handed back 3 of 3"]


_PART_STATES = "SELECT DISTINCT state FROM parts"


async def test_a_submit_cut_off_by_a_lost_connection_keeps_its_turn_and_is_counted(tmp_path: Path) -> None:
    # F5 for one phone: the SMSC drops the link with the first of three SMS on the wire. It went
    # again last, after the two accepted behind it (its back-off put it behind them), and its
    # re-send was neither logged nor counted although the SMSC may have had it.
    async with DisconnectingSMSC(after=0, times=1) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        # Its SMSC sends no receipt of the submit it dropped the session on: it goes again at the rebind.
        link = cfg.smsc[0].model_copy(update={"window": 1, "lost_submit_settle_seconds": 0})
        cfg = cfg.model_copy(update={"smsc": [link]})
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                for n in (1, 2, 3):
                    assert (await gw.send(mail(to("601123456"), f"Message {n} of 3"))).error is None
                await gw.until(lambda: gw.states().count("delivered") == 3, timeout=30)
                assert gw.daemon.dispatcher.possible_duplicates("main") == 1
        assert smsc.drops == 1
        assert [s.text for s in smsc.received] == ["Message 1 of 3", "Message 2 of 3", "Message 3 of 3"]
        assert [e["part"] for e in logs if e["event"] == "mt.possible_duplicate"] == [1]


async def test_black_hole_smsc_expires_and_bounces(tmp_path: Path) -> None:
    # F7: no answers at all → response timeouts, retries, then expiry and one bounce to the sender.
    sink_port = free_port()
    async with SilentSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(
            tmp_path,
            smsc_port=smsc.port,
            relay_port=sink_port,
            validity_hours=0.1,  # 6 min, past 5 min, the shortest validity the config takes
            smsc_extra="",
        )
        cfg = cfg.model_copy(
            update={"smsc": [cfg.smsc[0].model_copy(update={"response_timeout_seconds": 0.3})]}
        )
        skew = [0.0]
        async with running_gateway(cfg, lambda: time.time() + skew[0]) as gw:
            await gw.send(mail(to("601123456"), "Into the void"))
            await smsc.wait_for(1)
            # The response timeout ends the attempt: the part waits for a resend (the SMSC may have it).
            parts = "SELECT state FROM parts"
            await gw.until(lambda: gw.store.db.conn.execute(parts).fetchall() == [("deferred",)])
            skew[0] = 3600  # an hour later, far past the validity: the part expires instead of a retry
            # Housekeeping's next look (every 15 s) taken now: the test is about what it decides.
            await gw.daemon.housekeeping.expire()
            await gw.until(lambda: gw.states() == ["expired"])
            await sink.wait(1)
            envelope_from, rcpts, content = sink.messages[0]
            # The DSN goes to the staff sender (the mail's envelope sender), from the null sender.
            assert (envelope_from, rcpts) == ("<>", [STAFF])
            assert "expired" in bounce_text(content)


async def test_queue_above_high_water_answers_451(tmp_path: Path) -> None:
    # F7: with the queue over its high-water mark, new mail is deferred with 451, never lost.
    port = free_port()  # no SMSC: everything stays queued
    async with running_gateway(make_config(tmp_path, smsc_port=port, queue_high_water=3)) as gw:
        numbers = [to(f"60112{i:04d}") for i in range(3)]
        assert (await gw.send(mail(numbers, "Fill the queue"), numbers)).error is None
        await gw.until(lambda: gw.daemon.dispatcher.backlog >= 3, timeout=5)
        res = await gw.send(mail(to("601123456"), "One too many"))
        assert smtp_code(res) == 451
        assert gw.store.admin.count_messages() == 3


async def test_disk_full_answers_452_and_writes_nothing(tmp_path: Path) -> None:
    # F8: a store that cannot grow answers 452 4.3.1, never 250, and leaves no half-written mail.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        pages = gw.store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        gw.store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        numbers = [to(f"60112{i:04d}") for i in range(10)]
        res = await gw.send(mail(numbers, "no room for this " * 90), numbers)
        assert smtp_code(res) == 452
        assert replies.STORE_FULL.split(" ", 2)[1].encode() in res.error.smtp_error  # type: ignore[union-attr]
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
        gw.store.db.conn.execute("PRAGMA max_page_count = 1073741823")
        assert (await gw.send(mail(to("601123456"), "Room again"))).error is None


async def test_a_failed_fsync_answers_451_stops_and_the_restart_takes_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # F8 (fsync EIO): never 250. The mail's rows are committed but may never reach the disk, so the
    # daemon takes no more mail (a retry would hear "already accepted") and stops with a failure
    # status (the service manager starts it again); the restart recovers what did reach the disk.
    # The reply and the gate's flag are kept and checked after the block: an assert failing inside
    # it was swallowed, as the stopping daemon's StoreReplaced is what `pytest.raises` expects.
    msg = mail(to("601123456"), "Unsynced", Message_ID="<eio-1@acme.example>")
    reply: object = None
    closing_at_reply = False
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        with pytest.raises(StoreReplaced, match="fsync failed"):
            async with running_gateway(cfg) as gw:
                real_fsync = os.fsync
                failures = [OSError(errno.EIO, "Input/output error")]

                wal_fd, path = gw.store.db._wal_fd, gw.store.db.path

                def mail_committed() -> bool:
                    with closing(sqlite3.connect(path)) as conn:
                        return conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] > 0

                def fsync(fd: int) -> None:  # the WAL's, once the mail is in it (not a start-up job's)
                    if fd == wal_fd and failures and mail_committed():
                        raise failures.pop()
                    real_fsync(fd)

                monkeypatch.setattr(os, "fsync", fsync)
                reply = await gw.send(msg)
                closing_at_reply = gw.daemon.gate.closing  # set before the 451 went out: no later 250
                await asyncio.wait_for(gw.task, 30)
        assert smtp_code(reply) == 451, reply
        assert replies.STORE_REPLACED.split(" ", 2)[1].encode() in reply.error.smtp_error  # type: ignore[attr-defined]
        assert closing_at_reply
        async with running_gateway(cfg) as gw:
            assert (await gw.send(msg)).error is None
            await gw.until(lambda: gw.states() == ["delivered"])
            assert gw.store.admin.count_messages() == 1


async def test_an_smsc_answer_the_store_cannot_take_yet_is_written_once_it_can(tmp_path: Path) -> None:
    # The SMSC took the SMS while another process held the database past a write's patience (a
    # full disk does the same): the answer was dropped, the hold meant instead failed the same way,
    # and the part stayed `active`, to be sent again at the next start. It is written once the
    # store takes writes again.
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            gw.store.db.background_patience = 0.3
            assert (await gw.send(mail(to("601123456"), "Answered while the disk is busy"))).error is None
            await smsc.wait_for(1)
            with closing(sqlite3.connect(cfg.gateway.state_dir / "smsgw.db", isolation_level=None)) as other:
                other.execute("BEGIN IMMEDIATE")
                smsc.answer(1)
                await asyncio.sleep(1.5)  # past the patience: the write failed at least once
                other.execute("COMMIT")
            part = "SELECT state, smsc_id IS NOT NULL FROM parts"
            await gw.until(lambda: gw.store.db.conn.execute(part).fetchall() == [("submitted", 1)])
        assert len(smsc.received) == 1


async def test_an_answer_waiting_to_be_written_is_no_orphan_after_a_dispatcher_crash(tmp_path: Path) -> None:
    # The store trouble that makes an answer's write wait can crash the dispatcher too (its claim
    # fails). The requeue before its restart must not take the answered part for an orphan: it was
    # sent again although the SMSC had taken it.
    async with HeldSMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            gw.store.db.background_patience = 0.3
            assert (await gw.send(mail(to("601123456"), "Taken once"))).error is None
            await smsc.wait_for(1)
            with (
                structlog.testing.capture_logs() as logs,
                closing(sqlite3.connect(cfg.gateway.state_dir / "smsgw.db", isolation_level=None)) as other,
            ):
                other.execute("BEGIN IMMEDIATE")
                smsc.answer(1)
                await gw.until(lambda: any(e["event"] == "mt.record_retry" for e in logs))
                other.execute("COMMIT")  # the trouble passes while the write waits for its retry
                await requeue_orphans(gw.store, gw.daemon.dispatcher)
                gw.daemon.dispatcher.wake()  # as its restart does: whatever is queued goes out
            await asyncio.sleep(2)
            part = "SELECT state, smsc_id IS NOT NULL FROM parts"
            assert gw.store.db.conn.execute(part).fetchall() == [("submitted", 1)]
        assert len(smsc.received) == 1


async def test_a_stop_after_the_mail_was_accepted_ends_its_sms_still_waiting(tmp_path: Path) -> None:
    # The SMSC is down when the mail comes; the phone answers STOP to an earlier SMS before the link
    # is up. Its SMS waiting in the queue went out all the same (the list was read at RCPT only);
    # now it fails with the reason, and the sender's bounce says why.
    port = free_port()
    async with smtp_sink(free_port()) as _sink:
        cfg = make_config(tmp_path, smsc_port=port)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Newsletter"))).error is None
            await gw.store.write(lambda: gw.store.policy.add_optout("+48601123456", word="STOP", source="mo"))
            async with HappySMSC(port=port) as smsc:
                await gw.until(lambda: gw.states() == ["failed"])
                assert smsc.received == []
            (error,) = gw.store.db.conn.execute("SELECT error FROM parts").fetchone()
            assert "went on the opt-out list" in error


async def test_a_store_failing_during_the_start_stops_the_daemon_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the start of grouped writes and the daemon being ready, links bind and take receipts,
    # workers start: a failed fsync there must stop the daemon as well, not leave it running on a
    # store that refuses every write (its stop hook is installed only once it is ready).
    serve = Db.serve

    def serve_then_fail(db: Db) -> None:
        serve(db)
        db._unsynced(OSError(errno.EIO, "Input/output error"), waiting=0)

    monkeypatch.setattr(Db, "serve", serve_then_fail)
    async with HappySMSC() as smsc:
        with pytest.raises(StoreReplaced, match="fsync failed"):
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                await asyncio.wait_for(gw.task, 20)
