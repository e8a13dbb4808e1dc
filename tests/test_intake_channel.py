"""The write channel between the daemon and an intake worker, both ends in one test process.

The daemon's side (`IntakeWorkers._serve`) runs on a real store over one end of a socketpair;
the worker's `Channel` sends its writes over the other end: answers come back matched by request
id in whatever order the commits finish, store errors arrive as the same exception classes, and
an answer whose worker is gone is logged and dropped while the write itself stays committed.
"""

from __future__ import annotations

import asyncio
import pickletools
import socket
import sqlite3
from collections import Counter
from dataclasses import FrozenInstanceError, dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from acl.limits import Quota
from gateway import premium
from gateway.config import parse_config
from gateway.conversations import Opening
from gateway.intake_channel import pack_request, unpack_request
from gateway.intake_child import Channel
from gateway.intake_workers import IntakeWorkers
from gateway.queuedepth import Backlog
from gateway.smtp import replies
from gateway.smtp.accept import Limits, Notice, Writes
from gateway.smtp.outcome import OutcomeUnknown
from gateway.store.db import Store, StoreBusy, StoreReplaced
from gateway.store.records import Acceptance, AcceptResult, NewMessage, NewPart
from tests.conftest import STAFF, free_port
from tests.test_intake_workers import serving_store, until, worker_config_text


class HeldWrites(Writes):
    """The daemon's writes, each info@ answer held until the test lets it go (by recipient)."""

    def __init__(self, config: Any, store: Store) -> None:
        super().__init__(config, store)
        self.held: dict[str, asyncio.Event] = {}
        self.fail: BaseException | None = None

    async def info(self, rcpt: str, content: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        if rcpt in self.held:
            await self.held[rcpt].wait()
        await super().info(rcpt, content)


def outbox_rows(store: Store) -> list[str]:
    return [r[0] for r in store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]


@dataclass
class DaemonSide:
    workers: IntakeWorkers
    writes: HeldWrites
    store: Store
    theirs: socket.socket  # the worker's end
    serving: asyncio.Task[None]
    channel: Channel | None = None

    async def open_channel(self) -> Channel:
        self.channel = Channel(self.theirs)
        await self.channel.open()
        return self.channel


@pytest.fixture
async def side(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = parse_config(worker_config_text(tmp_path, free_port(), 0, 1), source="test", base_dir=tmp_path)
    store = serving_store(cfg)
    writes = HeldWrites(cfg, store)
    workers = IntakeWorkers(cfg, [], writes=writes, backlog=lambda: Backlog(7), replies=Counter())
    ours, theirs = socket.socketpair()
    d = DaemonSide(
        workers, writes, store, theirs, asyncio.create_task(workers._serve(workers.slots[0], ours))
    )
    try:
        yield d
    finally:
        if d.channel is not None:
            d.channel.framed.close()
        else:
            theirs.close()
        await asyncio.wait_for(d.serving, 10)
        await asyncio.gather(*workers._writing, return_exceptions=True)
        store.close()


async def test_answers_come_back_by_request_id_in_the_order_the_commits_finish(side: DaemonSide) -> None:
    channel = await side.open_channel()
    side.writes.held["first@acme.example"] = asyncio.Event()
    first = asyncio.create_task(channel.request("info", "first@acme.example", b"one"))
    await until(lambda: side.workers._writing, "the first write at the daemon")
    second = await asyncio.wait_for(channel.request("info", "second@acme.example", b"two"), 10)
    assert second is None and not first.done()
    assert outbox_rows(side.store) == ["second@acme.example"]
    side.writes.held["first@acme.example"].set()
    assert await asyncio.wait_for(first, 10) is None
    assert outbox_rows(side.store) == ["second@acme.example", "first@acme.example"]


@pytest.mark.parametrize(
    "error",
    [
        StoreBusy("database is locked by another process"),
        StoreReplaced("database was replaced"),
        OSError(28, "No space left on device"),
    ],
)
async def test_a_store_error_is_raised_in_the_worker_as_the_same_class(
    side: DaemonSide, error: Exception
) -> None:
    channel = await side.open_channel()
    side.writes.fail = error
    with pytest.raises(type(error)) as raised:
        await asyncio.wait_for(channel.request("info", STAFF, b"x"), 10)
    assert type(raised.value) is type(error)
    if isinstance(error, OSError):
        assert raised.value.errno == 28  # type: ignore[attr-defined]


async def test_a_full_disk_keeps_its_sqlite_error_code(side: DaemonSide) -> None:
    channel = await side.open_channel()
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    side.writes.fail = full
    with pytest.raises(sqlite3.OperationalError) as raised:
        await asyncio.wait_for(channel.request("info", STAFF, b"x"), 10)
    assert raised.value.sqlite_errorcode == sqlite3.SQLITE_FULL
    assert not isinstance(raised.value, StoreBusy)


async def test_an_unknown_operation_is_refused_and_the_worker_hears_a_failure(side: DaemonSide) -> None:
    channel = await side.open_channel()
    with capture_logs() as logs, pytest.raises(RuntimeError, match="the daemon failed the write"):
        await asyncio.wait_for(channel.request("close", "everything"), 10)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["intake.write_failed"]


async def test_a_write_failing_again_and_again_logs_one_line_a_second_with_the_count(
    side: DaemonSide,
) -> None:
    # A mail that trips a bug in a write fails the same way each time a client retries it: 40
    # failures made 40 error lines, each with its traceback.
    channel = await side.open_channel()
    with capture_logs() as logs:
        for _ in range(40):
            with pytest.raises(RuntimeError, match="the daemon failed the write"):
                await asyncio.wait_for(channel.request("close", "everything"), 10)
    lines = [e for e in logs if e["event"] == "intake.write_failed"]
    assert 1 <= len(lines) <= 3, lines
    assert "exc_info" in lines[0] and all("exc_info" not in e for e in lines[1:])


async def test_a_worker_gone_before_its_answer_is_logged_and_the_write_still_commits(
    side: DaemonSide,
) -> None:
    # Killed mid-accept: the daemon commits what it was sent; the client never heard 250 and
    # retries (dedup by Message-ID). The daemon neither crashes nor keeps the task.
    side.writes.held[STAFF] = asyncio.Event()
    payload = b"w" + pack_request(1, ("info", (STAFF, b"limits")))
    side.theirs.sendall(len(payload).to_bytes(4, "big") + payload)
    await until(lambda: side.workers._writing, "the write at the daemon")
    side.theirs.close()
    await asyncio.wait_for(side.serving, 10)  # the channel closed: the slot's serving ends
    with capture_logs() as logs:
        side.writes.held[STAFF].set()
        await asyncio.wait_for(asyncio.gather(*side.workers._writing), 10)
    assert outbox_rows(side.store) == [STAFF]
    assert [e["event"] for e in logs if e["event"].startswith("intake.")] == ["intake.answer_dropped"]
    assert not side.workers._writing


async def test_the_daemon_gone_fails_the_writes_waiting_for_it(side: DaemonSide) -> None:
    # The worker's side: a session whose write is in flight when the daemon dies cannot know whether
    # it was committed: no failure reply (its client's connection closes unanswered and it retries),
    # and the worker is told to stop.
    channel = await side.open_channel()
    side.writes.held[STAFF] = asyncio.Event()
    waiting = asyncio.create_task(channel.request("info", STAFF, b"x"))
    await until(lambda: side.workers._writing, "the write at the daemon")
    assert side.workers.slots[0].channel is not None
    side.workers.slots[0].channel.close()
    try:
        with pytest.raises(OutcomeUnknown):
            await asyncio.wait_for(waiting, 10)
        assert channel.stop.is_set()
    finally:
        side.writes.held[STAFF].set()


async def test_a_premium_mail_is_decided_by_the_daemon_and_its_reply_comes_back(side: DaemonSide) -> None:
    # An answer or confirmation mail is one named write too: the daemon reads and decides it in
    # its own transaction; the worker gets the SMTP reply and whether an SMS was queued.
    channel = await side.open_channel()
    unknown = premium.Target("confirm", "no-such-token")
    reply, queued = await asyncio.wait_for(
        channel.request("premium", unknown, STAFF, b"From: " + STAFF.encode() + b"\r\n\r\nyes\r\n"), 10
    )
    assert (reply, queued) == (replies.PREMIUM_UNKNOWN_ADDRESS.format("confirm"), False)


def test_a_write_and_its_answer_cross_the_channel_unchanged() -> None:
    # The write's dataclasses are pickled as constructor calls: every field must come back.
    part = NewPart(1, 0, b"Hello", b"\x05\x00\x03\x01\x02\x01", "Hello")
    message = NewMessage("+48601123456", "smsgw", "Hello", 0, [part], True, "held", 12.5)
    acceptance = Acceptance(
        "staff@acme.example",
        "192.0.2.1",
        1,
        2,
        "<m@acme>",
        "key",
        "subject",
        "Hello",
        [message],
        86400.0,
        automatic="auto-replied",
        removed="signature",
    )
    quota = Quota("user staff@acme.example", "user:2", "monthly", "2026-11", 100)
    limits = Limits(
        ("+48601123456",),
        "Hello",
        1,
        (quota,),
        0.0,
        10,
        ("account:1",),
        ("2026-11", "2026-11-30"),
        "staff@acme.example",
        "smsgw@gw.example",
        "gw.example",
    )
    notice = Notice("held", "smsgw@gw.example", "staff@acme.example", b"content")
    domains = {"+48601123456": "sms.example"}
    opening = Opening("staff@acme.example", 1, domains, ("+48600000001",), 3600.0, "PL")
    request = ("accept", (acceptance, limits, (notice,), opening))
    assert unpack_request(pack_request(42, request)) == (42, request)
    result = AcceptResult(7, [8, 9], duplicates=1, refused=None)
    assert unpack_request(pack_request(43, (True, result))) == (43, (True, result))


def test_a_limits_time_zone_crosses_as_the_cached_zone_under_the_one_global() -> None:
    # Its own pickle named two more globals (builtins.getattr, zoneinfo.ZoneInfo), each an import
    # lookup on both sides for every mail; the zone that comes back is still the cached instance,
    # and one made outside the cache still comes back as such.
    quota = Quota("account acme", "account:1", "daily", "2026-11-30", None)
    limits = Limits(
        ("+48601123456",), "Hello", 1, (quota,), 0.0, 10, ("account:1",), ("2026-11", "2026-11-30"),
        "staff@acme.example", "smsgw@gw.example", "gw.example", zone=ZoneInfo("Europe/Warsaw"),
    )  # fmt: skip
    payload = pack_request(1, ("accept", (limits,)))
    globals_named = [op.name for op, _arg, _pos in pickletools.genops(payload[4:]) if "GLOBAL" in op.name]
    assert globals_named == ["STACK_GLOBAL"]
    _id, (_name, (back,)) = unpack_request(payload)
    assert back == limits and back.zone is ZoneInfo("Europe/Warsaw")
    own = replace(limits, zone=ZoneInfo.no_cache("Europe/Warsaw"))
    _id, (_name, (back,)) = unpack_request(pack_request(2, ("accept", (own,))))
    assert back.zone is not ZoneInfo("Europe/Warsaw") and str(back.zone) == "Europe/Warsaw"


def test_a_frozen_write_class_comes_back_frozen_and_hashable() -> None:
    # Rebuilt by its slots, not its __init__: the same fields, still refusing a change.
    quota = Quota("account acme", "account:1", "monthly", "2026-11", 500)
    _id, back = unpack_request(pack_request(3, quota))
    assert back == quota and hash(back) == hash(quota) and type(back) is Quota
    with pytest.raises(FrozenInstanceError):
        back.limit = 1  # type: ignore[misc]
