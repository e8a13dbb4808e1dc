"""A daemon paused longer than the response timeout (a VM paused, SIGSTOP) keeps its link and takes
the answers that came meanwhile (`smsc.stalls`).

On waking, the loop ran every due response timer before the reads it had queued: ten submits timed
out at once and the SMPP session was ended ("no submit_sm_resp to 10 submits in a row"), a CIMD2
one at the first; the answers died with the connection, and each SMS went a second time after the
late-answer grace.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from smsc.base import ACK_LATE_SECONDS
from smsc.cimd2.packet import Op, P, Packet
from smsc.stalls import (
    AFTER_STALL_SECONDS,
    PULSE_SECONDS,
    RECHECK_SECONDS,
    STALL_SECONDS,
    ResponseTimer,
    earliest,
)
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.fakes.cimd2 import ScriptedSmsc
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_late_answer import next_submit
from tests.test_mo_crash import mo_states
from tests.test_process import start_daemon

STOPPED_SECONDS = 3.0  # the pause, against a response timeout of 1 s
NUMBERS = [f"60100{i:04d}@{DOMAIN}" for i in range(10)]


def write_config(tmp_path: Path, smsc_port: int, smtp_port: int, kind: str = "smpp") -> Path:
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port)
    text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 1")
    config.write_text(text.replace('type = "smpp"', f'type = "{kind}"'))
    return config


def part_states(tmp_path: Path) -> list[str]:
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as db:
        return [r[0] for r in db.execute("SELECT state FROM parts ORDER BY id")]


def logged(tmp_path: Path, *names: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "daemon.log").read_text().splitlines()
    return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e["event"] in names]


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def paused(proc: subprocess.Popen[bytes], meanwhile: Callable[[], Awaitable[None]]) -> None:
    """SIGSTOP the daemon, run `meanwhile` (the SMSC answers into its socket), wait past its
    response timeout, SIGCONT."""
    proc.send_signal(signal.SIGSTOP)
    try:
        await meanwhile()
        await asyncio.sleep(STOPPED_SECONDS)
    finally:
        proc.send_signal(signal.SIGCONT)


async def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0


async def test_smpp_answers_that_came_during_a_pause_keep_the_link_and_settle_the_parts(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    async with HeldSMSC() as smsc:
        proc = await start_daemon(write_config(tmp_path, smsc.port, smtp_port), smtp_port)
        try:
            sent = await asyncio.to_thread(send_blocking, smtp_port, mail(NUMBERS, "Paused"), NUMBERS)
            assert sent.error is None
            await smsc.wait_for(10, timeout=20)  # a full window on the wire

            async def answer() -> None:
                smsc.answer(10)

            await paused(proc, answer)
            await until(lambda: part_states(tmp_path) == ["submitted"] * 10)
            await asyncio.sleep(1.5)  # a link dropped now would bind again, a part go again
            assert len(smsc.stats.binds) == 1
            assert len(smsc.received) == 10
        finally:
            await stop(proc)
    assert not logged(tmp_path, "smpp.link_down", "mt.unanswered", "mt.possible_duplicate")


async def test_cimd2_an_answer_that_came_during_a_pause_keeps_the_link_and_settles_the_part(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    async with ScriptedSmsc() as peer:
        proc = await start_daemon(write_config(tmp_path, peer.port, smtp_port, "cimd2"), smtp_port)
        try:
            conn = await peer.accept()
            await conn.login()
            sent = await asyncio.to_thread(send_blocking, smtp_port, mail(NUMBERS[0], "Paused"), NUMBERS[:1])
            assert sent.error is None
            submit = await next_submit(conn)

            async def answer() -> None:
                resp = Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601000000"),
                                   (P.SCTS, "261121045622"))  # fmt: skip
                conn.send(resp)
                await conn.writer.drain()

            await paused(proc, answer)
            await until(lambda: part_states(tmp_path) == ["submitted"])
            try:
                again = await peer.accept(within=1.5)  # the link gave the connection up
            except TimeoutError:
                again = None
            assert again is None
        finally:
            await stop(proc)
    assert not logged(tmp_path, "cimd2.submit_unanswered", "mt.unanswered", "mt.possible_duplicate")


async def test_a_timer_late_by_a_stall_waits_once_more_and_then_fires() -> None:
    # Not for ever: a submit still unanswered after the wait more is one the SMSC left unanswered.
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    ResponseTimer(loop, 0.05, lambda: fired.append(loop.time()))
    time.sleep(STALL_SECONDS + 0.3)  # the loop stands still past the timer
    woke = loop.time()
    await asyncio.sleep(RECHECK_SECONDS / 2)
    assert fired == []
    await until(lambda: bool(fired), timeout=5)
    assert RECHECK_SECONDS <= fired[0] - woke < RECHECK_SECONDS + 0.5
    on_time: list[bool] = []
    ResponseTimer(loop, 0.05, lambda: on_time.append(True))
    await asyncio.sleep(0.3)
    assert on_time == [True]  # a timer on time fires at its time


async def test_an_mo_the_smsc_delivers_again_during_a_pause_is_one_sms(tmp_path: Path) -> None:
    # The phone answers once while the daemon stands still; the SMSC, waiting in vain for our
    # deliver_sm_resp, delivers it again every 5.25 s (SMSCs wait 10 to 60 s; more than
    # ACK_LATE_SECONDS in any case). Read side by side after the pause, the copies looked sent moments
    # apart, which an SMSC waiting on the first never does: each was taken for a new SMS of the
    # phone, mailed (and, to a premium number, charged) once per copy.
    smtp_port = free_port()
    db_path = tmp_path / "state" / "smsgw.db"
    resend = ACK_LATE_SECONDS + 0.25
    async with HappySMSC(resend_timeout=resend) as smsc:
        proc = await start_daemon(write_config(tmp_path, smsc.port, smtp_port), smtp_port)
        try:
            await smsc.wait_until(lambda: bool(smsc.sessions))
            sent = await asyncio.to_thread(send_blocking, smtp_port, mail(NUMBERS[0], "Paused"), NUMBERS[:1])
            assert sent.error is None
            await smsc.wait_for(1)
            await asyncio.sleep(0.5)  # its report read: the daemon has read from the SMSC before
            proc.send_signal(signal.SIGSTOP)
            try:
                assert await smsc.inject_mo("+48601000000", "+48100200300", "Tak, będę") == 1
                await asyncio.sleep(2 * resend + 0.5)  # the first copy and two more in the socket
            finally:
                proc.send_signal(signal.SIGCONT)
            await until(lambda: len(mo_states(db_path)) >= 3 and "new" not in mo_states(db_path))
            await asyncio.sleep(1.0)  # every copy read and judged
            states = mo_states(db_path)
        finally:
            await stop(proc)
    assert [s for s in states if s != "duplicate"] == ["mailed"], states


async def test_what_is_read_after_a_stall_may_have_come_in_when_the_loop_last_ran() -> None:
    loop = asyncio.get_running_loop()
    earliest(loop, loop.time())  # the watch starts at a first read
    await asyncio.sleep(PULSE_SECONDS * 2)
    now = loop.time()
    assert earliest(loop, now) == now  # a running loop: when it is read
    before = loop.time()
    time.sleep(STALL_SECONDS + 0.5)  # the loop stands still
    # Read before the pulse (a loop that runs reads first) and after it (timers first): either way
    # as early as the loop's last turn before the stall.
    assert earliest(loop, loop.time()) <= before
    await asyncio.sleep(0)
    await asyncio.sleep(PULSE_SECONDS / 2)
    assert earliest(loop, loop.time()) <= before
    await asyncio.sleep(AFTER_STALL_SECONDS + PULSE_SECONDS)
    now = loop.time()
    assert earliest(loop, now) == now  # long after it: when it is read
