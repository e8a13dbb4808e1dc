"""The relay login's loose ends (`gateway.mailauth` and around it):

- the ten minutes' budget of failed logins was kept in memory alone: a restart's first login tried
  every mechanism offered again, and a relay locking accounts or banning at five failed logins did
  (`gateway.relayloginkept`);
- `smsgw status` said "login failing for now" after a 454 until a login was taken, though mail went
  on a session logged in before, and not when the relay last answered 454;
- a relay offering no AUTH mechanism smsgw speaks gave aiosmtplib's "No suitable authentication
  method found.", no relay fault, with no word of what either side speaks (`gateway.relaylogincommon`);
- `smsgw status` raised on a status file whose relay_login fields were damaged by hand;
- a password too short for the masked forms, echoed in a reply to MAIL, was kept whole as the mail's
  error: three callers masked in three ways (`gateway.secretmask.unsaid_line`).

Real peers: SMTP relays on 127.0.0.1 (aiosmtpd with AUTH, or a scripted one), real database files,
the real outbox worker; times on injected clocks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from gateway.cli.statusrelay import relay_login_json, relay_login_lines
from gateway.mailer import SmtpRelayMailer, build_mailer
from gateway.outboxworker import OutboxWorker
from gateway.relayfaultkinds import fault_kind
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.test_relay_login_failing import Backend, backend_relay
from tests.test_relay_login_gate import MAIL, Clock, Relay, most_in_findtime, outbox_rows, relay_at
from tests.test_relay_probe_mechanism import login_config


async def send_refused(mailer: Any) -> aiosmtplib.SMTPAuthenticationError:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await mailer.send("gw@gw.test", "u@acme.example", MAIL)
    return refused.value


async def test_a_restart_keeps_the_failed_logins_of_the_last_ten_minutes(tmp_path: Path) -> None:
    port = free_port()
    relay = Relay(time.time, password="other")  # our password wrong: every mechanism refused
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    async with relay_at(port, relay):
        first = build_mailer(cfg)
        await send_refused(first)  # the first login after a start: every mechanism, three refused
        await first.close()
        assert len(relay.failed) == 3
        restarted = build_mailer(cfg)  # the daemon restarted at once, the password still wrong
        await send_refused(restarted)
        assert len(relay.failed) == 4  # one more mechanism, as the budget has room for: not three
        again = build_mailer(cfg)  # and restarted once more: no login goes before the budget has room
        waiting = await send_refused(again)
        assert again.logins.report() is not None and again.logins.report()["state"] == "waiting"
        for mailer in (restarted, again):
            await mailer.close()
    assert len(relay.failed) == 4 and len(relay.connections) == 2
    assert most_in_findtime(relay.failed_at()) <= 4
    assert waiting.code == 535 and "no login to the relay for " in waiting.message
    assert fault_kind(repr(waiting)) == "login refused"


class Wall:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_kept_budget_opens_ten_minutes_after_the_failed_logins(tmp_path: Path) -> None:
    from gateway.relayloginkept import KEPT_FILE, KeptLogins

    port, wall = free_port(), Wall()
    relay = Relay(wall, password="right")
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    kept = cfg.state_dir / KEPT_FILE

    def started(password: str) -> SmtpRelayMailer:
        mailer = SmtpRelayMailer(cfg.mail, "gw.test", password, clock=Clock())
        mailer.logins.keep(KeptLogins(kept, relay=f"127.0.0.1:{port}", user="gw", wall=wall))
        return mailer

    async with relay_at(port, relay) as sink:
        wrong = started("wrong")
        await send_refused(wrong)  # three failed logins at 0 s
        await wrong.close()
        wall.now += 300.0
        await send_refused(wrong_again := started("wrong"))  # one more at 300 s: four
        await wrong_again.close()
        wall.now += 200.0  # 500 s: the password fixed in the config, the budget still full
        fixed = started("right")
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await fixed.send("gw@gw.test", "u@acme.example", MAIL)
        await fixed.close()
        wall.now += 101.0  # 601 s: the first three out of the ten minutes, so a login goes
        fixed = started("right")
        await fixed.send("gw@gw.test", "u@acme.example", MAIL)
        await fixed.close()
    # None at 500 s; at 601 s the relay's CRAM-MD5 (always refused) and then PLAIN taken.
    start = 1_900_000_000.0
    assert [t - start for t in relay.failed_at()] == [0.0, 0.0, 0.0, 300.0, 601.0]
    assert len(sink.messages) == 1 and most_in_findtime(relay.failed_at()) <= 4
    assert json.loads(kept.read_text())["failed"] == relay.failed_at()[-4:]


async def test_status_stops_saying_failing_for_now_once_mail_goes_and_says_when_the_last_454_was(
    tmp_path: Path,
) -> None:
    clock, port = Clock(), free_port()
    backend = Backend(clock)
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "right", clock=clock)
    try:
        async with backend_relay(port, backend) as sink:
            await mailer.send("gw@gw.test", "u@acme.example", MAIL)  # logged in; its session kept
            backend.down = True
            clock.now = 10.0
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await mailer.probe()  # a new session's login: 454
            clock.now = 70.0  # the probes' back-off after it over: the next login, 454 again
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await mailer.probe()
            clock.now = 100.0
            failing = mailer.logins.report()
            written = time.time()
            lines = relay_login_lines({"updated_at": written, "relay_login": failing}, written)
            await mailer.send("gw@gw.test", "u@acme.example", MAIL)  # on the session kept: no login
    finally:
        await mailer.close()
    assert failing is not None and failing["state"] == "failing for now"
    assert failing["for_seconds"] == 90.0 and failing["last_seconds_ago"] == 30.0
    assert len(lines) == 1 and ", the last at " in lines[0] and "(30 s ago)" in lines[0]
    assert len(sink.messages) == 2 and len(backend.connections) == 3
    assert mailer.logins.report() is None  # mail goes: status says nothing of a 454 any more


@asynccontextmanager
async def scripted_relay(port: int, ehlo: list[str], mail_reply: str = "250 OK") -> AsyncIterator[None]:
    """A relay answering EHLO with `ehlo`'s lines and MAIL with `mail_reply`; AUTH PLAIN taken."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line.decode().split(" ", 1)[0].strip().upper()
            if verb == "EHLO":
                reply = "".join(f"250-{x}\r\n" for x in ehlo[:-1]) + f"250 {ehlo[-1]}\r\n"
            elif verb == "AUTH":
                reply = "235 2.7.0 Authentication successful\r\n"
            elif verb == "MAIL":
                reply = f"{mail_reply}\r\n"
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                reply = "250 OK\r\n"
            writer.write(reply.encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_a_relay_offering_no_mechanism_smsgw_speaks_is_a_relay_fault_saying_so(tmp_path: Path) -> None:
    port = free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right")
    worker = OutboxWorker(store, mailer)
    try:
        async with scripted_relay(port, ["relay.test", "AUTH GSSAPI NTLM", "8BITMIME"]):
            store.outbox.enqueue_mail("reply", "gw@gw.test", "u@acme.example", MAIL)
            await asyncio.gather(*await worker._claim(worker.concurrency))
        rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    said = "the relay offers AUTH GSSAPI, NTLM; smsgw speaks CRAM-MD5, PLAIN, LOGIN"
    [(state, _attempts, error)] = rows
    assert state == "queued" and error == f"NoLoginInCommon({said!r})"
    assert fault_kind(error) == "no login in common"
    report = mailer.logins.report()
    assert report is not None and report["state"] == "impossible" and report["reply"] == said
    lines = relay_login_lines({"updated_at": time.time(), "relay_login": report}, time.time())
    assert len(lines) == 1 and lines[0].startswith("relay     login impossible since ") and said in lines[0]


@pytest.mark.parametrize(
    "damaged",
    [
        {"for_seconds": "an hour"},
        {"mechanisms": 5},
        {"next_login_in_seconds": "soon"},
        {"for_seconds": 1e300},
        {"reply": None, "failed_logins": [1]},
        {"state": 7},
    ],
)
def test_status_says_a_damaged_relay_login_field_is_unreadable_and_goes_on(damaged: dict[str, Any]) -> None:
    now = time.time()
    login = {"state": "refused", "for_seconds": 3, "mechanisms": ["PLAIN"], "reply": "535 no"}
    status = {"updated_at": now, "relay_login": {**login, "next_login_in_seconds": 60, **damaged}}
    lines = relay_login_lines(status, now)
    shown = relay_login_json(status)
    assert lines[0].startswith("relay     login: the status file's relay_login has unreadable ")
    assert all(name in lines[0] for name in damaged)
    assert shown is not None and set(shown["unreadable"]) == set(damaged)
    json.dumps(shown)  # `--json` prints it


class ShortPassword(Sink):
    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return "451 4.7.1 sender check failed for gw/pw9, try later"


async def test_a_short_password_echoed_to_mail_is_masked_in_the_mails_kept_error(tmp_path: Path) -> None:
    port = free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "pw9")

    def taken(_s: Any, _session: Any, _e: Any, _mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=isinstance(data, LoginPassword) and data.password == b"pw9", handled=False)

    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(ShortPassword(), hostname="relay.test", authenticator=taken, auth_require_tls=False),
        "127.0.0.1",
        port,
    )
    try:
        worker = OutboxWorker(store, mailer)
        store.outbox.enqueue_mail("reply", "gw@gw.test", "u@acme.example", MAIL)
        await asyncio.gather(*await worker._claim(worker.concurrency))
        [(state, _attempts, error)] = outbox_rows(store)
    finally:
        server.close()
        await server.wait_closed()
        await mailer.close()
        store.close()
    assert state == "queued" and error is not None
    assert "pw9" not in error and "sender check failed for gw/***, try later" in error
