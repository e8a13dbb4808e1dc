"""What the SMSC links tell the gateway: delivery reports, MOs and link states, into the store.

Every report or MO is committed before the driver may acknowledge it to the SMSC (`Ack.OK`); if
the store cannot take it, the answer is `Ack.RETRY` and the SMSC delivers it again. A message that
reaches its final state gets its notification mail queued in the same transaction
(`gateway.notifier`), so a crash can neither lose the bounce nor send it twice. Once the driver
tells that an MO's acknowledgement reached the SMSC (`on_acked`), its rows are marked in a
background write: an identical MO after that is a new SMS, before it the same one delivered again
(`gateway.store.mo`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

import structlog

from gateway import conversations, optoutwords, premium, reassembly
from gateway.bitelog import FaultLog
from gateway.conversations import lateparts, waiting
from gateway.conversations.numbers import (
    display,
    normalise,
    stored_phone,
    sub_address_forms,
    sub_address_whole,
)
from gateway.notifier import Notifier
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.policy import ADDED
from gateway.store.stopped import end_waiting
from smsc.base import Ack, DeliveryReport, InboundSms, LinkState

log = structlog.get_logger(__name__)


# MOs answered whose acknowledgement the driver has not reported on yet: a driver reports each
# within a round trip or when its connection ends, so more than this means one that never will.
_MAX_UNREPORTED = 10_000


class _Answered(NamedTuple):
    sms: InboundSms  # held, so that its id() names it until the driver reports
    rows: list[int]  # the mo rows its acknowledgement stands for
    at: float  # when `on_deliver` said OK: the driver writes the acknowledgement in the same step


class GatewayEvents:
    """`smsc.base.LinkEvents` for the daemon."""

    def __init__(self, store: Store, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        self.states: dict[str, LinkState] = {}
        self._answered: dict[int, _Answered] = {}
        gw = notifier.config.gateway
        self.optout_words = {optoutwords.plain(w) for w in gw.optout_words}
        # An opt-out word is acted on before an opt-in word, should one be configured as both.
        self.optin_words = {
            optoutwords.plain(w): w for w in gw.optin_words if optoutwords.plain(w) not in self.optout_words
        }
        self.on_link_up: Callable[[], None] = lambda: None
        self.on_optout: Callable[[str], None] = lambda _number: None  # the dispatcher's parts claimed ahead
        # A full disk fails every receipt and MO, and the SMSC delivers each again: one line a second
        # per kind, the traceback with the first only (`FaultLog`).
        self.store_log = FaultLog(log)
        # Receipts that overtake their submit answer are matched only this long: SMSC ids repeat.
        store.queue.early_dlr_max_age = notifier.config.gateway.early_dlr_max_age_minutes * 60
        store.queue.id_modes = {link.name: link.message_id_type for link in notifier.config.smsc}

    async def on_report(self, link: str, report: DeliveryReport) -> Ack:
        store = self.store

        # The phone the report names, as messages keep it: it tells apart SMS given one id. E.164 as
        # written ("+" and digits: SMPP's TON 1) is not parsed again: the numbering plan's parse and
        # check of every receipt's phone were 2.5 % of the daemon's CPU per mail.
        phone = report.destination
        if phone and not (phone[:1] == "+" and phone[1:].isdigit()):
            phone = normalise(phone, self.notifier.config.gateway.default_region)

        def work() -> None:
            self.notifier(
                store.queue.record_report(
                    link, report.message_id, report.status.value, report.error, report.raw, phone
                )
            )

        try:
            await store.write(work, replayable=True)  # rows (and log lines) only: may run twice
        except Exception as exc:
            self.store_log.error(
                "dlr.store_failed", exc, traceback=True, link=link, smsc_id=report.message_id, error=str(exc)
            )
            return Ack.RETRY
        # At DEBUG: what a receipt changes shows in the message's final `message.state` line, and one
        # that matches nothing in `dlr.unmatched`; a line per receipt would only double the log.
        log.debug("dlr.recorded", link=link, smsc_id=report.message_id, status=report.status.value)
        return Ack.OK

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        store = self.store
        concat = (sms.concat.ref, sms.concat.total, sms.concat.seq) if sms.concat else None
        # Both numbers in E.164 whatever form the SMSC used, so that conversations match.
        region = self.notifier.config.gateway.default_region
        source = normalise(sms.source, region, sms.raw.get("source_ton"))
        destination = normalise(sms.destination, region, sms.raw.get("dest_ton"))

        rows: list[int] = []
        # Which table its DCS was read by, kept on the MO for counting its parts (`MoRepo.record_mo`).
        section = next((s for s in self.notifier.config.smsc if s.name == link), None)
        protocol = section.type if section is not None else None
        prefix = section.sender_prefix if section is not None and section.type == "cimd2" else None

        def work() -> int | None:
            nonlocal destination
            rows.clear()  # a piece may run again
            if prefix is not None:  # our number as its sub-address alone (`sub_address_whole`)
                destination = self._whole(sms.destination, prefix, source) or destination
            # The SMSC's stamp of the SMS, kept on each copy it delivers (CIMD2's 060; SMPP has none):
            # it tells a copy delivered again from the same text sent again (`MoRepo.redelivery_of`).
            mo = store.mo.record_mo(
                link, source, destination, sms.text, sms.data_coding, concat, rows, repeated=sms.repeated,
                resent=sms.resent, smsc_time=sms.raw.get("smsc_time"), protocol=protocol,
            )  # fmt: skip
            if mo is not None:
                self.whole_mo(mo)
            return mo

        try:
            mo_id = await store.write(work)
        except Exception as exc:
            self.store_log.error("mo.store_failed", exc, traceback=True, link=link, error=str(exc))
            return Ack.RETRY
        # By its id alone: a phone number is never in a log line (`phone forget` erases it from the MO).
        log.info("mo.recorded", link=link, mo=mo_id)
        if len(self._answered) >= _MAX_UNREPORTED:  # left unmarked: counted as never acknowledged
            del self._answered[next(iter(self._answered))]
        self._answered[id(sms)] = _Answered(sms, rows, store.clock())
        return Ack.OK

    def _whole(self, written: str, prefix: str, source: str) -> str | None:
        """Inside the MO's write: our number a CIMD2 MO names by its sub-address, among the numbers
        the phone had SMS from, the senders and the pool (`sub_address_whole`)."""
        from gateway.conversations.handlers import repo

        cfg = self.notifier.config
        region = cfg.gateway.default_region
        if not (forms := sub_address_forms(written, prefix, region)):
            return None  # no sub-address: our number whole (the most MOs), or a name
        r, phone = repo(self.store), stored_phone(source, region)
        ours = [
            *(r.numbers_among(phone, forms) if phone else []),
            cfg.gateway.default_sender,
            *r.senders_among(forms),
        ]
        return sub_address_whole(written, prefix, [n for n in (*ours, *cfg.replies.pool) if n], region)

    def on_acked(self, link: str, sms: InboundSms, confirmed: bool) -> None:
        """The driver's word on the acknowledgement of an MO `on_deliver` took: once the SMSC is known
        to have read it, the MO's rows are marked (a background write that may run twice); an
        unconfirmed one leaves them unmarked, so that the SMSC's next copy is known as the same SMS."""
        answered = self._answered.pop(id(sms), None)
        if answered is None or answered.sms is not sms or not confirmed or not answered.rows:
            return
        store = self.store
        try:
            done = store.submit(lambda: store.mo.mark_acked(answered.rows, answered.at), replayable=True)
        except Exception as exc:
            self.store_log.error("mo.ack_not_recorded", exc, traceback=True, link=link, mo=answered.rows[-1])
            return
        done.add_done_callback(lambda f: self._log_failed_mark(f, link, answered.rows))

    def _log_failed_mark(self, done: asyncio.Future[None], link: str, rows: list[int]) -> None:
        if not done.cancelled() and (exc := done.exception()) is not None:
            # Unmarked, the MO counts as never acknowledged: an identical one is taken for it again.
            self.store_log.error("mo.ack_not_recorded", exc, link=link, mo=rows[-1], error=str(exc))

    def whole_mo(self, mo_id: int) -> None:
        """A complete MO text (short, or reassembled), handled in the transaction that stored it.

        A handler that fails on it (a bug, or data it cannot take) is undone alone and the MO kept
        as `failed` with the error: answered with a retry instead, the SMSC would deliver the same
        MO again and again, and a stale set of segments would stop the housekeeping write (and
        with it the expiry of every part) for good. A failing disk or database is no fault of the
        MO: the whole write fails, and the SMSC delivers it again once the store can take it.
        """
        try:
            with self.store.db.savepoint():
                self._handle_whole_mo(mo_id)
        except Exception as exc:
            if not self.store.db.conn.in_transaction or store_trouble(exc):
                raise
            log.exception("mo.handling_failed", mo=mo_id)
            self.store.mo.mark_failed(mo_id, f"internal error: {exc!r}"[:500])

    async def resume_waiting(self) -> int:
        """The answers that waited for the SMSC's answer to a submit to their phone, handled once it
        came (`gateway.conversations.waiting`), by the housekeeping each turn."""
        return await waiting.resume(self.store, self.notifier.config)

    def _handle_whole_mo(self, mo_id: int) -> None:
        """Opt-out and opt-in words act on it (R-2.4), then it is mailed to its client when it went to
        a premium number (R-4), else to its conversation's user (R-3), with a note of what the words
        did, of a sentence that may be an opt-out, or of parts that did not come."""
        cfg = self.notifier.config
        source, text, unread = self.store.mo.mo_text(mo_id)
        form = optoutwords.form(text)
        # A copy the SMSC delivers again acted with its first delivery: a STOP delivered again after
        # the phone's START opted it out again behind its back (the handlers settle it `duplicate`).
        earlier = self.store.mo.redelivery_of(mo_id)  # once an MO: both handlers are told it
        again = earlier is not None
        optout = form in self.optout_words and not again
        optin = form in self.optin_words and not again
        phone = stored_phone(source, cfg.gateway.default_region) is not None
        if optout and not phone:
            # A garbled source is not a number we could ever send to; putting it on the list
            # would only hide that the SMSC sent junk.
            log.warning("optout.ignored", mo=mo_id, reason="source is not an international number")
            optout = False
        ended, listed = None, False
        if optout:
            listed = self.store.policy.add_optout(source, word=text.strip(), source="mo") != ADDED
            if not listed:
                log.info("optout.added", mo=mo_id, word=text.strip())  # by its id: no number in a log line
                self.on_optout(source)
            # Also when an admin had listed it: their `optout add` leaves waiting SMS to the claim.
            finished, ended = end_waiting(self.store.queue, source)
            if finished:
                self.notifier(finished)
                log.info("mt.opted_out", messages=[f.message_id for f in finished], waiting=True)
        note = None
        if optin and phone:
            note = self._opt_in(mo_id, source, self.optin_words[form])
        maybe = phone and not optout and not optin and optoutwords.may_be_optout(form, self.optout_words)
        notes = [note, ended, self._noted(mo_id, text, source, unread, maybe_optout=maybe)]
        note = ". ".join(n for n in notes if n) or None
        if (
            premium.on_whole_mo(
                self.store, cfg, mo_id, optout=optout, listed=listed, note=note, earlier=earlier
            )
            is not None
        ):
            return
        conversations.on_whole_mo(
            self.store, cfg, mo_id, optout=optout, listed=listed, note=note, earlier=earlier
        )

    def _noted(
        self, mo_id: int, text: str, number: str, unread: str | None, *, maybe_optout: bool
    ) -> str | None:
        """Notes only describing the MO (an alphabet not read, a possible opt-out, parts missing), or None:
        one that fails is left out and the MO mailed all the same (not `failed` for a wording)."""
        notes: list[str | None] = []
        try:
            notes.append(reassembly.alphabet_note(unread))  # said here, never in the text
            if maybe_optout:
                notes.append(self._maybe_optout(number))
            # Parts missing only as the rows say (a text may hold "[…]"); the marker test is the cheap one.
            if reassembly.has_gap(text) and (held := self.store.mo.held(mo_id)) is not None:
                total, seqs = held
                # A late part's markers stand for the parts mailed before it too, which its own note
                # says (`reassembly.late_note`): "did not arrive" only of those that came in neither.
                # Of all, it told of parts the user was mailed already; of none, a part that never
                # came was said to have been mailed then.
                if (earlier := self.store.mo.followed(mo_id)) is not None:
                    seqs = seqs | lateparts.mailed_before(self.store, mo_id, number, earlier)
                notes.append(reassembly.missing_note(total, seqs))
        except Exception as exc:
            if store_trouble(exc) or not self.store.db.conn.in_transaction:
                raise  # the store's fault, not the note's: the SMSC delivers the MO again
            log.exception("mo.note_failed", mo=mo_id)
        return ". ".join(n for n in notes if n) or None

    def _opt_in(self, mo_id: int, number: str, word: str) -> str:
        """Takes the number off the list when its own opt-out word put it there; the note says which way
        it went: a bare "START" made the phone seem textable while an admin's entry still refused it."""
        was, but = self.store.policy.opt_back_in(number), self.store.policy.accounts_listing(number)
        shown = display(number)
        if was == "mo":
            log.info("optout.removed", mo=mo_id, word=word, by="phone")
            return f"{shown} answered {word}: it is off the opt-out list, SMS to it are sent again{but}"
        if was is not None:
            log.info("optout.kept", mo=mo_id, word=word, source=was)
            return (
                f"{shown} answered {word}: it is still on the opt-out list (added by an admin), SMS"
                f" to it are refused; smsgw optout remove {number} takes it off"
            )
        return f"{shown} answered {word}: it is not on the opt-out list, SMS to it are sent as before{but}"

    def _maybe_optout(self, number: str) -> str | None:
        """A sentence that asks for no more SMS is no opt-out word (it may mean something else):
        the number stays off the list, and its mail tells the staff member how to put it there."""
        if self.store.policy.is_opted_out(number):
            return None  # on the list already: nothing to do
        words = self.notifier.config.gateway.optout_words
        answer = f", or the phone can answer {words[0]}" if words else ""
        return (
            f"This may be a request to stop SMS: {display(number)} is NOT on the opt-out list"
            f" (smsgw optout add {number}{answer})"
        )

    def on_state(self, link: str, state: LinkState) -> None:
        previous = self.states.get(link)
        self.states[link] = state
        if previous != state:
            log.info("link.state", link=link, state=str(state))
        # What the SMSC held for the link comes once it is up again (`RedeliveryRepo.link_state`).
        self.store.mo.link_state(link, up=state == LinkState.ACTIVE, at=self.store.clock())
        if state == LinkState.ACTIVE:
            self.on_link_up()
