"""The outbox repository: outbound mail (bounces, notices, replies) waiting for the mailer.

Same claim/finish pattern as SMS parts. Queuing a mail registers an after-commit callback, so the
outbox worker is woken as soon as the transaction that queued it is durable, whoever committed it.

A mail that carries a phone's answer names its MO (`mo_ref`; one carrying several, its first, and
its kind's `on_carried` names them all) and where a copy goes should the relay refuse it for good
(`fallback`). Its failure is handed, in the write that records it, to the
handler of its kind (`on_refused`): a user who has left the company still has an address the relay
knew yesterday, and its refusal at RCPT is the only word of it the gateway ever gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Mapping
from typing import NamedTuple

import structlog

from gateway.store.clockstep import ClockStep
from gateway.store.commit import store_trouble
from gateway.store.counted import keep_counted
from gateway.store.idfloors import next_id
from gateway.store.outboxclaim import RECOVERED_MAIL, claim_ids
from gateway.store.outboxmailid import own_message_id
from gateway.store.relayreply import relay_reply
from gateway.store.repository import Repository
from gateway.wording import Language

log = structlog.get_logger(__name__)


class ClaimedMail(NamedTuple):
    id: int
    kind: str
    mail_from: str
    rcpt: str
    content: bytes
    attempts: int
    maybe_sent: bool = False  # an earlier send was cut off and may have reached the relay
    unanswered: int = 0  # sends the relay took whole without answering (it may have the mail)


class MailSettings(NamedTuple):
    """The gateway's settings an answer mail is written with."""

    sender: str  # [mail] from_address: envelope sender and From of the gateway's own mail
    host: str  # [gateway] hostname: the domain of its Message-IDs
    domain: str  # [gateway] domains[0]: the phone's address where its conversation named none
    zone: str  # [gateway] timezone: the times the mail names
    language: Language = "en"  # [gateway] language: of its words (mail queued before it was kept: en)


class Fallback(NamedTuple):
    """Where the copy of an answer mail goes if the relay refuses the mail for good, and the settings
    it is written with: those of the config the answer was queued under, kept with the mail, as the
    outbox worker that meets the refusal has no config."""

    rcpt: str
    settings: MailSettings

    def dumps(self) -> str:
        return json.dumps({"rcpt": self.rcpt, **self.settings._asdict()})

    @classmethod
    def loads(cls, text: str | None) -> Fallback | None:
        if not text:
            return None
        values = json.loads(text)
        return cls(values.pop("rcpt"), MailSettings(**values))


# The kept error of an answer mail the relay took (250) and whose bounce came back to the gateway
# later: the reason follows it (`OutboxRepo.bounced_later`).
BOUNCED = "bounced: "


class RefusedMail(NamedTuple):
    """An answer mail that ended `failed`: refused for good (5xx) or out of attempts."""

    id: int
    kind: str
    rcpt: str
    mo_ref: int
    fallback: Fallback | None  # None: nowhere else to go (none configured, or it was the refused one)
    error: str  # as the outbox worker recorded it
    attempts: int

    @property
    def said(self) -> str:
        """Who refused it and in the relay's own words, for the MO's note and the copy's."""
        if self.error.startswith(NOT_SENT):  # never offered to the relay: the gateway's own words
            return self.error
        if self.error.startswith(BOUNCED):  # taken by the relay, returned later (`bounced_later`)
            return (
                f"the mail to {self.rcpt} bounced after the mail relay took it ({self.error[len(BOUNCED) :]})"
            )
        code, words = relay_reply(self.error)
        if code is not None and 500 <= code < 600:
            return f"the mail relay refused the mail to {self.rcpt} ({words})"
        # Given up: not taken, or taken whole without an answer (then it may have arrived, and the
        # copy is a possible duplicate; an answer lost is worse than one read twice).
        tries = f"{self.attempts} attempt{'' if self.attempts == 1 else 's'}"
        return f"the mail to {self.rcpt} was given up after {tries} (the last: {words})"


# What is done about a refused answer mail, in the write that records its failure, by its kind: set
# by the modules that queue answers (gateway.conversations.handlers, gateway.premium.handlers),
# which the store cannot import (they import it).
Refused = Callable[["OutboxRepo", RefusedMail], None]
_REFUSED: dict[str, Refused] = {}


def on_refused(kinds: Iterable[str], handler: Refused) -> None:
    """`handler` is told of each failed mail of these kinds that names its MO. A kind without one
    is logged (`outbox.refusal_unhandled`): its answer would otherwise be lost without a word."""
    for kind in kinds:
        _REFUSED[kind] = handler


def refused_kinds() -> list[str]:
    """The kinds of mail that carry a phone's answer and have a handler for their refusal."""
    return sorted(_REFUSED)


# The MOs whose answers a mail of a kind carries, given the one it names (`mo_ref`): a mail of a
# flood's kept answers (gateway.conversations.kept) names its first only. A kind without one
# carries that MO alone. Set as `on_refused` is, by the module that queues the kind.
Carried = Callable[["OutboxRepo", int], list[int]]
_CARRIED: dict[str, Carried] = {}


def on_carried(kinds: Iterable[str], carried: Carried) -> None:
    """`carried` names every MO a mail of these kinds carries, so that what becomes of the mail (sent
    after all on a retry) becomes of each of its answers, not of the first alone."""
    for kind in kinds:
        _CARRIED[kind] = carried


# Whether a mail of a kind may still go to its recipient, asked in the write that claims it: None,
# or why not (its user left, or the address was given to someone else since it was queued). Set by
# the module that knows who a kind's recipient is (gateway.conversations.repo), as `on_refused` is.
# Args: the repo, the recipient, the MO the mail names, when it was queued.
Addressee = Callable[["OutboxRepo", str, int, float], "str | None"]
_ADDRESSEE: dict[str, Addressee] = {}

# The start of the error of a mail not sent because its recipient may no longer have it (`on_claim`).
NOT_SENT = "not sent to "


def on_claim(kinds: Iterable[str], addressee: Addressee) -> None:
    """`addressee` is asked, as each mail of these kinds that names its MO is claimed, whether its
    recipient may still have it. An answer mail waits in the outbox for as long as the relay fails
    (days); its user removed meanwhile and the address given to a new employee, it reached the new
    holder. A mail it says no to is not sent: it fails with the reason, and its kind's
    `on_refused` handler sends it on (to the fallback address) as for a relay's refusal."""
    for kind in kinds:
        _ADDRESSEE[kind] = addressee


class OutboxRepo(Repository):
    # Set by the daemon to the worker's wake-up; called once per commit that queued mail.
    on_queued: Callable[[], None] = staticmethod(lambda: None)

    def enqueue_mail(
        self,
        kind: str,
        mail_from: str,
        rcpt: str,
        content: bytes,
        message_ref: int | None = None,
        *,
        mo_ref: int | None = None,
        fallback: Fallback | None = None,
        email_ref: int | None = None,
        premium_ref: int | None = None,
    ) -> int:
        """`mo_ref`: the MO whose answer the mail carries; its refusal is then told to the handler of
        `kind` (`on_refused`), which sends a copy to `fallback`, if any. `email_ref`, `premium_ref`:
        the accepted mail, the premium SMS a notice is about (`smsgw phone show|forget` finds it by them)."""
        now = self.clock()
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO outbox (id, kind, mail_from, rcpt, content, next_attempt_at, message_ref,"
                " created_at, mo_ref, fallback, email_ref, premium_ref, header_message_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    next_id(self.db, self.conn, "outbox"),  # after a restore, past the ids it had given
                    kind,
                    mail_from,
                    rcpt,
                    content,
                    now,
                    message_ref,
                    now,
                    mo_ref,
                    fallback.dumps() if fallback else None,
                    email_ref,
                    premium_ref,
                    own_message_id(content) if mo_ref is not None else None,  # a bounce finds it by it
                ),
            )
            assert cur.lastrowid is not None
            self.db.after_commit(self._queued)
            return cur.lastrowid

    def claim_mail(
        self,
        limit: int,
        answered: Container[str] = (),
        running: Mapping[str, int] | None = None,
        share: int = 1,
    ) -> list[ClaimedMail]:
        """The mail due, up to `limit`, marked active: which, `gateway.store.outboxclaim`'s (one per
        recipient, or up to `share` for one the relay answered; one suspect at a time). A mail whose
        recipient may no longer have it (`on_claim`) is not among them: it fails in the same write,
        and its copy is queued. `next_attempt_at` of a mail being sent is when its send began:
        `smsgw status` tells a relay silent for minutes by it, and a send cut off goes back to the
        queue behind the mail queued before it."""
        now = self.clock()
        with self.transaction():
            ids = claim_ids(self.conn, now, limit, answered, running, share)
            if not ids:
                return []
            rows = self.conn.execute(
                "UPDATE outbox SET state = 'active', attempts = attempts + 1, next_attempt_at = ?"
                f" WHERE id IN ({','.join('?' * len(ids))})"
                " RETURNING id, kind, mail_from, rcpt, content, attempts, last_error IS ?, unanswered,"
                " mo_ref, created_at",
                (now, *ids, RECOVERED_MAIL),
            ).fetchall()
            by_id = {row[0]: row for row in rows}
            claimed = [by_id[i] for i in ids if i in by_id]
            claimed = [r for r in claimed if not self._not_for(*r[:2], r[3], *r[8:10], now)]
        return [ClaimedMail(*r[:6], maybe_sent=bool(r[6]) or r[7] > 0, unanswered=r[7]) for r in claimed]

    def _not_for(
        self, mail_id: int, kind: str, rcpt: str, mo_ref: int | None, queued: float, now: float
    ) -> bool:
        """Whether the claimed mail is not to be sent (`on_claim`): then it is failed with the reason
        and handed to its kind's `on_refused` handler, in the claim's write."""
        addressee = _ADDRESSEE.get(kind)
        if addressee is None or mo_ref is None:
            return False
        reason = addressee(self, rcpt, mo_ref, queued)
        if reason is None:
            return False
        error = f"{NOT_SENT}{rcpt}: {reason}"
        self.conn.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?, sent_at = ? WHERE id = ?",
            (error, now, mail_id),
        )
        log.warning("mail.not_sent", mail=mail_id, kind=kind, to=rcpt, mo=mo_ref, reason=reason)
        self._refused(mail_id, error, now)
        return True

    def finish_mail(
        self,
        mail_id: int,
        state: str,
        error: str | None = None,
        retry_in: float | None = None,
        *,
        unanswered: bool = False,
    ) -> None:
        """`unanswered`: the relay took the whole mail without answering, and may have delivered it.
        Counted with the mail; a mail given up on so has most likely arrived, and no copy of it
        goes to a fallback address (`_refused` is for mail the relay refused or never took)."""
        now = self.clock()
        count = 1 if unanswered else 0
        with self.transaction():
            if retry_in is not None:
                self.conn.execute(
                    "UPDATE outbox SET state = 'queued', last_error = ?, next_attempt_at = ?,"
                    " unanswered = unanswered + ? WHERE id = ?",
                    (error, now + retry_in, count, mail_id),
                )
            else:
                kind, rcpt, mo_ref, refused_at = self.conn.execute(
                    "UPDATE outbox SET state = ?, last_error = ?, sent_at = ?, unanswered = unanswered + ?"
                    " WHERE id = ? RETURNING kind, rcpt, mo_ref, refused_at",
                    (state, error, now, count, mail_id),
                ).fetchone() or (None, None, None, None)  # a row gone meanwhile: nothing more to tell
                if state == "failed" and not unanswered and mo_ref is not None:
                    self._refused(mail_id, error or "", now)
                elif state == "sent" and mo_ref is not None and refused_at is not None:
                    self._sent_after_all(kind, rcpt, mo_ref)

    def bounced_later(self, mail_id: int, why: str) -> bool:
        """A mail with a phone's answer that the relay took, returned by a bounce since (the
        recipient's server refused it after the smarthost): handled as a refusal at the session is,
        in this write. Once only: a second bounce of it (or one of a mail refused already) changes
        nothing, and no second copy goes to the fallback address."""
        with self.transaction():
            row = self.conn.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ? AND state = 'sent'"
                " AND mo_ref IS NOT NULL AND refused_at IS NULL RETURNING id",
                (f"{BOUNCED}{why}", mail_id),
            ).fetchone()
            if row is not None:
                self._refused(mail_id, f"{BOUNCED}{why}", self.clock())
        return row is not None

    def _sent_after_all(self, kind: str, rcpt: str, mo_ref: int) -> None:
        """An answer mail whose refusal was handled, sent on `smsgw outbox retry` (the mailbox made
        again): each MO it carries says so (`on_carried`), or it would go on saying the answer was
        refused, though it was mailed."""
        carried = _CARRIED.get(kind)
        ids = (carried(self, mo_ref) if carried else []) or [mo_ref]
        marks = ",".join("?" * len(ids))
        # `failed` (it had reached nobody) turns `mailed`, the failure staying counted in
        # /metrics (`purged_counts`: a counter must not fall); `fallback` stays, as the copy went.
        keep_counted(
            self.conn,
            "mo",
            f"SELECT '', state, COUNT(*) FROM mo WHERE id IN ({marks}) AND state = 'failed' GROUP BY state",
            tuple(ids),
        )
        self.conn.execute(
            "UPDATE mo SET note = COALESCE(note || '; ', '') || ?,"
            f" state = CASE state WHEN 'failed' THEN 'mailed' ELSE state END WHERE id IN ({marks})",
            (f"mailed to {rcpt} after all, on a retry", *ids),
        )

    def _refused(self, mail_id: int, error: str, now: float) -> None:
        """A failed answer mail goes to its kind's handler, in the failure's write: the copy to the
        fallback is queued and the MO's note written with it, or neither. A handler that fails (a
        bug, a row it cannot read) is undone alone: the failure is still recorded, as it was before
        there were handlers, and the mail is not sent again and again. Once only: a mail retried
        (`smsgw outbox retry`) and refused again sends no second copy."""
        row = self.conn.execute(
            "SELECT kind, rcpt, mo_ref, fallback, attempts FROM outbox"
            " WHERE id = ? AND mo_ref IS NOT NULL AND refused_at IS NULL",
            (mail_id,),
        ).fetchone()
        if row is None:
            return
        self.conn.execute("UPDATE outbox SET refused_at = ? WHERE id = ?", (now, mail_id))
        kind, rcpt, mo_ref, fallback, attempts = row
        handler = _REFUSED.get(kind)
        if handler is None:
            log.error("outbox.refusal_unhandled", mail=mail_id, kind=kind, mo=mo_ref)
            return
        try:
            with self.db.savepoint():
                mail = RefusedMail(mail_id, kind, rcpt, mo_ref, Fallback.loads(fallback), error, attempts)
                handler(self, mail)
        except Exception as exc:
            if not self.conn.in_transaction or store_trouble(exc):
                raise
            log.exception("outbox.refusal_not_handled", mail=mail_id, kind=kind, mo=mo_ref)

    def next_mail_due_at(self, after: float | None = None) -> float | None:
        """When the next queued mail is due; `after`: the first due past it (the mail due already
        waits for a send to its recipient to end)."""
        sql = "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued' AND next_attempt_at > ?"
        return self.conn.execute(sql, (float("-inf") if after is None else after,)).fetchone()[0]

    def shift_for_clock_step(self, step: ClockStep) -> int:
        """The wall clock stepped back: a mail's next try (a back-off, a real-time wait) moves with
        it, or mail waiting would wait the step longer. A mail queued after the step (before the
        look that found it) was stamped on the stepped clock and stays. Returns how many mails moved."""
        with self.transaction():
            moved = self.conn.execute(
                "UPDATE outbox SET next_attempt_at = next_attempt_at - ?"
                " WHERE id < ? AND state IN ('queued', 'active')",
                (step.seconds, step.first("outbox")),
            ).rowcount
            if moved:
                self.db.after_commit(self._queued)  # some may be due now: the worker looks again
            return moved

    def count_cut_off(self, mail_ids: list[int]) -> None:
        """Sends a stop gave up on after the relay had the whole mail count as unanswered: uncounted,
        a mail whose relay never answered the dot reached it three times with a count of one."""
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET unanswered = unanswered + 1 WHERE id = ? AND state = 'active'",
                [(i,) for i in mail_ids],
            )

    def recover_mail(self) -> int:
        """Mail left `active` (a stop or crash during its send) goes back to the queue, marked: the
        relay may have taken it already, so its next send is logged as a possible duplicate."""
        with self.transaction():
            return self.conn.execute(
                "UPDATE outbox SET state = 'queued', last_error = ? WHERE state = 'active'",
                (RECOVERED_MAIL,),
            ).rowcount

    def _queued(self) -> None:
        self.on_queued()
