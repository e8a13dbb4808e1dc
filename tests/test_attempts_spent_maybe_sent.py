"""A part held once its MAX_ATTEMPTS are spent keeps a note that it may have reached the phone when
its last send was lost on the wire or went unanswered, or when its note said an earlier one may have:
should it expire on hold, its bounce says delivery unknown, not that it could not be sent, and a
`queue retry` re-send is logged as a possible duplicate. A part whose last send was refused, with no
such note, keeps the plain reason and expires as never sent.

Before, the hold reason was "50 attempts failed; last: ..." whatever the sends had been: a part sent
50 times over sessions that were lost with it on the wire expired telling its sender it was never sent.

A real gateway on 127.0.0.1, fake SMPP SMSCs on TCP, the parts' attempts set in the real SQLite file
before the link comes up, expiry on an injected clock, bounces to a real SMTP sink.
"""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog

from billing_reports import mtlate
from gateway import housekeeping
from gateway.config import Config, parse_config
from gateway.outcomes import MAX_ATTEMPTS
from gateway.store.db import Store
from gateway.store.partnotes import (
    AWAITING_LATE,
    LINK_LOST,
    MAYBE_SENT_EXPIRED,
    NEVER_SENT_EXPIRED,
    REFUSED_EXPIRED,
)
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, Running, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import DisconnectingSMSC, FakeSMSC, SilentSMSC

DAY = 24 * 3600.0
ESME_RSYSERR = 0x08
REFUSED = "601300001"
NOTED = "601300002"


class Clock:
    """The daemon's clock: the real one moved by `skew`, so that links and timers still run."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


class RefusingSMSC(FakeSMSC):
    """Answers every submit_sm ESME_RSYSERR: refused for now, nothing taken."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.answer_submit(seq, None, status=ESME_RSYSERR, report=False)


def gateway_config(tmp_path: Path, smsc_port: int, sink_port: int, *, response_timeout: float = 5) -> Config:
    # A submit lost with its session goes again at the rebind: the fake SMSCs send no receipt of it.
    text = config_text(tmp_path, smsc_port=smsc_port, relay_port=sink_port,
                       smsc_extra="lost_submit_settle_seconds = 0")  # fmt: skip
    text = text.replace("response_timeout_seconds = 5", f"response_timeout_seconds = {response_timeout}")
    return parse_config(text, source="test config", base_dir=tmp_path)


async def queued_at_last_attempt(gw: Running, numbers: list[str], note: dict[str, str] | None = None) -> None:
    """Mail to `numbers` accepted while no SMSC listens; each part then stands at its last attempt but
    one in the real SQLite file (with `note` as its error, by number), before the link comes up."""
    tos = [f"{n}@{DOMAIN}" for n in numbers]
    assert (await gw.send(mail(tos, "Gate code 4711"), tos)).error is None
    db = gw.store.db.conn

    def waiting() -> bool:
        states = db.execute("SELECT state FROM parts").fetchall()
        return len(states) == len(numbers) and all(s in ("queued", "deferred") for (s,) in states)

    await gw.until(waiting)

    def last_but_one() -> None:
        for number in numbers:
            error = (note or {}).get(number)
            db.execute(
                "UPDATE parts SET attempts = ?, error = ? WHERE destination = ?",
                (MAX_ATTEMPTS - 1, error, f"+48{number}"),
            )

    await gw.store.write(last_but_one)


def held(gw: Running) -> dict[str, str]:
    rows = gw.store.db.conn.execute("SELECT destination, error FROM parts WHERE state = 'hold'").fetchall()
    return {destination.removeprefix("+48"): error for destination, error in rows}


def bounce_text(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return "\n".join(
        str(part.get_content()) for part in msg.walk() if part.get_content_type() == "text/plain"
    )


async def test_a_part_lost_on_the_wire_at_its_last_attempt_expires_as_delivery_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    port, sink_port, clock = free_port(), free_port(), Clock()
    async with smtp_sink(sink_port) as sink:
        async with running_gateway(gateway_config(tmp_path, port, sink_port), clock) as gw:
            await queued_at_last_attempt(gw, ["601300000"])
            # Drops the session on the submit, without a word: the SMSC may have taken it.
            async with DisconnectingSMSC(after=0, times=1, port=port) as smsc:
                await gw.until(lambda: gw.states() == ["hold"], timeout=15)
                assert smsc.drops == 1
                [(attempts, error)] = gw.store.db.conn.execute("SELECT attempts, error FROM parts")
                assert attempts == MAX_ATTEMPTS
                assert error.startswith(f"{MAX_ATTEMPTS} attempts failed") and LINK_LOST in error
                clock.skew = 2 * DAY
                await gw.until(lambda: gw.states() == ["expired"])
                await sink.wait(1)
                [(error,)] = gw.store.db.conn.execute("SELECT error FROM parts")
    assert error == MAYBE_SENT_EXPIRED
    text = bounce_text(sink.messages[0][2])
    assert "delivery unknown" in text and NEVER_SENT_EXPIRED not in text


async def test_a_queue_retry_of_it_is_logged_as_a_possible_duplicate(tmp_path: Path) -> None:
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(gateway_config(tmp_path, port, free_port())) as gw:
            await queued_at_last_attempt(gw, ["601300000"])
            async with DisconnectingSMSC(after=0, times=1, port=port) as smsc:
                await gw.until(lambda: gw.states() == ["hold"], timeout=15)
                [(part, message)] = gw.store.db.conn.execute("SELECT id, message_id FROM parts")
                assert (
                    await gw.store.write(
                        lambda: gw.store.admin.retry_message(message, before_reset=mtlate.retried)
                    )
                    == 1
                )
                await gw.until(lambda: gw.states() in (["submitted"], ["delivered"]), timeout=15)
                assert len(smsc.received) == 1  # the copy the first session took is not known to it
    duplicates = [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert [e["part"] for e in duplicates] == [part]


async def test_a_part_unanswered_at_its_last_attempt_is_held_as_maybe_sent(tmp_path: Path) -> None:
    port, sink_port = free_port(), free_port()
    cfg = gateway_config(tmp_path, port, sink_port, response_timeout=0.5)
    async with running_gateway(cfg) as gw:
        await queued_at_last_attempt(gw, ["601300000"])
        async with SilentSMSC(port=port) as smsc:
            await gw.until(lambda: gw.states() == ["hold"], timeout=15)
            assert len(smsc.received) == 1
            error = held(gw)["601300000"]
    assert error.startswith(f"{MAX_ATTEMPTS} attempts failed") and AWAITING_LATE in error
    assert "may have reached the phone" in error
    assert expired_notes(cfg) == {"601300000": MAYBE_SENT_EXPIRED}


async def test_a_refused_last_attempt_keeps_the_plain_reason_unless_its_note_said_maybe_sent(
    tmp_path: Path,
) -> None:
    # Both refused at their last attempt; the one whose previous send was lost on the wire keeps
    # that note, the other never reached the phone.
    port = free_port()
    cfg = gateway_config(tmp_path, port, free_port())
    async with running_gateway(cfg) as gw:
        noted = {NOTED: f"connection lost; {LINK_LOST}"}
        await queued_at_last_attempt(gw, [REFUSED, NOTED], noted)
        async with RefusingSMSC(port=port):
            await gw.until(lambda: gw.states() == ["hold", "hold"], timeout=15)
            errors = held(gw)
    assert errors[REFUSED] == f"{MAX_ATTEMPTS} attempts failed; last: ESME_RSYSERR (0x08)"
    assert errors[NOTED].startswith(errors[REFUSED]) and AWAITING_LATE in errors[NOTED]
    # Held after the operator's refusals, it expires naming the last of them, not "never sent".
    refused = f"{REFUSED_EXPIRED}ESME_RSYSERR (0x08)"
    assert expired_notes(cfg) == {REFUSED: refused, NOTED: MAYBE_SENT_EXPIRED}


def expired_notes(cfg: Config) -> dict[str, str]:
    """Each part's note once its validity ended on hold, on a clock two days on (the daemon stopped)."""
    store = Store.open(cfg.db_path, clock=lambda: time.time() + 2 * DAY)
    try:
        store.queue.expire_due()
        rows = store.db.conn.execute("SELECT destination, state, error FROM parts").fetchall()
    finally:
        store.db.close()
    assert {state for _d, state, _e in rows} == {"expired"}
    return {destination.removeprefix("+48"): error for destination, _s, error in rows}
