"""A session the SMSC ends in order (its unbind) or by speaking garbage (bytes no PDU can be framed
from) is the SMSC's doing, not one SMS's: the submits it leaves unanswered are lost with it, but the
oldest of them is not suspected of ending sessions (`gateway.outcomes`). A session the SMSC drops
without a word still blames it (tests/test_session_killer_sms.py).

Before, both closed the session with the oldest unanswered submit blamed (`SubmitResult.lost_behind`
0): an SMSC that unbound twice with submits out (a restart, a failover) had the oldest of them
suspected, backed off, and held for a human at the fifth.

A real gateway on 127.0.0.1 and a fake SMPP SMSC on TCP that holds the submits until told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC

SUSPECTED = "mt.session_killer_suspected"
OLDEST = "601500000"
NUMBERS = [OLDEST, "601500001", "601500002"]


async def two_sessions_ended_with_submits_out(
    tmp_path: Path, end: Callable[[HeldSMSC], Awaitable[None]], logged: str
) -> None:
    """Three SMS on the wire unanswered when the SMSC ends the session, twice in a row; on the third
    session it answers them. The oldest is not suspected: it goes first again, with no back-off."""
    async with HeldSMSC() as smsc:
        # Taken or not, no receipt comes: the submits lost go again at the rebind, not the settle after.
        text = config_text(tmp_path, smsc_port=smsc.port, smsc_extra="lost_submit_settle_seconds = 0")
        cfg = parse_config(text, source="t", base_dir=tmp_path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                tos = [f"{n}@{DOMAIN}" for n in NUMBERS]
                assert (await gw.send(mail(tos, "three"), tos)).error is None
                for _round in range(2):
                    await smsc.wait_until(lambda: len(smsc.held) >= 3, timeout=10)
                    session = smsc.held[0][0]
                    smsc.held.clear()
                    await end(smsc)
                    await smsc.wait_until(session.closed.is_set, timeout=10)
                await smsc.wait_until(lambda: len(smsc.held) >= 3, timeout=10)
                smsc.answer(3)
                await gw.until(lambda: all(s in ("submitted", "delivered") for s in gw.states()), timeout=10)
                rows = gw.store.db.conn.execute(
                    "SELECT destination, attempts FROM parts ORDER BY id"
                ).fetchall()
    assert len([e for e in logs if e["event"] == logged]) == 2  # each session ended as meant
    assert not [e for e in logs if e["event"] == SUSPECTED]
    # Each session got them in their order: the oldest was not put last as a suspect.
    assert [s.destination for s in smsc.received] == [f"+48{n}" for n in NUMBERS] * 3
    assert [attempts for _d, attempts in rows] == [3, 3, 3]
    lost = [e for e in logs if e["event"] == "mt.link_lost_on_the_wire"]
    assert len(lost) == 6 and all(e.get("retry_in") is None for e in lost)


async def test_an_smsc_unbinding_twice_with_submits_out_suspects_no_sms(tmp_path: Path) -> None:
    async def unbind(smsc: HeldSMSC) -> None:
        await smsc.unbind_all()

    await two_sessions_ended_with_submits_out(tmp_path, unbind, "smpp.unbind_by_smsc")


async def test_an_smsc_sending_unframeable_bytes_twice_with_submits_out_suspects_no_sms(
    tmp_path: Path,
) -> None:
    async def garbage(smsc: HeldSMSC) -> None:
        smsc.send_raw(b"\xff" * 16)  # a command_length of 4 GiB: no PDU boundary can be found after it

    await two_sessions_ended_with_submits_out(tmp_path, garbage, "smpp.garbage")
