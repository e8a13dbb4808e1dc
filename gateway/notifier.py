"""Mail about SMS that reached their final state: to whom, and as what (a notice or a DSN).

Called inside the transaction that finished the message, so that a crash can neither lose the
bounce nor send it twice. The failures of one mail share one bounce, and its deliveries one
confirmation to each address that is told of them (`gateway.bouncegroup`). An
account that fails beyond its share is suspended here too (R-2.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from gateway import bouncewords, notify, wording
from gateway.bouncegroup import Form, ReportGroups
from gateway.config import Config
from gateway.newholder import readdressed
from gateway.store.accounts import NotFound
from gateway.store.db import Finished, Store
from gateway.store.settling import UNREPORTED

log = structlog.get_logger(__name__)


class Notifier:
    """Turns finished messages into outbox mail; call inside the transaction that finished them."""

    def __init__(self, store: Store, config: Config, wake_mailer: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.config = config
        self.wake_mailer = wake_mailer
        self.bounces = ReportGroups(store, config)

    def __call__(self, finished: list[Finished]) -> None:
        """The account's `dlr_mail` and `notify_address` decide who is told, as they always did. A mail
        program's own request per recipient with SMTP DSN (RFC 3461 NOTIFY, `Finished.notify`) is
        about the envelope sender alone, to whom DSNs go (`_mails`): it never takes a notice from a
        notify address, nor sends one there."""
        if not finished:
            return  # a submit's answer ends nothing: no report to begin or finish (twice a mail)
        queued = False
        self.bounces.begin()
        for f in finished:
            if f.after_failure:
                queued = self._after_failure(f) or queued
                continue
            # `unreported`: the SMSC took it and only its report never came, so it most likely reached
            # the phone; like a delivery it is no failure and is mailed only to those who want all.
            told = f.state in ("delivered", UNREPORTED)
            if told and not self._tells_delivered(f):
                continue  # the common case: nothing to mail, so nothing to read
            info = self.store.admin.message_info(f.message_id)
            if f.state in ("failed", "expired") and info["account_id"] is not None:
                self._maybe_suspend(info["account_id"], info["account"])
            for rcpt, as_dsn, why in readdressed(self.store, self.config, info, _mails(info, told)):
                self._enqueue(f, info, rcpt, told, as_dsn, why)
                queued = True
        self.bounces.finished(finished)
        if queued:  # a finished message that mailed nobody gives the mailer nothing to look for
            self.wake_mailer()

    def _after_failure(self, f: Finished) -> bool:
        """A bounced SMS whose copy accepted late reached the phone after all: whoever was told of the
        failure hears of it, whatever their rule says of deliveries (the bounce was the last word, and
        wrong), and so does whoever a delivery is mailed to, as it asked (a NOTIFY=SUCCESS sender its
        DSN: told only of failures, it had nothing, and with SUCCESS,FAILURE a plain notice in place
        of the DSN asked for). One mail to each address; the line of `AFTER_FAILURE` first in those
        to an address the failure was told to (one never bounced had no earlier report to take back)."""
        info = self.store.admin.message_info(f.message_id)
        first = bouncewords.AFTER_FAILURE(self.config.gateway.language)
        failure = [(rcpt, False) for rcpt, _dsn in _mails(info, False)]
        bounced = {rcpt.lower() for rcpt, _dsn in failure}
        mails: dict[str, tuple[str, bool]] = {}
        for rcpt, dsn in [*_mails(info, True), *failure]:
            mails.setdefault(rcpt.lower(), (rcpt, dsn))
        told = readdressed(self.store, self.config, info, list(mails.values()))
        for rcpt, as_dsn, why in told:
            said = [first] if rcpt.lower() in bounced or why is not None else []
            said += [why] if why is not None else []
            self._enqueue(f, info, rcpt, True, as_dsn, "\n\n".join(said) or None)
        return bool(told)

    def _enqueue(
        self, f: Finished, info: dict[str, Any], rcpt: str, told: bool, as_dsn: bool, why: str | None = None
    ) -> None:
        """A failure is always mailed as a DSN; a delivery as one when a mail program asked for it, else
        as the plain notice a person reads. DSNs go out with an empty envelope sender (RFC 3461 6.2) so
        that they can never bounce back. `why`: first in the text read, why it came (`newholder`).
        Each into its mail's one report of that form to that address (`gateway.bouncegroup`)."""
        form: Form = "bounce" if not told else "receipt" if as_dsn else "notice"
        self.bounces.enqueue(f.message_id, info, rcpt, why, form)
        log.info("notify.queued", message=f.message_id, state=f.state, to=rcpt, dsn=form != "notice")

    def _tells_delivered(self, finished: Finished) -> bool:
        """Whether a delivery may be mailed: its RCPT's NOTIFY asked for SUCCESS (read with the message
        as it settled, no statement of its own), or `dlr_mail = all` from the cached account; when
        unsure, yes (`_mails` decides on the full read)."""
        if finished.notify is not None and "success" in finished.notify.split(","):
            return True
        if finished.account_id is None:
            return False  # no account, no `dlr_mail = all`
        try:
            return self.store.accounts.account_by_id(finished.account_id).dlr_mail == "all"
        except NotFound:
            return True  # let the full read below decide

    def _maybe_suspend(self, account_id: int, name: str) -> None:
        """R-2.4: an account whose recent deliveries fail beyond the share is stopped until an admin looks.

        Judged by the failures among its last `suspend_after` messages against the share of all
        `suspend_after`: more failures than that is conclusive before the account has sent as many
        (a spam list is stopped at its 51st failure). Over 50 messages, 6 failures suspended an
        account whose numbers fail 2-3 % of the time (stale contacts) about daily; over 500, it
        takes 51 where 15 are usual.
        """
        gw = self.config.gateway
        failed, judged = self.store.policy.failure_share(account_id, gw.suspend_after)
        if failed <= gw.suspend_failed_share * gw.suspend_after:
            return
        account = self.store.accounts.account_by_id(account_id)
        if account.suspended_at is not None:
            return
        share = f"{gw.suspend_failed_share:.0%}"
        said = dict(failed=failed, judged=judged, share=share, after=gw.suspend_after)
        reason = wording.SUSPENDED_REASON("en", **said)  # as the CLI and the panel show it
        held = self.store.policy.suspend_account(account_id, reason)
        log.warning("account.suspended", account=name, reason=reason, held=held)
        mail = self.config.mail
        self.store.outbox.enqueue_mail(
            "suspended",
            mail.from_address,
            mail.admin_address,
            notify.suspended_notice(
                sender=mail.from_address,
                rcpt=mail.admin_address,
                domain=self.config.gateway.hostname,
                account=name,
                reason=wording.SUSPENDED_REASON(gw.language, **said),
                lang=gw.language,
                now=self.store.clock(),
            ),
        )


def _mails(info: dict[str, Any], told: bool) -> list[tuple[str, bool]]:
    """Who is mailed about a finished message, each with whether as a DSN asked with NOTIFY.

    The account's rule first: `dlr_mail` (failures by default) to its `notify_address`, else to the
    envelope sender. A NOTIFY given at RCPT then decides the envelope sender's own mail alone (RFC
    3461: DSNs go to the MAIL FROM): SUCCESS adds a receipt, FAILURE a bounce, and NEVER takes the
    sender's copy the account's rule would have sent. A NOTIFY that names the other outcome only
    leaves the rule's copy as it was: Exchange writes `NOTIFY=FAILURE` on every mail it relays, and
    its senders on `dlr_mail = all` lost their delivered notices (a plain notice, no DSN). A failure
    is always mailed as a DSN, so a NOTIFY without FAILURE (SUCCESS, DELAY) takes the sender's
    bounce as NEVER does (RFC 3461 5.2.1). One mail per address: a sender the rule mails already
    gets it once, as the DSN asked for."""
    sender: str = info["mail_from"] or ""
    rule_rcpt: str = info["notify_address"] or sender
    policy = info["dlr_mail"] or "failed"
    mails: list[tuple[str, bool]] = []
    if rule_rcpt and (policy == "all" if told else policy != "none"):
        mails.append((rule_rcpt, False))
    asked: str | None = info["notify"]
    if asked is None or not sender:
        return mails
    asks = asked.split(",")
    if ("success" if told else "failure") in asks:
        mails = [(rcpt, dsn) for rcpt, dsn in mails if rcpt.lower() != sender.lower()]
        mails.append((sender, True))
    elif "never" in asks or not told:
        # A failure is only ever mailed as a DSN: one NOTIFY did not ask for (SUCCESS or DELAY without
        # FAILURE) is not sent to the envelope sender (RFC 3461 5.2.1). The rule's copy to a notify
        # address that is not the sender stays: NOTIFY speaks for the sender alone.
        mails = [(rcpt, dsn) for rcpt, dsn in mails if rcpt.lower() != sender.lower()]
        if not told:
            log.info("notify.not_asked", message=info["id"], state=info["state"], notify=asked)
    return mails
