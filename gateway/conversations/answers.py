"""A mail that answers a conversation becomes just the answer on the phone, without the subject.

R-1.3 puts the subject before every SMS. When the user presses Reply on a reply mail, though, the
subject is "Re: Spotkanie": the phone would read "Re: Spotkanie: OK, see you", while the person
holding it only wrote to the user and expects the answer, as in any SMS thread. So a mail is an
answer when it names one of our reply mails in In-Reply-To/References, or when its subject is a
Reply's ("RE:", "Odp:") and the phone has a live conversation with this user (a new mail under the
same subject, a helpdesk's or an alert's, is no answer: it keeps its subject); its subject is
dropped when, without its reply prefixes, it is empty, the conversation's subject, or our reply's
"SMS from …" title (also after an older topic, when the mail names one of our reply mails). Without
such a reply mail named, the subject must be that of an SMS of the conversation that reached the
phone (`reached`, as the reply routing reads it): a conversation is opened when its mail is
accepted, and a first SMS refused at submit, failed or expired never showed the phone its subject,
so the sender's resend (what the bounce asks for) would have gone as bare text. A subject the user
changed is content and is sent as usual; the quote below the answer is cut by textclean. The choice
is made for each number: a colleague's number added to the Reply (Cc) has no conversation and gets
the topic, while the conversation's phone gets the answer alone.

A Reply to one of our mails with nothing written above the quote (`no_new_text`) is refused: the
quote is the phone's own answer, or our note to staff, and either would go back to the phone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway import forwarded
from gateway.config import Config
from gateway.conversations import reached
from gateway.conversations.numbers import display
from gateway.conversations.repo import ConversationsRepo
from gateway.conversations.rows import SINCE, Conversation
from gateway.forwarded import reply_title, reply_topic
from gateway.smtp import subjects, textclean
from gateway.smtp.intake import MailText
from gateway.store.db import Store

SUBJECT_DROPPED = "subject not sent (an answer in a conversation)"
NO_NEW_TEXT = (
    "554 5.6.0 Your reply holds no new text: write it above the quoted mail (nothing was sent;"
    " the quote is not sent back to the phone)"
)


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def names_our_reply(mail: MailText) -> bool:
    """In-Reply-To or References carry the Message-ID of a reply mail the gateway sent."""
    return _names_reply_mail(mail.thread)


def _names_reply_mail(thread: Sequence[str]) -> bool:
    mark = f".{forwarded.REPLY_ID_MARK}@"
    return any(mark in ref for ref in thread)


def names_our_mail(thread: Sequence[str], hosts: Sequence[str]) -> bool:
    """The ids of In-Reply-To and References name a mail the gateway made: a reply mail or fallback
    mail (`names_our_reply`), or a notice or bounce, whose ids end in one of `hosts` (`[gateway]
    hostname` for notices, the first of `[gateway] domains` for bounces: `our_hosts`)."""
    if not thread:  # most mails answer none: nothing to fold the hosts for (a look at every mail)
        return False
    own = tuple(f"@{host}".casefold() for host in hosts)
    return _names_reply_mail(thread) or any(ref.casefold().endswith(own) for ref in thread)


def our_hosts(cfg: Config) -> tuple[str, ...]:
    """The domains the ids of the gateway's own mails end in."""
    return (cfg.gateway.hostname, *cfg.gateway.domains)


def replies_to_mail(thread: Sequence[str], subject: str, hosts: Sequence[str]) -> bool:
    """A Reply to one of our mails, or (the weaker sign) a subject a Reply gave: "RE:", "Odp:"."""
    return names_our_mail(thread, hosts) or subjects.is_reply_subject(subject)


def no_new_text(mail: MailText, hosts: Sequence[str]) -> bool:
    """Whether a person's Reply holds nothing its author wrote: nothing, or only a signature, above
    the quote, or a quote header at the very top (Outlook's "Od: … Wysłane: …" block, taken as a
    forward with nothing written above it). Such a Reply to one of our mails sent the phone its own
    answer and our "[Not matched: …]" note, or "RE: Re: <topic>" alone. A reply prefix in the
    subject tells a Reply to another mail; a forward ("FW:", "PD:") of someone's mail is sent as it is.
    """
    if mail.automatic is not None or subjects.is_forward_subject(mail.subject):
        return False
    ours = names_our_mail(mail.thread, hosts)
    if not ours and not subjects.is_reply_subject(mail.subject):
        return False
    quoted = {textclean.QUOTED, textclean.FORWARD_HEADER, textclean.ATTRIBUTION, textclean.SIGNATURE} & set(
        mail.removed
    )
    if not mail.body:
        return ours or bool(quoted)
    # A header block at the top is a quote's (no one types one); a single attribution line there is
    # a quote's in a Reply to one of our mails, but under a reply prefix alone it may be the
    # person's own first line ("Dnia 5 maja klient napisał:" and their request below it).
    header_first = textclean.FORWARD_HEADER in mail.removed or (
        ours and textclean.ATTRIBUTION in mail.removed
    )
    return header_first or (bool(quoted) and textclean.only_signature(mail.body))


def answered(
    store: Store, cfg: Config, *, user_email: str, numbers: Sequence[str], mail: MailText
) -> list[str]:
    """The numbers whose SMS is the body alone: those whose conversation the mail answers.

    Reads the conversations outside any transaction: the choice only shapes the text, and the
    acceptance write that follows records the conversation as usual.
    """
    if not mail.body or not mail.subject or not numbers:
        return []
    topic = reply_topic(mail.subject)
    ours = names_our_reply(mail)
    if not ours and not subjects.is_reply_subject(mail.subject):
        # A new mail, not a Reply: R-1.3's subject goes first. A helpdesk or alert mailer sends each
        # mail under its one subject, and from its second SMS on the phone lost the topic.
        return []
    repo = ConversationsRepo(store.db, store.clock)
    now = store.clock()
    window = cfg.replies.window_seconds
    found_for: list[str] = []
    for number in numbers:
        found = repo.find_live(number, user_email, now, window)
        if found is None:
            continue
        conv, live = found
        if not ours and not live:
            continue
        if not _names_topic(topic, conv, ours):
            continue  # a subject the user changed is content
        if not ours:
            # The phone has seen the topic only if an SMS under it reached it: read only now, when the
            # subject would be dropped, so that other mail pays nothing for it.
            seen = as_seen(repo.conn, conv, now, window, cfg.gateway.default_region)
            if seen is None or not _names_topic(topic, seen, ours):
                continue
        found_for.append(number)
    return found_for


def _names_topic(topic: str, conv: Conversation, ours: bool) -> bool:
    """The mail's topic (its subject without reply prefixes) is empty, the conversation's subject or
    our reply mail's title for its phone: the phone knows what the answer is to."""
    title = reply_title(display(conv.phone))
    earlier = reply_topic(conv.subject or "")
    known = (earlier, title, f"{earlier} ({title})")
    # Reply on an older reply mail of this phone: its subject is that mail's, as we wrote it
    # ("<topic> (SMS from <this phone>)"), though the conversation has moved on to a new topic.
    untouched = ours and _same(topic[-len(title) - 2 :], f"({title})")
    return not topic or untouched or any(_same(topic, k) for k in known if k)


def as_seen(
    conn: sqlite3.Connection, conv: Conversation, now: float, window: float, region: str
) -> Conversation | None:
    """The conversation as its phone knows it: with the subject and text of its latest SMS that
    reached the phone within the reply window (`reached.last_reached`, `reached.quoting`, as an
    answer from the phone is matched); None when none did (held, cancelled, refused at submit,
    failed, expired). One whose SMS are not known any more (purged, or beyond the bounded scan)
    is taken as it stands, as the reply routing takes its last mail to have gone.

    `window`: the installation's reply window in seconds, for a conversation whose account sets
    none. The reads are the routing's own: the conversation by its key, the phone's SMS by the
    index messages_recipient, each one's parts by parts_message.
    """
    row = conn.execute(f"SELECT {SINCE} FROM conversations WHERE id = ?", (now, window, conv.id)).fetchone()
    if row is None:
        return None
    since = float(row[0])
    scan = reached.messages_to(conn, conv.phone, since - reached.HOLD_SECONDS, now, [conv.user_email])
    last = reached.last_reached(conv, since, scan, region)
    if last is None:
        return conv
    if last is False or last.sent_at is None or last.sent_at < since:
        return None
    return reached.quoting(conv, last)


def as_answer(
    store: Store, cfg: Config, *, user_email: str, numbers: Sequence[str], mail: MailText
) -> tuple[MailText, list[str]]:
    """The mail, its SMS text reduced to the body when it answers the conversation of every number;
    and the numbers whose SMS is the body alone (when only some are, the mail's text stays whole:
    the others get it, subject first)."""
    some = answered(store, cfg, user_email=user_email, numbers=numbers, mail=mail)
    if not some:
        return mail, []
    if len(some) == len(numbers):
        removed = [r for r in mail.removed if not r.startswith("subject cut")] + [SUBJECT_DROPPED]
        return mail.model_copy(update={"text": mail.body, "removed": removed}), some
    removed = [*mail.removed, f"{SUBJECT_DROPPED.removesuffix(')')} with {', '.join(some)})"]
    return mail.model_copy(update={"removed": removed}), some
