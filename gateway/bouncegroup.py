"""One bounce for the SMS of one mail that failed together, not one a number; and one confirmation
for those delivered (`gateway.notifygroup`), by the same rows and rule.

A staff member mailed one message to forty numbers; twelve failed and twelve bounces came, one a
number. RFC 3464 has one report carry a field group per recipient: the failures of one mail to one
address are now one multipart/report, its text naming each number with its reason and advice in the
words of the bounce of one (`gateway.bounce`), the SMS text given back once, and one per-recipient
field group a number. A single failure is the bounce it always was.

The hold rule (`gateway.store.outboxgroups`, where the rows are): a failure while other SMS of its
mail are still in flight waits up to `HOLD_SECONDS` (60 s, on the gateway's clock) for them; the
bounce goes when none is left in flight, or when that time from the first failure is up, whichever
comes first. A failure after its mail's bounce was taken for sending gets a bounce of its own. The
account's failure share (R-2.4 suspension) counts failed SMS, as before: it never counted bounces.
A delivery the account's rule or the RCPT's NOTIFY=SUCCESS has mailed is held and grouped alike, as
a notice or a receipt (`Form`), never in the bounce's row (`outboxgroups.open_group`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import structlog

from gateway import bouncewords as bw
from gateway.bounce import dsn, failure_lines, failure_outcome, report, sms_text
from gateway.config import Config
from gateway.newholder import said_before, said_first
from gateway.notifygroup import group_notice, group_success_dsn
from gateway.store import outboxgroups as groups
from gateway.store.db import Finished, Store
from gateway.store.retrystart import ERASED  # a phone's data erased: its number named no more
from gateway.wording import Language

log = structlog.get_logger(__name__)

# What a row tells: a failure's bounce (a DSN), a delivery's plain notice (`dlr_mail = all`), or the
# receipt a mail program asked for with NOTIFY=SUCCESS (a DSN).
Form = Literal["bounce", "notice", "receipt"]
# The ends of an SMS each form tells of: a report names an SMS only while it is in one of them (an
# admin's retry of a failed one takes it out, `outboxgroups.take_out`; one retried meanwhile is left out).
_TELLS: dict[Form, tuple[str, ...]] = {
    "bounce": groups.BOUNCED,
    "notice": groups.TOLD,
    "receipt": groups.TOLD,
}


def group_dsn(
    infos: list[dict[str, Any]],
    *,
    sender: str,
    rcpt: str,
    reporting_mta: str,
    domain: str,
    lang: Language = "en",
    now: float | None = None,
    of: int | None = None,
) -> bytes:
    """The bounce of the failed SMS `infos` (`AdminRepo.message_info`) of one mail, in the order
    they failed; of one, `bounce.dsn` as it is. `of`: how many SMS the mail became, if known: when
    this bounce names them all, it says that none was delivered."""
    where = dict(sender=sender, rcpt=rcpt, reporting_mta=reporting_mta, domain=domain)
    if len(infos) == 1:
        return dsn(infos[0], lang=lang, now=now, **where)
    count = len(infos)
    lines = "\n".join(failure_lines(info, lang) for info in infos)
    intro = bw.ALL_FAILED_INTRO if of == count else bw.GROUP_INTRO
    human = f"{intro(lang, count=count)}\n\n{lines}{sms_text(infos[0], lang)}"
    outcomes = [(info, failure_outcome(info)) for info in infos]
    return report(infos[0], human, bw.GROUP_SUBJECT(lang, count=count), outcomes, now=now, **where)


class ReportGroups:
    """Queues the Notifier's bounces and confirmations, one of each form a mail and address, in the
    transaction that ended the SMS.

    `held`: the mails whose report waits for SMS in flight, by when it waits until, so that a
    delivery costs no read while none waits. Kept in memory only: after a restart, a held bounce
    goes when its time is up, at most `HOLD_SECONDS` late."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.held: dict[int, float] = {}
        # The bounces grown in this call of the Notifier, by their outbox id, with their address and
        # why (`newholder`), written once at its end (`finished`): rewritten at each failure, the
        # mails of an expiry batch of one mail cost the square of its numbers (2.7 s for 50). And
        # the failed SMS read in the call, not read again for it. And whether a mail has SMS in
        # flight, read once a call: every SMS handed to the Notifier is final already, and nothing in
        # the call moves another into flight or out of it; read at each failure, the last failures of
        # a mail all in a final state read every one of its SMS each (1.4 ms at 5,000 numbers).
        self._grown: dict[int, tuple[str, str | None, Form]] = {}
        self._infos: dict[int, dict[str, Any]] = {}
        self._flying: dict[int, bool] = {}

    def begin(self) -> None:
        """A new call of the Notifier: nothing left of one whose transaction rolled back."""
        self._grown, self._infos, self._flying = {}, {}, {}

    def _in_flight(self, email_id: int) -> bool:
        if (flying := self._flying.get(email_id)) is None:
            flying = self._flying[email_id] = groups.in_flight(self.store.outbox.conn, email_id)
        return flying

    def enqueue(
        self, message_id: int, info: dict[str, Any], rcpt: str, why: str | None, form: Form = "bounce"
    ) -> None:
        """The report (`form`) of ended SMS `message_id` to `rcpt`: into its mail's unsent report of
        that form to that address, else a new one, held while other SMS of the mail are in flight."""
        outbox = self.store.outbox
        conn, now = outbox.conn, self.store.clock()
        email_id = groups.email_of(conn, message_id)
        assert email_id is not None  # it ended in this very transaction
        flying = self._in_flight(email_id)
        due = now + groups.HOLD_SECONDS if flying else now
        if flying:
            self.held[email_id] = max(self.held.get(email_id, due), due)
        elif self.held.pop(email_id, None) is not None:
            groups.release(outbox, email_id)  # its bounces to other addresses too
        self._infos[message_id] = info
        kind, mail_from = self._kind(form, info["state"])
        group = groups.open_group(conn, email_id, rcpt, mail_from, told=form != "bounce")
        if group is not None:
            members = [m for m in group.members if m != message_id] + [message_id]
            if groups.grow_group(outbox, group.id, members, due, told=form != "bounce"):
                self._grown[group.id] = (rcpt, why, form)
                event = "notify.bounce_grown" if form == "bounce" else "notify.confirmation_grown"
                log.info(event, mail=group.id, message=message_id, numbers=len(members))
                return
        content = self._content([info], rcpt, why, now, form)
        groups.add_group(outbox, kind, mail_from, rcpt, content, message_id, email_id, due)

    def finished(self, finished: list[Finished]) -> None:
        """The end of the Notifier's call, in its transaction: each bounce grown in it written; held
        bounces go at once when the last SMS in flight of their mail ended (delivered, say)."""
        grown, infos, flying = self._grown, self._infos, self._flying
        self.begin()
        self._flying = flying  # this call's still: its releases below
        now = self.store.clock()
        for mail_id, (rcpt, why, form) in grown.items():
            self._build(mail_id, groups.members_of(self.store.outbox.conn, mail_id), rcpt, why, form, infos)
        if self.held:
            self.held = {email: until for email, until in self.held.items() if until > now}
            conn = self.store.outbox.conn
            for f in finished:
                email_id = groups.email_of(conn, f.message_id)
                if email_id in self.held and not self._in_flight(email_id):
                    del self.held[email_id]
                    groups.release(self.store.outbox, email_id)
        self._flying = {}

    def rebuild(self, mail_ids: list[int]) -> None:
        """The unsent reports `mail_ids` built again from the SMS they name now (`outboxgroups.take_out`
        took a retried one out), to the same address, with the line saying why it goes there if the
        report had one."""
        for mail_id in mail_ids:
            if (row := groups.unsent(self.store.outbox.conn, mail_id)) is not None:
                form: Form = "notice" if row.mail_from else "receipt" if row.told else "bounce"
                self._build(mail_id, row.members, row.rcpt, said_before(row.content), form, {})

    def _build(
        self,
        mail_id: int,
        members: list[int],
        rcpt: str,
        why: str | None,
        form: Form,
        infos: dict[int, dict[str, Any]],
    ) -> None:
        """The report `mail_id` written naming those of `members` that still end as it tells (a failed
        SMS an admin retried meanwhile is no failure), whose text is not erased."""
        read = (infos.get(m) or self._info(m) for m in members)
        kept = [i for i in read if i is not None and i["text"] != ERASED and i["state"] in _TELLS[form]]
        if kept:
            content = self._content(kept, rcpt, why, self.store.clock(), form)
            kind, _sender = self._kind(form, kept[0]["state"])
            groups.rewrite(
                self.store.outbox, mail_id, content, [i["id"] for i in kept], kind, told=form != "bounce"
            )

    def _info(self, message_id: int) -> dict[str, Any] | None:
        try:
            return self.store.admin.message_info(message_id)
        except KeyError:  # purged since (a retention shorter than a minute): it goes unnamed
            return None

    def _kind(self, form: Form, state: str) -> tuple[str, str]:
        """The kind and envelope sender of a report of one SMS, as they always were: a DSN from the null
        sender (RFC 3461 6.2), a notice from the gateway's address, of the kind of the SMS's end."""
        return ("dsn", "") if form != "notice" else (state, self.config.mail.from_address)

    def _content(
        self, infos: list[dict[str, Any]], rcpt: str, why: str | None, now: float, form: Form
    ) -> bytes:
        mail, gw = self.config.mail, self.config.gateway
        if form == "notice":
            content = group_notice(
                infos, sender=mail.from_address, rcpt=rcpt, domain=gw.hostname, lang=gw.language, now=now
            )
        elif form == "receipt":
            content = group_success_dsn(
                infos, sender=mail.from_address, rcpt=rcpt, reporting_mta=gw.hostname, domain=gw.domains[0],
                lang=gw.language, now=now,
            )  # fmt: skip
        else:
            of = groups.mail_size(self.store.outbox.conn, infos[0]["id"]) if len(infos) > 1 else None
            content = group_dsn(
                infos, sender=mail.from_address, rcpt=rcpt, reporting_mta=gw.hostname, domain=gw.domains[0],
                lang=gw.language, now=now, of=of,
            )  # fmt: skip
        return content if why is None else said_first(content, why)


def regroup(store: Store, config: Config) -> Callable[[list[int]], None]:
    """What an admin's retry (`AdminRepo.retry_message`) calls in its transaction with the unsent
    reports that still name other SMS after it took the retried one out: each built again without it.
    Passed by the caller (the CLI, the panel), which holds the configuration the words come from."""
    return ReportGroups(store, config).rebuild
