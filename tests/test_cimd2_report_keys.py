"""CIMD2 status reports reach their own SMS (protocols.md 1.9): a report names the SMS by the SMSC's
060 stamp, of one second, and the phone, which the SMSC may write in a form of its own.

- A report whose 021 writes the phone nationally ("601569013", "0601569013"), or that writes it
  "+48…" after a submit answer that wrote it nationally, matched nothing: the SMS stayed `submitted`
  and a failed one was bounced to no one.
- Several SMS to one phone in one second shared a key and took the reports oldest first: the first
  sender got the second's bounce, and a 4-part SMS whose part 4 failed said part 1 had. One phone's
  submits now go a second after the SMSC's answer to the one before, and the others go meanwhile.

Against the real daemon (SMTP in, the relay a real aiosmtpd sink) and a scripted SMSC over TCP whose
060 stamps are its clock's seconds, as a real SMSC's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.housekeeping import read_status
from smsc.cimd2.packet import Op, P, Packet
from smsc.cimd2.times import format_time
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    config_text,
    free_port,
    mail,
    running_gateway,
    smtp_sink,
)
from tests.fakes.cimd2 import PeerConnection, ScriptedSmsc


@dataclass
class Submit:
    packet: Packet
    stamp: str  # the 060 the SMSC answered with
    arrived: float  # monotonic, at the SMSC
    answered: float


class Operator:
    """The SMSC's side of one session: alives and submits answered at once (060 from its clock), a
    report sent when the test says."""

    def __init__(self, conn: PeerConnection, echo: Callable[[str], str] = lambda number: number) -> None:
        self.conn, self.echo = conn, echo
        self.submits: list[Submit] = []
        self._got = asyncio.Event()
        self._report_answers: asyncio.Queue[Packet] = asyncio.Queue()
        self._number = 0
        self.hold = False  # submits wait for `answer`: a report may then overtake its submit's answer

    async def serve(self) -> None:
        while True:
            try:
                packet = await self.conn.next(within=3600)
            except (EOFError, ConnectionError):
                return
            if packet.op == Op.ALIVE:
                self.conn.send(Packet(Op.ALIVE_RESP, packet.number))
            elif packet.op == Op.LOGOUT:
                self.conn.send(Packet(Op.LOGOUT_RESP, packet.number))
            elif packet.op == Op.STATUS_REPORT_RESP:
                self._report_answers.put_nowait(packet)
            elif packet.op == Op.SUBMIT:
                arrived, stamp = time.monotonic(), format_time(datetime.now(UTC))
                submit = Submit(packet, stamp, arrived, 0.0)
                if not self.hold:
                    self.answer(submit)
                self.submits.append(submit)
                self._got.set()

    def answer(self, submit: Submit) -> None:
        echoed = self.echo(submit.packet.get(P.DESTINATION) or "")
        params = ((P.DESTINATION, echoed), (P.SCTS, submit.stamp))
        self.conn.send(Packet.make(Op.SUBMIT_RESP, submit.packet.number, *params))
        submit.answered = time.monotonic()

    async def until_submits(self, n: int, within: float = 20) -> list[Submit]:
        async with asyncio.timeout(within):
            while len(self.submits) < n:
                self._got.clear()
                await self._got.wait()
        return self.submits

    async def report(self, submit: Submit, number: str, code: int, reason: int | None = None) -> None:
        """A status report (23) for `submit`, its phone written as `number`; returns once answered."""
        self._number += 2
        params: list[tuple[int, str | int]] = [
            (P.DESTINATION, number),
            (P.SCTS, submit.stamp),
            (P.STATUS_CODE, code),
        ]
        if reason is not None:
            params.append((P.STATUS_ERROR_CODE, reason))
        params.append((P.DISCHARGE_TIME, submit.stamp))
        self.conn.send(Packet.make(Op.STATUS_REPORT, self._number, *params))
        async with asyncio.timeout(10):
            answer = await self._report_answers.get()
        assert answer.number == self._number


@contextlib.asynccontextmanager
async def gateway_and_smsc(
    tmp_path: Path,
    echo: Callable[[str], str] = lambda number: number,
    rate: int = 1000,
    *,
    clock: Callable[[], float] | None = None,
    users: tuple[str, ...] = (STAFF,),
) -> AsyncIterator[tuple[Running, Operator, Sink]]:
    """The daemon with one CIMD2 link as shipped (stop-and-wait: no `window`) to a scripted SMSC, on
    `clock` if given, `users` the acme account's."""
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=peer.port, relay_port=sink_port)
        text = text.replace('type = "smpp"', 'type = "cimd2"').replace("window = 10\n", "")
        text = text.replace("max_per_second = 1000", f"max_per_second = {rate}")
        text = text.replace(f'users = ["{STAFF}"]', "users = [" + ", ".join(f'"{u}"' for u in users) + "]")
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        async with running_gateway(cfg, clock=clock) as gw:
            conn = await peer.accept()
            await conn.login()
            operator = Operator(conn, echo)
            serving = asyncio.create_task(operator.serve())
            try:
                yield gw, operator, sink
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving


def states(gw: Running) -> list[tuple[int, int, str]]:
    """(message, part, state) of every part."""
    rows = gw.store.db.conn.execute("SELECT message_id, seq, state FROM parts ORDER BY message_id, seq")
    return [tuple(row) for row in rows]


def bounce_text(sink: Sink) -> str:
    message = message_from_bytes(sink.messages[0][2], policy=policy.default)
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return str(part.get_content())


@pytest.mark.parametrize(
    ("echoed", "reported"),
    [
        ("+48601569013", "601569013"),  # the report national
        ("+48601569013", "0601569013"),  # national with a trunk 0 (Poland has none)
        ("601569013", "+48601569013"),  # the submit answer national, the report international
        ("0048601569013", "0601569013"),
    ],
)
@pytest.mark.parametrize("early", [False, True])
async def test_a_report_naming_the_phone_in_another_form_settles_its_sms(
    tmp_path: Path, echoed: str, reported: str, early: bool
) -> None:
    async with gateway_and_smsc(tmp_path, echo=lambda _number: echoed) as (gw, smsc, sink):
        await gw.send(mail(f"601569013@{DOMAIN}", "Is the 10:00 slot free?"))
        smsc.hold = early
        (submit,) = await smsc.until_submits(1)
        assert submit.packet.get(P.DESTINATION) == "+48601569013"
        if not early:
            await gw.until(lambda: gw.states() == ["submitted"], timeout=10)
        await smsc.report(submit, reported, 3, 1)  # delivery failed, unknown subscriber
        if early:  # the report overtook the answer: kept unmatched until the answer names its SMS
            await gw.until(lambda: gw.store.db.conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 1)
            smsc.answer(submit)
        await gw.until(lambda: gw.states() == ["failed"], timeout=10)
        await sink.wait(1)  # the sender is told
        assert sink.messages[0][1] == [STAFF] and "Is the 10:00 slot free?" in bounce_text(sink)


async def test_two_sms_to_one_phone_get_their_own_reports(tmp_path: Path) -> None:
    # Two mails to one phone at once; the SMSC reports the second failed, then the first delivered.
    async with gateway_and_smsc(tmp_path) as (gw, smsc, sink):
        await gw.send(mail(f"601557001@{DOMAIN}", "First"))
        await gw.send(mail(f"601557001@{DOMAIN}", "Second"))
        first, second = await smsc.until_submits(2)
        assert [s.packet.get(P.USER_DATA) for s in (first, second)] == ["First", "Second"]
        # The second went a second after the SMSC answered the first: another 060 second.
        assert second.arrived - first.answered >= 0.99 and first.stamp != second.stamp
        await smsc.report(second, "601557001", 3, 1)
        await smsc.report(first, "601557001", 4)
        await gw.until(lambda: gw.states() == ["delivered", "failed"], timeout=10)
        await sink.wait(1)
        assert "Second" in bounce_text(sink) and "First" not in bounce_text(sink)


async def test_the_failed_part_of_a_long_sms_is_the_one_named(tmp_path: Path) -> None:
    text = " ".join(f"word{i:03d}" for i in range(68))  # 543 characters: 4 parts of 153
    async with gateway_and_smsc(tmp_path) as (gw, smsc, sink):
        await gw.send(mail(f"601557002@{DOMAIN}", text))
        submits = await smsc.until_submits(4)
        stamps = [s.stamp for s in submits]
        assert len(set(stamps)) == 4, stamps
        for part in reversed(submits):  # the last part first, failed; the others delivered
            await smsc.report(part, "48601557002", 3 if part is submits[3] else 4, 1)
        await gw.until(lambda: gw.states() == ["failed"], timeout=10)
        assert states(gw) == [(1, 1, "delivered"), (1, 2, "delivered"), (1, 3, "delivered"), (1, 4, "failed")]
        await sink.wait(1)
        assert "part 4 of 4" in bounce_text(sink), bounce_text(sink)


async def test_sms_to_other_phones_do_not_wait_for_a_phones_second(tmp_path: Path) -> None:
    # A 3-part SMS to one phone on a stop-and-wait link, then an SMS to another: it goes while the
    # long one's later parts wait for their seconds.
    text = " ".join(f"word{i:03d}" for i in range(40))  # 319 characters: 3 parts
    async with gateway_and_smsc(tmp_path) as (gw, smsc, _sink):
        await gw.send(mail(f"601557003@{DOMAIN}", text))
        (first,) = await smsc.until_submits(1)
        await gw.send(mail(f"601557004@{DOMAIN}", "Meanwhile"))
        submits = await smsc.until_submits(4)
        order = [s.packet.get(P.DESTINATION) for s in submits]
        other = order.index("+48601557004")
        assert other < 3, order  # before the long SMS's last part
        assert submits[other].arrived - first.answered < 1.0
        spaced = [s for s in submits if s.packet.get(P.DESTINATION) == "+48601557003"]
        assert all(b.arrived - a.answered >= 0.99 for a, b in itertools.pairwise(spaced))
        # `status` shows the wire's window (1, stop-and-wait), not the places the waiting parts take.
        await gw.until(lambda: bool((read_status(gw.config.state_dir) or {}).get("links")), timeout=10)
        link = read_status(gw.config.state_dir)["links"]["main"]
        assert (link["window"], link["in_flight"] <= 1) == (1, True), link


async def test_long_sms_to_many_phones_keep_the_links_rate_and_never_pass_it(tmp_path: Path) -> None:
    # 3-part SMS to 12 phones at 10 a second: each phone's parts a second apart, the phones side by
    # side. With 8 places for the waiting parts whatever the rate, such a bulk went 8 parts a second
    # (15 times slower at 100/s); released together, the waiting parts passed the contract's rate.
    text = " ".join(f"word{i:03d}" for i in range(40))  # 3 parts
    phones = [f"6015571{n:02d}" for n in range(12)]
    async with gateway_and_smsc(tmp_path, rate=10) as (gw, smsc, _sink):
        places = gw.daemon.links["main"].stats().places
        rcpts = [f"{p}@{DOMAIN}" for p in phones]
        assert (await gw.send(mail(rcpts, text), rcpts)).error is None
        submits = await smsc.until_submits(36, within=30)
    assert places == 1 + 10  # the window and a second's worth of the rate
    times = sorted(s.arrived for s in submits)
    # (a few ms of the loopback between send and arrival: a window a little short of the second)
    busiest = max(sum(1 for t in times if start <= t < start + 0.95) for start in times)
    assert busiest <= 10, busiest  # no second of the wire above max_per_second
