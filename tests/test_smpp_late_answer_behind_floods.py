"""A submit past its response timeout whose answer comes within the late-answer grace, but behind a
flood of MOs that pauses the reader: the late window must not count the pause. Counted, it ran out
while the answer waited in TCP, the answer was read later as a stray and the dispatcher had already
sent the SMS a second time, with no duplicate named. Against a bare SMPP SMSC over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
import structlog

from smsc import backpressure
from smsc.base import LinkState, Outcome
from smsc.settings import LinkSettings
from smsc.smpp.link import SmppLink
from tests.test_answers_behind_mo_floods import GatedEvents, deliver_sm, pdu, sms


class LateSmsc:
    """Answers a submit_sm `delay` seconds late, behind `flood` deliver_sm written just before it."""

    def __init__(self, delay: float, flood: int) -> None:
        self.delay, self.flood = delay, flood
        self.submits = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def answer_late(seq: int) -> None:
            await asyncio.sleep(self.delay)
            flood = b"".join(map(deliver_sm, range(self.flood)))
            writer.write(flood + pdu(0x80000004, seq, b"abc123\0"))

        buf, tasks = b"", set()
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                buf += chunk
                while len(buf) >= 16 and len(buf) >= struct.unpack_from(">I", buf)[0]:
                    n, command_id, _status, seq = struct.unpack_from(">IIII", buf)
                    buf = buf[n:]
                    if command_id == 0x09:
                        writer.write(pdu(0x80000009, seq, b"x\0"))
                    elif command_id == 0x04:
                        self.submits += 1
                        tasks.add(asyncio.ensure_future(answer_late(seq)))
                    elif command_id in (0x15, 0x06):
                        writer.write(pdu(0x80000000 | command_id, seq))
        writer.close()


async def test_a_late_answer_behind_a_flood_that_pauses_the_reader_is_still_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Answered 0.3 s past the 1-s timeout, well within the late window (2 x 1 s), but behind MOs the
    # stuck store leaves in TCP for 4 s: paused time must not run the window out.
    monkeypatch.setattr(backpressure, "HELD_LIMIT", 4096)
    smsc = LateSmsc(delay=1.3, flood=3000)  # far more than one read takes
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = LinkSettings(name="late", port=port, response_timeout_seconds=1.0, late_answer_grace_seconds=1.0)
    link = SmppLink(cfg, password="pw")
    events = GatedEvents()
    await link.start(events)
    try:
        with structlog.testing.capture_logs() as logs:
            await events.wait_until(lambda: link.state is LinkState.ACTIVE)
            result = await link.submit(sms())
            assert result.outcome is Outcome.UNANSWERED and result.late is not None
            asyncio.get_running_loop().call_later(4.0, events.gate.set)
            late = await asyncio.wait_for(result.late, 15)
        assert late is not None and (late.outcome, late.message_id) == (Outcome.ACCEPTED, "abc123"), late
        assert smsc.submits == 1
        assert not [e for e in logs if e["event"] == "smpp.unexpected_submit_resp"]
        assert [e for e in logs if e["event"] == "smpp.late_submit_resp"]
    finally:
        events.gate.set()
        await link.stop(drain=False)
        server.close()
        await server.wait_closed()
