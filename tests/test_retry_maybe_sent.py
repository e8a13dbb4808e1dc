"""An admin's retry (`smsgw queue retry`, the panel's Retry) of a part whose last submit may have
reached the phone sends it again as a possible duplicate, however the part came to wait for it.

A part whose last attempt went unanswered is held with a note saying it may have reached the phone
(`MAYBE_SENT_NOTES`), and one that expires so ends `MAYBE_SENT_EXPIRED`. The retry cleared the note:
claimed after a restart, its re-send went out as a first one, neither logged nor counted as a
possible duplicate. An admin's hold or cancel overwrote the note as well, and a held part that then
expired told the sender it had never been sent.

A real gateway on 127.0.0.1 against fake SMPP SMSCs on TCP, the real SQLite file, and the CLI's
`queue retry` through its entry point between two runs of the daemon.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from billing_reports import mtlate
from gateway.config import Config, parse_config
from gateway.store.db import Store
from gateway.store.partnotes import AWAITING_LATE, LINK_LOST, MAYBE_SENT_EXPIRED, RETRIED_MAYBE_SENT
from tests.conftest import config_text, free_port, running_gateway
from tests.fakes.smsc import FakeSMSC, HeldSMSC
from tests.test_account_show import CLI
from tests.test_conversations import World
from tests.test_late_answer_held import at_last_attempt, part_row

ANNA = "anna@acme.example"


def slow_config(tmp_path: Path, port: int) -> Path:
    """A config file whose link gives up on an answer after 0.3 s (the CLI reads the same file)."""
    path = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=port)
    slow = "response_timeout_seconds = 0.3\nlate_answer_grace_seconds = 60"
    path.write_text(text.replace("response_timeout_seconds = 5", slow))
    return path


def load(path: Path) -> Config:
    return parse_config(path.read_text(), source="test", base_dir=path.parent)


async def held_unanswered(cfg: Config, port: int) -> tuple[int, int]:
    """A part whose last attempt the SMSC never answered: held with its maybe-sent note when the
    daemon stops. (message id, part id)."""
    async with running_gateway(cfg) as gw:
        part = await at_last_attempt(gw)
        async with HeldSMSC(port=port) as smsc:
            await gw.until(lambda: part_row(gw)[0] == "hold", timeout=15)
            assert len(smsc.received) == 1
            _state, _smsc_id, error, _attempts = part_row(gw)
            assert error is not None and AWAITING_LATE in error
        [(message,)] = gw.store.db.conn.execute("SELECT id FROM messages")
    return message, part


async def retried_and_sent(cfg: Config, cli: CLI, message: int, port: int) -> list[dict[str, object]]:
    """`queue retry` of the message, then a fresh daemon that sends it; the log of that run."""
    assert cli.ok("queue", "retry", str(message)) == [f"message {message}: 1 part(s) queued again"]
    store = Store.open(cfg.db_path)
    try:
        [(error,)] = store.db.conn.execute("SELECT error FROM parts")
        assert error == RETRIED_MAYBE_SENT
    finally:
        store.close()
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw, FakeSMSC(port=port) as smsc:
            await gw.until(lambda: gw.states() == ["delivered"], timeout=15)
            assert len(smsc.received) == 1
    return logs


def duplicates(logs: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["part"], e["earlier"]) for e in logs if e["event"] == "mt.possible_duplicate"]


async def test_a_held_part_retried_after_a_restart_goes_out_as_a_possible_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    path = slow_config(tmp_path, port)
    cfg = load(path)
    message, part = await held_unanswered(cfg, port)
    logs = await retried_and_sent(cfg, CLI(path, capsys), message, port)
    assert duplicates(logs) == [(part, None)]  # a submit of it before this start went unanswered
    # What the line says holds also for a part claimed ahead and never sent before a kill -9: the
    # stopped process alone knew which, and "went unanswered or was cut off" was untrue for those.
    (reason,) = [e["reason"] for e in logs if e["event"] == "mt.possible_duplicate"]
    assert reason == (
        "sent again: it was claimed for sending before this start and no answer was recorded;"
        " the SMSC may have had it (a submit unanswered or cut off) or not (never sent)"
    )


async def test_a_part_expired_with_delivery_unknown_and_retried_goes_out_as_a_possible_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    path = slow_config(tmp_path, port)
    cfg = load(path)
    message, part = await held_unanswered(cfg, port)
    store = Store.open(cfg.db_path)
    try:
        store.db.conn.execute("UPDATE parts SET expires_at = ?", (time.time() - 1,))
        store.queue.expire_due()
        [(state, error)] = store.db.conn.execute("SELECT state, error FROM parts")
        assert (state, error) == ("expired", MAYBE_SENT_EXPIRED)
    finally:
        store.close()
    logs = await retried_and_sent(cfg, CLI(path, capsys), message, port)
    assert duplicates(logs) == [(part, None)]


def test_an_admins_hold_or_cancel_keeps_the_note_for_the_retry_and_the_expiry(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    store, conn = w.store, w.store.db.conn
    (message,) = conn.execute("SELECT id FROM messages").fetchone()

    def claimed_again() -> bool:
        [again] = store.queue.claim_due(10, now=w.now)
        return again.maybe_sent

    def waiting_with(note: str) -> int:
        [part] = store.queue.claim_due(10, now=w.now)
        store.queue.release(part.id, delay=0.0, error=f"no answer in time; {note}", count=True)
        return part.id

    part = waiting_with(AWAITING_LATE)
    assert store.admin.hold_message(message) == 1
    [(error,)] = conn.execute("SELECT error FROM parts")
    assert error.startswith("held by admin; ") and AWAITING_LATE in error
    assert store.admin.retry_message(message, before_reset=mtlate.retried) == 1
    assert claimed_again()

    store.queue.release(part, delay=0.0, error=f"bind lost; {LINK_LOST}", count=True)
    assert store.admin.cancel_message(message) == 1
    assert store.admin.retry_message(message, before_reset=mtlate.retried) == 1
    assert claimed_again()

    # Held by the admin and left to expire: delivery unknown, not "expired before it could be sent".
    conn.execute("UPDATE parts SET state = 'deferred', error = ?", (f"no answer in time; {AWAITING_LATE}",))
    assert store.admin.hold_message(message) == 1
    w.now += 7 * 24 * 3600
    store.queue.expire_due()
    assert conn.execute("SELECT state, error FROM parts").fetchone() == ("expired", MAYBE_SENT_EXPIRED)

    # A part with no such note is sent again as a first send.
    conn.execute("UPDATE parts SET state = 'failed', error = 'UNDELIV err:001'")
    assert store.admin.retry_message(message, before_reset=mtlate.retried) == 1
    assert conn.execute("SELECT error FROM parts").fetchone() == (None,)
    assert not claimed_again()


def test_a_throttle_notes_its_refusal_but_never_over_a_maybe_sent_note(tmp_path: Path) -> None:
    # A throttled part now keeps the throttle as its last cause (its expiry's bounce names it); written
    # over a note that its earlier submit may be on the phone, its re-send went out as a first one.
    w = World(tmp_path)
    w.send(ANNA)
    store, conn = w.store, w.store.db.conn
    [part] = store.queue.claim_due(10, now=w.now)
    store.queue.release(part.id, delay=0.0, count=False, refusal="ESME_RTHROTTLED (0x58)")
    assert conn.execute("SELECT error FROM parts").fetchone() == ("ESME_RTHROTTLED (0x58)",)
    [part] = store.queue.claim_due(10, now=w.now)
    store.queue.release(part.id, delay=0.0, error=f"no answer in time; {AWAITING_LATE}", count=True)
    [part] = store.queue.claim_due(10, now=w.now)
    assert part.maybe_sent
    store.queue.release(part.id, delay=0.0, count=False, refusal="ESME_RTHROTTLED (0x58)")
    [again] = store.queue.claim_due(10, now=w.now)
    assert again.maybe_sent, "the throttle wrote over the doubt"
