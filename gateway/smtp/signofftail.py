"""What stands below a sign-off and a name (R-1.3), for `gateway.smtp.signatures`: when a closing
"Pozdrawiam\nJan" block is cut, what the person wrote below it stays and a company's banner does not.
A postscript ("PS. Sala 204.") and everything below it but banners and notices, and a short sentence
of the person's own in a paragraph of its own ("Pozdrawiam\nJan\n\nOddzwonię po 15."): both are
written to be read. A title, a company, an address or a phone is no sentence (no full stop at its end,
or a company's "Sp. z o.o." / "Inc." there, or contact details in it), nor is a line of a notice the
mail server appends, nor an advertisement ("Join us at Booth 42 at Expo 2027!"): up to 10 parts.
"""

from __future__ import annotations

import re

from gateway.smtp.footers import (
    ANY_DEVICE,
    KNOWN_FOOTER,
    REGISTER_KIND,
    disclaimer_words,
    is_disclaimer,
    is_name_line,
)
from gateway.smtp.numbershapes import has_contact, is_register_entry
from gateway.smtp.taglines import is_tagline, persons_shape

# "PS. Sala 204 zamiast 101.", "P.S.: ...", "PS ...", and a later one: "PPS. ...", "P.P.S. ..."
POSTSCRIPT = re.compile(r"^(?i:p\.?\s?(?:p\.?\s?)*s\b)[.:]?")

# A banner below a signature: a company's advertisement, not the person's ("Odwiedź nasz sklep
# www.example.pl — rabat 20% na wszystko!", "Join us at Booth 42 at Expo 2027"). A paragraph there with
# a link or a web address is one, and so is a paragraph with words of two of these kinds: an
# invitation, an offer, an event, the company's channels, its prizes. A person's own sentence seldom
# holds two ("Zapraszam jutro na 10.", "Feel free to call."). Not a kind: the company's "our", "nasz"
# or "we're" and "okazj" ("przy okazji", by the way), which a person writes as often as a banner does.
_PROMOTION_KINDS = (
    r"odwiedź|odwiedz|zapraszamy|visit|join us|meet us|see us|follow us|obserwuj nas|polub nas"
    r"|(?:sprawdź|sprawdz|zobacz|poznaj|odkryj|zajrzyj|check out|discover) (?:nasz|our|now)",
    r"rabat|zniżk|znizk|promocj|wyprzeda|gratis|darmow|bezpłatn|bezplatn|discount|on sale"
    r"|special offer|free (?:entry|shipping|delivery|trial|demo)|taniej|nowość|nowosc",
    r"booth|stoisk|expo|targ(?:i|ach|ów|ow)\b|konferencj|conference|webinar|summit|trade fair",
    r"sklep|shop|newsletter|facebook|linkedin|instagram|twitter|youtube|tiktok|obserwuj|polub|subscri|subskryb",
    r"hiring|rekrutujemy|award|nagrod|laureat|winner",
)
# One pass over the lowercased paragraph: a link ("https://", "www.", "example.pl"), a percentage (an
# offer's), or a word of a kind, the kind its group's name.
_BANNER = re.compile(
    r"(?P<link>https?://|www\.|(?<=\w)\.(?:pl|com|eu|net|org|io|de|uk|info|biz|shop)\b)|(?P<k1p>\d ?%)|\b(?:"
    + "|".join(f"(?P<k{n}>{words})" for n, words in enumerate(_PROMOTION_KINDS))
    + ")"
)


def is_banner(text: str, *, domains: bool = True, link_alone: bool = True) -> bool:
    """Whether a paragraph below a sign-off and a name is a company's banner: a link or a web address
    in it, or words of two kinds of `_PROMOTION_KINDS`. Without `domains` a bare "example.pl" is none:
    a person's long line names a shop ("Zamówienie złożyłem na allegro.pl, ale…"). Without
    `link_alone` a link is one kind more: below a postscript the person gives one ("Link:
    https://meet.google.com/…")."""
    kinds: set[str] = set()
    for found in _BANNER.finditer(text.lower()):
        kind = found.lastgroup
        if kind == "link" and not domains and found[0][0] == ".":
            continue
        if kind == "link" and link_alone:
            return True
        if kind == "k0" and found[0].endswith((" nas", " nasz", " our")):
            return True  # an invitation to the company's own: "Obserwuj nas!", "Check out our catalogue."
        kinds.add("k1" if kind == "k1p" else str(kind))
        if len(kinds) >= 2:
            return True
    return False


# A sentence ends so; a smile may follow it ("Do jutra :)").
_SENTENCE_END = re.compile(r"([.!?…]|[.!?…]?\s*[:;]-?[)D])$")
# A company's form or a degree at a line's end ends no sentence: "ACME Sp. z o.o.", "ACME S.A.", "ACME
# Inc.", "Jan Kowalski, PhD." (a word with a dot inside is an abbreviation: "o.o.", "S.A.").
_ABBREVIATIONS = frozenset(
    "inc ltd co corp llc plc gmbh ag sa sp spółka phd mba msc bsc md cpa esq jr sr".split()
)
# The mail itself spoken of: "Wiadomość wygenerowana automatycznie.", "Please do not reply to this
# email.", "Think before you print." A system's line, not the person's. So is a copyright notice, by
# its shape (the sign, or the word before the sign or a year: "Copyright © ACME", "(c) 2024 ACME",
# "All rights reserved."): the word alone is a person's too ("Please check the copyright on the
# photos before posting.").
_ABOUT_THE_MAIL = re.compile(
    r"(?i:\b(this|the) (e-?mail|message)\b|\b(ta|tej|tę|niniejsz\w*) wiadomo[śs]\w*"
    r"|\bwiadomo[śs]\w* (został|wygenerowan|wysłan|automatyczn)|\bnie odpowiada\w*|do not reply"
    r"|before (you )?print|\ball rights reserved|\bprawa zastrze[żz]one"
    r"|\bcopyright\s*(?:©|\(c\)|(?:19|20)\d\d)|©|\(c\)\s*(?:19|20)\d\d)"
)
# A company's notice below the name, of any length: its office's hours ("Biuro czynne pon.-pt. w godz.
# 8.00 - 16.00.", "Zamówienia przyjmujemy do godz. 14.00."), an EU funding notice ("Projekt
# współfinansowany ze środków UE …"), its registration ("Zarejestrowana w KRS pod numerem …") or its
# bank account as a company asks for payment ("Wpłaty prosimy kierować na rachunek …", "Dane do
# przelewu: …"). The person asks in the first person singular ("Przelew proszę na konto …"). Each
# alternative reads a bounded stretch.
_COMPANY_NOTICE = re.compile(
    r"(?i:\b(?:czynn[eay]|otwart[eay]|przyjmujemy|pracujemy|godziny (?:pracy|otwarcia)|office hours"
    r"|opening hours)\b.{0,40}?(?:\b(?:pon|mon|godz)\b|\d{1,2}[.:]\d\d)"
    r"|\b(?:współ|do)?finansowan\w*+ (?:ze środków|z funduszy|z ue\b|przez uni|z unii|w ramach)"
    r"|\bco-?(?:financed|funded) by|european (?:regional development|social) fund|europejskiego funduszu"
    r"|\bfundusz\w*+ (?:europejsk|spójności)|\bprogram\w*+ operacyjn"
    r"|\b(?:zarejestrowan|wpisan)\w*+ (?:w|do|przez) (?:krs|krajow|rejestr|sąd|ewidencj|centraln)"
    r"|\b(?:wpłat\w*+|należnoś\w*+|płatnoś\w*+) prosimy|\bprosimy (?:kierować|wpłacać|dokonywać)"
    r"|\bdane do przelewu)"
)


# The person speaking in the first person singular or asking: a line with a notice's words and these
# is the person's ("Biuro czynne 9:00-17:00 od poniedziałku. Proszę o potwierdzenie, …"). So is one
# naming today or tomorrow, which a notice printed under every mail cannot ("Jutro biuro czynne
# 9:00-17:00."; a weekday it may: "Zamówienia przyjmujemy do 14.00, w piątek do 12.00.").
_FIRST_PERSON = re.compile(
    r"(?i:\b(?:\w{3,}(?:uję|ię)|będę|mogę|chcę|idę|jadę|\w+(?:łem|łam)|proszę|prosze|please|mnie|ja"
    r"|jestem|mam|i'm|i'll|me|my|zapraszam|jutr\w*|pojutrze|dziś|dzis|dzisiaj|today|tomorrow|tonight)\b)|\bI\b"
)


_NOTICE_MAX = 1000


def is_company_notice(text: str) -> bool:
    """Whether a paragraph or a line below the name is a company's notice (`_COMPANY_NOTICE`) where
    the person does not speak (`_FIRST_PERSON`): signature material however long, and no sentence of
    the person's."""
    if len(text) > _NOTICE_MAX:
        return False  # a paragraph's width: a notice is a few lines, and a longer line is the person's
    return _COMPANY_NOTICE.search(text) is not None and _FIRST_PERSON.search(text) is None


# A sentence of the person's is short: a longer paragraph below the name is judged by the width rule
# of `signatures._Measures` (a line over 100 characters is the person's) or is a notice.
_SENTENCE_MAX = 200
_SENTENCE_MAX_LINES = 3


def is_own_sentence(lines: list[str]) -> bool:
    """Whether a paragraph (its stripped, non-empty lines) below a sign-off and a name is a short
    sentence of the person's: words ending with a full stop, "!" or "?", with no contact details,
    no company's form or degree at its end, and not a phone's footer, a notice about the mail or a
    company's tagline (`taglines.is_tagline`)."""
    if not lines or len(lines) > _SENTENCE_MAX_LINES:
        return False
    text = " ".join(lines)
    if len(text) > _SENTENCE_MAX or " | " in text or not _SENTENCE_END.search(text, len(text) - 5):
        return False  # the end is looked at alone: a search from each position costs per character
    words = text.split()
    if len(words) < 2 or not words[0][0].isalpha():
        return False
    last = _SENTENCE_END.sub("", words[-1])
    if ("." in last and any(c.isalpha() for c in last)) or last.lower() in _ABBREVIATIONS:
        return False  # "ACME Sp. z o.o.", "ACME Inc.", but not a date: "… w dniach 12.11-15.11.2026."
    if is_banner(text) or has_contact(text) or _ABOUT_THE_MAIL.search(text) or is_register_entry(text):
        return False
    if is_company_notice(text):
        return False  # a company's hours, funding, registration or account: "Biuro czynne pon.-pt. …"
    # A notice's word; a register's names a number in a sentence too ("Faktura na NIP …"), and one word
    # of a notice is the person's in a sentence of the person's shape ("Wydrukuj umowę do piątku.").
    kinds = {kind for _, kind in disclaimer_words(text) if kind != REGISTER_KIND}
    if len(kinds) >= 2 or (kinds and not persons_shape(text)):
        return False
    if is_tagline(text):
        return False  # a company's slogan: "Quality you can trust."
    return not any(KNOWN_FOOTER.match(line) or ANY_DEVICE.match(line) for line in lines)


def kept_below(lines: list[str], i: int, last: int, *, own: bool = True) -> list[str]:
    """The lines below sign-off line `i`, down to `last`, that stay when its block is cut: from the
    first postscript line down, but for the banners (where a link alone makes none) and notices below
    it (`is_banner`, `footers.is_disclaimer`) that open with no postscript of their own ("PPS."), and
    above it, with `own`, each paragraph of its own (a blank line above it) that is a sentence of the
    person's (`is_own_sentence`); each kept paragraph after a blank line."""
    kept: list[str] = []
    postscript = False
    j = i + 1
    while j <= last:
        if not lines[j].strip():
            j += 1
            continue
        end = j
        while end <= last and lines[end].strip():
            end += 1
        paragraph = [line.strip() for line in lines[j:end]]
        if postscript:
            text = "\n".join(paragraph)
            banner = is_banner(text, link_alone=False) or is_disclaimer(text)
            if POSTSCRIPT.match(paragraph[0]) or not banner:
                kept += ["", *lines[j:end]]
        elif (ps := next((k for k in range(j, end) if POSTSCRIPT.match(lines[k].strip())), None)) is not None:
            postscript = True
            kept += ["", *lines[ps:end]]
        elif own and j > i + 1 and is_own_sentence(paragraph):  # j > i + 1: below a blank line
            kept += ["", *lines[j:end]]
        elif own and j == i + 1 and (sentences := _sentences_by_the_name(paragraph)):
            kept += ["", *sentences]
        j = end
    return kept


# The name and a full stop opening a sentence on its line: "Jan. Oddzwonię jutro.", "Anna Nowak. Do jutra!"
_NAME_THEN_TEXT = re.compile(
    r"[A-ZĄĆĘŁŃÓŚŹŻ][a-ząćęłńóśźż]++(?: [A-ZĄĆĘŁŃÓŚŹŻ][a-ząćęłńóśźż]++)?\.\s++(?=\S)"
)


def _sentences_by_the_name(paragraph: list[str]) -> list[str]:
    """The person's sentences in the paragraph right below the sign-off (the name's, its stripped
    lines): what follows the name on its line ("Jan. Oddzwonię jutro."), and its last line when that is
    a sentence written as one, its words after the first in small letters, with a person's word
    (`_persons_line`: "Jan\nOddzwonię jutro rano."). A title, a company or an address there has no
    full stop ("Kierownik projektu") or its words in capitals ("Dział Obsługi Klienta."); without its
    full stop a sentence cannot be told from a title, and goes with them."""
    found: list[str] = []
    if named := _NAME_THEN_TEXT.match(paragraph[0]):
        rest = paragraph[0][named.end() :]
        if _in_sentence_case(rest) and is_own_sentence([rest]):
            found.append(rest)
    last = paragraph[-1]
    if (len(paragraph) > 1 or not named) and _in_sentence_case(last) and _persons_line(last):
        found.append(last)
    return found


# More of the person's in that line, which a title or a slogan has not: a number of three digits or
# more ("Kod do bramy 1234.", "Paczka 612345678 już w drodze."), a short answer or a "no" ("OK,
# pasuje.", "Nie dam rady.", "We accept your offer.", "Termin aktualny.", "Wszystko w porządku.").
_ANSWER = re.compile(
    r"\d{3}|(?i:\b(?:ok|okej|pasuj\w*|zgoda|gra|nie|agree\w*|accept\w*|aktualn\w*|nieaktualn\w*"
    r"|porz[ąa]dku|bez zmian|noted|fine|sure)\b)"
)
# An address's street, avenue, estate or square: "ul. Prosta 1 lok. 5, Warszawa."
_ADDRESS = re.compile(r"(?i:(?:^|\s)(?:ul|al|os|pl)\.\s)")


def _persons_line(text: str) -> bool:
    """Whether the name's paragraph's last line is the person's: a sentence (`is_own_sentence`) with
    the person's word, a verb or the hour of an arrangement in it (`taglines.persons_shape`:
    "oddzwonię", "zostawiłem", "jutro", "see you", "potwierdza", "przesunięte na 12:00"; `_ANSWER`),
    and no address. A title, an address or a slogan is written as a sentence too
    ("Kierownik działu sprzedaży.", "Radca prawny.", "Zawsze na czas."), and the signature's lines
    reached the phone."""
    # The sentence first: it is at most 200 characters, and "\w{3,}am" reads a long word from each letter.
    return (
        is_own_sentence([text])
        and (persons_shape(text) or _ANSWER.search(text) is not None)
        and _ADDRESS.search(text) is None
    )


def _in_sentence_case(text: str) -> bool:
    """Whether a word after the first begins with a small letter, as in a sentence and not a title."""
    return any(word[:1].islower() for word in text.split()[1:])


# A short closing word that signs off only above a name ("Thanks,\nJohn", "Dzięki,\nAnia", "Pzdr\nJan",
# "MfG\nHans", "LG\nAnna", "Miłego dnia!\nJan"): with no name below it, it may be the person's answer
# ("Tak, pasuje.\nDzięki"), and stays.
NAMED_SIGN_OFF = re.compile(
    r"^(?i:thanks|thank you|thx|many thanks|dzięki|dzieki|dziękuję|dziekuje|cheers|pzdr|mfg|lg|vg"
    r"|miłego dnia|milego dnia|miłego weekendu|milego weekendu)[\s,.!]*+$"
)


def named_sign_off(lines: list[str], i: int, last: int) -> bool:
    """Whether line `i` is a `NAMED_SIGN_OFF` with a name on the next line that holds anything, up to
    `last`."""
    if NAMED_SIGN_OFF.match(lines[i].strip()) is None:
        return False
    below = next((text for j in range(i + 1, last + 1) if (text := lines[j].strip())), "")
    return is_name_line(below)


def sign_off_lines(lines: list[str], first: int, last: int, sign_off: re.Pattern[str]) -> list[int]:
    """The lines from `first` to `last` that may open a closing sign-off block: a `sign_off` line
    ("Pozdrawiam", "Regards"), or a `NAMED_SIGN_OFF` above a name."""
    return [
        j
        for j in range(first, last + 1)
        if sign_off.match(lines[j].strip()) or named_sign_off(lines, j, last)
    ]
