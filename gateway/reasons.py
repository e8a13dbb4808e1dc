"""An SMSC's reason for a failed SMS, in the words office staff read, and whether sending it again can
help. One place for both: the bounce mail, the panel's message pages and `smsgw queue show` word a
reason alike, and the panel's Retry and `smsgw queue retry` refuse the same messages. No I/O.

A reason as the store keeps it is the parts' own, joined by "; " (`part 1 of 2: ESME_RINVDSTADR
(0x0B)`, `gateway.store.settling`): an SMPP refusal at submit (`smsc.smpp.pdu.status_text`), a CIMD2
one (`CIMD2 900:300 incorrect destination address`), a delivery receipt's stat and err
(`UNDELIV err:001`), a CIMD2 report (`CIMD2 061:3 delivery failed 062:1 unknown subscriber`) or the
gateway's own words, which are left as they are.
"""

from __future__ import annotations

import re

from gateway.wording import PART_PREFIX, SMPP_WORDS, STAT_WORDS, Language
from smsc.base import Outcome
from smsc.cimd2.messages import outcome_for_error
from smsc.smpp.pdu import classify_status

# A receipt's stat word as a person reads it; the stat and err code stay after the words. The err
# code is the operator's own (SMPP 3.4 leaves it to the SMSC): read as "unreachable until it
# expired", err:001 told staff of a phone out of reach for days about an SMS refused in the same
# second by an operator for whom 001 means something else. Only the stat is put in words
# (`gateway.wording.STAT_WORDS`).
_RECEIPT = re.compile(r"^(?P<prefix>part \d+ of \d+: )?(?P<stat>[A-Z]{7})(?: err:(?P<err>\w+))?(?P<rest>.*)$")
# An SMPP refusal at submit (`ESME_RINVDSTADR (0x0B)`, smsc.smpp.pdu.status_text) as office staff
# read it (`gateway.wording.SMPP_WORDS`); the name and code stay beside the words for whoever asks
# the operator.
_SMPP_REFUSAL = re.compile(
    r"^(?P<prefix>part \d+ of \d+: )?(?P<name>ESME_\w+) \((?P<code>0x[0-9A-F]+)\)(?P<rest>.*)$"
)
# A CIMD2 refusal at submit (`CIMD2 900:300 incorrect destination address`) or failed report
# (`CIMD2 061:3 delivery failed 062:1 unknown subscriber`, smsc/cimd2/messages.py): its code.
_CIMD2_CODE = re.compile(r"^(?:part \d+ of \d+: )?CIMD2 (?:061:\d+ .*?)?(?P<param>900|062):(?P<code>\d+)\b")
# The SMSC's codes that say the number itself is bad: the operator refused it, or its network knows
# no such subscriber. The bounce gives them RFC 3463's X.1.1 (a bounce processor then stops mailing
# that address, rightly), and no retry is offered: the same number is refused again.
NUMBER_REFUSED = frozenset(
    {
        "ESME_RINVDSTADR",  # SMPP 0x0B: invalid destination address
        "ESME_RINVDSTTON",  # 0x50: its type of number
        "ESME_RINVDSTNPI",  # 0x51: its numbering plan
        "CIMD2 900:300",  # incorrect destination address (protocols.md 1.7)
        "CIMD2 062:1",  # unknown subscriber, in a status report (protocols.md 1.9)
    }
)


def human_reason(reason: str, lang: Language = "en") -> str:
    """`UNDELIV err:001` → "the operator could not deliver it to the phone (UNDELIV err:001)";
    `ESME_RINVDSTADR (0x0B)` → "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)".
    Words first (in `lang`, as the mail the reason goes in), the SMSC's code after them as it gave
    it; a reason in no known form is kept as is."""
    out = []
    for piece in reason.split("; "):
        refusal = _SMPP_REFUSAL.match(piece)
        if refusal is not None and refusal["name"] in SMPP_WORDS:
            words, name = SMPP_WORDS[refusal["name"]](lang), refusal["name"]
            prefix = _part_prefix(refusal["prefix"], lang)
            out.append(f"{prefix}{words} ({name}, {refusal['code']}){refusal['rest']}")
            continue
        m = _RECEIPT.match(piece)
        if m is None or m["stat"] not in STAT_WORDS:
            out.append(piece)
            continue
        text = STAT_WORDS[m["stat"]](lang)
        code = f"{m['stat']} err:{m['err']}" if m["err"] else m["stat"]
        out.append(f"{_part_prefix(m['prefix'], lang)}{text} ({code}){m['rest']}")
    return "; ".join(out)


_PART = re.compile(r"part (?P<n>\d+) of (?P<total>\d+): ")


def _part_prefix(prefix: str | None, lang: Language) -> str:
    """The store's "part 1 of 2: " before a part's reason, in `lang`."""
    m = _PART.fullmatch(prefix or "")
    return PART_PREFIX(lang, n=m["n"], total=m["total"]) if m else prefix or ""


def smsc_code(piece: str) -> str | None:
    """The code in one part's reason as `NUMBER_REFUSED` names it: `ESME_RINVDSTADR`, `CIMD2 900:300`."""
    if (refusal := _SMPP_REFUSAL.match(piece)) is not None:
        return refusal["name"]
    if (cimd2 := _CIMD2_CODE.match(piece)) is not None:
        return f"CIMD2 {cimd2['param']}:{cimd2['code']}"
    return None


def _refused_at_submit_for_good(piece: str) -> bool:
    """The dispatcher's own verdict on a refusal at submit (`smsc.smpp.pdu.classify_status`,
    `smsc.cimd2.messages.outcome_for_error`): REJECTED or MALFORMED ended the part at once, "do not
    retry". A retry sends the same stored part (number, sender, bytes) again: it is refused again."""
    if (refusal := _SMPP_REFUSAL.match(piece)) is not None:
        outcome = classify_status(int(refusal["code"], 16))
    elif (cimd2 := _CIMD2_CODE.match(piece)) is not None and cimd2["param"] == "900":
        outcome = outcome_for_error(int(cimd2["code"]))
    else:
        return False
    return outcome in (Outcome.REJECTED, Outcome.MALFORMED)


def refused_for_good(reason: str | None) -> str | None:
    """Why sending the message again cannot help, in words, or None when it may (a phone that was
    off, a link that was down, a hold, an expiry, a cancel): the SMSC refused a part for good at
    submit, or reported its number unknown. Retrying it only brought the same refusal and a second
    bounce to the user."""
    for piece in (reason or "").split("; "):
        if smsc_code(piece) in NUMBER_REFUSED or _refused_at_submit_for_good(piece):
            return f"the SMSC refused it for good: {human_reason(piece)}"
    return None
