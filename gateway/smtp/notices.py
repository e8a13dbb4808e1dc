"""A disclaimer or a company's register footer that no sign-off word stands above (R-1.3), for
`gateway.smtp.signatures`: most company mail servers append one below whatever the person wrote, and
many people sign with their name alone. Sent whole, "Dostawa jutro o 9." cost 5 UCS-2 parts.

A paragraph reads as such a notice when it holds the words of three kinds of notice
(`footers.disclaimer_words`: confidentiality, the addressee, a ban on copying, ...) and runs to a
notice's length, or when it is a register entry (KRS or NIP with the share capital, the court or the
seat); ending the text, a line or two that says the message is confidential does too
(`_short_notice`). A person's own sentence with one or two such words ("Przesyłam poufne dane.") is
none, and a notice opening the text is kept: there is no text of the person's above it, and the mail
is not cut whole. From the notice down, what is footer (more notices, contact details, rules, taglines) goes;
a paragraph of the person's below it stays. The name block right above the notice ("Jan
Kowalski\nKierownik | ACME\ntel. …") is the signature it closes, and goes with it; without a notice,
such a block ending the text goes when it is the sender's company signature (a title or a company, two
contact details, the name of the mail's From; or, with fewer details, the From's display name over a
title, as Outlook's automatic signature gives it), unless the text above it points to someone to call.
A text of nothing but a notice, or of the sender's own block, is what `signatureonly` asks about.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from email.utils import parseaddr

from gateway.smtp.footers import (
    IMAGE,
    KNOWN_FOOTER,
    REGISTER_KIND,
    RULE,
    disclaimer_words,
    is_contact_line,
    is_disclaimer,
    is_signature_name,
    notice_start,
    says_something,
)
from gateway.smtp.numbershapes import contact_details
from gateway.smtp.signofftail import is_banner, is_company_notice, is_own_sentence
from gateway.smtp.taglines import is_tagline
from smsc.graphemes import visible

# A notice's kinds of words (`footers._DISCLAIMER_WORDS`) and its length: "Treść tej wiadomości jest
# poufna i prawnie chroniona…" holds five kinds in 300 characters. A confidentiality notice speaks to
# whoever got the mail by mistake (the addressee, "in error", "notify the sender"): a person's own
# "Proszę nie przekazywać dalej, poufne dane osobowe, rozpowszechnianie zabronione." does not.
_KINDS_MIN = 3
_LENGTH_MIN = 100
_RECIPIENT_KINDS = frozenset(
    kind
    for word in (
        "adresat",
        "odbiorca",
        "omyłkowo",
        "addressee",
        "intended for",
        "in error",
        "notify the sender",
    )
    for _, kind in disclaimer_words(word)
)
# A personal data clause (RODO) names the regulation or the controller and the data: two kinds only a
# notice writes together ("administratorem Pani/Pana danych osobowych jest ACME"), and asks nothing.
_RODO_KINDS = frozenset(
    kind for word in ("danych osobowych", "administratorem") for _, kind in disclaimer_words(word)
)
# A company's register footer: its KRS number, share capital or court, with its register kind and
# another (NIP, the seat). A person asking for an invoice names the NIP and the seat too, and asks.
_REGISTER = re.compile(r"(?i:\bkrs\b|kapitał\w* zakładow|sąd\w* rejonow|krajowego rejestru)")
_ASKS = re.compile(r"(?i:\b(?:proszę|prosze|poproszę|please|\w+(?:łem|łam))\b)")
_COMPANY_KIND = next(kind for _, kind in disclaimer_words("kapitał zakładowy"))
# A signature block right above the notice: up to this many lines, each no longer.
_BLOCK_MAX_LINES = 14
_BLOCK_MAX_WIDTH = 100
_BULLET = re.compile(r"^([-*•·–+]\s|\d{1,2}[.)]\s)")
# What `only_notices` tells was left out: the notice, and the signature block above it (the label of
# `signatures.SIGNATURE`, which imports this module).
NOTICE = "notice"
_SIGNATURE = "signature"


def is_strong_notice(text: str) -> bool:
    """Whether a paragraph (from its first line of a notice's) reads as a notice with no sign-off
    above it: a confidentiality notice (three kinds of a notice's words, one of them speaking to a
    wrong recipient, and a notice's length), a personal data clause or a register entry."""
    kinds = {kind for _, kind in disclaimer_words(text)}
    if REGISTER_KIND in kinds and _COMPANY_KIND in kinds:
        return _REGISTER.search(text) is not None and _ASKS.search(text) is None
    if _RODO_KINDS <= kinds:
        return _ASKS.search(text) is None  # "…i proszę pamiętać o RODO" is the person's own
    return len(kinds) >= _KINDS_MIN and len(text) >= _LENGTH_MIN and not _RECIPIENT_KINDS.isdisjoint(kinds)


# A notice a company's server appends in a line or two: the message said to be confidential, with the
# message named or the company's register beside it ("Treść tej wiadomości jest poufna i prawnie
# chroniona. ACME Sp. z o.o., KRS 0000123456.", "This email is confidential. ACME Ltd, registered in
# England No. 1234567."). Under `_LENGTH_MIN` and with no wrong recipient spoken to, it was no notice,
# and a signature above it stayed with it (4 UCS-2 parts instead of 1). Only where it ends the text,
# asking nothing (`_short_notice`): a person's "Ta wiadomość jest poufna, proszę…" stays.
_CONFIDENTIAL_KINDS = frozenset(
    kind
    for word in ("poufn", "prawnie chronion", "tajemnic", "confidential", "privileged", "vertraulich")
    for _, kind in disclaimer_words(word)
)
_ENTRY_KINDS = frozenset(
    kind for word in ("krs", "kapitał zakładowy", "registered office") for _, kind in disclaimer_words(word)
)
_MESSAGE = re.compile(r"(?i:\b(?:wiadomo\w+|e-?mail\w*|message|korespondencj\w+|treść|nachricht\w*)\b)")
_SHORT_LINES = 2
_SHORT_MAX = 300


def _short_notice(text: str) -> bool:
    """Whether a paragraph (from its first line of a notice's) that ends the text is a short notice:
    two kinds of a notice's words, one of them confidentiality, with the message named or a register
    entry, in at most `_SHORT_LINES` lines and `_SHORT_MAX` characters, asking nothing."""
    if text.count("\n") >= _SHORT_LINES or len(text) > _SHORT_MAX or "?" in text or _ASKS.search(text):
        return False
    kinds = {kind for _, kind in disclaimer_words(text)}
    if len(kinds) < 2 or _CONFIDENTIAL_KINDS.isdisjoint(kinds):
        return False
    return _MESSAGE.search(text) is not None or not _ENTRY_KINDS.isdisjoint(kinds)


def _addressed_notice(text: str) -> bool:
    """Whether a paragraph reads as a confidentiality notice or a personal data clause: what a company's
    server appends to each mail. A register entry alone is none here: under a subject ("Dane do
    faktury") a company's KRS, NIP and seat may be what the person sends."""
    kinds = {kind for _, kind in disclaimer_words(text)}
    if _RODO_KINDS <= kinds:
        return _ASKS.search(text) is None
    return len(kinds) >= _KINDS_MIN and len(text) >= _LENGTH_MIN and not _RECIPIENT_KINDS.isdisjoint(kinds)


# What an addressed notice cannot lack (`_addressed_notice`): a word of a kind in `_RECIPIENT_KINDS`, or
# the personal data a RODO clause names. Looked for as plain substrings first.
_ADDRESSED_WORDS = (
    *("adresat", "adressat", "odbiorc", "omyłkowo", "pomyłk", "błędu", "addressee", "intended"),
    *("in error", "notify the sender", "danych osobowych", "poufn", "confidential"),  # and `_short_notice`'s
)


def only_notices(lines: list[str], removed: list[str] | None = None, *, under_subject: bool = False) -> bool:
    """Whether a text is nothing but notices and their footer: a confidentiality notice or a personal
    data clause (`_addressed_notice`) and what goes with one below it (`_is_footer`), with nothing
    above it but the signature block it closes, a rule or a logo. `cut_notice` keeps a notice opening
    the text (nothing of the person's above it); under a subject it is what the mail server appended
    to a subject-only mail. "Dzień dobry,\nPozdrawiam serdecznie\n<notice>" has a greeting above.
    `under_subject` (the subject-only check of `gateway.smtp.intake`): a short notice (`_short_notice`)
    counts only below a signature block, since alone under a subject ("Hasło VPN": "Treść poufna i
    prawnie chroniona: hasło Xk7pq2, zmień je…") the line is the person's. Above a forward or a quote it
    counts alone too: the forwarded text, or no new text, is what the mail says.
    `removed`, when given, gets what such a text is made of: `_SIGNATURE` (a block above) and `NOTICE`."""
    if not any(len(line) >= 50 for line in lines):
        return False  # every notice has a long line: most short mails end here
    low = "\n".join(lines).lower()
    if not any(word in low for word in _ADDRESSED_WORDS):
        return False  # asked of each mail with a subject: the notice's words cost 55 µs a short mail
    paragraphs = [[x.strip() for x in lines[first:end]] for first, end in _paragraphs(lines)]
    for n, part in enumerate(paragraphs[:2]):
        start = notice_start(part, _BLOCK_MAX_WIDTH)
        if start is None:
            continue
        notice = "\n".join(part[start:])
        addressed = _addressed_notice(notice)
        if not addressed and not (_short_notice(notice) and n == len(paragraphs) - 1):
            continue
        head = [
            x for x in [*(x for above in paragraphs[:n] for x in above), *part[:start]] if says_something(x)
        ]
        if (head and not _is_signature_block(head)) or (under_subject and not (head or addressed)):
            return False
        if not all(_is_footer(below) for below in paragraphs[n + 1 :]):
            return False
        if removed is not None:
            removed += [_SIGNATURE, NOTICE] if head else [NOTICE]
        return True
    return False


def _is_signature_block(paragraph: list[str]) -> bool:
    """Whether a paragraph (stripped lines) is a signature block: a name first and block lines alone."""
    return len(paragraph) <= _BLOCK_MAX_LINES and _block_start(paragraph, 0, len(paragraph)) == 0


def _paragraphs(lines: list[str]) -> list[tuple[int, int]]:
    """The (first, past-last) line of each run of non-empty lines."""
    found: list[tuple[int, int]] = []
    j, n = 0, len(lines)
    while j < n:
        if not lines[j].strip():
            j += 1
            continue
        k = j
        while k < n and lines[k].strip():
            k += 1
        found.append((j, k))
        j = k
    return found


def _is_footer(paragraph: list[str]) -> bool:
    """Whether a paragraph below a notice is footer too: another notice, contact details, a rule, a
    logo, a phone's or an app's line, a tagline, a banner or a company's notice."""
    text = "\n".join(paragraph)
    if is_disclaimer(text) or is_strong_notice(text) or is_company_notice(text) or is_banner(text):
        return True
    if is_tagline(text):
        return True
    return all(
        is_contact_line(line) or RULE.match(line) or IMAGE.match(line) or KNOWN_FOOTER.match(line)
        for line in paragraph
    )


def _ends_text(lines: list[str], below: list[tuple[int, int]]) -> bool:
    """Whether the paragraphs `below` a notice are footer alone (`_is_footer`)."""
    return all(_is_footer([x.strip() for x in lines[first:end]]) for first, end in below)


def _is_block_line(text: str) -> bool:
    """Whether a stripped line may be in a signature block: short, no list item, no sentence."""
    return len(text) <= _BLOCK_MAX_WIDTH and not _BULLET.match(text) and not is_own_sentence([text])


def _block_start(lines: list[str], top: int, end: int) -> int:
    """The first line of the signature block that lines `top` up to `end` end with: from the first
    line of a name (`footers.is_signature_name`) down, all of them a block's; `end` when none."""
    if end - top > _BLOCK_MAX_LINES:
        top = end - _BLOCK_MAX_LINES
    start = end
    for j in range(end - 1, top - 1, -1):
        text = lines[j].strip()
        if not _is_block_line(text):
            break
        if is_signature_name(text):
            start = j
    return start


def cut_notice(
    lines: list[str], removed: list[str], label: str, *, kept_above: Callable[[str], object], sender: str = ""
) -> list[str]:
    """The lines without a notice that no sign-off stands above (`is_strong_notice`), the footer below
    it and the name block right above it. Not one opening the text (nothing of the person's above
    it), nor one right below a line `kept_above` names (a sign-off word with no name between: what
    stands below it is the person's, `signatures._sign_off_start`). `sender`: the mail's From header,
    decoded, whose own company signature ending the text goes too (`_cut_company_signature`)."""
    if not any(len(line) >= 50 for line in lines):
        return _cut_company_signature(lines, removed, label, sender)  # every notice has a long line
    paragraphs = _paragraphs(lines)
    # One pass: a mail of thousands of notices between the person's paragraphs was cut by a recursion
    # per notice, past Python's depth. Nothing of the person's stands above a line up to `shown`.
    shown = next((j for j, line in enumerate(lines) if visible(line)), len(lines))
    out: list[str] = []
    copied = n = 0  # the lines above `copied` are in `out` or cut
    while n < len(paragraphs):
        first, end = paragraphs[n]
        n += 1
        start = notice_start(lines[first:end], _BLOCK_MAX_WIDTH)
        if start is None:
            continue
        notice = "\n".join(x.strip() for x in lines[first + start : end])
        if not is_strong_notice(notice) and not (_short_notice(notice) and _ends_text(lines, paragraphs[n:])):
            continue
        at = first + start
        while at > first and (RULE.match(lines[at - 1].strip()) or IMAGE.match(lines[at - 1].strip())):
            at -= 1  # a rule or a logo above the notice is its
        prev = paragraphs[n - 2] if n >= 2 and paragraphs[n - 2][0] >= copied else None
        above = lines[at - 1] if at > first else (lines[prev[1] - 1] if prev else "")
        if kept_above(above.strip()):
            continue
        block = _block_start(lines, first, at) if at > first else at
        if block == first == at and prev:
            block = _block_start(lines, *prev)
            block = block if block < prev[1] else at
        if shown >= block:
            block = at  # the name alone above it: that is what the person sent
        if shown >= block:
            continue  # a notice opening the text is kept whole
        last = n
        while last < len(paragraphs) and _is_footer([x.strip() for x in lines[slice(*paragraphs[last])]]):
            last += 1
        out += [*lines[copied:block], ""]
        copied = paragraphs[last][0] if last < len(paragraphs) else len(lines)
        n = last
    if not out:
        return _cut_company_signature(lines, removed, label, sender)
    removed.append(label)
    return _cut_company_signature(out + lines[copied:], removed, label, sender)


# A company's automatic signature ends the text as a paragraph of its own: a name first and two contact
# details ("Jan Kowalski\nKierownik Logistyki\nACME Sp. z o.o.\ntel. +48 601 222 333\nwww.acme.pl").
_DETAILS_MIN = 2
# The text above a block that points to someone to call or write to: the block below is that person's
# details, sent on purpose ("Proszę zadzwonić do kierownika budowy…\n\nJan Kowalski\nKierownik budowy\n
# tel. …"), whoever sends the mail.
_POINTS_TO = re.compile(
    r"(?i:\b(?:za)?dzwo[nń]\w*|\b(?:za)?telefon\w*|\bkontakt\w*|\bcontact\w*|\bcall\w*|\bring(?:s|ing)?\b|\bphone\b)"
)
_NAME_END = re.compile(r"\s[|/–—(\[]|,|\s-\s")  # "Anna Nowak | ACME", "Jan Kowalski, ACME", "… - Kierownik"


def _folded_words(text: str) -> list[str]:
    """The words of a name or an address, case and diacritics folded: "Łukasz Żółć" is lukasz.zolc@."""
    plain = unicodedata.normalize("NFKD", text.casefold().replace("ł", "l"))
    return re.findall(r"[^\W\d_]{2,}", "".join(c for c in plain if not unicodedata.combining(c)))


def is_senders_name(name: str, sender: str) -> bool:
    """Whether a signature's name line ("Jan Kowalski | ACME") names the mail's sender (`sender`: the
    From header, decoded): its last word, the surname, and another of its words in the From's display
    name ("Kowalski Jan", "Jan Kowalski (ACME)"), or the surname in the address's local part
    ("jan.kowalski@", "jkowalski@"). A shared mailbox's (biuro@, "ACME Sprzedaż") names no one."""
    display, address = parseaddr(sender)
    words = _folded_words(_NAME_END.split(name, maxsplit=1)[0])
    if len(words) < 2 or len(surname := words[-1]) < 3:
        return False
    if _in_display_name(words, display):
        return True
    return surname in "".join(_folded_words(address.rpartition("@")[0]))


def _in_display_name(words: list[str], display: str) -> bool:
    """Whether a name's last word and another of its words (folded) are in the From's display name."""
    shown = set(_folded_words(display))
    return words[-1] in shown and any(word in shown for word in words[:-1])


def _displayed(name: str, sender: str) -> bool:
    """Whether a signature's name line names the From's display name ("Jan Kowalski" <demo@…>), the
    name Outlook puts at the top of the automatic signature it adds."""
    words = _folded_words(_NAME_END.split(name, maxsplit=1)[0])
    return len(words) >= 2 and len(words[-1]) >= 3 and _in_display_name(words, parseaddr(sender)[0])


def _names_title(block: list[str], details: list[int]) -> bool:
    """Whether a signature block (stripped lines) below the From's display name names a title or a
    company and nothing else of a note: a line right below the name with no contact details, and no
    digit outside contact details ("Jan Kowalski\nSala 204" says where, as the person's text)."""
    return (
        len(block) >= 2
        and not details[1]
        and not any(
            any(c.isdigit() for c in text) for text, n in zip(block[1:], details[1:], strict=True) if not n
        )
    )


def only_senders_block(lines: list[str], sender: str, subject: str) -> bool:
    """Whether a text is nothing but the sender's own signature block, as Outlook adds it to a new
    mail: a full name first that is the From's display name (`_displayed`), a title or a company
    (`_names_title`), short block lines and no sentence. Under a `subject` that points to someone to
    call ("Proszę o pilny kontakt") the details are what the phone needs: no."""
    block = [text for line in lines if (text := line.strip())]
    if not block or len(block) > _BLOCK_MAX_LINES or " " not in block[0] or not is_signature_name(block[0]):
        return False
    if _POINTS_TO.search(subject) or not _displayed(block[0], sender):
        return False
    details = [sum(1 for _ in contact_details(text)) for text in block]
    return all(_is_block_line(text) for text in block) and _names_title(block, details)


def _cut_company_signature(lines: list[str], removed: list[str], label: str, sender: str) -> list[str]:
    """The lines without the sender's company signature with no sign-off above it: the last paragraph,
    below the person's, a full name first (`footers.is_signature_name`) that is the sender's
    (`is_senders_name`), a line of a title or a company, two contact details, at most
    `_BLOCK_MAX_LINES` short lines and no sentence. Not when the line above ends with ":" ("Kontakt do
    kierowcy:") or the text above points to someone to call (`_POINTS_TO`), nor a name and phones alone
    ("Dzwoń do Jana.\n\nJan Kowalski\ntel. …\nkom. …"), nor another's name: then the details are what
    the person sends, as a colleague's or a technician's contact."""
    last = len(lines)
    while last and not lines[last - 1].strip():
        last -= 1
    first = last
    while first and lines[first - 1].strip():
        first -= 1
    if first == last or last - first > _BLOCK_MAX_LINES or not is_signature_name(lines[first].strip()):
        return lines
    if not is_senders_name(lines[first].strip(), sender):
        return lines
    above = next((text for j in range(first - 1, -1, -1) if (text := lines[j].strip())), "")
    if not above or above.endswith(":") or any(_POINTS_TO.search(line) for line in lines[:first]):
        return lines  # nothing of the person's above it, the details asked for or pointed to
    block = [line.strip() for line in lines[first:last]]
    if not all(_is_block_line(text) for text in block):
        return lines
    details = [sum(1 for _ in contact_details(text)) for text in block]
    if " " not in block[0] or all(details[1:]):
        return lines  # a full name, and a title or a company: a name and phones alone may be sent
    if sum(details) < _DETAILS_MIN and not (_displayed(block[0], sender) and _names_title(block, details)):
        return lines  # Outlook's signature with no phone names the From's display name and a title
    removed.append(label)
    return lines[:first]
