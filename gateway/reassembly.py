"""Long MO texts arrive as segments; this joins them into what the phone user wrote (SPEC R-3.4).

Segments are keyed by (sender, our number, reference, total) whichever link they came over, so
SMPP and CIMD2 share it (`gateway.store.mo`). Duplicates (an SMSC re-delivering, even after the
set was joined) and any arrival order are fine; a set still incomplete after the timeout is
joined with a visible gap marker rather than dropped.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from smsc.decoding import mend_edges

GAP = "[…]"
# The default of `[replies] reassembly_timeout_seconds`, and the timeout of every set joined before
# that key existed (a row without `parts_at` is matched as of this long before its join).
TIMEOUT_SECONDS = 300.0
# A segment identical to one of a set joined this recently (same sender, reference, total, number
# and text) is the SMSC delivering it again, not the start of a new text: an SMSC whose ack was lost
# (or whose gateway was killed before acking) repeats it, possibly after a long outage. A phone
# reusing the reference for a new text within a day would also have to repeat a segment's text.
# A whole text is looked back on as long for an unacknowledged copy of it (`gateway.store.mo`).
REDELIVERY_SECONDS = 86400.0


def join(segments: list[tuple[int, str]], total: int) -> str:
    """Text of (seq, text) segments in order; missing ones become GAP, repeats count once; a character
    a phone cut at a segment's edge is made whole (`smsc.decoding.mend_edges`)."""
    by_seq: dict[int, str] = {}
    for seq, text in segments:
        by_seq.setdefault(seq, text)
    return mend_edges("".join(by_seq.get(i, GAP) for i in range(1, total + 1)))


def merge(pieces: list[tuple[str, set[int]]], total: int) -> str | None:
    """One text of the whole texts of one SMS (`join`'s, each with the parts it holds), their gap
    markers filled from each other; None when a part's own text holds a gap marker (then which
    part is where cannot be told)."""
    runs: list[list[str]] = []
    for text, seqs in pieces:
        run = text.split(GAP)
        if len(run) != total - len(seqs) + 1:
            return None
        runs.append(run)
    out, last = [], None
    for i in range(1, total + 1):
        owner = next((k for k, (_text, seqs) in enumerate(pieces) if i in seqs), None)
        if owner is None:
            out.append(GAP)
            last = None
            continue
        # Each run of parts a text holds side by side stands between two of its gap markers.
        at = (owner, sum(1 for j in range(1, i) if j not in pieces[owner][1]))
        if at != last:
            out.append(runs[at[0]][at[1]])
        last = at
    return mend_edges("".join(out))


def complete(segments: list[tuple[int, str]], total: int) -> bool:
    return {seq for seq, _ in segments} >= set(range(1, total + 1))


def late_note(first_at: float, tz: ZoneInfo) -> str:
    """What the mail of an SMS's late parts says above them: which SMS they complete, and the gap."""
    return (
        f"The part of the SMS of {datetime.fromtimestamp(first_at, tz):%Y-%m-%d %H:%M} that came late;"
        f" {GAP} stands for the parts mailed then"
    )
