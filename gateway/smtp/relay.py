"""The SMTP side: aiosmtpd hooks that decide per command and hand DATA to intake and the store.

Verdicts come as early as possible (client network and sender at MAIL, each number at RCPT) so that a mail
client learns which recipients failed and why; DATA answers `250` only once the store committed every SMS of
the mail. An unexpected fault answers `451 4.3.0`: a bug makes the client retry, never a bounce or a leak.
"""

from __future__ import annotations

import errno
import shlex
import sqlite3

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from acl.accounts import relay_sender_allowed, sender_user
from gateway import accountrules, conversations, mailheaders, premium
from gateway.bitelog import FaultLog
from gateway.smtp import dsnparams, formerdomains, inforeply, postmaster, recipients, relaybounce, replies
from gateway.smtp.addressing import (
    BadNumber,
    international_too,
    kind_words,
    number_kind,
    premium_number,
    split_address,
    to_e164,
)
from gateway.smtp.compose import compose
from gateway.smtp.gate import Gate, Sender
from gateway.smtp.outcome import OutcomeUnknown
from gateway.smtp.refusallog import RefusalLog
from gateway.smtp.senderfix import admin_fix
from gateway.smtp.tlsslots import HandshakeSlots
from gateway.smtp.usedup import used_up
from gateway.smtp.verifyprobe import probe_sender, taken
from gateway.store.accountrecord import Account
from gateway.store.db import StoreBusy, StoreReplaced

log = structlog.get_logger(__name__)

MAX_RECIPIENTS = 100
# The null reverse-path (bounces, auto-replies) as kept in aiosmtpd's envelope: aiosmtpd reads an
# empty `mail_from` as "no MAIL yet" (503 to every RCPT, a second MAIL not nested). Everything of
# the gateway's own reads `Sender.mail_from`, where the null sender is "".
NULL_PATH = "<>"
# An unexpected fault's `smtp.internal_error`: one line a minute per kind of error and place raised,
# the first with its traceback, the rest counted (`FaultLog`). A fault that a client's line reaches
# (an address the email grammar failed on) logged a 1.6 kB traceback for each: 8 MB of log in 4 s
# from 21 connections, which journald's rate limit then answered by dropping the lines that mattered.
INTERNAL_ERROR_SECONDS = 60.0


class RelayHandler:
    """Hooks for the relay port: trusted client networks with an envelope sender on the ACL."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        # Refusals any network can repeat at will (a stranger's every MAIL or RCPT, a user's RCPTs past
        # the 100th): 8 addresses reconnecting made 3 MB of log a second. A session's first says it, at
        # most one a second per kind and sender, with the count of those held back (`RefusalLog`).
        self.refused = RefusalLog()
        self.refusals = self.refused.throttle
        self.tls_handshakes: HandshakeSlots[SMTP] = HandshakeSlots()  # this port's, under way (servers)
        self.faults = FaultLog(log, interval=INTERNAL_ERROR_SECONDS)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """RFC 2920 PIPELINING: a client may send MAIL, RCPT… and DATA without waiting for replies.
        RFC 2034 ENHANCEDSTATUSCODES: every reply after EHLO carries an RFC 3463 code. RFC 3461 DSN:
        a mail program's per-recipient request for a delivery receipt or none (`dsnparams`)."""
        session.host_name = hostname  # aiosmtpd leaves this to a handler with an EHLO hook
        keywords = responses[:-1]
        if not getattr(server, "offers_auth", True):
            keywords = [line for line in keywords if not line.upper().startswith("250-AUTH")]
        return [*keywords, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-DSN", responses[-1]]

    # ---- MAIL / RCPT ----------------------------------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.gate.closing:
            return replies.SHUTTING_DOWN
        if address == "<>":  # aiosmtpd hands the null reverse-path over as written
            address = ""
        store = self.gate.store
        client_ip = session.peer[0] if isinstance(session.peer, tuple) else None
        trusted = store.accounts.relay_owners(client_ip)  # the narrowest network's
        user, sender = sender_user(address, store.accounts.find_user) if address else (None, "")
        if user is not None and not address.isascii():
            address = sender  # its domain in the ASCII form the ACL holds: DSNs and answers go there
        account = store.accounts.account_by_id(user.account_id) if user else None
        if user is None and (probe := probe_sender(store, address, trusted)) is not None:
            if not (account := probe.account) or not account.suspended_at:  # else refused as its users
                return taken(envelope, probe, mail_options)  # a recipient verification's probe
        if not address and (trusted or await relaybounce.from_relay(self.gate, client_ip)):
            # A bounce (empty envelope sender) from a client's mail server, or from the mail relay
            # (to the gateway's own mailboxes alone): recorded, never sent.
            return relaybounce.taken(envelope, mail_options, from_relay=not trusted)
        verdict = relay_sender_allowed(
            account.id if account else None, bool(account and account.suspended_at), trusted
        )
        if not verdict.allowed:
            if not trusted:
                refusal = replies.NOT_TRUSTED if address else relaybounce.NULL_SENDER_NOT_TRUSTED
            elif account is not None and account.suspended_at and account.id in trusted:
                # Only to the account's own mail server: another company's learnt of its suspension
                # and the reason (its billing trouble) by naming one of its users.
                refusal = replies.SUSPENDED.format(account.name, account.suspended_reason or "ask your admin")
            elif user is None and not address.isascii():
                # SMTPUTF8 lets such a sender in; the ACL holds ASCII addresses only, so it is no
                # user whoever it is, and the reply says why rather than leave them guessing.
                refusal = replies.SENDER_NOT_ASCII
            else:
                refusal = replies.SENDER_NOT_HERE.format(ip=client_ip)
            refused = {"ip": client_ip, "sender": address, "reason": verdict.reason}
            refused.update(admin_fix(self.gate.store, client_ip, address, account, trusted))
            if not self.gate.config.premium.tariffs:
                self.refused.sender_refused(session, refused)
                return refusal
            # answers to premium SMS come from anywhere; RCPT refuses every other address,
            # and only then is the sender logged as refused (a premium answer is no refusal).
            envelope.__dict__["refusal"] = refusal
            envelope.__dict__["refused"] = refused
            account = user = None
        envelope.mail_from = address or NULL_PATH  # an auto-reply to a premium SMS may have <>
        envelope.mail_options.extend(mail_options)
        if user is not None and sender != address:
            # A user's sender behind its BATV tag: recorded as the user (their mail, their usage,
            # their conversations keep one address however often the tag changes); DSNs go to
            # the envelope as received. The premium path reads the tag itself.
            log.info("smtp.sender_untagged", sender=sender, envelope=address)
            envelope.smsgw = Sender(sender, account, user, envelope=address)  # type: ignore[attr-defined]
        else:
            envelope.smsgw = Sender(address, account, user)  # type: ignore[attr-defined]
        return replies.OK_SENDER

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        cfg = self.gate.config.gateway
        if address in ("", NULL_PATH):  # aiosmtpd's address for `RCPT TO:<>`
            return replies.BAD_RCPT_SYNTAX.format("")
        if address.casefold() == "postmaster" and cfg.domains:
            # RFC 5321 4.5.1: the domainless <Postmaster> must be taken; it is ours at our first domain.
            address = f"{address}@{cfg.domains[0]}"
        try:
            local, domain = split_address(address)
        except BadNumber:
            return recipients.refused(envelope, address, replies.RELAY_DENIED.format(address))
        if domain not in cfg.domains:  # or no longer one of them: the address to write to instead
            return recipients.refused(
                envelope, address, formerdomains.refusal(self.gate, local, domain, address)
            )
        if (not_bounce := relaybounce.refusal(self.gate, envelope, local, domain, address)) is not None:
            return not_bounce  # the relay's null sender: a bounce's recipients alone
        target = premium.target(local)
        if target is not None:
            return self._premium_rcpt(envelope, address, target)
        sender: Sender | None = getattr(envelope, "smsgw", None)
        if sender is not None and sender.mail_from and postmaster.is_postmaster(local):
            client_ip = session.peer[0] if isinstance(session.peer, tuple) else None
            # RFC 5321 4.5.1: from anyone MAIL let through, up to an hour's cap
            return postmaster.take(envelope, address, self.gate.store, client_ip)
        if "refusal" in envelope.__dict__:
            self.refused.sender_refused(session, envelope.__dict__["refused"])
            return str(envelope.__dict__["refusal"])
        if "premium" in envelope.__dict__:
            return replies.PREMIUM_ALONE
        if (alone := postmaster.refuses_others(envelope)) is not None:
            return alone
        if postmaster.bounce_home(sender, self.gate.config, local, domain):
            # bounces of the gateway's own mail come back to its From address (or an MTA's
            # postmaster); they are recorded and forwarded like any other. Only from <> (taken at
            # MAIL from trusted networks and the relay): a person's mail to postmaster went to the admin
            # address above, and to the From address is refused below (`postmaster.notices_only`).
            mailboxes: list[str] = envelope.__dict__.setdefault("mailboxes", [])
            mailbox = f"{local}@{domain}".casefold()  # Postmaster, "postmaster": one mailbox
            if mailbox not in mailboxes:
                mailboxes.append(mailbox)
                envelope.rcpt_tos.append(address)
            return replies.OK_RCPT
        if (notices := postmaster.notices_only(self.gate.config, local, domain, address)) is not None:
            return notices
        if local.lower() == "info":
            envelope.__dict__["info"] = True
            envelope.rcpt_tos.append(address)
            return replies.OK_RCPT
        try:
            number = to_e164(local, cfg.default_region)
        except BadNumber as exc:
            if (short := premium_number(local, self.gate.config.premium.tariffs)) is not None:
                return recipients.refused(envelope, address, replies.PREMIUM_NUMBER.format(address, short))
            return recipients.refused(envelope, address, replies.BAD_NUMBER.format(address, exc))
        if (other := international_too(local, cfg.default_region, number)) is not None:
            number = self._conversation_number(envelope, number, other)
        if (kind := number_kind(number)) not in cfg.number_types:
            # A premium-rate or satellite number's SMS costs many times a mobile's, and a toll-free
            # one's reaches nobody: refused before the mail, never sent and billed.
            log.info("smtp.number_not_served", number=number, kind=kind)
            return replies.NOT_SERVED.format(address, number, kind_words(kind))
        account = sender.account if sender is not None else None
        if account is not None and (region := accountrules.outside_countries(account, number)) is not None:
            # A mistyped number abroad (a costly destination) is refused, not sent and billed.
            refusal = _country_refusal(account, address, number, region)
            return recipients.refused(envelope, address, refusal, number)
        if (no_route := recipients.unrouted(self.gate.config, number, address)) is not None:
            # else taken, retried for the whole validity, and bounced as expired
            return recipients.refused(envelope, address, no_route, number)
        # The shared list (the phone's STOP, the operator's entries) and the sender's account's own.
        if by := self.gate.store.policy.optout_by(number, None if account is None else account.id):
            optin = self.gate.config.gateway.optin_words
            return recipients.refused(envelope, address, replies.opted_out(address, optin, by), number)
        if "probe" in envelope.__dict__:
            return replies.OK_RCPT  # answered as for its users' mail, never taken (`verifyprobe`)
        numbers: list[str] = envelope.__dict__.setdefault("numbers", [])
        if number in numbers:
            asked: dict[str, dsnparams.RcptAsks] = envelope.__dict__.setdefault("dsn", {})
            if (
                joined := dsnparams.joined(asked.get(number), getattr(server, "rcpt_asks", None))
            ) is not None:
                asked[number] = joined
            envelope.rcpt_tos.append(address)
            return replies.OK_RCPT  # the same phone twice gets one SMS
        if len(numbers) >= MAX_RECIPIENTS:
            return recipients.refused(envelope, address, replies.TOO_MANY_RCPT, number, self.refusals)
        if sender and (spent := used_up(self.gate.store, sender, self.gate.now, session.authenticated)):
            return recipients.refused(envelope, address, spent, number, self.refusals)  # before the body
        numbers.append(number)
        envelope.__dict__.setdefault("domains", {})[number] = domain  # replies come from this domain
        envelope.__dict__.setdefault("addresses", {})[number] = address  # its bounce names it (RFC 3464)
        if (asks := getattr(server, "rcpt_asks", None)) is not None:
            envelope.__dict__.setdefault("dsn", {})[number] = asks  # NOTIFY, ORCPT (RFC 3461)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.OK_RCPT

    def _conversation_number(self, envelope: Envelope, national: str, international: str) -> str:
        """Of two readings of bare digits, the phone the sender talks to: a Reply to an answer mail
        of an earlier version (From the phone's digits, no "+") under DE went to the national reading,
        a stranger. Looked up only for digits that read both ways."""
        sender: Sender | None = getattr(envelope, "smsgw", None)
        if sender is None or not sender.mail_from:
            return national
        talks = conversations.handlers.repo(self.gate.store).talks_to(international, sender.mail_from)
        return international if talks else national

    def _premium_rcpt(self, envelope: Envelope, address: str, target: premium.Target) -> str:
        """An answer or confirmation address: known token, and alone in its mail (one answer, one SMS)."""
        if {"premium", "numbers", "info", "mailboxes", "postmaster"} & envelope.__dict__.keys():
            return replies.PREMIUM_ALONE
        if not premium.known(self.gate.store, target):
            log.info("premium.unknown_address", kind=target.kind)
            return replies.PREMIUM_UNKNOWN_ADDRESS.format(address)
        if "probe" in envelope.__dict__:
            return replies.OK_RCPT  # a verification probe's: answered, never taken (`verifyprobe`)
        envelope.__dict__["premium"] = target._replace(rcpt=address)
        envelope.rcpt_tos.append(address)
        return replies.OK_RCPT

    # ---- DATA ------------------------------------------------------------------------------

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Every write a DATA makes (acceptance, premium answer, info@ reply) gets the same replies
        when the store fails: the client is told to retry, never that the mail was taken; and no reply
        at all for a mail the daemon may have committed or not (`OutcomeUnknown`)."""
        try:
            return await self._data(session, envelope)
        except OutcomeUnknown:
            # The mail may be committed: no reply, not even a failure (`gateway.smtp.outcome`).
            if server.transport is not None:
                server.transport.abort()
            return replies.TEMP_FAILURE  # written nowhere: the connection is gone
        except StoreReplaced:  # logged at critical where it was seen; the daemon is stopping
            return replies.STORE_REPLACED
        except StoreBusy as exc:
            self.gate.store_log.warning("smtp.store_busy", exc)
            return replies.STORE_BUSY
        except sqlite3.OperationalError as exc:
            self.gate.store_log.error("smtp.store_failed", exc, error=str(exc))
            if "full" in str(exc).lower() or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                return replies.STORE_FULL
            return replies.TEMP_FAILURE
        except OSError as exc:
            self.gate.store_log.error("smtp.store_failed", exc, error=str(exc))
            return replies.STORE_FULL if exc.errno == errno.ENOSPC else replies.TEMP_FAILURE

    async def _data(self, session: Session, envelope: Envelope) -> str:
        if self.gate.closing:
            return replies.SHUTTING_DOWN
        sender: Sender | None = getattr(envelope, "smsgw", None)
        numbers: list[str] = envelope.__dict__.get("numbers", [])
        wants_info = bool(envelope.__dict__.get("info"))
        mailboxes: list[str] = envelope.__dict__.get("mailboxes", [])  # a bounce's, see handle_RCPT
        # The high-water mark refuses the accounts holding more than their share of the queue
        # (`gateway.queuedepth.judge`): a campaign's account, not every company's staff.
        full = self.gate.backlog().refuses(sender.account.id if sender and sender.account else None)
        client_ip = session.peer[0] if isinstance(session.peer, tuple) else None
        if sender is not None and "premium" in envelope.__dict__:
            if full:
                return replies.QUEUE_FULL
            raw, target = envelope.original_content or b"", envelope.__dict__["premium"]
            # The client's address goes with the write (a bounce's forward names the server that sent it);
            # the envelope as received: a BATV-tagged answer has its reports at the tagged address.
            envelope_from = sender.envelope or sender.mail_from
            reply, _queued = await self.gate.writes.premium(target, envelope_from, raw, client_ip)
            return reply
        if sender is not None and "postmaster" in envelope.__dict__:
            raw = envelope.original_content or b""
            at = self.gate.now()
            record, fwd = postmaster.forward(self.gate.config, envelope, sender, raw, client_ip, session, at)
            result = await self.gate.writes.accept(record, None, fwd)
            if result.refused is not None:  # past the hour's cap, counted again in the write
                return postmaster.said_to(str(envelope.__dict__["postmaster"]), result.refused)
            if result.email_id is None:
                return replies.OK_DUPLICATE
            log.info("smtp.postmaster_forwarded" if fwd else "smtp.postmaster_looped")
            return replies.OK_NOT_SENT.format(record.automatic)
        if sender is None or not (numbers or wants_info or mailboxes):
            return replies.NO_VALID_RCPT
        if not (numbers or mailboxes):
            return await inforeply.answer(self.gate, envelope, sender)
        if full:
            return replies.QUEUE_FULL
        # A bounce may return an answer mail by way of the relay: its host's addresses, resolved off the loop.
        relay_ips = await self.gate.relay_addresses.current() if mailboxes else frozenset()
        built = compose(
            self.gate.config,
            self.gate.store,
            sender,
            numbers,
            envelope.original_content or b"",
            now=self.gate.now(),
            client_ip=client_ip,
            domains=envelope.__dict__.get("domains", {}),
            mailboxes=mailboxes,
            addresses=envelope.__dict__.get("addresses", {}),
            # Taken on the client's network alone: the write checks it is still the account's.
            relay_client=None if session.authenticated else client_ip,
            silent=dsnparams.never_asked(envelope.__dict__),
            relay_ips=relay_ips,
        )
        if isinstance(built, str):
            self.refused.data_refused(sender.mail_from, client_ip, built)
            return built
        acceptance, limits, notices, opening = built
        dsnparams.onto_rows(acceptance, envelope.__dict__)
        result = await self.gate.writes.accept(acceptance, limits, notices, opening)
        if result.refused:
            self.refused.data_refused(sender.mail_from, client_ip, result.refused)
            return result.refused
        if acceptance.automatic:
            log.info("smtp.automatic", email=result.email_id, reason=acceptance.automatic)
            return replies.OK_NOT_SENT.format(acceptance.automatic)
        if result.email_id is None:
            log.info("smtp.duplicate", message_id=acceptance.header_message_id)
            return replies.OK_DUPLICATE
        if wants_info:
            await inforeply.answer(self.gate, envelope, sender)
        log.info(
            "smtp.accepted",
            email=result.email_id,
            messages=list(result.message_ids),  # `message.state` and its SMS's lines carry these
            parts=sum(len(m.parts) for m in acceptance.messages),
            duplicates=result.duplicates,
        )
        return replies.OK_QUEUED.format(result.email_id)

    async def handle_exception(self, error: Exception) -> str:
        at = _raised_at(error)
        self.faults.error("smtp.internal_error", error, traceback=True, kind=at, at=at, error=repr(error))
        return replies.TEMP_FAILURE


def _raised_at(error: BaseException) -> str:
    """The error's type and the line that raised it: two faults of one type (a KeyError here and
    another there) are two bugs, each with its own line and traceback."""
    tb = error.__traceback__
    if tb is None:
        return type(error).__name__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{type(error).__name__}@{tb.tb_frame.f_code.co_filename.rpartition('/')[2]}:{tb.tb_lineno}"


def _country_refusal(account: Account, address: str, number: str, region: str) -> str:
    where = {"001": "no country (an international network)", "ZZ": "no known country"}.get(region, region)
    return replies.OUTSIDE_COUNTRIES.format(
        address=address,
        number=number,
        region=where,
        countries=", ".join(account.countries),
        account=mailheaders.reply_line(shlex.quote(account.name)),
    )
