"""A relay answering 454 to AUTH for a while is warned of once (`mail.relay_login_failing`), again
for a code not warned of yet, after a login was taken or after another warning (no mechanism in
common, a refusal) said the relay's trouble, not at each step of the probes' back-off.

A mail going on a session logged in before ends the 454's episode for status (`mail_taken`), and the
warning was tied to that episode: with mail flowing on a kept session, each login the back-off let
through (60, 120, 240 s... apart) was warned of anew, the relay failing as before. Real relay
(aiosmtpd with AUTH, its backend down), real sessions, the mailer on the injected clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.mailer import SmtpRelayMailer
from tests.conftest import free_port
from tests.test_relay_login_failing import FAILING, Backend, backend_relay
from tests.test_relay_login_gate import MAIL, Clock
from tests.test_relay_login_refusals import auth_relay
from tests.test_relay_probe_mechanism import login_config

TRANSITION = "432 4.7.12 A password transition is needed"  # RFC 4954's other 4xx to AUTH


class ChangingBackend(Backend):
    """The relay's authenticator, down with `reply` (a 4xx) while `down`."""

    reply = FAILING

    def __call__(self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if self.down:
            self.answers.append((self.clock(), mechanism, self.reply))
            return AuthResult(success=False, handled=False, message=self.reply)
        right = isinstance(data, LoginPassword) and data.password == b"right"
        self.answers.append((self.clock(), mechanism, "taken" if right else "535"))
        return AuthResult(success=right, handled=False)


async def test_a_454_is_warned_once_while_mail_goes_on_a_kept_session(tmp_path: Path) -> None:
    clock, port = Clock(), free_port()
    backend = ChangingBackend(clock)
    cfg = login_config(tmp_path, port)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "right", clock=clock, mails_per_session=1000)

    async def steps(until: float, at_once: int = 2) -> None:
        """`at_once` sends every 10 s: one on each session kept, the last needing a login of its own."""
        while clock.now < until:
            clock.now += 10.0
            sends = (mailer.send("gw@gw.test", "u@acme.example", MAIL) for _ in range(at_once))
            await asyncio.gather(*sends, return_exceptions=True)

    try:
        with capture_logs() as logs:
            async with backend_relay(port, backend):
                await mailer.send("gw@gw.test", "u@acme.example", MAIL)  # logged in; its session kept
                backend.down = True  # the relay's authentication backend down: 454 to every AUTH
                await steps(700.0)
                first = [t for t, _m, said in backend.answers if said == FAILING]
                backend.reply = TRANSITION  # the relay's answer changes
                await steps(1000.0)
                backend.down, clock.now = False, 1860.0
                await steps(1900.0)  # the next login, on the back-off (at 1870 s), is taken
                backend.down, backend.reply = True, FAILING  # and fails again: a new episode
                await steps(2000.0, at_once=3)
    finally:
        await mailer.close()
    assert first == [10.0, 70.0, 190.0, 430.0]  # a login at each step of the back-off, each a 454
    warned = [(e["reply"], e["by"]) for e in logs if e["event"] == "mail.relay_login_failing"]
    assert warned == [(FAILING, "a send"), (TRANSITION, "a send"), (FAILING, "a send")], warned
    assert [e["event"] for e in logs].count("mail.relay_login_taken") == 1
    assert [said for _t, _m, said in backend.answers].count("taken") == 2  # the first login, and the one back


async def sent(mailer: SmtpRelayMailer) -> str:
    """What became of one send: "sent", or the name of the error it failed with."""
    try:
        await mailer.send("gw@gw.test", "u@acme.example", MAIL)
    except Exception as exc:  # any failure is the send's answer here
        return type(exc).__name__
    return "sent"


async def test_a_454_after_a_spell_with_no_login_possible_is_warned_again(tmp_path: Path) -> None:
    # The 454's episode ended for status by a mail on the kept session, then a warning of no mechanism
    # in common: the 454 after it went unsaid, its code remembered from before the other trouble.
    clock, port = Clock(), free_port()
    backend = ChangingBackend(clock)
    mailer = SmtpRelayMailer(
        login_config(tmp_path, port).mail, "gw.test", "right", clock=clock, mails_per_session=1000
    )
    seen: list[object] = []
    try:
        with capture_logs() as logs:
            async with backend_relay(port, backend):
                seen.append(await sent(mailer))  # logged in; its session kept
                backend.down, clock.now = True, 10.0
                seen.append(await asyncio.gather(sent(mailer), sent(mailer)))  # the kept one goes; a 454
                clock.now = 20.0
                seen.append(await sent(mailer))  # on the kept session: the episode over for status
            await mailer.close()
            clock.now = 200.0
            async with auth_relay(port, backend, excluded=("PLAIN", "LOGIN", "CRAM-MD5")):
                seen.append(await sent(mailer))  # the relay restarted offering no AUTH
            await mailer.close()
            clock.now = 400.0
            async with backend_relay(port, backend):
                seen.append(await sent(mailer))  # its AUTH back, and its backend still down
    finally:
        await mailer.close()
    assert seen == ["sent", ["sent", "LoginFailingForNow"], "sent", "NoLoginInCommon", "LoginFailingForNow"]
    warned = [e["event"] for e in logs if e["event"].startswith("mail.relay_login")]
    failing, impossible = "mail.relay_login_failing", "mail.relay_login_impossible"
    assert warned == [failing, impossible, failing], warned


async def test_two_codes_alternating_are_each_warned_once(tmp_path: Path) -> None:
    # Only the last code was remembered: 454 and 432 by turns warned at every login.
    clock, port = Clock(), free_port()
    backend = ChangingBackend(clock)
    backend.down = True
    mailer = SmtpRelayMailer(login_config(tmp_path, port).mail, "gw.test", "right", clock=clock)
    try:
        with capture_logs() as logs:
            async with backend_relay(port, backend):
                for login in range(8):
                    backend.reply = FAILING if login % 2 == 0 else TRANSITION
                    assert await sent(mailer) == "LoginFailingForNow"
                    clock.now += 4000.0  # past the probes' back-off at its longest, and the budget
    finally:
        await mailer.close()
    assert [said for _t, _m, said in backend.answers] == [FAILING, TRANSITION] * 4  # eight logins
    warned = [e["reply"] for e in logs if e["event"] == "mail.relay_login_failing"]
    assert warned == [FAILING, TRANSITION], warned
