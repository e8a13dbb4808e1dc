"""`Cimd2Link` against the simulator's CIMD2 server and, for protocol corners, a scripted SMSC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import SimulatorSection, SmscSection
from smsc.base import Ack, Concat, InboundSms, LinkState, OutboundSms, Outcome, ReportStatus
from smsc.cimd2.link import Cimd2Link, effective_window, outcome_for_error
from smsc.cimd2.messages import parse_report, submit_result
from smsc.cimd2.packet import Op, P, Packet, encode
from smsc.decoding import unpack_septets
from smsc.encoding import concat_udh
from smsc.gsmalphabet import gsm_decode, gsm_encode
from smsc.settings import LinkSettings
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.cimd2_texts import mo_params
from smsc.simulator.core import SimulatorCore
from tests.fakes.cimd2 import PeerConnection, RecordingEvents, ScriptedSmsc

FAST = {"response_timeout_seconds": 5, "reconnect_min_seconds": 0.02, "reconnect_max_seconds": 0.1}


def section(port: int, **overrides: Any) -> LinkSettings:
    values = {"name": "c2", "type": "cimd2", "port": port, "system_id": "smsgw", **FAST} | overrides
    return SmscSection.model_validate(values).driver_settings()


def sms(
    destination: str = "+48601123456", text: str = "Hello", *, part_id: int = 1, **kw: Any
) -> OutboundSms:
    return OutboundSms(part_id, "7155", destination, 0, gsm_encode(text), text, **kw)


class Running:
    def __init__(self, link: Cimd2Link, events: RecordingEvents, server: Cimd2Server, core: SimulatorCore):
        self.link, self.events, self.server, self.core = link, events, server, core

    async def active_again(self) -> None:
        # Wait for a drop (RECONNECTING) followed by a new ACTIVE.
        def back() -> bool:
            states = self.events.states
            return LinkState.RECONNECTING in states and states[-1] is LinkState.ACTIVE

        await self.events.wait_for(back)


@asynccontextmanager
async def running(
    tmp_path: Path, *, ack: Any = Ack.OK, server: dict[str, Any] | None = None, **cfg: Any
) -> AsyncIterator[Running]:
    sim_cfg = SimulatorSection(system_id="smsgw", password="secret", dlr_delay_seconds=0.01)
    core = SimulatorCore(sim_cfg, tmp_path / "sim.jsonl")
    srv = Cimd2Server(core, retry_delay=0.02, **(server or {}))
    await srv.start()
    link, events = Cimd2Link(section(srv.port, **cfg), password="secret"), RecordingEvents(ack)
    await link.start(events)
    try:
        await events.wait_for(lambda: link.state is LinkState.ACTIVE)
        yield Running(link, events, srv, core)
    finally:
        await link.stop()
        await srv.stop()
        await core.close()


async def test_submit_then_status_report_carries_the_same_key(tmp_path: Path) -> None:
    # The 53's 060+021 and the 23's 060+021 give one key; 061:4 is DELIVERED.
    async with running(tmp_path) as r:
        result = await r.link.submit(sms())
        assert result.outcome is Outcome.ACCEPTED and result.message_id
        assert result.message_id.endswith(":48601123456")
        await r.events.wait_for(lambda: len(r.events.reports) == 1)
        report = r.events.reports[0]
        assert (report.message_id, report.status, report.error) == (
            result.message_id,
            ReportStatus.DELIVERED,
            None,
        )
        assert report.destination == "+48601123456" and report.done_at is not None
        assert r.server.received[0].text == "Hello" and r.server.received[0].want_report


async def test_failed_delivery_and_refused_destination(tmp_path: Path) -> None:
    # 061:3 with 062:1 becomes FAILED with a readable reason; 900:300 at submit is REJECTED.
    async with running(tmp_path) as r:
        failed = await r.link.submit(sms("+48601123413"))
        await r.events.wait_for(lambda: len(r.events.reports) == 1)
        assert r.events.reports[0].message_id == failed.message_id
        assert r.events.reports[0].status is ReportStatus.FAILED
        assert r.events.reports[0].error == "CIMD2 061:3 delivery failed 062:1 unknown subscriber"
        refused = await r.link.submit(sms("+48601120000"))
        assert refused.outcome is Outcome.REJECTED and "900:300" in (refused.error or "")


async def test_three_submits_in_one_second_share_a_key_and_all_reports_match(tmp_path: Path) -> None:
    # With a 1-second 060 the three keys collide; each report carries that key, one per submit (store: FIFO).
    frozen = datetime(2026, 11, 21, 4, 56, 22, tzinfo=UTC)
    async with running(tmp_path, server={"now": lambda: frozen}) as r:
        results = await asyncio.gather(*(r.link.submit(sms(text=f"m{i}", part_id=i)) for i in range(3)))
        keys = {res.message_id for res in results}
        assert keys == {"261121045622:48601123456"}
        await r.events.wait_for(lambda: len(r.events.reports) == 3)
        assert [rep.message_id for rep in r.events.reports] == ["261121045622:48601123456"] * 3


async def test_no_report_requested_means_056_zero_and_no_report(tmp_path: Path) -> None:
    # want_report=False sends 056:0, and the simulator then sends no 23.
    async with running(tmp_path) as r:
        assert (await r.link.submit(sms(want_report=False))).outcome is Outcome.ACCEPTED
        assert r.server.received[0].want_report is False


async def test_ucs2_and_concatenated_submits_reach_the_smsc_intact(tmp_path: Path) -> None:
    # UCS-2 goes as 034 + 030:8; a concat UDH arrives in 032 unchanged; validity is sent as 050.
    async with running(tmp_path) as r:
        text = "Zażółć"
        ucs2 = OutboundSms(1, "ACME", "+48601123456", 8, text.encode("utf-16-be"), text)
        assert (await r.link.submit(ucs2)).outcome is Outcome.ACCEPTED
        # The dispatcher passes the part's expiry: 48 h less the moment it took to get here is still
        # code 168, two days (rounding down gave 167, one day).
        validity = datetime.now(UTC) + timedelta(hours=48)
        part = sms(text="part one", udh=concat_udh(9, 2, 1), validity=validity)
        assert (await r.link.submit(part)).outcome is Outcome.ACCEPTED
        got_ucs2, got_part = r.server.received
        assert (got_ucs2.text, got_ucs2.data_coding, got_ucs2.source) == (text, 8, "ACME")
        assert (got_part.text, got_part.udh, got_part.validity) == ("part one", concat_udh(9, 2, 1), "168")


async def test_plain_and_concatenated_mo_are_handed_up(tmp_path: Path) -> None:
    # A short MO arrives as one 20; a long one as several with a concat UDH in 032; UCS-2 via 034.
    async with running(tmp_path) as r:
        await r.core.inject_mo("+48601123456", "7155", "Hi @ there {ok}")
        long_text = "x" * 200
        await r.core.inject_mo("+48601123456", "7155", long_text)
        await r.core.inject_mo("+48601123456", "7155", "Gęś")
        await r.events.wait_for(lambda: len(r.events.delivered) == 4)
        plain, first, second, polish = r.events.delivered
        assert (plain.source, plain.destination, plain.text, plain.concat) == (
            "+48601123456", "7155", "Hi @ there {ok}", None,
        )  # fmt: skip
        assert first.concat is not None and second.concat is not None
        assert (first.concat.total, first.concat.seq, second.concat.seq) == (2, 1, 2)
        assert first.text + second.text == long_text
        assert (polish.text, polish.data_coding) == ("Gęś", 8)


@pytest.mark.parametrize("kind", ["mo", "report"])
async def test_retry_answer_makes_the_smsc_redeliver_and_it_is_handed_up_again(
    tmp_path: Path, kind: str
) -> None:
    # Ack.RETRY is answered 900:10; the SMSC retransmits the same packet, offered again and then taken.
    answers = iter([Ack.RETRY, Ack.OK])
    async with running(tmp_path, ack=lambda _item: next(answers)) as r:
        if kind == "mo":
            await r.core.inject_mo("+48601123456", "7155", "again")
        else:
            await r.link.submit(sms())
        await r.events.wait_for(lambda: r.events.calls == 2 and len(r.server.answers) == 2)
        op = Op.DELIVER if kind == "mo" else Op.STATUS_REPORT
        assert r.server.answers == [(op, 10), (op, 0)]
        assert len(r.events.delivered if kind == "mo" else r.events.reports) == 1


async def test_response_timeout_is_unanswered_and_reconnects(tmp_path: Path) -> None:
    # An SMSC that took the submit but does not answer within response_timeout: UNANSWERED as on SMPP
    # (the grace to wait, a late future settled with None since the connection is gone), so that the
    # dispatcher does not re-send at once; the link drops and logs in again. A second submit waiting
    # for the only packet number never reached the wire: TEMPORARY.
    timers = {"response_timeout_seconds": 0.2, "late_answer_grace_seconds": 7}
    async with running(tmp_path, server={"response_delay": 30}, **timers) as r:
        first = asyncio.create_task(r.link.submit(sms(part_id=1)))
        second = asyncio.create_task(r.link.submit(sms("+48601123457", part_id=2)))  # another phone
        result, queued = await first, await second
        assert result.outcome is Outcome.UNANSWERED and "no submit response" in (result.error or "")
        assert result.retry_after == 7 and result.late is not None and result.late.done()
        assert result.late.result() is None
        assert queued.outcome is Outcome.TEMPORARY and queued.late is None
        assert len(r.server.received) == 1
        await r.active_again()
        stats = r.link.stats()
        assert stats.reconnects >= 1 and (stats.extra["timeouts"], stats.extra["unanswered"]) == ("1", "1")


async def test_every_submit_written_before_a_timeout_is_unanswered_with_a_window(tmp_path: Path) -> None:
    # With a window, the timeout that drops the connection cuts off the other submits on the wire too:
    # the SMSC may hold them all, so none of them may be re-sent at once.
    timers = {"response_timeout_seconds": 0.2, "late_answer_grace_seconds": 7}
    async with running(tmp_path, server={"response_delay": 30}, window=3, **timers) as r:
        # Three phones: one phone's submits go a second apart (`smsc.cimd2.spacing`).
        tasks = [asyncio.create_task(r.link.submit(sms(f"+4860112345{i}", part_id=i))) for i in range(3)]
        results = await asyncio.gather(*tasks)
        assert [res.outcome for res in results] == [Outcome.UNANSWERED] * 3
        assert len(r.server.received) == 3


async def test_response_timeout_without_a_grace_stays_temporary(tmp_path: Path) -> None:
    # late_answer_grace_seconds = 0 turns the wait off, as on SMPP: the re-send may go at once.
    timers = {"response_timeout_seconds": 0.2, "late_answer_grace_seconds": 0}
    async with running(tmp_path, server={"response_delay": 30}, **timers) as r:
        result = await r.link.submit(sms())
        assert result.outcome is Outcome.TEMPORARY and result.late is None


async def test_checksum_mismatch_is_counted_and_traffic_continues(tmp_path: Path) -> None:
    # Every packet from this SMSC has a wrong checksum: counted, yet login and submit still work.
    async with running(tmp_path, server={"corrupt_checksums": True}) as r:
        assert (await r.link.submit(sms())).outcome is Outcome.ACCEPTED
        assert int(r.link.stats().extra["checksum_errors"]) >= 2 and r.link.stats().errors >= 2


async def test_reconnect_after_server_drop_fails_in_flight_submit_temporarily(tmp_path: Path) -> None:
    # The SMSC drops the connection with a submit outstanding: TEMPORARY, then the link is back.
    async with running(tmp_path, server={"response_delay": 30}) as r:
        pending = asyncio.create_task(r.link.submit(sms()))
        await r.events.wait_for(lambda: r.link.stats().in_flight == 1)
        await r.server.close_sessions()
        assert (await pending).outcome is Outcome.TEMPORARY
        await r.active_again()
        r.server.response_delay = 0
        assert (await r.link.submit(sms())).outcome is Outcome.ACCEPTED


async def test_stop_drains_in_flight_submits_then_logs_out(tmp_path: Path) -> None:
    # stop(drain=True) lets the outstanding submit finish before logout; later submits are TEMPORARY.
    async with running(tmp_path, server={"response_delay": 0.1}) as r:
        pending = asyncio.create_task(r.link.submit(sms()))
        await r.events.wait_for(lambda: r.link.stats().in_flight == 1)
        await r.link.stop()
        assert (await pending).outcome is Outcome.ACCEPTED
        assert r.link.state is LinkState.STOPPED
        assert (await r.link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_window_is_one_unless_configured(tmp_path: Path) -> None:
    # Stop-and-wait by default; an explicit window lets that many submits be outstanding at once.
    assert effective_window(section(1)) == 1 and effective_window(section(1, window=500)) == 128
    async with running(tmp_path, server={"response_delay": 0.2}, window=3) as r:
        # Three phones: one phone's submits go a second apart (`smsc.cimd2.spacing`).
        tasks = [asyncio.create_task(r.link.submit(sms(f"+4860112345{i}", part_id=i))) for i in range(3)]
        await r.events.wait_for(lambda: r.link.stats().in_flight == 3)
        assert [t.outcome for t in await asyncio.gather(*tasks)] == [Outcome.ACCEPTED] * 3


def test_error_code_outcome_table() -> None:
    # 3xx permanent, our own formatting faults MALFORMED, congestion THROTTLED, the rest TEMPORARY.
    assert [outcome_for_error(c) for c in (300, 310, 322, 302, 303, 304, 2, 8, 10, 1, 6, 100)] == [
        Outcome.REJECTED, Outcome.REJECTED, Outcome.REJECTED, Outcome.MALFORMED, Outcome.MALFORMED,
        Outcome.MALFORMED, Outcome.MALFORMED, Outcome.MALFORMED, Outcome.THROTTLED, Outcome.TEMPORARY,
        Outcome.TEMPORARY, Outcome.TEMPORARY,
    ]  # fmt: skip


def test_simulator_mo_split_uses_gsm_text_and_ucs2_hex() -> None:
    # The simulator's MO builder: CIMD text in 033, UTF-16BE in 034 with 030:8, UDH only when split.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    [gsm] = mo_params("+48601", "7155", "a@b", 1, now)
    assert (P.USER_DATA, "a_Oab") in gsm and not any(code == P.UDH for code, _ in gsm)
    [ucs2] = mo_params("+48601", "7155", "ł", 1, now)
    assert (P.USER_DATA_BINARY, "0142") in ucs2 and (P.DCS, 8) in ucs2


# --- protocol corners against a scripted SMSC ----------------------------------------------------


@asynccontextmanager
async def scripted(
    **cfg: Any,
) -> AsyncIterator[tuple[Cimd2Link, RecordingEvents, PeerConnection, ScriptedSmsc]]:
    async with ScriptedSmsc() as peer:
        link, events = Cimd2Link(section(peer.port, **cfg), password="pw"), RecordingEvents()
        await link.start(events)
        try:
            conn = await peer.accept()
            await conn.login()
            await events.wait_for(lambda: link.state is LinkState.ACTIVE)
            yield link, events, conn, peer
        finally:
            await link.stop(drain=False)


def mo(number: int, destination: str = "7155", source: str = "+48601123456", text: str = "hi") -> Packet:
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, destination), (P.ORIGINATOR, source),
                       (P.SCTS, "261121045622"), (P.USER_DATA, text))  # fmt: skip


async def test_packet_numbers_are_odd_and_restart_at_001_on_each_login() -> None:
    # Login is 001, our next request 003; after a reconnect the login is 001 again.
    async with scripted() as (link, _events, conn, peer):
        pending = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        assert (submit.op, submit.number) == (Op.SUBMIT, 3)
        assert submit.params[:2] == [(P.DESTINATION, "+48601123456"), (P.ORIGINATOR, "7155")]
        conn.send(Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601123456"), (P.SCTS, "261121045622")))
        assert (await pending).message_id == "261121045622:48601123456"
        conn.close()
        again = await peer.accept()
        assert (await again.login()).number == 1


async def test_retransmitted_mo_is_acknowledged_but_handed_up_once() -> None:
    # The same 20 with the same number twice (our 70 was "lost"): two 70s, one on_deliver.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(mo(0))
        assert (await conn.next()).op == Op.DELIVER_RESP
        alive = await conn.next()  # asks whether the SMSC read the 70
        assert (alive.op, alive.number) == (Op.ALIVE, 3)
        conn.send(mo(0))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.params) == (Op.DELIVER_RESP, 0, [])
        assert events.acked == []  # no answer yet to a request written after the 70
        conn.send(Packet(Op.ALIVE_RESP, 3))
        await events.wait_for(lambda: events.acked == [("hi", True)])
        conn.send(mo(2, text="next"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert [m.text for m in events.delivered] == ["hi", "next"]


async def test_another_mo_under_the_number_of_the_last_is_handed_up() -> None:
    # An SMSC that numbers every request 999 (or restarts its count): a new MO, with another 060 and
    # text, was taken for a retransmission of the last, acknowledged and dropped (a vote lost).
    async with scripted() as (_link, events, conn, _peer):
        conn.send(mo(999, text="vote A"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert (await conn.next()).op == Op.ALIVE
        second = mo(999, text="vote B")
        second.params[2] = (P.SCTS, "261121045623")
        conn.send(second)
        assert (await conn.next()).op == Op.DELIVER_RESP
        await events.wait_for(lambda: len(events.delivered) == 2)
        assert [m.text for m in events.delivered] == ["vote A", "vote B"]


async def test_an_mo_ack_counts_once_the_smsc_answered_a_request_written_after_it() -> None:
    # Each 70 is followed by an alive (one for a burst); its answer confirms the 70s before it. A
    # connection that ends before that answer leaves the MO unconfirmed: the SMSC may not have read
    # the 70 and may deliver the MO again.
    async with scripted() as (_link, events, conn, peer):
        conn.send(encode(mo(0, text="one")) + encode(mo(2, text="two")))  # in one read
        got = [await conn.next() for _ in range(3)]
        assert [(p.op, p.number) for p in got] == [(Op.DELIVER_RESP, 0), (Op.DELIVER_RESP, 2), (Op.ALIVE, 3)]
        conn.send(Packet(Op.ALIVE_RESP, 3))
        await events.wait_for(lambda: events.acked == [("one", True), ("two", True)])
        conn.send(mo(4, text="three"))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert (await conn.next()).op == Op.ALIVE
        conn.close()  # gone before answering: the 70 may be lost with it
        await events.wait_for(lambda: len(events.acked) == 3)
        assert events.acked[2] == ("three", False)
        await (await peer.accept()).login()


async def test_mo_with_an_empty_address_is_acknowledged_not_handed_up() -> None:
    # Unusable MOs get a plain 70 (so the SMSC stops resending) and a counter, never an on_deliver.
    # One with no user data at all is the empty SMS a phone sent: test_cimd2_mo_without_user_data; one
    # whose 034 is no hex is handed up said to be damaged: test_cimd2_mo_not_hex.
    async with scripted() as (link, events, conn, _peer):
        conn.send(mo(0, source=""))
        conn.send(mo(2, destination=""))
        answers = [await conn.next() for _ in range(2)]
        assert [(a.op, a.number, a.params) for a in answers] == [(70, 0, []), (70, 2, [])]
        assert events.delivered == [] and link.stats().extra["mo_rejected"] == "2"


async def test_mo_decoding_of_binary_udh_and_hex_user_data() -> None:
    # 034 is decoded by its DCS, a 032 concat UDH gives Concat; a 00-prefixed sender becomes +.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(Packet.make(Op.DELIVER, 0, (P.DESTINATION, "7155"), (P.ORIGINATOR, "0048601"),
                              (P.DCS, 8), (P.UDH, "050003070201"), (P.USER_DATA_BINARY, "0142")))  # fmt: skip
        await conn.next()
        [got] = events.delivered
        assert got == InboundSms(
            source="+48601", destination="7155", text="ł", data_coding=8, concat=Concat(7, 2, 1),
            raw={"021": "7155", "023": "0048601", "030": "8", "032": "050003070201", "034": "0142"},
        )  # fmt: skip


async def test_binary_user_data_with_a_gsm_dcs_is_read_as_packed_septets() -> None:
    # 034 with DCS 0 carries the air interface's packed septets (protocols.md 1.10); read one
    # character per octet, a STOP arrived as 'SêΓ\n' and the phone's opt-out was missed.
    async with scripted() as (_link, events, conn, _peer):
        conn.send(Packet.make(Op.DELIVER, 0, (P.DESTINATION, "7155"), (P.ORIGINATOR, "+48601123456"),
                              (P.DCS, 0), (P.USER_DATA_BINARY, "53EA130A")))  # fmt: skip
        await conn.next()
        assert [m.text for m in events.delivered] == ["STOP"]
    # Seven septets in seven octets leave seven bits spare: padding (CR, or zero), not a last '@'.
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E91"))) == "ABCDEFGH"
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E01"))) == "ABCDEFG"
    assert gsm_decode(unpack_septets(bytes.fromhex("41E19058341E1B"))) == "ABCDEFG"  # CR padding


async def test_alive_from_the_smsc_and_unknown_operations_are_answered() -> None:
    # 40 → 90 with the same number; an operation we do not serve → 98 with 900:1.
    async with scripted() as (_link, _events, conn, _peer):
        conn.send(Packet(Op.ALIVE, 8))
        assert (await conn.next()).op == Op.ALIVE_RESP
        conn.send(Packet(Op.CANCEL, 10))
        answer = await conn.next()
        assert (answer.op, answer.number, answer.get(P.ERROR_CODE)) == (Op.GENERAL_ERROR, 10, "1")


async def test_congestion_throttles_and_nack_resends() -> None:
    # 900:10 is THROTTLED; a 99 NACK makes the link resend the same request with the same number.
    async with scripted(throttle_pause_seconds=0) as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        first = await conn.next()
        conn.send(Packet(Op.NACK, first.number))
        resent = await conn.next()
        assert (resent.number, resent.params) == (first.number, first.params)
        conn.send(Packet.make(Op.SUBMIT_RESP, resent.number, (P.ERROR_CODE, 10)))
        assert (await pending).outcome is Outcome.THROTTLED and link.stats().throttled == 1


async def test_nack_naming_the_expected_number_moves_the_count_on() -> None:
    # The SMSC counts our requests from 253: the first submit (003) is NACKed with 253 and resent as
    # 253; the requests after it follow the SMSC's count (255, then 001 after the wrap) and go through
    # at the first try, so only one NACK is ever needed.
    async with scripted() as (link, _events, conn, _peer):
        seen: list[int] = []
        for i in range(3):
            pending = asyncio.create_task(link.submit(sms(part_id=i)))
            submit = await conn.next()
            seen.append(submit.number)
            if i == 0:
                conn.send(Packet(Op.NACK, 253))
                submit = await conn.next()
                seen.append(submit.number)
            conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601123456"),
                                  (P.SCTS, "261121045622")))  # fmt: skip
            assert (await pending).outcome is Outcome.ACCEPTED
        assert seen == [3, 253, 255, 1] and link.stats().extra["nacks"] == "1"


async def test_response_timeout_names_the_whole_packet_number() -> None:
    # The reason for the drop names the request as 03:003, not a truncated 03:00.
    async with scripted(response_timeout_seconds=0.2) as (link, _events, conn, _peer):
        pending = asyncio.create_task(link.submit(sms()))
        assert (await conn.next()).number == 3
        result = await pending
        assert "no response to 03:003 within the response timeout" in (result.error or "")


async def test_status_reports_with_unknown_or_intermediate_codes_stay_pending() -> None:
    # 061:1 (in process) and an unknown 061 are PENDING; a 23 without 060 is acknowledged and dropped.
    async with scripted() as (link, events, conn, _peer):
        for number, code in ((0, "1"), (2, "0")):
            report = [(P.DESTINATION, "+48601"), (P.SCTS, "261121045622"), (P.STATUS_CODE, code)]
            conn.send(Packet.make(Op.STATUS_REPORT, number, *report))
            assert (await conn.next()).op == Op.STATUS_REPORT_RESP
        conn.send(Packet.make(Op.STATUS_REPORT, 4, (P.DESTINATION, "+48601"), (P.STATUS_CODE, 4)))
        assert (await conn.next()).op == Op.STATUS_REPORT_RESP
        assert [rep.status for rep in events.reports] == [ReportStatus.PENDING, ReportStatus.PENDING]
        assert link.stats().extra["reports_rejected"] == "1"


async def test_garbage_between_packets_does_not_disturb_the_session() -> None:
    # Noise, a frame with no ETX and a bad header are counted; the next MO is still served.
    async with scripted() as (link, events, conn, _peer):
        conn.send(b"\xff\x00noise\x02half a frame\x0299:9\t\x03")
        conn.send(mo(0))
        assert (await conn.next()).op == Op.DELIVER_RESP
        assert len(events.delivered) == 1 and int(link.stats().extra["parse_errors"]) >= 2


async def test_bad_submits_never_reach_the_wire() -> None:
    # An over-long alphanumeric sender is MALFORMED locally; a stopped link answers TEMPORARY.
    async with scripted() as (link, _events, _conn, _peer):
        bad = OutboundSms(1, "A-very-long-sender", "+48601", 0, gsm_encode("x"), "x")
        result = await link.submit(bad)
        assert result.outcome is Outcome.MALFORMED and "11" in (result.error or "")
    assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_the_built_in_simulator_serves_cimd2(tmp_path: Path) -> None:
    # The daemon's Simulator starts this CIMD2 server next to SMPP; a link logs in, submits, gets its report.
    from smsc.simulator import Simulator

    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=0, password="secret")
    simulator = Simulator(cfg, tmp_path / "sim.jsonl")
    await simulator.start()
    assert simulator.cimd2_port
    link, events = Cimd2Link(section(simulator.cimd2_port), password="secret"), RecordingEvents()
    await link.start(events)
    try:
        await events.wait_for(lambda: link.state is LinkState.ACTIVE)
        result = await link.submit(sms())
        await events.wait_for(lambda: len(events.reports) == 1)
        assert events.reports[0].message_id == result.message_id
        await simulator.stop()
        await events.wait_for(lambda: LinkState.RECONNECTING in events.states)
    finally:
        await link.stop()
        await simulator.stop()


@pytest.mark.parametrize("written", ["0048601123456", "48601123456", "+48601123456"])
def test_a_status_report_meets_its_submit_however_the_smsc_writes_the_number(written: str) -> None:
    # A report writing the number with the international prefix "00" made a key its submit's never
    # met: the SMS stayed `submitted`, ended `unreported`, and a failure was never bounced.
    answer = Packet.make(Op.SUBMIT_RESP, 3, (P.DESTINATION, "+48601123456"), (P.SCTS, "261201204345"))
    submitted = submit_result(sms(), answer, link="op")
    report = parse_report(
        Packet.make(
            Op.STATUS_REPORT, 5, (P.DESTINATION, written), (P.SCTS, "261201204345"), (P.STATUS_CODE, 4)
        ),
        link="op",
    )
    assert not isinstance(report, str) and report.message_id == submitted.message_id
