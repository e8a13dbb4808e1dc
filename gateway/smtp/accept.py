"""Accepting one email: policy check → rows → usage → notices, in one group-commit transaction.

The SMTP handlers turn DATA into plain data (the rows, the limits that apply, the notices to the
sender) and hand it to `accept`, which runs the whole decision inside one `write()`: the limit and
identical-text rules (R-2.2, R-2.4) read the counters in the same transaction that charges them,
so concurrent sessions cannot overspend the last parts of a quota, and the `250` is sent only
after everything (mail, usage, notices) is on disk. The decisions themselves are the pure
functions in `acl/`; this module feeds them rows and turns their results into replies and mail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway import conversations, premium
from gateway.config import Config
from gateway.smtp import latechecks, replies
from gateway.smtp.maillimits import Limits, quota_refusal
from gateway.smtp.maillimits import limits_for as limits_for  # compose's, where the session reads them
from gateway.store.accounts import NotFound
from gateway.store.db import Store
from gateway.store.records import Acceptance, AcceptResult

# A relay mail whose client's network was removed from its account while it was under way; the
# family of `replies.SENDER_GONE`, which a user removed meanwhile gets.
NETWORK_GONE = "550 5.7.1 Relay access denied: {ip} no longer allowed to send SMS for this sender's account"


@dataclass(frozen=True, slots=True)
class Notice:
    """A mail to queue with the acceptance (confirmation, held, truncated, a bounce forwarded)."""

    kind: str
    mail_from: str
    rcpt: str
    content: bytes
    # Queued even when every number had the mail already: it tells of numbers this copy left
    # out, which the first copy's notices could not name (an expired mail's new numbers).
    on_duplicate: bool = False
    # A bounce of the gateway's answer mail (`gateway.answerbounce`): that mail fails in this write,
    # as at a 5xx, with the bounce's reason.
    answer_mail: int | None = None
    bounced: str = ""
    # Its content where that answer mail was settled before this write (by another bounce of it
    # at once): saying "handled at its first bounce" where `content` says its copy goes now.
    if_handled: bytes = b""


class Writes:
    """Every write an SMTP session makes, each a named operation on the store.

    The daemon runs them on its own store; an intake worker (gateway/intake_child.py) has one
    that sends the same operations with the same arguments to the daemon (intake_channel.py), so
    that one process writes the database. Arguments and results are plain data (they are pickled).
    """

    NAMES = frozenset({"accept", "info", "premium"})  # what a worker may ask the daemon to run

    def __init__(
        self, config: Config, store: Store, wake_dispatcher: Callable[[], None] = lambda: None
    ) -> None:
        self.config = config
        self.store = store
        self.wake_dispatcher = wake_dispatcher  # SMS were queued: whoever asked, the dispatcher hears it here

    async def accept(
        self,
        acceptance: Acceptance,
        limits: Limits | None = None,
        notices: Sequence[Notice] = (),
        opening: conversations.Opening | None = None,
    ) -> AcceptResult:
        return await self.accept_soon(acceptance, limits, notices, opening)

    def accept_soon(
        self,
        acceptance: Acceptance,
        limits: Limits | None = None,
        notices: Sequence[Notice] = (),
        opening: conversations.Opening | None = None,
    ) -> asyncio.Future[AcceptResult]:
        """`accept` as a future, for the intake channel: it answers a worker from the future's
        callback, without a task that would first wait a loop turn to start."""
        fut = accept_soon(self.store, acceptance, limits=limits, notices=notices, opening=opening)
        fut.add_done_callback(self._wake_if_queued)
        return fut

    def _wake_if_queued(self, fut: asyncio.Future[AcceptResult]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().message_ids:
            self.wake_dispatcher()

    async def info(self, rcpt: str, content: bytes) -> bool:
        """R-2.3: queue the answer to a mail to info@ (`gateway.smtp.inforeply`); durable before the `250`.
        False, nothing queued, when `rcpt` had the hour's answers: sessions that read the count at once
        are counted again here, where writes go one at a time (intake workers' too)."""
        from gateway.smtp import inforeply  # imported here: it answers through these writes

        store, sender = self.store, self.config.mail.from_address

        def write() -> bool:
            if inforeply.over_cap(store, rcpt):
                return False
            store.outbox.enqueue_mail("info", sender, rcpt, content)
            return True

        return await store.write(write)

    async def premium(
        self, target: premium.Target, mail_from: str, raw: bytes, client_ip: str | None = None
    ) -> tuple[str, bool]:
        """Mail to an answer or confirmation address: the reply, and whether an SMS was queued.
        `client_ip`, the sending server, is recorded with it and named in a bounce's forward."""
        reply, queued = await premium.on_mail(self.store, self.config, target, mail_from, raw, client_ip)
        if queued:
            self.wake_dispatcher()
        return reply, queued


async def accept(
    store: Store,
    acceptance: Acceptance,
    *,
    limits: Limits | None = None,
    notices: Sequence[Notice] = (),
    opening: conversations.Opening | None = None,
) -> AcceptResult:
    """Decide and write one email; returns once the outcome is committed and on disk."""
    return await accept_soon(store, acceptance, limits=limits, notices=notices, opening=opening)


def accept_soon(
    store: Store,
    acceptance: Acceptance,
    *,
    limits: Limits | None = None,
    notices: Sequence[Notice] = (),
    opening: conversations.Opening | None = None,
) -> asyncio.Future[AcceptResult]:
    # A client waits for this answer: ahead of background writes, and a 451 if the store stays locked.
    # Replayable: its effects are rows only, so it needs no savepoint of its own in most batches.
    return store.submit(
        lambda: accept_now(store, acceptance, limits, notices, opening), interactive=True, replayable=True
    )


def accept_now(
    store: Store,
    acceptance: Acceptance,
    limits: Limits | None,
    notices: Sequence[Notice],
    opening: conversations.Opening | None = None,
) -> AcceptResult:
    """The body of `accept`; call inside a transaction."""
    now = store.clock()  # one reading: the rows' times and the periods they are counted in
    if acceptance.user_id is not None and _user_gone(store, acceptance.user_id, limits):
        return AcceptResult(None, [], refused=replies.SENDER_GONE)
    if acceptance.account_id is not None and acceptance.messages:
        if (suspended := _suspended(store, acceptance.account_id)) is not None:
            return AcceptResult(None, [], refused=suspended)
        if limits is not None and limits.relay_client is not None:
            if (gone := network_gone(store, acceptance.account_id, limits.relay_client)) is not None:
                return AcceptResult(None, [], refused=gone)
    reached = store.queue.reached_before(acceptance.dedup_key)  # read once, for all below
    if limits is not None:
        # A client's retry of a mail taken already is not refused.
        limits = limits.at(now).without(reached)
        # What changed since RCPT and MAIL (gateway.smtp.latechecks): a number's last identical SMS
        # sent by another session, an opt-out, an admin's lower limit.
        if limits.numbers:
            late = latechecks.recheck(store, acceptance, limits, notices, reached)
            if late.refused is not None:
                return AcceptResult(None, [], refused=late.refused)
            acceptance, limits, notices = late.acceptance, late.limits, late.notices
        refusal = quota_refusal(store, limits) if limits.numbers else None
        if refusal is not None:
            return AcceptResult(None, [], refused=refusal)
    if opening is not None:
        # the originating number (from the pool) is chosen with the rows that use it.
        conversations.on_accept(store, opening, acceptance, reached)
    if acceptance.automatic and notices and store.queue.recorded_before(acceptance.dedup_key):
        notices = ()  # a bounce delivered again is recorded again, but forwarded once
    if notices and acceptance.automatic:
        from gateway.smtp import postmaster  # imported here: it builds its forwards with our Notice

        # Its hour's cap counted again with the rows that count: sessions past RCPT at once.
        if (capped := postmaster.refused_in_write(store, acceptance)) is not None:
            return AcceptResult(None, [], refused=capped)
    result = store.queue.insert_email(acceptance, reached=reached, now=now)
    if result.email_id is None:
        # Every recipient had this mail already: nothing to charge, and its notices went with the first copy.
        _tell_left_out(store, acceptance.dedup_key, notices)
        return result
    if limits is not None:
        store.accounts.add_usage(list(limits.scopes), list(limits.periods), limits.needed)
    for n in notices:
        content = n.content
        if n.answer_mail is not None and not store.outbox.bounced_later(n.answer_mail, n.bounced):
            content = n.if_handled or content  # its words follow what this write did
        if not n.rcpt:
            continue  # an answer mail's bounce with no fallback address: failing it was all
        # Named by the mail it is about: it quotes its subject and numbers (`smsgw phone forget`).
        store.outbox.enqueue_mail(n.kind, n.mail_from, n.rcpt, content, email_ref=result.email_id)
    return result


def _tell_left_out(store: Store, dedup_key: str | None, notices: Sequence[Notice]) -> None:
    """Queue the notices of numbers a retry left out, named by the copy that went (`smsgw phone forget`)."""
    told = [n for n in notices if n.on_duplicate]
    if not told:
        return
    # The latest copy: one past the retry window may hold the key too (`accepting.RETRY_WINDOW_SECONDS`).
    row = store.db.conn.execute(
        "SELECT email_id FROM messages WHERE dedup_key = ? ORDER BY created_at DESC LIMIT 1", (dedup_key,)
    )
    first = row.fetchone()
    # Told once per mail: the same late retry sent again (its 250 lost once more) told the sender
    # again each time, and a number the first copy named but the identical-text rule left out (it
    # has no SMS row either) was told a second time, as named too late. The first copy's own
    # notice is found by the outbox's index on `email_ref`.
    if (
        first is not None
        and store.db.conn.execute(
            "SELECT 1 FROM outbox WHERE email_ref = ? AND kind = 'not-sent' LIMIT 1", (first[0],)
        ).fetchone()
    ):
        return
    for n in told:
        store.outbox.enqueue_mail(
            n.kind, n.mail_from, n.rcpt, n.content, email_ref=first[0] if first else None
        )


def _user_gone(store: Store, user_id: int, limits: Limits | None) -> bool:
    """Whether the user MAIL let through was removed since (`smsgw user remove`, the panel).

    Read in the accepting transaction: the rows would name a user that no longer exists, which the
    foreign key refuses (a traceback and a 451, and the client tried again for days). The id alone
    may be a new user's (SQLite reuses the highest one): where the mail names its user, so must the row."""
    # From the settings cache, which a removal by any process empties (its generation row): one
    # statement more in every mail's accepting write otherwise.
    row = latechecks.user_row(store, user_id)
    if row is None:
        return True
    email = limits.user_email if limits is not None else None
    return email is not None and str(row[0]).casefold() != email.casefold()


def _suspended(store: Store, account_id: int) -> str | None:
    """The refusal of a mail whose account was suspended after MAIL let its sender in, or None.

    MAIL checks the suspension, but a session may be between RCPT and DATA when `account suspend`
    runs: its mail was queued and charged, then held, where the suspension promises new mail is
    refused at SMTP. Read here, in the accepting transaction, from the settings cache, which a
    suspension by any process empties (as `_user_gone` reads its user): no statement per mail on a hit."""
    try:
        account = store.accounts.account_by_id(account_id)
    except NotFound:
        return replies.SENDER_GONE  # removed with its users since MAIL: as `_user_gone` answers
    if not account.suspended_at:
        return None
    return replies.SUSPENDED.format(account.name, account.suspended_reason or "ask your admin")


def network_gone(store: Store, account_id: int, client_ip: str) -> str | None:
    """The refusal of a relay mail whose client address left its account's networks since MAIL, or None.

    MAIL trusts the address by the account's networks, but a session may be past RCPT or mid-DATA
    when `account set --remove-network` (or the panel) runs: its mail was queued and sent, where
    the removal promises that address is trusted no more. The same narrowest-network rule as MAIL
    (`relay_owners`): a narrower network another account added since takes the address from this
    one. From the settings cache, which a change of networks by any process empties: no statement
    per mail on a hit."""
    if account_id in store.accounts.relay_owners(client_ip):
        return None
    return NETWORK_GONE.format(ip=client_ip)
