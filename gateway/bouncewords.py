"""The lines of what to do in a bounce whose cause is neither the number nor the user's resend
(`gateway.bounce._advice`), apart from `gateway.wording`, which is full: the operator refused the SMS
for good as the gateway sends it, or for the time being until it expired, the operator's own report
that it expired at a phone that stayed out of reach, and the long SMS that waited for a link or for
an admin's retry; the Subject and first line of one bounce for several numbers of one mail; and the
line that takes a bounce back, its SMS delivered after all. No I/O.
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
# The operator refused the SMS at submit for good for what the gateway sends (its sender, a status
# the gateway's form or text brings on: ESME_RINVSRCADR, ESME_RINVMSGLEN, ESME_RX_P_APPN, a CIMD2 3xx),
# not its number (`gateway.reasons.refused_for_good`): the admin's retry is refused for it, and "try
# again later" sent the user into the same refusal.
REFUSED_FOR_GOOD_ADVICE = Phrase(
    "What to do: the operator refuses this SMS as the gateway sends it (its sender, text or form), so"
    " sending it again as it is will not help; please tell the gateway's administrator, who can take it"
    " up with the operator.",
    "Co zrobić: operator nie przyjmuje tego SMS-a w postaci, w jakiej wysyła go bramka (nadawca, treść"
    " lub forma), więc ponowne wysłanie go bez zmian nic nie da; proszę powiadomić administratora"
    " bramki, który wyjaśni to z operatorem.",
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
# Expired waiting for the link that took another part of the long SMS, down
# (`gateway.store.partnotes.TIED_EXPIRED`): the rest could go by that link alone, the phone joining the
# parts one SMSC sent alike; the admin sees to the link.
TIED_DOWN_ADVICE = Phrase(
    "What to do: the gateway's link that had sent part of this SMS was down for as long as it was valid,"
    " and the rest could go by that link alone; please tell the gateway's administrator, and send it"
    " again once the link is back, if it is still needed.",
    "Co zrobić: połączenie bramki, którym wysłano część tego SMS-a, nie działało przez cały okres jego"
    " ważności, a resztę można było wysłać tylko tym połączeniem; proszę powiadomić administratora"
    " bramki i, jeśli SMS jest nadal potrzebny, wysłać go ponownie po przywróceniu połączenia.",
)
# The same with that link removed from the configuration (`LINK_GONE`): it will not come back, and a
# resend goes whole by a link that is configured. "Once the link is back" sent the user waiting for it.
TIED_REMOVED_ADVICE = Phrase(
    "What to do: the gateway's link that had sent part of this SMS was removed from its configuration"
    " before the rest could go; send it again if it is still needed: it goes whole by another link.",
    "Co zrobić: połączenie bramki, którym wysłano część tego SMS-a, zostało usunięte z jej konfiguracji,"
    " zanim reszta mogła zostać wysłana; jeśli SMS jest nadal potrzebny, proszę wysłać go ponownie:"
    " zostanie wysłany w całości innym połączeniem.",
)
# Expired waiting for an admin's retry, a part of the long SMS held, failed or cancelled
# (`gateway.store.partnotes.STUCK_EXPIRED`): the admin's retry sends it whole (a new validity). Told to
# send it again, the user did while the admin retried it, and the phone got it twice.
STUCK_ADVICE = Phrase(
    "What to do: part of this SMS was held, failed or was cancelled at the gateway, and the rest waited"
    " for its administrator; please ask the gateway's administrator, who retries it, rather than send"
    " it again: the phone could get it twice.",
    "Co zrobić: część tego SMS-a została wstrzymana, nie powiodła się lub została anulowana w bramce, a"
    " reszta czekała na jej administratora; proszę zwrócić się do administratora bramki, który ponowi"
    " wysyłkę, zamiast wysyłać SMS-a ponownie: telefon mógłby otrzymać go dwa razy.",
)

# --- one bounce for several SMS of one mail (`gateway.bouncegroup`) ---
# Counted in the way `wording.PARTS` counts parts in Polish ("liczba …: n"): no plural forms to pick.
GROUP_SUBJECT = Phrase("Undelivered SMS to {count} numbers", "Niedostarczone SMS-y (liczba numerów: {count})")
GROUP_INTRO = Phrase(
    "Your SMS could not be delivered to {count} of the numbers your mail was sent to; each is listed"
    " below with the reason.",
    "Nie udało się dostarczyć SMS-a pod część numerów, na które wysłano wiadomość (liczba numerów:"
    " {count}); poniżej każdy z nich z przyczyną.",
)
# Every number the mail went to failed, each named in this one bounce: "część numerów" (some of the
# numbers) said otherwise, in Polish (`GROUP_INTRO`'s "{count} of the numbers" read as some of them).
ALL_FAILED_INTRO = Phrase(
    "Your SMS could not be delivered to any of the {count} numbers your mail was sent to; each is listed"
    " below with the reason.",
    "Nie udało się dostarczyć SMS-a pod żaden z numerów, na które wysłano wiadomość (liczba numerów:"
    " {count}); poniżej każdy z nich z przyczyną.",
)

# First in the mail about an SMS delivered after its failure was told (`gateway.notifier`,
# `Finished.after_failure`): the bounce was the last word the sender had, and wrong.
AFTER_FAILURE = Phrase(
    "An earlier report said this SMS had failed. The SMSC has since reported that it reached the phone"
    " after all: a copy sent before the one that failed was delivered.",
    "Wcześniejszy raport mówił, że tego SMS-a nie udało się dostarczyć. Centrum SMS zgłosiło jednak"
    " później, że SMS dotarł do telefonu: doręczono kopię wysłaną przed tą, której się nie udało.",
)
