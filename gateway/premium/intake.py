"""Mail to an answer or confirmation address as the relay port takes it (R-4.3, R-4.5): known at
RCPT, read at DATA, and decided in one write() by gateway/premium/answers.py.

Apart from the decisions because this is the SMTP side: what a guesser may learn at RCPT (nothing
but whether the token names something), how the mail is read (as its service's account's staff
mail), and the reply when the store cannot take the write (`451`, so the client's server retries).
"""

from __future__ import annotations

import sqlite3
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parseaddr

import structlog

from gateway import accountrules
from gateway.bitelog import FaultLog
from gateway.config import Config
from gateway.premium import handlers
from gateway.premium.answers import answer, confirm
from gateway.premium.passwords import Target
from gateway.smtp import replies
from gateway.smtp.intake import IntakeOptions, IntakeRefused, MailText, read_mail
from gateway.store.db import Store, StoreBusy, StoreReplaced

log = structlog.get_logger(__name__)
_store_log = FaultLog(log)

_HEADERS = BytesParser(policy=compat32)


def known(store: Store, target: Target) -> bool:
    """At RCPT: does the token name an MO or a confirmation (no write, no detail for a guesser)."""
    r = handlers.repo(store)
    if target.kind == "premium":
        return r.by_token(target.token) is not None
    return r.verification(target.token) is not None


async def on_mail(
    store: Store, cfg: Config, target: Target, mail_from: str, raw: bytes, client_ip: str | None = None
) -> tuple[str, bool]:
    """The SMTP reply for DATA to an answer or confirmation address, and whether an SMS was queued.

    `client_ip` is the sending server's address, recorded with the mail as for any other on the
    relay port, and named in a bounce's forward so that the operator knows whose server bounced.
    A store that cannot take the write answers `451`: the client's server tries again later.
    """
    try:
        return await _on_mail(store, cfg, target, mail_from, raw, client_ip)
    except StoreReplaced:  # logged at critical where it was seen; the daemon is stopping
        return replies.STORE_REPLACED, False
    except (StoreBusy, sqlite3.OperationalError, OSError) as exc:
        _store_log.error("premium.store_failed", exc, error=repr(exc))  # each answer on a full disk
        return replies.TEMP_FAILURE, False


async def _on_mail(
    store: Store, cfg: Config, target: Target, mail_from: str, raw: bytes, client_ip: str | None
) -> tuple[str, bool]:
    opts = _options(store, cfg, target)
    try:
        mail: MailText | IntakeRefused = read_mail(raw, opts, empty_sender=not mail_from)
    except IntakeRefused as exc:
        mail = exc
    author = mail_from
    if not author:  # an auto-reply sent with a null Return-Path answers for the From address
        head = _HEADERS.parsebytes(raw.replace(b"\r\n", b"\n")[:65536], headersonly=True)
        author = parseaddr(str(head.get("From", "")))[1]
    if target.kind == "confirm":
        decided = await store.write(
            lambda: confirm(
                store, cfg, target.token, mail, raw=raw, mail_from=mail_from, client_ip=client_ip
            ),
            interactive=True,
        )
        return decided, False
    return await store.write(
        lambda: answer(
            store, cfg, target.token, mail_from, author, mail, raw=raw, client_ip=client_ip, rcpt=target.rcpt
        ),
        interactive=True,
    )


def _options(store: Store, cfg: Config, target: Target) -> IntakeOptions:
    """An answer is read as its vote's account's staff mail is (its end marker and cut-from
    phrases: the client's signature and confidentiality footer never reach the phone, where cut to one SMS
    they would replace the end of the answer), without a subject (the answer is the body). The
    vote's account, not the service's now: a service moved to another account (`premium set
    --account`) leaves its earlier votes' answers to the client they were mailed to (`answer`).
    A confirmation's text is never sent: no marker."""
    account = None
    if target.kind == "premium":
        r = handlers.repo(store)
        pmo = r.by_token(target.token)
        if pmo is not None and pmo.service_id is not None:  # else refused as unknown in `answer`
            owner = pmo.account_id if pmo.account_id is not None else r.service(pmo.service_id).account_id
            account = store.accounts.account_by_id(owner)
    marker = accountrules.end_marker(cfg, account) if account is not None else None
    return IntakeOptions(
        subject_max=0,
        end_marker=marker,
        cut_from=account.cut_from if account is not None else (),
        charset_fallbacks=tuple(cfg.gateway.charset_fallbacks),
        own_address=cfg.mail.from_address,
        zone=cfg.gateway.timezone,
    )
