"""A mail's subject as the SMS puts it before the text (R-1.3), and what its prefixes say: a Reply
("RE:", "Odp:", "AW:") or a forward ("FW:", "PD:"), which the reply rules read
(gateway.conversations.answers)."""

from __future__ import annotations

import re

# Reply and forward prefixes of mail programs: Re/Odp/AW/SV/VS/Antw/RIF answer, Fw/Fwd/PD/TR/WG forward;
# RE[2]: and Re(2): count. The colon is required: "Return", "Trasa: …" and "PDF: …" are words.
_REPLY_WORDS = ("re", "odp", "aw", "sv", "vs", "antw", "rif")
_FORWARD_WORDS = ("fw", "fwd", "pd", "tr", "wg")
# Read as reply prefixes only where a Reply's topic is matched to its conversation (gateway.forwarded
# `reply_topic`), never taken off an SMS's subject: "Ref: FV/2026/11" is a topic there.
_TOPIC_REPLY_WORDS = ("r", "réf", "ref")


def _prefix(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"^\s*({'|'.join(words)})\s*(?:\[\d+\]|\(\d+\))?\s*:\s*", re.IGNORECASE)


_PREFIX = _prefix(_REPLY_WORDS + _FORWARD_WORDS)
# The tag a company's mail server puts before the subject of mail from outside (Exchange's "[EXTERNAL]",
# "[EXT]", Polish "[ZEWNĘTRZNA]", "EXTERNAL:"): it cost the 30 characters of the topic on the phone,
# which learns nothing from it. Only these words: another tag ("[Ticket#123]", "[ACME]") says something.
_OUTSIDE = (
    r"(?:external|extern|ext|zewn[eę]trzn[aey]|zewn)(?:[ -](?:e-?mail|mail|sender|message|wiadomo[sś][cć]))?"
)
_EXTERNAL_TAG = re.compile(
    rf"^\s*(?:\[\s*{_OUTSIDE}\s*\]|\(\s*{_OUTSIDE}\s*\)|\*+\s*{_OUTSIDE}\s*\*+|(?:external|zewn[eę]trzn[aey])\s*:)\s*",
    re.IGNORECASE,
)
REPLY_PREFIX = _prefix(_REPLY_WORDS + _TOPIC_REPLY_WORDS)
# What the gateway's answer mails put in a subject: "(SMS from +48 …)" after the topic, or the whole
# title of an answer without a topic or of a fallback mail ("SMS from +48601123456 to 7355 (no
# conversation)"). On the phone it names the phone itself.
OWN_SUFFIX = re.compile(r"\s*\(SMS from \+?[0-9][0-9 ]{2,}\)\s*$")
# What a title says for an MO whose source the SMSC left empty (`sms_from`).
UNKNOWN_SOURCE = "an unknown number"
_OWN_TITLE = re.compile(
    rf"^SMS from (?:\+?[0-9][0-9 ]{{2,}}|{UNKNOWN_SOURCE})(?: to \+?[0-9][0-9 ]*(?: for \S+)?(?: \(.*\))?)?$"
)


def sms_from(source: str) -> str:
    """The start of an answer mail's title. An MO without a source (or blanks alone) read "SMS from  to
    +48…", as if a word were missing, rather than saying the number is unknown."""
    return f"SMS from {source.strip() or UNKNOWN_SOURCE}"


def without_outside_tag(subject: str) -> str:
    """The subject without the outside-mail tags before it ("[EXTERNAL] RE: x" → "RE: x"): the tag
    is the mail server's, and says nothing of whether the mail is new, a Reply or a forward."""
    while (m := _EXTERNAL_TAG.match(subject)) is not None:
        subject = subject[m.end() :]
    return subject


def first_prefix(subject: str) -> str | None:
    """The first reply/forward prefix of a subject, lowered ("re", "fwd"), or None; behind an
    outside-mail tag too: "[EXTERNAL] RE: x" is a Reply, whose quote the reply rules must know."""
    subject = without_outside_tag(subject)
    m = _PREFIX.match(subject) if ":" in subject else None  # every prefix ends in a colon
    return m.group(1).casefold() if m else None


def is_reply_subject(subject: str) -> bool:
    return first_prefix(subject) in _REPLY_WORDS


def is_forward_subject(subject: str) -> bool:
    return first_prefix(subject) in _FORWARD_WORDS


def sms_subject(subject: str) -> str:
    """The subject as the phone reads it before the text: "RE: Zamówienie 123" and "PD: Re:
    Przypomnienie o: …" lost the topic's end to their prefixes within the 30 characters; a Reply to
    our answer mail ("RE: Re: Spotkanie (SMS from +48 601 …)") is left with the topic alone. A tag
    marking mail from outside goes as well, before or after them ("RE: [EXTERNAL] Awaria")."""
    # The patterns are tried only on a subject holding what each needs (a colon, our words): most
    # subjects hold neither, and a search tries every position of the subject to learn it.
    for _ in range(2):  # "RE: Re: <topic> (SMS from …)": prefixes, our suffix, prefixes again
        while (
            m := (_PREFIX.match(subject) if ":" in subject else None) or _EXTERNAL_TAG.match(subject)
        ) is not None:
            subject = subject[m.end() :]
        if "(SMS from " in subject:
            subject = OWN_SUFFIX.sub("", subject)
    subject = subject.strip()
    return "" if subject.startswith("SMS from ") and _OWN_TITLE.match(subject) else subject
