"""A late refusal of the submit that went unanswered takes back "may have reached the phone twice".

A part whose submit by link main went unanswered was sent again by link backup and taken; the word
that the phone may have it twice (`parts.resent_after`) is right while main's answer may still say
it took the first copy. When main's late answer refuses it instead, that copy never reached the
phone: the warning stayed on `smsgw queue show` and the panel's message page, and a second
`mt.possible_duplicate` was logged for the refusal itself; the link's count of possible duplicates
(status, /metrics) kept it after the warning was taken back. A late acceptance keeps the warning.

A real daemon against two SMPP servers over TCP (main holds each answer until the test releases it),
the panel through a real HTTP client, `smsgw` as a separate process on the same real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from gateway.config import load_config
from gateway.linkstatus import LinkView
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.smsc import FakeSMSC, HappySMSC, HeldSMSC
from tests.test_policy import to
from tests.test_process import smsgw
from tests.test_resent_shown import TWICE, panel_part_words, written
from tests.web_helpers import login, password_hash

# Answers to main's unanswered submit are still read for twice the grace after it went unanswered;
# the re-send goes after the grace: a second for the test to answer it once backup took the re-send.
GRACE = 1.5
# What follows a late answer, once written: one of these names what it did.
AFTER = ("mt.late_refusal_resent", "mt.possible_duplicate", "mt.late_refusal_held", "mt.hold_settled_late")


def _config(tmp_path: Path, main: int, backup: int) -> Path:
    path = written(tmp_path, main, backup)
    path.write_text(
        path.read_text().replace("late_answer_grace_seconds = 0.5", f"late_answer_grace_seconds = {GRACE}")
    )
    return path


def _after_late(logs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    late = next((i for i, e in enumerate(logs) if e["event"] == "mt.late_answer"), None)
    return [] if late is None else [e for e in logs[late:] if e["event"] in AFTER]


async def _shown(gw: Any, path: Path) -> tuple[str | None, str, str | None]:
    """The row's `resent_after`, `queue show`'s part lines and the panel's words of part 1."""
    conn = gw.store.db.conn
    message_id, resent_after = conn.execute("SELECT message_id, resent_after FROM parts").fetchone()
    shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
    assert shown.returncode == 0, shown.stderr
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
        assert (await login(c, STAFF)).status_code == 303
        page = (await c.get(f"/messages/{message_id}")).text
    return resent_after, shown.stdout, panel_part_words(page, 1)


def _counted(gw: Any) -> dict[str, int]:
    """The possible duplicates per link, as `smsgw status` and /metrics show them."""
    return {name: gw.daemon.dispatcher.possible_duplicates(name) for name in ("main", "backup")}


async def _sent_twice(gw: Any, main: FakeSMSC) -> None:
    links = LinkView(gw.daemon.dispatcher)
    await gw.until(lambda: all(v["state"] == "active" for v in links().values()))
    store = gw.store
    await store.write(lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator"))
    assert (await gw.send(mail(to("601123456"), "Twice maybe"))).error is None
    await main.wait_for(1)  # main holds its answer past the response timeout


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "accepted"])
async def test_a_late_answer_after_the_resend_was_taken(tmp_path: Path, refused: bool) -> None:
    async with HeldSMSC(reject_suffixes=["456"] if refused else []) as main, HappySMSC() as backup:
        path = _config(tmp_path, main.port, backup.port)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(load_config(path)) as gw:
                await _sent_twice(gw, main)
                await gw.until(lambda: gw.states() == ["delivered"])  # backup took it, and its receipt came
                main.answer(1)
                await gw.until(lambda: bool(_after_late(logs)))
                resent_after, queue_show, panel = await _shown(gw, path)
                counted = _counted(gw)
    [late] = [e for e in logs if e["event"] == "mt.late_answer"]
    assert (late["link"], late["outcome"]) == ("main", "rejected" if refused else "accepted")
    dup = [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert "part 1: delivered, attempts 2, link backup" in queue_show, queue_show
    if refused:  # the first copy never reached the phone: one SMS, said once at the re-send
        assert resent_after is None and "twice" not in queue_show and panel is None, (queue_show, panel)
        assert [(e["link"], e.get("earlier")) for e in dup] == [("backup", "main")], dup
        assert counted == {"main": 0, "backup": 0}  # status and /metrics count it no more
    else:  # the SMSC has both copies: the warning stays, and the second id is logged too
        assert [(e["link"], e.get("earlier")) for e in dup] == [("backup", "main"), ("main", None)], dup
        assert resent_after == "main" and f"  {TWICE}" in queue_show.splitlines() and panel == TWICE
        assert counted == {"main": 1, "backup": 0}


async def test_a_late_refusal_while_the_resend_is_on_the_wire(tmp_path: Path) -> None:
    # main's refusal comes while backup holds the re-send unanswered: its acceptance, after, keeps no
    # warning either (it was named at the re-send, before the refusal said otherwise).
    async with HeldSMSC(reject_suffixes=["456"]) as main, HeldSMSC() as backup:
        path = _config(tmp_path, main.port, backup.port)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(load_config(path)) as gw:
                await _sent_twice(gw, main)
                await backup.wait_for(1, timeout=10)
                main.answer(1)
                await gw.until(lambda: bool(_after_late(logs)))
                backup.answer(1)
                await gw.until(lambda: gw.states() == ["submitted"])
                resent_after, queue_show, panel = await _shown(gw, path)
                counted = _counted(gw)
    dup = [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert "part 1: submitted, attempts 2, link backup" in queue_show, queue_show
    assert resent_after is None and "twice" not in queue_show and panel is None, (queue_show, panel)
    assert [(e["link"], e.get("earlier")) for e in dup] == [("backup", "main")], dup
    assert counted == {"main": 0, "backup": 0}
