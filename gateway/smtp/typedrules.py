"""A rule a line of dashes or underscores draws in a mail's text: above the header block of a quoted
message (Outlook's), above a person's own lines, above a quote, above a signature. Which it is, for
`gateway.smtp.textclean`: a rule that heads a quote goes with it, one the person typed above their own
lines stays, and one above what goes (a quote, a signature) goes with it.
"""

from __future__ import annotations

import re

from gateway.smtp.quoteheads import header_block_end
from gateway.smtp.quotelines import next_text as _next_text
from gateway.smtp.quotelines import quoted as _quoted
from gateway.smtp.signatures import SIGNATURE, cut_signature

# Outlook's rule above the header block of the message a reply quotes: "____" (32 of them), or in some
# versions and webmails' plain text a bare line of dashes ("-----"); with the dashes, only the rule,
# the cut block and the quote below it went, and the dashes stayed as the SMS's last line.
OUTLOOK_RULE = re.compile(r"^(?:_{10,}|-{5,})$")
_DASHES = re.compile(r"^-{5,}$")


def rule_block_end(lines: list[str], i: int, answers: bool = True) -> int | None:
    """End of the header block (`header_block_end`, after a rule) below the rule at `i`, or None. A `>`
    quote right below a line of dashes is no quote's header: a person sets their own lines apart so
    ("Progi rabatowe:\n-----\n> 1000 zł - 5%"); Outlook's "____" above one is (`header_block_end`).
    Nor, in a mail that `answers` none, is a company's loose block below dashes: a memo typed so
    ("Notatka służbowa\n-----\nOd: Jan Kowalski\nDo: Anna Nowak\nData: 7.12.2026") went as its
    first line alone; there only Outlook's full block (a "Sent:" line, or an address) heads a quote."""
    start = _next_text(lines, i + 1)
    dashes = lines[i].lstrip()[:1] == "-"
    if dashes and start < len(lines) and _quoted(lines[start]):
        return None
    return header_block_end(lines, start, after_rule=answers or not dashes, answers=answers)


def drop_rules_above_quotes(lines: list[str]) -> list[str]:
    """The lines without a rule right above a `>` quote, which goes in a reply: "Tak.\n-----\n> Czy…"
    left the rule as the SMS's last line."""
    return [
        line
        for k, line in enumerate(lines)
        if not (
            OUTLOOK_RULE.match(line.strip())
            and (after := _next_text(lines, k + 1)) < len(lines)
            and _quoted(lines[after])
        )
    ]


def cut_rule_signature(lines: list[str], removed: list[str], sender: str = "") -> list[str]:
    """The lines without a signature under the last typed line of dashes, when the signature cut takes
    all below it read as a blank line: "Podpiszę jutro o 10:00.\n-----\nJan Kowalski\nACME Sp. z
    o.o.\ntel. 601 222 333" went whole, in two parts, while under a blank line the name went."""
    at = next((k for k in range(len(lines) - 1, 0, -1) if _DASHES.match(lines[k].strip())), None)
    if at is None or not any(line.strip() for line in lines[:at]):
        return lines
    cut = cut_signature([*lines[:at], "", *lines[at + 1 :]], [], sender=sender)
    if len(cut) > at + 1 and any(line.strip() for line in cut[at + 1 :]):
        return lines
    removed.append(SIGNATURE)
    return lines[:at]
