"""A long premium vote the phone sends again under the same one-octet reference, over SMPP (no stamp).

A set whose parts all repeat parts joined already was the SMSC's copy whenever it came within two
minutes of them, whatever became of their acknowledgements: the phone's same two-part vote 10 s on,
after the SMSC had read our answers to the first, was recorded `duplicate`, both parts: paid by the
phone, billed to nobody, never mailed. An SMSC delivers a part again only while it may have missed
our answer (as for a whole text, `gateway.store.redelivery`): then the copy is still dropped, within
`DOUBT_SECONDS` of it (or of the link's bind since). A part whose answer was never known to be read
made every identical one the SMSC's for a day: the same vote 3 minutes on was dropped on arrival.

The daemon against a fake SMPP SMSC over TCP, which reads our answers or (`AckLosingSMSC.losing`)
loses them; the daemon's clock is moved on, not slept."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.simulator.smpp_texts import address_fields, mo_parts
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import Running
from tests.test_mo_crash import AckLosingSMSC, mo_states
from tests.test_mo_redelivery import CLIENT, PHONE, charges, first_lines, premium_gateway

VOTE = "KP123 " + "A" * 147 + "B" * 100  # two parts
REF = 0x42


def parts(first_seq: int) -> bytes:
    """The vote's two deliver_sm, back to back, numbered from `first_seq`."""
    return b"".join(
        encode_sm(
            DELIVER_SM,
            first_seq + i,
            esm_class=esm,
            data_coding=dc,
            short_message=sm,
            **address_fields(PHONE, "7355"),
        )
        for i, (esm, dc, sm) in enumerate(mo_parts(VOTE, REF, 2))
    )


def parts_acked(gw: Running) -> int:
    """The parts whose acknowledgement the SMSC is known to have read."""
    q = "SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL AND acked_at IS NOT NULL"
    return int(gw.store.db.conn.execute(q).fetchone()[0])


def settled(gw: Running) -> int:
    """The parts stored, or 0 while a part waits for its set or a whole text for its handling."""
    db = gw.store.db.conn
    if db.execute("SELECT COUNT(*) FROM mo WHERE state IN ('segment', 'new')").fetchone()[0]:
        return 0
    return int(db.execute("SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL").fetchone()[0])


@pytest.mark.parametrize(
    ("losing", "later", "states", "votes"),
    [
        (False, 10.0, ["premium", "premium"], 2),
        (True, 10.0, ["premium", "duplicate", "duplicate"], 1),
        (True, 180.0, ["premium", "premium"], 2),
    ],
    ids=["acknowledgements-read", "acknowledgements-lost", "lost-3-minutes-before"],
)
async def test_the_same_long_vote_again_is_new_unless_the_smsc_may_still_be_retrying_it(
    tmp_path: Path, losing: bool, later: float, states: list[str], votes: int
) -> None:
    ahead = [0.0]
    async with AckLosingSMSC() as smsc, premium_gateway(tmp_path, smsc, ahead) as (gw, cfg, sink):
        smsc.losing = losing
        await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
        smsc.send_raw(parts(101))
        await gw.until(lambda: mo_states(cfg.db_path) == ["premium"])
        if losing:
            await gw.until(lambda: smsc.stats.commands["ignored"] >= 3)  # both answers and the enquire_link
        else:
            await gw.until(lambda: parts_acked(gw) == 2)
        # Past the 2 s after a read acknowledgement in which the SMSC may still repeat; 3 minutes on,
        # the link up all along, past the window in which it retries one it missed (`DOUBT_SECONDS`).
        ahead[0] += later
        smsc.losing = False
        smsc.send_raw(parts(103))
        await gw.until(lambda: settled(gw) == 4)  # both parts of each copy, none waiting or unhandled
        assert mo_states(cfg.db_path) == states
        assert len(charges(cfg.db_path)) == votes
        await gw.until(lambda: len(first_lines(sink, CLIENT)) == votes)
