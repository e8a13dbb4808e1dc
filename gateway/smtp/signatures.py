"""Signatures and sign-offs at the end of a mail body (R-1.3), for gateway.smtp.textclean: the lines
from which everything below is a signature ("-- ", "Sent from my iPhone" above nothing but a name,
contact details or a disclaimer), a short "Pozdrawiam" / "Regards" block closing the text (with the
disclaimer below it, if any), and a one-line "--Bob". A list written with "-- " items or ending the
text is the person's text, a postscript below the name is written to be read, and so is what a
person typed below a phone's footer (`gateway.smtp.footers`): they stay.
"""

from __future__ import annotations

import re

from gateway.smtp.footers import (
    ANY_DEVICE,
    IMAGE,
    KNOWN_FOOTER,
    LIST_RULE,
    MAY_BE_SENTENCE,
    RULE,
    SHORT_ANSWERS,
    is_contact_line,
    is_name_line,
    is_signature_name,
    notice_start,
    says_something,
    short_notice_lines,
)
from gateway.smtp.notices import cut_notice
from gateway.smtp.numbershapes import contact_details, has_contact, holds_number
from gateway.smtp.signofftail import NAMED_SIGN_OFF, is_banner, is_company_notice, kept_below, sign_off_lines
from smsc.graphemes import visible

SIGNATURE = "signature"

# A name as a signature gives it: up to three capitalised words ("Greg", "Jan Kowalski", "Anna K.").
# Possessive runs (*+): with backtracking a sign-off word and 40,000 spaces took seconds (quadratic).
_NAME = r"[A-ZĄĆĘŁŃÓŚŹŻ][\w.'-]*+(\s+[A-ZĄĆĘŁŃÓŚŹŻ][\w.'-]*+){0,2}"
# A name after "--" as people sign so: titles before it ("-- mgr inż. Jan Kowalski", "-- Dr hab. Jan
# Kowalski"), a company ("-- Jan Kowalski - ACME", ", ACME Sp. z o.o."), a phone ("--Jan 601 123 456")
# or a smile ("-- Ania :)") after it; or a phone's footer ("-- Sent from my iPhone").
_COMPANY = r"\s*+[-–,|]\s*+[A-ZĄĆĘŁŃÓŚŹŻ0-9][\w.&'-]*+(\s+[A-ZĄĆĘŁŃÓŚŹŻ][\w.&'-]*+|\s+(z|o\.o\.|i|&))*+"
_AFTER_NAME = rf"({_COMPANY}|\s++\+?\(?\d(?:[ ()./-]*+\d){{6,}}+|\s*+[:;]-?[)D(P])?"
_TITLES = r"((?i:mgr|inż|dr|hab|prof|lek|doc)\.?\s+){0,3}+"
_DASH_NAME = _TITLES + _NAME + _AFTER_NAME + "|" + KNOWN_FOOTER.pattern.removeprefix("^")

# Lines from which everything below is a signature. "-- " loses its space in many clients and in HTML
# conversion, so a bare "--" counts too, but only above what could be a signature block: a person
# writes it as a separator too ("Agenda:\n--\n1. budżet"; `cut_signature`). An app's or a phone's
# footer only above nothing but signature material (`_Measures.footer_ends_text`).
SIGNATURE_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (SIGNATURE, re.compile(r"^--\s*$")),
    (SIGNATURE, KNOWN_FOOTER),
    (SIGNATURE, ANY_DEVICE),
    (SIGNATURE, re.compile(r"^\{EMAILSIGNATURE\}$")),
    # "-- Greg": the delimiter and a name on one line, capitalised words only: "-- Sala 204 zamiast 101"
    # is the person's line, and all below it went.
    (SIGNATURE, re.compile(rf"^-- ?({_DASH_NAME})$")),
)

_SIGNATURE_ANY = re.compile("|".join(f"(?:{p.pattern})" for _, p in SIGNATURE_STARTS))

# Sign-off lines ("Pozdrawiam," / "Z poważaniem," / "Best," + name, title, phone). Cut only when something
# was written above and a short block of short lines follows: a longer text with such a word stays.
_SIGN_OFF_PHRASE = (
    r"(pozdrawiam( serdecznie| cieplutko| gorąco| wszystkich)?|serdecznie pozdrawiam"
    r"|(dziękuję|dziękujemy|dzięki)(,| i) pozdrawiam( serdecznie)?|z pozdrowieniami"
    r"|serdeczne pozdrowienia|pozdrowienia|pozdr|z poważaniem|z wyrazami szacunku"
    r"|łączę (pozdrowienia|wyrazy szacunku)|best regards|kind regards|warm regards|regards|best wishes|br"
    r"|thanks (and|&) (best |kind )?regards|mit freundlichen grüßen|(viele |liebe )?gr(ü|ue?)(ß|ss)e?"
    r"|(all the )?best|(yours )?sincerely|cheers|cordialement|saludos|do usłyszenia|ściskam|buziaki)"
)
# Typed without Polish letters too ("Z powazaniem", "Dziekuje i pozdrawiam", "Lacze pozdrowienia"):
# each Polish letter of the phrases matches its plain letter as well ("[ęe]").
_PLAIN_LETTER = dict(zip("ąćęłńóśźż", "acelnoszz", strict=True))
_SIGN_OFF_PHRASE = re.sub("[ąćęłńóśźż]", lambda m: f"[{m[0]}{_PLAIN_LETTER[m[0]]}]", _SIGN_OFF_PHRASE)
# A company's bilingual sign-off is two phrases on one line: "Pozdrawiam / Best regards",
# "Z poważaniem | Kind regards".
SIGN_OFF = re.compile(
    rf"^(?i:{_SIGN_OFF_PHRASE}([\s,.!]*+[/|]\s*+{_SIGN_OFF_PHRASE})?)"
    rf"[\s,.!-]*+({_NAME})?[\s,.!]*+$"
)
SIGN_OFF_MAX_LINES = 8
SIGN_OFF_MAX_WIDTH = 100
# A company signature often runs longer (name, title, company, street, town, phone, mobile, fax,
# web: 9 lines): up to this many lines when two of them are contact details, which a text the person
# wrote below a sign-off word seldom is.
SIGN_OFF_MAX_CONTACT_LINES = 14
# Items of a list ("- mleko", "1. Serwer", "• sala 204"): a signature has none, a text may end with them.
_BULLET = re.compile(r"^([-*•·–+]\s|\d{1,2}[.)]\s)")
# A "-- Name" line followed by another "-- ..." line is a list the person wrote, not a signature.
_LIST_ITEM = re.compile(r"^--\s?\S")
# A one-line sign-off at the very end: "--Bob", "---/dev/il", "~Danielle": a name or a path after the
# dashes, not whatever follows them ("--> sala 204", "-- 50 zł netto", "--- przerwa ---" were cut).
# So do a nickname after dashes with no space ("--jan", not "--tak") and a web address ("-- www.acme.pl").
_NICK = r"(?!(" + "|".join(sorted(SHORT_ANSWERS)) + r")$)[a-ząćęłńóśźż]{2,15}"
_DASH_SIGN_OFF = re.compile(
    rf"^(-{{2,3}}\s?({_DASH_NAME}|/[\w./-]{{1,30}}|(www\.|https?://)\S++)|--{_NICK}|~\s?{_NAME})$"
)

# The first three characters, ASCII-lowercased, of every line beginning with a letter that one of the
# three patterns of `may_open_signature` can match. A first line that starts otherwise cannot open a
# signature, and a look here costs a quarter of the three matches (run for every mail, by
# `textclean.only_signature`). Lines beginning "-", "~" or "{", or with a character beyond ASCII in
# their first three (re's IGNORECASE reads "ſ" as "s"), take the full check. "BR" is a sign-off alone
# on its line, or followed by spaces, punctuation or a name's capital ("BR,Anna"): "br" and "br" with
# any third character pass. tests/test_signature_heads.py derives the heads from the patterns and
# names the ones to add when a pattern changes.
_HEADS = frozenset(
    (
        *"all bes bez buz che con cor dow dzi ges get gru hol kin lac lie man mfg mil mit ple pob".split(),
        *"pom poz pzd reg sal sci sen ser sin tha thi thx uzy vie vir von war wia wol wys you zan".split(),
        *("ta ", "z p", "z w", "do ", "br", "lg", "vg"),
        *(f"{two}{chr(c)}" for two in ("br", "lg", "vg") for c in range(128)),
    )
)


def is_signature_line(text: str) -> bool:
    """Whether a stripped line starts a signature (everything below it is one)."""
    return _SIGNATURE_ANY.match(text) is not None


def may_open_signature(line: str) -> bool:
    """Whether `cut_signature` can cut a block that begins with this stripped line: a signature
    line, a sign-off line or a one-line "--Bob". A body whose first line is none of them cannot be
    all signature (`textclean.only_signature`), which then needs no cut to tell."""
    head = line[:3]
    if head.isascii() and head.lower() not in _HEADS and head[:1] not in "-~{":
        return False  # nearly every mail's first line: no regex is run
    return (
        _SIGNATURE_ANY.match(line) is not None
        or SIGN_OFF.match(line) is not None
        or _DASH_SIGN_OFF.match(line) is not None
        or NAMED_SIGN_OFF.match(line) is not None
    )


def cut_signature(
    lines: list[str],
    removed: list[str],
    *,
    bare: bool = True,
    reply: bool = False,
    own: bool = True,
    sender: str = "",
) -> list[str]:
    """The lines without their signature: from a signature line down, else a closing sign-off block
    (only when something was written above it and it is short; see `_sign_off_start`), else a
    one-line "--Bob", else a notice no sign-off stands above (`notices.cut_notice`). RFC 3676's "-- "
    (with its space: `textclean.clean_body` keeps that line as it is) always starts a signature; a
    bare "--" only when what is below it passes the sign-off block's guards, an app's or a phone's
    footer only above nothing but signature material (`_Measures.footer_ends_text`), and either only
    when `bare`: false below a cut at either, true below one at "-- ", so that a bare "--" above a
    list's footer is judged again against what is left above that cut. A known footer
    (`footers.KNOWN_FOOTER`) with the person's text below it goes alone: "Sent from my iPhone\n\nTak"
    sends "Tak". In a `reply` (a quote was cut below the text) a known footer opening the text above
    one line of a name's or a contact's shape goes alone too: that line is the answer typed below
    the footer ("Pasuje", "601 123 456"), not a signature. Without `own` a short sentence below the
    name is signature too (`signofftail.kept_below`), and a notice is not looked for. `sender`: the From
    header, whose own company signature goes with no sign-off above it (`notices.cut_notice`)."""
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    measures: _Measures | None = None
    footers: list[int] = []  # known footers with the person's text below them
    answer = _answer_below_footer(lines, last) if reply and bare else None
    for i, line in enumerate(lines):
        text = line.strip()
        if not is_signature_line(text) or _in_list(lines, i):
            continue
        dashes = text == "--" and not line.endswith(" ")
        known = not dashes and KNOWN_FOOTER.match(text) is not None
        if dashes or known or ANY_DEVICE.match(text):
            # A bare "--": the delimiter that lost its space, or the person's separator ("Agenda:\n--\n
            # 1. budżet\n2. plan"). Cut as a sign-off block is, if at all: judged against all the
            # text below it, and not again above a cut at one such line further down (30,000 such
            # lines would each be measured again after each cut). A footer: a phone's or app's line,
            # or a sentence ("Wysłane z mojego prywatnego adresu.\nJutro …"), with the person's reply
            # typed below it ("Sent from my iPhone\n\nTak"): only signature material below. One
            # that failed was judged against all that is below it, so not again above a later cut.
            if known and answer == i:
                footers.append(i)
                continue
            if bare and i == last and not dashes:
                removed.append(SIGNATURE)  # a footer ending the text: most mails from a phone
                return cut_signature(lines[:i], removed, bare=False, own=own, sender=sender)
            if bare:
                measures = measures or _Measures(lines, last, i)
                if (
                    measures.signature_block(i, last, disclaimer_right_below=True)
                    if dashes
                    else measures.footer_ends_text(i, known=known, sentence=bool(MAY_BE_SENTENCE.match(text)))
                ):
                    removed.append(SIGNATURE)
                    return cut_signature(lines[:i], removed, bare=False, own=own, sender=sender)
            if known:
                footers.append(i)
            continue
        # Below a cut at "-- " a bare "--" above it is judged again, against what is left: it failed
        # against the footer ("Tekst\n--\nAnna\n-- \n<a 9-line list footer>"). Still linear: no other
        # line above this one was taken, so only bare "--" lines and footers can be, and then
        # measuring stops.
        removed.append(SIGNATURE)
        return cut_signature(lines[:i], removed, bare=bare, own=own, sender=sender)
    if footers:
        removed.append(SIGNATURE)
        dropped = set(footers)
        lines = [line for i, line in enumerate(lines) if i not in dropped]
        last = len(lines) - 1
        while last >= 0 and not lines[last].strip():
            last -= 1
    if last < 0:
        return lines
    ending = lines[last].strip()
    if _DASH_SIGN_OFF.match(ending) and any(x.strip() for x in lines[:last]) and not _in_list(lines, last):
        removed.append(SIGNATURE)
        return lines[:last]
    i = _sign_off_start(lines, last)
    if i is not None:
        removed.append(SIGNATURE)
        # A postscript or a sentence of the person's below the name is written to be read: it stays.
        return lines[:i] + kept_below(lines, i, last, own=own)
    return cut_notice(lines, removed, SIGNATURE, kept_above=SIGN_OFF.match, sender=sender) if own else lines


def _answer_below_footer(lines: list[str], last: int) -> int | None:
    """The line of a known footer that opens the text when only one line stands below it and that
    line has a name's or a contact's shape: in a reply, the answer typed below the footer of the
    reply ("Sent from my iPhone\n\nPasuje\n\n> ..." was refused as holding no new text), not a
    sign-off ("Pozdrawiam")."""
    filled = [j for j in range(last + 1) if lines[j].strip()]
    if len(filled) != 2 or not KNOWN_FOOTER.match(lines[filled[0]].strip()):
        return None
    below = lines[filled[1]].strip()
    answers = not SIGN_OFF.match(below) and (is_name_line(below) or is_contact_line(below))
    return filled[0] if answers else None


def _sign_off_start(lines: list[str], last: int) -> int | None:
    """The first line of a closing sign-off block, if any: a sign-off line with something written
    above it, followed by at most `SIGN_OFF_MAX_LINES` short lines (`SIGN_OFF_MAX_CONTACT_LINES` when
    they hold contact details), none of them list items, up to the end or up to the first long
    paragraph. A long paragraph below a signature is its disclaimer, which goes with it ("Treść tej
    wiadomości jest poufna…", two languages, 600 characters: 8 UCS-2 parts for "Spotkanie o 10:00.");
    right below the sign-off word, with no name between, it is the person's text and nothing is cut.

    One pass each way over the lines, then constant work per sign-off line: a body of 50,000
    "Regards" lines must not be measured 50,000 times."""
    first = next((j for j in range(last + 1) if lines[j].strip()), last + 1)
    # Most mails have no sign-off line below their first: nothing is measured (8 µs a one-line mail).
    starts = sign_off_lines(lines, first + 1, last, SIGN_OFF)
    if not starts:
        return None
    measures = _Measures(lines, last, starts[0])
    return next((i for i in starts if measures.signature_block(i, last, disclaimer_right_below=False)), None)


class _Measures:
    """Counts over the lines up to `last`, made in one pass each way, so that each candidate start
    of a signature block is judged in constant time. Disclaimers are looked for from line `first`
    down, the first candidate: the text above it is never below one."""

    def __init__(self, lines: list[str], last: int, first: int) -> None:
        # Counts of non-empty lines, contact lines, lines with a long number (a company's register,
        # account or hours: a long signature's, but no contact details) and list items before each index.
        filled, contact, numbered, bullets = [0], [0], [0], [0]
        # The first line of the paragraph holding each line, and the first long line of text at or after
        # each.
        para = list(range(last + 2))
        for j in range(last + 1):
            text = lines[j].strip()
            filled.append(filled[-1] + bool(text))
            contact.append(contact[-1] + (has := bool(text and has_contact(text))))
            numbered.append(numbered[-1] + (has or bool(text and holds_number(text, has))))
            bullets.append(bullets[-1] + bool(text and _BULLET.match(text)))
            if text and j > 0 and lines[j - 1].strip():
                para[j] = para[j - 1]
        # A disclaimer's paragraph reads as one (`footers.notice_start`), whatever its width; it
        # starts at its first line that is long or holds one of its words, and runs to its end.
        notice = [False] * (last + 1)
        j = para[first] if first <= last else last + 1
        while j <= last:
            k = j
            while k <= last and lines[k].strip():
                k += 1
            start = notice_start(lines[j:k], SIGN_OFF_MAX_WIDTH) if k > j else None
            if start is not None:
                notice[j + start : k] = [True] * (k - j - start)
            j = k + 1
        long_at, notice_at = [last + 1] * (last + 2), [last + 1] * (last + 2)
        for j in range(last, -1, -1):
            # A long line of contact details is a signature's (a company's strip of address, phones and
            # web on one line); without any, the person's, but for a company's banner or notice ("Join us
            # at Booth 42 …", "Projekt współfinansowany ze środków UE …"; a shop's domain is neither).
            texts = len(lines[j]) > SIGN_OFF_MAX_WIDTH and contact[j + 1] == contact[j]
            texts = texts and not is_banner(lines[j], domains=False) and not is_company_notice(lines[j])
            long_at[j] = j if texts else long_at[j + 1]
            notice_at[j] = j if notice[j] else notice_at[j + 1]
        self.filled, self.contact, self.numbered, self.bullets = filled, contact, numbered, bullets
        self.para, self.long_at, self.notice_at = para, long_at, notice_at
        self.lines, self.last, self.first = lines, last, first
        self.text_at: list[int] = []  # read when a footer is judged (`_read_below`)
        self.text_below_known_at: list[int] = []
        self.rfc_at: list[int] = []
        self.details_from: list[int] = []

    def signature_block(self, i: int, last: int, *, disclaimer_right_below: bool) -> bool:
        """Whether the lines below line `i` down to `last` may be a signature block: up to the first
        disclaimer (which goes with it), at most `SIGN_OFF_MAX_LINES` short lines
        (`SIGN_OFF_MAX_CONTACT_LINES` with two of contact details or long numbers), fewer than two of
        them list items. A long line that is no disclaimer is the person's text ("Pozdrawiam\nJan\n\n<a
        paragraph more>"), and so is a disclaimer right below, with no name between, unless
        `disclaimer_right_below`."""
        filled, numbered = self.filled, self.numbered
        end = self._block_end(i, last)
        block = filled[end] - filled[i + 1]
        if end <= last and not block and not disclaimer_right_below:
            return False  # a disclaimer right below "Pozdrawiam" is what the person wrote
        if self.long_at[i + 1] < end:
            return False  # a long line of the person's
        if self.bullets[end] - self.bullets[i + 1] >= 2:
            return False  # a list ending the text
        return block <= SIGN_OFF_MAX_LINES or (
            block <= SIGN_OFF_MAX_CONTACT_LINES and numbered[end] - numbered[i + 1] >= 2
        )

    def footer_ends_text(self, i: int, *, known: bool, sentence: bool = False) -> bool:
        """Whether nothing but signature material stands below footer line `i`, down to RFC 3676's
        "-- ", a mailing list's rule or a disclaimer (a long paragraph of the person's is none), which
        go with it: names, contact details, rules, other footers and sign-offs, and below a `known`
        footer a short notice too (`footers.is_short_notice`); or a company's signature, a name first
        (after its logo, with a title or a role: `footers.is_signature_name`) and two contact details
        (on one line or two: "ACME | ul. Prosta 1 | tel. …") in at most `SIGN_OFF_MAX_CONTACT_LINES`
        lines, no list. A line that may be a `sentence` ("Wysłane z mojego nowego konta.") ends the
        text only above nothing but a disclaimer: a sign-off below it is the person's, as the line
        itself is ("...\n\nPozdrawiam\nJan" sent nothing). The first call reads each line once."""
        if not self.text_at:
            self._read_below()
        stop = min(self._block_end(i, self.last), self.rfc_at[i + 1])
        if sentence:
            return self.filled[stop] == self.filled[i + 1]
        if (self.text_below_known_at if known else self.text_at)[i + 1] >= stop:
            return True
        filled, details, bullets = self.filled, self.details_from, self.bullets
        # The first line that says something: a logo or a rule above the name says nothing. The text
        # found is one.
        first = next(j for j in range(i + 1, stop) if says_something(self.lines[j].strip()))
        return (
            is_signature_name(self.lines[first].strip())
            and details[i + 1] - details[stop] >= 2
            and filled[stop] - filled[i + 1] <= SIGN_OFF_MAX_CONTACT_LINES
            and bullets[stop] - bullets[i + 1] < 2
        )

    def _read_below(self) -> None:
        """For each line from `first` down, the first line at or after it that is the person's text
        (below any footer, and below a known one, where a short notice is none), the first RFC 3676
        "-- " or a mailing list's rule ("____" above "Users mailing list", which a list's server
        appends below the sender's footer), and how many contact details stand from it down."""
        lines, n = self.lines, self.last + 1
        text_at, rfc_at, details_from = [n] * (n + 1), [n] * (n + 1), [0] * (n + 1)
        known_at = [n] * (n + 1)
        notice = short_notice_lines(lines, self.first, n, is_signature_line)
        for j in range(n - 1, self.first - 1, -1):
            text = lines[j].strip()
            texts = bool(text) and not _signature_material(text)
            text_at[j] = j if texts else text_at[j + 1]
            known_at[j] = j if texts and not notice[j] else known_at[j + 1]
            rfc_at[j] = j if lines[j] == "-- " or LIST_RULE.match(text) else rfc_at[j + 1]
            details_from[j] = details_from[j + 1] + sum(1 for _ in contact_details(text))
        self.text_at, self.rfc_at, self.details_from = text_at, rfc_at, details_from
        self.text_below_known_at = known_at

    def _block_end(self, i: int, last: int) -> int:
        """Where the block below line `i` ends: at the first disclaimer below it, else past `last`.
        The disclaimer starts where its paragraph does, or at its first line of a disclaimer's when
        line `i` is in it ("Pozdrawiam\nJan\nTreść tej wiadomości jest poufna…")."""
        notice, para = self.notice_at[i + 1], self.para
        return (para[notice] if para[notice] > i else notice) if notice <= last else last + 1


def _signature_material(text: str) -> bool:
    """Whether a stripped line below a footer may belong to a signature: another footer or signature
    line, a sign-off, a name, contact details, a rule, a logo, or nothing a phone shows (a zero-width
    space left of HTML); anything else is the person's text."""
    if not visible(text) or any(p.match(text) for p in (_SIGNATURE_ANY, SIGN_OFF, _DASH_SIGN_OFF)):
        return True
    return is_name_line(text) or is_contact_line(text) or bool(RULE.match(text) or IMAGE.match(text))


def _in_list(lines: list[str], i: int) -> bool:
    """Whether line `i` ("-- Sala 204") has a "-- ..." line next to it (the nearest non-empty one
    above or below): a list the person wrote, not a signature."""
    if not _LIST_ITEM.match(lines[i].strip()):
        return False  # the "--" delimiter itself, or a signature of another form
    # Walked by index from line `i`: a copy of the lines below and above it for each such line made
    # 25,000 "--A" lines (100,000 characters) take over a second on the event loop.
    below = next((t for j in range(i + 1, len(lines)) if (t := lines[j].strip())), "")
    above = next((t for j in range(i - 1, -1, -1) if (t := lines[j].strip())), "")
    return bool(_LIST_ITEM.match(below) or _LIST_ITEM.match(above))
