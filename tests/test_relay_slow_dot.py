"""The outbox against a real relay (aiosmtpd on 127.0.0.1) that is slow to answer, or never answers,
the final dot of a mail it took: the mail is sent once, or again a bounded number of times, each
logged as a possible duplicate, never every few minutes for days.

The relay session's step timeout (30 s) is scaled down to STEP by giving aiosmtplib's client a
shorter `timeout`; the back-off between tries is scaled down to RETRY.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway import mailtransaction, outboxworker
from gateway.config import Config
from tests.conftest import STAFF, free_port, make_config, running_gateway
from tests.test_mailer import Relay, outbox_rows, relay_running

STEP = 2.0  # the relay session's 30 s per step, scaled down
RETRY = 0.3  # the back-off between tries, scaled down


class ScaledClient(aiosmtplib.SMTP):
    """aiosmtplib's client with every wait it is not told otherwise cut to STEP."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw["timeout"] = STEP
        super().__init__(*args, **kw)


@pytest.fixture
def scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiosmtplib, "SMTP", ScaledClient)
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: RETRY)


class DropsAfterDot(Relay):
    """Takes the mail whole, then closes the connection before it answers: the first `drops` times
    (every time with None). A real MTA that stored the mail delivers it all the same."""

    def __init__(self, drops: int | None) -> None:
        super().__init__()
        self.drops = drops

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started += 1
        self.taken.append(envelope.original_content)
        if self.drops is None or self.drops > 0:
            self.drops = None if self.drops is None else self.drops - 1
            server.transport.close()  # the answer below goes nowhere
        return "250 2.0.0 OK"


def last_error(cfg: Config) -> str | None:
    with closing(sqlite3.connect(cfg.db_path)) as db:
        return db.execute("SELECT last_error FROM outbox").fetchone()[0]


async def test_a_relay_answering_the_dot_after_the_step_timeout_gets_the_mail_once(
    tmp_path: Path, scaled: None
) -> None:
    # The company relay's content filter answers the end of DATA after more than a step's 30 s: the
    # outbox waited 30 s, took the mail for not sent and sent it again on the back-off (the user got
    # the same bounce five times in ten minutes). The dot's answer is now waited for up to 10 minutes.
    relay = Relay(data_delay=STEP * 2)
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        async with running_gateway(cfg) as gw:
            stall_after = gw.daemon.supervisor.workers["outbox"].stall_after
            outbox = gw.store.outbox
            await gw.store.write(lambda: outbox.enqueue_mail("dsn", "", STAFF, b"bounce\r\n"))
            await gw.until(lambda: relay.started == 1 and outbox_rows(cfg)[0][1] != "active", timeout=20)
            await asyncio.sleep(RETRY * 3)  # a try again would have begun by now
    assert [(state, attempts) for _id, state, attempts in outbox_rows(cfg)] == [("sent", 1)]
    assert (relay.started, len(relay.taken)) == (1, 1)
    # The supervisor takes no such wait (all four slots can be in one) for a hang of the worker: 300 s
    # did, and withheld systemd's watchdog, whose restart sent the mail again.
    assert stall_after > 600


class SilentOnce(Relay):
    """Takes the mail whole (and keeps it, as a real MTA's queue does: aiosmtpd cancels a handler
    whose client has gone) but answers the first one only after DOT_WAIT * 2."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started += 1
        self.taken.append(envelope.original_content)
        if self.started == 1:
            await asyncio.sleep(DOT_WAIT * 2)
        return "250 2.0.0 OK"


DOT_WAIT = 2 * STEP  # the wait for the dot's answer, 10 minutes, scaled down


@pytest.mark.parametrize(
    ("relay", "why"),
    [
        (DropsAfterDot(drops=1), "the relay took the whole mail but closed the connection without answering"),
        (SilentOnce(), f"the relay took the whole mail but did not answer within {DOT_WAIT:g} s"),
    ],
    ids=["dropped", "silent"],
)
async def test_a_mail_the_relay_took_without_answering_goes_again_as_a_possible_duplicate(
    tmp_path: Path, scaled: None, monkeypatch: pytest.MonkeyPatch, relay: Relay, why: str
) -> None:
    # The relay may have stored the mail before it dropped the connection or while it kept silent,
    # or lost it: a lost bounce is worse than one arriving twice, so it goes again, logged, and the
    # admin reads why (not a bare SMTPServerDisconnected or SMTPReadTimeoutError).
    monkeypatch.setattr(mailtransaction, "DOT_REPLY_TIMEOUT", DOT_WAIT)
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: 2.0)  # time to read the error
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                outbox = gw.store.outbox
                mail_id = await gw.store.write(lambda: outbox.enqueue_mail("dsn", "", STAFF, b"bounce\r\n"))
                await gw.until(lambda: outbox_rows(cfg)[0][1:] == ("queued", 1), timeout=20)
                error = last_error(cfg)
                await gw.until(lambda: outbox_rows(cfg)[0][1] == "sent" and len(relay.taken) == 2, timeout=20)
    assert error is not None and error.startswith(f"{why}; it may have delivered it")
    assert [e["error"] for e in logs if e["event"] == "mail.deferred"] == [error]
    dups = [e for e in logs if e["event"] == "outbox.possible_duplicate"]
    assert [(e["mail"], e["kind"], e["log_level"]) for e in dups] == [(mail_id, "dsn", "warning")]


async def test_a_relay_that_never_answers_the_dot_does_not_get_the_mail_for_days(
    tmp_path: Path, scaled: None
) -> None:
    # Every send taken and the connection dropped (a firewall closing it while a slow filter works):
    # the mail went again on every back-off for the five days of max_attempts. It now fails after
    # UNANSWERED_SENDS, saying it has most likely arrived.
    relay = DropsAfterDot(drops=None)
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                outbox = gw.store.outbox
                await gw.store.write(
                    lambda: outbox.enqueue_mail("notice", "gw@sms.example.com", STAFF, b"x\r\n")
                )
                await gw.until(lambda: outbox_rows(cfg)[0][1] == "failed" or len(relay.taken) > 3, timeout=20)
                await asyncio.sleep(RETRY * 4)  # a try again would have begun by now
    assert len(relay.taken) == 3
    assert [(state, attempts) for _id, state, attempts in outbox_rows(cfg)] == [("failed", 3)]
    why = last_error(cfg)
    assert why is not None and "most likely arrived" in why and "outbox retry" in why
    assert len([e for e in logs if e["event"] == "outbox.possible_duplicate"]) == 2


async def test_a_mail_slow_to_be_answered_holds_back_no_other_mail(tmp_path: Path) -> None:
    # The worker sent a claimed batch whole before it claimed again: a mail queued while the relay
    # took its time over another (up to 10 minutes now) waited for it, a phone's answer with it.
    class SlowForOne(Relay):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.started += 1
            if envelope.rcpt_tos == ["slow@acme.example"]:
                await asyncio.sleep(4.0)
            self.taken.append(envelope.original_content)
            return "250 2.0.0 OK"

    relay = SlowForOne()
    with relay_running(relay) as port:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=port)
        async with running_gateway(cfg) as gw:
            outbox = gw.store.outbox
            sender = "gw@sms.example.com"
            await gw.store.write(
                lambda: outbox.enqueue_mail("notice", sender, "slow@acme.example", b"slow\r\n")
            )
            await gw.until(lambda: relay.started == 1, timeout=10)
            await gw.store.write(lambda: outbox.enqueue_mail("reply", sender, STAFF, b"answer\r\n"))
            await gw.until(lambda: relay.taken != [], timeout=10)
            assert relay.taken == [b"answer\r\n"]
            await gw.until(lambda: len(relay.taken) == 2, timeout=10)


def test_the_unanswered_sends_are_counted_with_the_mail_across_restarts(tmp_path: Path) -> None:
    # Counted in the worker's memory, a restart began the count again: up to three sends more of a
    # mail the relay may have delivered each time, and its first was not logged as a possible
    # duplicate. A mail given up on so has most likely arrived: `outbox retry` of it starts its
    # attempts afresh, but its next send is still a possible duplicate.
    from gateway.store.db import Store

    path = tmp_path / "smsgw.db"
    store = Store.open(path)
    mail_id = store.outbox.enqueue_mail("notice", "", STAFF, b"Subject: hi\r\n\r\nhi\r\n")
    for _ in range(2):
        [claimed] = store.outbox.claim_mail(4)
        store.outbox.finish_mail(mail_id, "queued", "no answer", retry_in=0.0, unanswered=True)
    store.close()
    store = Store.open(path)  # a restart
    try:
        [claimed] = store.outbox.claim_mail(4)
        assert (claimed.unanswered, claimed.maybe_sent) == (2, True)
        store.outbox.finish_mail(mail_id, "failed", "given up", unanswered=True)
        assert store.admin.retry_outbox(mail_id) == 1
        [again] = store.outbox.claim_mail(4)
        assert (again.unanswered, again.maybe_sent, again.attempts) == (3, True, 1)
    finally:
        store.close()
