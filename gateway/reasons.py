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

from gateway.smscwords import PART_PREFIX, SMPP_WORDS, STAT_WORDS, cimd2_words
from gateway.wording import Language, Phrase
from smsc.base import Outcome
from smsc.cimd2.messages import outcome_for_error
from smsc.receipts import STAT_SPELLINGS
from smsc.smpp.pdu import ESME_RINVEXPIRY, classify_status

# A receipt's stat word as a person reads it; the stat and err code stay after the words. The err
# code is the operator's own (SMPP 3.4 leaves it to the SMSC): read as "unreachable until it
# expired", err:001 told staff of a phone out of reach for days about an SMS refused in the same
# second by an operator for whom 001 means something else. Only the stat is put in words
# (`gateway.smscwords.STAT_WORDS`). The word is read whole, and one spelt out (`UNDELIVERED`,
# `smsc.receipts.STAT_SPELLINGS`) as the seven letters it spells: its first seven read
# "(UNDELIV)ERED" in the bounce.
_RECEIPT = re.compile(r"^(?P<prefix>part \d+ of \d+: )?(?P<stat>[A-Z]+)\b(?: err:(?P<err>\w+))?(?P<rest>.*)$")
# An SMPP refusal at submit (`ESME_RINVDSTADR (0x0B)`, smsc.smpp.pdu.status_text) as office staff
# read it (`gateway.smscwords.SMPP_WORDS`); the name and code stay beside the words for whoever asks
# the operator. An SMSC may refuse a submit with a generic_nack instead of its submit_sm_resp
# (`generic_nack ESME_RINVDSTADR (0x0B)`, smsc.smpp.submits): the same refusal, read alike (its words,
# its bounce status, whether a retry can help), the PDU named with the code. A status SMPP 3.4 leaves
# to the SMSC (0x400-0x4FF) reads `UNKNOWN (0x401)`: read as a receipt's stat UNKNOWN, it said "lost
# track of by the operator" of a refusal.
_SMPP_REFUSAL = re.compile(
    r"^(?P<prefix>part \d+ of \d+: )?(?P<nack>generic_nack )?(?P<name>ESME_\w+|UNKNOWN)"
    r" \((?P<code>0x[0-9A-F]+)\)(?P<rest>.*)$"
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


# The gateway's own reasons, as the store writes them (gateway.store.queue, .settling, .partnotes,
# .admin, gateway.claims, gateway.outcomes), in the words of each language: a Polish bounce quoted
# them in English. `tests/test_dsn_wording.py` walks every one the store writes. Kept as text here
# rather than imported: this module is no part of the store, and the test catches a text that drifts.
# A part ended by the phone's STOP after its mail was accepted (`gateway.claims.OPTED_OUT`), as a
# bounce tells it from a delivery that failed.
OPTED_OUT_SAID = "the number went on the opt-out list (a STOP, or an admin) after this mail was accepted"
# How a part no link serves any more starts its note (`gateway.outcomes.NO_ROUTE_NOTE`).
NO_ROUTE_SAID = "no SMSC link serves "
_OWN: dict[str, tuple[str, str]] = {
    "cancelled by admin": ("cancelled by the administrator", "anulowany przez administratora"),
    "held by admin": ("held by the administrator", "wstrzymany przez administratora"),
    "validity period expired before it could be sent": (
        "validity period expired before it could be sent",
        "okres ważności minął, zanim udało się go wysłać",
    ),
    "waiting for a link to the operator: none that serves this number was up": (
        "waiting for a link to the operator: none that serves this number was up",
        "czeka na połączenie z operatorem: żadne obsługujące ten numer nie działało",
    ),
    "validity period expired while no link to the operator serving this number was up": (
        "validity period expired while no link to the operator serving this number was up",
        "okres ważności minął, gdy żadne połączenie z operatorem obsługujące ten numer nie działało",
    ),
    "validity period expired; delivery unknown: an earlier attempt went unanswered by the SMSC"
    " and may have reached the phone": (
        "validity period expired; delivery unknown: an earlier attempt went unanswered by the SMSC"
        " and may have reached the phone",
        "okres ważności minął; doręczenie nieznane: centrum SMS nie odpowiedziało na wcześniejszą"
        " próbę wysłania, która mogła dotrzeć do telefonu",
    ),
    "validity period expired; delivery unknown: the gateway stopped while it may have been sending it": (
        "validity period expired; delivery unknown: the gateway stopped while it may have been sending it",
        "okres ważności minął; doręczenie nieznane: bramka zatrzymała się, być może w trakcie wysyłania",
    ),
    "delivery unknown: accepted by the SMSC without a message id, so no delivery report can be matched": (
        "delivery unknown: accepted by the SMSC without a message id, so no delivery report can be matched",
        "doręczenie nieznane: centrum SMS przyjęło wiadomość bez identyfikatora, więc nie da się"
        " dopasować raportu doręczenia",
    ),
    "the SMSC took it but sent no delivery report within its validity and a day": (
        "the SMSC took it but sent no delivery report within its validity and a day",
        "centrum SMS przyjęło wiadomość, ale nie przysłało raportu doręczenia w okresie ważności"
        " ani w ciągu doby po nim",
    ),
    "sent; the SMSC sent no delivery report": (
        "sent; the SMSC sent no delivery report",
        "wysłano; centrum SMS nie przysłało raportu doręczenia",
    ),
    "the number went on the opt-out list (a STOP, or an admin) after this mail was accepted: not sent": (
        "the number went on the opt-out list (a STOP, or an admin) after this mail was accepted: not sent",
        "numer trafił na listę rezygnacji (STOP, wpis administratora) po przyjęciu wiadomości: nie wysłano",
    ),
    # As 0.2.15 and earlier wrote it (only the phone's STOP listed a number then): still shown so.
    "the phone answered with an opt-out word (STOP) after this mail was accepted: not sent": (
        "the phone answered with an opt-out word (STOP) after this mail was accepted: not sent",
        "telefon odpowiedział słowem rezygnacji (STOP) po przyjęciu tej wiadomości: nie wysłano",
    ),
    "another part of the message failed": (
        "another part of the message failed",
        "inna część wiadomości nie została doręczona",
    ),
}
# A part that expired after the operator refused it for the time being (`gateway.store.partnotes.
# REFUSED_EXPIRED`): the refusal that follows is the SMSC's, put in words as any other.
REFUSED_EXPIRED_SAID = (
    "validity period expired after the operator refused it for the time being, lastly with "
)
_REFUSED_EXPIRED_WORDS = (
    "validity period expired while the operator kept refusing it for the time being; its last answer: ",
    "okres ważności minął, a operator do końca odmawiał jego przyjęcia; ostatnia odpowiedź: ",
)
# The gateway's own reasons with a value in them: (pattern, Polish), its groups in order; the
# English is the reason as it is.
_OWN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"sent, delivery of parts? ([\d, ]+) of (\d+) unconfirmed: the SMSC sent no delivery report"
        ),
        "wysłano, doręczenie części {0} z {1} niepotwierdzone: centrum SMS nie przysłało raportu doręczenia",
    ),
    (
        re.compile(
            r"no SMSC link serves (.+) any more \(the links' prefixes changed after the mail was accepted\)"
        ),
        "żadne połączenie z centrum SMS nie obsługuje już numeru {0} (prefiksy połączeń zmieniono po"
        " przyjęciu wiadomości)",
    ),
)
# What became of a failed long SMS's other parts (`gateway.store.settling._the_rest`), the last
# thing in its reason: " (part 2 delivered; parts 3, 4 not sent)".
_REST_WORDS = {
    "delivered": "doręczono",
    "sent, report pending": "wysłano, raport jeszcze nie nadszedł",
    "sent, no report came": "wysłano, raport nie nadszedł",
    "being sent": "w trakcie wysyłania",
    "not sent": "nie wysłano",
}
_CLAUSE = r"parts? \d+(?:, \d+)* (?:" + "|".join(re.escape(w) for w in _REST_WORDS) + ")"
_REST = re.compile(rf" \((?P<clauses>{_CLAUSE}(?:; {_CLAUSE})*)\)$")
_REST_CLAUSES = re.compile(rf"{_CLAUSE}(?:; {_CLAUSE})*")
_ONE_CLAUSE = re.compile(r"(?P<one>part|parts) (?P<seqs>\d+(?:, \d+)*) (?P<words>.+)")
# A long SMS bounced whose part then reached the phone after all by a copy accepted late
# (`gateway.store.latecopies`, its reason after `settling.TOLD_FAILED`): the rest is `_REST_WORDS`'s.
_TOLD_FAILED = re.compile(
    r"reported failed, then part (?P<seq>\d+) of (?P<total>\d+) delivered after all; (?P<rest>.+)"
)
TOLD_FAILED_WORDS = Phrase(
    "reported failed, then part {seq} of {total} delivered after all; {rest}",
    "zgłoszono niedoręczenie, potem część {seq} z {total} jednak doręczono; {rest}",
)
# A piece that holds "; " of its own: kept whole when the reason is split into its parts' pieces.
_JOINED = tuple(text for text in _OWN if "; " in text)


def _own_words(piece: str, lang: Language) -> str | None:
    """One of the gateway's own reasons (after any "part 1 of 2: ") in `lang`, or None for another."""
    if piece in _OWN:
        en, pl = _OWN[piece]
        return pl if lang == "pl" else en
    for pattern, pl in _OWN_PATTERNS:
        if (m := pattern.fullmatch(piece)) is not None:
            return pl.format(*m.groups()) if lang == "pl" else piece
    return None


def _rest_words(clauses: str, lang: Language) -> str:
    if lang != "pl":
        return clauses
    said = []
    for clause in clauses.split("; "):
        m = _ONE_CLAUSE.fullmatch(clause)
        if m is None:  # the pattern that found it allows no other form
            return clauses
        label = "część" if m["one"] == "part" else "części"
        said.append(f"{label} {m['seqs']}: {_REST_WORDS[m['words']]}")
    return "; ".join(said)


def _pieces(reason: str) -> tuple[list[str], str]:
    """The parts' pieces of a stored reason (joined by "; ") and the note on the other parts at its
    end, apart; a reason of the gateway's own that holds "; " stays one piece."""
    rest = ""
    if (m := _REST.search(reason)) is not None:
        reason, rest = reason[: m.start()], m["clauses"]
    for text in _JOINED:
        reason = reason.replace(text, text.replace("; ", "\0"))
    return [piece.replace("\0", "; ") for piece in reason.split("; ")], rest


def from_smsc(reason: str | None) -> bool:
    """Whether any part of the reason is the SMSC's (a refusal, a receipt, its own words), not only the
    gateway's (an expiry, an opt-out, a cancel): a bounce names only the SMSC's as Diagnostic-Code."""
    if not reason:
        return False
    pieces, _ = _pieces(reason)
    return any(_own_words(_strip_part(piece)[1], "en") is None for piece in pieces)


def _strip_part(piece: str) -> tuple[str | None, str]:
    m = _PART.match(piece)
    return (m.group(0), piece[m.end() :]) if m else (None, piece)


def human_reason(reason: str, lang: Language = "en") -> str:
    """`UNDELIV err:001` → "the operator could not deliver it to the phone (UNDELIV err:001)";
    `ESME_RINVDSTADR (0x0B)` → "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)".
    Words first (in `lang`, as the mail the reason goes in), the SMSC's code after them as it gave
    it; the gateway's own reasons in `lang` (`_OWN`); a reason in no known form is kept as is."""
    if (m := _TOLD_FAILED.fullmatch(reason)) is not None and _REST_CLAUSES.fullmatch(m["rest"]):
        return TOLD_FAILED_WORDS(lang, seq=m["seq"], total=m["total"], rest=_rest_words(m["rest"], lang))
    out = []
    pieces, rest = _pieces(reason)
    for piece in pieces:
        prefix, body = _strip_part(piece)
        if body.startswith(REFUSED_EXPIRED_SAID):
            words = _REFUSED_EXPIRED_WORDS[1 if lang == "pl" else 0]
            said = human_reason(body[len(REFUSED_EXPIRED_SAID) :], lang)
            out.append(f"{_part_prefix(prefix, lang)}{words}{said}")
            continue
        if (own := _own_words(body, lang)) is not None:
            out.append(f"{_part_prefix(prefix, lang)}{own}")
            continue
        if (cimd2 := cimd2_words(body, lang)) is not None:
            out.append(f"{_part_prefix(prefix, lang)}{cimd2}")
            continue
        refusal = _SMPP_REFUSAL.match(piece)
        if refusal is not None and refusal["name"] in SMPP_WORDS:
            words, name = SMPP_WORDS[refusal["name"]](lang), refusal["name"]
            prefix = _part_prefix(refusal["prefix"], lang)
            said = f"{refusal['nack'] or ''}{name}, {refusal['code']}"
            out.append(f"{prefix}{words} ({said}){refusal['rest']}")
            continue
        m = _RECEIPT.match(piece)
        stat = None if m is None else STAT_SPELLINGS.get(m["stat"], m["stat"])
        if m is None or stat not in STAT_WORDS:
            out.append(piece)
            continue
        text = STAT_WORDS[stat](lang)
        code = f"{m['stat']} err:{m['err']}" if m["err"] else m["stat"]
        out.append(f"{_part_prefix(m['prefix'], lang)}{text} ({code}){m['rest']}")
    said = "; ".join(out)
    return f"{said} ({_rest_words(rest, lang)})" if rest else said


# "part 1 of 2: " before a part's reason, or "all 4 parts: " / "both parts: " before the one reason of
# every part of a long SMS (`gateway.store.settling._all_alike`).
_PART = re.compile(r"part (?P<n>\d+) of (?P<total>\d+): |(?:all (?P<all>\d+)|(?P<both>both)) parts: ")


def _part_prefix(prefix: str | None, lang: Language) -> str:
    """The store's "part 1 of 2: " (or "all 4 parts: ") before a part's reason, in `lang`."""
    m = _PART.fullmatch(prefix or "")
    if m is None:
        return prefix or ""
    if m["n"] is not None:
        return PART_PREFIX(lang, n=m["n"], total=m["total"])
    if lang != "pl":
        return m.group(0)
    return "obie części: " if m["both"] else f"wszystkie {m['all']} części: "


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


def _validity_refused(piece: str) -> bool:
    """ESME_RINVEXPIRY: the SMSC refused the part's validity, which is the link's form (relative or
    absolute, `validity_format`) and the part's end, not its number or text; a retry writes both anew."""
    refusal = _SMPP_REFUSAL.match(piece)
    return refusal is not None and int(refusal["code"], 16) == ESME_RINVEXPIRY


def refused_for_good(reason: str | None, *, retry: bool = False) -> str | None:
    """Why sending the message again cannot help, in words, or None when it may (a phone that was
    off, a link that was down, a hold, an expiry, a cancel): the SMSC refused a part for good at
    submit, or reported its number unknown. Retrying it only brought the same refusal and a second
    bounce to the user. For the admin's `retry` a refused validity is no such refusal: it was every
    SMS's after an upgrade to an SMSC taking only absolute validity, which `validity_format` then cures,
    and the retry was refused as "would be refused again"."""
    for piece in (reason or "").split("; "):
        if retry and _validity_refused(piece):
            continue
        if smsc_code(piece) in NUMBER_REFUSED or _refused_at_submit_for_good(piece):
            return f"the SMSC refused it for good: {human_reason(piece)}"
    return None
