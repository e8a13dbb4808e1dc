"""A late answer read while the write that records it still waits its turn (the store behind an MO
flood's commits, a slow disk): the answer ended the part's hold and its watch had not yet written it,
so the dispatcher, finding the part due again and nothing holding it, sent it a second time, and the
write then found it on the wire and only named the duplicate. Against the real daemon and a fake SMSC
on a real socket; the writes are held back by gates, as a busy store holds them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.late_answers import LateAnswers
from gateway.store.db import Store
from tests.conftest import mail, running_gateway
from tests.fakes.smsc import LateAnswerSMSC
from tests.test_late_answer import link_config, to


class GatedWrites:
    """Writes of the functions named (a late answer's `settle`, a put-back's `release`) wait, before
    they are queued, until their gate is set; `done` names each as it was written."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
        self.gates = {name: asyncio.Event() for name in names}
        self.done: list[str] = []
        write = Store.write

        async def gated(store: Store, work: Callable[[], Any], **kwargs: Any) -> Any:
            name = getattr(work, "__name__", "")
            if name in self.gates:
                await self.gates[name].wait()
            try:
                return await write(store, work, **kwargs)
            finally:
                self.done.append(name)

        monkeypatch.setattr(Store, "write", gated)


LOOKED = ("mt.possible_duplicate", "mt.resend_withheld")  # the part sent again, or kept back


@pytest.mark.parametrize("first", ["release", "settle"])
async def test_a_late_answer_read_but_not_yet_written_keeps_the_part_from_going_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    # Sent at 0, unanswered at 0.3, answered at 0.6 (its write held back), due again at 1.3, when
    # the dispatcher finds it claimed with its answer read. The put-back that keeps it from going
    # is written before the answer's write, or after it (the answer then finds the part claimed).
    writes = GatedWrites(monkeypatch, "settle", "release")
    async with LateAnswerSMSC(answer_after=0.6) as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=0.3, late_answer_grace_seconds=1.0)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Once only"))
                await gw.until(lambda: any(e["event"] in LOOKED for e in logs), timeout=20)
                writes.gates[first].set()
                await gw.until(lambda: first in writes.done)
                for gate in writes.gates.values():
                    gate.set()
                await gw.until(lambda: gw.states() == ["delivered"])
                db = gw.store.db.conn
                unmatched = db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0]
                attempts = db.execute("SELECT attempts FROM parts").fetchone()[0]
                await asyncio.sleep(1.5)  # past the put-back's due time: a part it requeued would go
    assert [s.text for s in smsc.received] == ["Once only"]
    assert not [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert unmatched == 0
    # Put back first, the look that kept it back is no attempt; settled while claimed, it counts as a
    # re-send cancelled while paced does (`test_late_answer_cancels_a_resend_still_waiting_for_its_turn`).
    assert attempts == (1 if first == "release" else 2)


async def test_a_part_kept_back_for_its_answer_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer's write waits while the dispatcher looks at the part again and again (each second, as
    # behind an MO flood's commits): one line for the part, not one a look.
    writes = GatedWrites(monkeypatch, "settle")
    looks: list[int] = []
    read = LateAnswers.answer_read

    def counted(self: LateAnswers, part_id: int) -> bool:
        found = read(self, part_id)
        if found:
            looks.append(part_id)
        return found

    monkeypatch.setattr(LateAnswers, "answer_read", counted)
    async with LateAnswerSMSC(answer_after=0.6) as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=0.3, late_answer_grace_seconds=1.0)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Once only"))
                await gw.until(lambda: len(looks) >= 3, timeout=30)
                writes.gates["settle"].set()
                await gw.until(lambda: gw.states() == ["delivered"])
    assert [s.text for s in smsc.received] == ["Once only"]
    assert len([e for e in logs if e["event"] == "mt.resend_withheld"]) == 1
