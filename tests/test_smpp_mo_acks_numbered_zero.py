"""An SMSC that answers our enquire_link with sequence number 0, or refuses it with a generic_nack
numbered 0, over TCP against the gateway.

The answer numbered 0 kept the session (it is the keep-alive's answer), but it confirmed none of the MO
acknowledgements written before the enquire_link: their rows kept `acked_at` NULL, no further
enquire_link confirmed anything on that connection, and the phone's genuine repeat of the same vote
seconds later was dropped as the SMSC's copy of it, its charge lost. The answer is the oldest waiting
enquire_link's now. A generic_nack numbered 0 to the keep-alive (an SMSC that takes no enquire_link and
nacks it so) ended nothing: the session was dropped each keep-alive period as unanswered.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from smsc.base import LinkState, Outcome
from smsc.smpp.codec import ENQUIRE_LINK, ENQUIRE_LINK_RESP, encode
from tests.fakes.smsc import HappySMSC, _FakeSession
from tests.test_mo_redelivery import CLIENT, PHONE, acks_recorded, charges, first_lines, premium_gateway
from tests.test_smpp_link import running_link, sms


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


class _NackingSession(_ZeroSession):
    nack_status = 0x03  # ESME_RINVCMDID


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


async def test_a_keepalive_refused_by_a_generic_nack_numbered_zero_keeps_the_session() -> None:
    async with HappySMSC() as smsc:
        smsc.server.session_class = _NackingSession
        timers = {"enquire_link_seconds": 0.05, "response_timeout_seconds": 0.3}
        async with running_link(smsc.port, **timers) as (link, ev):
            # Several keep-alive periods, each nacked with 0: each dropped the session.
            await smsc.wait_until(lambda: smsc.stats.commands["enquire_link"] >= 12, timeout=20)
            await asyncio.sleep(0.4)  # past the response timeout of the last one
            assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
            assert len(smsc.stats.binds) == 1 and ev.states.count(LinkState.ACTIVE) == 1, ev.states
