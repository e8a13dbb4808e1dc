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
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

import structlog

from gateway.conversations import loopguard

log = structlog.get_logger(__name__)

REFUSAL = (
    "550 5.7.1 Not sent: looks like a mail loop: the same text went from you to {phone} {rounds} times"
    " within {span:g} minutes, each within {fast:g} minutes of the phone's same answer; if a program"
    " writes these mails, mark them Auto-Submitted: auto-replied (RFC 3834) or stop the phone's"
    " auto-reply; if you write them, change the words"
)


def refusal(conn: sqlite3.Connection, sender: str, texts: Mapping[str, str], now: float) -> str | None:
    """The 550 for a mail from `sender` whose SMS to each number is `texts[number]` (as planned), when
    it is the next round of a loop with one of them; else None."""
    for number, text in texts.items():
        if loopguard.looping(conn, number, sender, text, now):
            log.warning("smtp.loop_refused", sender=sender, rounds=loopguard.ROUNDS)  # no number
            return worded(number)
    return None


def worded(phone: str) -> str:
    return REFUSAL.format(
        phone=phone,
        rounds=loopguard.ROUNDS,
        span=loopguard.SPAN_SECONDS / 60,
        fast=loopguard.FAST_SECONDS / 60,
    )
