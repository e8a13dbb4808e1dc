"""The line of a confirmation (`gateway.notify.confirmation`, R-1.9) that says what the SMS to its
numbers cost, apart from `gateway.wording`, which is full. No I/O.
"""

from __future__ import annotations

from gateway import polish as _pl
from gateway.wording import Counted, Language, Phrase

ACCEPTED_LINE = Phrase(
    "  {number}: {parts} SMS part(s), {encoding}", "  {number}: części SMS-a: {parts}, {encoding}"
)
# Numbers whose SMS are alike share a line, and its count is each one's: "3 numbers: 4 SMS part(s)"
# read as 4 parts where the mail cost 12, so the line says both. After "po" every count takes the same
# "części" (po 1 części, po 2 części, po 5 części), so the Polish needs no plural of its own.
ACCEPTED_SHARED_LINE = Counted(
    Phrase(
        "  {number}: {parts} SMS {noun} each ({total} in all), {encoding}",
        "  {number}: po {parts} części SMS-a (razem {total}), {encoding}",
    ),
    lambda v: {"total": _pl.grouped(v["total"])},
)


def accepted_line(lang: Language, numbers: list[str], parts: int, encoding: str) -> str:
    """The line of `numbers` whose SMS each take `parts` parts in `encoding`."""
    if len(numbers) == 1:
        return ACCEPTED_LINE(lang, number=numbers[0], parts=parts, encoding=encoding)
    total = parts * len(numbers)
    noun = "part" if parts == 1 else "parts"
    return ACCEPTED_SHARED_LINE(
        lang, number=", ".join(numbers), parts=parts, noun=noun, total=total, encoding=encoding
    )
