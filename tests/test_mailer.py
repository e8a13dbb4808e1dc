"""The outbox's relay client against a real relay (aiosmtpd on 127.0.0.1) that answers as told:
which refusals end a mail for good and which are tried again."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from structlog.testing import capture_logs

from gateway.config import Config, parse_config
from gateway.mailer import build_mailer
from gateway.mailtransaction import PermanentMailError
from gateway.store.db import Store
from tests.conftest import STAFF, free_port, make_config, running_gateway
from tests.test_relay_password import relay_config_text


class Relay:
    """Answers RCPT and DATA with the given replies, DATA after `data_delay` seconds; refuses every
    login. Counts the DATA it began and the mails it took (a `2xx` answer given, even to a client
    that has gone: a real MTA delivers those too)."""

    def __init__(
        self,
        rcpt: str = "250 2.1.5 OK",
        data: str = "250 2.0.0 OK",
        data_delay: float = 0.0,
        sender: str = "250 2.1.0 OK",
    ) -> None:
        self.rcpt, self.data, self.data_delay, self.sender = rcpt, data, data_delay, sender
        self.started = 0
        self.taken: list[bytes] = []

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        envelope.mail_from = address
        return self.sender

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        envelope.rcpt_tos.append(address)
        return self.rcpt

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started += 1
        await asyncio.sleep(self.data_delay)
        if self.data.startswith("2"):
            self.taken.append(envelope.original_content)
        return self.data

    def authenticate(self, *args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535 itself


async def send_through(tmp_path: Path, relay: Relay, mail: str = "") -> None:
    port = free_port()
    controller = Controller(
        relay, hostname="127.0.0.1", port=port, authenticator=relay.authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        (tmp_path / "relay-password").write_text("wrong\n")
        cfg = parse_config(relay_config_text(tmp_path, port, mail), source="test", base_dir=tmp_path)
        mailer = build_mailer(cfg)
        await asyncio.wait_for(mailer.send("smsgw@sms.example.com", "anna@acme.example", b"hi\r\n"), 30)
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("relay", "mail"),
    [
        (Relay(rcpt="450 4.7.1 Greylisted, try again later"), ""),
        (Relay(rcpt="452 4.2.2 Mailbox full"), ""),
        # a 5xx about our login, not about this mail: one wrong password must not fail the whole outbox
        (Relay(), 'relay_username = "smsgw"\nrelay_password_file = "relay-password"\n'),
        # 5xx that blame the relay's setup for us (no login configured, not a relay for us, our
        # sender refused): each failed the whole outbox at its first try.
        (Relay(sender="530 5.7.0 Authentication required"), ""),
        (Relay(rcpt="554 5.7.1 <anna@acme.example>: Relay access denied"), ""),
        (Relay(rcpt="550 5.7.1 Unable to relay"), ""),
        # a 4xx to MAIL: the relay's limit for now (too many mails on this connection)
        (Relay(sender="452 4.5.3 Too many mails on this connection"), ""),
        # a 5xx to the gateway's own address: the relay's setup, which fails no mail
        (Relay(sender="553 5.7.1 <smsgw@sms.example.com>: Sender address rejected: not owned by user"), ""),
    ],
    ids=[
        "greylisted",
        "mailbox-full",
        "login-refused",
        "login-required",
        "relay-denied",
        "unable-to-relay",
        "sender-busy",
        "sender-refused",
    ],
)
async def test_a_refusal_for_now_is_tried_again(tmp_path: Path, relay: Relay, mail: str) -> None:
    # The relay's own error goes up (the outbox defers the mail), not PermanentMailError (it fails it).
    with pytest.raises(aiosmtplib.SMTPException) as raised:
        await send_through(tmp_path, relay, mail)
    err: Any = raised.value
    codes = [r.code for r in getattr(err, "recipients", ())] or [err.code]
    assert all(400 <= code < 600 for code in codes)


@pytest.mark.parametrize(
    "relay",
    [
        Relay(rcpt="550 5.1.1 No such user"),
        Relay(data="554 5.7.1 Rejected as spam"),
    ],
    ids=["no-such-user", "rejected"],
)
async def test_a_refusal_for_good_ends_the_mail(tmp_path: Path, relay: Relay) -> None:
    with pytest.raises(PermanentMailError):
        await send_through(tmp_path, relay)


async def test_a_send_whose_outcome_cannot_be_recorded_stops_the_worker_after_the_others(
    tmp_path: Path,
) -> None:
    # The store fails recording one send (locked by another process past the wait, disk full): the
    # worker stops so that the supervisor restarts it, but only after every other send has
    # ended and been recorded (a send left running would be sent again by the recovery), and
    # the unrecorded mail goes back to the queue before the restart (`before_restart`).
    from gateway.mailer import CaptureMailer
    from gateway.outboxworker import OutboxWorker
    from gateway.store.db import Store

    store = Store.open(tmp_path / "db.sqlite")
    outbox = store.outbox
    ids = [outbox.enqueue_mail("notice", "gw@gw.example", f"u{i}@acme.example", b"hi\r\n") for i in range(3)]
    store.db.serve()
    worker = OutboxWorker(store, CaptureMailer(tmp_path / "sent"))
    record = worker._write

    async def record_failing_once(mail_id: int, state: str, work: Any) -> Any:
        if mail_id == ids[0]:
            raise OSError(28, "No space left on device")
        await asyncio.sleep(0.05)  # the others end after the failure
        return await record(mail_id, state, work)

    worker._write = record_failing_once  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(worker.run(), 10)
    states = dict(store.db.conn.execute("SELECT id, state FROM outbox").fetchall())
    assert states == {ids[0]: "active", ids[1]: "sent", ids[2]: "sent"}
    await store.write(store.outbox.recover_mail)  # what the daemon's supervisor runs before the restart
    assert store.db.conn.execute("SELECT state FROM outbox WHERE id = ?", (ids[0],)).fetchone() == ("queued",)
    store.close()


@contextmanager
def relay_running(relay: Relay) -> Iterator[int]:
    """The relay on its own thread and loop (as a real one is), on a free port."""
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def outbox_rows(cfg: Config) -> list[tuple[int, str, int]]:
    with closing(sqlite3.connect(cfg.db_path)) as db:
        return db.execute("SELECT id, state, attempts FROM outbox ORDER BY id").fetchall()


async def test_a_stop_waits_for_the_mail_on_its_way_to_the_relay(tmp_path: Path) -> None:
    # SIGTERM half a second into a send the relay answers after 4 s: the stop waits for the answer
    # and records it. Cut off, the mail stayed `active` and the next start sent it a second time.
    relay = Relay(data_delay=4.0)
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        async with running_gateway(cfg) as gw:
            outbox = gw.store.outbox
            await gw.store.write(
                lambda: outbox.enqueue_mail("notice", "smsgw@sms.example.com", STAFF, b"hi\r\n")
            )
            await gw.until(lambda: relay.started == 1, timeout=10)
            await asyncio.sleep(0.5)
            gw.stop.set()
            await asyncio.wait_for(gw.task, 30)
        assert len(relay.taken) == 1
        assert [state for _id, state, _n in outbox_rows(cfg)] == ["sent"]
        relay.data_delay = 0.0
        async with running_gateway(cfg):
            await asyncio.sleep(1.5)  # a mail left to send goes at once
        assert len(relay.taken) == 1


async def test_a_mail_cut_off_by_a_crash_is_sent_again_and_logged_as_a_possible_duplicate(
    tmp_path: Path,
) -> None:
    # Found `active` at the start: its send was cut off and the relay may have it. It goes again
    # (at least once), and the log says which mail may arrive twice.
    relay = Relay()
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        cfg.state_dir.mkdir(parents=True)
        store = Store.open(cfg.db_path)
        mail_id = store.outbox.enqueue_mail("dsn", "", STAFF, b"bounce\r\n")
        store.outbox.enqueue_mail("notice", "smsgw@sms.example.com", STAFF, b"untouched\r\n")
        store.db.conn.execute("UPDATE outbox SET state = 'active', attempts = 1 WHERE id = ?", (mail_id,))
        store.close()  # as the crash left it
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: len(relay.taken) == 2, timeout=10)
                await gw.until(lambda: [r[1] for r in outbox_rows(cfg)] == ["sent", "sent"], timeout=10)
    dups = [e for e in logs if e["event"] == "outbox.possible_duplicate"]
    assert [(e["mail"], e["kind"], e["log_level"]) for e in dups] == [(mail_id, "dsn", "warning")]
    assert [e["mails"] for e in logs if e["event"] == "outbox.recovered"] == [1]


async def test_a_stop_gives_up_on_a_relay_that_never_answers_after_its_bound(tmp_path: Path) -> None:
    # The wait is bounded (within systemd's TimeoutStopSec): the mail stays `active` for the next
    # start, and the log names it.
    from gateway.outboxworker import OutboxWorker

    started = asyncio.Event()

    class Hanging:
        async def send(self, mail_from: str, rcpt: str, content: bytes) -> None:
            started.set()
            await asyncio.Event().wait()

    store = Store.open(tmp_path / "db.sqlite")
    mail_id = store.outbox.enqueue_mail("notice", "gw@gw.example", STAFF, b"hi\r\n")
    store.db.serve()
    worker = OutboxWorker(store, Hanging())
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    with capture_logs() as logs:
        begun = time.monotonic()
        assert await worker.stop(timeout=0.3) is False
        assert time.monotonic() - begun < 2
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    assert [(e["event"], e["mails"]) for e in logs] == [("outbox.stop_timeout", [mail_id])]
    assert store.db.conn.execute("SELECT state FROM outbox").fetchall() == [("active",)]
    idle = OutboxWorker(store, Hanging())
    assert await asyncio.wait_for(idle.stop(), 1) is True  # nothing being sent: no wait at all
    store.close()


async def test_every_send_that_cannot_be_recorded_is_said_once_and_none_left_unread(tmp_path: Path) -> None:
    # Two sends failing together (a full disk): the second was never read, and asyncio logged its
    # "Task exception was never retrieved" traceback at error level besides the worker's crash.
    import gc

    from structlog.testing import capture_logs

    from gateway.mailer import CaptureMailer
    from gateway.outboxworker import OutboxWorker
    from gateway.store.db import Store

    store = Store.open(tmp_path / "db.sqlite")
    ids = [
        store.outbox.enqueue_mail("notice", "gw@gw.example", f"u{i}@acme.example", b"hi\r\n")
        for i in range(3)
    ]
    store.db.serve()
    worker = OutboxWorker(store, CaptureMailer(tmp_path / "sent"))
    record = worker._write

    async def full_disk(mail_id: int, state: str, work: Any) -> Any:
        if mail_id != ids[2]:
            raise OSError(28, "No space left on device")
        await asyncio.sleep(0.05)
        return await record(mail_id, state, work)

    worker._write = full_disk  # type: ignore[method-assign]
    unread: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unread.append(context))
    with capture_logs() as logs, pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(worker.run(), 10)
    gc.collect()
    await asyncio.sleep(0)
    store.close()
    assert unread == []
    assert [e["event"] for e in logs if e["event"] == "outbox.send_failed_too"] == ["outbox.send_failed_too"]
