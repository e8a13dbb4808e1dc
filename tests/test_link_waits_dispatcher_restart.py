"""The dispatcher notices a link coming up by counting them (`Dispatcher.link_up`): a link that went
down and came up again between two looks is counted (test_link_waits), where the links up compared
between two looks were the same. The one look the count does not give is a restarted dispatcher's: its
walk through the parts waiting for a link may have been cut off by the crash (the claim's write that
made them due rolled back), and with every link up all along no link comes up to start it again. So a
run begins with a look, as if one had come up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import dispatcher
from tests.conftest import running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_link_waits import delivered_then_waiting_for_main, two_links


async def test_a_restarted_dispatcher_finds_the_parts_waiting_for_a_link_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = dispatcher.claimer
    crash = [False]

    def claimer(store: Any, end: Any, limit: int, now: float) -> Callable[[], Any]:
        if not crash[0]:
            return original(store, end, limit, now)
        crash[0] = False  # this claim fails however often the store runs it again; the next is whole

        def claim() -> Any:
            raise sqlite3.OperationalError("disk I/O error")

        return claim

    monkeypatch.setattr(dispatcher, "claimer", claimer)
    async with HappySMSC() as main, HappySMSC() as backup:
        async with running_gateway(two_links(tmp_path, main.port, backup.port)) as gw:
            await delivered_then_waiting_for_main(gw)  # as a part left waiting by a walk the crash cut off
            crash[0] = True
            gw.daemon.dispatcher.wake()
            await gw.until(lambda: gw.daemon.supervisor.snapshot()["dispatcher"]["restarts"] == 1)
            await main.wait_for(2, timeout=15)
            await gw.until(lambda: gw.states() == ["delivered"])
    assert backup.received == []
