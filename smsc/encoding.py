"""GSM 03.38 / UCS-2 text planning for outgoing SMS, and the UDH concat format.

This module owns every decision about how a text becomes SMS parts (SPEC R-1.4, R-1.5): the alphabet
(GSM 03.38 when every character has a code in the basic or extension table, or would have with its
typographic punctuation made plain, else UCS-2), what each
character costs, where the text is split (never inside an escape pair or a surrogate pair, for separate
SMS never inside a grapheme cluster such as a flag or an emoji with its skin tone, at a word boundary
only where that costs no extra part), how much is cut when the text needs more parts than allowed
(never inside a grapheme cluster: that end is one the phone shows), and the concatenation UDH.
`smsc.gsmalphabet` holds the GSM tables and the septets of a text; `smsc.decoding` turns received
user data back into text; `smsc.graphemes` says where clusters start. It is pure (no I/O, no
logging, no state) so that the SMTP side can plan parts without touching any link.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Literal

from smsc.base import Concat
from smsc.graphemes import Clusters, visible
from smsc.gsmalphabet import _ENCODE, _EXTENSION_CHARS, _NON_GSM, _NON_LATIN1_GSM, basic_septets
from smsc.makers import maker
from smsc.plainchars import PLAIN_PUNCTUATION, TRANSLIT, bullets, plain_punctuation


class Coding(enum.IntEnum):
    GSM7 = 0  # SMPP data_coding 0: one unpacked septet per octet, extension chars as 0x1B + code
    UCS2 = 8  # UTF-16BE


class EmptyText(ValueError):
    """Nothing to send (R-1.6): the caller refuses the mail instead of sending a blank SMS."""


@dataclass(frozen=True, slots=True)
class Part:
    text: str  # this part's text (Unicode)
    payload: bytes  # GSM7: unpacked septets incl. ESC pairs; UCS2: UTF-16BE bytes. No UDH.
    units: int  # septets (GSM7) or UTF-16 code units (UCS2) used


@dataclass(frozen=True, slots=True)
class Plan:
    coding: Coding
    parts: tuple[Part, ...]
    concatenated: bool  # the parts must carry a concat UDH ("concatenated" mode and more than one part)
    truncated: bool  # the text needed more than max_parts parts
    dropped: str  # the text that was cut off ("" if none)
    reason: str | None  # why UCS-2, e.g. "ą, ł forced UCS-2"; None for GSM7
    transliterated: bool  # transliteration replaced Polish letters
    plain_punctuation: bool  # typographic punctuation was made plain to keep the text GSM
    text: str  # the text actually sent (after NFC / transliteration / truncation)


Mode = Literal["concatenated", "separate"]
# Plan(...) and Part(...) by position, without their frozen __init__ (`smsc.makers`)
_made_plan, _made_part = maker(Plan), maker(Part)

SINGLE_LIMIT: dict[Coding, int] = {Coding.GSM7: 160, Coding.UCS2: 70}
PART_LIMIT: dict[Coding, int] = {Coding.GSM7: 153, Coding.UCS2: 67}  # with the 6-octet concat UDH

_SURROGATE = re.compile("[\ud800-\udfff]")
# Longest prefix ending in a breakable whitespace character; no-break spaces are excluded on purpose.
_BREAK = re.compile(r"(?s).*[^\S\u00a0\u2007\u202f]")
_BREAK_AT = re.compile(r"[^\S\u00a0\u2007\u202f]")  # one breakable whitespace character
# A cut text moves back to the end of a word at most this many characters: a longer "word" (a link,
# "xxxx…" filling the part) would be dropped whole where the part had room for most of it.
WORD_CUT_MAX = 30


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """Concat UDH with the 8-bit reference IE 0x00, including the UDHL octet."""
    if not 1 <= total <= 255 or not 1 <= seq <= total:
        raise ValueError(f"bad concat position {seq}/{total}")
    return bytes((5, 0x00, 3, ref & 0xFF, total, seq))


def parse_udh(udh: bytes) -> Concat | None:
    """Concat info from a UDH (starting with its UDHL octet); None if there is none or it is garbage."""
    if not udh:
        return None
    body = udh[1 : 1 + udh[0]]
    i = 0
    while i + 2 <= len(body):
        iei, iel = body[i], body[i + 1]
        data = body[i + 2 : i + 2 + iel]
        if len(data) < iel:
            return None
        if iei == 0x00 and iel == 3:
            ref, total, seq = data[0], data[1], data[2]
        elif iei == 0x08 and iel == 4:
            ref, total, seq = data[0] << 8 | data[1], data[2], data[3]
        else:
            i += 2 + iel
            continue
        # 23.040: a concat IE with seq 0 or seq > total is ignored, i.e. the message is shown as is.
        return Concat(ref, total, seq) if 1 <= seq <= total else None
    return None


def _measure(text: str, coding: Coding) -> tuple[bytes, Sequence[int]]:
    """Payload of the whole text and its cumulative unit counts."""
    if coding is Coding.GSM7:
        payload = text.translate(_ENCODE).encode("latin-1")
        if len(payload) == len(text):
            return payload, range(len(text) + 1)
        costs = (2 if ch in _EXTENSION_CHARS else 1 for ch in text)
    else:
        payload = text.encode("utf-16-be")
        if len(payload) == 2 * len(text):
            return payload, range(len(text) + 1)
        costs = (2 if ch > "\uffff" else 1 for ch in text)
    return payload, list(accumulate(costs, initial=0))


def _end(cum: Sequence[int], start: int, cap: int, clusters: Clusters | None = None) -> int:
    """End of the longest run of whole characters from `start` that fits `cap` units.

    With `clusters`, of whole grapheme clusters: the end moves back to the start of the cluster it
    would cut, unless that cluster alone is longer than `cap` (then it is cut where it must be).
    """
    end = bisect_right(cum, cum[start] + cap, start) - 1
    if clusters is None:
        return end
    cut = clusters.start(end, start)
    return cut if cut > start else end


def _count(cum: Sequence[int], start: int, cap: int, clusters: Clusters | None = None) -> int:
    """Fewest parts for text[start:]: greedy filling is optimal when characters cannot be divided."""
    n, parts = len(cum) - 1, 0
    while start < n:
        start, parts = _end(cum, start, cap, clusters), parts + 1
    return parts


def _bounds(
    text: str, cum: Sequence[int], cap: int, clusters: Clusters | None, budget: int | None = None
) -> list[tuple[int, int]]:
    """Split points: each part ends after its last whitespace if the rest still fits the greedy count.

    `clusters`: never inside a grapheme cluster (separate SMS, which no phone joins back).
    `budget`: the parts allowed instead of the greedy count (a cut text, whose part count is fixed, so
    that the word ends `_kept` found are kept).
    """
    n, start = len(text), 0
    if budget is None:
        budget = _count(cum, 0, cap, clusters)
    bounds = []
    while start < n:
        end = _end(cum, start, cap, clusters)
        budget -= 1
        if end < n and (word := _break(text, start, end, clusters)) is not None:
            if _count(cum, word, cap, clusters) <= budget:
                end = word
        bounds.append((start, end))
        start = end
    return bounds


def _break(text: str, start: int, end: int, clusters: Clusters | None) -> int | None:
    """Just after the last breakable whitespace of text[start:end], where a part may end instead of
    at `end`; None when it has none before `end`, or ending there would cut a grapheme cluster."""
    m = _BREAK.match(text, start, end)
    if m is None or m.end() >= end or (clusters is not None and clusters.splits(m.end())):
        return None
    return m.end()


def _word_end(text: str, start: int, end: int, clusters: Clusters | None) -> int:
    """`end` moved back to the part's last word end (`_break`), at most WORD_CUT_MAX characters: no
    word is longer, and a link or a run of digits keeps what fits of it."""
    word = _break(text, start, end, clusters)
    return end if word is None or end - word > WORD_CUT_MAX else word


def _kept(
    text: str, cum: Sequence[int], coding: Coding, mode: Mode, max_parts: int, cut: bool = False
) -> int:
    """How many characters fit into max_parts parts (all of them when the text fits and `cut` is
    false); in separate mode split as _bounds splits them, at grapheme clusters. Where the text is cut
    it ends at a cluster in both modes: the phone joins concatenated segments, but the cut is an end
    it shows, and the truncation notice quotes what follows it. For the same reason the cut ends at
    the last whitespace of the last part (R-1.4: the part count is fixed, so a whole word costs no
    part), and in separate mode, which no phone joins, every part ends so; only a last part with no
    whitespace at all is cut mid-word. `cut`: the text is a prefix of what must be sent, so its end is
    a cut even when all of it fits."""
    n, single = len(cum) - 1, SINGLE_LIMIT[coding]
    if cum[n] <= single and not cut:
        return n
    clusters = Clusters(text)
    separate = clusters if mode == "separate" else None
    cap = single if max_parts == 1 or mode == "separate" else PART_LIMIT[coding]
    if max_parts == 1:  # one part never carries a UDH, so it gets the full single-SMS room
        start, end = 0, _end(cum, 0, single, separate)
    else:
        start = end = 0
        for _ in range(max_parts):
            start, end = end, _end(cum, end, cap, separate)
            if end == n:
                break
        if end < n and separate is not None:  # cut: split again, every part ending at a word
            start = end = 0
            for i in range(max_parts):
                start, end = end, _end(cum, end, cap, separate)
                if i < max_parts - 1:
                    end = _word_end(text, start, end, separate)
    if end < n or cut:
        if end == n or _BREAK_AT.match(text, end) is None:  # not already at the end of a word
            end = _word_end(text, start, end, clusters)
    whole = clusters.start(end)
    return whole if whole > 0 else end


def _shown(ch: str) -> str:
    """A culprit as the sender can read it: itself, or by code and name when alone it would not show
    (a control, a format character) or would sit on the character before it (a combining mark)."""
    if ch.isprintable() and unicodedata.category(ch)[0] != "M":
        return ch
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def _reason(text: str, unfit: re.Pattern[str]) -> str:
    # Punctuation that could be made plain did not force UCS-2 beside another culprit: "ą", not "·, ą".
    found = list(dict.fromkeys(unfit.findall(text)))
    found = [ch for ch in found if ch not in PLAIN_PUNCTUATION and ch != "·"] or found
    return ", ".join(map(_shown, found[:3])) + " forced UCS-2"


def _assemble(
    text: str,
    measured: tuple[bytes, Sequence[int]],
    kept: int,
    coding: Coding,
    mode: Mode,
    rest: str,
    changed: tuple[bool, bool],
    max_parts: int,
    unfit: re.Pattern[str],
) -> Plan:
    """`changed`: (Polish letters transliterated, punctuation made plain)."""
    payload, cum = measured
    width = 1 if coding is Coding.GSM7 else 2
    dropped = text[kept:] + rest
    if kept < len(text):
        text, payload, cum = text[:kept], payload[: width * cum[kept]], cum[: kept + 1]
    if cum[-1] <= SINGLE_LIMIT[coding]:
        bounds = [(0, len(text))]
    else:
        cap = PART_LIMIT[coding] if mode == "concatenated" else SINGLE_LIMIT[coding]
        separate = mode == "separate"
        budget = max_parts if separate and dropped else None
        bounds = _bounds(text, cum, cap, Clusters(text) if separate else None, budget)
    parts = tuple(
        Part(text[s:e], payload[width * cum[s] : width * cum[e]], cum[e] - cum[s]) for s, e in bounds
    )
    return Plan(
        coding=coding,
        parts=parts,
        concatenated=mode == "concatenated" and len(parts) > 1,
        truncated=bool(dropped),
        dropped=dropped,
        reason=None if coding is Coding.GSM7 else _reason(text, unfit),
        transliterated=changed[0],
        plain_punctuation=changed[1],
        text=text,
    )


def plan(
    text: str,
    *,
    mode: Mode = "concatenated",
    max_parts: int = 10,
    transliterate: bool = False,
    as_written: bool = False,
    latin1: bool = False,
) -> Plan:
    """Choose the alphabet and split `text` into SMS parts (R-1.4); cut it to max_parts parts (R-1.5).

    With `transliterate`, TRANSLITERATION is applied when it makes the text GSM (the whole of it, or
    the GSM prefix sent when it must be cut). A text that something else (an emoji, a ☺) keeps in
    UCS-2 is sent as written: transliterated it would lose its letters for nothing, and `…` → `...`
    can even cost a part; its `reason` still names what forced UCS-2, not the Polish letters.
    When the text must be cut and everything before its first non-GSM character fits the parts at
    least as far as UCS-2 would reach, that GSM prefix is sent: more text for no more parts.
    A text whose only non-GSM characters are typographic punctuation (PLAIN_PUNCTUATION) is sent in
    GSM with it made plain, with or without `transliterate`, unless that would cost more parts or
    cut what UCS-2 sends whole: nothing is lost. A text that stays UCS-2 anyway keeps its “quotes”.
    `as_written` keeps every character (a phone's own encoder, as the simulator plays one).
    `latin1`: a link may read data_coding 0 as Latin-1, which lacks the euro sign and the Greek
    capitals of GSM: they force UCS-2 (there they went as "?", the sender told "GSM 03.38").
    Raises EmptyText for a text with nothing visible (blank, or only invisible characters).
    """
    if mode not in ("concatenated", "separate"):
        raise ValueError(f"unknown split mode {mode!r}")
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    if not text.isascii():  # ASCII is already NFC and has no surrogates; skip both passes
        text = unicodedata.normalize("NFC", _SURROGATE.sub("\ufffd", text))
    if len(text) <= SINGLE_LIMIT[Coding.GSM7] and (one := _one_basic_sms(text, latin1)) is not None:
        return one
    if not visible(text):
        raise EmptyText("the text is empty")
    unfit = _NON_LATIN1_GSM if latin1 else _NON_GSM
    if unfit.search(text) is None:
        return _plan(text, mode, max_parts, (False, False), unfit)
    plain = text if as_written else plain_punctuation(text, nfc=False)
    if plain != text and unfit.search(plain) is None:
        written = _plan(text, mode, max_parts, (False, False), unfit)
        result = _plan(plain, mode, max_parts, (False, True), unfit)
        # `…` → `...` costs two more characters each: a text made mostly of them could need more parts.
        if len(result.parts) <= len(written.parts) and (written.truncated or not result.truncated):
            return result
        return written
    if transliterate:
        changed = (text if plain == text else bullets(text)).translate(TRANSLIT)
        if changed != text:
            result = _plan(changed, mode, max_parts, (changed != plain, plain != text), unfit)
            if result.coding is Coding.GSM7:
                return result
            return replace(_plan(text, mode, max_parts, (False, False), unfit), reason=result.reason)
    return _plan(text, mode, max_parts, (False, False), unfit)


def _one_basic_sms(text: str, latin1: bool) -> Plan | None:
    """The plan of a text of at most 160 characters, all in the GSM basic table and not all blank, as
    `_plan` makes it (one part, nothing to choose), without its measuring and splitting; None for any
    other text. Most mails are such a text: a short staff message in plain letters."""
    payload = basic_septets(text, latin1)
    # The basic table's only characters a phone draws nothing for are the space, CR and LF.
    if payload is None or not text or text.isspace():
        return None
    part = _made_part(text, payload, len(payload))
    return _made_plan(Coding.GSM7, (part,), False, False, "", None, False, False, text)


def _plan(text: str, mode: Mode, max_parts: int, changed: tuple[bool, bool], unfit: re.Pattern[str]) -> Plan:
    bad = unfit.search(text)
    # No alphabet fits more characters than this into max_parts parts, so never measure beyond it:
    # a huge mail body costs no more than a long one.
    limit = max_parts * SINGLE_LIMIT[Coding.GSM7] + 1
    head, rest = text[:limit], text[limit:]
    if bad is None or bad.start() >= len(head):
        measured = _measure(head, Coding.GSM7)
        kept = _kept(head, measured[1], Coding.GSM7, mode, max_parts)
        return _assemble(head, measured, kept, Coding.GSM7, mode, rest, changed, max_parts, unfit)
    measured = _measure(head, Coding.UCS2)
    kept = _kept(head, measured[1], Coding.UCS2, mode, max_parts)
    if kept < len(head):
        # A GSM q without the combining mark that made the rest UCS-2 is a cut cluster.
        prefix = head[: Clusters(head).start(bad.start())]
        gsm = _measure(prefix, Coding.GSM7)
        gsm_kept = _kept(prefix, gsm[1], Coding.GSM7, mode, max_parts, cut=True)
        if gsm_kept >= kept:
            rest = head[len(prefix) :] + rest
            return _assemble(prefix, gsm, gsm_kept, Coding.GSM7, mode, rest, changed, max_parts, unfit)
    return _assemble(head, measured, kept, Coding.UCS2, mode, rest, changed, max_parts, unfit)
