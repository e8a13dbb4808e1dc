"""The words of the mails people read, English and Polish side by side (`[gateway] language`).

A Polish office reads the gateway's bounces, answers and notices in Polish. Only the words a person
reads are here: SMTP replies, a DSN's delivery-status fields, headers other than Subject and an answer
mail's "(SMS from +48 …)" subject stay as they are in both languages, because the gateway and mail
programs read them back. Numbers, reasons and notes in Polish: `gateway.polish`. Dates stay
YYYY-MM-DD HH:MM. Each phrase is a `str.format` template; a missing placeholder is caught by the
tests of each mail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from gateway import polish as _pl

Language = Literal["en", "pl"]


class Phrase(NamedTuple):
    """One text in both languages, the same placeholders in each."""

    en: str
    pl: str

    def __call__(self, lang: Language, /, **values: object) -> str:
        return (self.pl if lang == "pl" else self.en).format(**values)


class Counted(NamedTuple):
    """A phrase whose Polish words agree with its numbers (`gateway.polish`): `polish` gives the
    values the Polish text shows in their place ("308 053 bajty"); English shows them as they come."""

    phrase: Phrase
    polish: Callable[[dict[str, Any]], dict[str, object]]

    def __call__(self, lang: Language, /, **values: Any) -> str:
        if lang == "pl":
            values = {**values, **self.polish(values)}
        return self.phrase(lang, **values)


# --- bounce of a failed SMS (gateway.bounce) ---
BOUNCE_SUBJECT = Phrase("Undelivered SMS to {number}", "Niedostarczony SMS do {number}")
BOUNCE_STATE = {
    "failed": Phrase(
        "Your SMS to {number} could not be delivered.", "Nie udało się dostarczyć SMS-a do {number}."
    ),
    "expired": Phrase(
        "Your SMS to {number} expired before it could be delivered.",
        "SMS do {number} wygasł, zanim udało się go dostarczyć.",
    ),
    "cancelled": Phrase("Your SMS to {number} was cancelled.", "SMS do {number} został anulowany."),
}
# One plain line of what to do, by the kind of failure (`gateway.bounce._advice`).
BOUNCE_ADVICE = {
    "number": Phrase(
        "What to do: check the number; the operator does not take it as it is.",
        "Co zrobić: proszę sprawdzić numer; operator nie przyjmuje go w tej postaci.",
    ),
    "failed": Phrase(
        "What to do: the phone may be off or unable to take SMS; try again later.",
        "Co zrobić: telefon może być wyłączony lub nie odbierać SMS-ów; proszę spróbować później.",
    ),
    "expired": Phrase(
        "What to do: it could not be sent in time; send it again if it is still needed.",
        "Co zrobić: nie udało się go wysłać na czas; jeśli jest nadal potrzebny, proszę wysłać go ponownie.",
    ),
    "optout": Phrase(
        "What to do: nothing; the phone's user asked for no more SMS from this gateway.",
        "Co zrobić: nic; użytkownik telefonu zrezygnował z SMS-ów z tej bramki.",
    ),
    "route": Phrase(
        "What to do: ask the gateway's administrator; no link of the gateway serves this number now.",
        "Co zrobić: proszę zapytać administratora bramki; żadne połączenie bramki nie obsługuje"
        " teraz tego numeru.",
    ),
    "cancelled": Phrase(
        "What to do: it was not sent; send the mail again if it is still needed.",
        "Co zrobić: SMS nie został wysłany; jeśli jest nadal potrzebny, proszę wysłać wiadomość ponownie.",
    ),
}
BOUNCE_NO_REASON = Phrase("no reason given by the SMSC", "centrum SMS nie podało przyczyny")
BOUNCE_REASON = Phrase("Reason: {reason}", "Przyczyna: {reason}")
BOUNCE_TEXT = Phrase("Text of the SMS ({parts} part(s)):", "Treść SMS-a (liczba części: {parts}):")

# --- notices (gateway.notify) ---
PARTS = Phrase("{n} part(s)", "liczba części: {n}")
DELIVERED_SUBJECT = Phrase("SMS delivered to {number}", "Doręczono SMS do {number}")
DELIVERED_TEXT = Phrase(
    "Your SMS to {number} was delivered ({parts}).\n", "SMS do {number} został doręczony ({parts}).\n"
)
UNREPORTED_SUBJECT = Phrase(
    "SMS sent to {number}; the SMSC sent no delivery report",
    "Wysłano SMS do {number}; centrum SMS nie przysłało raportu doręczenia",
)
UNREPORTED_NO_REASON = Phrase("no delivery report", "brak raportu doręczenia")
UNREPORTED_TEXT = Phrase(
    "Your SMS to {number} ({parts}): {reason}.\n\n"
    "The SMSC took it, but no delivery report came within its validity and a day, so its"
    " delivery is unconfirmed. It most likely reached the phone, and it is not sent again.\n",
    "SMS do {number} ({parts}): {reason}.\n\n"
    "Centrum SMS przyjęło go, ale raport doręczenia nie nadszedł w okresie ważności ani w ciągu doby"
    " po nim, więc doręczenie nie jest potwierdzone. Najpewniej dotarł do telefonu; nie zostanie"
    " wysłany ponownie.\n",
)
SHORTENED_SUBJECT = Phrase("SMS text was shortened: {subject}", "Tekst SMS-a został skrócony: {subject}")
SHORTENED_TEXT = Phrase(
    "Your email to {recipients} was longer than {parts} SMS parts.\n"
    "The first {parts} parts were sent; this text was cut off and not sent:\n\n{preview}\n",
    "Wiadomość e-mail do {recipients} przekroczyła dopuszczalną liczbę części SMS-a ({parts}).\n"
    "Wysłano pierwsze części ({parts}); ten tekst został obcięty i nie został wysłany:\n\n{preview}\n",
)
HELD_SUBJECT = Phrase("SMS held until {until}: {subject}", "SMS wstrzymany do {until}: {subject}")
HELD_TEXT = Phrase(
    "Your bulk email to {recipients} arrived during the quiet hours of your account.\n"
    "The SMS will be sent at {when}.\n",
    "Wiadomość masowa do {recipients} nadeszła w godzinach ciszy konta.\nSMS zostanie wysłany {when}.\n",
)
HELD_EXPIRES_TEXT = Phrase(
    "Your bulk email to {recipients} arrived during the quiet hours of your account.\n"
    "Its validity ends at {expires}, before the quiet hours end at {when}: the SMS will expire"
    " unsent at {expires} and you will get a notice of it.\n",
    "Wiadomość masowa do {recipients} nadeszła w godzinach ciszy konta.\n"
    "Jej ważność kończy się {expires}, przed końcem godzin ciszy ({when}): SMS wygaśnie"
    " bez wysłania {expires}, o czym przyjdzie powiadomienie.\n",
)
SUSPENDED_SUBJECT = Phrase("SMS account {account} suspended", "Konto SMS {account} zostało zawieszone")
# The Polish verb agrees with the failures: 1 "nie została doręczona", 2-4 "nie zostały doręczone", 5 "nie
# zostało doręczonych" ("4 z ostatnich 6 wiadomości nie zostało doręczonych" read wrong).
SUSPENDED_REASON = Counted(
    Phrase(
        "{failed} of its last {judged} messages failed (more than {share} of {after})",
        "{failed} z ostatnich {judged} wiadomości {verb} (próg zawieszenia: ponad {share} z {after})",
    ),
    lambda v: {
        "verb": _pl.plural(
            v["failed"], "nie została doręczona", "nie zostały doręczone", "nie zostało doręczonych"
        )
    },
)
SUSPENDED_TEXT = Phrase(
    "Account {account} was suspended automatically: {reason}.\n"
    "Its users cannot send SMS until an admin runs: smsgw account resume {account}\n",
    "Konto {account} zostało automatycznie zawieszone: {reason}.\n"
    "Jego użytkownicy nie mogą wysyłać SMS-ów, dopóki administrator nie wykona polecenia:"
    " smsgw account resume {account}\n",
)
ACCEPTED_SUBJECT = Phrase("SMS accepted: {subject}", "Przyjęto SMS: {subject}")
ACCEPTED_TEXT = Phrase(
    "Your email was accepted and will be sent as SMS:",
    "Wiadomość e-mail została przyjęta i zostanie wysłana jako SMS:",
)
ACCEPTED_TRANSLITERATED = Phrase(
    "Polish letters were replaced by plain ones to stay in the cheaper GSM alphabet.",
    "Polskie litery zastąpiono literami bez znaków diakrytycznych, aby zmieścić się w tańszym alfabecie GSM.",
)
ACCEPTED_PLAIN_PUNCTUATION = Phrase(
    "Typographic quotes, dashes, bullets and spaces were made plain (’ to ', “ ” to \", – to -, • to -, … to"
    " ...) to stay in the cheaper GSM alphabet.",
    "Typograficzne cudzysłowy, myślniki, punktory i spacje zastąpiono zwykłymi (’ na ', „ ” na \", – na -,"
    " • na -, … na ...), aby zmieścić się w tańszym alfabecie GSM.",
)
ACCEPTED_REMOVED = Phrase(
    "Removed from the email before sending: {removed}.", "Przed wysłaniem usunięto z wiadomości: {removed}."
)
ACCEPTED_VALID_UNTIL = Phrase(
    "The SMS is valid until {until}, as the email's expiry says: it is not delivered after that.",
    "SMS jest ważny do {until}, zgodnie z datą wygaśnięcia wiadomości: później nie zostanie dostarczony.",
)
NOT_SENT_OOF_SUBJECT = Phrase("Not sent as SMS: {subject}", "Nie wysłano jako SMS: {subject}")
NOT_SENT_OOF_TEXT = Phrase(
    'Your mail "{subject}" to {numbers} was not sent as SMS: its subject and its'
    " X-Auto-Response-Suppress header make it look like an out-of-office reply, which must not"
    " reach a phone. If you wrote it yourself, send it again with another subject.",
    "Wiadomość „{subject}” do {numbers} nie została wysłana jako SMS: jej temat i nagłówek"
    " X-Auto-Response-Suppress wskazują na automatyczną odpowiedź o nieobecności, która nie może"
    " trafić do telefonu. Jeśli napisano ją ręcznie, należy wysłać ją ponownie z innym tematem.",
)
NOT_SENT_IDENTICAL_SUBJECT = Phrase(
    "Not sent as SMS to {blocked}: {subject}", "Nie wysłano jako SMS do {blocked}: {subject}"
)
NO_SUBJECT = Phrase("(no subject)", "(bez tematu)")
NOT_SENT_IDENTICAL_TEXT = Phrase(
    "Your mail was sent as SMS to {sent}, but not to {blocked}: more than {limit} identical SMS to"
    " one number a day are not allowed (operator anti-spam rule). Change the text, or send it again"
    " tomorrow.",
    "Wiadomość wysłano jako SMS do {sent}, ale nie do {blocked}: liczba identycznych SMS-ów na jeden"
    " numer w ciągu dnia nie może przekroczyć {limit} (zasada antyspamowa operatora). Należy zmienić"
    " tekst albo wysłać wiadomość ponownie jutro.",
)
NOT_SENT_EXPIRED_TEXT = Phrase(
    "Your mail was sent as SMS to {sent} before its expiry date ({expiry}), but not to {late}: it came"
    " again naming them only after that date had passed. If it still matters to them, send a new mail.",
    "Wiadomość wysłano jako SMS do {sent} przed upływem jej terminu ważności ({expiry}), ale nie do"
    " {late}: dotarła ponownie z tymi numerami dopiero po tym terminie. Jeśli jest dla nich nadal"
    " aktualna, należy wysłać nową wiadomość.",
)

LIMIT_PERIOD = {"monthly": Phrase("monthly", "miesięczny"), "daily": Phrase("daily", "dzienny")}
LIMIT_OWNER = {
    "user": Phrase("user {name}", "użytkownika {name}"),
    "account": Phrase("account {name}", "konta {name}"),
}
LIMIT_REACHED_SUBJECT = Phrase(
    "SMS limit reached: {period} limit of {owner}", "Limit SMS wyczerpany: {period} limit {owner}"
)
LIMIT_TOO_LOW_SUBJECT = Phrase(
    "SMS limit too low for your email: {period} limit of {owner}",
    "Limit SMS za niski dla tej wiadomości: {period} limit {owner}",
)
LIMIT_TEXT = Phrase(
    "Your email was not sent as SMS: the {period} limit of {owner} is {limit} SMS parts, {used} are"
    " used, and the email needed {needed}.\nAsk your administrator to raise the limit, or wait for the"
    " next period.\n",
    "Wiadomość e-mail nie została wysłana jako SMS: {period} limit {owner} (w częściach SMS) wynosi"
    " {limit}, wykorzystano {used}, a wiadomość wymagała {needed}.\nNależy poprosić administratora"
    " o podniesienie limitu albo poczekać na następny okres.\n",
)
USAGE_SUBJECT = Phrase("Your SMS limits and use", "Limity i wykorzystanie SMS")
USAGE_HEAD = Phrase("SMS gateway: limits and use so far", "Bramka SMS: limity i dotychczasowe wykorzystanie")
USAGE_USER = Phrase("User {name}", "Użytkownik {name}")
USAGE_ACCOUNT = Phrase("Account {name}", "Konto {name}")
USAGE_OF = Phrase("{used} of {limit}", "{used} z {limit}")
USAGE_UNLIMITED = Phrase("{used} (no limit)", "{used} (bez limitu)")
USAGE_LINES = Phrase(
    "{label}\n  this month ({month_key}): {month} SMS parts\n  today ({day_key}): {day}\n",
    "{label}\n  w tym miesiącu ({month_key}): części SMS: {month}\n  dzisiaj ({day_key}): {day}\n",
)

# --- premium (gateway.notify, gateway.forwarded) ---
PREMIUM_CONFIRM_SUBJECT = Phrase(
    "Confirm premium SMS service {password}", "Potwierdzenie usługi SMS premium {password}"
)
PREMIUM_CONFIRM_TEXT = Phrase(
    "Premium SMS sent with the password {password} to {numbers} (account {account}) are to be mailed"
    " to this address.\n\n"
    "To confirm that this address wants them, reply to this mail, or send any mail to\n\n"
    "    {address}\n\n"
    "before {expires}. Until then the SMS are kept, not mailed.\n"
    "If you did not expect this mail, ignore it: nothing will be sent to you.\n",
    "SMS-y premium wysłane z hasłem {password} na numer(y) {numbers} (konto {account}) mają być"
    " przesyłane na ten adres.\n\n"
    "Aby potwierdzić, że ten adres ma je otrzymywać, wystarczy odpowiedzieć na tę wiadomość albo"
    " wysłać dowolną wiadomość na adres\n\n"
    "    {address}\n\n"
    "przed {expires}. Do tego czasu SMS-y są przechowywane, a nie przesyłane.\n"
    "Jeśli ta wiadomość jest nieoczekiwana, można ją zignorować: nic nie zostanie wysłane.\n",
)
PREMIUM_CUT_SUBJECT = Phrase("Your answer to {phone} was shortened", "Odpowiedź do {phone} została skrócona")
PREMIUM_CUT_TEXT = Phrase(
    "An answer to a premium SMS is one SMS. {phone} received only this:\n\n{sent}\n\n"
    "This was cut off and not sent:\n\n{preview}\n",
    "Odpowiedź na SMS premium to jeden SMS. Telefon {phone} otrzymał tylko to:\n\n{sent}\n\n"
    "Ten tekst został obcięty i nie został wysłany:\n\n{preview}\n",
)
PREMIUM_NO_TEXT = Phrase("(no text after the password)", "(brak tekstu po haśle)")
PREMIUM_FOOTER = Phrase(
    "Premium SMS to {number} from {phone}, {sent}.",
    "SMS premium na numer {number} z telefonu {phone}, {sent}.",
)
PREMIUM_FITS_PLAIN = Phrase(
    "160 characters, Polish letters sent without their marks; 70 with an emoji",
    "160 znaków, polskie litery wysyłane bez znaków diakrytycznych; 70 ze znakiem emoji",
)
PREMIUM_FITS = Phrase(
    "160 characters, 70 with Polish letters or an emoji", "160 znaków, 70 z polskimi literami lub emoji"
)
PREMIUM_REPLY = Phrase(
    "Reply to this mail to answer: the phone gets one free SMS ({fits}).",
    "Aby odpowiedzieć, wystarczy odpowiedzieć na tę wiadomość: telefon otrzyma jeden bezpłatny SMS ({fits}).",
)

# --- a phone's answer (gateway.forwarded); `gateway.smtp.textclean` reads both quote headers back ---
QUOTE_DATED_YOU = Phrase("On {at}, you wrote to {name}:", "Dnia {at} napisano do {name}:")
QUOTE_YOU = Phrase("You wrote to {name}:", "Napisano do {name}:")
QUOTE_DATED_BY = Phrase("On {at}, {who} wrote to {name}:", "Dnia {at} {who} napisał(a) do {name}:")
QUOTE_BY = Phrase("{who} wrote to {name}:", "{who} napisał(a) do {name}:")
SMS_EMPTY = Phrase("(the SMS was empty)", "(SMS był pusty)")
SMS_BLANK = Phrase("(the SMS held only blank space)", "(SMS zawierał same odstępy)")
SMS_UNSHOWABLE = Phrase(
    "(the SMS held only characters a mail cannot show: {codes})",
    "(SMS zawierał wyłącznie znaki, których nie da się pokazać w wiadomości e-mail: {codes})",
)

# --- the answers kept past the hourly limit, mailed together (gateway.conversations.kept) ---
KEPT_HEAD = {
    "one": Phrase(
        "1 answer from {phone} kept during a flood {when}"
        " (more than the gateway mails from one phone in an hour):",
        "Odpowiedź z numeru {phone} zatrzymana w bramce ({when}), bo przyszło więcej odpowiedzi, niż"
        " bramka przesyła e-mailem z jednego telefonu w ciągu godziny:",
    ),
    "many": Phrase(
        "{n} answers from {phone} kept during a flood {when}"
        " (more than the gateway mails from one phone in an hour):",
        "Odpowiedzi z numeru {phone} zatrzymane w bramce ({when}), razem {n}, bo przyszło ich więcej,"
        " niż bramka przesyła e-mailem z jednego telefonu w ciągu godziny:",
    ),
}
KEPT_BETWEEN = Phrase("between {first} and {last}", "od {first} do {last}")
KEPT_AT = Phrase("at {first}", "{first}")
KEPT_MORE = Phrase(
    "… and {n} more: they follow in the next mail, an hour from now at the earliest"
    " (your administrator lists them all: smsgw mo list --number {phone})",
    "… pozostałe zatrzymane odpowiedzi (liczba: {n}) przyjdą w następnym e-mailu, najwcześniej za"
    " godzinę (administrator bramki wyświetli wszystkie poleceniem: smsgw mo list --number {phone})",
)
KEPT_NO_MORE = Phrase(
    "… and {n} more, which are not mailed: too many were kept. They stay in the gateway, where your"
    " administrator lists them: smsgw mo list --number {phone}",
    "… pozostałe zatrzymane odpowiedzi (liczba: {n}) nie zostaną przesłane e-mailem, bo było ich zbyt"
    " wiele. Zostają w bramce, a administrator wyświetli je poleceniem: smsgw mo list --number {phone}",
)
KEPT_FALLBACK_SUBJECT = Phrase(
    "SMS from {phone} kept during a flood", "SMS-y z numeru {phone} zatrzymane w bramce (zbyt wiele naraz)"
)

# --- a bounce or postmaster mail handed to a person (gateway.forwarded.bounce_forward) ---
FORWARD_WHAT = {
    "bounce": Phrase("bounce", "zwrot poczty"),
    "delay warning": Phrase("delay warning", "ostrzeżenie o opóźnieniu"),  # of an answer mail: no bounce
    "mail to postmaster": Phrase("mail to postmaster", "wiadomość do postmastera"),
    "mail to abuse": Phrase("mail to abuse", "wiadomość na adres abuse"),  # RFC 2142's, taken as postmaster's
}
FORWARD_SUBJECT = Phrase(
    "{What} received by the SMS gateway: {subject}", "Bramka SMS otrzymała {what}: {subject}"
)
FORWARD_INTRO = Phrase(
    "A {what} reached the SMS gateway; it was not sent as SMS. {said}",
    "Bramka SMS otrzymała {what}; nie wysłano z tego SMS-a. {said}",
)
FORWARD_WHOLE = Phrase("The original is attached.", "Oryginał jest w załączniku.")
FORWARD_HEADERS_ONLY = Counted(
    Phrase(
        "The original is {size} bytes, more than {kib} KiB: only its headers are attached.",
        "Oryginał ma {size}, więcej niż {kib} KiB: załączono tylko jego nagłówki.",
    ),
    lambda v: {"size": _pl.counted(v["size"], "bajt", "bajty", "bajtów")},
)
FORWARD_AS_FILE = Phrase(
    " It has lines too long for mail, so it is attached as a file.",
    " Ma wiersze zbyt długie dla poczty, dlatego załączono go jako plik.",
)
FORWARD_WHY = Phrase("Why it is a {what}: {reason}", "Dlaczego to {what}: {reason}")
FORWARD_ENVELOPE = Phrase("Envelope sender: {sender}", "Nadawca w kopercie: {sender}")
FORWARD_EMPTY_SENDER = Phrase("<> (empty)", "<> (pusty)")
FORWARD_SENT_BY = Phrase("Sent by: {ip}", "Nadesłane z: {ip}")
FORWARD_UNKNOWN = Phrase("unknown", "nieznany")
FORWARD_TO = Phrase("To: {numbers}", "Do: {numbers}")
FORWARD_ORIGINAL_SUBJECT = Phrase("Subject: {subject}", "Temat: {subject}")
FORWARD_NONE = Phrase("(none)", "(brak)")

# --- the accepted notice's labels: what was removed from a mail (gateway.smtp) and what forced UCS-2
# (smsc.encoding); kept in English where they are made (the code compares them), worded here ---
_REMOVED_PL = {
    "quoted reply": "cytowana wiadomość",
    "forward header": "nagłówek przekazanej wiadomości",
    "attribution line": "wiersz z autorem cytatu",
    "forwarded message": "przekazana wiadomość",
    "inline image reference": "odwołanie do obrazka",
    "the gateway's note": "uwaga bramki",
    "signature": "podpis",
    "notice": "klauzula w stopce",
    "PGP signature": "podpis PGP",
    "HTML converted": "HTML zamieniony na tekst",
    "text of the attached message used": "użyto tekstu załączonej wiadomości",
    "attachment read as text": "załącznik odczytany jako tekst",
    "HTML parts after the first not read": "nie odczytano części HTML po pierwszej",
    "rich-text body read to its first 400,000 bytes": "treść RTF odczytana do pierwszych 400 000 bajtów",
    "subject not sent (an answer in a conversation)": "temat pominięty (odpowiedź w rozmowie)",
}
_REMOVED_PL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"attachments not sent \((\d+)\)"), "nie wysłano załączników ({0})"),
    (re.compile(r"text past (\d+) parts"), "tekst ponad {0} części"),
    (re.compile(r"HTML parts past the first (\d+) not read"), "nie odczytano części HTML po pierwszych {0}"),
    (re.compile(r"(.+) forced UCS-2"), "z powodu znaków: {0}"),  # the SMS's coding (smsc.encoding)
    (re.compile(r"subject cut to (\d+) characters"), "temat skrócony do {0} znaków"),
    (re.compile(r"text below (.+)"), "tekst poniżej {0}"),
    (re.compile(r"text from (.+)"), "tekst od {0}"),
    (
        re.compile(r"subject not sent \(an answer in a conversation with (.+)\)"),
        "temat pominięty (odpowiedź w rozmowie z {0})",
    ),
)


def label_words(label: str, lang: Language) -> str:
    """One label of the accepted notice, in `lang`; a label not known here is shown as it is."""
    if lang != "pl":
        return label
    if label in _REMOVED_PL:
        return _REMOVED_PL[label]
    for pattern, words in _REMOVED_PL_PATTERNS:
        if (m := pattern.fullmatch(label)) is not None:
            return words.format(*m.groups())
    return label
