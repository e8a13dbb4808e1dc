"""A slow SMSC must not get a part twice, and a part it cannot confirm must not stay silent forever.

Issue 9 item 3 (a submit_sm_resp after the response timeout) and item 10 (status 0 with an empty
message id), each against the real daemon and a fake SMSC on a real socket.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import housekeeping
from gateway.config import Config, parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, config_text, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc
from tests.fakes.smsc import LateAnswerSMSC, NoMessageIdSMSC, SilentSMSC
from tests.test_attempts_spent_maybe_sent import bounce_text


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def link_config(tmp_path: Path, port: int, **smsc: Any) -> Config:
    cfg = make_config(tmp_path, smsc_port=port, relay_port=smsc.pop("relay_port", None), **smsc.pop("gw", {}))
    return cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=smsc)]})


def warnings(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event and e["log_level"] == "warning"]


async def test_late_submit_answer_settles_the_part_without_a_resend(tmp_path: Path) -> None:
    # Item 3: every answer comes 1 s after a 0.3 s response timeout, then the receipt. Each part
    # is sent once, settled by its late answer, and its receipt matches; the wait is logged.
    numbers = [to(f"60112{i:04d}") for i in range(3)]
    async with LateAnswerSMSC(answer_after=1.0) as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=0.3, late_answer_grace_seconds=60)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                assert (await gw.send(mail(numbers, "Slow but sure"), numbers)).error is None
                db = gw.store.db.conn
                await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] >= 3)
                assert gw.states() == ["delivered"] * 3
                assert db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0] == 0
                assert len(smsc.received) == 3
                parts = [r[0] for r in db.execute("SELECT id FROM parts ORDER BY id")]
    assert sorted(e["part"] for e in warnings(logs, "mt.unanswered")) == parts
    assert not warnings(logs, "mt.possible_duplicate")


async def test_late_answer_cancels_a_resend_still_waiting_for_its_turn(tmp_path: Path) -> None:
    # Item 3: the grace is over and the part is claimed again, but the link's rate (one SMS per
    # 2.5 s) holds the re-send back; the late answer arriving meanwhile settles the part and the
    # re-send never goes out. A later mail, paced behind it, is the marker.
    # Sent at 0, unanswered at 0.3, claimed again at 1.0, answered at 1.4 (the link takes answers
    # until 1.7), and the rate would let the re-send go at 2.5.
    async with LateAnswerSMSC(answer_after=1.4) as smsc:
        timers = {"response_timeout_seconds": 0.3, "late_answer_grace_seconds": 0.7}
        cfg = link_config(tmp_path, smsc.port, max_per_second=0.4, **timers)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Slow but sure"))
                await gw.until(lambda: gw.states() == ["delivered"])
                await gw.send(mail(to("601123457"), "Marker"))
                await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received), timeout=10)
                db = gw.store.db.conn
                # Claimed twice: the answer came while the second claim waited for the rate limit.
                assert db.execute("SELECT attempts FROM parts ORDER BY id LIMIT 1").fetchone()[0] == 2
                assert db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0] == 0
    assert [s.text for s in smsc.received] == ["Slow but sure", "Marker"]
    assert not warnings(logs, "mt.possible_duplicate")


async def test_unanswered_part_is_sent_again_after_the_grace_as_a_possible_duplicate(tmp_path: Path) -> None:
    # Item 3: no answer at all within the grace: the part goes again, once the grace is over, and
    # the duplicate risk is logged at warning with the part id.
    async with SilentSMSC() as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=0.2, late_answer_grace_seconds=0.5)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Into the void"))
                await smsc.wait_for(1)
                first = time.monotonic()
                await smsc.wait_for(2)
                waited = time.monotonic() - first
                part = gw.store.db.conn.execute("SELECT id FROM parts").fetchone()[0]
    assert waited >= 0.2 + 0.5 - 0.05  # the response timeout and then the grace, not a quick retry
    assert [e["part"] for e in warnings(logs, "mt.possible_duplicate")][:1] == [part]


async def test_smpp_submit_unanswered_with_no_grace_is_sent_again_as_a_possible_duplicate(
    tmp_path: Path,
) -> None:
    # No grace: the part goes again without waiting for a late answer, but the submit was on the
    # wire and the SMSC may have it, so the re-send is logged and counted as a possible duplicate.
    async with SilentSMSC() as smsc:
        cfg = link_config(tmp_path, smsc.port, response_timeout_seconds=0.2, late_answer_grace_seconds=0)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.send(mail(to("601123456"), "Into the void"))
                await smsc.wait_for(2)
                part = gw.store.db.conn.execute("SELECT id FROM parts").fetchone()[0]
                assert gw.daemon.dispatcher.possible_duplicates("main") >= 1
    assert [e["part"] for e in warnings(logs, "mt.possible_duplicate")][:1] == [part]


async def next_submit(conn: PeerConnection) -> Packet:
    """The client's next submit; alives on the way are answered."""
    while (packet := await conn.next()).op != Op.SUBMIT:
        if packet.op == Op.ALIVE:
            conn.send(Packet(Op.ALIVE_RESP, packet.number))
    return packet


async def test_cimd2_submit_unanswered_with_no_grace_is_sent_again_as_a_possible_duplicate(
    tmp_path: Path,
) -> None:
    # With no late-answer grace the submit the SMSC never answered is TEMPORARY, and the link drops
    # the connection; but it was on the wire, so its re-send is logged and counted as a possible
    # duplicate, as after a connection lost with a submit on it.
    async with ScriptedSmsc() as peer:
        text = config_text(tmp_path, smsc_port=peer.port).replace('type = "smpp"', 'type = "cimd2"')
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        timers = {"response_timeout_seconds": 0.3, "late_answer_grace_seconds": 0}
        cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update=timers)]})
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                first = await peer.accept()
                await first.login()
                await gw.send(mail(to("601123456"), "Into the void"))
                unanswered = await next_submit(first)
                again = await peer.accept()  # the link gave the silent connection up
                await again.login()
                resent = await next_submit(again)
                assert resent.get(P.USER_DATA) == unanswered.get(P.USER_DATA)
                again.send(Packet.make(Op.SUBMIT_RESP, resent.number, (P.DESTINATION, "+48601123456"),
                                       (P.SCTS, "261121045622")))  # fmt: skip
                await gw.until(lambda: gw.states() == ["submitted"])
                part = gw.store.db.conn.execute("SELECT id FROM parts").fetchone()[0]
                assert gw.daemon.dispatcher.possible_duplicates("main") == 1
    assert [e["part"] for e in warnings(logs, "mt.possible_duplicate")] == [part]
    assert not warnings(logs, "mt.unanswered")  # no grace: not waited for


async def test_empty_message_id_expires_the_part_and_tells_the_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Item 10: status 0 with an empty message id: no receipt can ever match, so the part is
    # `submitted` unconfirmed, and at the end of its validity it expires with a bounce saying so.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.05)
    sink_port = free_port()
    skew = [0.0]
    async with NoMessageIdSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = link_config(tmp_path, smsc.port, relay_port=sink_port, gw={"validity_hours": 1})
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg, lambda: time.time() + skew[0]) as gw:
                await gw.send(mail(to("601123456"), "Who knows"))
                await gw.until(lambda: gw.states() == ["submitted"])
                db = gw.store.db.conn
                # Its receipt came too, under the id the SMSC did not tell: it stays unmatched.
                await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 1)
                assert gw.states() == ["submitted"]
                skew[0] = 2 * 3600
                await gw.until(lambda: gw.states() == ["expired"])
                await sink.wait(1)
    assert len(smsc.received) == 1
    bounce = bounce_text(sink.messages[0][2])
    assert "delivery unknown" in bounce and "without a message id" in bounce
    assert warnings(logs, "mt.unconfirmed")
