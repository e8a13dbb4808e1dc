"""A mail refused as the next round of a mail loop (`gateway.conversations.loopguard`), asked of every
number the mail goes to, and the refusal's words.

The guard was asked only for the numbers the mail counts as answering a conversation (a plain Reply
to its topic). A helpdesk's acknowledgement is often no such Reply: OTRS writes "[Ticket#…] RE: <the
subject cut short>…", Zammad "Thanks for your inquiry (<subject>)", so the same acknowledgement and a
phone's auto-reply app answered each other unchecked, an SMS a round up to the hourly cap of answer
mails. The guard's first lookup (an answer mail from that phone to this sender within ten minutes) is
one index seek and finds none for nearly every mail, so every number is asked.

The refusal spoke of "an automatic mailbox answering the phone's auto-reply app": a person who sends
the same canned line to each of the phone's alike answers (a dispatcher's "Thanks. Next job is ready")
was called a machine. It now says what was seen, and what to do whoever writes the mails.

Asked of every number, one looping phone refused the whole mail: a helpdesk's acknowledgement to that
phone and Cc an on-call colleague lost the colleague's SMS too. Only the looping numbers are left out
now, and the sender gets a "Not sent as SMS" notice naming them, as the identical-text rule does
(`gateway.smtp.identical`); the mail is refused only when no number is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from gateway.config import Config
from gateway.conversations import loopguard
from gateway.smtp.identical import not_sent_notice
from gateway.smtp.intake import MailText
from gateway.store.db import Store
from gateway.wording import Phrase

log = structlog.get_logger(__name__)

# The advice to mark the mails Auto-Submitted: auto-replied sent a monitoring system's admin, whose
# alerts a person acknowledged, to a setting that records them and sends none. The guard now takes
# only a phone that answers within seconds (an auto-reply app), so the phone comes first, and the
# mark is only for a program that answers the phone's mails, with what it does said. A person who
# does answer that fast, the same word each time ("ack" in an incident), was told only to stop an
# auto-reply they do not have: the guard needs the phone's answers alike, so one in other words lets
# the next mails through, and that is said.
# An answer that came before the receipt asked for its SMS was not timed (`loopguard.Timing`): it counts
# as fast, and "sent within 15 seconds" was then said of a delay nobody knew, two minutes as well.
TIMING = {
    "timed": Phrase(
        "sent within {quick:g} seconds of the SMS, as an auto-reply app does",
        "wysłanej w ciągu {quick:g} sekund od SMS-a, jak robi to automatyczna odpowiedź",
    ),
    "untimed": Phrase(
        "sent before the SMS's receipt came to time it, so taken for an auto-reply app's",
        "wysłanej, zanim przyszło potwierdzenie doręczenia SMS-a, które zmierzyłoby czas, więc uznanej"
        " za automatyczną odpowiedź",
    ),
}
REFUSAL = (
    "550 5.7.1 Not sent: looks like a mail loop: the same text went from you to {phone} {rounds} times"
    " within {span:g} minutes, each within {fast:g} minutes of the phone's same answer, {timing};"
    " stop the phone's auto-reply; a person answering should use other words; if a program writes these"
    " mails in answer to the phone's, mark them Auto-Submitted: auto-replied (RFC 3834): they are"
    " recorded, not sent as SMS; if you write them, change the words"
)


# The refusal's words for the numbers left out of a mail that went to others: `{to}` and `{auto}` in
# the singular or the plural (`_PHONES`), as one number or several are left out.
NOTICE_TEXT = Phrase(
    "Your mail was sent as SMS to {sent}, but not to {looped}: it looks like a mail loop: the same text"
    " went from you to {to} {rounds} times within {span:g} minutes, each within {fast:g} minutes of"
    " the phone's same answer, {timing}. Stop {auto}; a person answering on {to} should answer in other"
    " words, not the same each time, and your next mails go again; if a program writes these mails in"
    " answer to the phone's, mark them Auto-Submitted: auto-replied (RFC 3834): they are recorded, not"
    " sent as SMS; if you write them, change the words.",
    "Wiadomość wysłano jako SMS do {sent}, ale nie do {looped}: wygląda to na pętlę pocztową: ten sam"
    " tekst od nadawcy trafił do {to} {rounds} razy w ciągu {span:g} minut, za każdym razem w"
    " ciągu {fast:g} minut od tej samej odpowiedzi telefonu, {timing}. Należy wyłączyć {auto}; osoba"
    " odpowiadająca z {to} powinna odpowiadać innymi słowami, nie za każdym razem tymi samymi, a kolejne"
    " wiadomości znów pójdą; jeśli wiadomości pisze program w odpowiedzi na odpowiedzi telefonu,"
    " należy oznaczyć je nagłówkiem Auto-Submitted: auto-replied (RFC 3834): bramka je zapisze i nie"
    " wyśle SMS-ów; jeśli pisze je człowiek, należy zmienić treść.",
)
# (language, several numbers) -> the words for `{to}` and `{auto}` in `NOTICE_TEXT`.
_PHONES = {
    ("en", False): ("that phone", "the phone's auto-reply"),
    ("en", True): ("each of those phones", "the phones' auto-replies"),
    ("pl", False): ("tego telefonu", "automatyczną odpowiedź w telefonie"),
    ("pl", True): ("każdego z tych telefonów", "automatyczne odpowiedzi w tych telefonach"),
}


def unasked(cfg: Config) -> frozenset[str]:
    """The links that ask the SMSC for no receipts: an answer there is timed by its SMS's submit."""
    return frozenset(link.name for link in cfg.smsc if not link.status_reports)


def left_out(
    store: Store,
    sender: str,
    texts: Mapping[str, str],
    dedup_key: str | None,
    now: float,
    no_receipts: frozenset[str] = frozenset(),
) -> dict[str, loopguard.Timing]:
    """The numbers to which a mail from `sender`, whose SMS to each number is `texts[number]` (as
    planned), is the next round of a loop, each with how the phone's answers were timed. A number a
    retry of this mail reached already had it: the first copy may count as a round of its own, and
    the retry must stay a duplicate, not a refusal. `no_receipts`: `unasked(cfg)`."""
    conn = store.db.conn
    looped = {
        n: timing
        for n, text in texts.items()
        if (timing := loopguard.looping(conn, n, sender, text, now, no_receipts)) is not None
    }
    if looped and dedup_key is not None:
        reached = store.queue.reached_before(dedup_key)  # only here: a loop is rare, the lookup is not free
        looped = {n: timing for n, timing in looped.items() if n not in reached}
    if looped:  # no number: the log is kept longer than the phone's data may be
        event = "smtp.loop_refused" if len(looped) == len(texts) else "smtp.loop_left_out"
        log.warning(event, sender=sender, rounds=loopguard.ROUNDS, left_out=len(looped), numbers=len(texts))
    return looped


def told(
    cfg: Config,
    rcpt: str,
    mail: MailText,
    sent: Sequence[str],
    looped: Mapping[str, loopguard.Timing],
    quiet: set[str],
    now: float,
) -> list[tuple[str, bytes]]:
    """The sender's "Not sent as SMS" notice of the looping numbers left out of a mail that went to
    `sent` (`left_out`'s); none when each of them said NOTIFY=NEVER (`quiet`)."""
    if not (named := [n for n in looped if n not in quiet]):
        return []
    lang = cfg.gateway.language
    to, auto = _PHONES[(lang, len(named) > 1)]
    timing = "untimed" if any(looped[n] == "untimed" for n in named) else "timed"
    content = NOTICE_TEXT(
        lang,
        sent=", ".join(sent),
        looped=", ".join(named),
        to=to,
        auto=auto,
        rounds=loopguard.ROUNDS,
        span=loopguard.SPAN_SECONDS / 60,
        fast=loopguard.FAST_SECONDS / 60,
        timing=TIMING[timing](lang, quick=loopguard.PHONE_FAST_SECONDS),
    )
    notice = not_sent_notice(cfg, rcpt, mail.subject or "", named, content, mail.message_id, now=now)
    return [("not-sent", notice)]


def worded(phone: str, timing: loopguard.Timing = "timed") -> str:
    """The 550 of a mail whose only number, `phone`, loops; SMTP replies are English."""
    return REFUSAL.format(
        phone=phone,
        rounds=loopguard.ROUNDS,
        span=loopguard.SPAN_SECONDS / 60,
        fast=loopguard.FAST_SECONDS / 60,
        timing=TIMING[timing].en.format(quick=loopguard.PHONE_FAST_SECONDS),
    )
