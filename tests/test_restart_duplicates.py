"""At least once, and said so: an SMS the SMSC may already have, sent again by a daemon that did not
see the first submit, is logged `mt.possible_duplicate` and counted (R-7.5).

A kill -9 inside the late-answer grace left parts `deferred` waiting for a late answer, and parts
`active` with their submits on the wire: the next daemon sent them all again with no word (only a
count of the recovered parts was logged, never which), and `smsgw_link_possible_duplicates` stayed 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import structlog

from gateway.store.partnotes import AWAITING_LATE
from tests.conftest import DOMAIN, config_text, free_port, mail, make_config, running_gateway, send_blocking
from tests.fakes.smsc import ESME_RTHROTTLED, HappySMSC, HeldSMSC, SilentSMSC
from tests.test_process import send_marker, start_daemon

GRACE = "late_answer_grace_seconds = 6"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def parts(db: Path, where: str = "1") -> list[tuple[int, str, str | None]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT id, state, error FROM parts WHERE {where} ORDER BY id").fetchall()


def events(log: Path, offset: int, event: str) -> list[dict[str, Any]]:
    lines = log.read_bytes()[offset:].decode().splitlines()
    return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e["event"] == event]


async def until(predicate: Any, timeout: float = 20) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def submit(smtp_port: int, numbers: list[str], text: str) -> None:
    rcpts = [to(n) for n in numbers]
    assert (await asyncio.to_thread(send_blocking, smtp_port, mail(rcpts, text), rcpts)).error is None


def counted(status: Path) -> int:
    """The link's possible duplicates as the daemon's status file last told them."""
    return json.loads(status.read_text())["links"]["main"]["possible_duplicates"] if status.exists() else -1


async def test_a_kill_inside_the_grace_sends_again_as_possible_duplicates(tmp_path: Path) -> None:
    # Two SMS go unanswered and wait for a late answer (a 6 s grace); two more are on the wire,
    # unanswered yet, when the daemon is killed. The next daemon sends all four again: each is
    # logged as a possible duplicate and counted, and the start names the recovered parts.
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    db = tmp_path / "state" / "smsgw.db"
    async with SilentSMSC() as silent:
        text = config_text(tmp_path, smsc_port=silent.port, smtp_port=smtp_port, smsc_extra=GRACE)
        config.write_text(text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 1.5"))
        proc = await start_daemon(config, smtp_port)
        await submit(smtp_port, ["601000001", "601000002"], "Unanswered")
        await until(lambda: len(parts(db, f"instr(error, '{AWAITING_LATE}')")) == 2)
        await submit(smtp_port, ["601000003", "601000004"], "On the wire")
        await silent.wait_for(4, timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        port = silent.port
    assert [state for _id, state, _e in parts(db)] == ["deferred", "deferred", "active", "active"]
    log = tmp_path / "daemon.log"
    offset = log.stat().st_size
    async with HappySMSC(port=port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            await send_marker(smsc, smtp_port)
            await until(lambda: [state for _id, state, _e in parts(db)] == ["delivered"] * 5)
            await until(lambda: counted(tmp_path / "state" / "status.json") == 4)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    texts = sorted(s.text for s in smsc.received)
    assert texts == ["Marker", "On the wire", "On the wire", "Unanswered", "Unanswered"]
    (recovered,) = events(log, offset, "queue.recovered")
    assert (recovered["parts"], recovered["ids"]) == (2, [3, 4])
    duplicates = events(log, offset, "mt.possible_duplicate")
    assert sorted(e["part"] for e in duplicates) == [1, 2, 3, 4]
    assert {(e["level"], e["earlier"]) for e in duplicates} == {("warning", None)}


def one_link(tmp_path: Path, port: int, **link: Any) -> Any:
    cfg = make_config(tmp_path, smsc_port=port)
    return cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=link)]})


def logged(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


async def test_parts_a_crashed_dispatcher_claimed_ahead_are_no_possible_duplicates(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # A window of one: one SMS on the wire, two claimed ahead, when the dispatcher crashes. The two
    # never reached a link: requeued (named) before its restart, they go out as plain sends, though
    # the requeue notes them as recovered.
    async with HeldSMSC() as smsc:
        async with running_gateway(one_link(tmp_path, smsc.port, window=1)) as gw:
            dispatcher = gw.daemon.dispatcher
            queue = gw.store.queue
            next_due_at = queue.next_due_at

            def crash_once() -> float | None:
                if dispatcher._ready and not crashed:
                    crashed.append(True)
                    raise RuntimeError("dispatcher fault")
                return next_due_at()

            crashed: list[bool] = []
            monkeypatch.setattr(queue, "next_due_at", crash_once)
            numbers = [to("601000001"), to("601000002"), to("601000003")]
            with structlog.testing.capture_logs() as logs:
                assert (await gw.send(mail(numbers, "Claimed ahead"), numbers)).error is None
                await smsc.wait_for(1)
                await gw.until(lambda: bool(crashed))
                smsc.answer(1)  # the requeue waits for the submit in flight
                for n in (2, 3):
                    await smsc.wait_for(n)
                    smsc.answer(1)
                await gw.until(lambda: gw.states() == ["submitted"] * 3)
                assert dispatcher.possible_duplicates("main") == 0
    assert [(e["parts"], e["ids"]) for e in logged(logs, "dispatcher.requeued")] == [(2, [2, 3])]
    assert not logged(logs, "mt.possible_duplicate")
    assert len(smsc.received) == 3


async def test_a_late_refusal_for_now_leaves_the_resend_no_possible_duplicate(tmp_path: Path) -> None:
    # The submit goes unanswered, and its late answer is a throttle: the SMSC did not take it. The
    # part goes again at once, and that is no duplicate, although its note still tells of the wait.
    async with HeldSMSC() as smsc:
        cfg = one_link(tmp_path, smsc.port, response_timeout_seconds=0.3, late_answer_grace_seconds=60)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(to("601000001"), "Throttled late"))).error is None
                await smsc.wait_for(1)
                await gw.until(lambda: bool(logged(logs, "mt.unanswered")))
                session, seq, _verdict = smsc.held.pop(0)
                session.answer_submit(seq, None, status=ESME_RTHROTTLED)
                await smsc.wait_for(2)
                smsc.answer(1)
                await gw.until(lambda: gw.states() == ["submitted"])
                assert gw.daemon.dispatcher.possible_duplicates("main") == 0
    assert [e["outcome"] for e in logged(logs, "mt.late_answer")] == ["throttled"]
    assert not logged(logs, "mt.possible_duplicate")
