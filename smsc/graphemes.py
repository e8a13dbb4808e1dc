"""What a phone shows of a text: where its grapheme clusters start (a cut there never splits a
flag, a skin tone, a ZWJ sequence or a letter and its marks) and whether it shows anything at all.

Pure and shared by the SMS planner (`smsc.encoding`) and the mail side (the subject's cut).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from itertools import accumulate

import regex

# UAX #29 extended grapheme clusters (flags, skin tones, ZWJ sequences, keycaps, letters with marks,
# Indic conjuncts, Thai SARA AM, Hangul jamo): the stdlib has no segmentation.
_CLUSTER = regex.compile(r"\X")
# Grapheme_Cluster_Break=Prepend: the only characters that join the character after them, whatever it is.
_PREPEND = frozenset(
    map(chr, [*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD])
) | frozenset(map(chr, [0x111C2, 0x111C3, 0x1193F, 0x11941, 0x113D1, 0x11A3A, *range(0x11A84, 0x11A8A)]))
_PREPEND |= frozenset(map(chr, [0x11D46, 0x11F02]))
_NEAR = 32  # characters read back for an anchor before the text is read from its start instead


# What a phone draws nothing for: controls, format characters (ZWJ, ZWNJ, direction marks, tags),
# spaces and line separators, and the other default-ignorable code points (UAX #44: variation
# selectors, the combining grapheme joiner, Hangul fillers, Khmer inherent vowels). The prepended
# concatenation marks (U+0600 ...) are format characters that are drawn. Unassigned code points count
# as visible: they are emoji newer than these tables.
_UNSEEN_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_IGNORABLE = frozenset(
    map(chr, [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810)])
) | frozenset(map(chr, [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]))
_DRAWN_FORMAT = frozenset(map(chr, [*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2]))
_DRAWN_FORMAT |= frozenset(map(chr, [0x110BD, 0x110CD]))


def visible(text: str) -> bool:
    """Whether a phone would show anything of `text`: a text of invisible characters alone is as empty
    as a blank one (R-1.6), and sent it would be billed as a blank SMS."""
    return any(
        ch in _DRAWN_FORMAT or (ch not in _IGNORABLE and unicodedata.category(ch) not in _UNSEEN_CATEGORIES)
        for ch in text
    )


class Clusters:
    """Where the grapheme clusters of one text start, asked one cut at a time.

    A cut before an ASCII character other than LF, after anything but CR or a Prepend character,
    is always at a cluster start and no rule looks back across it (an anchor); only from the last
    anchor does the regex module's \\X (far slower than a table lookup) have to read. Latin text
    has one every few characters; in Thai or a run of emoji, with none near, the cluster starts
    from the beginning of the text are found once, as far as they are asked for, and looked up.
    """

    __slots__ = ("_read", "_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts = [0]  # cluster starts in text[: self._read]; the last one is a true start
        self._read = 0

    def _anchor(self, i: int) -> bool:
        text = self._text
        return (
            text[i] < "\x80"
            and text[i] != "\n"
            and (i == 0 or (text[i - 1] != "\r" and text[i - 1] not in _PREPEND))
        )

    def start(self, i: int, floor: int = 0) -> int:
        """`i`, or where the cluster that a cut at `i` would break starts (not before `floor`)."""
        if not floor < i < len(self._text) or self._anchor(i):
            return i
        if i < self._read:
            return max(self._looked_up(i), floor)
        j = i - 1
        while j > floor and not self._anchor(j):
            if i - j > _NEAR:
                return max(self._looked_up(i), floor)
            j -= 1
        cluster = j
        for m in _CLUSTER.finditer(self._text, j, i + 1):
            cluster = m.start()
        return cluster

    def _looked_up(self, i: int) -> int:
        if self._read <= i:  # a start depends only on the text up to it: read on from the last one
            last, self._read = self._starts.pop(), min(len(self._text), i + 1 + 4 * _NEAR)
            found = _CLUSTER.findall(self._text, last, self._read)
            self._starts += list(accumulate(map(len, found), initial=last))[:-1]  # not where reading stopped
        return self._starts[bisect_right(self._starts, i) - 1]

    def splits(self, i: int) -> bool:
        """Whether a cut at `i` would break a cluster."""
        return self.start(i) != i


def cluster_start(text: str, i: int) -> int:
    """Where a cut of `text` at `i` keeps every grapheme cluster whole: `i`, or the start of the
    cluster it would break (0 when that cluster starts the text)."""
    return Clusters(text).start(i)
