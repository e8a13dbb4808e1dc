"""Polish numbers, money and the gateway's own English sentences as a Polish mail says them.

Beside `gateway.wording`, whose phrases these fill: Polish puts the noun after a number in one of
three forms (1 bajt, 2 bajty, 5 bajtów), groups thousands with a space and writes a decimal comma
("1 234,50 zł"), where "308053 bajtów" and "6.00 PLN" read as a foreigner's. The reasons and notes
the gateway stores and logs stay English (the CLI, the panel and the log show them); a Polish mail
shows them through `reason_words` and `note_words`, and a sentence not known here as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.wording import Language


def plural(n: int, one: str, few: str, many: str) -> str:
    """The form of a Polish noun after `n`: 1 `one`; 2-4, 22-24, 102-104 … `few` (not 12-14);
    else `many` (0, 5-21, 25-31 …)."""
    n = abs(n)
    if n == 1:
        return one
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return few
    return many


def grouped(n: int) -> str:
    """`n` with its thousands set apart by a space, as Polish writes them: 308 053, 1 234."""
    return f"{n:,}".replace(",", " ")


def counted(n: int, one: str, few: str, many: str) -> str:
    """`n` grouped and its noun in the form it takes: "308 053 bajty", "1 SMS", "30 SMS-ów"."""
    return f"{grouped(n)} {plural(n, one, few, many)}"


def zloty(grosze: int) -> str:
    """Integer grosze as a person reads an amount in Polish: "1 234,50 zł", "-0,05 zł". Exact (no
    float); the billing file keeps its own `6.00` (`billing_reports.render.pln`), which programs read."""
    sign = "-" if grosze < 0 else ""
    g = abs(grosze)
    return f"{sign}{grouped(g // 100)},{g % 100:02d} zł"


# The billing statuses (`billing_reports.monthly.STATUSES`) as a count of SMS in the mail says them:
# "doręczone 55, niedoręczone 12"; the file keeps its English words.
STATUS_PL = {
    "delivered": "doręczone",
    "failed": "niedoręczone",
    "expired": "wygasłe",
    "pending": "oczekujące",
}


def status_words(status: str, lang: Language) -> str:
    return STATUS_PL.get(status, status) if lang == "pl" else status


# --- why a machine mail is one (`gateway.smtp.automail`, `gateway.smtp.postmaster`): each of the
# "; "-joined reasons; a header's own words ("Auto-Submitted: auto-replied") stay as they are ---
_REASONS_PL = {
    "delivery status notification": "raport o doręczeniu poczty (DSN)",
    "bounce (empty envelope sender)": "pusty nadawca w kopercie",
    "bounce (From: MAILER-DAEMON)": "w polu From: MAILER-DAEMON",
    "read receipt": "potwierdzenie przeczytania",
    "abuse feedback report": "raport o nadużyciu",
    "Outlook recall": "odwołanie wiadomości w Outlooku",
    "out-of-office reply": "automatyczna odpowiedź o nieobecności",
    "automatic reply (Outlook rule)": "automatyczna odpowiedź (reguła Outlooka)",
    "meeting response": "odpowiedź na zaproszenie na spotkanie",
    "out-of-office reply (by its subject)": "automatyczna odpowiedź o nieobecności (po temacie)",
}
_ADDRESSED_TO = re.compile(r"addressed to (<[^<>]*>)")


def reason_words(reason: str, lang: Language) -> str:
    """A machine mail's recorded reason(s), in `lang`."""
    if lang != "pl":
        return reason
    said = []
    for one in reason.split("; "):
        if (m := _ADDRESSED_TO.fullmatch(one)) is not None:
            said.append(f"zaadresowana do {m.group(1)}")
        else:
            said.append(_REASONS_PL.get(one, one))
    return "; ".join(said)


# --- the bracketed notes of answer, fallback and premium mails (`gateway.forwarded`), made in English
# where they are stored (`gateway.conversations`, `gateway.premium`): each sentence, wherever it
# stands in a note joined of several ---
def _sms(n: str) -> str:
    return counted(int(n), "SMS", "SMS-y", "SMS-ów")


def _days(n: str) -> str:
    if "." in n:  # a fraction (a reply window of 0.5 days): decimal comma, and "dnia" as Polish says it
        return f"{n.replace('.', ',')} dnia"
    return f"{n} {'dzień' if n == '1' else 'dni'}"


_UNITS_PL = {
    "hour": ("godzinę", "godziny", "godzin"),
    "minute": ("minutę", "minuty", "minut"),
    "second": ("sekundę", "sekundy", "sekund"),
}


def _ago(n: str, unit: str = "day") -> str:
    if unit in _UNITS_PL:
        return f"{n} {plural(int(n), *_UNITS_PL[unit])} temu"
    return "dzisiaj" if n == "0" else f"{n} {'dzień' if n == '1' else 'dni'} temu"


# The languages of the national GSM tables (`smsc.gsmshifts.LANGUAGES`) as Polish names them.
_LANGUAGES_PL = {
    "Turkish": "turecki", "Spanish": "hiszpański", "Portuguese": "portugalski", "Bengali": "bengalski",
    "Gujarati": "gudżarati", "Hindi": "hindi", "Kannada": "kannada", "Malayalam": "malajalam",
    "Oriya": "orija", "Punjabi": "pendżabski", "Tamil": "tamilski", "Telugu": "telugu", "Urdu": "urdu",
}  # fmt: skip
_UNKNOWN_TABLE = re.compile(r"\bunknown, id ([0-9]+)")


def _languages(names: str) -> str:
    names = _UNKNOWN_TABLE.sub(r"nieznany, id \1", names)
    return ", ".join(_LANGUAGES_PL.get(name, name) for name in names.split(", "))


# The kinds of number as `gateway.smtp.addressing.kind_words` says them, in Polish (a test holds
# every kind to a word here): "(premium-rate)" left English in a Polish note.
KINDS_PL = {
    "fixed-line": "stacjonarny",
    "mobile": "komórkowy",
    "fixed-line or mobile": "stacjonarny lub komórkowy",
    "toll-free": "bezpłatny, infolinia",
    "premium-rate": "o podwyższonej opłacie",
    "shared-cost": "o współdzielonej opłacie",
    "VoIP": "VoIP",
    "personal": "osobisty",
    "pager": "pager",
    "universal access (UAN)": "numer dostępowy UAN",
    "voicemail": "poczta głosowa",
    "satellite and international-network": "satelitarny lub sieci międzynarodowej",
}

_PHONE = r"(\+?[0-9][0-9 ]*[0-9]|\S+)"
_NOTES_PL: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(rf"{_PHONE} answered with an opt-out word: further SMS to it are refused"),
        lambda m: f"Numer {m[1]} odpowiedział słowem rezygnacji: kolejne SMS-y na ten numer są odrzucane",
    ),
    (
        re.compile(
            rf"{_PHONE} sent ([0-9]+) SMS within an hour: more within the hour are kept in the gateway,"
            " and come together in one mail once an hour passes without more"
        ),
        lambda m: (
            f"Numer {m[1]} wysłał {_sms(m[2])} w ciągu godziny: kolejne z tej godziny zostają w bramce"
            " i przyjdą razem w jednym e-mailu, gdy minie godzina bez nowych"
        ),
    ),
    (re.compile(r"^Not forwarded to a client: "), lambda m: "Nie przekazano klientowi: "),
    (
        re.compile(
            rf"{_PHONE} is a (.+?) number, which this gateway sends no SMS to: this SMS cannot be answered"
        ),
        lambda m: (
            f"Na numer {m[1]} ({KINDS_PL.get(m[2], m[2])}) bramka nie wysyła SMS-ów:"
            " na ten SMS nie można odpowiedzieć"
        ),
    ),
    (
        re.compile(r"no premium service has the password (\S+)"),
        lambda m: f"żadna usługa premium nie ma hasła {m[1]}",
    ),
    (
        re.compile(r"the text does not start with a premium password \(KP and three letters or digits\)"),
        lambda m: "tekst nie zaczyna się od hasła premium (KP i trzy litery lub cyfry)",
    ),
    (re.compile(r"^Not matched: "), lambda m: "Nie dopasowano: "),
    (
        re.compile(
            rf"no SMS was sent to {_PHONE} from {_PHONE} within the reply window"
            r" \(([0-9.]+) days unless the account sets its own\)"
        ),
        lambda m: (
            f"na numer {m[1]} nie wysłano z numeru {m[2]} żadnego SMS-a w czasie na odpowiedź"
            f" ({_days(m[3])}, o ile konto nie ustala własnego)"
        ),
    ),
    (
        re.compile(
            r"the newest SMS to this phone from this number was (\S+)'s(?: \(([^()]*)\))?"
            r" on ([0-9-]+ [0-9:]+), ([0-9]+) (day|hour|minute|second)s? ago"
        ),
        lambda m: (
            f"ostatni SMS z tego numeru na ten telefon wysłał(a) {m[1]}"
            + (f" (konto {m[2]})" if m[2] else "")
            + f" dnia {m[3]}, {_ago(m[4], m[5])}"
        ),
    ),
    (
        re.compile(
            r", past its reply window of ([0-9.]+) days?: not mailed to them,"
            r" as the number may have changed hands"
        ),
        lambda m: (
            f", po czasie na odpowiedź ({_days(m[1])}): nie przesłano tej osobie, bo numer mógł zmienić"
            " właściciela"
        ),
    ),
    (
        re.compile(r"; (\S+)'s older SMS is not answered past a newer one"),
        lambda m: f"; odpowiedź nie trafia do starszego SMS-a od {m[1]} z pominięciem nowszego",
    ),
    (
        re.compile(r", within its reply window, but that SMS is not known to have reached the phone before"),
        lambda m: ", w czasie na odpowiedź, ale nie wiadomo, czy tamten SMS wcześniej dotarł do telefonu",
    ),
    (
        re.compile(r"the sender is not a phone number \(alphanumeric or malformed\): it cannot be answered"),
        lambda m: "nadawca nie jest numerem telefonu (nazwa lub błędny numer): nie można mu odpowiedzieć",
    ),
    (
        re.compile(
            r"The SMS used a national alphabet not supported here \(([^()]*)\): some letters may be wrong"
        ),
        lambda m: (
            f"SMS napisano alfabetem narodowym, którego bramka nie obsługuje ({_languages(m[1])}):"
            " niektóre litery mogą być błędne"
        ),
    ),
    (
        re.compile(rf"{_PHONE} is now opted out: further SMS to it are refused"),
        lambda m: f"numer {m[1]} zrezygnował z SMS-ów: kolejne SMS-y na ten numer są odrzucane",
    ),
    (
        re.compile(r"^Not delivered: the mail relay refused the mail to (\S+) "),
        lambda m: f"Nie doręczono: serwer pocztowy odrzucił wiadomość do {m[1]} ",
    ),
    (re.compile(r"^Not delivered: "), lambda m: "Nie doręczono: "),
    (
        re.compile(r"\. Sent to the fallback address instead$"),
        lambda m: ". Wysłano zamiast tego na adres zapasowy",
    ),
)


def note_words(note: str, lang: Language) -> str:
    """A bracketed note of the gateway's mail, in `lang`. It keeps the form `gateway.smtp.textclean`
    knows as the gateway's own note (some words, a colon), so a forward of the mail still drops it."""
    if lang != "pl":
        return note
    for pattern, words in _NOTES_PL:
        note = pattern.sub(words, note)
    return note
