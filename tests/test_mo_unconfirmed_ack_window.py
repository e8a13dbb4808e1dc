"""An MO whose acknowledgement never got confirmed (the SMSC answered nothing written after it, on a
connection that stayed up), then the same text from the phone: the SMSC's retry only within minutes.

An unconfirmed acknowledgement made every identical MO for a day the SMSC's copy: after a burst whose
acknowledgements were written late, the same vote from such a phone 3 minutes on was dropped as
`duplicate`, its charge lost. Within `DOUBT_SECONDS` of it (or of the link's bind since) it is still the
SMSC's retry; past them, with the link up all along, the phone's new SMS.
The gateway against a fake SMPP SMSC over TCP that reads none of the gateway's answers; the
daemon's clock is moved on, not slept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.store.redelivery import DOUBT_SECONDS
from smsc.base import ACK_LATE_SECONDS
from tests.test_mo_crash import AckLosingSMSC, mo_states
from tests.test_mo_redelivery import PHONE, charges, premium_gateway


@pytest.mark.parametrize(
    ("later", "states", "charged"),
    [(180.0, ["premium", "premium"], 2), (DOUBT_SECONDS / 2, ["premium", "duplicate"], 1)],
    ids=["3-minutes-on", "within-the-retry-window"],
)
async def test_the_same_vote_after_an_unconfirmed_ack_is_new_past_the_smscs_retry_window(
    tmp_path: Path, later: float, states: list[str], charged: int
) -> None:
    ahead = [0.0]
    async with AckLosingSMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, _sink):
        await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: mo_states(cfg.db_path) == ["premium"])
        await gw.until(lambda: smsc.stats.commands["ignored"] >= 2)  # its answer and the enquire_link after
        # Past the wait the connection judges copies by itself (`smsc.mocopies`): a real one, as it
        # reads the loop's time, not the daemon's clock.
        await asyncio.sleep(ACK_LATE_SECONDS + 0.5)
        ahead[0] += later
        smsc.losing = False
        assert await smsc.inject_mo(PHONE, "7355", "KP123 A") == 1
        await gw.until(lambda: len(mo_states(cfg.db_path)) == 2)
        assert len(smsc.stats.binds) == 1  # the link stayed up: no bind since to deliver again after
        assert (
            gw.store.db.conn.execute("SELECT COUNT(*) FROM mo WHERE acked_at IS NOT NULL").fetchone()[0] == 0
        )
        assert mo_states(cfg.db_path) == states
        assert len(charges(cfg.db_path)) == charged
