"""Long MO texts arrive as segments; this joins them into what the phone user wrote (SPEC R-3.4).

Segments are keyed by (sender, our number, reference, total) whichever link they came over, so
SMPP and CIMD2 share it (`gateway.store.mo`). Duplicates (an SMSC re-delivering, even after the
set was joined) and any arrival order are fine; a set still incomplete after the timeout is
joined with a visible gap marker rather than dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from smsc import gsmshifts
from smsc.cimd2.times import parse_time
from smsc.decoding import ODD_ANY, is_ucs2, mend_edges
from smsc.decoding import phone_parts as _phone_parts

# The marker of texts joined before the markers named their parts: a bare "[…]" in the middle of a
# word ("uszkodzona[…]czka") read as the customer's own ellipsis. Still read in stored texts (`merge`).
OLD_GAP = "[…]"
# A gap names the parts that did not come, set off by a space from the text on either side (never
# at the text's own start or end), so that it reads as a gap: "uszkodzona [part 2 of 3 missing] czka".
_MARK = r"\[(?:part (\d+)|parts (\d+)–(\d+)) of \d+ missing\]"
_GAPS = re.compile(rf"(?:^| ){_MARK}(?: |$)|{re.escape(OLD_GAP)}")
# The default of `[replies] reassembly_timeout_seconds`, and the timeout of every set joined before
# that key existed (a row without `parts_at` is matched as of this long before its join).
TIMEOUT_SECONDS = 300.0
# A segment identical to one of a set joined this recently (same sender, reference, total, number
# and text) is the SMSC delivering it again, not the start of a new text: an SMSC whose ack was lost
# (or whose gateway was killed before acking) repeats it, possibly after a long outage. A phone
# reusing the reference for a new text within a day would also have to repeat a segment's text.
# A whole text is looked back on as long for an unacknowledged copy of it (`gateway.store.mo`).
REDELIVERY_SECONDS = 86400.0


def gap(first: int, last: int, total: int) -> str:
    """The marker standing for parts `first` to `last` of `total`, without its spaces."""
    parts = f"part {first}" if first == last else f"parts {first}–{last}"
    return f"[{parts} of {total} missing]"


def has_gap(text: str) -> bool:
    """Whether a whole text may have been joined without some of its parts: a text that lacks one
    always holds a marker, but a phone user may write one too (a quotation cut with "[…]"), so
    only the parts it holds (`missing`) tell."""
    return _GAPS.search(text) is not None


def parts_sent(text: str, data_coding: int, *, smpp: bool) -> int:
    """The parts a phone's split needed for a whole text that came with no concatenation (an SMSC
    joined it: SMPP's message_payload), for the store, which reads no SMSC's alphabets itself
    (`smsc.decoding.phone_parts`)."""
    return _phone_parts(text, data_coding, smpp=smpp)


def unread(text: str) -> tuple[str, str | None]:
    """A whole text as the store keeps it, and its note when the phone named national GSM tables not
    read here (`smsc.gsmshifts.unread`): the text alone is what opt-out words, premium passwords and
    the bill see; the note is for the mail (`alphabet_note`)."""
    plain, languages = gsmshifts.unread(text)
    return plain, gsmshifts.unread_note(languages)


def joined_unread(segments: list[tuple[int, str]]) -> str | None:
    """The note of a text `join` makes of `segments` (as `unread`'s): one for the whole SMS, whichever
    of its parts named the tables and however its parts came in runs."""
    return gsmshifts.unread_note(gsmshifts.unread("".join(text for _, text in segments))[1])


def alphabet_note(stored: str | None) -> str | None:
    """What the mail says of a text whose note `unread` or `joined_unread` gave; None for another."""
    return gsmshifts.mail_note(stored)


def join(segments: list[tuple[int, str]], total: int, codings: Sequence[int] = ()) -> str:
    """Text of (seq, text) segments in order; each run of missing ones becomes one `gap`, repeats count
    once; a character a phone cut at a segment's edge is made whole (`smsc.decoding.mend_edges`).
    `codings`: each segment's DCS, in the order of `segments`, for a UCS-2 one cut at an odd octet."""
    by_seq: dict[int, str] = {}
    ucs2: dict[int, bool] = {}
    for n, (seq, text) in enumerate(segments):
        by_seq.setdefault(seq, text)
        if n < len(codings):
            ucs2.setdefault(seq, is_ucs2(codings[n]))
    return _render(by_seq, total, ucs2)


def _mended(run: list[tuple[int, str]], ucs2: dict[int, bool]) -> str:
    """A run of parts that came, mended as one text; where a UCS-2 part ended in an odd octet, each
    stretch of one alphabet alone: the octets after the cut are read as one UTF-16 stream with it
    (`smsc.decoding.mend_edges`), and a GSM or 8-bit part read so was garbage (no character is cut
    across parts of two alphabets)."""
    text = "".join(part for _, part in run)
    if not ucs2 or ODD_ANY.search(text) is None:
        return mend_edges(text)
    stretches = groupby(run, key=lambda p: ucs2.get(p[0], True))
    return "".join(mend_edges("".join(part for _, part in stretch)) for _, stretch in stretches)


def _render(by_seq: dict[int, str], total: int, ucs2: dict[int, bool]) -> str:
    """The parts in order, each run of those that came mended as one text (a half cut at an edge
    meets its other half there, and only there), each run of missing ones as one marker."""
    out: list[str] = []
    i = 1
    while i <= total:
        j = i
        if i in by_seq:
            while j <= total and j in by_seq:
                j += 1
            out.append(_mended([(k, by_seq[k]) for k in range(i, j)], ucs2))
        else:
            while j <= total and j not in by_seq:
                j += 1
            out.append(("" if i == 1 else " ") + gap(i, j - 1, total) + ("" if j > total else " "))
        i = j
    return "".join(out)


def missing(total: int, seqs: set[int]) -> list[int]:
    """The parts of `total` a whole text holding `seqs` lacks."""
    return [i for i in range(1, total + 1) if i not in seqs]


def missing_note(total: int, seqs: set[int]) -> str | None:
    """What the mail of a text joined without some parts says of them, beside the markers; None for
    one that lacks none (its own text may hold "[…]" or a typed marker: the phone user's words)."""
    lacking = missing(total, seqs)
    if not lacking:
        return None
    named = ", ".join(map(str, lacking[:-1])) + f" and {lacking[-1]}" if len(lacking) > 1 else str(lacking[0])
    which = f"Part {named}" if len(lacking) == 1 else f"Parts {named}"
    where = "it belongs" if len(lacking) == 1 else "they belong"
    return (
        f"{which} of {total} of this SMS did not arrive: the text is marked where {where};"
        " a part that comes later is mailed on its own"
    )


def _split(text: str) -> list[str]:
    """A joined text cut at its gap markers, one piece per missing part (empty between the parts of
    one marker), so that piece k stands after the k-th missing part."""
    pieces: list[str] = []
    at = 0
    for m in _GAPS.finditer(text):
        pieces.append(text[at : m.start()])
        if m[1] is None and m[2] is not None:  # "parts 2–4": one piece for each part but the first
            pieces.extend([""] * (int(m[3]) - int(m[2])))
        at = m.end()
    pieces.append(text[at:])
    return pieces


def merge(pieces: list[tuple[str, set[int]]], total: int) -> str | None:
    """One text of the whole texts of one SMS (`join`'s, each with the parts it holds), their gap
    markers filled from each other; None when a part's own text holds a gap marker (then which
    part is where cannot be told)."""
    by_seq: dict[int, str] = {}
    for text, seqs in pieces:
        run = _split(text)
        if len(run) != total - len(seqs) + 1:
            return None
        # Each run of parts a text holds side by side stands between two of its gap markers: the run's
        # text goes with its first part, the others add nothing.
        for i in sorted(seqs):
            if 1 <= i <= total and i not in by_seq:
                lacking = sum(1 for j in range(1, i) if j not in seqs)
                by_seq[i] = run[lacking] if i - 1 not in seqs else ""
    return _render(by_seq, total, {})


def complete(segments: list[tuple[int, str]], total: int) -> bool:
    return {seq for seq, _ in segments} >= set(range(1, total + 1))


def late_note(first_at: float, tz: ZoneInfo) -> str:
    """What the mail of an SMS's late parts says above them: which SMS they complete, and the gap."""
    return (
        f"The part of the SMS of {datetime.fromtimestamp(first_at, tz):%Y-%m-%d %H:%M} that came late;"
        " the parts marked missing are those mailed then"
    )


def stamp_seconds(value: str | None) -> float | None:
    """A segment's SMSC stamp (`mo.smsc_time`, CIMD2's 060: when the phone sent it) as seconds, or
    None when the SMSC gave none. Read here, not in the store, which keeps below the link code."""
    at = parse_time(value)
    return None if at is None else at.timestamp()
