"""One confirmation for the SMS of one mail that were delivered, not one a number. No I/O.

A staff member mailed thirty numbers with confirmations on (`dlr_mail = all`, or a mail program's
`NOTIFY=SUCCESS`) and got thirty mails. The deliveries of one mail to one address now make one mail
(`gateway.bouncegroup` queues it as it queues the bounce of its failures): the plain notice names
each number with what the notice of one says of it, and the receipt a mail program asked for is one
RFC 3464 report with a per-recipient field group a number (`Action: delivered`, or `relayed` for an
SMS whose report never came). Of one SMS, each is the mail it always was.

Why the confirmation names the delivered numbers alone, not the failed ones too: RFC 3464 lets one
report mix outcomes, but the failures have their own mail already, the grouped bounce, held by the same
rule and sent to whoever the account's rule and the RCPT's NOTIFY=FAILURE name, which need not be who
asked for receipts. Naming them again told the user of each failure twice, and made the receipt a
report with `Action: failed` groups, which a mail program files and a bounce processor counts as a
non-delivery: the address would be counted twice, and the user's "delivered" folder would hold a
bounce. A mail whose SMS partly failed gets both mails, each whole about its own outcome.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from gateway import mailheaders as h
from gateway import wording as w
from gateway.bounce import report, success_dsn
from gateway.notify import delivered_notice, plain, stamp
from gateway.reasons import human_reason
from gateway.wording import Language, Phrase

# Counted in the way `wording.PARTS` counts parts in Polish ("liczba …: n"): no plural forms to pick.
GROUP_SUBJECT = Phrase("SMS delivered to {count} numbers", "Doręczono SMS-y (liczba numerów: {count})")
GROUP_INTRO = Phrase(
    "Your SMS reached {count} of the numbers your mail was sent to; each is listed below.",
    "SMS został doręczony pod {count} z numerów, na które wysłano wiadomość; poniżej każdy z nich.",
)
# Some of them `unreported`: the SMSC took them and no report came, so "delivered" would claim what
# nobody confirmed (the notice of one such SMS says "sent" too).
SENT_SUBJECT = Phrase("SMS sent to {count} numbers", "Wysłano SMS-y (liczba numerów: {count})")
SENT_INTRO = Phrase(
    "Your SMS went to {count} of the numbers your mail was sent to; each is listed below with what is"
    " known of its delivery.",
    "SMS został wysłany pod {count} z numerów, na które wysłano wiadomość; poniżej każdy z nich z tym,"
    " co wiadomo o jego doręczeniu.",
)


def group_notice(
    infos: list[dict[str, Any]],
    *,
    sender: str,
    rcpt: str,
    domain: str,
    lang: Language = "en",
    now: float | None = None,
) -> bytes:
    """The plain delivered notice of the SMS `infos` (`AdminRepo.message_info`) of one mail, in the
    order they ended; of one, `notify.delivered_notice` as it is."""
    if len(infos) == 1:
        return delivered_notice(infos[0], sender=sender, rcpt=rcpt, domain=domain, lang=lang, now=now)
    subject, intro = _heading(infos, lang)
    msg = EmailMessage(policy=h.POLICY)
    first = infos[0]
    stamp(
        msg,
        now=now,
        sender=sender,
        rcpt=rcpt,
        subject=subject,
        domain=domain,
        in_reply_to=first.get("header_message_id"),
    )
    lines = "\n".join(_told(info, lang) for info in infos)
    return plain(msg, f"{intro}\n\n{lines}")


def group_success_dsn(
    infos: list[dict[str, Any]],
    *,
    sender: str,
    rcpt: str,
    reporting_mta: str,
    domain: str,
    lang: Language = "en",
    now: float | None = None,
) -> bytes:
    """The NOTIFY=SUCCESS receipt of the SMS `infos` of one mail: one report, a field group a number;
    of one, `bounce.success_dsn` as it is. No content is returned with a success (RFC 3461 4.3)."""
    where = dict(sender=sender, rcpt=rcpt, reporting_mta=reporting_mta, domain=domain)
    if len(infos) == 1:
        return success_dsn(infos[0], lang=lang, now=now, **where)
    subject, intro = _heading(infos, lang)
    human = f"{intro}\n\n" + "\n".join(_told(info, lang) for info in infos)
    outcomes = [(info, _outcome(info)) for info in infos]
    return report(infos[0], human, subject, outcomes, now=now, **where)


def _heading(infos: list[dict[str, Any]], lang: Language) -> tuple[str, str]:
    """The Subject and first line: "delivered" only when every report said so."""
    count = len(infos)
    if any(info.get("state") == "unreported" for info in infos):
        return SENT_SUBJECT(lang, count=count), SENT_INTRO(lang, count=count)
    return GROUP_SUBJECT(lang, count=count), GROUP_INTRO(lang, count=count)


def _told(info: dict[str, Any], lang: Language) -> str:
    """What the notice of one SMS says of it: delivered, or sent with no report to confirm it."""
    number = h.text(info["recipient"], limit=64)
    parts = w.PARTS(lang, n=info["parts_total"])
    if info.get("state") == "unreported":
        said = info.get("reason")
        reason = h.text(human_reason(said, lang) if said else w.UNREPORTED_NO_REASON(lang), limit=900)
        return w.UNREPORTED_TEXT(lang, number=number, parts=parts, reason=reason)
    return w.DELIVERED_TEXT(lang, number=number, parts=parts)


def _outcome(info: dict[str, Any]) -> dict[str, str]:
    """RFC 3464 2.3.3: `relayed` for an SMS the SMSC took whose report never came, as `success_dsn`."""
    return {"Action": "relayed" if info.get("state") == "unreported" else "delivered", "Status": "2.0.0"}
