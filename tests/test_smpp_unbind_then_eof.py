"""An SMSC that, with our submit unanswered, writes MOs, its unbind behind them, and closes the socket
(a restart, a failover) before the unbind is answered: the unbind, held behind the MOs waiting for
their handlers, says the end was the SMSC's decision. Read as a drop without a word ("closed by
peer"), the submit was blamed for ending the session (`SubmitResult.lost_behind` 0): it backed off,
and blamed at every such restart it went on hold for a human. Against a bare SMPP SMSC over loopback
TCP."""

from __future__ import annotations

import asyncio
import contextlib
import struct

from smsc.base import LinkState, Outcome
from smsc.settings import LinkSettings
from smsc.smpp.link import SmppLink
from tests.test_answers_behind_mo_floods import GatedEvents, deliver_sm, pdu, sms


class UnbindingSmsc:
    """At the first submit_sm writes `flood` deliver_sm and its unbind, and closes at once."""

    def __init__(self, flood: int) -> None:
        self.flood = flood
        self.connections = self.submits = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        buf = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                buf += chunk
                while len(buf) >= 16 and len(buf) >= struct.unpack_from(">I", buf)[0]:
                    n, command_id, _status, seq = struct.unpack_from(">IIII", buf)
                    buf = buf[n:]
                    if command_id == 0x09:
                        writer.write(pdu(0x80000009, seq, b"x\0"))
                    elif command_id == 0x04 and self.connections == 1:
                        self.submits += 1
                        writer.write(b"".join(map(deliver_sm, range(self.flood))) + pdu(0x06, 7))
                        await writer.drain()
                        writer.close()
                        return
                    elif command_id == 0x15:
                        writer.write(pdu(0x80000015, seq))
        writer.close()


async def test_an_unbind_held_behind_mos_then_a_close_blames_no_submit() -> None:
    smsc = UnbindingSmsc(flood=3000)
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = LinkSettings(name="u", port=port, response_timeout_seconds=5.0, late_answer_grace_seconds=5.0,
                       reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)  # fmt: skip
    link = SmppLink(cfg, password="pw")
    events = GatedEvents()
    await link.start(events)
    try:
        await events.wait_until(lambda: link.state is LinkState.ACTIVE)
        asyncio.get_running_loop().call_later(1.0, events.gate.set)
        result = await asyncio.wait_for(link.submit(sms()), 10)
        assert (result.outcome, result.error) == (Outcome.TEMPORARY, "unbind from SMSC"), result
        assert result.written and result.lost_behind is None, result
        assert smsc.submits == 1
    finally:
        events.gate.set()
        await link.stop(drain=False)
        server.close()
        await server.wait_closed()
