"""The alert opt-in (`smsgw account set --auto-generated send`): which machine mail is a monitoring
system's alert that an account for machines may have sent as SMS, rather than recorded unsent as
R-1.7 records all machine mail (`gateway.smtp.automail`).

Cron and alerting tools mark their mail with the same headers as responders and the gateway's own
notices, so an alert is told apart by having nothing else: no responder's, report's or bounce's
sign, and nothing the gateway wrote, answered or enclosed, as a mail rule sending a phone's answer
back would otherwise become an SMS again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from email.message import Message

from gateway.smtp.automail import (
    MAILER_DAEMON_FROM,
    OOF_SUBJECT,
    QUOTED_FROM,
    RECALL_SUBJECT,
    bare_address,
    first_headers,
    header_reason,
    own_notice,
    walk_bounded,
)

# The machine signs a monitoring system's alert carries and nothing else does: cron (cronie,
# systemd-cron) puts `Auto-Submitted: auto-generated` on every mail, some tools `auto-notified`, list
# managers and alerting tools `Precedence: list`. An account for machines may have such mail sent
# (`smsgw account set --auto-generated send`); without that, R-1.7 records it unsent.
ALERT_REASONS = frozenset(
    {"Auto-Submitted: auto-generated", "Auto-Submitted: auto-notified", "Precedence: list"}
)

# What the sender of an unsent alert reads in the `250`, after the reason, and what is recorded with
# the mail: the setting that sends it, as the operator's command sets it (`alert_hint`). The panel
# shows the same hint as its Account page sets it (`hint_for_panel`): a company admin has that page's
# checkbox, not the command line.
ALERT_HINT = "an account for alerts: {setting}"
ALERT_SETTING_CLI = "smsgw account set {account} --auto-generated send"
ALERT_SETTING_PANEL = 'tick "Send alerts from monitoring systems and cron" on the Account page'
_BEFORE, _AFTER = ALERT_HINT.format(setting=ALERT_SETTING_CLI).split("{account}")
_RECORDED_HINT = re.compile(f"{re.escape(_BEFORE)}.+?{re.escape(_AFTER)}$")


def alert_hint(account: str) -> str:
    return ALERT_HINT.format(setting=ALERT_SETTING_CLI.format(account=shlex.quote(account)))


def hint_for_panel(reason: str) -> str:
    """A recorded mail's reason as the panel shows it: the hint to the setting names its checkbox
    on the Account page instead of the command (mail recorded before this reads the same)."""
    return _RECORDED_HINT.sub(ALERT_HINT.format(setting=ALERT_SETTING_PANEL), reason)


def alert_only(
    msg: Message,
    reason: str | None,
    *,
    subject: str,
    own_address: str | None,
    own_domains: Iterable[str],
    hostname: str | None = None,
) -> bool:
    """Whether a machine mail's only signs are an alert's (`ALERT_REASONS`): nothing that a program
    answering a person, a report, a bounce or the gateway itself wrote.

    `reason` is `machine_reason`'s verdict, which names only the first sign it finds; every header
    is read again here, since `Auto-Submitted: auto-generated` above an `X-Autoreply` is still a
    responder's. The gateway's own mail (`own_address`, and ids and addresses in `own_domains`, the
    `[gateway] domains` its answers come from) carries `Auto-Submitted: auto-generated` as well: a
    mail rule that sends a phone's answer back must not make it an SMS again, nor one that encloses
    it or answers it (In-Reply-To naming an id at `hostname`, where notices' ids end, or a domain).
    """
    if reason not in ALERT_REASONS or OOF_SUBJECT.match(subject) or RECALL_SUBJECT.match(subject):
        return False
    values = [(name.lower(), str(value)) for name, value in msg.raw_items()]
    for name, value in values:
        sign = header_reason({name: value})
        if sign is not None and sign not in ALERT_REASONS:
            return False
    headers = first_headers(msg)
    if MAILER_DAEMON_FROM.search(headers.get("from", "")):
        return False
    marks = sum(name in headers for name in _RESPONDER_HEADERS)
    answers = "in-reply-to" in headers or "references" in headers
    if marks == len(_RESPONDER_HEADERS) or (answers and marks):
        return False
    domains = tuple(own_domains)
    if _answers_ours(msg, (hostname, *domains) if hostname else domains):
        return False
    body = _text_head(msg)
    if own_notice(headers, body, own_address) or _ours(headers, body, own_address, domains):
        return False
    return not _encloses_ours(msg, own_address, domains)


# Headers that Exchange puts on its automatic replies and on what its mail rules send: an
# out-of-office reply whose subject an administrator worded ("Jestem na urlopie do 14.12")
# carries them beside `Auto-Submitted: auto-generated`, and answers a mail (In-Reply-To). Alone they
# are no responder's: GitLab, Redmine and mail sent from Outlook carry X-Auto-Response-Suppress, and
# an inbox rule forwarding a monitoring mailbox to 601…@gateway (a common way to wire alerts to SMS)
# adds the loop header; such alerts answer nothing, and were recorded unsent. Both together are an
# Exchange responder's, whether or not it names the mail it answers (a reply-with-template rule).
_RESPONDER_HEADERS = ("x-auto-response-suppress", "x-ms-exchange-inbox-rules-loop")

_MSG_ID = re.compile(r"<([^<>\s]{1,250})>")


def _answers_ours(msg: Message, domains: tuple[str, ...]) -> bool:
    """In-Reply-To or References names an id at one of `domains` (the gateway's hostname and
    domains): a responder's answer to a phone's answer mail or to a notice. An alert answers none."""
    own = tuple(f"@{d.strip().casefold()}" for d in domains if d.strip())
    if not own:
        return False
    refs = " ".join(str(v) for name in ("in-reply-to", "references") for v in msg.get_all(name, ()))
    return any(ref.casefold().endswith(own) for ref in _MSG_ID.findall(refs))


def _encloses_ours(msg: Message, own_address: str | None, domains: tuple[str, ...]) -> bool:
    """An attached message (message/rfc822) that the gateway wrote: a mail rule forwarding its
    delivery notice "as attachment", or a mailing list wrapping a phone's answer mail (Mailman's
    DMARC mitigation). The outer headers are the rule's or the list's and say nothing of it."""
    for part in walk_bounded(msg):
        if part is msg or not part.get_content_type().startswith("message/"):
            continue
        inner = part.get_payload()
        if not isinstance(inner, list):
            continue
        for enclosed in inner:
            if not isinstance(enclosed, Message):
                continue
            headers = first_headers(enclosed)
            if own_notice(headers, "", own_address) or _ours(headers, "", own_address, domains):
                return True
    return False


def _ours(headers: dict[str, str], body: str, own_address: str | None, domains: Iterable[str]) -> bool:
    """Mail the gateway wrote, come back: its id or its From in one of the gateway's domains (a
    phone's answer comes from `+48…@<domain>`), or its From quoted at the top of a forward."""
    own = {d.strip().casefold() for d in domains if d.strip()}
    if own_address:
        own.add(own_address.strip().casefold())
    msgid = headers.get("message-id", "").strip().strip("<>").casefold()
    quoted = QUOTED_FROM.search(body[:3000])
    for address in (
        msgid,
        bare_address(headers.get("from", "")),
        bare_address(quoted.group(1)) if quoted else "",
    ):
        if address and (address in own or address.rpartition("@")[2] in own):
            return True
    return False


def _text_head(msg: Message, limit: int = 3000) -> str:
    """The start of the mail's first text part, decoded: where a forward quotes the mail it forwards."""
    for part in walk_bounded(msg):
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        try:
            return payload[: limit * 4].decode(part.get_content_charset() or "utf-8", "replace")[:limit]
        except LookupError:  # a charset Python does not know: its ASCII is enough for a quoted From
            return payload[: limit * 4].decode("ascii", "replace")[:limit]
    return ""
