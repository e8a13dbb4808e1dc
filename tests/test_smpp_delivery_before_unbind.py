"""An MO or receipt the SMSC delivers just before its unbind is answered before the unbind_resp.

The SMSC writes a deliver_sm and its unbind in one write, and ends the session when it reads our
unbind_resp (as SMSCs do). The reader closed the connection as soon as no submit of ours was left
unanswered, while the delivery's handler was still committing it: stored and mailed, it was never
acknowledged, the SMSC delivered it again, and past `DOUBT_SECONDS` after the rebind that copy was
a new MO, mailed twice (a premium vote charged twice). A bare SMPP SMSC over loopback TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest

from smsc.base import LinkState
from smsc.settings import LinkSettings
from smsc.smpp.codec import DELIVER_SM, encode_sm
from smsc.smpp.link import SmppLink
from tests.test_answers_behind_mo_floods import GatedEvents, pdu

RECEIPT = (
    b"id:abc123 sub:001 dlvrd:001 submit date:2612071540 done date:2612071541 stat:DELIVRD err:000 text:"
)


def delivery(kind: str) -> bytes:
    if kind == "mo":
        return encode_sm(DELIVER_SM, 601, source_addr="48601133101", source_addr_ton=1,
                         destination_addr="48100200300", short_message=b"ok, see you at 10")  # fmt: skip
    return encode_sm(DELIVER_SM, 601, source_addr="48601133101", source_addr_ton=1,
                     destination_addr="48100200300", esm_class=0x04, short_message=RECEIPT)  # fmt: skip


class UnbindingAfterDelivery:
    """At the first bind writes one deliver_sm and its unbind at once; keeps what it reads of our
    answers (command, status, seq) per connection, and closes a connection at our unbind_resp."""

    def __init__(self, kind: str, repeat_after: float | None = None) -> None:
        self.kind = kind
        self.repeat_after = repeat_after  # its unbind written again, unanswered this long (seq 603)
        self.answers: list[list[tuple[int, int, int]]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.answers.append(got := [])
        first, buf = len(self.answers) == 1, b""
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                buf += chunk
                while len(buf) >= 16 and len(buf) >= struct.unpack_from(">I", buf)[0]:
                    n, command_id, status, seq = struct.unpack_from(">IIII", buf)
                    buf = buf[n:]
                    if command_id == 0x09:  # bind_transceiver
                        after = delivery(self.kind) + pdu(0x06, 602) if first else b""
                        writer.write(pdu(0x80000009, seq, b"smsc\0") + after)
                        if first and self.repeat_after is not None:
                            loop = asyncio.get_running_loop()
                            loop.call_later(self.repeat_after, writer.write, pdu(0x06, 603))
                    elif command_id == 0x15:
                        writer.write(pdu(0x80000015, seq))
                    elif command_id == 0x06:
                        writer.write(pdu(0x80000006, seq))
                    elif command_id & 0x80000000:
                        got.append((command_id, status, seq))
                        if command_id == 0x80000006:  # our unbind_resp: the session is over
                            writer.close()
                            return
        writer.close()


@contextlib.asynccontextmanager
async def linked(
    smsc: UnbindingAfterDelivery, response_timeout: float
) -> AsyncIterator[tuple[SmppLink, GatedEvents]]:
    """An SMPP link bound to `smsc` over loopback, its delivery handler held until `events.gate` is set."""
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = LinkSettings(name="u", port=port, response_timeout_seconds=response_timeout,
                       reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)  # fmt: skip
    link = SmppLink(cfg, password="pw")
    events = GatedEvents()
    await link.start(events)
    try:
        yield link, events
    finally:
        events.gate.set()
        await link.stop(drain=False)
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", ["mo", "receipt"])
async def test_a_delivery_just_before_the_unbind_is_acknowledged_before_the_unbind_resp(kind: str) -> None:
    smsc = UnbindingAfterDelivery(kind)
    # The handler commits for a while: the unbind is read meanwhile.
    async with linked(smsc, response_timeout=5.0) as (link, events):
        await events.wait_until(lambda: link.state is LinkState.ACTIVE)
        asyncio.get_running_loop().call_later(0.3, events.gate.set)
        await events.wait_until(lambda: len(smsc.answers) >= 2 and link.state is LinkState.ACTIVE, 10)
    assert len(events.delivered) + len(events.reports) == 1
    assert smsc.answers[0] == [(0x80000005, 0, 601), (0x80000006, 0, 602)]


async def test_a_handler_outlasting_the_unbind_wait_leaves_it_unanswered_and_the_unbind_answered() -> None:
    # The wait is bounded as the submits' is (`UNBIND_WAIT`, at most the response timeout): the unbind
    # is answered at its deadline and the session ends; the SMSC delivers the MO again later.
    smsc = UnbindingAfterDelivery("mo")
    async with linked(smsc, response_timeout=0.5) as (link, events):
        await events.wait_until(lambda: len(smsc.answers) >= 2 and link.state is LinkState.ACTIVE, 10)
    assert smsc.answers[0] == [(0x80000006, 0, 602)]


async def test_an_unbind_repeated_while_the_delivery_waits_is_answered_with_the_first() -> None:
    # An SMSC whose unbind_resp timer writes its unbind again while the MO's handler still commits:
    # the repeat was answered at once, the SMSC ended the session at that unbind_resp, and the MO's
    # deliver_sm_resp was never read: stored and mailed, it came again and was mailed twice.
    smsc = UnbindingAfterDelivery("mo", repeat_after=0.1)
    async with linked(smsc, response_timeout=5.0) as (link, events):
        await events.wait_until(lambda: link.state is LinkState.ACTIVE)
        asyncio.get_running_loop().call_later(0.5, events.gate.set)
        await events.wait_until(lambda: len(smsc.answers) >= 2 and link.state is LinkState.ACTIVE, 10)
    assert len(events.delivered) == 1
    assert smsc.answers[0] == [(0x80000005, 0, 601), (0x80000006, 0, 602)]
