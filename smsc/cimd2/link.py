"""`Cimd2Link`: the asyncio CIMD2 client behind `smsc.base.SmscLink`. It owns one TCP connection at a
time: login (01), packet numbering, submits (03) and their outcomes, keep-alive (40) on idle, reading
the SMSC's packets, and reconnecting with exponential back-off. The wire format lives in `packet.py`,
the mapping of packets to and from the `smsc.base` types (and the DLR matching key) in `messages.py`,
our requests' numbering, timeouts, answers and NACK resends in `requests.py`, and the SMSC's requests
(its deliveries and status reports, with the confirmation of each MO's acknowledgement) in
`inbound.py`.

Choices the protocol leaves open, and why:

- Stop-and-wait unless `window` is set explicitly in the config: Kannel never pipelines CIMD2, and an
  SMSC accepts a window only if the operator enabled it for the account (login parameter 019 is not
  sent; an SMSC that allows windowing does not need it).
- A checksum mismatch is counted and logged but the packet is still processed, as Kannel does; NACKing
  it would lose every packet from an SMSC that computes the checksum its own way.
- A response timeout drops the connection (the SMSC's state is unknown), but a submit already written
  to it may have been taken: it resolves `Outcome.UNANSWERED` as SMPP's does, and a status report
  read during the grace that names it answers it (`gracereports.py`), on any bind of the account. One
  whose connection the SMSC dropped before answering is TEMPORARY and written, its turn kept, its
  re-send held for the reports owed after the next login (`gracereports.py`). One never written, or
  cut off by a general error, repeated NACKs or a stop, stays TEMPORARY without one.
- One phone's submits go a second apart (`spacing.py`), over every bind of the SMSC account
  (`accountspacing.py`): a report names its SMS by the 060 stamp of one second and the phone alone,
  so two SMS to one phone in one second got each other's reports. The
  dispatcher may hand the link `spacing.parked_places` submits beyond its window, to wait there without
  holding the others; the window still bounds the submits on the wire.
- A general error (98) to a submit fails it TEMPORARY whatever its 900 code, as Kannel does
  (protocols.md 1.13): the SMSC could not process the packet, which says nothing of the SMS; only a
  submit response (53) with a 900 refuses an SMS for good. A 98 to any request of ours (a submit, an
  alive, a logout) ends the session for a new login (`requests.Requests`): the SMSC lost its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

import structlog

from smsc.backpressure import overfull, stalled
from smsc.base import LinkEvents, LinkState, LinkStats, OnWire, OutboundSms, Outcome, SubmitResult
from smsc.cimd2.accountspacing import account_spacing
from smsc.cimd2.gracereports import GraceReports, noting
from smsc.cimd2.inbound import InboundRequests
from smsc.cimd2.messages import Once, logged_error, login_params, submit_params, submit_result
from smsc.cimd2.messages import outcome_for_error as outcome_for_error  # tests import it from here
from smsc.cimd2.packet import Cimd2Parser, Op, Packet, encode
from smsc.cimd2.refusals import login_refusal, report_refusal, result_without_password, without_password
from smsc.cimd2.requests import Requests, answered
from smsc.cimd2.session import Conn
from smsc.cimd2.session import effective_window as effective_window  # tests import it from here
from smsc.cimd2.spacing import parked_places, wire_pacing
from smsc.linkturns import ended, rest, run_turns
from smsc.outage import Outage, outage_words, session_held
from smsc.pacing import backoff, reconnect_attempt, stable_after
from smsc.sessiontasks import SessionTasks
from smsc.settings import LinkSettings, password_key
from smsc.tls import TlsFaults, TlsFileError, foreign_peer, open_stream

log = structlog.get_logger(__name__)


class Cimd2Link:
    """A CIMD2 client link; see the module docstring for the protocol choices it makes."""

    def __init__(self, cfg: LinkSettings, *, password: str | Callable[[], str]) -> None:
        self.name = cfg.name
        self.state = LinkState.DISCONNECTED
        self.cfg = cfg
        self.window = effective_window(cfg)
        self._password = password
        self._said = ""  # the password the last login sent: masked in the SMSC's words (`refusals`)
        # The daemon's clock (epoch seconds), which a part's expiry is set by: its relative validity
        # is counted on it (`submit_params`). The daemon gives its own; the host's until then.
        self.clock: Callable[[], float] = time.time
        self._events: LinkEvents | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: Conn | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # cuts a back-off sleep short on stop()
        self._failures = 0  # turns in a row that failed: `backoff`
        self._logged_in_at: float | None = None  # loop time of this session's login: `reconnect_attempt`
        self._held = False  # this session held (`session_held`): only such a one resets the back-off
        self._last_error, self._last_error_at = "", None  # `LinkStats.last_error`
        self._outage = Outage()  # since when no session is up: `LinkStats.down_since`
        self._tls_faults = TlsFaults(self.name, "cimd2.tls_failed")  # logged once per cause
        self._counts = dict.fromkeys(
            ("submitted", "throttled", "errors", "reconnects", "timeouts", "checksum_errors", "parse_errors",
             "mo_rejected", "reports_rejected", "duplicates", "nacks", "unexpected", "alives",
             "unanswered"), 0
        )  # fmt: skip
        # Our requests confirm the MO acknowledgements the SMSC's requests wrote, and an alive of theirs
        # confirms them when no other request does: each needs the other, hence the late-bound lookup.
        self._requests = Requests(self.name, self._counts, cfg, lambda conn: self._inbound.acks(conn))
        self._inbound = InboundRequests(self.name, self._counts, self._requests.exchange)
        self._grace = GraceReports.of(cfg)  # reports on any bind of its account
        self._inbound.report_read = self._grace.report
        self._unstamped = Once(log.warning)  # a 060 that is no time, said once per link (`submit_result`)
        self._parked = parked_places(cfg.max_per_second)
        self._wire = wire_pacing(cfg.max_per_second, self.window + self._parked)  # (those waited too)

    # --- SmscLink -------------------------------------------------------------------------------------

    async def start(self, events: LinkEvents) -> None:
        self._events = events
        self._inbound.events = events
        self._stopping, self._failures = False, 0
        self._wake.clear()  # set by `stop`: left set, a link started again skipped every back-off
        self._task = asyncio.create_task(self._run(), name=f"cimd2:{self.name}")

    def send(self, sms: OutboundSms, on_wire: OnWire | None = None) -> asyncio.Future[SubmitResult]:
        return asyncio.ensure_future(self.submit(sms, on_wire))

    async def submit(self, sms: OutboundSms, on_wire: OnWire | None = None) -> SubmitResult:
        conn = self._conn
        if conn is None or self.state is not LinkState.ACTIVE or self._stopping:
            return SubmitResult(Outcome.TEMPORARY, error="link not active", unsent=True)
        try:
            params = submit_params(sms, self.cfg, self.clock())
            encode(Packet(Op.SUBMIT, 1, params))  # refuse unsendable values before touching the wire
        except ValueError as exc:
            log.error("cimd2.submit_malformed", link=self.name, part_id=sms.part_id, error=str(exc))
            return SubmitResult(Outcome.MALFORMED, error=str(exc))
        # One phone's submits a second apart, over every bind of the account: their report keys differ.
        spacing = account_spacing(self.cfg)
        async with spacing.turn(sms.destination) as turn:
            if self._wire is not None:
                await self._wire.acquire()
            conn = self._conn  # after the phone's wait: the session may have gone meanwhile
            if conn is None or self.state is not LinkState.ACTIVE or self._stopping:
                return SubmitResult(Outcome.TEMPORARY, error="link not active", unsent=True)
            wrote: list[float] = []  # when: the SMSC stamps it no earlier (`gracereports.py`)
            written = noting(wrote, self.clock, on_wire)
            entry = await self._requests.exchange(conn, Op.SUBMIT, params, written=written)
            if entry is not None and entry.written:
                spacing.answered(turn)
        if entry is None:
            # The session went before the submit got a packet number: nothing was written (the
            # dispatcher hands the link more submits than its window, `spacing.parked_places`).
            error = f"link lost ({conn.reason or 'closed'})"
            return SubmitResult(Outcome.TEMPORARY, error=error, unsent=True)
        resp = entry.future.result()
        if resp is None:
            if entry.written and (conn.timed_out or entry.lost_behind is not None):  # not by a 98, a stop
                return self._unanswered(conn, sms, wrote[0] if wrote else self.clock(), entry.lost_behind)
            error = f"no submit response ({conn.reason or 'link lost'})"
            return SubmitResult(Outcome.TEMPORARY, error=error, written=entry.written)
        result = submit_result(sms, resp, link=self.name, unstamped=self._unstamped)
        shown = without_password(logged_error(result.error, resp), self._said, self.cfg.system_id) or None
        result = result_without_password(result, self._said, self.cfg.system_id)  # its words may quote it
        result = self._grace.keys.answered(result)  # a 060 repeated for a phone names no one SMS
        if result.outcome is Outcome.ACCEPTED:
            self._counts["submitted"] += 1
            if result.message_id is not None:
                self._grace.accepted(result.message_id, self.clock())
        elif result.outcome is Outcome.THROTTLED:
            self._counts["throttled"] += 1
        # The part keeps the SMSC's 901 text whole but for the password; the journal gets it without
        # the number it may quote either.
        log.info("cimd2.submit", link=self.name, part_id=sms.part_id, outcome=result.outcome.value,
                 message_id=result.message_id, error=shown)  # fmt: skip
        return result

    def _unanswered(self, conn: Conn, sms: OutboundSms, at: float, behind: int | None) -> SubmitResult:
        """A written submit whose connection went before its answer (a response timeout, the SMSC, a
        fault of ours closed it): the SMSC may have taken it (`gracereports.py`)."""
        error = f"no submit response ({conn.reason or 'link lost'})"
        grace = self.cfg.late_answer_grace_seconds
        log.warning("cimd2.submit_unanswered", link=self.name, part_id=sms.part_id, error=error,
                    late_answer_wait=grace)  # fmt: skip
        self._counts["unanswered"] += 1 if grace > 0 and conn.timed_out else 0
        return self._grace.unanswered(sms, at, self.clock(), error, grace, lost_behind=behind,
                                      timed_out=conn.timed_out)  # fmt: skip

    async def stop(self, *, drain: bool = True) -> None:
        self._stopping = True
        self._grace.stop()
        self._wake.set()
        conn = self._conn
        if conn is not None and not conn.closed.is_set():
            if drain:
                patience = min(5.0, self.cfg.response_timeout_seconds)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.idle.wait(), self.cfg.response_timeout_seconds)
                # MOs and reports being committed are answered first: the logout's answer confirms their 70s.
                await self._inbound.settle(conn, patience)
                self._inbound.leaving(conn)
                await self._requests.request(conn, Op.LOGOUT, [], patience=patience)
            conn.close("stopped", ours=True)
        if self._task is not None:
            await ended(self._task, self.name, "cimd2")
            self._task = None
        self._set_state(LinkState.STOPPED)

    def stats(self) -> LinkStats:
        counts = dict(self._counts)
        if self._conn is not None:
            self._add_parser_counts(counts, self._conn.parser)
        in_flight = (
            sum(1 for e in self._conn.pending.values() if e.packet.op == Op.SUBMIT) if self._conn else 0
        )
        shown_apart = ("submitted", "throttled", "reconnects", "errors")
        return LinkStats(
            # The dispatcher's places: the window, and those of submits waiting their phone's second.
            state=self.state, in_flight=in_flight, window=self.window, places=self.window + self._parked,
            submitted=counts["submitted"],
            throttled=counts["throttled"], reconnects=counts["reconnects"],
            errors=counts["errors"] + counts["parse_errors"] + counts["checksum_errors"] + counts["timeouts"],
            extra={k: str(v) for k, v in counts.items() if k not in shown_apart},
            last_error=self._last_error, last_error_at=self._last_error_at,
            down_since=self._outage.since, down_attempts=self._outage.attempts,
        )  # fmt: skip

    def _failed(self, why: str) -> None:
        self._last_error, self._last_error_at = why, time.time()  # `LinkStats.last_error`

    # --- connection lifecycle -------------------------------------------------------------------------

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        self._grace.session_up(state is LinkState.ACTIVE)  # lost submits go a settle after a login
        log.debug("cimd2.state", link=self.name, state=state.value)
        if self._events is not None:
            try:
                self._events.on_state(self.name, state)
            except Exception:
                log.exception("cimd2.on_state_failed", link=self.name)

    async def _run(self) -> None:
        stopping, longest = (lambda: self._stopping), self.cfg.reconnect_max_seconds
        await run_turns(self.name, "cimd2", self._turn, self._turn_failed, stopping, self._wake, longest)

    def _turn_failed(self, error: str) -> None:
        self._failed(f"link task failed: {error}")
        self._counts["reconnects"] += 1
        self._set_state(LinkState.RECONNECTING)

    async def _turn(self, first: bool) -> None:
        """One session, then the wait before the next (`smsc.linkturns`)."""
        self._set_state(LinkState.CONNECTING if first else LinkState.RECONNECTING)
        self._logged_in_at, self._held = None, False
        try:
            result = await self._session()
        except Exception:  # a bug here must not end the link for good: log it and reconnect
            log.exception("cimd2.session_failed", link=self.name)
            result = "failed"
        if self._stopping:
            return
        cfg = self.cfg
        now = asyncio.get_running_loop().time()
        logged_in_for = None if self._logged_in_at is None or not self._held else now - self._logged_in_at
        self._outage.ended()
        self._failures = reconnect_attempt(self._failures, logged_in_for, cfg.reconnect_max_seconds)
        delay = cfg.reconnect_max_seconds
        if result != "fatal":
            delay = backoff(self._failures, cfg.reconnect_min_seconds, cfg.reconnect_max_seconds)
        self._set_state(LinkState.DISCONNECTED if result == "fatal" else LinkState.RECONNECTING)
        # Once an attempt, with the outage's length: a 30-s blip and a 20-min outage read apart.
        down_for = outage_words(self._outage.down_for() or 0.0)
        log.info("cimd2.reconnect_in", link=self.name, seconds=delay, down_for=down_for)
        await rest(self._wake, delay)
        self._counts["reconnects"] += 1

    async def _session(self) -> str:
        """Connect, log in and serve until the connection ends: "served", "failed" or "fatal"."""
        cfg = self.cfg
        try:  # `password_file` read again at each login: a corrected file is used without a restart
            password = self._password() if callable(self._password) else self._password
        except (OSError, ValueError) as exc:  # the file's words: the key and the file, never the password
            log.error("cimd2.password_unreadable", link=self.name, error=str(exc))
            self._failed(str(exc))
            return "fatal"
        self._said = password
        try:
            login = login_params(cfg.system_id, password)
        except ValueError as exc:  # the same on every attempt: the configuration must change
            log.error("cimd2.login_not_encodable", link=self.name, error=str(exc))  # it quotes no character
            self._failed("login not encodable")
            return "fatal"
        try:
            reader, writer = await open_stream(cfg.host, cfg.port, cfg.tls, cfg.response_timeout_seconds)
        except (OSError, TimeoutError, TlsFileError) as exc:
            if not (why := self._tls_faults.connect_failed(cfg, exc)).startswith("TLS "):  # TLS: logged once
                log.warning("cimd2.connect_failed", link=self.name, host=cfg.host, port=cfg.port,
                            error=str(exc))  # fmt: skip
            self._failed(why)
            return "failed"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(reader, writer, self.window, cfg.response_timeout_seconds)
        self._inbound.opened(conn)
        tasks = [asyncio.create_task(self._read_loop(conn))]
        try:
            resp = await self._requests.request(conn, Op.LOGIN, login)
            if resp is None:  # a TLS 1.3 SMSC refuses our client certificate here, at the first read
                why = self._tls_faults.closed(conn.reason, cfg.tls)
                if (said := conn.parser.not_cimd2()) is not None:  # another service on this port
                    why = foreign_peer("CIMD2", cfg.host, cfg.port, self.name, said)
                log.warning("cimd2.login_failed", link=self.name, error=why or "no response")
                self._failed(f"login: {why or 'no response'}")
                return "failed"
            if (refusal := login_refusal(resp)) is not None:
                self._failed(report_refusal(self.cfg, refusal, password, password_key(self._password)))
                return "fatal" if refusal.fatal else "failed"
            self._conn = conn
            watch = SessionTasks(conn, "cimd2.session_task_failed", self.name)
            tasks += [
                watch(self._inbound.serve(conn), "deliveries"),
                watch(self._requests.keepalive(conn), "keepalive"),
            ]
            self._logged_in_at = asyncio.get_running_loop().time()
            self._outage.bound()
            self._tls_faults.bound()
            conn.answered.clear()
            self._set_state(LinkState.ACTIVE)
            # Up only once it held: an SMSC that drops each login at once, or answers nothing after
            # it, is still down (`Outage`, `session_held`).
            after = stable_after(cfg.reconnect_max_seconds)
            held = await session_held(
                conn.closed,
                conn.answered,
                after,
                lambda: tasks.append(watch(self._alive(conn), "alive")),
            )
            self._held = held
            if held and (outage := self._outage.held()) is not None:
                down_for, attempts = outage_words(outage[0]), outage[1]
                log.warning(
                    "cimd2.up_again", link=self.name, down_for=down_for, attempts=attempts,
                    summary=f"link {self.name} up again after {down_for} down ({attempts} attempts)",
                )  # fmt: skip
            await conn.closed.wait()
            (log.info if self._stopping else log.warning)(
                "cimd2.disconnected", link=self.name, reason=conn.reason
            )
            if not self._stopping:
                self._failed(conn.reason or "disconnected")
            return "served"
        finally:
            conn.close(conn.reason or "session ended")
            self._inbound.ended(conn)
            self._conn = None
            self._add_parser_counts(self._counts, conn.parser)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _alive(self, conn: Conn) -> None:
        """An alive (40) now, for `session_held`; unanswered, it ends the session as the keepalive's would.
        None while the link is stopping: it has nothing to prove, and its logout must come last."""
        if not self._stopping and answered(await self._requests.request(conn, Op.ALIVE, [])):
            self._counts["alives"] += 1

    @staticmethod
    def _add_parser_counts(counts: dict[str, int], parser: Cimd2Parser) -> None:
        counts["parse_errors"] += parser.errors
        counts["checksum_errors"] += parser.checksum_errors

    async def _read_loop(self, conn: Conn) -> None:
        reason = "closed by the SMSC"
        abort = False
        try:
            while data := await conn.reader.read(65536):
                for packet in conn.parser.feed(data):  # our answers at once, deliveries to the inbox
                    self._on_packet(conn, packet)
                await conn.inbox_room()  # past its bound: the rest waits in TCP
                if overfull(conn.writer):
                    wait = self.cfg.response_timeout_seconds
                    if why := await stalled(conn.writer, wait, "cimd2.peer_not_reading", link=self.name):
                        reason, abort = why, True
                        break
        except OSError as exc:
            reason = f"read error: {exc}"
        except Exception:
            log.exception("cimd2.reader_failed", link=self.name)
            reason = "reader failed"
        finally:
            conn.close(reason, abort=abort)

    # --- packets from the SMSC ------------------------------------------------------------------------

    def _on_packet(self, conn: Conn, packet: Packet) -> None:
        try:
            if packet.op == Op.NACK:
                if not self._inbound.nacked(conn, packet):  # one of our 70s, or of our requests
                    self._requests.on_nack(conn, packet)
            elif packet.is_response:
                self._requests.answer(conn, packet)
            else:
                self._inbound.request(conn, packet)
        except Exception:  # no packet, however odd, may stop the reader
            self._counts["errors"] += 1
            log.exception("cimd2.packet_handling_failed", link=self.name, packet=packet.describe())
