"""/healthz while the store is full (RELIABILITY.md F8): real HTTP against the real daemon, real SMTP.

It answered 200 "ok" while every mail got `452 4.3.1`: its probe committed an empty transaction,
which writes no page and so commits on a full disk too. The store is made full as SQLite sees a full
disk: `PRAGMA max_page_count` at its current size makes every write that needs a new page fail with
SQLITE_FULL. The limit belongs to the connection that sets it (another connection to the same file
keeps growing), so it is set on the daemon's own.
"""

from __future__ import annotations

import asyncio
import errno
import re
import time
from pathlib import Path

import pytest
import structlog.testing

from gateway import housekeeping
from gateway.bitelog import FaultLog
from gateway.config import load_config
from gateway.housekeeping import read_status, write_status
from gateway.smtp import replies
from gateway.store import trouble
from smsc.base import LinkState
from tests.conftest import Running, config_text, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_faults import smtp_code, to
from tests.test_process import smsgw
from tests.test_web_browser import WEB, _get

NO_LIMIT = 1073741823  # SQLite's default max_page_count


def fill_store(gw: Running) -> None:
    """The daemon's database may not grow past its current size: SQLITE_FULL, as on a full disk."""
    pages = gw.store.db.conn.execute("PRAGMA page_count").fetchone()[0]
    gw.store.db.conn.execute(f"PRAGMA max_page_count = {pages}")


def free_store(gw: Running) -> None:
    gw.store.db.conn.execute(f"PRAGMA max_page_count = {NO_LIMIT}")


async def refuse_a_mail(gw: Running) -> None:
    """The store made full, and a mail it refuses for want of room."""
    fill_store(gw)
    numbers = [to(f"60112{i:04d}") for i in range(10)]
    res = await gw.send(mail(numbers, "no room for this " * 90), numbers)
    assert smtp_code(res) == 452
    assert replies.STORE_FULL.split(" ", 2)[1].encode() in res.error.smtp_error  # type: ignore[union-attr]


async def test_healthz_answers_503_while_the_full_store_refuses_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        health = f"http://127.0.0.1:{gw.daemon.web.port}/healthz"
        # Bound first (on a loaded machine the bind came after the first look: "no link is bound").
        await gw.until(lambda: gw.daemon.links["main"].state is LinkState.ACTIVE)
        assert await asyncio.to_thread(_get, health) == (200, "ok\n")
        await refuse_a_mail(gw)
        status, text = await asyncio.to_thread(_get, health)
        assert status == 503, text
        assert text.startswith("store failing for "), text
        assert ": database or disk is full (failed writes: " in text, text
        # Room again: mail is taken at once, and /healthz says ok once no write has failed for a while.
        free_store(gw)
        assert (await gw.send(mail(to("601123456"), "Room again"))).error is None
        assert (await asyncio.to_thread(_get, health))[0] == 503
        monkeypatch.setattr(trouble, "TROUBLE_RECENT_SECONDS", 0.5)
        await asyncio.sleep(0.6)
        # On a loaded machine the start's retention purge can fall in the full window: its failure,
        # kept once writes return (`failures_unkept`, every 5 s), runs the purge again, which ends it.
        deadline = time.monotonic() + 20
        while (said := await asyncio.to_thread(_get, health)) != (
            200,
            "ok\n",
        ) and time.monotonic() < deadline:
            assert said[0] == 200 and "retention purge failing" in said[1], said
            await asyncio.sleep(0.2)
        assert said == (200, "ok\n")


async def test_smsgw_status_says_the_store_is_failing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    async with HappySMSC() as smsc:
        config.write_text(config_text(tmp_path, smsc_port=smsc.port))
        config.chmod(0o640)
        async with running_gateway(load_config(config)) as gw:
            await refuse_a_mail(gw)
            refused_at = time.time()
            state_dir = gw.config.state_dir
            await gw.until(lambda: (read_status(state_dir) or {}).get("updated_at", 0) > refused_at, 10)
            res = await asyncio.to_thread(smsgw, config, "status")
    assert res.returncode == 1, res.stderr  # running, in trouble
    assert "daemon    running" in res.stdout
    assert "store     failing since " in res.stdout, res.stdout
    # One refused mail is one or two failed writes: SQLite meets the full disk at the statement or only
    # at the COMMIT (then the write is tried again alone, and a housekeeping write may fail beside it).
    assert re.search(r": database or disk is full, [12] failed write\(s\), the last ", res.stdout), res.stdout
    # Not "refused until it writes again": it may have written since, and the line stays 30 s.
    assert " s ago; new mail is refused while writes fail (shown until none has for 30 s)" in res.stdout


def test_the_status_file_is_kept_current_when_the_disk_has_no_room_for_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new status is written beside the old and renamed over it; on a full disk that write fails
    # (ENOSPC) and `smsgw status` said "not answering" 30 s later, while the daemon ran on. The old
    # file's blocks take the new status. (The temporary file is never written through a link, so
    # /dev/full cannot stand behind its name: the full disk is the write's own refusal here.)
    path = tmp_path / "status.json"
    write_status(path, {"queued": 1, "links": {"sim": {"state": "active", "detail": "x" * 300}}})

    def full(_path: Path, _text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(housekeeping, "write_private", full)
    write_status(path, {"queued": 7, "links": {}, "store": "failing"})
    status = read_status(tmp_path)
    assert status is not None and status["queued"] == 7 and status["store"] == "failing"
    assert time.time() - status["updated_at"] < 60

    # No old file to take it: the failure is logged, once a second at most, and names the error.
    # (A throttle of this test's own: the process's may have just logged another test's failure.)
    monkeypatch.setattr(housekeeping, "_status_faults", FaultLog(housekeeping.log))
    with structlog.testing.capture_logs() as logs:
        for _ in range(20):
            write_status(tmp_path / "other.json", {"queued": 1})
    lines = [e for e in logs if e["event"] == "status.write_failed"]
    assert 1 <= len(lines) <= 2 and "No space left" in lines[0]["error"]
