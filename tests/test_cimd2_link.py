"""`Cimd2Link` against the simulator's CIMD2 server. The protocol corners, against a scripted SMSC,
have a module of their own (test_cimd2_link_scripted.py); `scripted`, `mo` and the other helpers
other modules import stay here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import SimulatorSection, SmscSection
from smsc.base import Ack, LinkState, OutboundSms, Outcome, ReportStatus
from smsc.cimd2.link import Cimd2Link, effective_window, outcome_for_error
from smsc.cimd2.packet import Op, P, Packet
from smsc.encoding import concat_udh
from smsc.gsmalphabet import gsm_encode
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


async def test_three_submits_answered_with_one_060_and_their_reports_stay_unmatched(
    tmp_path: Path,
) -> None:
    # An SMSC clock stuck on one second answers the phone's three submits with one key: each SMS keeps
    # it (the store keeps it for all three in a form no report names: `gateway.store.sharedkeys`), and
    # the reports read once it repeated are handed up under an id no SMS has (`smsc.cimd2.stampkeys`):
    # applied oldest first, each could settle the wrong SMS.
    frozen = datetime(2026, 11, 21, 4, 56, 22, tzinfo=UTC)
    key = "261121045622:48601123456"
    async with running(tmp_path, server={"now": lambda: frozen}) as r:
        results = await asyncio.gather(*(r.link.submit(sms(text=f"m{i}", part_id=i)) for i in range(3)))
        assert [res.message_id for res in results] == [key] * 3
        await r.events.wait_for(lambda: len(r.events.reports) == 3)
        assert {rep.message_id for rep in r.events.reports} <= {key, "261121045622-repeated:48601123456"}
        assert r.events.reports[-1].message_id == "261121045622-repeated:48601123456"


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
    # (the grace to wait, a late future a status report read meanwhile may still settle: `gracereports`,
    # None at the link's stop), so that the dispatcher does not re-send at once; the link drops and logs
    # in again. A second submit waiting
    # for the only packet number never reached the wire: TEMPORARY.
    timers = {"response_timeout_seconds": 0.2, "late_answer_grace_seconds": 7}
    async with running(tmp_path, server={"response_delay": 30}, **timers) as r:
        first = asyncio.create_task(r.link.submit(sms(part_id=1)))
        second = asyncio.create_task(r.link.submit(sms("+48601123457", part_id=2)))  # another phone
        result, queued = await first, await second
        assert result.outcome is Outcome.UNANSWERED and "no submit response" in (result.error or "")
        assert result.retry_after == 7 and result.late is not None and not result.late.done()
        assert queued.outcome is Outcome.TEMPORARY and queued.late is None
        assert len(r.server.received) == 1
        await r.active_again()
        stats = r.link.stats()
        assert stats.reconnects >= 1 and (stats.extra["timeouts"], stats.extra["unanswered"]) == ("1", "1")
    assert result.late.result() is None  # the link stopped: no report can answer it any more


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
