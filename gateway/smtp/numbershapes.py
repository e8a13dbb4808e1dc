"""Which numbers in a line are contact details (R-1.3), for `gateway.smtp.footers` and the signature
rules: a phone, a labelled phone, a web or mail address, a postal code. A long line of the person's
below "Pozdrawiam\nJan" is signature material only when it holds contact details (a company's strip
of address and phones on one line), and a short sentence there is the person's only when it holds
none: a number read as a phone that is none cut the person's line with the signature.

A phone in a signature looks so: "+48 601 123 456", "tel. 22 123 45 67", "601-123-456", "(22)
123-45-67". Many other numbers have its run of digits and separators and are none:
- a legal reference, an invoice's or an order's number ("RODO (Rozporządzenie 2016/679)",
  "FV/2024/11/0012", "Dz.U.2018.1000", "decyzja nr 2024.11.0001234");
- a date or a range of dates, hours or years ("10.05.2018", "12.11 - 15.11.2026", "9.00 - 17.00",
  "2026-11-12 9:00 - 2026-11-15 17:00", "w latach 2020-2026");
- an amount ("1 234 567,89 zł", "EUR 1 234 567", "1 234 567.89", "12 000 000");
- a bank account in groups of four ("PL61 1090 1014 0000 0712 1981 2874", and without its "PL");
- a NIP in its groups ("525-000-00-00", "525-00-00-000") and a PESEL (11 digits whose check digit
  and birth date hold: "85010112345"; "48…" is the country code of a phone);
- any number after a word naming what it is: "NIP: 5250000000", "REGON 012345678", "nr konta …",
  "paczka 612345678 w drodze", "zamówienie nr 612345678", "kwota 12 000 000". A parcel's or an
  order's number has a mobile phone's nine digits, so only the words before it tell them apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Shapes a run of digits may start with that no phone has. Each reads a bounded stretch (but for the
# runs of digits and dots, which end at the first space: each start reads its own), so that a start
# costs the same on a 100 kB line of numbers.
_NO_PHONE_AHEAD = (
    r"\d{1,4}[.-]\d{1,2}[.-]\d{2,4}(?!\d)"  # a date in one piece: "10.05.2018", "2018-05-10"
    r"|\d{4,}\.\d|[\d.]*?\.\d{4}(?=\.?\d)"  # a dot after four digits, or before them but the last
    r"|\d{1,2}\.\d{1,2}\s*+[-–]"  # a day and month, or an hour, opening a range: "12.11 - …", "9.00-…"
    r"|(?:19|20)\d\d\s*+[-–]\s*+(?:19|20)\d\d(?!\d)"  # a range of years
    r"|\d{3}-\d{3}-\d\d-\d\d(?![\d-])|\d{3}-\d\d-\d\d-\d{3}(?![\d-])"  # a NIP in its groups
    r"|\d{1,3}(?: \d{3}){1,4}+[.,]\d\d?(?!\d)"  # an amount with its grosze: "1 234 567.89"
    r"|\d{1,3}(?: \d{3}){0,2} 000 000(?!\d)"  # a round amount: "12 000 000"
)
# A currency, before an amount or after it ("€1 234 567", "EUR 1 234 567", "1 250 000 złotych"): its
# sign or its code, and after the amount the code's words ("złotych", "euro").
_CURRENCY_SIGNS = "€$£"
_CURRENCY_CODES = ("zł", "pln", "eur", "usd", "gbp", "chf")
# Before a phone each code is its own lookbehind: one of alternatives needs them of one width.
_NO_CURRENCY_BEHIND = "".join(f"(?<!{code} )" for code in _CURRENCY_CODES)
# What may not stand right before a phone: a letter, digit, "/", ".", ",", "+", "-" or "#" (a
# reference's or an order's "#612345678"); a currency ("€1 234 567", "EUR 1 234 567"); a group of
# four digits (a bank account's: its first run is too long for a phone, and each run from a later
# group was one); a digit and ":" (the minutes of "9:00"); a range's dash after a digit ("2020 -
# 2026", "9.00 - 17.00").
_NO_PHONE_BEHIND = (
    rf"(?<![\w/.,+#{_CURRENCY_SIGNS}-])(?<![{_CURRENCY_SIGNS}] ){_NO_CURRENCY_BEHIND}(?<!\d{{4}} )(?<!\d:)"
    r"(?<!\d [-–] )(?<!\d[-–] )(?<!\d–)"
)
# The run is bounded (E.164's 15 digits, separators of up to 3 characters): when the check after it
# fails, the search starts again at each digit that follows a space, and an unbounded run read from
# each such start to its end ("12 12 12 … 1/", 90 kB) cost time quadratic in the line's length. After
# it, no letter, "/", decimals, a currency or "%" (an amount: "1 250 000 złotych", but "601 123 456
# Europe Office" is a phone).
PHONE = (
    rf"{_NO_PHONE_BEHIND}(?!{_NO_PHONE_AHEAD})"
    r"\+?\(?\d(?:[ ().-]{0,3}+\d){6,14}+"
    rf"(?![\w/]|[.,]\d|\s*+(?i:(?:{'|'.join(_CURRENCY_CODES)})(?:oty|ote|otych|otego|os?)?\b|[{_CURRENCY_SIGNS}%]))"
)
# Words that say what the number after them is: a register's (and one word more: "NIP firmy", "PESEL
# pacjenta"), a bank account's, an amount's, and a parcel's or its carrier's, an order's, an invoice's,
# a case's. Between them and the number: up to three of "nr", "numer", "o numerze", "to", "is",
# "jest", "wynosi" and punctuation ("Numer paczki: 612345678", "paczka o numerze 612345678", "nr konta
# to …").
_REGISTERS = r"pesel|nip|regon|krs|bdo"
_ACCOUNTS = r"iban|swift|bic|vat(?:[ -]?(?:id|eu))?|kont[aoau]|rachun(?:ek|ku)\w*+|account|acct"
_AMOUNTS = (
    r"kwot\w*+|koszt\w*+|cen[aęy]|budżet\w*+|budzet\w*+|warto[śs][ćc]\w*+|sum[aęy]|saldo|total|amount"
    r"|price|do zapłaty"
)
# A department's or a carrier's name is also a company's label for its phone ("Reklamacje: 22 123 45
# 67", "InPost: 722 444 000"): after these a number in groups is a phone, and only an unbroken run
# (a parcel's, an order's number: "paczka 612345678") is named.
_DEPARTMENTS = (
    r"paczk\w*+|przesy[łl]k\w*+|dpd|dhl|inpost|gls|ups|fedex|zam[óo]wieni\w*+|order|tracking"
    r"|przewozow\w*+|awb|faktur\w*+|invoice|zg[łl]oszeni\w*+|ticket|spraw[aęy]|reklamacj\w*+|umow\w*+"
    r"|polis\w*+"
)
_GAP = r"(?:[\s:#.=]{1,3}+(?:nr|numer\w*+|o|no|number|to|is|jest|wynosi)\b){0,3}+[\s:#.=-]{0,3}+"
_PHONE_LABEL = r"tel|telefon|phone|kom|mob|mobile|gsm|fax"


def _named_before(names: str) -> re.Pattern[str]:
    """The name, its words and the punctuation right before a number: looked for only before what
    reads as a phone (most lines hold none), within `_NAMED_REACH` characters."""
    register = rf"(?:{_REGISTERS})\b(?:\s++(?!(?:{_PHONE_LABEL})\b)[^\W\d_]{{1,15}}+)?"
    return re.compile(rf"(?i:\b(?:{register}|(?:{names}))\b{_GAP})\Z")


_NAMED_BEFORE = _named_before(f"{_ACCOUNTS}|{_AMOUNTS}|{_DEPARTMENTS}")
_NAMED_BEFORE_GROUPS = _named_before(f"{_ACCOUNTS}|{_AMOUNTS}")
# A number written in groups, as a phone is ("22 123 45 67", "601-123-456").
_GROUPED = re.compile(r"\d[ ().-]+\d")
_NAMED_REACH = 60
# Contact details within a line: a labelled phone, a web or mail address, a phone, a postal code.
# A postal code stands alone: "00-001", not the tail of a NIP's groups ("525-00-00-000").
CONTACT = re.compile(
    rf"(?i:\b({_PHONE_LABEL})\b\.?:?\s*\+?\(?\d|www\.|https?://|\S@[\w-]+\.\w|{PHONE}"
    r"|(?<![\d-])\d{2}-\d{3}(?![\d-]))"
)

# A paragraph of a company's entries alone, a register's or its bank account's ("NIP 525-000-00-00.",
# "KRS 0000123456, NIP PL5250000000.", "Konto: mBank 61 1090 … 2874.", "Numer konta: 61 1090 … 2874
# (mBank).", "Rachunek bankowy: PKO BP 61 1090 …"), a bare account too, the company's or its bank's
# name with its legal form before them ("ACME Sp. z o.o., KRS …", "Bank Pekao S.A. 61 1090 …"): a
# company's however it ends, where a sentence that names one is the person's ("Faktura na NIP …",
# "Przelew proszę na konto …").
_IN_CURRENCY = rf"(?:[,;]?\s++(?:w|in)\s++(?:{'|'.join(_CURRENCY_CODES)}):?\s++(?:[a-z]{{2}} ?)?[\d ]*+)*+"
_LABELLED = (
    rf"(?:(?:nr|numer)\.?\s++(?:rej\.?\s++)?)?(?:{_REGISTERS}|{_ACCOUNTS}(?: no| number)?)\b[\s:.#]*+"
    r"(?:(?:[^\W\d_]{1,20}+[\s:]++){1,4}+(?=(?:[a-z]{2} ?)?\d)|(?:[^\W\d_]{1,20}+\s++)?)"
    rf"(?:[a-z]{{2}} ?)?[\d -]*+(?:\([^\W\d_]{{1,20}}+\))?{_IN_CURRENCY}"
)
# A bare account, a bank's name may stand before it ("mBank 61 1090 …"); after either, an account
# in another currency (", w EUR: PL27 …").
_ACCOUNT = rf"(?:[^\W\d_]{{1,20}}+\s++)?(?:[a-z]{{2}} ?)?\d\d(?: ?\d{{4}}){{4,7}}+(?!\d){_IN_CURRENCY}"
_COMPANY = (
    r"(?:(?:[^\W\d_][\w&'-]*+\.?\s++){1,5}?(?:sp\. z o\.o\.|s\.a\.|sp\. [jk]\.|sp\.[jk]\.)"
    r"|(?:firma|company)\s++(?:[^\W\d_][\w&'-]*+\s*+){1,3}?(?=,))"
)
_ENTRIES_ONLY = re.compile(rf"(?i:(?:{_COMPANY})?(?:[\W_]*+(?:{_LABELLED}|{_ACCOUNT}))++)[\W_]*+")


# A run of seven digits or more in a line, whatever it is: a phone, a register's or an account's number,
# an office's hours ("8.00 - 16.00"). A long signature holds such lines where a person's text seldom
# does; bounded as `PHONE` is, so that each start reads a bounded stretch.
_NUMBER_RUN = re.compile(r"\d(?:[ ().:-]{0,3}+\d){6,14}+")


def holds_number(text: str, contact: bool | None = None) -> bool:
    """Whether a line holds contact details or a run of seven digits or more (`_NUMBER_RUN`); `contact`:
    `has_contact(text)` when the caller has it already (each line of a mail is measured for both)."""
    if _NUMBER_RUN.search(text) is not None:
        return True
    return has_contact(text) if contact is None else contact


def is_register_entry(text: str) -> bool:
    """Whether a paragraph is nothing but a company's register entries or bank account and their numbers."""
    return _ENTRIES_ONLY.fullmatch(text) is not None


_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_PESEL_MONTHS = frozenset((*range(1, 13), *range(21, 33), *range(41, 53), *range(61, 73), *range(81, 93)))


def _is_pesel(digits: str) -> bool:
    """Whether 11 digits are a PESEL: its check digit and its month and day hold (the month carries the
    century: +20 from 2000). One phone in ten has the right last digit; the date leaves fewer."""
    if len(digits) != 11 or not digits.isdigit() or digits.startswith("48"):
        return False  # "48…": a Polish phone with its country code
    check = (10 - sum(int(d) * w for d, w in zip(digits, _PESEL_WEIGHTS, strict=False)) % 10) % 10
    return check == int(digits[10]) and int(digits[2:4]) in _PESEL_MONTHS and 1 <= int(digits[4:6]) <= 31


_NUMBER_STARTS = frozenset("0123456789+(")


def contact_details(text: str) -> Iterator[str]:
    """The contact details in a line, as `CONTACT` finds them, but for the numbers it reads as phones
    that are named as something else ("paczka 612345678", "nr konta 61 1090 …") or are a PESEL."""
    for found in CONTACT.finditer(text):
        number = found[0][0] in _NUMBER_STARTS
        at = found.start()
        named = _NAMED_BEFORE_GROUPS if _GROUPED.search(found[0]) else _NAMED_BEFORE
        if number and (_is_pesel(found[0]) or named.search(text, max(0, at - _NAMED_REACH), at)):
            continue
        yield found[0]


def has_contact(text: str) -> bool:
    """Whether a line holds contact details (`contact_details`)."""
    found = CONTACT.search(text)  # most lines hold none, or a label or an address first: one search
    if found is None or found[0][0] not in _NUMBER_STARTS:
        return found is not None
    return next(contact_details(text), None) is not None
