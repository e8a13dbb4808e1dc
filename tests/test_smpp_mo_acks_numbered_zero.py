"""An SMSC that answers our enquire_link with sequence number 0, over TCP against the gateway.

The answer numbered 0 kept the session (it is the keep-alive's answer), but it confirmed none of the MO
acknowledgements written before the enquire_link: their rows kept `acked_at` NULL, no further
enquire_link confirmed anything on that connection, and the phone's genuine repeat of the same vote
seconds later was dropped as the SMSC's copy of it, its charge lost. The answer is the oldest waiting
enquire_link's now.
"""

from __future__ import annotations

import struct
from pathlib import Path

from smsc.smpp.codec import ENQUIRE_LINK, ENQUIRE_LINK_RESP, encode
from tests.fakes.smsc import HappySMSC, _FakeSession
from tests.test_mo_redelivery import CLIENT, PHONE, acks_recorded, charges, first_lines, premium_gateway


class _ZeroSession(_FakeSession):
    """Answers every enquire_link numbered 0: with enquire_link_resp, or with `nack_status` refused."""

    nack_status: int | None = None

    async def dispatch(self, raw: bytes) -> None:
        (command_id,) = struct.unpack_from(">I", raw, 4)
        if command_id != ENQUIRE_LINK:
            await super().dispatch(raw)
            return
        self.server.stats.commands["enquire_link"] += 1
        self.server.changed()
        if self.nack_status is None:
            self.write(encode(ENQUIRE_LINK_RESP, 0))
        else:
            self.nack(0, self.nack_status)


async def test_a_vote_sent_again_after_an_ack_confirmed_by_an_answer_numbered_zero_is_charged_again(
    tmp_path: Path,
) -> None:
    ahead = [0.0]
    async with HappySMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, sink):
        smsc.server.session_class = _ZeroSession
        smsc.drop_all()  # the next session answers with 0
        await smsc.wait_until(lambda: len(smsc.stats.binds) == 2 and len(smsc.sessions) == 1, 20)
        db = gw.store.db.conn
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: smsc.stats.deliver_answered == 1)
        # The enquire_link written after the acknowledgement, answered with 0, confirms it.
        await gw.until(lambda: acks_recorded(db, 1), timeout=5)
        ahead[0] += 7  # the phone votes again 7 s on
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: smsc.stats.deliver_answered == 2)
        unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent'"
        await gw.until(lambda: len(charges(cfg.db_path)) == 2 and db.execute(unsent).fetchone()[0] == 0)
        assert charges(cfg.db_path) == [("A", 300), ("A", 300)]
        assert first_lines(sink, CLIENT) == ["A", "A"]
