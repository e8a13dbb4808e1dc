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
    r"|our|nasz\w*|for you|dla (?:ciebie|was|pa[ńn]stwa))\b"
)
# The years a slogan names, which are the one number it holds; a company's founding year is a slogan's
# alone ("Connecting people since 1987.").
_FOUNDING = r"since|est\.?|founded|za[łl]o[żz]on\w*"
_YEARS = re.compile(rf"\b(?:{_FOUNDING}|od) (?:\d{{4}}|\d{{1,3}} lat)\w*|\b\d{{1,3}} (?:lat|years)\b")
# The words of a person's sentence that a slogan has not: the person ("I", "mnie", "będę", "oddzwonię",
# "mieszkam", "zostawiłem"), thanks or a request, a day or an hour, a verb saying what is, was or will
# be ("is ready", "potwierdził", "confirmed", "will call"), wishes and greetings. Also what keeps the
# name's paragraph's last line as the person's (`signofftail`).
PERSON_WORDS = re.compile(
    r"\w+ę\b|\w{3,}am\b|\w+(?:łem|łam|łeś|łaś|liśmy|łyśmy)\b"
    r"|\w{3,}(?:[iy]ł|ili|yli|iła|yła|ała|iło|yło|ało)\b"
    r"|\b(?:i'm|i'll|i've|i'd|me|my|mine|ja|mnie|mi|mój|moja|moje|mojego|mojej|jestem|byłem"
    r"|byłam|mam|thanks?|dzięki|dzieki|dziękuj\w*|dziekuj\w*|proszę|prosze|please|pls|sorry|przepraszam"
    r"|today|tomorrow|tonight|yesterday|morning|afternoon|evening|week\w*|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|jutr\w*|dziś|dzis|dzisiaj|wczoraj|rano|wieczor\w*|poniedział\w*"
    r"|wtor\w*|środ\w*|czwart\w*|piąt\w*|sobot\w*|niedziel\w*|tydzie\w*|tygodni\w*|godzin\w*|minut\w*"
    r"|is|are|was|were|jest|są|był|była|było|będzie|będą|wish\w*|życz\w*|zycz\w*|luck|powodzenia"
    r"|congrat\w*|gratul\w*|happy|wesołych|zdrowia|see you|do zobaczenia|works?|działa\w*|ready|gotow\w*"
    r"|done|zrobion\w*|sent|wysłan\w*|received|otrzyma\w*|signed|podpisa\w*|approved|zatwierdz\w*"
    r"|confirmed|called|arrived|agreed|replied|paid|booked|cancell?ed|moved|changed|asked|said|told"
    r"|checked|fixed|finished|shipped|missed|forgot|got|went|came|left|did|had|has|have|shall"
    r"|regards|greetings|pozdr\w*|cheers|hugs|buziaki|ściskam|will|would|should|must|could)\b"
)
# A question or a number but a year is a person's too.
_PERSONS_MARKS = re.compile(r"[?\d]")
# Of the years, those naming a founding: a slogan's alone ("Connecting people since 1987.").
_FOUNDED = re.compile(rf"\b(?:{_FOUNDING}) \d{{4}}\b|\bod \d{{4}} r|\bod \d{{1,3}} lat\b")
# English "I", told from Polish "i" (and) by its capital.
_I = re.compile(r"\bI\b")
_TAGLINE_MAX_WORDS = 8
_TAGLINE_MAX_CHARACTERS = 200  # and no long word: "\w+ę" reads a word again from each of its letters


def is_tagline(text: str) -> bool:
    """Whether a short paragraph below a signature is a company's tagline: at most
    `_TAGLINE_MAX_WORDS` words, two of a slogan's and nothing of a person's sentence."""
    if len(text) > _TAGLINE_MAX_CHARACTERS or len(text.split()) > _TAGLINE_MAX_WORDS:
        return False
    low = text.lower()
    unyeared = _YEARS.sub("", low)
    if _PERSONS_MARKS.search(unyeared) or PERSON_WORDS.search(unyeared) or _I.search(text):
        return False
    if _FOUNDED.search(low):
        return True  # a company's founding year: "Connecting people since 1987."
    found = {"a year"} if _YEARS.search(low) else set()  # "Solidny partner od 1998 roku."
    for word in _SLOGAN.finditer(low):
        found.add(word[0])
        if len(found) >= 2:
            return True
    return False
