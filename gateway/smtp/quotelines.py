"""`>` quote lines (R-1.3), for `gateway.smtp.textclean`: which lines are one, where a block of them
ends, and whether a mail that answers none still quotes one. A new mail (no In-Reply-To, no
References, no "Re:" or "Fwd:" subject) sets lines apart with ">" as its own text ("Progi rabatowe:\\n>
1000 zł - 5%", "Klient napisał:\\n> Towar uszkodzony.\\nProszę oddzwonić."), but a reply whose headers
a system dropped still reads as one: an attribution with a date or an address above the quote ("On 5
Dec 2026, at 10:00, Anna Nowak <anna@example.com> wrote:"), or nothing of the person's beside it.
"""

from __future__ import annotations

from gateway.smtp.quoteheads import attribution_end
from gateway.smtp.signatures import is_signature_line

# An attribution runs over up to four lines above its quote (`quoteheads.attribution_end`).
_ATTRIBUTION_LINES = 4


def quoted(line: str) -> bool:
    """A quote as mail programs write it: ">", "> text" or ">>text". A person's ">35 stopni" (or an
    mbox-escaped ">From") is text: no client quotes without a space or a second ">"."""
    return line.startswith(">") and (len(line) == 1 or line[1] in " \t>")


def next_text(lines: list[str], start: int) -> int:
    """Index of the first non-blank line at or after `start` (len(lines) if none)."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def quote_block_end(lines: list[str], start: int) -> int:
    """End of the `>` block (with blank lines inside it) that begins at the first text at/after `start`."""
    i = next_text(lines, start)
    end = i
    while i < len(lines) and (quoted(lines[i]) or not lines[i].strip()):
        if quoted(lines[i]):
            end = i + 1
        i += 1
    return end


def _dated(attribution: list[str]) -> bool:
    """Whether an attribution names a time or an address ("05.12.2026 10:00, Иван Петров пишет:"), as
    a mail program writes it; "Klient napisał:" is the person's line heading what they set apart."""
    return any(c.isdigit() or c == "@" for line in attribution for c in line)


def quotes_another(lines: list[str]) -> bool:
    """Whether a mail with no reply header or prefix still quotes another by its `>` lines: one of
    them stands below an attribution that names a time or an address (`_dated`, or one
    `attribution_end` takes without a quote), or no line of the person's stands beside them above
    the signature ("> the old message\\n-- \\nJan"). Attributions are looked for only above the
    first line of each `>` block, so a long mail costs a few looks a block."""
    own = False
    filled: list[int] = []  # the last non-empty lines above, for the attribution look
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if line == "-- " or is_signature_line(text):
            break
        if quoted(line):
            if filled and not quoted(lines[filled[-1]]):
                for j in filled[-_ATTRIBUTION_LINES:]:
                    found = attribution_end(lines, j)
                    if found is not None and found[0] <= i and (not found[1] or _dated(lines[j : found[0]])):
                        return True
        else:
            own = True
        filled = [*filled[-_ATTRIBUTION_LINES + 1 :], i]
    return not own
