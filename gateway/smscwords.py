"""An SMSC's reason for a failed SMS in words, English and Polish (`gateway.reasons`): the SMPP receipt's
`stat:`, the submit's refusal status, CIMD2's refusal (900) and failed report (061, 062), and the part
of a long SMS it is about. The SMSC's own code stays after the words for whoever asks the operator."""

from __future__ import annotations

import re

from gateway.wording import Language, Phrase
from smsc.cimd2.codes import error_text

PART_PREFIX = Phrase("part {n} of {total}: ", "część {n} z {total}: ")
STAT_WORDS = {
    "UNDELIV": Phrase(
        "the operator could not deliver it to the phone",
        "operator nie zdołał doręczyć wiadomości do telefonu",
    ),
    "EXPIRED": Phrase(
        "not delivered before it expired (phone off or out of reach, or the operator's delay)",
        "nie doręczono przed upływem ważności (telefon wyłączony lub poza zasięgiem albo opóźnienie"
        " operatora)",
    ),
    "REJECTD": Phrase("refused by the operator", "odrzucony przez operatora"),
    "DELETED": Phrase("deleted by the operator", "usunięty przez operatora"),
    "UNKNOWN": Phrase("lost track of by the operator", "operator utracił informację o wiadomości"),
}
_NUMBER_FORMAT = Phrase("the operator refused the number's format", "operator odrzucił format numeru")
_SENDER_FORMAT = Phrase("the operator refused the sender's format", "operator odrzucił format nadawcy")
_MESSAGE_REFUSED = Phrase("the operator refused the message", "operator odrzucił wiadomość")
# A PDU of ours the SMSC could not read (SMPP 0x02, 0x03, 0xC0–0xC4; CIMD2 1–3, 8): the gateway's form,
# not the text nor the number, so the bounce says so rather than quote the bare code.
_MALFORMED = Phrase(
    "the operator could not read the message as the gateway sent it",
    "operator nie zdołał odczytać wiadomości w postaci wysłanej przez bramkę",
)
SMPP_WORDS = {
    "ESME_RINVDSTADR": Phrase(
        "the operator refused the number as invalid", "operator odrzucił numer jako nieprawidłowy"
    ),
    "ESME_RINVDSTTON": _NUMBER_FORMAT,
    "ESME_RINVDSTNPI": _NUMBER_FORMAT,
    "ESME_RINVSRCADR": Phrase(
        "the operator refused the sender number or name", "operator odrzucił numer lub nazwę nadawcy"
    ),
    "ESME_RINVSRCTON": _SENDER_FORMAT,
    "ESME_RINVSRCNPI": _SENDER_FORMAT,
    "ESME_RINVMSGLEN": Phrase(
        "the operator refused the length of the text", "operator odrzucił długość tekstu"
    ),
    "ESME_RINVEXPIRY": Phrase("the operator refused the validity period", "operator odrzucił okres ważności"),
    "ESME_RSUBMITFAIL": Phrase(
        "the operator could not take the message", "operator nie mógł przyjąć wiadomości"
    ),
    "ESME_RX_P_APPN": _MESSAGE_REFUSED,
    "ESME_RX_R_APPN": _MESSAGE_REFUSED,
    "ESME_RMSGQFUL": Phrase("the operator's queue was full", "kolejka operatora była pełna"),
    "ESME_RSYSERR": Phrase("the operator's system failed", "wystąpił błąd systemu operatora"),
    "ESME_RINVCMDLEN": _MALFORMED,
    "ESME_RINVCMDID": _MALFORMED,
    "ESME_RINVOPTPARSTREAM": _MALFORMED,
    "ESME_ROPTPARNOTALLWD": _MALFORMED,
    "ESME_RINVPARLEN": _MALFORMED,
    "ESME_RMISSINGOPTPARAM": _MALFORMED,
    "ESME_RINVOPTPARAMVAL": _MALFORMED,
    # A status of the SMSC's own (`smsc.smpp.pdu.status_text`): a refusal, its meaning the operator's.
    "UNKNOWN": Phrase(
        "the operator refused the message with a code of its own",
        "operator odrzucił wiadomość z własnym kodem błędu",
    ),
}

# CIMD2 (protocols.md 1.7, 1.9): a refusal at submit (`CIMD2 900:300 incorrect destination address`, the
# text the SMSC's 901 or `smsc.cimd2.codes.ERRORS`), one in a general error (98), and a failed status
# report (`CIMD2 061:3 delivery failed 062:1 unknown subscriber`), as `smsc.cimd2.messages` words them.
# Read by number: the English after each code is the link's, which a Polish bounce quoted as it was.
_CIMD2_SUBMIT = re.compile(r"CIMD2 (?P<general>general error \(98\), )?900:(?P<code>\d+) ?(?P<text>.*)")
_CIMD2_REPORT = re.compile(r"CIMD2 061:(?P<status>\d+) [^:]*?(?: 062:(?P<reason>\d+) .*)?")
_SYSTEM = SMPP_WORDS["ESME_RSYSERR"]
_TEXT_FORM = Phrase("the operator refused the text's encoding", "operator odrzucił kodowanie tekstu")
CIMD2_SUBMIT_WORDS: dict[int, Phrase] = {
    1: _MALFORMED, 2: _MALFORMED, 3: _MALFORMED, 8: _MALFORMED,
    4: _SYSTEM, 5: _SYSTEM, 6: _SYSTEM, 7: _SYSTEM, 9: _SYSTEM,
    10: Phrase("the operator was congested", "operator był przeciążony"),
    300: SMPP_WORDS["ESME_RINVDSTADR"],
    301: Phrase("the operator refused the number of recipients", "operator odrzucił liczbę odbiorców"),
    302: _TEXT_FORM, 303: _TEXT_FORM, 304: _TEXT_FORM,
    305: SMPP_WORDS["ESME_RINVEXPIRY"],
    306: SMPP_WORDS["ESME_RINVSRCADR"],
    321: SMPP_WORDS["ESME_RINVSRCADR"],
    322: SMPP_WORDS["ESME_RINVSRCADR"],
    310: Phrase(
        "the operator refused to send a delivery report for it", "operator odmówił raportu doręczenia"
    ),
}  # fmt: skip
# Another 3xx is a refusal of the message (protocols.md 1.7); any other code, that it could not take it.
_SUBMIT_OTHER_3XX, _SUBMIT_OTHER = _MESSAGE_REFUSED, SMPP_WORDS["ESME_RSUBMITFAIL"]
_OFF = Phrase(
    "the phone did not answer the network (off or out of reach)",
    "telefon nie odpowiedział sieci (wyłączony lub poza zasięgiem)",
)
_NOT_IN_NETWORK = Phrase(
    "the phone was not registered in the network (off or out of reach)",
    "telefon nie był zalogowany w sieci (wyłączony lub poza zasięgiem)",
)
_NETWORK = Phrase("the operator's network failed", "wystąpił błąd sieci operatora")
_CONGESTED = Phrase("the operator's network was congested", "sieć operatora była przeciążona")
_CANCELLED = Phrase("cancelled at the operator", "anulowany u operatora")
# A failed report's 062, the network's reason (GSM MAP's), which says more than its 061.
CIMD2_REASON_WORDS: dict[int, Phrase] = {
    1: Phrase("the operator's network knows no such subscriber", "sieć operatora nie zna takiego abonenta"),
    9: Phrase("the network refused the subscriber", "sieć odrzuciła abonenta"),
    11: Phrase("the number has no SMS service", "numer nie ma usługi SMS"),
    13: Phrase("the number is barred from receiving SMS", "numer ma blokadę odbioru SMS-ów"),
    15: Phrase(
        "refused by the number's closed user group", "odrzucony przez zamkniętą grupę użytkowników numeru"
    ),
    19: Phrase("the phone does not take SMS", "telefon nie obsługuje SMS-ów"),
    20: Phrase("the phone reported an error", "telefon zgłosił błąd"),
    21: Phrase("the phone's network does not offer it", "sieć telefonu nie obsługuje tej usługi"),
    22: Phrase("the phone's memory is full", "pamięć telefonu jest pełna"),
    29: Phrase("the phone was off or out of reach", "telefon był wyłączony lub poza zasięgiem"),
    30: Phrase("the phone was busy", "telefon był zajęty"),
    36: _NETWORK, 63: _NETWORK, 64: _NETWORK, 70: _NETWORK,
    44: Phrase("the network refused the phone as a barred device", "sieć odrzuciła telefon jako zablokowany"),
    60: _OFF, 80: _OFF, 85: _OFF,
    61: _CONGESTED, 72: _CONGESTED,
    75: _NOT_IN_NETWORK, 81: _NOT_IN_NETWORK, 83: _NOT_IN_NETWORK, 84: _NOT_IN_NETWORK,
    86: _NOT_IN_NETWORK, 87: _NOT_IN_NETWORK, 88: _NOT_IN_NETWORK, 89: _NOT_IN_NETWORK, 90: _NOT_IN_NETWORK,
    82: Phrase(
        "the phone was roaming where it may not receive SMS",
        "telefon był w roamingu, w którym nie może odbierać SMS-ów",
    ),
    112: Phrase("the sender's prepaid credit ran out", "skończyły się środki na koncie nadawcy"),
    113: Phrase("the recipient's prepaid credit ran out", "skończyły się środki na koncie odbiorcy"),
    114: Phrase("the operator's prepaid system failed", "wystąpił błąd systemu przedpłat operatora"),
}  # fmt: skip
# A failed report's 061 (2, 3, 6–9: `smsc.cimd2.codes.STATUS_CODES`), when no 062 the table knows.
CIMD2_STATUS_WORDS: dict[int, Phrase] = {
    2: STAT_WORDS["EXPIRED"],
    3: STAT_WORDS["UNDELIV"],
    6: Phrase(
        "the phone did not answer the operator's last attempt", "telefon nie odpowiedział na ostatnią próbę"
    ),
    7: _CANCELLED,
    8: STAT_WORDS["DELETED"],
    9: _CANCELLED,
}


def cimd2_words(body: str, lang: Language) -> str | None:
    """A CIMD2 reason (after any "part 1 of 2: ") in words, its codes after them: `CIMD2 061:3 delivery
    failed 062:1 unknown subscriber` → "the operator's network knows no such subscriber (CIMD2 061:3,
    062:1)". The codes, not the link's English for them, are what the operator is asked about; an SMSC's
    own 901 text, which may say more than the code, stays beside its code. None for another reason."""
    if (m := _CIMD2_SUBMIT.fullmatch(body)) is not None:
        code = int(m["code"])
        # A general error (98) says the SMSC could not process the packet, whatever its 900: no verdict.
        words = CIMD2_SUBMIT_WORDS.get(code) or (_SUBMIT_OTHER_3XX if 300 <= code <= 399 else _SUBMIT_OTHER)
        words = _SUBMIT_OTHER if m["general"] else words
        said = f"CIMD2 98, 900:{code}" if m["general"] else f"CIMD2 900:{code}"
        if m["text"] and m["text"] != error_text(code):
            said += f' "{m["text"]}"'
        return f"{words(lang)} ({said})"
    if (m := _CIMD2_REPORT.fullmatch(body)) is not None:
        status = int(m["status"])
        reason = int(m["reason"]) if m["reason"] is not None else None
        words = CIMD2_REASON_WORDS.get(reason) if reason is not None else None
        words = words or CIMD2_STATUS_WORDS.get(status, STAT_WORDS["UNDELIV"])
        said = f"CIMD2 061:{status}" + (f", 062:{reason}" if reason is not None else "")
        return f"{words(lang)} ({said})"
    return None
