"""The MOs and receipts an SMSC delivers on one `smsc.smpp.connection.SmppConnection` (deliver_sm, data_sm):
each is handed to the link's handler in a task of its own, so that a slow commit holds up no other,
and answered only once the handler acknowledged it; an MO's acknowledgement is then followed until
the SMSC is known to have read it (`smsc.base.MoAcks`).

At most `MAX_HANDLERS` wait for their handler at once. A flood of deliver_sm, each its own task, grew
the daemon by 400 MB (150,000 receipts in one write); at the bound the connection holds the SMSC's
requests as bytes (`smsc.smpp.framing.Held`), served in order as handlers finish, and past the
bytes it holds the rest waits in TCP, at the SMSC. A bound, not a queue: deliveries are still
committed side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from smsc.base import Ack, DeliveryReport, InboundSms, MoAcks
from smsc.decoding import udh_fits
from smsc.logthrottle import LogThrottle
from smsc.receipts import receipt_field_names
from smsc.settings import LinkSettings
from smsc.smpp.codec import DATA_SM_RESP, DELIVER_SM_RESP, encode_resp
from smsc.smpp.lostreceipts import ReceiptGrace
from smsc.smpp.pdu import ESM_RECEIPT_BITS, ESM_UDHI, ESME_RX_T_APPN, delivery_report, inbound_sms
from smsc.stalls import earliest

log = structlog.get_logger(__name__)
# The answer to each kind of delivery, written by `encode_resp` itself: `encode` would first find the
# command's fields and check the ones given, for every receipt.
_RESPONSES = {"deliver_sm": DELIVER_SM_RESP, "data_sm": DATA_SM_RESP}

MAX_HANDLERS = 100
_RECEIPT_TLVS = ("receipted_message_id", "message_state")  # what makes a receipt, named in its log line

InboundHandler = Callable[[InboundSms | DeliveryReport], Awaitable[Ack]]


class Deliveries:
    """One connection's deliveries being handed up; `send` writes to the connection (False when it
    could not), `throttle` is the connection's."""

    def __init__(
        self,
        cfg: LinkSettings,
        on_inbound: InboundHandler,
        acks: MoAcks,
        send: Callable[[bytes], bool],
        throttle: LogThrottle,
    ) -> None:
        self.cfg, self.name = cfg, cfg.name
        self.on_inbound = on_inbound
        self.acks = acks
        self.send = send
        self.throttle = throttle
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[None]] = set()  # handlers of MOs and receipts not yet answered
        # When the delivery being taken was read, if it was held (`smsc.smpp.framing.Held`) rather than
        # taken as it was read: its acknowledgement is late from then.
        self.read_at: float | None = None
        self.on_answered: Callable[[], None] = lambda: None  # a place is free: the connection's `served`
        # The link's submits lost with a session, which a receipt read here may answer (`lostreceipts`).
        self.grace: ReceiptGrace | None = None

    @property
    def full(self) -> bool:
        return len(self.tasks) >= MAX_HANDLERS

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.on_answered()

    def answer(self, name: str, seq: int, status: int) -> bool:
        """Write the response to delivery `seq` (a deliver_sm or data_sm); False when it was not."""
        return self.send(encode_resp(_RESPONSES[name], seq, status))

    def take(self, pdu: Any, name: str, seq: int) -> bool:
        """Hand one delivery to the handler; False when it was a receipt that cannot be read (it is
        acknowledged all the same: re-delivery would bring the same bytes again)."""
        esm = getattr(pdu, "esm_class", 0) or 0
        data = getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None) or b""
        item: InboundSms | DeliveryReport | None
        at = self.loop.time() if self.read_at is None else self.read_at
        # When it may have come in: long before it is read, if the loop stood still meanwhile.
        arrived = earliest(self.loop, at)
        receipt = bool(esm & ESM_RECEIPT_BITS)
        if not receipt and all(getattr(pdu, k, None) is not None for k in _RECEIPT_TLVS):
            # The receipt TLVs (SMPP 3.4 5.3.2.12, 5.3.2.35) under an esm_class that says MO: read as
            # one, its "id:… stat:DELIVRD" was mailed to the sender as the phone's answer, and the SMS
            # waited `submitted` for a report that had come.
            self.throttle.warning("smpp.receipt_marked_mo", link=self.name, seq=seq, esm_class=esm,
                                  reason="the SMSC sent a receipt (receipted_message_id and message_state)"
                                  " with an esm_class that says MO: taken as the receipt")  # fmt: skip
            receipt = True
        if receipt:
            item = delivery_report(pdu, data, self.cfg.message_id_type)
            if item is None:  # what it lacks (an id, a stat), not its bytes: its `text:` quotes the SMS
                tlvs = [k for k in _RECEIPT_TLVS if getattr(pdu, k, None) is not None]
                fields = receipt_field_names(bytes(data), getattr(pdu, "data_coding", 0) or 0)
                self.throttle.warning("smpp.bad_receipt", link=self.name, seq=seq, length=len(data),
                                      fields=fields, tlvs=tlvs)  # fmt: skip
                self.answer(name, seq, 0)
                return False
            if self.grace is not None:  # before it is stored: the part's write then takes it
                self.grace.report(item, bytes(data), getattr(pdu, "data_coding", 0) or 0)
        else:
            if esm & ESM_UDHI and not udh_fits(data):  # read as text: the whole of it, not nothing
                # The UDH's length octet and its first element's type and length: not the text after them.
                self.throttle.warning("smpp.bad_udh", link=self.name, seq=seq, length=len(data),
                                      udh=bytes(data[:3]).hex())  # fmt: skip
            sms = inbound_sms(pdu, bytes(data), esm, self.cfg.dc0_charset)
            item = self.acks.arrived(sms, at, arrived, seq)  # the seq tells the SMSC's re-send of one
        task = asyncio.create_task(self._answer(item, name, seq, arrived))
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return True

    async def _answer(self, item: InboundSms | DeliveryReport, name: str, seq: int, arrived: float) -> None:
        status = ESME_RX_T_APPN
        try:
            if await self.on_inbound(item) is Ack.OK:
                status = 0
        except Exception:
            log.exception("smpp.handler_failed", link=self.name, pdu=name)
        try:
            # Not written when the transport is closing: it drops what is written to it without a word.
            written = self.answer(name, seq, status)
            if status == 0 and isinstance(item, InboundSms):
                self.acks.written(item, arrived=arrived, ok=written)
            elif isinstance(item, InboundSms):
                self.acks.refused(item, arrived)
        except Exception:
            # Raised out of the task, it was said by nothing but asyncio's "Task exception was never
            # retrieved", whenever the task was collected, with no link, PDU or traceback of ours.
            log.exception("smpp.delivery_answer_failed", link=self.name, pdu=name, seq=seq, status=status)
