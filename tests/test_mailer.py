"""The outbox's relay client against a real relay (aiosmtpd on 127.0.0.1) that answers as told:
which refusals end a mail for good and which are tried again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from gateway.config import parse_config
from gateway.mailer import PermanentMailError, build_mailer
from tests.conftest import free_port
from tests.test_relay_password import relay_config_text


class Relay:
    """Answers RCPT and DATA with the given replies; refuses every login."""

    def __init__(self, rcpt: str = "250 2.1.5 OK", data: str = "250 2.0.0 OK") -> None:
        self.rcpt, self.data = rcpt, data

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        envelope.rcpt_tos.append(address)
        return self.rcpt

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
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
    ],
    ids=["greylisted", "mailbox-full", "login-refused"],
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
    [Relay(rcpt="550 5.1.1 No such user"), Relay(data="554 5.7.1 Rejected as spam")],
    ids=["no-such-user", "rejected"],
)
async def test_a_refusal_for_good_ends_the_mail(tmp_path: Path, relay: Relay) -> None:
    with pytest.raises(PermanentMailError):
        await send_through(tmp_path, relay)


async def test_a_send_whose_outcome_cannot_be_recorded_stops_the_worker_after_the_others(
    tmp_path: Path,
) -> None:
    # The store fails recording one send (locked by another process past the wait, disk full): the
    # worker stops so that the supervisor restarts it, but only after every send of the batch has
    # ended and been recorded (a send left running would be sent again by the recovery), and
    # the unrecorded mail goes back to the queue before the restart (`before_restart`).
    from gateway.mailer import CaptureMailer, OutboxWorker
    from gateway.store.db import Store

    store = Store.open(tmp_path / "db.sqlite")
    outbox = store.outbox
    ids = [outbox.enqueue_mail("notice", "gw@gw.example", f"u{i}@acme.example", b"hi\r\n") for i in range(3)]
    store.db.serve()
    worker = OutboxWorker(store, CaptureMailer(tmp_path / "sent"))
    record = worker._finish

    async def record_failing_once(mail_id: int, state: str, *args: Any, **kw: Any) -> None:
        if mail_id == ids[0]:
            raise OSError(28, "No space left on device")
        await asyncio.sleep(0.05)  # the others end after the failure
        await record(mail_id, state, *args, **kw)

    worker._finish = record_failing_once  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(worker.run(), 10)
    states = dict(store.db.conn.execute("SELECT id, state FROM outbox").fetchall())
    assert states == {ids[0]: "active", ids[1]: "sent", ids[2]: "sent"}
    await store.write(store.outbox.recover_mail)  # what the daemon's supervisor runs before the restart
    assert store.db.conn.execute("SELECT state FROM outbox WHERE id = ?", (ids[0],)).fetchone() == ("queued",)
    store.close()
