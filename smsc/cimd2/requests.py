"""Our requests on one CIMD2 connection and the SMSC's answers to them, for a `Cimd2Link`.

A request takes a packet number within the window (`Conn.numbers`), waits for its answer under the
response timeout and is sent again when the SMSC NACKs it (99), up to `NACK_TRIES` sends; then the
connection goes, the request ending as never taken (`Pending.written` False) when it was alone on the
wire, and as written (perhaps held) with others outstanding. An answer
confirms the MO acknowledgements written before its request (`smsc.base.MoAcks`); an alive (40)
goes out when the connection has been idle for `enquire_link_seconds`. Its choices are the link's
(`smsc.cimd2.link`): a response timeout drops the connection, as the state of an unanswered request
is unknown.

A general error (98) says the SMSC lost the session's state (protocols.md 1.13): whichever request of
ours it answers (alive, submit, logout), the connection is ended for a new login, which is what a 98
to a submit already did. Kept, the session went on answering alives while every submit on it was
refused or lost. As in Kannel's `cimd2_request`, which looks at a 98 before its packet number, a 98
that matches nothing outstanding ends the session too while requests of ours wait; with none waiting
it is logged and ignored, as Kannel's reader ignores any stray response. A 98 to the login is the
login's refusal, for the link's login to report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import structlog

from smsc.base import MoAcks
from smsc.cimd2.codes import error_text
from smsc.cimd2.packet import OPERATIONS, Op, P, Packet, address_digits
from smsc.cimd2.session import LAST_NUMBER, Conn, Pending
from smsc.settings import LinkSettings
from smsc.stalls import ResponseTimer

log = structlog.get_logger(__name__)

NACK_TRIES = 3  # sends of one request when the SMSC keeps answering 99 (Kannel's count)
TAIL = 7  # last digits of a phone an answer's 021 must share with its request's (one form or another)


class Requests:
    """The requests of one link on each of its connections; `counts` are the link's (`LinkStats`)
    and `acks` gives a connection's MO acknowledgements (`InboundRequests.acks`)."""

    def __init__(
        self,
        link: str,
        counts: dict[str, int],
        cfg: LinkSettings,
        acks: Callable[[Conn], MoAcks | None],
    ) -> None:
        self.name = link
        self.cfg = cfg
        self._counts = counts
        self._acks = acks

    async def request(
        self, conn: Conn, op: int, params: list[tuple[int, str]], *, patience: float | None = None
    ) -> Packet | None:
        """Send one request and wait for its answer; None on a timeout (which drops the connection, as
        the state of an unanswered request is unknown) or when the connection is lost."""
        entry = await self.exchange(conn, op, params, patience=patience)
        return entry.future.result() if entry is not None else None

    async def exchange(
        self,
        conn: Conn,
        op: int,
        params: list[tuple[int, str]],
        *,
        patience: float | None = None,
        unless: Callable[[], bool] | None = None,
        written: Callable[[], None] | None = None,
    ) -> Pending | None:
        """`request`, returning the finished request (its answer, or None, in `future`) so that a
        submit can tell one the SMSC may hold (`written`) from one that never left; None when the
        connection was gone before a packet number was taken, or `unless()` held once it could be.
        `written()` is called once the packet is written (the SMSC may have it from then on).
        An answer confirms the MO acknowledgements written before the request."""
        async with conn.numbers:
            if conn.closed.is_set() or (unless is not None and unless()):
                return None
            acks = self._acks(conn)
            loop = asyncio.get_running_loop()
            entry = Pending(loop.create_future(), Packet(op, conn.allocate(), params))
            conn.pending[entry.packet.number] = entry
            conn.idle.clear()
            # A timer rather than wait_for: the answer wakes this task directly, one loop turn sooner.
            expire = partial(self._expire, conn, entry)  # not for a loop stood still (`smsc.stalls`)
            # Nor while the reader is paused: its answer may wait behind the deliveries (`Conn.inbox_room`).
            timer = ResponseTimer(loop, patience or self.cfg.response_timeout_seconds, expire, conn.pause)
            try:
                entry.written = conn.send(entry.packet)  # if not, the close has answered it with None
                if entry.written and written is not None:
                    written()
                mark = acks.count if acks is not None else 0
                conn.last_request = loop.time()
                await entry.future
                if acks is not None and answered(entry.future.result()):
                    acks.answered(mark)
                return entry
            finally:
                timer.cancel()
                conn.pending.pop(entry.packet.number, None)
                if not conn.pending:
                    conn.idle.set()

    def _expire(self, conn: Conn, entry: Pending) -> None:
        """No answer in time: the request's fate is unknown, so the connection goes (answering None)."""
        if not entry.future.done():
            self._counts["timeouts"] += 1
            conn.close(f"no response to {entry.packet.header} within the response timeout", timed_out=True)

    async def keepalive(self, conn: Conn) -> None:
        idle = self.cfg.enquire_link_seconds
        loop = asyncio.get_running_loop()
        while not conn.closed.is_set():
            wait = conn.last_request + idle - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif not answered(await self.request(conn, Op.ALIVE, [])):
                return  # the connection is gone: a timeout or a general error closed it
            else:
                self._counts["alives"] += 1

    def answer(self, conn: Conn, packet: Packet) -> None:
        """A response of the SMSC: it finishes the request of its number, if one of that operation
        waits for it, or the one request alone on the wire that it names under another number
        (`_misnumbered`); any other is counted and logged, but a general error (98) ends the session."""
        entry = conn.pending.get(packet.number)
        fits = entry is not None and packet.op in (entry.packet.op + 50, Op.GENERAL_ERROR)
        if entry is None or entry.future.done() or not fits:
            entry = None
        if packet.op == Op.GENERAL_ERROR:
            self._general_error(conn, packet, entry)
            return
        if entry is None and (entry := self._misnumbered(conn, packet)) is not None:
            conn.throttle.warning("cimd2.misnumbered_response", link=self.name, packet=packet.describe(),
                                  taken_for=entry.packet.header)  # fmt: skip
        if entry is None:
            self._counts["unexpected"] += 1
            conn.throttle.warning("cimd2.unexpected_response", link=self.name, packet=packet.describe())
        else:
            conn.last_answers.append(packet.number)
            entry.future.set_result(packet)
            conn.answered.set()

    @staticmethod
    def _misnumbered(conn: Conn, packet: Packet) -> Pending | None:
        """The one request outstanding, when `packet` is an answer of its kind under another number of
        ours: an SMSC whose count is off answers (and takes) each submit under a number we did not
        send. Dropped, the submit timed out and went to the phone again and again, each copy taken.
        As `on_nack` renumbers for a NACK alone on the wire. Only one that names the request's phone
        (021, as an acceptance does), and no copy of a recent answer taken: a stray refusal naming
        no phone, or another's, answers something else (dropped, the submit is sent again)."""
        if len(conn.pending) != 1 or packet.number % 2 == 0 or packet.number > LAST_NUMBER:
            return None
        (entry,) = conn.pending.values()
        if entry.future.done() or packet.op != entry.packet.op + 50 or packet.number in conn.last_answers:
            return None
        said, ours = address_digits(packet.get(P.DESTINATION) or ""), entry.packet.get(P.DESTINATION) or ""
        return entry if said and said[-TAIL:] == address_digits(ours)[-TAIL:] else None

    def _general_error(self, conn: Conn, packet: Packet, entry: Pending | None) -> None:
        """A 98: the SMSC no longer holds this session's state, so it ends here and the link logs in
        again (see the module docstring); `entry` is the request it answers, if any. The answered
        request gets the 98 (a submit's own verdict, `messages.submit_result`); the others waiting
        are cut off by our close, which blames none of them (`SubmitResult.lost_behind` None). Not
        an answer that holds the session (`Conn.answered`) or confirms MO acknowledgements. Logged
        by its code and our request's header only: the SMSC's own 901 text may quote a number."""
        code = packet.get_int(P.ERROR_CODE) or 1
        waiting = [e for e in conn.pending.values() if not e.future.done()]
        if entry is not None and entry.packet.op == Op.LOGIN:
            entry.future.set_result(packet)  # the login refused: `Cimd2Link._session` reports it
            return
        if entry is None and not waiting:
            self._counts["unexpected"] += 1
            conn.throttle.warning("cimd2.unexpected_general_error", link=self.name, number=packet.number,
                                  code=code, error=error_text(code))  # fmt: skip
            return
        if entry is not None:
            entry.future.set_result(packet)
            what = f"{OPERATIONS.get(entry.packet.op, 'request')} {entry.packet.header}"
        else:
            what = f"packet number {packet.number:03d}, matching no request of ours"
        log.warning("cimd2.general_error", link=self.name, answering=what, code=code, error=error_text(code),
                    outstanding=len(waiting) - (entry is not None))  # fmt: skip
        conn.close(f"general error (98) 900:{code} to {what}: the SMSC lost the session", ours=True)

    def on_nack(self, conn: Conn, packet: Packet) -> None:
        self._counts["nacks"] += 1
        entry = conn.pending.get(packet.number)
        ours = packet.number % 2 == 1 and packet.number <= LAST_NUMBER  # a number our requests can carry
        if entry is None and ours and len(conn.pending) == 1:
            # Kannel: a NACK with another odd number names the number the SMSC expects; renumber, and
            # number the requests after it as the SMSC counts them. With several requests outstanding
            # the NACK cannot be matched to one of them: it is logged below, and the one it meant
            # times out.
            entry = conn.renumber(next(iter(conn.pending)), packet.number)
        if entry is None:
            conn.throttle.warning("cimd2.stray_nack", link=self.name, number=packet.number)
        elif entry.tries >= NACK_TRIES:
            # A NACK says the SMSC did not process the packet. Alone on the wire, this request is no
            # copy it may hold: it ends unwritten before the close (a submit TEMPORARY, not written:
            # sent again with no "possible duplicate" note). With others outstanding, an SMSC that
            # NACKs with the number it expects next (Kannel's reading, above) may have meant them,
            # while a copy of this one is on its way: it stays written, as the others do.
            entry.written = len(conn.pending) > 1
            conn.close(
                f"{NACK_TRIES} NACKs (99) for {entry.packet.header}: the SMSC did not process it", ours=True
            )
        else:
            entry.tries += 1
            log.warning("cimd2.nack_resend", link=self.name, number=entry.packet.number, tries=entry.tries)
            conn.send(entry.packet)


def answered(resp: Packet | None) -> bool:
    """An answer to a request of ours that says the SMSC took it in this session: not a timeout or a
    lost connection (None), nor a general error (98), after which the session is ended."""
    return resp is not None and resp.op != Op.GENERAL_ERROR
