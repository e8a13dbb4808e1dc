"""Phone numbers as SMSCs send them, made comparable: everything becomes E.164 or stays as sent.

An SMSC may give the phone's number as `+48601123456`, as digits with TON 1 (international),
as `0048601123456` (CIMD2's usual form), as national digits `601123456` (TON 2 or 4), or with
TON unknown in either form; our own number arrives the same ways. Conversations are keyed by
E.164, so every form is read here, by `phonenumbers`' rules and never our own. What is not a
number (an alphanumeric sender, a short code, junk) is returned unchanged, and never matches.

Our own number may be one the plan does not know (a new range; the shipped +48100200300), which
then stays in whatever form it came: it is matched by its digits instead (`own_form`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from gateway.smtp.addressing import SEPARATORS, valid_e164

_DIGITS = re.compile(r"(?:\+[1-9])?[0-9]{3,20}")  # no country code starts with 0
E164_MAX_DIGITS = 15  # ITU-T E.164: country code and national number together
SHORT_CODE_MAX = 7  # digits: shorter, a number is a short code, not some country's national number
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5


def to_e164(address: str, region: str, ton: int | str | None = None) -> str | None:
    """The E.164 form of an address an SMSC sent, or None when it is no phone number.

    Only digits with at most a leading `+` are read: an address with letters, spaces or other
    marks is junk from the network, not a number to guess at.
    """
    try:
        ton = int(ton) if ton is not None else None
    except ValueError:
        ton = None
    if ton == TON_ALPHANUMERIC:
        # A sender ID that happens to be digits ("601123456" as a name): taken for a phone, it was
        # mailed into that phone's conversation, and its STOP would have opted the phone out.
        return None
    if not _DIGITS.fullmatch(address):
        return None
    if address.startswith("+"):
        return valid_e164(address, region)
    if address.startswith("00"):
        return valid_e164("+" + address[2:], region)
    if ton == TON_INTERNATIONAL:
        if address.startswith("0"):
            # No country code starts with 0: a national number under the wrong TON (`015112345678`;
            # `0601700101` where the region dials no trunk 0). As "+0…" it was no phone: a receipt
            # from it matched nothing, its STOP opted nobody out.
            return valid_e164(address, region) or _without_a_trunk_zero(address, region)
        return valid_e164("+" + address, region)
    # National TON, or TON unknown (0, or none given as in CIMD2): national first, then the digits
    # as carrying their country code (SMSCs that label an international number national exist).
    return (
        valid_e164(address, region)
        or valid_e164("+" + address, region)
        or (_without_a_trunk_zero(address, region) if address.startswith("0") else None)
    )


def _without_a_trunk_zero(address: str, region: str) -> str | None:
    """The number read without its leading 0, where the region's numbers have no trunk prefix."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return None if meta is None or meta.national_prefix else valid_e164(address[1:], region)


def normalise(address: str, region: str, ton: int | str | None = None) -> str:
    """E.164 when the address is a phone number, else the address as sent (kept for the record)."""
    return to_e164(address, region, ton) or address


def digit_forms(address: str, region: str) -> tuple[str, ...]:
    """The international numbers (digits from the country code on) `address` may stand for, likeliest first.

    For our own numbers that the plan does not know, which `to_e164` cannot read: "+48100200300"
    and "0048100200300" are one number; bare digits are international without the "+" or national
    (the TON, which would tell, is not stored with the MO), and a national number gets the country
    code of `region`, without its trunk prefix where the region has one (Germany's "0").
    """
    if address.startswith("+"):
        digits = address[1:]
        return (digits,) if digits.isdigit() and not digits.startswith("0") else ()
    if not address.isdigit():
        return ()
    if address.startswith("00"):
        return (address[2:],) if address[2:3] not in ("", "0") else ()
    code = phonenumbers.country_code_for_region(region)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    trunk = meta.national_prefix if meta is not None else None
    national = address[len(trunk) :] if trunk and address.startswith(trunk) else address
    as_national = (f"{code}{national}",) if code and national else ()
    if address.startswith("0"):  # no country code starts with 0: only a national number does
        return as_national
    return (address, *(n for n in as_national if n != address))


def own_form(address: str, own: Iterable[str], region: str) -> str | None:
    """The one of our numbers `own` (as the conversations store them) that `address` writes, or None.

    The same string first; else the same digits (`digit_forms`), the closest reading winning: an
    SMSC writes our +48100200300 as "48100200300" (SMPP TON 0 or 2), "0048100200300" (CIMD2) or
    "100200300" (national), none of which the plan reads into E.164 when it does not know the number.
    """
    numbers = list(own)
    if address in numbers:
        return address
    forms = digit_forms(address, region)
    best: tuple[int, str] | None = None
    for number in numbers:
        theirs = digit_forms(number, region)
        for i, form in enumerate(forms):
            rank = i + theirs.index(form) if form in theirs else None
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, number)
    return None if best is None else best[1]


OwnIndex = tuple[frozenset[str], dict[str, tuple[int, int, str]]]


def own_index(own: Iterable[str], region: str) -> OwnIndex:
    """`own_form`'s reading of many numbers made once: each digit form with the best (place among the
    number's forms, place among `own`) that writes it. An answer to a number the plan does not know read
    every account's sender through `digit_forms` (the phonenumbers metadata each time): thousands of
    accounts made it milliseconds of the loop an MO. Kept while the settings stand."""
    numbers = list(own)
    index: dict[str, tuple[int, int, str]] = {}
    for order, number in enumerate(numbers):
        for place, form in enumerate(digit_forms(number, region)):
            if form not in index or (place, order) < index[form][:2]:
                index[form] = (place, order, number)
    return frozenset(numbers), index


def own_form_indexed(address: str, own: OwnIndex, region: str) -> str | None:
    """`own_form(address, numbers, region)` for the numbers `own` was made of, by look-ups alone."""
    numbers, index = own
    if address in numbers:
        return address
    best: tuple[int, int, str] | None = None
    for i, form in enumerate(digit_forms(address, region)):
        hit = index.get(form)
        if hit is not None and (best is None or (i + hit[0], hit[1]) < best[:2]):
            best = (i + hit[0], hit[1], hit[2])
    return None if best is None else best[2]


def sub_address_whole(written: str, prefix: str | None, ours: Iterable[str], region: str) -> str | None:
    """Our number a CIMD2 MO's destination (021) names by its sub-address alone, or None.

    A CIMD2 sender goes out as a sub-address (023) the SMSC appends to the interface's number, the
    link's `sender_prefix` (protocols.md 1.5); an SMSC that names our number in an MO the same way
    ("200300" for +48100200300, as the simulator does) left every answer to it unmatched. With the
    prefix put back the number is taken only where it is one of `ours` (the numbers the phone had SMS
    from, the senders, the pool): a short code the SMSC names whole stays as it came."""
    if not prefix or prefix == "never" or not written.isdigit() or own_form(written, ours, region):
        return None
    return own_form(prefix + written, ours, region)


def sub_address_forms(written: str, prefix: str | None, region: str) -> tuple[str, ...]:
    """The forms our numbers may be stored in for `sub_address_whole` to find `written` among them,
    or none when `written` cannot be a sub-address: not digits, or a full number already (with the
    interface's number before it, longer than E.164's 15 digits), as an SMSC that names our number
    whole writes it. Only these are looked up in the MO's write: every conversation of the phone and
    every account's sender, read for each MO, cost 22 ms an MO on the loop with 20,000 accounts."""
    if not prefix or prefix == "never" or not written.isdigit():
        return ()
    interface = prefix.removeprefix("+")
    interface = interface[2:] if interface.startswith("00") else interface
    if len(interface) + len(written) > E164_MAX_DIGITS:
        return ()
    return tuple(dict.fromkeys((*written_forms(written, region), *written_forms(prefix + written, region))))


def written_forms(number: str, region: str) -> tuple[str, ...]:
    """Every form an SMSC may have written `number` in, for finding stored rows by a number typed.

    MOs keep our number as the SMSC wrote it (`+48100200300`, `48100200300`, `0048100200300`,
    `100200300`), so a search by one form missed the others. A number the plan reads is taken as
    that one number; one it does not (our own numbers often) stands for each `digit_forms` reading.
    """
    number = SEPARATORS.sub("", number)  # as RCPT reads "+48 601-123-456" or "(601) 123 456"
    e164 = to_e164(number, region)
    if e164 is None and len(number) < SHORT_CODE_MAX:
        return (number,)  # a short code (a premium number): its digits read as foreign ones matched 355
    readings = (e164[1:],) if e164 else digit_forms(number, region)
    forms = [number]
    for digits in readings:
        forms += ["+" + digits, digits, "00" + digits]
        try:
            parsed = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            continue
        national = phonenumbers.national_significant_number(parsed)
        home = phonenumbers.region_code_for_country_code(parsed.country_code)
        meta = phonenumbers.PhoneMetadata.metadata_for_region(home)
        forms += [national] + ([meta.national_prefix + national] if meta and meta.national_prefix else [])
    return tuple(dict.fromkeys(forms))


def stored_phone(source: str, region: str) -> str | None:
    """The phone a stored MO came from, or None when it came from no phone.

    Whether a sender is a phone is decided once, when the MO is recorded (`normalise`, with the
    TON the SMSC gave): a phone is stored in E.164, anything else as it came. Only that stored
    form may be trusted afterwards; reading the stored digits again, without their TON, would
    take a sender ID of digits ("601123456", TON 5) for the national number it looks like: its
    SMS would be mailed into that phone's conversation, held back by that phone's hourly mail
    limit, or routed to a premium service as that phone's vote. Every reader of a stored source
    (the conversations, the premium routing, opt-out words) asks here, so that none disagrees.
    """
    return source if source.startswith("+") and valid_e164(source, region) == source else None


def display(e164: str) -> str:
    """`+48 601 123 456`: how a person writes the number; the E.164 string if it does not parse."""
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def unnamed(text: str, mo_id: int, *phones: str | None) -> str:
    """`text` for a log line: each phone in it, as stored and as `display` writes it, named by the
    MO instead. A log outlives `smsgw phone forget` (and goes wherever logs go), while the store's
    rows keep the number where the erasure reaches it; `smsgw mo list` tells an MO's phone."""
    forms = {form for phone in phones if phone for form in (phone, display(phone))}
    for form in sorted(forms, key=len, reverse=True):  # a longer form before one it contains
        text = text.replace(form, f"the sender of MO {mo_id}")
    return text
