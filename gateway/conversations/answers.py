"""A mail that answers a conversation becomes just the answer on the phone, without the subject.

R-1.3 puts the subject before every SMS. When the user presses Reply on a reply mail, though, the
subject is "Re: Spotkanie": the phone would read "Re: Spotkanie: OK, see you", while the person
holding it only wrote to the user and expects the answer, as in any SMS thread. So a mail is an
answer when it names one of our reply mails in In-Reply-To/References, or when every phone it goes
to has a live conversation with this user; its subject is dropped when, without its reply
prefixes, it is empty, the conversation's subject, or our reply's "SMS from …" title (also after an
older topic, when the mail names one of our reply mails). A subject the user changed is content and
is sent as usual; the quote below the answer is cut by textclean.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway import forwarded
from gateway.config import Config
from gateway.conversations.numbers import display
from gateway.conversations.repo import ConversationsRepo
from gateway.forwarded import reply_title, reply_topic
from gateway.smtp.intake import MailText
from gateway.store.db import Store

SUBJECT_DROPPED = "subject not sent (an answer in a conversation)"


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def names_our_reply(mail: MailText) -> bool:
    """In-Reply-To or References carry the Message-ID of a reply mail the gateway sent."""
    mark = f".{forwarded.REPLY_ID_MARK}@"
    return any(mark in ref for ref in mail.thread)


def as_answer(
    store: Store, cfg: Config, *, user_email: str, numbers: Sequence[str], mail: MailText
) -> MailText:
    """The mail with its SMS text reduced to the body when it answers a conversation, else unchanged.

    Reads the conversations outside any transaction: the choice only shapes the text, and the
    acceptance write that follows records the conversation as usual.
    """
    if not mail.body or not mail.subject or not numbers:
        return mail
    topic = reply_topic(mail.subject)
    ours = names_our_reply(mail)
    repo = ConversationsRepo(store.db, store.clock)
    now = store.clock()
    for number in numbers:
        found = repo.find_live(number, user_email, now, cfg.replies.window_seconds)
        if found is None:
            return mail
        conv, live = found
        if not ours and not live:
            return mail
        title = reply_title(display(conv.phone))
        earlier = reply_topic(conv.subject or "")
        known = (earlier, title, f"{earlier} ({title})")
        # Reply on an older reply mail of this phone: its subject is that mail's, as we wrote it
        # ("<topic> (SMS from <this phone>)"), though the conversation has moved on to a new topic.
        untouched = ours and _same(topic[-len(title) - 2 :], f"({title})")
        if topic and not untouched and not any(_same(topic, k) for k in known if k):
            return mail
    removed = [r for r in mail.removed if not r.startswith("subject cut")] + [SUBJECT_DROPPED]
    return mail.model_copy(update={"text": mail.body, "removed": removed})
