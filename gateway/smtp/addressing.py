"""Phone numbers in email addresses: RCPT local part to E.164, and back for reply addresses.

Number rules are `phonenumbers`' (libphonenumber's metadata), never our own: national, `+`, `00`
and bare-country-code forms all normalise to one E.164 string, which is the key for everything
downstream (dedup, opt-outs, conversations).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

from gateway.smtp import plainnumber

SEPARATORS = re.compile(r"[\s.\-()/]")
# A local part that is a number as staff write it: digits, "+" and the separators above (an SMTP
# command is one line, so spaces and tabs only), with one digit at least.
_NUMBER_LOCAL = r'(?=[^"@]*[0-9])[0-9+ \t.\-()/]+'
_NUMBER_PATH = re.compile(
    rf'<[ \t]*({_NUMBER_LOCAL}|"{_NUMBER_LOCAL}")@([A-Za-z0-9.-]+)[ \t]*>(.*)\Z', re.DOTALL
)


class BadNumber(ValueError):
    """The local part is not a phone number we can send to; the text says why."""


_QUOTED_PAIR = re.compile(r"\\(.)")


def split_address(address: str) -> tuple[str, str]:
    """The local part as the user typed it and the domain. A mail client quotes a local part with
    spaces (`"601 123 456"@domain`, RFC 5321 Quoted-string); the quotes are no part of the number,
    so they go here and the number is then read like any other form."""
    local, sep, domain = address.strip().strip("<>").rpartition("@")
    if not sep or not local:
        raise BadNumber("not an address of the form number@domain")
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])  # `""` stays an address: its number is empty
    return local, domain.lower().rstrip(".")


def number_path(arg: str) -> tuple[str, str] | None:
    """A MAIL/RCPT path whose local part is a number, as written, and the parameters after it; else
    None. `<+48 (601) 123-923@sms.example.com>` read by the email package's address grammar lost
    "(601)" as a comment and named another valid number: brackets stand between a number's digits
    here (README), so such a local part is never read through that grammar."""
    m = _NUMBER_PATH.match(arg.lstrip())
    if m is None:
        return None
    return f"{m.group(1).rstrip()}@{m.group(2)}", m.group(3).lstrip()


def is_number_local(local: str) -> bool:
    """Whether a local part (quotes taken off) is only what a number's may hold: digits, "+" and
    separators. A comment read out of such an address may have been part of the number."""
    return re.fullmatch(_NUMBER_LOCAL, local) is not None


@lru_cache(maxsize=4096)
def to_e164(local: str, region: str) -> str:
    """Normalise what staff type before the @ (601123456, +48 601-123-456, 0048601123456, 48601123456)."""
    digits = SEPARATORS.sub("", local)
    if not digits:
        raise BadNumber("empty number")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+?\d+", digits):
        # 601-123-456 and 601.123.456 are taken: the rule names what may stand between the digits.
        raise BadNumber(
            "a phone number only: digits (spaces, dashes, dots, slashes or brackets between them),"
            " + or 00 first"
        )
    count = len(digits) - digits.startswith("+")
    if count < 3:
        raise BadNumber("too short: at least 3 digits")
    if count > 17:
        raise BadNumber("too long: at most 17 digits")
    if digits.startswith("+"):
        candidates = [digits]
    elif digits.startswith(str(phonenumbers.country_code_for_region(region))):
        # The region's own country code written without "+" (answer mails of earlier versions came
        # from such addresses): under DE, 4915112345678 read nationally was +494915112345678.
        candidates = ["+" + digits, digits]
    else:
        candidates = [digits, "+" + digits]
    for candidate in candidates:
        if (e164 := valid_e164(candidate, region)) is not None:
            return e164
    raise BadNumber(_why_invalid(candidates[0], region))


_LENGTH_WORDS = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short for a phone number of {} (+{}): a digit missing?",
    phonenumbers.ValidationResult.TOO_LONG: "too long for a phone number of {} (+{}): a digit too many?",
    phonenumbers.ValidationResult.INVALID_LENGTH: "not a length a phone number of {} (+{}) has",
}


def premium_number(local: str, premium: Iterable[str]) -> str | None:
    """The configured premium number (`[premium] numbers`, `[[premium.number]]`) a local part names,
    or None. Asked only of a local part that is no phone number, before its length is hinted at:
    `7355@…` was told "too short for a phone number of PL: a digit missing?", and its sender looked
    for a digit where there is none to find; the gateway's own short code takes SMS, it is sent none."""
    digits = SEPARATORS.sub("", local)
    return digits if digits in premium else None


def _why_invalid(candidate: str, region: str) -> str:
    """What is wrong with a number the numbering plan does not know, as its first reading has it:
    "no such number" for an 8-digit Polish number sent staff looking for a wrong digit anywhere."""
    try:
        num = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return "no such number in the numbering plan"
    reason = phonenumbers.is_possible_number_with_reason(num)
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return f"no country has the code +{num.country_code}"
    where = phonenumbers.region_code_for_country_code(num.country_code)
    if where == phonenumbers.UNKNOWN_REGION or where == "001":  # +800, +882: no country's plan to name
        return "no such number in the numbering plan"
    if reason in _LENGTH_WORDS:
        return _LENGTH_WORDS[reason].format(where, num.country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(where)
    mobile = sorted(set(meta.mobile.possible_length)) if meta is not None and meta.mobile else []
    if mobile and len(str(num.national_number)) not in mobile:  # 60112345: a digit short of a mobile
        lengths = " or ".join(str(n) for n in mobile)
        plan = f"no such number in the numbering plan of {where} (+{num.country_code})"
        return f"{plan}: its mobile numbers have {lengths} digits"
    return "no such number in the numbering plan"


def international_too(local: str, region: str, taken: str) -> str | None:
    """The international reading of bare digits (`+` + digits) when `to_e164` took them as `taken`,
    another number, and the numbering plan knows both: the phone the user may mean instead (a Reply
    to an answer mail of an earlier version, which came from the phone's digits without "+")."""
    digits = SEPARATORS.sub("", local)
    if not digits.isdigit() or digits.startswith("0"):
        return None
    other = valid_e164("+" + digits, region)
    return other if other is not None and other != taken else None


@lru_cache(maxsize=4096)
def valid_e164(candidate: str, region: str) -> str | None:
    """The E.164 form of `candidate` (digits, `+` first for an international one) when the
    numbering plan knows it, by phonenumbers' rules; else None. Shared by what staff type and
    what SMSCs send, which differ only in how they are read into a candidate. Plain digits are
    read by `plainnumber` (phonenumbers' steps for them, its patterns compiled once), the rest
    by phonenumbers' own parse."""
    fast = plainnumber.read(candidate, region)
    if isinstance(fast, plainnumber.Reading):
        e164, kind, where = fast.e164, fast.kind, fast.region
        if e164 is None:
            return None
    else:
        try:
            num = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            return None
        # `is_valid_number` is `number_type` is not UNKNOWN (both match the number against its
        # region's patterns, one kind after another): the type is kept for `number_kind`.
        kind = phonenumbers.number_type(num)
        if kind == phonenumbers.PhoneNumberType.UNKNOWN:
            return None
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        where = phonenumbers.region_code_for_number(num)
    if len(_READ) >= 4096:
        _READ.clear()
    _READ[e164] = (where, kind)
    return e164


# Numbers `valid_e164` read lately, by their E.164 form, with their region and phonenumbers type:
# `number_kind` of a recipient just read need not parse it nor match it against the patterns again.
_READ: dict[str, tuple[str | None, int]] = {}


# What `number_kind` tells: phonenumbers' types, and GLOBAL for a mobile or VoIP number of a global
# service without a country (+870 Inmarsat, +881 satellite phones, +882/+883 international
# networks), whose SMS cost many times a mobile's. UNKNOWN is never one: the plan knows the number.
GLOBAL = "GLOBAL"
_TYPES = {v: k for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper() and k != "UNKNOWN"}
NUMBER_KINDS = (*_TYPES.values(), GLOBAL)
# The kinds a phone has wherever it is; elsewhere phonenumbers' type of a global service's number
# (+800 toll-free, +979 premium-rate) says more than GLOBAL would.
_PHONES = frozenset({"MOBILE", "FIXED_LINE_OR_MOBILE", "FIXED_LINE", "VOIP", "PAGER", "PERSONAL_NUMBER"})
_WORDS = {
    "FIXED_LINE_OR_MOBILE": "fixed-line or mobile",
    "VOIP": "VoIP",
    "UAN": "universal access (UAN)",
    "PERSONAL_NUMBER": "personal",
    GLOBAL: "satellite and international-network",
}


@lru_cache(maxsize=4096)
def number_kind(e164: str) -> str:
    """One of `NUMBER_KINDS` for a number `valid_e164` gave."""
    if (read := _READ.get(e164)) is not None:
        where, number_type = read
    else:
        num = phonenumbers.parse(e164)
        where, number_type = phonenumbers.region_code_for_number(num), phonenumbers.number_type(num)
    kind = _TYPES.get(number_type, "UNKNOWN")
    if kind in _PHONES and where == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return GLOBAL
    return kind


def kind_words(kind: str) -> str:
    """A kind as a refusal names it: "premium-rate" (numbers are not served)."""
    return _WORDS.get(kind) or kind.lower().replace("_", "-")


def reply_address(e164: str, domain: str) -> str:
    """The From address of an SMS answer mailed to staff; replying to it sends an SMS again."""
    return f"{e164}@{domain}"
