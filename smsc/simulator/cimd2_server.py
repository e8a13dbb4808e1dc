"""The simulator's CIMD2 server side (asyncio), speaking to clients such as `smsc.cimd2.link.Cimd2Link`.

Each connection is a `Cimd2Session`: login (01) is checked with the core, submits (03) become
`SubmittedSms` answered with the core's verdict and a 1-second-resolution 060 timestamp (so that, as
with a real SMSC, several submits to one number in one second share a key), alive (40) and logout (02)
are answered. MOs go out as deliver message (20), split and concatenated with a UDH in 032 when long,
and delivery reports as status report (23) with 021/060/061/062/063. Like test_cimd2 it delivers one
packet at a time and waits for the answer; a negative answer or none at all is retried with the same
packet number (a retransmission), and what was never acknowledged goes back to the core when the
session ends: an MO part as it was sent (reference and 060 kept), renumbered on the next login. The
knobs on `Cimd2Server` let tests play a slow, silent or sloppy SMSC.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ssl import SSLContext
from typing import Any

import structlog

from smsc.base import ReportStatus
from smsc.cimd2.codes import error_text
from smsc.cimd2.packet import (
    Cimd2Parser,
    Op,
    P,
    Packet,
    encode,
)
from smsc.cimd2.times import format_time
from smsc.simulator import limits
from smsc.simulator.cimd2_submits import submitted_sms
from smsc.simulator.cimd2_texts import mo_params
from smsc.simulator.core import SimulatorCore, SubmittedSms, SubmitVerdict, keep_recent, retry_pause, utcnow
from smsc.simulator.receipts import FINAL_STATES, Detail
from smsc.simulator.serving import ServerBase, SessionBase, wait_until

log = structlog.get_logger(__name__)

# Status report contents per verdict: (061 status code, 062 reason); a failure says "unknown subscriber".
REPORT_CODES = {ReportStatus.DELIVERED: (4, 0), ReportStatus.FAILED: (3, 1), ReportStatus.PENDING: (1, 0)}
_MAX_KEYS = 100_000


@dataclass
class _Outbound:
    packet: Packet
    key: tuple[Any, ...]  # handed back to the core if the session ends before the client took it
    attempts: int = 0


class Cimd2Session(SessionBase):
    """One client connection; implements the core's `SimSession`."""

    protocol = "cimd2"
    server: Cimd2Server

    def __init__(
        self, server: Cimd2Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(server, reader, writer)
        self.logged_in = False
        self.parser = Cimd2Parser()
        self._queue: deque[_Outbound] = deque()
        self._queued = asyncio.Event()
        self._answer: asyncio.Future[Packet] | None = None
        self._leaving = False  # the SMSC is stopping: nothing new goes out
        self._between = asyncio.Event()  # no delivery is waiting for the client's answer
        self.unanswered = 0  # submits taken and not yet answered: the window `limits` may cap
        self._between.set()

    # --- wire ---------------------------------------------------------------------------------

    def write(self, packet: Packet) -> None:
        if self.closed.is_set():
            return
        data = encode(packet)
        if self.server.corrupt_checksums:
            data = data[:-3] + b"%02X" % ((int(data[-3:-1], 16) + 1) & 0xFF) + b"\x03"
        self.writer.write(data)

    async def run(self) -> None:
        self.spawn(self._deliver_loop())
        try:
            while data := await self.reader.read(65536):
                for packet in self.parser.feed(data):
                    try:
                        self.dispatch(packet)
                    except Exception:  # a bad packet must not end the session
                        log.exception("sim.cimd2.dispatch_failed", packet=packet.describe())
                if self.overfull() and not await self.drained():
                    break
        except OSError:
            pass
        finally:
            await self.close()

    async def goodbye(self) -> None:
        """CIMD2 has no logout from the SMSC's side (02 is the client's), so the SMSC lets the
        delivery in flight be answered, sends nothing new, and closes; the rest is held."""
        self._leaving = True
        await self._between.wait()

    def take_unacknowledged(self) -> list[tuple[Any, ...]]:
        keys = [ob.key for ob in self._queue]
        self._queue.clear()
        return keys

    # --- requests from the client -------------------------------------------------------------

    def dispatch(self, packet: Packet) -> None:
        op, number = packet.op, packet.number
        if op == Op.LOGIN:
            self._on_login(packet)
        elif op == Op.LOGOUT:
            self.write(Packet(Op.LOGOUT_RESP, number))
            if self.logged_in:
                self.logged_in = False
                self.core.unregister(self)
        elif op == Op.SUBMIT:
            self._on_submit(packet)
        elif op == Op.ALIVE:
            self.write(Packet(Op.ALIVE_RESP, number))
        elif op in (Op.DELIVER_RESP, Op.STATUS_REPORT_RESP, Op.NACK):
            self._on_answer(packet)
        elif op in (Op.GENERAL_ERROR, Op.ALIVE_RESP):  # an error is not answered; a 90 we never asked for
            self.warn.warning("sim.cimd2.stray_answer", packet=packet.describe())
        else:  # test_cimd2 too answers what it does not serve (an op >= 50 as well) with 98 900:1
            self.warn.warning("sim.cimd2.unknown_operation", packet=packet.describe())
            self.write(
                Packet.make(Op.GENERAL_ERROR, number, (P.ERROR_CODE, 1), (P.ERROR_TEXT, error_text(1)))
            )

    def _on_login(self, packet: Packet) -> None:
        user, password = packet.get(P.USER_IDENTITY) or "", packet.get(P.PASSWORD) or ""
        if not self.core.check_login(user, password):
            self.warn.warning("sim.cimd2.login_refused", system_id=user)
            self.write(
                Packet.make(
                    Op.LOGIN_RESP, packet.number, (P.ERROR_CODE, 100), (P.ERROR_TEXT, "invalid login")
                )
            )
            return
        self.system_id, self.logged_in = user, True
        self.write(Packet(Op.LOGIN_RESP, packet.number))
        self.core.register(self)

    def _on_submit(self, packet: Packet) -> None:
        if not self.logged_in:
            self._refuse(packet, 1, "not logged in")
            return
        if refusal := self.core.limits.refuse(self.system_id, self.unanswered):
            self.warn.info("sim.cimd2.submit_refused", kind=refusal, reason=refusal, login=self.system_id)
            self._refuse(packet, limits.CIMD2_ERROR[refusal], error_text(limits.CIMD2_ERROR[refusal]))
            return
        parsed = submitted_sms(packet, self.system_id, self.core.region)
        if isinstance(parsed, int):
            self._refuse(packet, parsed, error_text(parsed))
            return
        self.unanswered += 1
        verdict = self.core.on_submit(parsed, self)
        self.server.record(parsed)
        if self.server.response_delay > 0:
            self.spawn(self._answer_later(packet, verdict))
        else:
            self.answer_submit(packet, verdict)

    def _refuse(self, packet: Packet, code: int, text: str) -> None:
        params: list[tuple[int, str | int]] = [(P.ERROR_CODE, code), (P.ERROR_TEXT, text)]
        if destination := packet.get(P.DESTINATION):
            params.insert(0, (P.DESTINATION, destination))
        self.write(Packet.make(Op.SUBMIT_RESP, packet.number, *params))

    async def _answer_later(self, packet: Packet, verdict: SubmitVerdict) -> None:
        await asyncio.sleep(self.server.response_delay)
        self.answer_submit(packet, verdict)

    def answer_submit(self, packet: Packet, verdict: SubmitVerdict) -> None:
        self.unanswered -= 1
        if not verdict.accepted:
            code = verdict.cimd2_error or 9
            self._refuse(packet, code, error_text(code))
            return
        now = self.server.now()
        scts = format_time(now)
        self.server.remember(verdict.message_id, scts)
        destination = packet.get(P.DESTINATION) or ""
        self.write(Packet.make(Op.SUBMIT_RESP, packet.number, (P.DESTINATION, destination), (P.SCTS, scts)))
        # The gateway names the SMS by this 060: a report sent after a restart must carry the same.
        self.core.report_later(verdict, submitted_at=now)

    # --- deliveries to the client -------------------------------------------------------------

    def _next_number(self) -> int:
        return self.server.next_number(self.system_id)

    def _enqueue(self, op: int, params: list[tuple[int, str | int]], key: tuple[Any, ...]) -> None:
        if self.closed.is_set():
            self.hold(key)
            return
        self._queue.append(_Outbound(Packet.make(op, self._next_number(), *params), key))
        self._queued.set()

    async def send_mo(
        self, source: str, destination: str, text: str, *, parts: int | None = None, shuffle: bool = False
    ) -> None:
        now = self.server.now()
        for params in mo_params(source, destination, text, self.server.next_ref(), now, parts, shuffle):
            await self.send_part(tuple(params))

    async def send_part(self, part: Any) -> None:
        """Deliver one MO part, given as the parameters of its 20. The key handed back on a drop is the
        part itself, not the text: only what the client did not acknowledge goes out again, with the
        concatenation reference and 060 of the parts it did take."""
        self._enqueue(Op.DELIVER, list(part), ("part", part))

    async def send_report(
        self,
        message_id: str,
        source: str,
        destination: str,
        status: ReportStatus,
        submitted_at: datetime,
        *,
        detail: Detail | None = None,
    ) -> None:
        code, reason = REPORT_CODES[status]
        if detail is not None:  # a chosen final state (`receipts`): its 061, and the error as 062
            code, reason = FINAL_STATES[detail[0]].cimd2_status, detail[1]
        scts = self.server.scts.get(message_id) or format_time(submitted_at)
        params: list[tuple[int, str | int]] = [
            (P.DESTINATION, destination), (P.SCTS, scts), (P.STATUS_CODE, code),
            (P.STATUS_ERROR_CODE, reason), (P.DISCHARGE_TIME, format_time(self.server.now())),
        ]  # fmt: skip
        self._enqueue(Op.STATUS_REPORT, params, ("report", message_id, status, detail))

    async def _deliver_loop(self) -> None:
        """One delivery at a time, as test_cimd2 and Kannel's SMSCs do: the next waits for the answer."""
        while True:
            while not self._queue or self._leaving:
                self._between.set()
                self._queued.clear()
                await self._queued.wait()
            self._between.clear()
            ob = self._queue[0]
            while ob.attempts < self.server.max_attempts:
                ob.attempts += 1
                self._answer = asyncio.get_running_loop().create_future()
                self.write(ob.packet)
                try:
                    answer = await asyncio.wait_for(self._answer, self.server.resend_timeout)
                except TimeoutError:
                    log.info("sim.cimd2.no_answer", packet=ob.packet.describe()[:6], attempt=ob.attempts)
                    continue
                keep_recent(self.server.answers, (ob.packet.op, answer.get_int(P.ERROR_CODE) or 0))
                self.server.changed()
                if answer.op != Op.NACK and answer.get(P.ERROR_CODE) is None:
                    break
                await asyncio.sleep(retry_pause(self.server.retry_delay, ob.attempts))
            else:
                log.warning(
                    "sim.cimd2.delivery_dropped", packet=ob.packet.describe()[:6], attempts=ob.attempts
                )
                self.taken(ob.key)
            if self._queue and self._queue[0] is ob:
                self._queue.popleft()

    def _on_answer(self, packet: Packet) -> None:
        current = self._queue[0] if self._queue else None
        if current is None or packet.number != current.packet.number:
            self.warn.warning("sim.cimd2.stray_answer", packet=packet.describe())
        elif packet.op != Op.NACK and packet.op != current.packet.op + 50:
            self.warn.warning("sim.cimd2.wrong_answer", packet=packet.describe())
        elif self._answer is not None and not self._answer.done():
            if packet.op != Op.NACK and packet.get(P.ERROR_CODE) is None:
                # Off the queue now, not when _deliver_loop resumes: when the client's FIN came in the
                # same read, close() runs first and would hold (and redeliver) what was acknowledged.
                self._queue.popleft()
                self.taken(current.key)
            self._answer.set_result(packet)


class Cimd2Server(ServerBase):
    """A listening CIMD2 server; `port` 0 picks a free one (see `.port` after `start`)."""

    session_class = Cimd2Session
    sessions: set[Cimd2Session]

    def __init__(
        self,
        core: SimulatorCore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        now: Callable[[], datetime] = utcnow,
        response_delay: float = 0.0,
        resend_timeout: float = 10.0,
        retry_delay: float = 1.0,
        max_attempts: int = 10,
        corrupt_checksums: bool = False,
        first_number: int = 0,
    ) -> None:
        super().__init__(core, host, port)
        self.now = now
        self.response_delay, self.resend_timeout = response_delay, resend_timeout
        self.retry_delay, self.max_attempts = retry_delay, max_attempts
        self.corrupt_checksums = corrupt_checksums
        self.received: list[SubmittedSms] = []
        # (op delivered, 900 code in the client's answer or 0), the last MAX_RECORDS as `received`
        self.answers: list[tuple[int, int]] = []
        self.scts: OrderedDict[str, str] = OrderedDict()  # message id → the 060 we answered with
        # The last packet number sent to each login. Kannel keeps its receive counter across logins
        # and drops a request numbered as the previous one, so a new session continues the count.
        self.numbers: dict[str, int] = {}
        self.first_number = first_number

    def next_number(self, system_id: str) -> int:
        """The next even packet number for an SMSC request to this login, whichever its session."""
        last = self.numbers.get(system_id)
        number = self.first_number if last is None else (last + 2) % 256
        self.numbers[system_id] = number
        return number

    async def close_sessions(self) -> None:
        """Close every client connection at once (an SMSC restart, as far as the clients can tell)."""
        await asyncio.gather(*(s.close() for s in list(self.sessions)), return_exceptions=True)

    def drop_sessions(self) -> None:
        for session in list(self.sessions):
            session.spawn(session.close())

    def remember(self, message_id: str, scts: str) -> None:
        self.scts[message_id] = scts
        while len(self.scts) > _MAX_KEYS:
            self.scts.popitem(last=False)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checked after every change (`within` is a hang guard)."""
        await wait_until(self._changed, predicate, within)


class ServerHandle:
    """The listener as the simulator sees it: an asyncio.Server that can also end its sessions.

    uvloop's Server takes no new attributes, so the simulator gets this small handle instead.
    """

    def __init__(self, owner: Cimd2Server, server: asyncio.Server) -> None:
        self.owner = owner
        self._server = server
        self.sockets = server.sockets

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()

    async def stop(self) -> None:
        """Stop listening, end every session and wait until their handlers are done."""
        await self.owner.stop()


def first_number(now: datetime) -> int:
    """The packet number a freshly started simulator sends its first request with.

    A restarted simulator has forgotten what it last sent, while a client may remember: starting
    from the clock makes a repeat of the client's last number unlikely instead of likely (000).
    Never 254: a client that has received nothing yet expects 000 and takes 254 as a repeat of
    the one before it (Kannel answers it and drops it), so the first report got lost for one
    start in 128."""
    return int(now.timestamp() * 10) % 127 * 2


async def start_cimd2_server(
    core: SimulatorCore, host: str, port: int, tls: SSLContext | None = None
) -> ServerHandle:
    """Start the simulator's CIMD2 listener with the default SMSC behaviour (over TLS with `tls`)."""
    delay = limits.setting(core.cfg, "response_delay_seconds", 0.0)
    owner = Cimd2Server(core, host, port, first_number=first_number(utcnow()), response_delay=delay)
    owner.tls = tls
    return ServerHandle(owner, await owner.start())
