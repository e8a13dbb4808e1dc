"""The signs that a mail answers one of the gateway's answer mails (R-3.1), and that a program wrote
that answer (R-1.7), for `gateway.smtp.automail`: the answer mail's id in In-Reply-To or References,
its subject "… (SMS from +48 …)" inside a responder's, and the headers responders put on what they
send. Its own module: what names an answer mail, apart from the machine-mail rules' tables.
"""

from __future__ import annotations

from gateway.forwarded import REPLY_ID_MARK
from gateway.smtp.subjects import OWN_SUFFIX, sms_subject

# An out-of-office reply to one of the gateway's answer mails that carries none of the headers
# below (hosted responders, some Exchange setups): its subject is the responder's template around
# our answer's, whether or not it names that mail's id. Without this it became an SMS to the phone.
OOF_TO_ANSWER = "out-of-office reply (to the gateway's answer mail)"

# A program's answer to one of the gateway's answer mails whatever its subject: an Exchange "reply
# using a template" rule ("Thank you for your message"), a procmail autoresponder ("Re: …"),
# vacation(1). It names the answer mail's id as a person's Reply does, so the second sign is a header
# a person's mail does not carry (`RESPONDER_MARKS`). A phone that answers automatically ("I'm
# driving") and such a responder sent each other billed SMS until the identical-text rule stopped it.
AUTO_TO_ANSWER = "automatic reply (to the gateway's answer mail)"

PRECEDENCE_NAMES = ("precedence", "x-precedence")


def answers_our_answer(headers: dict[str, str], rest: str) -> bool:
    """An "<OOF word>: <subject>" (`rest`: what follows the colon) that a responder wrote to one of
    the gateway's answer mails. "… (SMS from +48 …)" is only ever the subject of our answer mails, and
    nobody types a responder's word before it: it is enough, as responders that leave In-Reply-To
    and References out exist too. The "SMS from +48 …" title is shorter and a person might write it,
    so it needs the answer mail's id beside it. A person's Reply to the answer says "Re: …" and goes;
    a person who types "Out of office: back on Monday" there names no such subject.
    """
    rest = rest.strip()
    if "(SMS from " in rest and OWN_SUFFIX.search(rest):
        return True
    return rest.startswith("SMS from ") and sms_subject(rest) == "" and names_answer_mail(headers)


def names_answer_mail(headers: dict[str, str]) -> bool:
    """In-Reply-To or References names one of the gateway's answer mails (`<…sms-reply@…>`, as
    `gateway.conversations.answers` knows them)."""
    mark = f".{REPLY_ID_MARK}@"
    return any(mark in headers.get(name, "").casefold() for name in ("in-reply-to", "references"))


# Headers responders put on their answers and a person's mail does not carry: Exchange's inbox-rule
# loop header, procmail's X-Loop, vacation(1)'s Precedence: bulk. X-Auto-Response-Suppress is not
# one: Outlook puts it on persons' mails, and a person's Reply to an answer mail must reach the phone.
RESPONDER_MARKS = ("x-ms-exchange-inbox-rules-loop", "x-loop")


def responder_marked(headers: dict[str, str]) -> bool:
    if any(name in headers for name in RESPONDER_MARKS):
        return True
    return any(headers.get(name, "").strip().lower().startswith("bulk") for name in PRECEDENCE_NAMES)
