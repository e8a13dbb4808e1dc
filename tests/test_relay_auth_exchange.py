"""A relay's SASL exchange going wrong inside one mechanism, not refusing our login.

A reply after a refusal that could not be read (a malformed line) or did not come (a timeout) lost
that refusal: nothing held, the mail sent again on its own back-off (30, 90, 210 s...), each send
one more failed login of the mechanism refused, and the probes' turn never moved past the mechanism
whose answer was unreadable.

A CRAM-MD5 challenge that is not base64 (a relay sending its `<id@host>` as it is), read by
aiosmtplib as an `SMTPAuthenticationError` with the continuation's code 334, was taken for a 454:
the relay's authentication "failing for now" for every mechanism, the session left inside the
exchange (our QUIT went to the relay as the answer to its challenge, a failed login there), and
with CRAM-MD5 first in clear, every login after it the same: the mail stayed queued for good though
the relay took PLAIN.

Real relays (aiosmtpd on 127.0.0.1 with the exchanges scripted), a real database file, the real
outbox worker and its `RelayBack` on the injected clock.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.store.db import Store
from tests.conftest import Sink, free_port
from tests.relay_server import relay_server
from tests.test_relay_login_gate import HOUR, MAIL, Clock, Relay, outbox_rows, run_until
from tests.test_relay_probe_mechanism import login_config

RAW_CHALLENGE = "<2461.1012123456@relay.test>"  # not base64: sent as it is


class Scripted(Relay):
    """The relay's account, and how its exchanges go wrong: CRAM-MD5's challenge sent raw (else
    base64, and every account refused with it, as Dovecot keeping hashed passwords), PLAIN answered
    with a line that is no SMTP reply; the client's line after each challenge."""

    def __init__(self, *, raw_challenge: bool, garbled_plain: bool) -> None:
        super().__init__(Clock(), password="right")
        self.raw_challenge = raw_challenge
        self.garbled_plain = garbled_plain
        self.after_challenge: list[bytes] = []


@asynccontextmanager
async def scripted_relay(port: int, relay: Scripted) -> AsyncIterator[Sink]:
    """Offers CRAM-MD5, PLAIN and LOGIN, as `relay` scripts them."""

    class Garbled(SMTP):
        def connection_made(self, transport: Any) -> None:
            relay.connections.append(relay.clock())
            super().connection_made(transport)

        async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
            challenge = (
                RAW_CHALLENGE if relay.raw_challenge else base64.b64encode(RAW_CHALLENGE.encode()).decode()
            )
            await self.push(f"334 {challenge}")
            line = (await self._reader.readline()).strip()
            relay.after_challenge.append(line)
            if line == b"*":  # RFC 4954 4: the client cancels, no login was tried
                await self.push("501 5.7.0 Auth aborted")
            else:  # whatever came read as the client's answer: a failed login at the relay
                relay.failed.append((relay.clock(), "CRAM-MD5"))
                await self.push("535 5.7.8 Authentication credentials invalid")
            return AuthResult(success=False, handled=True)

        async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
            if relay.garbled_plain:
                await self.push("auth backend says hello")
                return AuthResult(success=False, handled=True)
            return await super().auth_PLAIN(server, args)

    async with relay_server(port, Garbled, relay) as sink:
        yield sink


async def run_worker(
    tmp_path: Path, relay: Scripted
) -> tuple[SmtpRelayMailer, list[tuple[str, int, str | None]], int]:
    """One mail queued, an hour of the worker's claims and probes on the injected clock."""
    clock, port = relay.clock, free_port()
    cfg = login_config(tmp_path, port)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock)
    worker = OutboxWorker(store, mailer)
    try:
        async with scripted_relay(port, relay) as sink:
            store.outbox.enqueue_mail("reply", "gw@gw.test", "u@acme.example", MAIL)
            await run_until(worker, clock, HOUR, next_probe=0.0)
            rows = outbox_rows(store)
    finally:
        await mailer.close()
        store.close()
    return mailer, rows, len(sink.messages)


async def test_a_challenge_that_is_no_base64_is_cancelled_and_plain_takes_the_mail(tmp_path: Path) -> None:
    relay = Scripted(raw_challenge=True, garbled_plain=False)
    mailer, rows, taken = await run_worker(tmp_path, relay)
    # The first login (in clear CRAM-MD5 first) cancelled the exchange it could not answer, and went
    # on to PLAIN on the same session: the mail went at once.
    assert [(state, attempts) for state, attempts, _error in rows] == [("sent", 1)] and taken == 1
    assert relay.after_challenge == [b"*"] and relay.failed == [] and relay.connections == [0.0]
    assert relay.taken == [(0.0, "PLAIN")]
    assert mailer.logins.known == "plain" and mailer.logins.failing is None


async def test_a_reply_unread_after_a_refusal_holds_the_refusal_and_the_next_mechanism_gets_a_probe(
    tmp_path: Path,
) -> None:
    relay = Scripted(raw_challenge=False, garbled_plain=True)
    mailer, rows, taken = await run_worker(tmp_path, relay)
    # The send at the start: CRAM-MD5 refused, PLAIN's answer unreadable: the refusal held (the sends
    # after it failed at once without connecting), the probes paced by it: CRAM-MD5 at 60 s, PLAIN
    # at 180 s (unreadable again, the probes' turn moved past it), LOGIN at 240 s, taken, and the
    # mail it woke went with LOGIN. Before, the refusal was lost: the mail went again on its own
    # back-off (30, 90, 210 s...), each send one more failed login, and no probe went past PLAIN.
    assert relay.failed_at() == [0.0, 60.0] and relay.connections == [0.0, 60.0, 180.0, 240.0, 240.0]
    assert [state for state, _attempts, _error in rows] == ["sent"] and taken == 1
    assert {mechanism for _t, mechanism in relay.taken} == {"LOGIN"} and mailer.logins.known == "login"
