"""A company's tagline below a signature (R-1.3), for `gateway.smtp.signofftail`: "Quality you can
trust.", "Twój partner w logistyce.", "Since 1995 — your reliable supplier." In a paragraph of its
own below the name it ends with a full stop as a sentence of the person's does ("Oddzwonię po 15."),
and went to the phone as one.

A tagline is short and speaks of the company in a slogan's words: its qualities (quality, trust,
reliable, innovation, excellence), what it is to the reader (your partner, supplier, solutions),
its years ("since 1995", "od 25 lat") and its verbs (driving, budujemy). Two such words make one. A
person's sentence below the name may hold two too ("Thanks for your trust.", "Best wishes to your
family!"), but it carries what a slogan does not: a question, the person ("I", "mnie", "będę",
"oddzwonię", "mieszkam"), thanks or a request, a day or an hour, a number other than a year, a verb
saying what is, was or will be ("is ready", "jest gotowa", "potwierdził", "confirmed", "will call"),
good wishes or greetings. Any of them
keeps the sentence. A company's founding year is a slogan's alone ("Connecting people since 1987.").

A person's sentence there needs no "I" to be one: its verb ("Nasz partner potwierdza termin.", "Nasz
lider zadzwoni.") or a participle saying what became of a thing ("Spotkanie przesunięte na 12:00.",
"Oferta przyjęta."), or the hour or the date of an arrangement, make it the person's
(`persons_shape`). A slogan is a noun phrase: its verbs are the company's "we" ("budujemy") or none.
A company's claims need no second word: a certificate ("Certyfikat ISO 9001:2015.") or a prize
("Laureat Gazel Biznesu 2023.") with its numbers and years, or the notice against printing under every
mail ("Save paper - do not print."), with nothing of a person's sentence, is one.
"""

from __future__ import annotations

import re

# Words of a slogan, one group each so that a word counts once ("Trust, trust, trust" is one).
_SLOGAN = re.compile(
    r"\b(?:quality|jako[śs][ćc]\w*|trust\w*|zaufan\w*|reliab\w*|niezawodn\w*|solidn\w*|sprawdzon\w*"
    r"|partner\w*|supplier\w*|dostawc\w*|provider\w*|solution\w*|rozwi[ąa]za[ńn]\w*|innovat\w*|innowac\w*"
    r"|excellen\w*|doskona[łl]\w*|leader\w*|lider\w*|experience\w*|do[śs]wiadczeni\w*|tradition\w*"
    r"|tradycj\w*|passion\w*|pasj\w*|future|przysz[łl]o[śs][ćc]\w*|together|razem|world\w*|[śs]wiecie"
    r"|[śs]wiat(?:a|u|em|ow\w*)?|best|najlepsz\w*|professional\w*|profesjonal\w*|expert\w*|ekspert\w*"
    r"|matters|premium|green|zielon\w*|planet\w*|value\w*|warto[śs]ci|smart\w*|better|lepsz\w*|detail\w*"
    r"|szczeg[óo][łl]\w*|success\w*|sukces\w*|guarantee\w*|gwarancj\w*|satisf\w*|satysfakc\w*|driving"
    r"|powering|building|delivering|connecting|empowering|shaping"
    r"|creating|inspiring|budujemy|tworzymy|[łl][ąa]czymy|dostarczamy|wspieramy|rozwijamy|zmieniamy|think"
    r"|simply|more than|więcej niż|priorit\w*|prioryt\w*|industry|branż\w*|your|tw[óo]j|twoj\w*|wasz\w*"
    r"|our|nasz\w*|for you|dla (?:ciebie|was|pa[ńn]stwa)|zawsze|always|na czas|on time|w terminie|wsz[ęe]dzie"
    r"|everywhere)\b"
)
# The years a slogan names, which are the one number it holds; a company's founding year is a slogan's
# alone ("Connecting people since 1987.").
_FOUNDING = r"since|est\.?|founded|za[łl]o[żz]on\w*"
_YEARS = re.compile(rf"\b(?:{_FOUNDING}|od) (?:\d{{4}}|\d{{1,3}} lat)\w*|\b\d{{1,3}} (?:lat|years)\b")
# The words of a person's sentence that a slogan has not: the person ("I", "mnie", "będę", "oddzwonię",
# "mieszkam", "zostawiłem"), thanks or a request, a day or an hour, a verb saying what is, was or will
# be ("is ready", "potwierdził", "confirmed", "will call"), wishes and greetings. Also what keeps the
# name's paragraph's last line as the person's (`signofftail`). Wednesday's "środa" is no "środowisko".
PERSON_WORDS = re.compile(
    r"\w+ę\b|\w{3,}am\b|\w+(?:łem|łam|łeś|łaś|liśmy|łyśmy)\b"
    r"|\w{3,}(?:[iy]ł|ili|yli|iła|yła|ała|iło|yło|ało)\b"
    r"|\b(?:i'm|i'll|i've|i'd|me|my|mine|ja|mnie|mi|mój|moja|moje|mojego|mojej|jestem|byłem"
    r"|byłam|mam|thanks?|dzięki|dzieki|dziękuj\w*|dziekuj\w*|proszę|prosze|please|pls|sorry|przepraszam"
    r"|today|tomorrow|tonight|yesterday|morning|afternoon|evening|week\w*|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|jutr\w*|dziś|dzis|dzisiaj|wczoraj|rano|wieczor\w*|poniedział\w*"
    r"|wtor\w*|środ(?:a|y|ę|ą|zie|ach|om)|czwart\w*|piąt\w*|sobot\w*|niedziel\w*|tydzie\w*|tygodni\w*"
    r"|godzin\w*|minut\w*"
    r"|is|are|was|were|jest|są|był|była|było|będzie|będą|wish\w*|życz\w*|zycz\w*|luck|powodzenia"
    r"|congrat\w*|gratul\w*|happy|wesołych|zdrowia|see you|do zobaczenia|works?|działa\w*|ready|gotow\w*"
    r"|done|zrobion\w*|sent|wysłan\w*|received|otrzyma\w*|signed|podpisa\w*|approved|zatwierdz\w*"
    r"|confirmed|called|arrived|agreed|replied|paid|booked|cancell?ed|moved|changed|asked|said|told"
    r"|checked|fixed|finished|shipped|missed|forgot|got|went|came|left|did|had|has|have|shall"
    r"|regards|greetings|pozdr\w*|cheers|hugs|buziaki|ściskam|will|would|should|must|could"
    r"|za[łl][ąa]cz\w*|attach\w*"
    # An arrangement's English verbs in the third person ("Our team confirms the date."), and "as
    # always", which a slogan says without "jak" ("Dostawa w terminie, jak zawsze.").
    r"|confirms|accepts|agrees|approves|arrives|expects|requests|reschedules|postpones|cancels|jak zawsze)\b"
)
# A Polish verb in the present or the future, third person, by its ending ("potwierdza", "pasuje",
# "zadzwoni", "czekają", "odbywa"), but for a slogan's "which" ("Technologia, która inspiruje.",
# "Innovation that …"); and a participle saying what became of a thing: after the word it speaks of,
# ending the sentence or before its place or time, and with a prefix, as what was done once has
# ("Spotkanie przesunięte na 12:00.", "Oferta przyjęta.", "Zamówienie zrealizowane."). A company says
# what it does always, without the prefix or in "-ywane" ("Zamówienia realizowane w 24h.", "Marka
# rozpoznawana na świecie."), and a noun's "-ony" stands before another in a title ("Inspektor
# ochrony danych.") or has no prefix and a short stem ("Dział obsługi strony.", "Kierownik zmiany.").
# A slogan's verbs are the company's "we" ("budujemy", "dostarczamy"). Nouns with a verb's ending are
# the language's few ("wiedza", "władza", "ochrony"; in English "company"), and a slogan's own words
# are no verb ("sprawdzona", "zaufany", "zielone").
_VERB = re.compile(
    r"(?<!któr. )(?<!that )(?<!which )\b\w{2,}(?:uje|ują|ają|eją|dza|cza|oni|ywa|uwa)\b"
    r"|(?<=\s)(?:prze|przy|za|z|s|wy|po|od|do|u|na|roz|ob|o)(?:\w{3,}?(?<![aiy]w)(?:on|an|ęt)|jęt)[yae]"
    r"(?=[.!,;]|\Z|\s(?:na|do|o|w|we|z|przez|od|po|u|bez)\b(?! ciągu))"
)
_NOT_VERBS = frozenset(
    (
        *"wiedza władza miedza nędza tęcza ochrony obrony osłony zasłony".split(),
        *"company someone anyone everyone telephone".split(),
    )
)
# The hour or the date of an arrangement: "12:00", "9.30", "12.11", "o 14", "do 15" (`_RANGE` aside).
_WHEN = re.compile(
    r"\b\d{1,2}[:.]\d\d\b|\b\d{1,2}\.\d{1,2}\b|\b(?:o|at|na|do|od|po|przed|by|until|before) \d{1,2}\b"
)
# A range of hours or days is an office's, not an arrangement: "pon.-pt. 8.00 - 16.00", "od 8 do 20".
_RANGE = re.compile(
    r"(?:\bod )?\b\d{1,2}(?:[:.]\d\d)?\s*+(?:[-–]|do)\s*+\d{1,2}(?:[:.]\d\d)?\b|\b(?:pon|mon)\w*\.?\s*+[-–]"
)
# A company's claims, one enough: a certificate or a prize with its standard's number or its year
# (`_CLAIMS_NUMBERS`: "Certyfikat ISO 9001:2015.", "Laureat Gazel Biznesu 2023."; without either, a
# prize or a certificate is the person's news as often: "Nagroda dla zespołu!", "Medal odbiera
# prezes."), and the notice against printing under every mail ("Save paper - do not print.").
_CLAIM_WORDS = re.compile(
    r"\b(?:certyfik\w*|certified|certificat\w*|akredyt\w*|accredit\w*|laureat\w*|nagrod\w*|award\w*"
    r"|winner|zwyci[ęe]zc\w*|wyr[óo][żz]nieni\w*|gazel\w*|diament\w*|medal\w*|god[łl][oa]\w*|iso)\b"
)
_PRINT = re.compile(
    r"\b(?:(?:do not|don'?t|nie) (?:print|drukuj)\w*|save paper|oszcz[ęe]dzaj papier|go green)\b"
)
# The numbers a claim holds: a standard's ("ISO 9001:2015") and the year of a prize right after its
# name, ending the claim ("Laureat Gazel Biznesu 2023.", "… 2022, 2023."), but not the year an
# arrangement names ("Certyfikat ważny do 2025.", "Nagroda za 2023 …") nor one a sentence goes on
# from ("Laureat konkursu 2024 to nasz Tomek!": the person's news).
_CLAIMS_NUMBERS = re.compile(
    r"\b(?:iso|pn|en)[ /-]?\d{4,5}(?:[:-]\d{4})?\b"
    r"|(?<!\bdo )(?<!\bby )(?<!\buntil )(?<!\bprzed )(?<!\bza )(?<!\bw )(?<!\bin )(?<!\bna )(?<!\bfor )"
    r"\b(?:19|20)\d\d\b(?=(?:\s*(?:,|-|/|&|i|and|oraz)\s*(?:19|20)\d\d)*(?:\s*r\.?)?[\s.…]*$)"
)
# A question or a number but a year is a person's too.
_PERSONS_MARKS = re.compile(r"[?\d]")
# Of the years, those naming a founding: a slogan's alone ("Connecting people since 1987.").
_FOUNDED = re.compile(rf"\b(?:{_FOUNDING}) \d{{4}}\b|\bod \d{{4}} r|\bod \d{{1,3}} lat\b")
# English "I", told from Polish "i" (and) by its capital.
_I = re.compile(r"\bI\b")


def _has_verb(low: str) -> bool:
    """Whether a lowercased text holds a verb's or a participle's shape (`_VERB`) that is no noun of
    the language's and no slogan's word."""
    return any(
        found[0] not in _NOT_VERBS and _SLOGAN.fullmatch(found[0]) is None for found in _VERB.finditer(low)
    )


def persons_shape(text: str) -> bool:
    """Whether a sentence holds what a person's has and a title or a slogan has not: the person's word
    (`PERSON_WORDS`, "I"), a verb or a participle (`_VERB`), the hour or the date of an arrangement."""
    low = text.lower()
    return (
        PERSON_WORDS.search(low) is not None
        or _I.search(text) is not None
        or _WHEN.search(_RANGE.sub("", low)) is not None
        or _has_verb(low)
    )


_TAGLINE_MAX_WORDS = 8
_TAGLINE_MAX_CHARACTERS = 200  # and no long word: "\w+ę" reads a word again from each of its letters


def is_tagline(text: str) -> bool:
    """Whether a short paragraph below a signature is a company's tagline: at most
    `_TAGLINE_MAX_WORDS` words, two of a slogan's or a claim (`_CLAIM_WORDS`, `_PRINT`), and nothing
    of a person's sentence."""
    if len(text) > _TAGLINE_MAX_CHARACTERS or len(text.split()) > _TAGLINE_MAX_WORDS:
        return False
    low = text.lower()
    unyeared = _YEARS.sub("", low)
    claim = _PRINT.search(low) is not None or (
        _CLAIM_WORDS.search(low) is not None
        and _CLAIMS_NUMBERS.search(unyeared) is not None
        and not low.rstrip().endswith(("!", "?"))  # exclaimed or asked: the person's news
    )
    if claim:
        unyeared = _CLAIMS_NUMBERS.sub("", unyeared)  # "Certyfikat ISO 9001:2015.", "Laureat … 2023."
    if _PERSONS_MARKS.search(unyeared) or PERSON_WORDS.search(unyeared) or _I.search(text):
        return False
    if _has_verb(unyeared):
        return False  # "Nasz partner potwierdza termin.", "Spotkanie przesunięte."
    if claim or _FOUNDED.search(low):
        return True  # a certificate, a prize, the print notice; a founding year: "… since 1987."
    found = {"a year"} if _YEARS.search(low) else set()  # "Solidny partner od 1998 roku."
    for word in _SLOGAN.finditer(low):
        found.add(word[0])
        if len(found) >= 2:
            return True
    return False
