"""The SMPP 3.4 link driver: one transceiver bind to one SMSC, behind `smsc.base.SmscLink`.

`SmppLink` is the asyncio side: the submit window, throttling pauses, link state and statistics, and
handing MOs and reports to `LinkEvents` before they are answered. Everything that touches the socket
runs in one I/O thread, `smsc.smpp.io.SmppIo` (why a thread and our own read loop: see there); work
goes to it with `SmppIo.post` and results come back on the loop. The status tables and the pure PDU
field mapping live in `smsc.smpp.pdu`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from smsc.base import (
    Ack,
    DeliveryReport,
    InboundSms,
    LinkEvents,
    LinkState,
    LinkStats,
    OutboundSms,
    Outcome,
    SubmitResult,
)
from smsc.smpp.io import UNBIND_WAIT, SmppIo
from smsc.smpp.pdu import ESME_RX_T_APPN, BadDestination, submit_fields

# Callers import these from here.
from smsc.smpp.pdu import classify_status as classify_status
from smsc.smpp.pdu import normalise_message_id as normalise_message_id
from smsc.smpp.pdu import source_address as source_address
from smsc.smpp.pdu import status_text as status_text

if TYPE_CHECKING:
    from gateway.config import SmscSection

log = structlog.get_logger(__name__)

MAX_THROTTLE_PAUSE = 30.0
DRAIN_WAIT = 5.0


class SmppLink:
    """A transceiver bind to one SMSC; see `smsc.base` for the rules every driver follows."""

    def __init__(self, cfg: SmscSection, *, password: str) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.state = LinkState.DISCONNECTED
        self._io = SmppIo(cfg, password=password, on_state=self._apply_state, on_inbound=self._handle_inbound)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: LinkEvents | None = None
        self._window = asyncio.Semaphore(cfg.window)
        self._in_flight = 0
        self._stopping = False
        self._stop_evt = asyncio.Event()
        self._drained = asyncio.Event()
        self._pause = 0.0
        self._paused_until = 0.0
        self._submitted = self._throttled = self._errors = 0
        if len(cfg.system_id) > 15:
            log.warning("smpp.system_id_too_long", link=self.name, length=len(cfg.system_id), limit=15)
        if len(password) > 8:
            log.warning("smpp.password_too_long", link=self.name, length=len(password), limit=8)

    async def start(self, events: LinkEvents) -> None:
        if self._io.started or self._stopping:
            return
        self._loop = asyncio.get_running_loop()
        self._events = events
        self._io.start(self._loop)

    async def submit(self, sms: OutboundSms) -> SubmitResult:
        if self._stopping or self.state is not LinkState.ACTIVE:
            return SubmitResult(Outcome.TEMPORARY, error=f"link {self.state.value}")
        try:
            fields = submit_fields(sms, self.cfg)
        except ValueError as exc:
            self._errors += 1
            outcome = Outcome.REJECTED if isinstance(exc, BadDestination) else Outcome.MALFORMED
            return SubmitResult(outcome, error=str(exc))
        async with self._window:
            await self._wait_throttle()
            if self._stopping or self.state is not LinkState.ACTIVE:
                return SubmitResult(Outcome.TEMPORARY, error=f"link {self.state.value}")
            assert self._loop is not None
            future: asyncio.Future[SubmitResult] = self._loop.create_future()
            self._in_flight += 1
            try:
                self._io.post("submit", fields, future)
                result = await future
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._drained.set()
        self._account(result)
        return result

    async def _wait_throttle(self) -> None:
        assert self._loop is not None
        while (delay := self._paused_until - self._loop.time()) > 0 and not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_evt.wait(), delay)

    def _account(self, result: SubmitResult) -> None:
        assert self._loop is not None
        if result.outcome is Outcome.ACCEPTED:
            self._submitted += 1
            self._pause = 0.0
        elif result.outcome is Outcome.THROTTLED:
            self._throttled += 1
            now = self._loop.time()
            # Answers to submits already in flight arrive during the pause; only a throttle seen
            # after the pause has ended means the SMSC still wants us slower.
            if now >= self._paused_until:
                base = self.cfg.throttle_pause_seconds
                self._pause = min(self._pause * 2, MAX_THROTTLE_PAUSE) if self._pause else base
                self._paused_until = now + self._pause
                log.warning("smpp.throttled", link=self.name, pause=self._pause, error=result.error)
        else:
            self._errors += 1

    async def stop(self, *, drain: bool = True) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._stop_evt.set()
        if not self._io.started:
            self._apply_state(LinkState.STOPPED)
            return
        if drain and self._in_flight:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._drained.wait(), min(DRAIN_WAIT, self.cfg.response_timeout_seconds)
                )
        self._io.post("stop")
        assert self._io.done is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._io.done), UNBIND_WAIT + DRAIN_WAIT)
        if not self._io.finish():
            log.warning("smpp.thread_still_running", link=self.name)
        self._apply_state(LinkState.STOPPED)

    def stats(self) -> LinkStats:
        return LinkStats(
            state=self.state,
            in_flight=self._in_flight,
            window=self.cfg.window,
            submitted=self._submitted,
            throttled=self._throttled,
            errors=self._errors + self._io.bad_pdus,
            reconnects=self._io.reconnects,
            extra={"peer": f"{self.cfg.host}:{self.cfg.port}", "bad_pdus": str(self._io.bad_pdus)},
        )

    def _apply_state(self, state: LinkState) -> None:
        if self.state is LinkState.STOPPED or self.state is state:
            return
        self.state = state
        log.info("smpp.state", link=self.name, state=state.value)
        if self._events is not None:
            try:
                self._events.on_state(self.name, state)
            except Exception:
                log.exception("smpp.on_state_failed", link=self.name)

    async def _handle_inbound(self, item: InboundSms | DeliveryReport, resp: str, seq: int, gen: int) -> None:
        status = ESME_RX_T_APPN
        try:
            assert self._events is not None
            if isinstance(item, DeliveryReport):
                ack = await self._events.on_report(self.name, item)
            else:
                ack = await self._events.on_deliver(self.name, item)
            status = 0 if ack is Ack.OK else ESME_RX_T_APPN
        except Exception:
            log.exception("smpp.handler_failed", link=self.name, pdu=resp.removesuffix("_resp"))
        self._io.post("resp", gen, resp, seq, status)
