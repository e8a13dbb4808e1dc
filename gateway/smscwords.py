"""An SMSC's reason for a failed SMS in words, English and Polish (`gateway.reasons`): the SMPP receipt's
`stat:`, the submit's refusal status, and the part of a long SMS it is about. The SMSC's own code stays
after the words for whoever asks the operator."""

from __future__ import annotations

from gateway.wording import Phrase

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
}
