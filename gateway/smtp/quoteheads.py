"""Where the header of a quoted or forwarded message begins in a mail's body: a separator line
("-----Original Message-----" as Outlook writes it in each language), a header block as Outlook and
others write it ("From:/Sent:/To:/Subject:" and its labels in the languages of a Polish company's staff
and partners: Polish, English, German, French, Spanish, Italian, Dutch, Czech, Slovak, Portuguese,
Russian, Ukrainian) or a reply attribution ("On … wrote:", "Dnia … napisał(a):", "El … escribió:"),
wrapped over up to three lines.

Its own module because telling such a header from a person's own line ("Od: 10:00", "On my way.")
is one judgement with its own tables, which `gateway.smtp.textclean` asks wherever it cuts quotes.
"""

from __future__ import annotations

import re
import unicodedata

QUOTED = "quoted reply"
FORWARDED = "forwarded message"
OWN_NOTE = "the gateway's note"

# Separator lines that start a quoted or forwarded message; matched against the stripped line, case
# folded. Yahoo runs the whole header block into the separator line, hence no `$` anchor. Outlook
# writes "-----Original Message-----" in the language of its user, so a partner's reply in Czech
# or Russian carried its whole quote to the phone.
SEPARATORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        QUOTED,
        re.compile(
            r"^-{2,}\s*(original message|wiadomość oryginalna|oryginalna wiadomość|ursprüngliche nachricht"
            r"|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|původní zpráva"
            r"|pôvodná správa|mensagem original|исходное сообщение|оригінальне повідомлення"
            r"|original appointment|oryginalny termin)\s*-{2,}"
        ),
    ),
    (
        FORWARDED,
        re.compile(
            r"^-{2,}\s*(forwarded message|przekazana wiadomość|wiadomość przekazana|wiadomość przesłana dalej"
            r"|treść przekazanej wiadomości|przesłana wiadomość|weitergeleitete nachricht|message transféré"
            r"|message transmis|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|přeposlaná zpráva"
            r"|preposlaná správa|mensagem encaminhada|mensagem reencaminhada|пересылаемое сообщение"
            r"|перенаправленное сообщение|переслане повідомлення|перенаправлене повідомлення)\s*-{2,}"
        ),
    ),
    (
        FORWARDED,
        re.compile(
            r"^(begin forwarded message|początek przekazywanej wiadomości"
            r"|anfang der weitergeleiteten nachricht|début du message (réexpédié|transféré)"
            r"|inicio del mensaje reenviado|inizio messaggio inoltrato"
            r"|begin doorgestuurd bericht|začátek přeposílané zprávy|začiatok preposlanej správy"
            r"|início da mensagem (reencaminhada|encaminhada)|начало переадресованного сообщения"
            r"|початок листа, що пересилається)\s*:"
        ),
    ),
)
# Whether any of SEPARATORS matches (none has flags of its own).
_SEPARATOR_ANY = re.compile("|".join(f"(?:{p.pattern})" for _, p in SEPARATORS))
# A forwarded message's rule in words no table lists ("---------- Wiadomość przekazana dalej
# ---------", Gmail's in a language added later, a webmail's own): up to five words between dashes,
# a message word and a forwarded one among them. A heading a person types between dashes ("-----
# Agenda -----", "--- Wiadomość od klienta ---", "--- Proszę przekazać ten mail ---") has no such pair.
_WORD = r"[^\s.,!?-]++(-[^\s.,!?-]++)*+"  # "E-Mail" is one
_FORWARD_RULE = re.compile(
    rf"^-{{2,}}+\s*+(?=.{{0,60}}?\b(message|wiadomo|mail|nachricht|messag|mensaj|mensag|bericht|zpráv|správ"
    r"|сообщени|повідомлен|лист))(?=.{0,60}?\b(forwarded|przekazan|przekazyw|przesłan|weitergeleitet"
    r"|transféré|transmis|reenviad|inoltrat|doorgestuurd|přeposlan|preposlan|encaminhad|reencaminhad"
    rf"|пересл|перенаправлен|переадрес)){_WORD}(\s++{_WORD}){{0,4}}\s*+-{{2,}}$"
)
_RULE_MAX = 200


def separator(line: str) -> str | None:
    """The label of the separator `line` is (QUOTED, FORWARDED), or None."""
    folded = line.strip().casefold()
    if _SEPARATOR_ANY.match(folded) is None:  # one match for the line that is none (nearly every one)
        forward = folded[:2] == "--" and len(folded) <= _RULE_MAX and _FORWARD_RULE.match(folded)
        return FORWARDED if forward else None
    for label, pattern in SEPARATORS:
        if pattern.match(folded):
            return label
    return None


# Reply attributions ("On <date>, <name> wrote:"). Clients wrap them, so up to three lines are joined.
# Each ends in `:$` (`attribution_end` tries none on a line without a colon at its end). Gmail, Apple
# Mail, Thunderbird and Outlook write them in their user's language: "El … escribió:", "Il giorno …
# ha scritto:", "Op … schreef …:", "Dne … napsal(a):", "… написал(а):", "… пише:", and Gmail in
# Russian with no verb at all ("пн, 5 дек. 2026 г. в 10:00, Иван <i@x.ru>:"). The generic rules
# (True) count only where `attribution_end` says.
_WROTE = (
    r"wrote|writes|napisał|napisała|napisał\(a\)|pisze|schrieb|a écrit|escribió|ha scritto|escreveu"
    r"|napsal|napsala|napsal\(a\)|napísal|napísala|napísal\(a\)|написал|написала|написал\(а\)|пишет|пише|написав"
    r"|написав\(ла\)"
)
_ON = r"(on|am|le|el|il|op|em|dne|dnia|w dniu)"
ATTRIBUTIONS: tuple[tuple[re.Pattern[str], bool], ...] = (
    # "wrote to <number>:" is the header above the quoted SMS in the gateway's own reply mails
    (re.compile(r"^on\b.{0,300}\bwrote(\s+to\s+[^:]{1,80})?\s?:$"), False),
    (re.compile(r"^w dniu\b.{0,300}\b(pisze|napisał|napisała|napisał\(a\))\s?:$"), False),
    (re.compile(r"^dnia\b.{0,300}\b(napisał|napisała|napisał\(a\)|pisze)\s?:$"), False),
    # That header where `[gateway] language = "pl"`, in the form the gateway writes it alone: read
    # as any "dnia … napisano do …:", it cut a person's own sentence ("Dnia 5 maja napisano do
    # Pana:") and all below it from their SMS.
    (
        re.compile(r"^dnia \d{4}-\d{2}-\d{2} \d{2}:\d{2} (napisano|.{1,200} napisał\(a\)) do [^:]{1,80}:$"),
        False,
    ),
    (re.compile(r"^wiadomość napisana przez\b.{0,300}:$"), False),
    (re.compile(r"^am\b.{0,300}\bschrieb\b.{0,120}:$"), False),
    (re.compile(r"^le\b.{0,300}\ba écrit\s?:$"), False),
    (re.compile(r"^el\b.{0,300}\bescribió\s?:$"), False),
    (re.compile(r"^il\b.{0,300}\bha scritto\s?:$"), False),
    (re.compile(r"^op\b.{0,300}\b(schreef\b.{0,120}|geschreven\s?):$"), False),
    (re.compile(r"^dne\b.{0,300}\b(napsal|napsala|napsal\(a\)|napísal|napísala|napísal\(a\))\s?:$"), False),
    (re.compile(r"^em\b.{0,300}\bescreveu\s?:$"), False),
    # Outlook's Russian and Ukrainian "<date> пользователь "Иван" <i@x.ru> написал:"
    (
        re.compile(
            r"^(\d|(пн|вт|ср|чт|пт|сб|вс|нд)\b).{0,300}?\b(пользователь|користувач)\b.{1,300}\b(написал|написав)\s?:$"
        ),
        False,
    ),
    # The name first, the date after the verb, as K-9, FairEmail and Gmail's apps in some languages
    # write it ("Anna Nowak <anna@firma.pl> schrieb am Mo., 7. Dez. 2026, 10:49:", "Anna Nowak wrote
    # on 07.12.2026 10:49:"): the verb and its "on" are no sentence's end, and a year is named.
    (re.compile(rf"^.{{1,200}}?\b({_WROTE}) {_ON}\b.{{0,80}}?\b\d{{4}}\b.{{0,60}}:$"), False),
    (_GENERIC_WROTE := re.compile(rf"^.{{1,200}}\b({_WROTE})\s?:$"), True),
    # Bounded, with one free run before the address, and "@" once in it: a line of "1(a@a@a@…:"
    # otherwise took minutes to be found none.
    (
        re.compile(r"^(?=.{1,400}$).{1,300}?[<\[(][^<>\[\]()\s@]{1,64}@[^<>\[\]()\s@]{1,255}[>\])]\)?\s?:$"),
        True,
    ),
)
# The generic rule tried on a line only when its end is one of those verbs: tried on every line
# with a colon at its end, its 25 verbs at each of 200 positions doubled the time of a mail of such
# lines.
_WROTE_TAIL = re.compile(rf"\b(?:{_WROTE})\s?:$")
# Polish Gmail puts the date first ("śr., 11 gru 2019 o 10:49 Jan Kowalski" / "<jan@x.pl> napisał(a):"),
# and so do Russian and Ukrainian Gmail ("пн, 5 дек. 2026 г. в 10:00, Иван" / "<i@x.ru>:").
_ATTRIBUTION_START = re.compile(
    r"^(?:(?:on|w dniu|dnia|am|le|el|il|op|dne|em|wiadomość napisana)\b"
    r"|(?:pon|wt|śr|czw|pt|sob|niedz|nd)\.,\s|(?:пн|вт|ср|чт|пт|сб|вс|нд),\s)"
)
# The sender's address as attributions write it: "<jan@x.pl>", "[mailto:jan@x.pl]", "(<j@x.es>)".
_ADDRESS = re.compile(r"[<\[(][^<>\[\]()\s@]{0,64}@[^<>\[\]()\s@]{1,255}[>\])]")


# A time as every client writes it in an attribution ("10:00"; "10.00" only after a date with its
# year, as "5.12" alone is a date a person writes).
_TIME = re.compile(r"(?<![\d:.])\d{1,2}:[0-5]\d(?!\d)")
_DOT_TIME = re.compile(
    r"(?:\b\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2})\D{1,20}?(?<![\d.:])(?:[01]?\d|2[0-3])\.[0-5]\d(?![\d.])"
)
# The start of Gmail's attribution where it has no start word: a weekday and a date with its year
# ("пн, 5 дек. 2026 г. в 10:00, Иван <i@x.ru>:", "po 5. 12. 2026 v 10:00 …", "śr., 11 gru 2019 o …").
_CLIENT_DATE_START = re.compile(
    r"^(?:(?:пн|вт|ср|чт|пт|сб|вс|нд|po|út|ut|st|čt|št|pá|pi|so|ne|pon|wt|śr|czw|sob|niedz)\.?,?\s+)?"
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}(?:[./-]\s?|\s)\S{1,12}?[\s./-]\s?\d{2,4})\b"
)


def stamped(text: str) -> bool:
    """Whether an attribution's text names a time or the sender's address, as every client's does
    ("On Mon, Dec 5, 2026 at 10:00", "Op 05-12-2026 om 10:00 schreef Jan:", "El … <j@x.es> escribió:").
    A date alone is no proof: a person's "Op 5 december schreef ik al:" or "Klient 5.12 pisze:" has one,
    and cutting there took their own text from the SMS."""
    return any(p.search(text) is not None for p in (_TIME, _DOT_TIME, _ADDRESS))


def _sure(text: str, generic: bool) -> bool:
    """Whether an attribution cuts the text below it with no `>` quote there. A generic one (no start
    word of its own) must open as Gmail's does, with a date, and name a time and the address: a
    person's "Reklamacja z 5.12 od klienta Jan Kowalski <jan@x.pl>:" has a date and an address too."""
    if not generic:
        return stamped(text)
    return (
        _CLIENT_DATE_START.match(text) is not None
        and _ADDRESS.search(text) is not None
        and (_TIME.search(text) is not None or _DOT_TIME.search(text) is not None)
    )


def closing(text: str) -> bool:
    """Whether an attribution left last in a mail's text heads a quote gone already (an HTML reply's
    blockquote is dropped before the text is read): it names a time or the address, and a generic
    one opens with a date as Gmail's and Thunderbird's do ("05.12.2026 10:00, Иван пишет:"). A
    person's closing "Please call Jan Kowalski <jan@x.pl>:" or "Klient 5.12 pisze:" stays."""
    folded = text.casefold()
    if not stamped(folded):
        return False
    specific = folded.endswith(":") and any(p.match(folded) for p, generic in ATTRIBUTIONS if not generic)
    return specific or _CLIENT_DATE_START.match(folded) is not None


# Header blocks of a quoted message (Outlook "From:/Sent:/To:/Subject:", Polish "Od:/Wysłano:/Do:/
# Temat:", Thunderbird's "Nadawca:/Adresat:"), optionally bold-starred by a plain-text rendering.
# Outlook writes the labels in its user's language: "De:/Enviado el:/Para:/Asunto:" (Spanish),
# "Da:/Inviato:/A:/Oggetto:", "Van:/Verzonden:/Aan:/Onderwerp:", "Od:/Odesláno:/Komu:/Předmět:",
# "От:/Отправлено:/Кому:/Тема:", "Від:/Надіслано:/Кому:/Тема:", French with a space before the colon.
_FROM_LABELS = frozenset(
    {"from", "od", "nadawca", "von", "de", "da", "van", "от", "від", "від кого", "отправитель", "mittente"}
)
_SENT_LABELS = frozenset(
    {
        "sent",
        "wysłano",
        "wysłane",
        "gesendet",
        "envoyé",
        "enviado",
        "enviado el",
        "inviato",
        "verzonden",
        "odesláno",
        "odoslané",
        "отправлено",
        "надіслано",
        "відправлено",
    }
)
_DATE_LABELS = _SENT_LABELS | {"date", "data", "datum", "fecha", "dátum", "дата"}
_TO_LABELS = frozenset({"to", "do", "adresat", "an", "à", "a", "para", "aan", "komu", "pre", "pour", "кому"})
_SUBJECT_LABELS = frozenset(
    {"subject", "temat", "betreff", "objet", "asunto", "oggetto", "onderwerp", "předmět", "predmet"}
    | {"assunto", "тема", "sujet"}
)
_ADDRESSED_LABELS = _TO_LABELS | _SUBJECT_LABELS
_OTHER_LABELS = frozenset(
    {"cc", "dw", "kopia", "kopie", "kópia", "копия", "копія", "kopie (cc)", "copie à", "bcc", "udw"}
    | {"reply-to", "importance", "priorytet", "wichtigkeit", "importancia", "priorità", "важность"}
)
_LABELS = _FROM_LABELS | _DATE_LABELS | _ADDRESSED_LABELS | _OTHER_LABELS
_LABEL_ANY = "|".join(re.escape(label) for label in sorted(_LABELS, key=len, reverse=True))
_HEADER_LINE = re.compile(
    rf"^\*?({_LABEL_ANY})\*?\s*:\*?\s*(.*)$",
    re.IGNORECASE,
)
# What may stand before a header line's colon: a label, its stars, white space (none holds a colon).
# A line whose first colon comes later is no header line, told without trying each of the labels
# at its start (a one-line mail's every line was, at a sixth of what cleaning its text cost).
_LABEL_MAX = max(len(label) for label in _LABELS) + 2


def _header_line(line: str) -> re.Match[str] | None:
    colon = line.find(":")
    if colon < 0 or len(line[:colon].rstrip()) > _LABEL_MAX:
        return None
    return _HEADER_LINE.match(line)


def header_block_end(
    lines: list[str], start: int, *, after_rule: bool = False, answers: bool = True
) -> int | None:
    """End index of a quoted message's header block starting at `start`, or None if there is none.

    Needs a sender line, a date/sent line and one more field, and either an Outlook "Sent:" line or an
    address in the sender line: "Od: 10:00 / Do: 12:00 / Temat: ..." written by a person is no header.
    `after_rule`: the block follows Outlook's `____` rule, which no one types above their own lines;
    there a sender, a date with a digit and a To or Subject line suffice (Outlook's HTML reply within
    one company: "Od: Jan Kowalski / Data: czwartek, 3 grudnia 2026 10:00 / Do: Anna Nowak"), as
    Outlook writes it: the sender first, a name (no digit), no time for a recipient. A duty or a
    flight under a typed rule in a reply ("Data: 14.12.2026 / Od: 8:00 / Do: 16:00", "From: Warszawa
    WAW 10:00 / To: Londyn LHR 12:00 / Date: …") went as a quote, and the lines below it with it.
    In a mail that `answers` none, a block without a subject line (which Outlook always writes) is
    the person's own: a parcel's "Nadawca: ACME, biuro@acme.pl / Adresat: … / Data: …" took the
    pickup time and phone number below it.
    A `>` quote right below the rule is what it heads (Outlook set to mark the original with "> "),
    a header block of none: the block ends where it starts, and the rule goes with the quote.
    """
    if after_rule and start < len(lines) and lines[start].lstrip().startswith(">"):
        return start
    labels: dict[str, str] = {}
    i = start
    while i < len(lines) and i - start < 12:
        m = _header_line(lines[i].strip())
        if not m:
            break
        labels.setdefault(m.group(1).lower(), m.group(2))
        i += 1
    sender = next((v for k, v in labels.items() if k in _FROM_LABELS), None)
    if sender is None or len(labels) < 3 or not labels.keys() & _DATE_LABELS:
        return None
    if not answers and not labels.keys() & _SUBJECT_LABELS:
        return None
    if labels.keys() & _SENT_LABELS or "@" in sender:
        return i
    if (
        after_rule
        and next(iter(labels)) in _FROM_LABELS
        and not any(ch.isdigit() for ch in sender)
        and not any(_TIME.search(v) for k, v in labels.items() if k in _TO_LABELS)
        and labels.keys() & _ADDRESSED_LABELS
        and any(ch.isdigit() for k, v in labels.items() if k in _DATE_LABELS for ch in v)
    ):
        return i
    return None


def attribution_end(lines: list[str], start: int) -> tuple[int, bool] | None:
    """(end index, needs a `>` quote after it) if an attribution starts at `start`, else None.

    A rule's own start word ("On", "El", "Dne") alone is no proof: without a time or an address, "On
    Monday the customer wrote:" is a person's line above their own text, kept unless a `>` quote
    follows (`_sure`). One that is sure cuts unquoted text below it too (Outlook indents its quote)."""
    first = lines[start].strip().casefold()
    if not first:
        return None
    joined = first
    for extra in range(3):
        # Every attribution ends in a colon: a line without one (nearly every line of a mail) is
        # none, and the generic rule's `.{1,200}\b` would try each of its positions to learn it.
        if joined.endswith((":", ":\n")):
            wrote = _WROTE_TAIL.search(joined[-24:]) is not None
            for pattern, generic in ATTRIBUTIONS:
                if (wrote or pattern is not _GENERIC_WROTE) and pattern.match(joined):
                    return start + extra + 1, not _sure(joined, generic)
        nxt = start + extra + 1
        if nxt >= len(lines) or not lines[nxt].strip() or not _ATTRIBUTION_START.match(first):
            return None
        following = lines[nxt].strip().casefold()
        whole = following.endswith(":") and any(
            p.match(following) for p, generic in ATTRIBUTIONS if not generic
        )
        if whole or first.endswith((".", "!", "?")):
            # A sentence ("On my way.", "W dniu jutrzejszym biuro nieczynne."), or a line above an
            # attribution complete in itself: the person's own text, not the start of a wrapped one.
            return None
        joined = f"{joined} {following}"
    return None


# The notes the gateway writes in its own mails, each a whole line in brackets, a label of some words
# and a colon (gateway.forwarded: "[Not matched: no SMS was sent to …]", "[Not delivered: …]", "[+48
# … answered with an opt-out word: …]"). A forward of such a mail sent them to a customer's phone.
_NOTE_MAX = 2000


def _own_note(line: str) -> bool:
    text = line.strip()
    if len(text) > _NOTE_MAX or not (text.startswith("[") and text.endswith("]")):
        return False
    inner = text[1:-1]
    label, colon, _ = inner.partition(":")
    return bool(colon) and "[" not in inner and "]" not in inner and len(label.split()) >= 2


def drop_own_notes(lines: list[str], removed: list[str]) -> list[str]:
    kept = [line for line in lines if not _own_note(line)]
    if len(kept) != len(lines):
        removed.append(OWN_NOTE)
    return kept


# A note above a forward that says the message is below it: the whole note one of these words, or a
# line ending in a colon that says "below". Such a note alone told the phone nothing ("reklamacja: FYI").
# Matched with diacritics folded (`_plain`): typed without Polish letters, "Zobacz ponizej" and
# "Przesylam" were notes of their own, and the forwarded text under them never reached the phone.
_POINTS = re.compile(
    r"^(?:fyi|do wiadomosci|dw|info|informacyjnie|przesylam|przekazuje|przesylam do wiadomosci"
    r"|przekazuje do wiadomosci|for your information|see below|patrz ponizej|zobacz ponizej"
    r"|jak ponizej|ponizej|nizej)\W{0,3}$"
    r"|^.{0,100}\b(?:ponizej|nizej|ponizsz\w*|below)\b.{0,100}:$",
    re.IGNORECASE,
)


def _plain(text: str) -> str:
    """`text` without diacritics ("ł" is "l"), for words typed either way. Only the marks go (NFD): a
    compatibility fold (NFKD) made "FYI …" "FYI ...", past the three signs a note may end in, and
    the forwarded text under "Przesyłam…!" was lost."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def points_below(note: str) -> bool:
    """Whether a short note above a forward points to the forwarded text (`_POINTS`), on one line."""
    return "\n" not in note and len(note) <= 200 and _POINTS.match(_plain(note)) is not None
