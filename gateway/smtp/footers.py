"""The lines mail apps and phones put below what a person wrote ("Sent from my iPhone", "Get Outlook
for iOS", "Wysłane z mojego Huawei"), and what may stand below such a line without being the person's
text: a name, contact details, a disclaimer (R-1.3). `gateway.smtp.signatures` decides with them
where a signature starts.

Two kinds of footer, one rule for English and Polish alike. A known footer (an app's line, or a
phone named by a device word: "iPhone", "telefonu", "Galaxy S21") is never a sentence of anyone's:
where the person's text stands below it, that line alone goes. "Sent from my" / "Wysłane z mojego"
and any words may begin a sentence ("Wysłane z mojego prywatnego adresu."): that line is a footer
only where nothing but signature material stands below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from gateway.smtp.numbershapes import has_contact
from smsc.graphemes import visible

# The link after an app's name: "<url>" in the text part, "(url)" once an HTML-only mail's link
# target is shown (gateway.smtp.htmlbody).
_FOOTER_END = r"\s*(<[^>]*>|\(https?://[^\s()]*\))?\.?$"

# A phone's or tablet's name in its footer, English or Polish and inflected ("iPhone'a", "iPhone’a",
# "telefonu", "smartfona", "urządzenia mobilnego").
_DEVICE = (
    r"(iphone|ipad|ipod|phone|mobile|mobiln|cell|smartphone|tablet|device|handheld|android|blackberry"
    r"|samsung|galaxy|huawei|honor|xiaomi|redmi|poco|motorola|nokia|oppo|realme|oneplus|xperia|pixel"
    r"|telefon|smartfon|komórk|urządzeni)\S*"
)
# Carrier and model names around it ("Verizon Wireless 4G LTE smartphone", "Galaxy S21 Ultra 5G",
# "iPad mini", "telefonu służbowego"): a capital or a digit, or a model's word.
_MODEL = r"((?-i:[A-Z0-9])\S*|mini|pro|max|plus|lite|ultra|wireless|służbow\S*|" + _DEVICE + ")"
# The apology many add ("Sent from my phone, sorry for typos.", "... Please excuse my brevity.").
_EXCUSE = (
    r"([\s,.;:–—-]*((please |pls |kindly )?(excuse|forgive|pardon|ignore) (my |any |the )?"
    r"|sorry (for|about) (my |any |the )?|przepraszam za (ewentualne )?|wybacz(cie)? (mi )?)"
    r"(brevity|typos?|spelling|errors?|mistakes?|autocorrect\S*|literówki|błędy|zwięzłość|skrótowość)"
    r"( (and|&|or|i) (any |the )?\S+)?)?"
)
_KNOWN_DEVICE = (
    r"(sent from (my )?|((ta )?wiadomość (została )?)?wysłan[aeo] z (mojego )?|gesendet (von|mit) (meinem )?)"
    r"((?-i:[A-Z0-9])\S* ){0,4}" + _DEVICE + r"( " + _MODEL + r"){0,4}" + _EXCUSE
)
# Lines no one writes as a sentence of their own: mail apps' footers and phones named by a device word.
KNOWN_FOOTER = re.compile(
    r"^(?i:" + _KNOWN_DEVICE + r"|sent from my \S+( \S+){0,3} with \S+ mail\.?( please excuse my brevity)?"
    r"|sent from outlook|sent from (mail|outlook) for \S+( \d+)?"
    r"|sent from yahoo mail( (for|on) \S+)?|sent with \S+ mail"
    r"|sent from samsung mobile|sent via blackberry\b.*"
    # Outlook's invitation to its phone app, in the languages its users write ("Get Outlook for
    # Android", "Pobierz Outlook dla Androida", "Uzyskaj aplikację Outlook dla systemu Android", "Holen
    # Sie sich Outlook für Android"), and Windows Mail's and Outlook's own line in German and Polish.
    r"|(get|download|pobierz|uzyskaj|holen sie sich|hol dir) (aplikację |program |die app )?outlook"
    r" (for|dla( systemu)?|für) (ios|android)\S*"
    r"|gesendet (von|mit) (mail|outlook) für \S+( \d+)?|von (mail|outlook) für \S+( \d+)? gesendet"
    r"|wysłan[eo] z poczty dla (systemu )?windows( \d+)?"
    r"|wysłan[eo] z (aplikacji |programu )?outlook( (dla (systemu )?|for )\S+( \d+)?)?"
    r"|wysłan[eo] z aplikacji (mobilnej )?poczta\b.*"
    # Polish webmail's footers: "Wysłano z Poczty Onet", "Wysłane z aplikacji mobilnej Interia
    # Poczta", "Wysłane z aplikacji WP Poczta", "Wysłano z Interia Poczta dla Androida".
    r"|wysłan[eo] z (poczty|aplikacji( mobilnej)?( poczta)?) (onet|interia|wp|o2)(\.pl)?( poczta)?"
    r"( (dla|na|for) (systemu )?\S+)?"
    r"|wysłan[eo] z (onet|interia|wp|o2)(\.pl)? poczt[ay]( (dla|na|for) (systemu )?\S+)?"
    r"|von meinem \S+ gesendet|sent with proton ?mail( secure email)?"
    # An antivirus program's line ("Virus-free. www.avast.com", "This email has been checked for viruses
    # by AVG.", then its address on a line of its own), and the note on printing, in both languages.
    r"|(virus-free|wolne od wirusów|bez wirusów)\.?\s*(www\.)?(avast|avg)\.com"
    r"|this (e-?mail|message) has been (checked|scanned) for viruses by (avast|avg)( antivirus software)?"
    r"|(please )?(consider|think (of|about)) the environment before printing( this (e-?mail|message))?"
    r"|pomyśl o środowisku,? (zanim|przed) (wydrukujesz|wydrukowaniem|wydrukiem)( t(ę|ej) wiadomoś(ć|ci))?"
    r"|zanim wydrukujesz t(ę|ą) wiadomość,? pomyśl o środowisku)" + _FOOTER_END
)
# "Sent from my" / "Wysłane z mojego" and any device of up to four words ("... Redmi Note 8 Pro"), a
# device word and any three ("Wysłane z telefonu służbowego"), or a sentence that begins so.
ANY_DEVICE = re.compile(
    r"^(?i:((sent from my|wysłan[eo] z mojego) \S+|(sent from|wysłan[eo] z) "
    + _DEVICE
    + r")( \S+){0,3})"
    + _FOOTER_END
)

# "Sent from my" / "Wysłane z mojego" and a small letter that begins no device's name ("Wysłane z mojego
# nowego konta.", "Sent from my home office today."): a sentence as often as a footer, unlike a model's
# capital or digit or a device word ("Wysłane z mojego iPhone'a"), which `_KNOWN_DEVICE` reads too.
MAY_BE_SENTENCE = re.compile(
    r"^(?i:sent from my|wysłan[eo] z mojego) (?!(?i:" + _DEVICE + r"))[a-ząćęłńóśźż]"
)

# Words of the notices a mail server or a signature appends: confidentiality, the company's register
# entry (a Polish company must give it in its mail), personal data, viruses, printing, mailing lists.
# Two different ones make a paragraph a disclaimer; a person's own paragraph seldom holds two, however
# long it is.
_REGISTER_WORDS = (r"krs\b", r"nip\b", r"regon\b")
_DISCLAIMER_WORDS: tuple[tuple[str, ...], ...] = (
    ("poufn",),
    ("adresat", "adressat"),  # German "Adressat" too
    ("odbiorc",),
    (r"przeznaczon\w* (wyłącznie |tylko )?dla\b",),
    ("prawnie chronion",),
    ("tajemnic",),
    ("zabronion", "zakazan"),
    ("rozpowszechniani", "kopiowani", "ujawniani", "rozprowadzani"),
    ("omyłkowo", "przez pomyłkę", "w wyniku błędu"),
    # A personal data clause (RODO) names the data and their controller, or the regulation: two kinds,
    # so that the standard clause reads as a notice on its own.
    ("danych osobowych",),
    (r"rodo\b", "administratorem", "rozporządzeni"),
    _REGISTER_WORDS,
    (r"kapitał\w* zakładow", r"sąd\w* rejonow", "krajowego rejestru", "z siedzibą"),
    ("confidential",),
    ("privileged",),
    ("intended (solely |only )?(for|recipient)",),
    ("addressee",),
    (r"in error\b",),
    ("unauthori[sz]ed",),
    ("disclos", "dissemina", "distribut"),
    ("prohibited",),
    ("notify the sender",),
    ("virus", "wirus", "anti-?virus", "antywirus"),
    ("scanned", "skanowan", "przeskanowan"),
    ("personal data", "gdpr", "privacy"),
    (r"registered (office|in|number|address)\b", r"company (number|no)\b"),
    # "Please consider the environment before printing this e-mail": printing and the environment, two
    # kinds, for the same reason.
    ("before printing", "wydrukiem", "drukowani", "wydrukuj", "drukuj"),
    ("environment", "środowisk"),
    ("vertraulich", "empfänger", "irrtümlich", "handelsregister", "amtsgericht", "geschäftsführer"),
    # A mailing list's footer ("You received this message because you are subscribed to the Google
    # Groups …", "Aby wypisać się z listy …").
    ("subscribed", "unsubscrib", "wypisa", "wypisz", "zapisan"),
    ("googlegroups", "mailing list", "listinfo", "lista dyskusyjn", "listy dyskusyjn"),
)
# The kind of a company's register entry: one of them names a number in a sentence of the person's too
# ("Faktura na NIP 525-000-00-00.", `signofftail.is_own_sentence`).
REGISTER_KIND = _DISCLAIMER_WORDS.index(_REGISTER_WORDS)
_DISCLAIMER_KIND = tuple(re.compile("|".join(words)) for words in _DISCLAIMER_WORDS)
# The kinds each word may begin, by the word's first three letters (or the whole of a shorter one:
# "in error", "z siedzibą"): a kind's pattern is tried only where a word of the text begins so, and a
# word found inside another ("distribution" in "redistribution") is none.
_KINDS_BY_HEAD: dict[str, tuple[int, ...]] = {}
for _n, _words in enumerate(_DISCLAIMER_WORDS):
    for _head in {re.match(r"[^\W\d_]{1,3}", word)[0] for word in _words}:  # type: ignore[index]
        _KINDS_BY_HEAD[_head] = (*_KINDS_BY_HEAD.get(_head, ()), _n)
_WORD = re.compile(r"\w+")


def disclaimer_words(text: str) -> Iterator[tuple[int, int]]:
    """Where each disclaimer's word in the text starts and its kind (an index of `_DISCLAIMER_WORDS`)."""
    low = text.lower()
    for word in _WORD.finditer(low):
        kinds = _KINDS_BY_HEAD.get(word[0][:3])
        if kinds:
            at = word.start()
            yield from ((at, n) for n in kinds if _DISCLAIMER_KIND[n].match(low, at))


# A notice runs across the page, or is wrapped at 72 columns: some line of it is at least this long.
# Few lines of a signature are, and most paragraphs below a footer or a sign-off are not read.
NOTICE_LINE_MIN = 50


# Below a known footer, which is no sentence of anyone's, a server's notice may be short: "This message
# is intended only for the addressee.", "Ta wiadomość może zawierać informacje poufne.", a company's
# register entry line by line ("KRS: 0000123456\nNIP: …"). There a few short lines with one word of
# these kinds read as one; elsewhere a person may write them ("Przesyłam poufne dane.").
_SHORT_NOTICE_KINDS = frozenset(
    n
    for n, words in enumerate(_DISCLAIMER_WORDS)
    if {"poufn", "adresat", r"krs\b", "confidential", "addressee"} & set(words)
    or words[0].startswith("intended")
)
SHORT_NOTICE_MAX_LINES = 8


def is_short_notice(lines: list[str]) -> bool:
    """Whether a few short lines below a known footer read as a notice: one word of a
    confidentiality clause or a register entry, or two of any notice."""
    if len(lines) > SHORT_NOTICE_MAX_LINES or max(map(len, lines)) >= NOTICE_LINE_MIN:
        return False  # a longer one reads as a notice or not as anywhere else (`notice_start`)
    kinds = {kind for _, kind in disclaimer_words("\n".join(lines))}
    return len(kinds) >= 2 or not kinds.isdisjoint(_SHORT_NOTICE_KINDS)


def short_notice_lines(lines: list[str], first: int, end: int, opens: Callable[[str], bool]) -> list[bool]:
    """Which of the lines from `first` up to `end` are in a short notice (`is_short_notice`): a run of
    non-empty lines between empty ones and lines that `opens` a signature, so that a footer's own
    paragraph is read from below the footer."""
    notice = [False] * (end + 1)
    j = first
    while j < end:
        k = j
        while k < end and lines[k].strip() and not (k > j and opens(lines[k].strip())):
            k += 1
        if k == j:
            j += 1
            continue
        start = j + opens(lines[j].strip())
        if start < k and is_short_notice(lines[start:k]):
            notice[start:k] = [True] * (k - start)
        j = k
    return notice


def is_disclaimer(paragraph: str) -> bool:
    """Whether a paragraph reads as a notice the mail system appended, not as the person's text."""
    return notice_start(paragraph.split("\n"), len(paragraph) + 1) is not None


def notice_start(lines: list[str], long: int) -> int | None:
    """Where in a paragraph (its lines) the disclaimer it reads as begins: at its first line longer
    than `long` or holding one of a disclaimer's words ("Pozdrawiam\nJan\nTreść tej wiadomości jest
    poufna…"); None when it reads as no disclaimer. One pass over its words."""
    if max(map(len, lines)) < NOTICE_LINE_MIN:
        return None  # a company's signature, its name, address and phones
    text = "\n".join(lines)
    seen: set[int] = set()
    first = len(text)
    for at, kind in disclaimer_words(text):
        first = min(first, at)
        seen.add(kind)
        if len(seen) >= 2:
            line = text.count("\n", 0, first)
            return next((k for k in range(line) if len(lines[k]) > long), line)
    return None


# A line of contact details alone: phones, addresses, links, with or without labels ("tel. +48 22
# 123 45 67 | kom. 601 123 456", "www.acme.pl", "<https://poczta.wp.pl>"). The possessive runs keep a
# long line of digits and spaces from being tried at each split.
_CONTACT_ITEM = (
    r"((tel|telefon|phone|kom|mob|mobile|gsm|fax|t|m|f|e|e-?mail|mail|www|web)\.?:?\s*+)?"
    r"(\+?\(?\d(?:[ ()./-]*+\d){6,}+|<?(https?://|www\.)[^\s<>]++>?|<?[\w.+-]++@[\w-]+(\.[\w-]+)++>?)"
)
_CONTACT_LINE = re.compile(rf"^(?i:{_CONTACT_ITEM}(\s*+[|,;/•·]?\s*+{_CONTACT_ITEM})*+)\.?$")
CONTACT_LINE_MAX = 200


def is_contact_line(text: str) -> bool:
    """Whether a stripped line holds contact details and nothing else: not a line of one number that
    is no phone (a date, a bank account, a PESEL: `numbershapes`), which `_CONTACT_ITEM` reads as one."""
    return len(text) <= CONTACT_LINE_MAX and _CONTACT_LINE.match(text) is not None and has_contact(text)


# A person's name ("Jan", "Jan Kowalski", "Anna K."): a capital and a small letter, up to three words.
_NAME_LINE = re.compile(r"^[A-ZĄĆĘŁŃÓŚŹŻ][a-ząćęłńóśźż][\w'-]*+(\s[A-ZĄĆĘŁŃÓŚŹŻ][\w.'-]*+){0,2},?$")
# One word below a phone's footer is a name, unless it is one of the short answers people send from
# a phone, typed below the footer of a reply ("Sent from my iPhone\n\nTak\n\n> ...").
SHORT_ANSWERS = frozenset(
    "tak nie ok okej dobrze jasne super zgoda dzięki dzieki dziękuję dziekuje potwierdzam będę bede jadę"
    " jade jutro dzisiaj zaraz później pozniej yes no sure thanks fine great done agreed confirmed".split()
)


def is_name_line(text: str) -> bool:
    """Whether a stripped line is a name as a signature gives it."""
    return _NAME_LINE.match(text) is not None and (
        " " in text or text.rstrip(",").lower() not in SHORT_ANSWERS
    )


# The first line of a company's signature may carry a title or a role, or be in capitals ("mgr inż. Jan
# Kowalski", "Jan Kowalski | Kierownik Projektu", "JAN KOWALSKI").
_TITLES = re.compile(r"^(?i:(mgr|inż|dr|hab|prof|lek|doc|ing|mr|mrs|ms)\.?\s+)+")
_CAPITALS_NAME = re.compile(r"^[A-ZĄĆĘŁŃÓŚŹŻ][A-ZĄĆĘŁŃÓŚŹŻ'-]+(\s[A-ZĄĆĘŁŃÓŚŹŻ][A-ZĄĆĘŁŃÓŚŹŻ.'-]*+){1,2}$")


def is_signature_name(text: str) -> bool:
    """Whether a stripped line opens a company's signature with the person's name."""
    name = _TITLES.sub("", text.split(" | ")[0].strip())
    return is_name_line(name) or _CAPITALS_NAME.match(name) is not None


# Separator rules ("_____", "=====") between a footer and what the mail system appended.
RULE = re.compile(r"^[-_=*~#.]{3,}$")
# The long one a mailing list's server puts above its footer (Mailman: 47 "_"), below which nothing is
# the sender's: "..." or "***" on a line may be a person's.
LIST_RULE = re.compile(r"^(_{10,}|-{10,}|={10,})$")
# An image left of a signature's logo ("[cid:image001.png@01D9…]", "[image: logo]").
IMAGE = re.compile(r"^\[?(cid:\S+|image:[^\]]*)\]?$", re.IGNORECASE)


def says_something(text: str) -> bool:
    """Whether a stripped line shows something other than a logo or a rule."""
    return bool(text) and visible(text) and not IMAGE.match(text) and not RULE.match(text)
