"""The lines of what to do in a bounce whose cause is neither the number nor the user's resend
(`gateway.bounce._advice`), apart from `gateway.wording`, which is full: the operator refused the SMS
for the time being until it expired, and the operator's own report that it expired at a phone that
stayed out of reach. No I/O.
"""

from __future__ import annotations

from gateway.wording import Phrase

# The operator answered every attempt with a temporary refusal (ESME_RSYSERR, a throttle, a CIMD2 error)
# until the validity ran out: sending it again meets the same fault or limit until someone takes it up.
OPERATOR_REFUSED_ADVICE = Phrase(
    "What to do: the operator turned it away for as long as the SMS was valid (a fault or a sending"
    " limit on its side); please tell the gateway's administrator, who takes it up with the operator."
    " Send it again once that is settled, if it is still needed.",
    "Co zrobić: operator odrzucał SMS-a przez cały okres jego ważności (usterka lub limit wysyłki po"
    " jego stronie); proszę powiadomić administratora bramki, który wyjaśni to z operatorem. Jeśli SMS"
    " jest nadal potrzebny, proszę wysłać go ponownie po usunięciu problemu.",
)
# The operator reported the SMS expired (SMPP stat EXPIRED, CIMD2 061:2): the phone was off or out of
# reach for its whole validity. "Try again later" was the advice for a phone off a moment.
UNREACHABLE_ADVICE = Phrase(
    "What to do: the phone stayed off or out of reach for as long as the SMS was valid; check that the"
    " number is in use, or reach its user another way, and send it again if it is still needed.",
    "Co zrobić: telefon był wyłączony lub poza zasięgiem przez cały okres ważności SMS-a; proszę sprawdzić,"
    " czy numer jest używany, albo skontaktować się z odbiorcą inaczej, a jeśli SMS jest nadal potrzebny,"
    " wysłać go ponownie.",
)
# Expired while no link serving the number was up (`gateway.store.partnotes.NO_LINK_EXPIRED`): the
# gateway's outage, which its admin sees to; a resend before the link is back meets the same.
NO_LINK_ADVICE = Phrase(
    "What to do: the gateway had no working link to the operator for this number for as long as the SMS"
    " was valid; please tell the gateway's administrator, and send it again once the link is back, if it"
    " is still needed.",
    "Co zrobić: bramka przez cały okres ważności SMS-a nie miała działającego połączenia z operatorem dla"
    " tego numeru; proszę powiadomić administratora bramki i, jeśli SMS jest nadal potrzebny, wysłać go"
    " ponownie po przywróceniu połączenia.",
)
