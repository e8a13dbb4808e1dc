"""The simulator's SMPP 3.4 server side (asyncio), speaking to ESMEs such as `smsc.smpp.link.SmppLink`.

It frames PDUs itself (so that garbage is answered with generic_nack instead of a crash); the PDUs every
SMS crosses go through `smsc.smpp.codec`, so that a benchmark measures the gateway rather than the
simulator, and smpplib's PDU classes handle the bind and the rest. Each connection is an `SmppSession`:
bind checks the login with the core, submit_sm is turned into a `SubmittedSms` and answered with the
core's verdict, MOs and delivery receipts go out as deliver_sm and are sent again when the client does
not answer in time or answers with an error, as an SMSC does (`smpp_deliveries`); an MO part still
unacknowledged when the session ends goes to the next bind as it was, concatenation UDH kept. The hooks
(`SmppSession.on_submit_sm`, `SmppServer.session_class`) are what the behaviour-named fake SMSCs in the
tests override.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from smpplib import command_codes
from smpplib import smpp as pdus
from smpplib.exceptions import UnknownCommandError

from smsc.base import ReportStatus
from smsc.decoding import decode_user_data
from smsc.simulator import limits, smpp_checks
from smsc.simulator.core import SimulatorCore, SubmittedSms, SubmitVerdict, keep_recent
from smsc.simulator.numbers import destination_number
from smsc.simulator.receipts import FINAL_STATES, Detail
from smsc.simulator.serving import ServerBase, SessionBase, wait_until
from smsc.simulator.smpp_deliveries import Deliveries
from smsc.simulator.smpp_texts import RECEIPT_STATES, address_fields, mo_parts, receipt_text
from smsc.smpp.codec import (
    ENCODABLE,
    MAX_PDU,
    RESPONSE_BIT,
    PduError,
    ShortMessage,
    decode_sm,
    encode,
    generic_nack,
)
from smsc.smpp.pdu import Sequences, field_text

log = structlog.get_logger(__name__)

ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVBNDSTS, ESME_RALYBND = 0x02, 0x03, 0x04, 0x05
ESME_RINVPASWD, ESME_RINVSYSID, ESME_RUNKNOWNERR = 0x0E, 0x0F, 0xFF
BIND_MODES = {"bind_transmitter": "tx", "bind_receiver": "rx", "bind_transceiver": "trx"}
_COMMAND_NAMES = {code: name for name, code in command_codes.commands.items()}
_BODILESS = frozenset({"enquire_link", "enquire_link_resp", "unbind", "unbind_resp", "deliver_sm_resp",
                       "data_sm_resp"})  # fmt: skip  # nothing in their bodies is read


@dataclass
class ServerStats:
    """Instrumentation for tests and fakes: what the server saw and answered. The lists keep the last
    MAX_RECORDS entries only (`keep_recent`): the simulator runs inside the daemon for months."""

    received: list[SubmittedSms] = field(default_factory=list)
    binds: list[tuple[str, str, int]] = field(default_factory=list)  # (mode, system_id, status)
    deliver_responses: list[tuple[str, int]] = field(default_factory=list)  # (kind, status)
    deliver_answered: int = 0  # every deliver_sm answer, counted beyond the ones kept above
    commands: Counter[str] = field(default_factory=Counter)  # every PDU the clients sent, by name
    nacks: list[tuple[int, int]] = field(default_factory=list)  # generic_nack from clients: (seq, status)
    unbind_answered: int = 0
    outstanding: int = 0  # submit_sm received but not yet answered
    max_outstanding: int = 0


class SmppSession(SessionBase):
    """One client connection. `on_submit_sm` is the hook fake SMSCs override."""

    protocol = "smpp"
    server: SmppServer

    def __init__(
        self, server: SmppServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(server, reader, writer)
        self.mode: str | None = None
        self._seq = Sequences()
        self._deliveries = Deliveries(self)
        self._unbind_seq: int | None = None
        self.unanswered = 0  # submit_sm taken and not yet answered: the window `limits` may cap

    @property
    def can_receive(self) -> bool:
        return self.mode in ("rx", "trx")

    @property
    def pending_deliveries(self) -> int:
        """deliver_sm sent or waiting to be sent again, not yet acknowledged by the client."""
        return len(self._deliveries)

    # --- wire ---------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_pdu(self, name: str, seq: int | None = None, status: int = 0, **fields: Any) -> int:
        """Write one PDU and return its sequence number. Without `seq`, a request takes the next
        number and a response the last one, as smpplib numbers them; smpplib writes what the codec
        does not cover (binds, data_sm, ...)."""
        command_id = command_codes.commands.get(name, -1)
        allowed = ENCODABLE.get(command_id)
        if allowed is None or not fields.keys() <= allowed:
            pdu = pdus.make_pdu(name, client=self._seq, status=status, **fields)
            if seq is not None:
                pdu.sequence = seq
            self.write(pdu.generate())
            return int(pdu.sequence)
        if seq is None:
            seq = self._seq.sequence if command_id & RESPONSE_BIT else self._seq.next_sequence()
        self.write(encode(command_id, seq, status, **fields))
        return seq

    def nack(self, seq: int, status: int) -> None:
        self.write(generic_nack(seq, status))

    async def run(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(4)
                (length,) = struct.unpack(">I", head)
                if not 16 <= length <= MAX_PDU:
                    log.warning("sim.smpp.garbage", length=length, head=head.hex())
                    self.nack(0, ESME_RINVCMDLEN)
                    break
                raw = head + await self.reader.readexactly(length - 4)
                if self.writer.is_closing():  # closed by a hook: what is still buffered goes unread
                    break
                await self.dispatch(raw)
                if self.overfull() and not await self.drained():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            await self.close()

    def take_unacknowledged(self) -> list[tuple[Any, ...]]:
        return self._deliveries.take()

    # --- requests from the client -------------------------------------------------------------

    async def dispatch(self, raw: bytes) -> None:
        _, command_id, status, seq = struct.unpack_from(">IIII", raw)
        name = _COMMAND_NAMES.get(command_id)
        # Unknown ids share one key: a peer sending random ones must not grow the table for ever.
        self.server.stats.commands[name or "unknown"] += 1
        self.server.changed()
        if name is None:
            self.warn.warning("sim.smpp.unknown_command", command_id=f"0x{command_id:08X}")
            if not command_id & 0x80000000:
                self.nack(seq, ESME_RINVCMDID)
            return
        if name == "generic_nack":
            keep_recent(self.server.stats.nacks, (seq, status))
            self._deliveries.answered(seq, status or ESME_RUNKNOWNERR)
            return
        pdu: Any = None
        if name == "submit_sm":
            pdu = decode_sm(raw)
            if isinstance(pdu, PduError):
                self.warn.warning("sim.smpp.bad_pdu", command=name, error=pdu.reason)
                self.nack(seq, pdu.status)
                return
        elif name not in _BODILESS:
            try:
                pdu = pdus.parse_pdu(raw, client=self._seq, allow_unknown_opt_params=True)
            except UnknownCommandError:  # SMPP knows it (cancel_sm, replace_sm ...), this SMSC does not
                self.nack(seq, ESME_RINVCMDID)
                return
            except Exception as exc:
                self.warn.warning("sim.smpp.bad_pdu", command=name, error=repr(exc))
                self.nack(seq, ESME_RUNKNOWNERR)
                return
        if name in BIND_MODES:
            self._on_bind(name, pdu, seq)
        elif name == "enquire_link":
            self.send_pdu("enquire_link_resp", seq)
        elif name == "unbind":
            self.send_pdu("unbind_resp", seq)
            await self.close()
        elif name in ("deliver_sm_resp", "data_sm_resp"):
            self._deliveries.answered(seq, status)
        elif name == "unbind_resp":
            if seq == self._unbind_seq:
                self.server.stats.unbind_answered += 1
                self.server.changed()
                await self.close()
        elif name == "enquire_link_resp":
            pass
        elif self.mode is None and name == "submit_sm":  # its own answer, as SMPP 3.4 asks: not a nack
            self.send_pdu("submit_sm_resp", seq, ESME_RINVBNDSTS)
        elif self.mode is None:
            self.nack(seq, ESME_RINVBNDSTS)
        elif name == "submit_sm":
            if self.mode == "rx":
                self.send_pdu("submit_sm_resp", seq, ESME_RINVBNDSTS)
                return
            if refusal := self.core.limits.refuse(self.system_id, self.unanswered):
                self.warn.info(
                    "sim.smpp.submit_refused", kind=refusal, reason=refusal, system_id=self.system_id
                )
                self.send_pdu("submit_sm_resp", seq, limits.SMPP_STATUS[refusal])
                return
            if refused := smpp_checks.refusal(pdu):
                self.warn.warning("sim.smpp.submit_invalid", kind=f"invalid:{refused[0]}", error=refused[1])
                self.send_pdu("submit_sm_resp", seq, refused[0])
                return
            sms = self._submitted(pdu)
            self.server.note_submit(+1)
            self.unanswered += 1
            await self.on_submit_sm(seq, sms)
        elif not command_id & 0x80000000:
            self.nack(seq, ESME_RINVCMDID)

    def _on_bind(self, name: str, pdu: Any, seq: int) -> None:
        system_id = field_text(pdu.system_id)
        password = field_text(pdu.password)
        if self.mode is not None:
            status = ESME_RALYBND
        elif self.core.check_login(system_id, password):
            status = 0
        else:
            status = ESME_RINVSYSID if system_id != self.core.cfg.system_id else ESME_RINVPASWD
        keep_recent(self.server.stats.binds, (BIND_MODES[name], system_id, status))
        self.server.changed()
        resp = name + "_resp"
        if status:
            log.info("sim.smpp.bind_refused", system_id=system_id, status=status)
            self.send_pdu(resp, seq, status)
            return
        self.mode, self.system_id = BIND_MODES[name], system_id
        self.send_pdu(resp, seq, 0, system_id="smsgw-sim")
        if self.can_receive:
            self.core.register(self)

    def _submitted(self, pdu: ShortMessage) -> SubmittedSms:
        esm = pdu.esm_class
        data = pdu.short_message or pdu.message_payload or b""
        udh = data[: data[0] + 1] if esm & 0x40 and data else b""
        text, _ = decode_user_data(data, pdu.data_coding, udhi=bool(udh))
        receipt = pdu.registered_delivery & 0x03  # SMPP 3.4 5.2.17: 1 final, 2 failure only, 3 reserved
        return SubmittedSms(
            protocol=self.protocol,
            system_id=self.system_id,
            source=pdu.source_addr,
            destination=destination_number(
                pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi, self.core.region
            ),
            data_coding=pdu.data_coding,
            udh=udh,
            text=text,
            payload=data[len(udh) :],
            want_report=receipt in (1, 2),
            failure_report_only=receipt == 2,
            intermediate_report=bool(pdu.registered_delivery & 0x10),
            esm_class=esm,
            source_ton=pdu.source_addr_ton,
            source_npi=pdu.source_addr_npi,
            dest_ton=pdu.dest_addr_ton,
            dest_npi=pdu.dest_addr_npi,
            validity=pdu.validity_period,
        )

    async def on_submit_sm(self, seq: int, sms: SubmittedSms) -> None:
        """Default SMSC behaviour: the core's verdict, answered after the server's response delay,
        then the report after the verdict's delay."""
        verdict = self.core.on_submit(sms, self)
        self.server.record(sms)
        if self.server.response_delay > 0:
            self.spawn(self._answer_later(seq, verdict))
        else:
            self.answer_submit(seq, verdict)

    async def _answer_later(self, seq: int, verdict: SubmitVerdict) -> None:
        await asyncio.sleep(self.server.response_delay)
        self.answer_submit(seq, verdict)

    def answer_submit(
        self, seq: int, verdict: SubmitVerdict | None, *, status: int | None = None, report: bool = True
    ) -> None:
        """Write the submit_sm_resp: the verdict's status unless `status` is given; then, when the
        verdict asks for one and `report` is true, schedule the delivery receipt."""
        self.server.note_submit(-1)
        self.unanswered -= 1
        if status is None:
            status = ESME_RUNKNOWNERR if verdict is None else 0 if verdict.accepted else verdict.smpp_status
        if status or verdict is None:
            self.send_pdu("submit_sm_resp", seq, status)
            return
        self.send_pdu("submit_sm_resp", seq, 0, message_id=self.server.format_id(verdict.message_id))
        if report:
            self.core.report_later(verdict)

    # --- deliver_sm to the client -------------------------------------------------------------

    async def send_mo(
        self, source: str, destination: str, text: str, *, parts: int | None = None, shuffle: bool = False
    ) -> None:
        addresses = address_fields(source, destination)
        for esm, dc, sm in mo_parts(text, self.server.next_ref(), parts, shuffle):
            fields = dict(addresses, esm_class=esm, data_coding=dc, short_message=sm)
            await self.send_part(tuple(fields.items()))

    async def send_part(self, part: Any) -> None:
        """Deliver one MO part, given as its deliver_sm fields. The key handed back on a drop is the part
        itself, not the text: only what the client did not acknowledge goes out again, with the
        concatenation reference of the parts it did take."""
        self._deliveries.send("mo", dict(part), ("part", part))

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
        wire_id = self.server.format_receipt_id(message_id)
        text = receipt_text(wire_id, status, submitted_at, datetime.now(UTC), detail)
        state = FINAL_STATES[detail[0]].message_state if detail else RECEIPT_STATES[status][1]
        # In a receipt the addresses are swapped: source is the phone the SMS went to.
        fields = dict(address_fields(destination, source), esm_class=0x04, data_coding=0,
                      short_message=text.encode("ascii"), receipted_message_id=wire_id,
                      message_state=state)  # fmt: skip
        self._deliveries.send("report", fields, ("report", message_id, status, detail))

    async def unbind(self) -> None:
        """SMSC-initiated unbind: the session closes when the client answers (or disconnects)."""
        self._unbind_seq = self.send_pdu("unbind")

    async def goodbye(self) -> None:
        if self.mode is None or self.closed.is_set() or self.writer.is_closing():
            return
        await self.unbind()
        await self.closed.wait()


class SmppServer(ServerBase):
    """A listening SMPP server on loopback (port 0 = ephemeral; see `.port`)."""

    session_class: type[SmppSession] = SmppSession
    sessions: set[SmppSession]

    def __init__(
        self,
        core: SimulatorCore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        response_delay: float = 0.0,
        resend_timeout: float = 10.0,
        retry_delay: float = 1.0,
        max_attempts: int = 10,
        message_id_format: Callable[[str], str] = str,
        receipt_id_format: Callable[[str], str] = str,
    ) -> None:
        super().__init__(core, host, port)
        self.response_delay = response_delay
        self.resend_timeout, self.retry_delay, self.max_attempts = resend_timeout, retry_delay, max_attempts
        self.format_id, self.format_receipt_id = message_id_format, receipt_id_format
        self.stats = ServerStats()

    @property
    def received(self) -> list[SubmittedSms]:
        return self.stats.received

    def note_submit(self, delta: int) -> None:
        self.stats.outstanding += delta
        self.stats.max_outstanding = max(self.stats.max_outstanding, self.stats.outstanding)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked after every change (`timeout` is a hang guard)."""
        await wait_until(self._changed, predicate, timeout)

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[SubmittedSms]:
        """Wait until at least `n` parts were received (the list returned keeps the last MAX_RECORDS)."""
        await self.wait_until(lambda: self.received_total >= n, timeout)
        return self.stats.received
