"""Cutting a decoded email body down to what its author meant to send by SMS (R-1.3): the end marker,
an account's cut-from phrases (the confidentiality clause its mail server appends), quoted earlier
messages (reply attributions, Outlook header blocks, forward separators, `>` quotes, in the
languages `gateway.smtp.quoteheads` knows), signatures and sign-offs, and wasted whitespace. The
rules are tables of regular expressions below, each with the label reported to the sender in
`removed`. Policy: what a person writes above a quote is the message and everything from the quote
down goes; a quote header at the very top with nothing above it is a forward, so its header is
dropped and the forwarded text is kept; a `>` quote with new text below it (bottom-posting) keeps
the new text. The gateway's own notes ("[Not matched: …]") in forwarded material are dropped: they
were written for staff, not a phone. The subject is made ready for the SMS here too (`sms_subject`):
without the reply and forward prefixes, which only eat its 30 characters on the phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.smtp import quoteheads
from gateway.smtp.charsets import normalize, unflow  # noqa: F401  # re-exported: callers import them here
from gateway.smtp.cutfrom import cut_at_phrase
from gateway.smtp.meetingtext import cut_meeting_text, opens_invite_header
from gateway.smtp.quoteheads import FORWARDED, QUOTED, attribution_end, closing, header_block_end  # noqa: F401
from gateway.smtp.quoteheads import separator as _separator
from gateway.smtp.quotelines import next_text as _next_text
from gateway.smtp.quotelines import quote_block_end as _quote_block_end
from gateway.smtp.quotelines import quoted as _quoted
from gateway.smtp.quotelines import quotes_another
from gateway.smtp.signatureonly import only_signature  # re-exported: callers import it here too
from gateway.smtp.signatures import SIGNATURE, cut_signature, is_signature_line  # SIGNATURE too
from gateway.smtp.textlinks import outlook_links
from gateway.smtp.typedrules import OUTLOOK_RULE, cut_rule_signature, drop_rules_above_quotes, rule_block_end
from smsc.graphemes import visible
from smsc.makers import maker


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The text to send and, in order, what was cut from it (human-readable labels, no duplicates)."""

    text: str
    removed: tuple[str, ...]
    # Nothing visible stood above the end marker line: the refusal of such a mail names the marker,
    # not quoted text or a signature, which it may not hold.
    all_below_end: bool = False
    # The account's cut-from phrase that began the body (nothing visible above it): its refusal names it.
    all_below_cut: str | None = None


FORWARD_HEADER = "forward header"
# A single attribution line ("Dnia … napisał:", "On … wrote:") opening the body with unquoted text
# below: a forward's header, or the person's own first line; told apart from a header block, which
# no one types (gateway.conversations.answers `no_new_text`).
ATTRIBUTION = "attribution line"
IMAGE_REF = "inline image reference"

# Cheap test that a line could start any quote header above (most lines of a mail cannot).
_CANDIDATE = re.compile(
    r"^([-_*]|(?i:on|w dniu|dnia|am|le|wiadomość|begin|początek)\b|(pon|wt|śr|czw|pt|sob|niedz|nd)\.,\s"
    r"|[^:]{0,14}:)|:$",
    re.IGNORECASE,
)

# Inline images that plain-text renderings leave behind: "[cid:image001.png@01D2...]", "[image: logo]".
_IMAGE_REF = re.compile(r"^\[?(cid:\S+|image:[^\]]*)\]?$", re.IGNORECASE)
# The same in brackets within a line: Outlook puts the logo of a signature after the name ("Jan
# Kowalski [cid:image001.png@01D9…]"), Gmail an inline picture amid the text ("Zobacz [image:
# wykres.png] i daj znać"). No "[" inside, so that a line of many "[image:" without a "]" is read once;
# the spaces before it only from where they start, or a run of 50,000 took seconds (quadratic).
_IMAGE_REF_INLINE = re.compile(r"(?<![ \t])[ \t]*+\[(?:cid:[^\s\[\]]+|image:[^\[\]]*)\]", re.IGNORECASE)

_SPACES = re.compile(r"[ \t\f\v]{2,}|[\t\f\v]")  # a lone space needs no rewrite (sub() is slow per match)


def clean_body(
    text: str,
    end_marker: str | None = "END",
    cut_from: tuple[str, ...] = (),
    *,
    invitation: bool = False,
    sender: str = "",
    quoting: bool = True,
) -> Cleaned:
    """Apply every cutting rule to a decoded body (any line ends) and collapse whitespace.

    `cut_from`: the account's phrases (`smsgw account set --cut-from`); the body ends above the first line
    that starts with one of them. `invitation`: the mail's calendar part gives the time and place, so
    Outlook's "When:/Where:" lines go (`meetingtext`). `sender`: the From, whose signature may go too.
    `quoting`: the mail may quote another (a reply or a forward: In-Reply-To or References, a "Re:" or
    "Fwd:" subject); a new mail's `>` lines are the person's text ("Progi rabatowe:\n> 1000 zł - 5%",
    "Klient napisał:\n> Towar uszkodzony.\nProszę oddzwonić."), and stay with what heads them, and so
    does a memo's header-like block under a line of dashes (`typedrules.rule_block_end`)."""
    removed: list[str] = []
    # RFC 3676's signature delimiter keeps its space: it always starts a signature, a bare "--" only
    # when a sign-off block could stand below it (`signatures.cut_signature`).
    lines = [
        line if line == "-- " else line.rstrip()
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    if not cut_from and (not end_marker or end_marker not in text) and (line := _one_plain_line(text, lines)):
        return _plain(line)  # what every rule leaves of it (`_one_plain_line`)
    if "-----BEGIN PGP SIGNED MESSAGE-----" in text:
        lines = _strip_pgp_armor(lines, removed)
    all_below_end = False
    if end_marker:
        above = _cut_end_marker(lines, end_marker, removed)
        all_below_end = len(above) < len(lines) and not visible("".join(above))
        lines = above
    all_below_cut = None
    if cut_from:
        above, phrase = cut_at_phrase(lines, cut_from, removed)
        if phrase is not None and not visible("".join(above)):
            all_below_cut = phrase
        lines = above
    answers = quoting or (">" in text and quotes_another(lines))  # a reply whose headers were lost
    quoting = answers or ">" not in text  # a body with no `>` reads the same either way
    lines = _unwrap_leading(lines, removed, quoting, answers)
    if FORWARD_HEADER in removed or ATTRIBUTION in removed:
        lines = quoteheads.drop_own_notes(lines, removed)
    lines = cut_meeting_text(text, lines, removed, invitation=invitation)
    lines, quoted = _cut_quote_below_note(lines, removed, quoting, answers, sender)
    lines = _drop_quoted_lines(lines, removed) if quoting else lines
    lines = cut_rule_signature(lines, removed, sender) if "-----" in text else lines
    # In a reply, a line typed below a phone's footer is the answer, whatever its shape.
    lines = cut_signature(lines, removed, reply=len(lines) < quoted, sender=sender)
    lines = _drop_image_refs(lines, removed)
    # After the cuts: the targets' budget goes to what is sent, not to a quote or a signature.
    lines = outlook_links(lines)
    kept = collapse(lines)
    # A body of invisible characters (a ZWNJ, a variation selector) is empty: the subject goes alone.
    return Cleaned(kept if visible(kept) else "", tuple(dict.fromkeys(removed)), all_below_end, all_below_cut)


# What a line's first character must not be for `_one_plain_line`: a separator or "--" signature,
# Outlook's rule, a `>` quote, a bracketed image or own note, a "~Name" or "{EMAILSIGNATURE}".
_SPECIAL_FIRST = frozenset("-_>[{~*")


def _one_plain_line(text: str, lines: list[str]) -> str | None:
    """The body's one line of text (blank lines around it), stripped, when no cutting rule changes
    it, else None; told by a few looks at it: most short mails are one such line, and the twelve
    rules cost some eight times `collapse` alone. A rule that could apply needs something looked for
    here: a colon at its end (an attribution), "<" (a link), "[" (an image reference), a first
    character of `_SPECIAL_FIRST`, a separator, Outlook's "When:" line, an image reference, a
    signature line or PGP armor (anywhere in the text); one line is never a header block (three
    fields), a quote below text, a sign-off below text or a meeting's join block (its signs follow
    its first line). The end marker and the account's cut-from phrases are the caller's to look for."""
    filled = [line for line in lines if line]  # rstripped: a blank line is empty
    if len(filled) != 1:
        return None
    line = filled[0].strip()
    if line[0] in _SPECIAL_FIRST or line[-1] == ":" or "<" in line or "[" in line:
        return None
    if ":" in line and (_separator(line) or opens_invite_header(line) or _IMAGE_REF.match(line)):
        return None
    return None if is_signature_line(line) or "-----BEGIN PGP SIGNED MESSAGE-----" in text else line


_make_cleaned = maker(Cleaned)  # `Cleaned(...)` without the frozen __init__'s cost (`_plain`)


def _plain(line: str) -> Cleaned:
    """`Cleaned(collapse(lines) if visible(...) else "", ())` of a body whose one line, stripped, is
    `line`, in fewer steps: the blank lines around it add nothing to `collapse` and its runs of
    spaces lie inside it; a first character from "!" to "~" (ASCII's graphic ones) is visible; and
    the frozen dataclass's __init__ set each field through `object.__setattr__` (some 1,000
    instructions a field), so the record is made by `smsc.makers.maker` (plain stores).
    tests/test_clean_body_one_line.py holds it to every rule run in full."""
    if "  " in line or "\t" in line or "\f" in line or "\v" in line:
        line = _SPACES.sub(" ", line)
    if not ("!" <= line[0] <= "~" or visible(line)):
        line = ""
    return _make_cleaned(line, (), False, None)


def collapse(lines: list[str]) -> str:
    """Runs of spaces become one space, runs of blank lines one blank line; the ends are stripped."""
    out: list[str] = []
    text = "\n".join(lines)
    # `_SPACES` finds nothing in a text without two spaces in a row, a tab, FF or VT (most mails),
    # and a search that finds nothing tries each position of the text.
    if "  " in text or "\t" in text or "\f" in text or "\v" in text:
        text = _SPACES.sub(" ", text)
    for line in text.split("\n"):
        line = line.strip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _strip_pgp_armor(lines: list[str], removed: list[str]) -> list[str]:
    """Inline PGP signing (RFC 4880 7): keep the signed text, drop the armor and the signature block."""
    out: list[str] = []
    signed = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line == "-----BEGIN PGP SIGNED MESSAGE-----":
            # Armor headers such as "Hash: SHA256" end at a blank line.
            i = next((k for k in range(i + 1, len(lines)) if not lines[k].strip()), len(lines))
            signed = True
        elif line == "-----BEGIN PGP SIGNATURE-----":
            while i < len(lines) and lines[i].strip() != "-----END PGP SIGNATURE-----":
                i += 1
            signed = False
        else:
            out.append(lines[i][2:] if signed and lines[i].startswith("- ") else lines[i])  # dash-escaping
        i += 1
    removed.append("PGP signature")
    return out


def _cut_end_marker(lines: list[str], marker: str, removed: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if line.strip() == marker:
            if any(rest.strip() for rest in lines[i + 1 :]):
                removed.append(f"text below {marker}")
            return lines[:i]
    return lines


def _unwrap_leading(
    lines: list[str], removed: list[str], quoting: bool = True, answers: bool = True
) -> list[str]:
    """Peel forward/quote headers that open the body: what follows them is what was forwarded. An
    attribution above a `>` quote in a mail that quotes none (not `quoting`) is the person's text."""
    for _ in range(10):
        i = _next_text(lines, 0)
        if i == len(lines):
            return lines
        if _separator(lines[i]):
            end = header_block_end(lines, _next_text(lines, i + 1)) or i + 1
            lines = lines[end:]
            removed.append(FORWARD_HEADER)
            continue
        if OUTLOOK_RULE.match(lines[i].strip()):
            end = rule_block_end(lines, i, answers)
            if end is None:
                return lines
            lines = lines[end:]
            removed.append(FORWARD_HEADER)
            continue
        end = header_block_end(lines, i, answers=answers)
        if end is not None:
            lines = lines[end:]
            removed.append(FORWARD_HEADER)
            continue
        attribution = attribution_end(lines, i)
        if attribution is not None:
            end, needs_quote = attribution
            after = _next_text(lines, end)
            if after < len(lines) and _quoted(lines[after]) and not quoting:
                return lines
            if after < len(lines) and _quoted(lines[after]):
                # Bottom-posting: the quote comes first, the new text after it.
                lines = lines[_quote_block_end(lines, end) :]
                removed.append(QUOTED)
                continue
            if needs_quote:
                return lines
            lines = lines[end:]
            removed.append(ATTRIBUTION)
            continue
        if all(_quoted(line) for line in lines if line.strip()):
            inner = [line[1:].removeprefix(" ") if _quoted(line) else line for line in lines]
            j = _next_text(inner, 0)
            if j < len(inner) and (_separator(inner[j]) or header_block_end(inner, j) is not None):
                lines = inner
                continue
        return lines
    return lines


def _cut_quote_below(
    lines: list[str], removed: list[str], quoting: bool = True, answers: bool = True
) -> list[str]:
    """Top-posting: from the first quote header below some text, everything goes; not an attribution
    above a `>` quote in a mail that quotes none (not `quoting`)."""
    seen_text = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if seen_text and not _quoted(lines[i]) and _CANDIDATE.search(line):
            label = _separator(line)
            cut = label is not None
            if not cut and OUTLOOK_RULE.match(line):
                cut = rule_block_end(lines, i, answers) is not None
                label = QUOTED
            if not cut and header_block_end(lines, i, answers=answers) is not None:
                cut, label = True, QUOTED
            if not cut:
                attribution = attribution_end(lines, i)
                if attribution is not None:
                    end, needs_quote = attribution
                    after = _next_text(lines, end)
                    quoted_next = after < len(lines) and _quoted(lines[after])
                    if quoted_next and not quoting:
                        i += 1
                        continue
                    if quoted_next and _has_own_text(lines[_quote_block_end(lines, end) :]):
                        # Inline reply: drop the attribution here, the `>` lines go later.
                        lines = lines[:i] + lines[end:]
                        removed.append(QUOTED)
                        continue
                    # Last in the text: the HTML quote it headed is gone already.
                    last = after >= len(lines) and closing(" ".join(line.strip() for line in lines[i:end]))
                    cut, label = quoted_next or not needs_quote or last, QUOTED
            if cut:
                start = i
                prev = i - 1
                while prev >= 0 and (not lines[prev].strip() or OUTLOOK_RULE.match(lines[prev].strip())):
                    prev -= 1
                start = prev + 1
                removed.append(label or QUOTED)
                return lines[:start]
        seen_text = seen_text or not _quoted(lines[i])
        i += 1
    return lines


def _cut_quote_below_note(
    lines: list[str], removed: list[str], quoting: bool, answers: bool, sender: str
) -> tuple[list[str], int]:
    """`_cut_quote_below`, and the length the signature cut compares with, when the text above the
    quote is no note of its own: a signature or a phone's tail ("Wysłane z iPhone'a") alone above a
    forward sent the subject alone; the forwarded text goes, as with nothing above. A note that points
    below ("FYI", "Poniżej numer klienta, zadzwoń dziś:", `points_below`) goes with the text below it,
    and is no header at the top: a Reply to our mail so written holds new text (`no_new_text`)."""
    cuts: list[str] = []
    peeled: list[str] = []
    above = _cut_quote_below(lines, cuts, quoting, answers)
    # As a reply's: a line typed below a phone's footer ("Sent from my iPhone\n\nPasuje") is a note.
    bare = len(above) < len(lines) and only_signature("\n".join(above), sender=sender)
    if bare and (kept := cut_signature(list(above), [], reply=True, sender=sender)) != above:
        bare = not visible("".join(kept))
    if bare or (len(above) < len(lines) and quoteheads.points_below(collapse(above))):
        rest = _unwrap_leading(lines[len(above) :], peeled, quoting, answers)
    if not peeled:
        removed.extend(cuts)
        return above, len(lines)
    rest = quoteheads.drop_own_notes(rest, peeled)
    removed.extend([SIGNATURE, *peeled] if bare else [QUOTED, *(n for n in peeled if n != FORWARD_HEADER)])
    below = _cut_quote_below(rest, removed, quoting, answers)
    return (below, len(rest)) if bare else ([*above, "", *below], len(above) + 1 + len(rest))


def _has_own_text(lines: list[str]) -> bool:
    """Whether new text (not a quote, not just a signature) follows an inline quote."""
    for line in lines:
        text = line.strip()
        if not text or _quoted(line):
            continue
        return not is_signature_line(text)
    return False


def _drop_quoted_lines(lines: list[str], removed: list[str]) -> list[str]:
    kept = [line for line in drop_rules_above_quotes(lines) if not _quoted(line)]
    if len(kept) != len(lines):
        removed.append(QUOTED)
    return kept


def _drop_image_refs(lines: list[str], removed: list[str]) -> list[str]:
    """Lines that are an image reference go; one within a line is cut out with the space before it
    (`collapse` then joins what stood around it), and a line left empty by that goes too."""
    kept: list[str] = []
    found = False
    for line in lines:
        if _IMAGE_REF.match(line.strip()):
            found = True
            continue
        if "[" in line and (cut := _IMAGE_REF_INLINE.sub("", line)) != line:
            found = True
            if not cut.strip():
                continue
            line = cut.rstrip()
        kept.append(line)
    if found:
        removed.append(IMAGE_REF)
    return kept
